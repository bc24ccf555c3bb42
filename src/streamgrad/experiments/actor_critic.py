"""Online neural actor-critic on a finite MDP against its infinite-width ODE (project's
reconstruction, docs/theory.md section 3).

For each width N and seed: a critic and an actor of width N train online along one trajectory
for N * t_max steps (`rl.actor_critic`); their outputs on every state-action pair are recorded
on a grid of times t = k / N. The limit ODE (`rl.limit_ode`, kernels by quadrature) is solved
from each run's own initial outputs. Reported: the sup over times and pairs of the distance
between network and ODE against N (log-log slope), the critic's error to the exact Q of its
current policy, the discounted objective and the norm of its exact gradient in the logits,
against the optimum of exact dynamic programming.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.errors import UserError
from streamgrad.progress import progress_bar
from streamgrad.reporting import (
    Column,
    loglog_slope,
    render_table,
    save_figure,
    versions,
    write_json,
)
from streamgrad.rl import exact
from streamgrad.rl.actor_critic import init_agent, make_runner
from streamgrad.rl.gym_adapter import from_gymnasium
from streamgrad.rl.limit_ode import Rates, kernel, solve, vector_field
from streamgrad.rl.mdp import FiniteMDP, gridworld, random_mdp
from streamgrad.rl.networks import NetworkLaw
from streamgrad.sweep.executor import Task, map_tasks

SIZES = (100, 1_000, 10_000)  # add 100_000 on a GPU: the cost grows like N^2 t_max
QUICK_SIZES = (100, 1_000)
# Per-task settings (project choices, docs/theory.md 3.5): the random MDP's rewards are O(1) and
# dense; FrozenLake's single reward of 1 at the goal is rare under the initial policy, so its
# actor needs a larger step, a longer horizon and a critic that starts closer to 0.
PRESETS: dict[str, dict[str, float]] = {
    "random": {"gamma": 0.9, "t_max": 10.0, "alpha": 20.0, "zeta0": 50.0, "out_scale": 1.0},
    "episodic": {"gamma": 0.99, "t_max": 50.0, "alpha": 100.0, "zeta0": 5000.0, "out_scale": 0.3},
}
LABEL = "limit ODE: this project's reconstruction (docs/theory.md section 3)"


def make_mdp(env: str, gamma: float) -> FiniteMDP:
    """ "random" (6 states x 3 actions, seed 0), "gridworld" (4 x 4) or a gymnasium id with a
    transition table (FrozenLake-v1, CliffWalking-v1, Taxi-v4, ...)."""
    if env == "random":
        return random_mdp(6, 3, gamma=gamma, seed=0)
    if env == "gridworld":
        return gridworld(gamma=gamma)
    return from_gymnasium(env, gamma=gamma)


def _policy_metrics(tables: exact.Tables, eta: float, restart: float):
    """Jitted (critic outputs, actor logits) (pairs,) -> critic error (nu-weighted RMS and sup
    over the pairs with nu > 1e-6), objective, |grad J|."""
    shape = tables.r.shape

    @jax.jit
    def metrics(q: jax.Array, logits: jax.Array) -> jax.Array:
        logits = logits.reshape(shape)
        f = exact.policy(logits, eta)
        error = q.reshape(shape) - exact.q_values(tables, f)
        nu = exact.sampling_law(tables, f, restart)
        grad = exact.policy_gradient(tables, logits, eta)
        rms = jnp.sqrt(jnp.sum(nu * error**2))
        worst = jnp.max(jnp.where(nu > 1e-6, jnp.abs(error), 0.0))
        return jnp.stack([rms, worst, exact.objective(tables, f), jnp.linalg.norm(grad)])

    # one policy at a time: batched LAPACK solves can deadlock (cells/clipping.py spectral_norm)
    return jax.jit(lambda q, logits: jax.lax.map(lambda pair: metrics(*pair), (q, logits)))


def run(
    out: Path,
    *,
    env: str = "random",
    sizes: tuple[int, ...] = SIZES,
    seeds: tuple[int, ...] = (0, 1, 2),
    quick: bool = False,
    gamma: float | None = None,
    t_max: float | None = None,
    alpha: float | None = None,
    zeta0: float | None = None,
    out_scale: float | None = None,
    records: int = 50,
    t0: float = 5.0,
    rho: float = 0.75,
    eta: float = 0.1,
    progress: bool = True,
    workers: int | None = 0,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Run the experiment into `out` (summary.json, metrics.csv/parquet, PNG figures). Settings
    left None come from PRESETS ("random" for the random MDP, "episodic" otherwise). Every
    (N, seed) is trained as one task of `make_executor(workers, scheduler)` (default: this
    process); the ODE is solved here."""
    jax.config.update("jax_enable_x64", True)
    given = {"gamma": gamma, "t_max": t_max, "alpha": alpha, "zeta0": zeta0, "out_scale": out_scale}
    sizes, seeds, records, chosen = _settings(env, quick, sizes, seeds, records, given)
    gamma, t_max = chosen["gamma"], chosen["t_max"]
    mdp = make_mdp(env, gamma)
    law = NetworkLaw(out_scale=chosen["out_scale"])
    rates = Rates(
        alpha=chosen["alpha"], zeta0=chosen["zeta0"], t0=t0, rho=rho, eta=eta, restart=1.0 - gamma
    )
    times = np.linspace(0.0, t_max, records + 1)
    trained = _train_all(env, mdp, law, rates, sizes, seeds, times, (progress, workers, scheduler))
    table, distances, curves = _compare(mdp, law, rates, seeds, times, trained)
    table.to_csv(out / "metrics.csv", index=False)
    table.to_parquet(out / "metrics.parquet", index=False)
    config = {"gamma": gamma, "t_max": t_max, "records": records, **asdict(rates), "law": vars(law)}
    sweep = {"sizes": list(sizes), "seeds": list(seeds), "quick": quick}
    summary = _summary(env, mdp, sweep, config, table, distances)
    write_json(out / "summary.json", summary)
    _plot_distance(out / "ode_distance.png", distances, summary["ode_distance_slope"], mdp.name)
    _plot_curves(out / "training.png", curves, times, summary)
    return summary


def _settings(
    env: str,
    quick: bool,
    sizes: tuple[int, ...],
    seeds: tuple[int, ...],
    records: int,
    given: dict[str, float | None],
) -> tuple[tuple[int, ...], tuple[int, ...], int, dict[str, float]]:
    """(sizes, seeds, records, the `given` settings, PRESETS for those left None), cut down
    when `quick`; a UserError for an empty or too small sweep."""
    preset = PRESETS["random" if env == "random" else "episodic"]
    chosen = {name: preset[name] if value is None else value for name, value in given.items()}
    if quick:
        sizes, seeds, records = QUICK_SIZES, tuple(seeds)[:2], 20
        chosen["t_max"] = min(chosen["t_max"], 5.0)
    if not sizes or min(sizes) < 2:
        raise UserError(f"--sizes: need widths N >= 2, got {list(sizes)}")
    if not seeds:
        raise UserError("--seeds: need at least one seed")
    t_max = chosen["t_max"]
    if t_max <= 0 or records < 1:
        raise UserError(f"actor-critic: need t_max > 0 and records >= 1, got {t_max}, {records}")
    return sizes, seeds, records, chosen


def _train_all(
    env: str,
    mdp: FiniteMDP,
    law: NetworkLaw,
    rates: Rates,
    sizes: tuple[int, ...],
    seeds: tuple[int, ...],
    times: np.ndarray,
    where: tuple[bool, int | None, str | None],
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per width, critic and actor outputs on every pair at `times`, each (seeds, times, pairs):
    a task per width and seed; `where` = (progress, workers, scheduler) (make_executor)."""
    progress, workers, scheduler = where
    runs = {f"N={n} seed={seed}": (n, seed) for n in sizes for seed in seeds}
    shared = (rates, law, times)
    tasks = [Task(key, train_seed, (env, mdp.gamma, *run, *shared)) for key, run in runs.items()]
    with progress_bar(progress) as bar:
        task = bar.add_task(f"{mdp.name}: trained (N, seed)", total=len(tasks))
        done = map_tasks(tasks, workers, scheduler, lambda outcome: bar.advance(task))
    outputs = dict(zip(runs.values(), done, strict=True))
    return {
        n: tuple(np.stack([outputs[n, seed][i] for seed in seeds]) for i in (0, 1)) for n in sizes
    }


def _compare(
    mdp: FiniteMDP,
    law: NetworkLaw,
    rates: Rates,
    seeds: tuple[int, ...],
    times: np.ndarray,
    trained: dict[int, tuple[np.ndarray, np.ndarray]],
) -> tuple[pd.DataFrame, dict[int, np.ndarray], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Follow the ODE from each run's start: the metrics table (a row per width, seed and
    time), per width the sup over times of the distance to the ODE (seeds,) and the (network,
    ODE) metrics, each (seeds, times, 4)."""
    tables = exact.Tables.of(mdp)
    critic_kernel = kernel(mdp.n_pairs, law)
    field = vector_field(tables, critic_kernel, critic_kernel, rates)
    metrics = _policy_metrics(tables, rates.eta, rates.restart)
    rows, distances, curves = [], {}, {}
    for width, (q_net, p_net) in trained.items():
        q_ode, p_ode = _solve_from_starts(field, q_net, p_net, times)
        gap = np.maximum(np.abs(q_net - q_ode).max(-1), np.abs(p_net - p_ode).max(-1))
        distances[width] = gap.max(-1)  # (seeds,)
        net, ode = _evaluate(metrics, q_net, p_net), _evaluate(metrics, q_ode, p_ode)
        curves[width] = (net, ode)
        rows.extend(_rows(width, seeds, times, gap, net, ode))
    return pd.DataFrame(rows), distances, curves


def _solve_from_starts(
    field: Any, q_net: np.ndarray, p_net: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ODE solved from each seed's initial network outputs: (Q, P), each (seeds, times,
    pairs) like the network's."""
    solved = [solve(field, q_net[s, 0], p_net[s, 0], times) for s in range(len(q_net))]
    return np.stack([q for q, _ in solved]), np.stack([p for _, p in solved])


def _evaluate(metrics: Any, q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """`_policy_metrics` of critic outputs and actor logits (seeds, times, pairs) ->
    (seeds, times, 4)."""
    seeds, times, pairs = q.shape
    values = metrics(q.reshape(-1, pairs), p.reshape(-1, pairs))
    return np.asarray(values).reshape(seeds, times, -1)


def _rows(
    width: int,
    seeds: tuple[int, ...],
    times: np.ndarray,
    gap: np.ndarray,
    net: np.ndarray,
    ode: np.ndarray,
) -> list[dict[str, Any]]:
    """Rows of the metrics table for one width: gap (seeds, times), net and ode (seeds,
    times, 4) from `_evaluate`."""
    return [
        {
            "N": width,
            "seed": seed,
            "t": t,
            "step": round(t * width),
            "ode_distance": gap[s, i],
            "critic_error": net[s, i, 0],
            "critic_sup_error": net[s, i, 1],
            "objective": net[s, i, 2],
            "gradient_norm": net[s, i, 3],
            "ode_critic_error": ode[s, i, 0],
            "ode_objective": ode[s, i, 2],
            "ode_gradient_norm": ode[s, i, 3],
        }
        for s, seed in enumerate(seeds)
        for i, t in enumerate(times)
    ]


def _summary(
    env: str,
    mdp: FiniteMDP,
    sweep: dict[str, Any],
    config: dict[str, Any],
    table: pd.DataFrame,
    distances: dict[int, np.ndarray],
) -> dict[str, Any]:
    """summary.json: the settings, the mean distance to the ODE per width and its log-log
    slope, the metrics at the first and last times for the widest network, and the optima.
    `sweep` holds sizes, seeds and quick."""
    mean_distance = {n: float(d.mean()) for n, d in distances.items()}
    return {
        "experiment": "actor-critic",
        "note": LABEL,
        "env": env,
        "mdp": mdp.name,
        "states": mdp.n_states,
        "actions": mdp.n_actions,
        **sweep,
        "config": config,
        "ode_distance": {str(n): d for n, d in mean_distance.items()},
        "ode_distance_per_seed": {str(n): d.tolist() for n, d in distances.items()},
        "ode_distance_slope": loglog_slope(list(mean_distance), list(mean_distance.values())),
        **_ends(table[table["N"] == max(sweep["sizes"])], config["t_max"]),
        "optimal_objective": exact.optimal_objective(mdp),
        "optimal_objective_eta_greedy": exact.optimal_objective(mdp, config["eta"]),
        "versions": versions(),
    }


def train_seed(
    env: str,
    gamma: float,
    width: int,
    seed: int,
    rates: Rates,
    law: NetworkLaw,
    times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One task: critic and actor of width N from `seed` trained online up to times[-1] (in
    float64); their outputs on every pair at `times`, each (times, pairs)."""
    with jax.enable_x64(True):
        tables = _tables(env, gamma)
        runner = _runner(env, gamma, width, rates)
        key = jax.random.PRNGKey(seed)[None]  # a batch of one agent: the runner's shape
        states = jax.vmap(lambda k: init_agent(k, tables, width, law))(key)
        states, q0, p0 = runner(states, 0)
        q_seen, p_seen = [np.asarray(q0[0])], [np.asarray(p0[0])]
        steps_done = 0
        for t in times[1:]:
            steps = round(t * width) - steps_done
            states, q, p = runner(states, steps)
            steps_done += steps
            q_seen.append(np.asarray(q[0]))
            p_seen.append(np.asarray(p[0]))
    return np.stack(q_seen), np.stack(p_seen)


@functools.lru_cache(maxsize=8)
def _tables(env: str, gamma: float) -> exact.Tables:
    """The MDP's tables, made once per process (float64)."""
    with jax.enable_x64(True):
        return exact.Tables.of(make_mdp(env, gamma))


@functools.lru_cache(maxsize=8)
def _runner(env: str, gamma: float, width: int, rates: Rates) -> Any:
    """make_runner for the MDP and width, made (and compiled) once per process."""
    return make_runner(_tables(env, gamma), width, rates)


def _ends(runs: pd.DataFrame, t_last: float) -> dict[str, float]:
    """Means over seeds at t = 0 ("_first") and at the last time ("_last") of the metrics."""
    ends = {}
    for name in ("critic_error", "critic_sup_error", "objective", "gradient_norm"):
        ends[f"{name}_first"] = float(runs[runs["t"] == 0][name].mean())
        ends[f"{name}_last"] = float(runs[runs["t"] == t_last][name].mean())
    return ends


def _plot_distance(path: Path, distances: dict[int, np.ndarray], slope: float | None, name: str):
    fig, ax = plt.subplots(figsize=(5.5, 4))
    sizes = np.array(list(distances))
    for s in range(len(next(iter(distances.values())))):
        ax.plot(sizes, [distances[n][s] for n in sizes], "o", color="0.6", ms=4)
    mean = np.array([distances[n].mean() for n in sizes])
    ax.plot(sizes, mean, "o-", label=f"mean over seeds (slope {slope:.2f})" if slope else "mean")
    ax.plot(sizes, mean[0] * (sizes / sizes[0]) ** -0.5, "k--", lw=1, label="N^(-1/2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden units N")
    ax.set_ylabel("sup_t,z |network - ODE| (Q and P)")
    ax.set_title(f"{name}: network vs limit ODE\n(project's reconstruction)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _plot_curves(path: Path, curves, times: np.ndarray, summary: dict[str, Any]) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    shown = (0, 2, 3)  # critic error, objective, |grad J| of `_evaluate`
    for width, (net, _) in curves.items():
        for ax, column in zip(axes, shown, strict=True):
            ax.plot(times, net[:, :, column].mean(0), label=f"N={width}")
    for ax, column in zip(axes, shown, strict=True):
        ax.plot(times, curves[max(curves)][1][:, :, column].mean(0), "k--", label="ODE")
    axes[1].axhline(summary["optimal_objective"], color="g", lw=1, label="optimum (DP)")
    axes[1].axhline(
        summary["optimal_objective_eta_greedy"], color="g", ls=":", lw=1, label="best eta-greedy"
    )
    titles = ("critic error to exact Q (nu-weighted RMS)", "objective J", "|exact grad J|")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("t = k / N")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{summary['mdp']}: online actor-critic, mean over seeds", fontsize=10)
    save_figure(fig, path)


def table_text(summary: dict[str, Any]) -> str:
    """Per N the sup distance to the ODE, its slope, and the critic, objective and gradient."""
    rows = [{"N": n, "distance": d} for n, d in summary["ode_distance"].items()]
    text = render_table(rows, [Column("N"), Column("distance", "sup |net - ODE|", ".4f")])
    slope = summary["ode_distance_slope"]
    return "\n".join(
        [
            text,
            f"slope {slope:.3f}" if slope is not None else "slope n/a",
            f"critic error {summary['critic_error_first']:.4f} -> "
            f"{summary['critic_error_last']:.4f}; objective {summary['objective_first']:.4f} -> "
            f"{summary['objective_last']:.4f} (optimum {summary['optimal_objective']:.4f}, best "
            f"eta-greedy {summary['optimal_objective_eta_greedy']:.4f}); |grad J| "
            f"{summary['gradient_norm_first']:.4f} -> {summary['gradient_norm_last']:.4f}",
        ]
    )
