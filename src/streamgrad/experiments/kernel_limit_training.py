"""kernel-limit-training: the shared-coupling network in the kernel regime against its limit.

The `meanfield` network with coupling "shared", readout N^(-1/2) sum_i C^i S^i (beta = 1/2), is
trained online with exact RTRL and SGD at step alpha / N on every parameter, loss (o - y)^2,
on an ergodic stream (AR(1), phi = 0.9, unit stationary variance, y_k = x_{k+1}), for
k = 0 .. N T - 1 (time t = k / N up to the horizon T), in float64. On E fixed evaluation
histories (windows of L inputs from independent stationary paths) it records, against the
project's reconstruction of the limit (docs/theory.md, section 2; `streamgrad.theory.ntk`):

(a) the relative Frobenius error of the empirical NTK at initialisation against the limit
    kernel K, and its log-log slope in N;
(b) the NTK's drift during training, ||Theta_T - Theta_0||_F / ||Theta_0||_F;
(c) the outputs f^N_t at t = j T / n_times against the kernel ODE
    df_t(z)/dt = -2 alpha E_pi[(f_t(Z) - Y) K(z, Z)] started from the network's own initial
    outputs, E_pi replaced by M sampled stationary windows and Y by E[Y | Z] = phi x_last
    (project choice: the same expectation with less sampling noise); the sup distance and
    its slope in N;
(d) the share of the memory paths (and of B alone) in the empirical NTK at initialisation.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from streamgrad.data.synthetic import ar1
from streamgrad.experiments import kernel_limit_plots as plots
from streamgrad.experiments.kernel_limit_hidden import AR_PHI
from streamgrad.gradients import rtrl
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.progress import progress_bar
from streamgrad.reporting import Column, loglog_slope, render_table, versions, write_json
from streamgrad.sweep.executor import Task, map_tasks
from streamgrad.theory import empirical_ntk, kernel_ode, limit_ntk
from streamgrad.theory.ntk import batch_outputs

SIZES = (100, 1_000, 10_000, 100_000)
QUICK = {"sizes": (100, 1_000, 10_000), "seeds": 2, "samples": 500}
LABEL = plots.TRAINING_LABEL
WINDOW = 24
"""Inputs per history; the limit memory forgets its start like 0.4^k, so 24 is plenty."""
EVAL_SEED, SAMPLE_SEED, STREAM_SEED = 20_000, 30_000, 10_000


def windows(count: int, length: int, seed: int) -> np.ndarray:
    """`count` stationary AR(1) windows (count, length, 1), window j from seed `seed + j`."""
    sigma = math.sqrt(1.0 - AR_PHI**2)
    return np.stack(
        [ar1(length, phi=AR_PHI, sigma=sigma, seed=seed + j).inputs for j in range(count)]
    )


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b||_F / ||b||_F."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(
    out: Path,
    *,
    quick: bool = False,
    sizes: tuple[int, ...] = SIZES,
    seeds: int = 3,
    horizon: float = 1.0,
    alpha: float = 1.0,
    samples: int = 2_000,
    evaluations: int = 16,
    n_times: int = 10,
    cell_options: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int | None = 0,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Train at every size and seed; `quick` replaces sizes, seeds and samples by QUICK.
    `samples` = M stationary windows for E_pi, `evaluations` = E evaluation windows. Every
    (N, seed) is one task of `make_executor(workers, scheduler)` (default: this process)."""
    if quick:
        sizes, seeds, samples = QUICK["sizes"], QUICK["seeds"], QUICK["samples"]
    if seeds < 1 or samples < 1 or evaluations < 1 or n_times < 1 or horizon <= 0:
        raise ValueError("seeds, samples, evaluations, n_times and horizon must be positive")
    options = {"coupling": "shared", **(cell_options or {})}
    started = time.perf_counter()
    histories = _histories(samples, evaluations)
    limit = sum(limit_ntk(options, histories, by_leaf=True).values())  # computed here only
    targets = AR_PHI * histories[:samples, -1, 0]  # E[Y | Z] for AR(1)
    setting = (tuple(sorted(options.items())), samples, evaluations, limit[samples:, samples:])
    shared = (horizon, alpha, n_times, *setting)
    runs = {f"N={n} seed={seed}": (n, seed) for n in sizes for seed in range(seeds)}
    tasks = [Task(key, train_one, (*run, *shared)) for key, run in runs.items()]
    with progress_bar(progress) as bar:
        bars = {n: bar.add_task(f"N = {n:,}", total=seeds) for n in sizes}
        done = map_tasks(tasks, workers, scheduler, lambda o: bar.advance(bars[runs[o.key][0]]))
    settings = {
        "sizes": list(sizes),
        "seeds": seeds,
        "horizon": horizon,
        "alpha": alpha,
        "samples": samples,
        "evaluations": evaluations,
        "window": WINDOW,
        "n_times": n_times,
        "cell_options": options,
    }
    done = [_with_ode(result, limit, targets, samples, alpha) for result in done]
    return _finish(out, [row for row, _ in done], [curve for _, curve in done], settings, started)


def train_one(
    n: int,
    seed: int,
    horizon: float,
    alpha: float,
    n_times: int,
    options: tuple[tuple[str, Any], ...],
    samples: int,
    evaluations: int,
    limit: np.ndarray,
) -> dict[str, Any]:
    """One task: the network of size n and parameter seed `seed` trained to `horizon` (N T
    steps), recorded n_times times, in float64 (what `_one_run` returns); `limit` = the limit
    kernel on the E evaluation windows (E, E). The windows and the compiled learner are made
    once per process; the kernel comes from the caller, as BLAS threads can move its last bit."""
    histories = _histories(samples, evaluations)
    chunk = max(1, round(n * horizon / n_times))  # steps between two records
    with jax.enable_x64(True):
        learner = _learner(n, alpha, options)
        return _one_run(learner, (seed, chunk, n_times), histories, samples, limit)


@functools.lru_cache(maxsize=4)
def _histories(samples: int, evaluations: int) -> np.ndarray:
    """M sampled then E evaluation windows, (M + E, WINDOW, 1)."""
    sampled = windows(samples, WINDOW, SAMPLE_SEED)
    return np.concatenate([sampled, windows(evaluations, WINDOW, EVAL_SEED)])


@functools.lru_cache(maxsize=4)
def _learner(n: int, alpha: float, options: tuple[tuple[str, Any], ...]) -> OnlineLearner:
    """RTRL with SGD at alpha / N on the beta = 1/2 network of size n (float64, compiled once
    per size in each process)."""
    model = make_model("meanfield", n, 1, beta=0.5, **dict(options))
    optimizer = make_optimizer("sgd", make_schedule("constant", alpha / n))
    return OnlineLearner(rtrl(model), optimizer)


def _one_run(
    learner: OnlineLearner,
    setting: tuple[int, int, int],
    histories: np.ndarray,
    samples: int,
    limit: np.ndarray,
) -> dict[str, Any]:
    """One network (the learner's model, seed) trained for chunk * n_times steps, recorded
    every chunk: its row of runs.csv without the ODE columns, its initial outputs f0 on
    `histories` (M + E,), its outputs on the evaluation windows at each record (n_times + 1, E)
    and the times t = k / N of the records. `limit`: the limit kernel on the evaluation
    windows (E, E)."""
    seed, chunk, n_times = setting
    tic = time.perf_counter()
    evals = histories[samples:]
    model = learner.algorithm.model
    n = model.cell.hidden_size
    params = model.init(jax.random.PRNGKey(seed), jnp.float64)
    f0 = batch_outputs(model, params, histories)
    blocks = empirical_ntk(model, params, evals, by_leaf=True)
    theta0 = sum(blocks.values())
    direct = empirical_ntk(model, params, evals, through_memory=False)
    stream = ar1(
        chunk * n_times, phi=AR_PHI, sigma=math.sqrt(1.0 - AR_PHI**2), seed=STREAM_SEED + seed
    )
    network = [f0[samples:]]

    def record(state: Any, history: Any) -> None:
        network.append(batch_outputs(model, state.params, evals))

    state, history = learner.fit(
        learner.init(params), stream.inputs, stream.targets, chunk_size=chunk, on_chunk=record
    )
    theta_end = empirical_ntk(model, state.params, evals)
    row = {
        "N": n,
        "seed": seed,
        "ntk_error": _relative(theta0, limit),
        "ntk_drift": _relative(theta_end, theta0),
        "memory_share": float(np.linalg.norm(theta0 - direct) / np.linalg.norm(theta0)),
        "b_share": float(np.linalg.norm(blocks["cell/B"]) / np.linalg.norm(theta0)),
        "loss": float(history.losses.mean()),
        "seconds": time.perf_counter() - tic,
    }
    times = np.arange(n_times + 1) * chunk / n
    return {"row": row, "f0": f0, "network": np.stack(network), "times": times}


def _with_ode(
    run: dict[str, Any], limit: np.ndarray, targets: np.ndarray, samples: int, alpha: float
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A run's row of runs.csv and its output curves against the kernel ODE started from its
    own initial outputs. Solved here, in the calling process, not in the task: LAPACK's eigh
    moves in the last bit with the number of BLAS threads, which a worker may not share."""
    times, network = run["times"], run["network"]  # (n_times + 1,), (n_times + 1, E)
    ode = kernel_ode(limit, targets, run["f0"], 2.0 * alpha, times)[:, samples:]
    row = dict(run["row"])
    tail = {key: row.pop(key) for key in ("loss", "seconds")}
    row["ode_distance"] = float(np.max(np.abs(network - ode)))
    row["ode_movement"] = float(np.max(np.abs(ode - ode[0])))
    evals = network.shape[1]
    curve = pd.DataFrame(
        {
            "N": row["N"],
            "seed": row["seed"],
            "t": np.repeat(times, evals),
            "history": np.tile(np.arange(evals), len(times)),
            "network": network.ravel(),
            "ode": ode.ravel(),
        }
    )
    return {**row, **tail}, curve


METRICS = ("ntk_error", "ntk_drift", "memory_share", "b_share", "ode_distance")


def _finish(
    out: Path,
    rows: list[dict[str, Any]],
    curves: list[pd.DataFrame],
    settings: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    table = pd.DataFrame(rows)
    table.to_csv(out / "runs.csv", index=False)
    trajectories = pd.concat(curves, ignore_index=True)
    trajectories.to_parquet(out / "outputs.parquet", index=False)
    means = table.groupby("N")[[*METRICS, "ode_movement", "seconds"]].mean()
    means.reset_index().to_csv(out / "per_size.csv", index=False)
    sizes = [int(n) for n in means.index]

    def per_size(column: str) -> dict[str, float]:
        return {str(n): float(means.loc[n, column]) for n in sizes}

    summary: dict[str, Any] = {
        "experiment": "kernel-limit-training",
        "label": LABEL,
        **settings,
        "data": f"AR(1), phi = {AR_PHI}, unit stationary variance; y_k = x_(k+1)",
        **{name: per_size(name) for name in METRICS},
        "ntk_error_slope": loglog_slope(sizes, list(means["ntk_error"])),
        "ntk_drift_slope": loglog_slope(sizes, list(means["ntk_drift"])),
        "memory_share_slope": loglog_slope(sizes, list(means["memory_share"])),
        "ode_distance_slope": loglog_slope(sizes, list(means["ode_distance"])),
        "ode_movement": per_size("ode_movement"),
        "seconds_per_run": per_size("seconds"),
        "wall_seconds": time.perf_counter() - started,
        "versions": versions(),
    }
    plots.plot_training_convergence(out / "convergence.png", table, summary)
    plots.plot_outputs(out / "outputs.png", trajectories)
    write_json(out / "summary.json", summary)
    return summary


def table_text(summary: dict[str, Any]) -> str:
    """Per N: NTK error and drift, memory and B shares, distance to the ODE; the slopes."""
    keys = ("ntk_error", "ntk_drift", "memory_share", "b_share", "ode_distance")
    rows = [{"N": n, **{key: summary[key][str(n)] for key in keys}} for n in summary["sizes"]]
    headers = ("NTK err", "NTK drift", "mem share", "B share", "ODE dist")
    columns = [Column("N", spec=",")]
    columns += [Column(key, header, ".2e") for key, header in zip(keys, headers, strict=True)]
    text = render_table(rows, columns)
    slopes = (summary["ntk_error_slope"], summary["ode_distance_slope"])
    if None not in slopes:
        text += f"\nslopes in N: NTK error {slopes[0]:.3f}, ODE distance {slopes[1]:.3f} ({LABEL})"
    return text
