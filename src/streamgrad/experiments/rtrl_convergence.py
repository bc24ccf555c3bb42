"""Online RTRL reaches a stationary point of the long-run loss; TBPTT(tau) does not.

The meanfield network (`--coupling`, shared by default) learns online, by plain SGD with the
Robbins-Monro schedule alpha_k = alpha_0 / (1 + k / k_0)^rho, to predict a Markov-modulated AR
stream (data/processes.py) whose target needs the hidden regime, i.e. memory over many steps.
At log-spaced steps k the parameters theta_k are frozen and L(theta_k) and |grad L(theta_k)|
are estimated by exact RTRL on an independent long run of the process, with their batch-means
noise floor (theory/stationary.py). TBPTT(tau) with tau far below the regime's memory runs on
the same streams from the same initial parameters with the same schedule per stream step
(k_0 / tau in its own update count, since it updates once every tau steps). Several seeds
(each: its own initial parameters and stream), all run side by side with `jax.vmap`.

Expected (docs/theory.md): RTRL's |grad L(theta_k)| falls to the noise floor of the estimate;
TBPTT settles where its own biased gradient vanishes, and there |grad L| stays well above
the floor. Also: the time-averaged TBPTT gradient's bias against tau at theta_0, beside UORO,
SnAp-1 and RFLO, next to the contraction rate of the chain.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from rich.progress import Progress

from streamgrad.batched import init_batched, run_batched
from streamgrad.data.processes import MarkovModulatedAR
from streamgrad.errors import UserError
from streamgrad.gradients import make_algorithm, rtrl
from streamgrad.model import Model, make_model
from streamgrad.online import OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.reporting import Column, render_table, save_figure, versions, write_json
from streamgrad.theory.fixed_point import Coupling, contraction_bound, coupling
from streamgrad.theory.stationary import batch_means, gradient_bias, summarize

# The project's choices (docs/theory.md section 1): a process whose target needs a long
# memory, a network that starts with its memory switched on, and sizes that show the result.
PROCESS = MarkovModulatedAR(means=(-1.0, 1.0), sigmas=(2.0, 2.0), phi=0.2, stay=0.97)
RECURRENT_MEAN = 0.9
DEFAULT = {"steps": 3_000_000, "checkpoints": 12, "estimate_steps": 100_000}
QUICK = {"steps": 60_000, "checkpoints": 5, "estimate_steps": 20_000}
BIAS_TAUS = (1, 2, 4, 8, 16)
BIAS_SPECS = (
    *(f"tbptt:1:{tau}" for tau in BIAS_TAUS),  # every step, back tau steps: bias ~ r^tau
    *(f"tbptt:{tau}" for tau in BIAS_TAUS),  # every tau steps, back 1..tau: ~ 1 / tau
    "uoro",
    "snap1",
    "rflo",
)


def run(
    out: Path,
    *,
    quick: bool = False,
    seeds: int = 5,
    coupling_kind: str = "shared",
    hidden: int = 32,
    taus: tuple[int, ...] = (1, 2, 3),
    lr: float = 0.04,
    k0: float = 1_000.0,
    rho: float = 1.0,
    batches: int = 20,
    burn_in: int = 1_000,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, estimate, plot; writes convergence.csv, training.csv, bias.csv, summary.json,
    convergence.png and bias.png into `out` (an existing folder)."""
    if not taus or min(taus) < 1:
        raise UserError(f"taus: need TBPTT windows >= 1, got {taus}")
    size = QUICK if quick else DEFAULT
    steps = size["steps"]
    estimate = {"steps": size["estimate_steps"], "burn_in": burn_in, "batches": batches}
    model = make_model(
        "meanfield", hidden, 1, coupling=coupling_kind, recurrent_mean=RECURRENT_MEAN
    )
    specs = ["rtrl", *(f"tbptt:{tau}" for tau in taus)]
    chunk = max(100, steps // 2000)
    marks = _checkpoints(steps, size["checkpoints"], chunk)
    paths = PROCESS.paths(steps, seeds, seed=0)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    with Progress(disable=not progress) as bar:
        table, training = _train_and_estimate(
            model, specs, keys, paths, marks, chunk, (lr, k0, rho), bar, **estimate
        )
        bias_table, chain = _bias_at_theta0(model, model.init(keys[0]), bar, **estimate)
    table.to_csv(out / "convergence.csv", index=False)
    training.to_csv(out / "training.csv", index=False)
    bias_table.to_csv(out / "bias.csv", index=False)
    algorithms = {spec: _aggregate(table[table.algorithm == spec]) for spec in specs}
    _plot_convergence(out / "convergence.png", table, specs)
    _plot_bias(out / "bias.png", bias_table, chain.merge_rate)
    summary = {
        "experiment": "rtrl-convergence",
        "quick": quick,
        "seeds": seeds,
        **_setup_summary(coupling_kind, hidden, (lr, k0, rho)),
        "training_steps": steps,
        "checkpoints": [int(m) for m in marks],
        "estimate": estimate,
        "algorithms": algorithms,
        "bias_at_theta0": bias_table.to_dict(orient="records"),
        "contraction_at_theta0": {
            "merge_rate": chain.merge_rate,
            "contraction_bound": contraction_bound(model),
        },
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    return summary


def _setup_summary(
    coupling_kind: str, hidden: int, schedule: tuple[float, float, float]
) -> dict[str, Any]:
    """The process, model and schedule sections of summary.json."""
    lr, k0, rho = schedule
    return {
        "process": {**asdict(PROCESS), "mean_sojourn": PROCESS.mean_sojourn},
        "model": {
            "cell": "meanfield",
            "coupling": coupling_kind,
            "hidden": hidden,
            "recurrent_mean": RECURRENT_MEAN,
            "beta": 0.5,
        },
        "schedule": {
            "optimizer": "sgd",
            "alpha_0": lr,
            "k0": k0,
            "rho": rho,
            "tbptt_k0": "k0 / tau (same alpha per stream step)",
        },
    }


def _train_and_estimate(
    model: Model,
    specs: list[str],
    keys: jax.Array,
    paths: tuple[np.ndarray, np.ndarray],
    marks: np.ndarray,
    chunk: int,
    schedule: tuple[float, float, float],
    bar: Progress,
    *,
    steps: int,
    burn_in: int,
    batches: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every algorithm in `specs` on the seeds' streams `paths` (inputs, targets), each
    (seeds, T); estimate L and |grad L| at each mark on fresh runs of `burn_in + steps`. The
    convergence table (a row per algorithm, seed and mark) and the training losses."""
    estimator = _estimator(model, burn_in, batches)
    seeds, rows, training = len(keys), [], []
    for index, spec in enumerate(specs):
        task = bar.add_task(f"train {spec}", total=paths[0].shape[1])
        snapshots, losses = _train(
            model, spec, keys, *paths, marks, chunk, schedule, lambda n, t=task: bar.advance(t, n)
        )
        training.append(pd.DataFrame(losses).assign(algorithm=spec))
        stacked = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *snapshots)
        task = bar.add_task(f"estimate {spec}", total=1)
        estimates = estimator(stacked, len(marks) * seeds, burn_in + steps, 1 + index)
        bar.advance(task)
        for position, estimate in enumerate(estimates):
            mark, seed = divmod(position, seeds)
            rows.append(
                {
                    "algorithm": spec,
                    "seed": seed,
                    "step": int(marks[mark]),
                    "loss": estimate.loss,
                    "loss_se": estimate.loss_se,
                    "grad_norm": estimate.grad_norm,
                    "noise_floor": estimate.noise_floor,
                }
            )
    return pd.DataFrame(rows), pd.concat(training)


def _bias_at_theta0(
    model: Model, theta0: Any, bar: Progress, *, steps: int, burn_in: int, batches: int
) -> tuple[pd.DataFrame, Coupling]:
    """The bias of each of RTRL and BIAS_SPECS at theta0 against RTRL (`gradient_bias`), a
    row per spec, and the coupling of the chain at theta0."""
    task = bar.add_task("gradient bias at theta_0", total=1)
    specs = ["rtrl", *BIAS_SPECS]
    bias = gradient_bias(
        model, theta0, PROCESS, specs, steps=steps, burn_in=burn_in, batches=batches, seed=99
    )
    chain = coupling(model, theta0, PROCESS(2_000, seed=98), 4)
    bar.advance(task)
    return pd.DataFrame([asdict(b) for b in bias]).assign(spec=specs), chain


def _checkpoints(steps: int, count: int, chunk: int) -> np.ndarray:
    """0 and `count - 1` log-spaced steps up to `steps`, multiples of `chunk`."""
    spaced = np.geomspace(max(chunk, steps / 1000), steps, count - 1)
    return np.unique(np.concatenate([[0], np.round(spaced / chunk).astype(int) * chunk]))


def _train(
    model: Model,
    spec: str,
    keys: jax.Array,
    inputs: np.ndarray,
    targets: np.ndarray,
    marks: np.ndarray,
    chunk: int,
    schedule: tuple[float, float, float],
    advance: Any,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Online SGD on every seed's stream at once; the parameters at each mark (leaves
    (seeds, ...) numpy) and the mean prequential loss per chunk and seed."""
    algorithm = make_algorithm(spec, model)
    lr, k0, rho = schedule
    every = int(spec.split(":")[-1]) if spec.startswith("tbptt") else 1  # updates per step
    optimizer = make_optimizer("sgd", make_schedule("robbins-monro", lr, k0=k0 / every, rho=rho))
    learner = OnlineLearner(algorithm, optimizer)
    states = init_batched(learner, keys)
    snapshots, losses, position = [jax.device_get(states.params)], [], 0
    for mark in marks[1:]:
        while position < mark:
            window = slice(position, position + chunk)
            states, (loss, _) = run_batched(
                learner,
                states,
                jnp.asarray(inputs[:, window], jnp.float32),
                jnp.asarray(targets[:, window], jnp.float32),
            )
            position += chunk
            means = np.asarray(loss).mean(axis=1)
            losses.extend(
                {"seed": s, "step": position, "loss": float(m)} for s, m in enumerate(means)
            )
            advance(chunk)
        snapshots.append(jax.device_get(states.params))
    return snapshots, losses


def _estimator(model: Model, burn_in: int, batches: int) -> Any:
    """(params stacked over M items, M, run length, seed) -> M stationary estimates, each on
    its own independent run of the process."""
    vmapped = jax.jit(jax.vmap(partial(batch_means, rtrl(model), burn_in=burn_in, batches=batches)))

    def estimate(params: Any, count: int, length: int, seed: int) -> list[Any]:
        inputs, targets = PROCESS.paths(length, count, seed=seed)
        losses, grads = vmapped(
            params, jnp.asarray(inputs, jnp.float32), jnp.asarray(targets, jnp.float32)
        )
        losses, grads = np.asarray(losses), jax.device_get(grads)
        return [
            summarize(
                losses[i],
                jax.tree_util.tree_map(lambda g, i=i: g[i], grads),
                steps=length - burn_in,
                burn_in=burn_in,
            )
            for i in range(count)
        ]

    return estimate


def _aggregate(rows: pd.DataFrame) -> dict[str, Any]:
    """Mean over seeds per checkpoint; first/last values and the log-log slope of the mean
    gradient norm over the checkpoints after 0."""
    per_step = rows.groupby("step")[["grad_norm", "noise_floor", "loss"]].mean()
    later = per_step[per_step.index > 0]
    slope = np.polyfit(np.log(later.index.to_numpy()), np.log(later.grad_norm.to_numpy()), 1)[0]
    last = rows[rows.step == rows.step.max()].sort_values("seed")
    return {
        "grad_norm_first": float(per_step.grad_norm.iloc[0]),
        "grad_norm_last": float(per_step.grad_norm.iloc[-1]),
        "noise_floor_last": float(per_step.noise_floor.iloc[-1]),
        "grad_norm_slope": float(slope),
        "loss_first": float(per_step.loss.iloc[0]),
        "loss_last": float(per_step.loss.iloc[-1]),
        "grad_norm_last_per_seed": last.grad_norm.tolist(),
        "noise_floor_last_per_seed": last.noise_floor.tolist(),
    }


def _plot_convergence(path: Path, table: pd.DataFrame, specs: list[str]) -> None:
    """|grad L(theta_k)| (top) and L(theta_k) (bottom) against k, one column per algorithm:
    mean over seeds with the standard error of that mean as error bars (the lower bar cut at
    a tenth of the mean, for the log axis), the mean noise floor dashed."""
    fig, axes = plt.subplots(
        2, len(specs), figsize=(4.2 * len(specs), 7), sharex=True, sharey="row", squeeze=False
    )
    for column, spec in enumerate(specs):
        rows = table[table.algorithm == spec]
        stats = rows.groupby("step")[["grad_norm", "noise_floor", "loss"]].agg(["mean", "sem"])
        k = stats.index.to_numpy() + 1.0

        top, bottom = axes[0, column], axes[1, column]
        top.errorbar(
            k,
            stats["grad_norm"]["mean"],
            yerr=_bars(stats["grad_norm"]),
            marker="o",
            ms=3,
            capsize=2,
            label="|grad L(theta_k)|",
        )
        top.plot(k, stats["noise_floor"]["mean"], "k--", lw=1, label="noise floor")
        bottom.errorbar(
            k, stats["loss"]["mean"], yerr=_bars(stats["loss"]), marker="o", ms=3, capsize=2
        )
        top.set(xscale="log", yscale="log", title=spec)
        bottom.set(xscale="log", yscale="log", xlabel="step k + 1")
        top.grid(alpha=0.3, which="both")
        bottom.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("|grad L(theta_k)| (estimated)")
    axes[1, 0].set_ylabel("L(theta_k) (estimated)")
    axes[0, 0].legend()
    fig.suptitle("Online training of the meanfield RNN: stationary loss and gradient norm")
    save_figure(fig, path)


def _bars(stats: pd.DataFrame) -> np.ndarray:
    """(2, K) error bars: the standard error, the lower one cut at 0.9 of the mean."""
    mean, sem = stats["mean"].to_numpy(), stats["sem"].to_numpy()
    return np.stack([np.minimum(sem, 0.9 * mean), sem])


def _plot_bias(path: Path, bias: pd.DataFrame, rate: float) -> None:
    """TBPTT's bias (paired with RTRL on the same run) against tau, for TBPTT(1, tau) (every
    loss truncated at tau steps) and TBPTT(tau, tau); the approximations without tau as
    horizontal lines; and the geometric decay r^tau at the chain's coupling rate r."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    fields = bias.spec.str.split(":")
    for parts, label in ((3, "TBPTT(1, tau)"), (2, "TBPTT(tau, tau)")):
        rows = bias[(fields.str[0] == "tbptt") & (fields.str.len() == parts)]
        taus = rows.spec.str.rsplit(":", n=1).str[1].astype(int).to_numpy()
        ax.errorbar(
            taus,
            rows.paired_error,
            yerr=rows.paired_floor,
            marker="o",
            capsize=3,
            label=f"{label}: |g - g_RTRL| / |grad L|",
        )
        if parts == 3:
            ax.plot(
                taus,
                rows.paired_error.iloc[0] * rate ** (taus - taus[0]),
                "k:",
                label=f"r^tau, r = {rate:.3f} (coupling rate)",
            )
            ax.plot(taus, rows.paired_floor, "k--", lw=1, label="noise floor")
    others = bias[~fields.str[0].isin(["tbptt", "rtrl"])]
    for (_, row), color in zip(others.iterrows(), ("C2", "C3", "C4", "C5"), strict=False):
        ax.axhline(row.paired_error, color=color, lw=1, label=row.spec)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tau",
        ylabel="relative bias at theta_0",
        ylim=(max(1e-8, 0.3 * bias.paired_floor.min()), None),
        title="Bias of the time-averaged online gradient",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def table_text(summary: dict[str, Any]) -> str:
    """Per algorithm: first and last |grad L|, the last noise floor, slope, first/last L."""
    rows = [
        {"algorithm": name, **row, "ratio": row["grad_norm_last"] / row["noise_floor_last"]}
        for name, row in summary["algorithms"].items()
    ]
    columns = [
        Column("algorithm", align="left"),
        Column("grad_norm_first", "|grad L| first", ".4f"),
        Column("grad_norm_last", "|grad L| last", ".4f"),
        Column("noise_floor_last", "floor last", ".4f"),
        Column("ratio", "last/floor", ".2f"),
        Column("grad_norm_slope", "slope", ".2f"),
        Column("loss_first", "L first", ".4f"),
        Column("loss_last", "L last", ".4f"),
    ]
    return render_table(rows, columns)
