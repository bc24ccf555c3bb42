"""Online RTRL reaches a stationary point of the long-run loss; TBPTT(tau) does not.

The meanfield network (`--coupling`, shared by default) learns online, by plain SGD with the
Robbins-Monro schedule alpha_k = alpha_0 / (1 + k / k_0)^rho (in float64), to predict a
Markov-modulated AR stream (data/processes.py) whose target needs the hidden regime, i.e.
memory over many steps. At log-spaced steps k the parameters theta_k are frozen and L(theta_k)
and |grad L(theta_k)| are estimated by exact RTRL on an independent long run of the process,
with their batch-means noise floor (theory/stationary.py). TBPTT(tau) with tau far below the
regime's memory runs on the same streams from the same initial parameters with the same
schedule per stream step (k_0 / tau in its own update count, since it updates once every tau
steps). Several seeds (each: its own initial parameters and stream).

Each algorithm and block of up to SEED_BLOCK seeds is one task of the sweep executor
(`--workers`, `--scheduler`; sweep/executor.py): it trains the block's seeds side by side
with `jax.vmap` and estimates at every checkpoint. A seed's stream, initial parameters and
estimation runs depend only on the seed, so the numbers are the same wherever tasks run.

Expected (docs/theory.md): RTRL's |grad L(theta_k)| falls to the noise floor of the estimate;
TBPTT settles where its own biased gradient vanishes, and there |grad L| stays well above
the floor. Also: the time-averaged TBPTT gradient's bias against tau at theta_0, beside UORO,
SnAp-1 and RFLO, next to the contraction rate of the chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from streamgrad.batched import init_batched, run_batched
from streamgrad.data.processes import MarkovModulatedAR
from streamgrad.errors import UserError
from streamgrad.experiments.rtrl_convergence_plots import plot_bias, plot_convergence
from streamgrad.gradients import make_algorithm, rtrl
from streamgrad.model import Model, make_model
from streamgrad.online import OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.progress import progress_bar
from streamgrad.reporting import Column, render_table, versions, write_json
from streamgrad.sweep.executor import Task, map_tasks
from streamgrad.theory.fixed_point import contraction_bound, coupling
from streamgrad.theory.stationary import batch_means, gradient_bias, summarize

# The project's choices (docs/theory.md section 1): a process whose target needs a long
# memory, a network that starts with its memory switched on, and sizes that show the result.
PROCESS = MarkovModulatedAR(means=(-1.0, 1.0), sigmas=(2.0, 2.0), phi=0.2, stay=0.97)
RECURRENT_MEAN = 0.9
DEFAULT = {"steps": 100_000_000, "checkpoints": 12, "estimate_steps": 250_000}
QUICK = {"steps": 60_000, "checkpoints": 5, "estimate_steps": 20_000}
SEED_BLOCK = 5  # seeds trained side by side in one task (vmap is far cheaper than a loop)
BIAS_TAUS = (1, 2, 4, 8, 16)
BIAS_SPECS = (
    *(f"tbptt:1:{tau}" for tau in BIAS_TAUS),  # every step, back tau steps: bias ~ r^tau
    *(f"tbptt:{tau}" for tau in BIAS_TAUS),  # every tau steps, back 1..tau: ~ 1 / tau
    "uoro",
    "snap1",
    "rflo",
)
# Seeds of the process's runs (path p of run seed s is drawn from (s, p)): training streams
# (TRAIN, seed), estimation runs (ESTIMATE + algorithm index, seed x checkpoints + mark).
TRAIN, ESTIMATE, BIAS, CHAIN = 0, 1_000, 99, 98


def network(coupling_kind: str, hidden: int) -> Model:
    """The studies' meanfield network (one input, beta = 1/2, memory switched on)."""
    return make_model("meanfield", hidden, 1, coupling=coupling_kind, recurrent_mean=RECURRENT_MEAN)


@dataclass(frozen=True)
class Setup:
    """What every task of one run needs: plain values, since tasks travel to Dask workers."""

    coupling_kind: str
    hidden: int
    steps: int
    marks: tuple[int, ...]
    chunk: int
    schedule: tuple[float, float, float]  # alpha_0, k_0, rho
    estimate_steps: int
    burn_in: int
    batches: int

    def model(self) -> Model:
        return network(self.coupling_kind, self.hidden)

    @property
    def estimate(self) -> dict[str, int]:
        return {"steps": self.estimate_steps, "burn_in": self.burn_in, "batches": self.batches}


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
    workers: int | None = 0,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Train, estimate, plot; writes convergence.csv, training.csv, bias.csv, summary.json,
    convergence.png and bias.png into `out` (an existing folder). The tasks run on
    `make_executor(workers, scheduler)` (default: this process)."""
    if not taus or min(taus) < 1:
        raise UserError(f"taus: need TBPTT windows >= 1, got {taus}")
    size = QUICK if quick else DEFAULT
    chunk = max(100, size["steps"] // 2000)
    marks = _checkpoints(size["steps"], size["checkpoints"], chunk)
    setup = Setup(
        coupling_kind, hidden, size["steps"], tuple(int(m) for m in marks), chunk,
        (lr, k0, rho), size["estimate_steps"], burn_in, batches,
    )  # fmt: skip
    specs = ["rtrl", *(f"tbptt:{tau}" for tau in taus)]
    tasks = _tasks(setup, specs, seeds)
    with progress_bar(progress) as bar:
        bar_task = bar.add_task("train and estimate", total=len(tasks))
        *parts, (bias_rows, merge_rate) = map_tasks(
            tasks, workers, scheduler, lambda outcome: bar.advance(bar_task)
        )
    table = _write_tables(out, parts, bias_rows)
    plot_convergence(out / "convergence.png", table, specs)
    plot_bias(out / "bias.png", pd.DataFrame(bias_rows), merge_rate)
    summary = {
        "experiment": "rtrl-convergence",
        "quick": quick,
        "seeds": seeds,
        **_setup_summary(setup),
        "training_steps": setup.steps,
        "checkpoints": list(setup.marks),
        "estimate": setup.estimate,
        "algorithms": {spec: _aggregate(table[table.algorithm == spec]) for spec in specs},
        "bias_at_theta0": bias_rows,
        "contraction_at_theta0": {
            "merge_rate": merge_rate,
            "contraction_bound": contraction_bound(setup.model()),
        },
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    return summary


def _write_tables(
    out: Path, parts: list[dict[str, Any]], bias_rows: list[dict[str, Any]]
) -> pd.DataFrame:
    """convergence.csv (estimates at the checkpoints), training.csv (losses) and bias.csv;
    returns the convergence table."""
    table = pd.DataFrame([row for part in parts for row in part["rows"]])
    table.to_csv(out / "convergence.csv", index=False)
    pd.DataFrame([row for part in parts for row in part["losses"]]).to_csv(
        out / "training.csv", index=False
    )
    pd.DataFrame(bias_rows).to_csv(out / "bias.csv", index=False)
    return table


def _tasks(setup: Setup, specs: list[str], seeds: int) -> list[Task]:
    """A task per algorithm and block of up to SEED_BLOCK seeds, and the bias at theta_0."""
    blocks = [range(b, min(b + SEED_BLOCK, seeds)) for b in range(0, seeds, SEED_BLOCK)]
    tasks = [
        Task(f"{spec} seeds {block.start}-{block.stop - 1}", train_block, (setup, spec, i, block))
        for i, spec in enumerate(specs)
        for block in blocks
    ]
    return [*tasks, Task("bias at theta_0", bias_at_theta0, (setup,))]


def _setup_summary(setup: Setup) -> dict[str, Any]:
    """The process, model and schedule sections of summary.json."""
    lr, k0, rho = setup.schedule
    return {
        "process": PROCESS.settings(),
        "model": {
            "cell": "meanfield",
            "coupling": setup.coupling_kind,
            "hidden": setup.hidden,
            "recurrent_mean": RECURRENT_MEAN,
            "beta": 0.5,
        },
        "schedule": {
            "optimizer": "sgd",
            "alpha_0": lr,
            "k0": k0,
            "rho": rho,
            "tbptt_k0": "k0 / tau (same alpha per stream step)",
            "dtype": "float64 (estimates in float32)",
        },
    }


def initial_keys(seeds: range) -> jax.Array:
    """The PRNG keys of the seeds' initial parameters (each depends on its seed only)."""
    return jnp.stack([jax.random.fold_in(jax.random.PRNGKey(0), s) for s in seeds])


def train_block(setup: Setup, spec: str, index: int, seeds: range) -> dict[str, list[dict]]:
    """One task: train algorithm `spec` (the index-th) on the streams of `seeds` side by side;
    estimate L and |grad L| at each checkpoint on fresh runs of `burn_in + estimate_steps`.
    Returns the rows of convergence.csv (one per seed and checkpoint) and of training.csv."""
    with jax.enable_x64(False):  # float32 whatever ran before in this process
        model = setup.model()
        stream = PROCESS.blocks(
            setup.steps, len(seeds), seed=TRAIN, first=seeds.start, size=setup.chunk
        )  # chunk by chunk: the whole stream of every seed would take gigabytes
        snapshots, losses = _train(model, spec, initial_keys(seeds), stream, setup)
        # leaves (seeds, checkpoints, ...) -> (seeds x checkpoints, ...): seed-major
        stacked = jax.tree_util.tree_map(
            lambda *a: np.stack(a, 1).reshape(-1, *a[0].shape[1:]).astype(np.float32), *snapshots
        )  # estimated in float32 (sums checked against float64, docs/theory.md 1.5)
        count = len(setup.marks)
        estimates = _estimator(model, setup.burn_in, setup.batches)(
            stacked, setup.burn_in + setup.estimate_steps, ESTIMATE + index, seeds.start * count
        )
    rows = [
        {
            "algorithm": spec,
            "seed": seeds.start + position // count,
            "step": setup.marks[position % count],
            "loss": estimate.loss,
            "loss_se": estimate.loss_se,
            "grad_norm": estimate.grad_norm,
            "grad_norm_se": estimate.grad_norm_se,
            "noise_floor": estimate.noise_floor,
        }
        for position, estimate in enumerate(estimates)
    ]
    losses = [{**row, "seed": seeds.start + row["seed"], "algorithm": spec} for row in losses]
    return {"rows": rows, "losses": losses}


def bias_at_theta0(setup: Setup) -> tuple[list[dict[str, Any]], float]:
    """One task: the bias of RTRL and each of BIAS_SPECS at seed 0's theta_0 against RTRL
    (`gradient_bias`), a row per spec, and the coupling rate of the chain there."""
    with jax.enable_x64(False):
        model = setup.model()
        theta0 = model.init(initial_keys(range(1))[0])
        specs = ["rtrl", *BIAS_SPECS]
        bias = gradient_bias(model, theta0, PROCESS, specs, seed=BIAS, **setup.estimate)
        chain = coupling(model, theta0, PROCESS(2_000, seed=CHAIN), 4)
    return [{**asdict(b), "spec": spec} for b, spec in zip(bias, specs, strict=True)], float(
        chain.merge_rate
    )


def _checkpoints(steps: int, count: int, chunk: int) -> np.ndarray:
    """0 and `count - 1` log-spaced steps up to `steps`, multiples of `chunk`."""
    spaced = np.geomspace(max(chunk, steps / 1000), steps, count - 1)
    return np.unique(np.concatenate([[0], np.round(spaced / chunk).astype(int) * chunk]))


def _train(
    model: Model,
    spec: str,
    keys: jax.Array,
    stream: Iterator[tuple[np.ndarray, np.ndarray]],
    setup: Setup,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Online SGD on S streams at once, from the parameters drawn with `keys` (S,); `stream`
    gives the chunks in time order, inputs (S, chunk, 1) and targets (S, chunk). Returns the
    parameters at each checkpoint (leaves (S, ...) numpy) and the mean prequential loss per
    chunk and stream (seed 0..S-1)."""
    algorithm = make_algorithm(spec, model)
    lr, k0, rho = setup.schedule
    every = int(spec.split(":")[-1]) if spec.startswith("tbptt") else 1  # updates per step
    optimizer = make_optimizer("sgd", make_schedule("robbins-monro", lr, k0=k0 / every, rho=rho))
    learner = OnlineLearner(algorithm, optimizer)
    with jax.enable_x64(True):
        return _descend(learner, init_batched(learner, keys), stream, setup)


def _descend(
    learner: OnlineLearner,
    states: Any,
    stream: Iterator[tuple[np.ndarray, np.ndarray]],
    setup: Setup,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """`_train`'s loop, in float64 from the float32 draws of `states`: late in a run the steps
    alpha_k g_k fall below half of float32's spacing near theta, so rounding drops the small
    ones and keeps the large ones, and float32 SGD drifts off the stationary point
    (docs/theory.md 1.3)."""
    states = jax.tree_util.tree_map(
        lambda leaf: leaf.astype(jnp.float64) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf,
        states,
    )
    snapshots, losses, position = [jax.device_get(states.params)], [], 0
    for mark in setup.marks[1:]:
        while position < mark:
            inputs, targets = next(stream)
            states, (loss, _) = run_batched(
                learner, states, jnp.asarray(inputs), jnp.asarray(targets)
            )
            position += inputs.shape[1]
            means = np.asarray(loss).mean(axis=1)
            losses.extend(
                {"seed": s, "step": position, "loss": float(m)} for s, m in enumerate(means)
            )
        snapshots.append(jax.device_get(states.params))
    return snapshots, losses


def _estimator(model: Model, burn_in: int, batches: int) -> Any:
    """(params stacked over M items, run length, seed, first) -> M stationary estimates, item
    i on path first + i of the process's run `seed` (each its own independent run)."""
    vmapped = jax.jit(jax.vmap(partial(batch_means, rtrl(model), burn_in=burn_in, batches=batches)))

    def estimate(params: Any, length: int, seed: int, first: int) -> list[Any]:
        count = len(jax.tree_util.tree_leaves(params)[0])
        inputs, targets = PROCESS.paths(length, count, seed=seed, first=first)
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
    gradient norm over the checkpoints after 0. grad_norm_last_se is the standard error of
    grad_norm_last from the estimation runs, sqrt(sum_s se_s^2) / S over the S seeds (the
    spread of another estimate of the same theta_K, not of another training run)."""
    per_step = rows.groupby("step")[["grad_norm", "noise_floor", "loss"]].mean()
    later = per_step[per_step.index > 0]
    slope = np.polyfit(np.log(later.index.to_numpy()), np.log(later.grad_norm.to_numpy()), 1)[0]
    last = rows[rows.step == rows.step.max()].sort_values("seed")
    return {
        "grad_norm_first": float(per_step.grad_norm.iloc[0]),
        "grad_norm_last": float(per_step.grad_norm.iloc[-1]),
        "grad_norm_last_se": float(np.sqrt(np.sum(last.grad_norm_se**2)) / len(last)),
        "noise_floor_last": float(per_step.noise_floor.iloc[-1]),
        "grad_norm_slope": float(slope),
        "loss_first": float(per_step.loss.iloc[0]),
        "loss_last": float(per_step.loss.iloc[-1]),
        "grad_norm_last_per_seed": last.grad_norm.tolist(),
        "grad_norm_se_last_per_seed": last.grad_norm_se.tolist(),
        "noise_floor_last_per_seed": last.noise_floor.tolist(),
    }


def table_text(summary: dict[str, Any]) -> str:
    """Per algorithm: first and last |grad L| (with the last one's standard error), the last
    noise floor and their ratio, slope, first/last L."""
    rows = [
        {"algorithm": name, **row, "ratio": row["grad_norm_last"] / row["noise_floor_last"]}
        for name, row in summary["algorithms"].items()
    ]
    columns = [
        Column("algorithm", align="left"),
        Column("grad_norm_first", "|grad L| first", ".4f"),
        Column("grad_norm_last", "|grad L| last", ".4f"),
        Column("grad_norm_last_se", "+-", ".4f"),
        Column("noise_floor_last", "floor last", ".4f"),
        Column("ratio", "last/floor", ".2f"),
        Column("grad_norm_slope", "slope", ".2f"),
        Column("loss_first", "L first", ".4f"),
        Column("loss_last", "L last", ".4f"),
    ]
    return render_table(rows, columns)
