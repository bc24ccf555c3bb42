"""Recurrent online actor-critic on the T-maze: exact RTRL against TBPTT(tau) and a memoryless
agent (docs/theory.md section 3.6).

For each algorithm and seed, an actor and a critic on the same recurrent cell learn online
along one trajectory of T-maze episodes (`rl.recurrent`, `rl.tmaze`), one step at a time, with
no replay and no batch; seeds run side by side (`vmap`) in one jitted `lax.scan`, the maze's
dynamics included. Recorded: the success rate (episodes that end in the cue's arm / episodes
that end) in windows of `window` steps, against steps, per seed. The cue is seen only at the
first step, so success above 1/2 needs a memory of more than `corridor` steps: RTRL's gradient
reaches back to the cue; TBPTT(1, tau) with tau < corridor cuts it; the memoryless agent has
none. The default maze draws its distractors from 16 symbols, so that the write of the cue has
to be learned: with 2 symbols the write a random GRU makes at the first step stays decodable
under the distractors, and TBPTT learns to keep it without ever seeing the write
(docs/theory.md section 3.6, where both designs are measured).
"""

from __future__ import annotations

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
from streamgrad.reporting import Column, render_table, save_figure, versions, write_json
from streamgrad.rl.recurrent import AgentSpec, Transition, act, init_agent, learn, make_agent
from streamgrad.rl.tmaze import N_ACTIONS, MazeConfig, draw_symbol, maze_reset, maze_step

ALGOS = ("rtrl", "tbptt:1:3", "memoryless")
SEEDS = (0, 1, 2, 3, 4)
# --quick: a shorter corridor, two symbols, a smaller network, fewer steps and seeds (about a
# minute on 2 cores).
QUICK = {
    "corridor": 4,
    "steps": 8_000,
    "seeds": (0, 1),
    "hidden": 8,
    "window": 500,
    "symbols": 2,
    "lr": 2e-3,
}
TARGET = 0.95


def _select(flag: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)


def _runner(spec: AgentSpec, config: MazeConfig):
    """Jitted run(carries, steps) over a batch of seeds -> (carries, (done, success, reward)),
    each (seeds, steps). A carry is (agent state, maze state, observation, maze key)."""

    def step(carry: tuple, _: None) -> tuple[tuple, tuple]:
        agent, maze, obs, key = carry
        key, k_distractor, k_cue = jax.random.split(key, 3)
        action, agent = act(spec, agent, obs)
        distractor = draw_symbol(k_distractor, config.symbols)
        out = maze_step(config, maze, action, distractor)
        done = out.terminated | out.truncated
        transition = Transition(obs, action, out.reward, out.obs, out.terminated, done)
        agent, _ = learn(spec, agent, transition)
        fresh_maze, fresh_obs = maze_reset(config, jax.random.bernoulli(k_cue).astype(jnp.int32))
        maze = _select(done, fresh_maze, out.state)
        obs = jnp.where(done, fresh_obs, out.obs)
        return (agent, maze, obs, key), (done, out.success, out.reward)

    def run(carry: tuple, steps: int) -> tuple[tuple, tuple]:
        return jax.lax.scan(step, carry, None, length=steps)

    return jax.jit(jax.vmap(run, in_axes=(0, None)), static_argnums=1)


def _start(spec: AgentSpec, config: MazeConfig, seed: jax.Array) -> tuple:
    k_agent, k_maze, k_cue = jax.random.split(jax.random.PRNGKey(seed), 3)
    maze, obs = maze_reset(config, jax.random.bernoulli(k_cue).astype(jnp.int32))
    return init_agent(spec, k_agent), maze, obs, k_maze


def train_algorithm(
    algo: str,
    config: MazeConfig,
    seeds: tuple[int, ...],
    steps: int,
    window: int,
    agent_options: dict[str, Any],
    advance: Any = None,
) -> dict[str, np.ndarray]:
    """Train one algorithm on every seed: per window (seeds, windows) the episodes that ended,
    the successes among them and the summed reward. `advance()` is called after each window."""
    spec = make_agent(config.obs_size, N_ACTIONS, algo=algo, **agent_options)
    runner = _runner(spec, config)
    carries = jax.vmap(lambda seed: _start(spec, config, seed))(jnp.asarray(seeds))
    counts: dict[str, list[np.ndarray]] = {"episodes": [], "successes": [], "reward": []}
    for _ in range(steps // window):
        carries, (done, success, reward) = runner(carries, window)
        counts["episodes"].append(np.asarray(done).sum(1))
        counts["successes"].append(np.asarray(success).sum(1))
        counts["reward"].append(np.asarray(reward, np.float64).sum(1))
        if advance is not None:
            advance()
    return {name: np.stack(values, 1) for name, values in counts.items()}


def run(
    out: Path,
    *,
    corridor: int = 10,
    seeds: tuple[int, ...] = SEEDS,
    steps: int = 15_000,
    algos: tuple[str, ...] = ALGOS,
    hidden: int = 32,
    cell: str = "gru",
    lr: float = 1e-3,
    gamma: float = 0.95,
    eta: float = 0.05,
    schedule: str = "constant",
    window: int = 1_000,
    distractors: bool = True,
    symbols: int = 16,
    wrong_reward: float = 0.0,
    step_cost: float = 0.0,
    quick: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the study into `out` (summary.json, curves.csv, success.png); returns the summary.
    `quick` replaces corridor, steps, seeds, hidden, window, symbols and lr by QUICK."""
    if quick:
        corridor, steps, seeds, hidden, window, symbols, lr = (QUICK[k] for k in QUICK)
    if not seeds or not algos:
        raise UserError("--seeds and --algos: need at least one of each")
    if window < 1 or steps < window:
        raise UserError(f"--steps: need at least one window of {window} steps, got {steps}")
    config = MazeConfig(corridor, wrong_reward, step_cost, distractors=distractors, symbols=symbols)
    agent_options = {"hidden": hidden, "cell": cell, "lr": lr, "gamma": gamma, "eta": eta}
    agent_options["schedule"] = schedule
    for algo in algos:  # every option checked before any training
        make_agent(config.obs_size, N_ACTIONS, algo=algo, **agent_options)
    results = {}
    with progress_bar(progress) as bar:
        task = bar.add_task("T-maze", total=len(algos) * (steps // window))
        for algo in algos:
            bar.update(task, description=f"T-maze {corridor}: {algo}")
            results[algo] = train_algorithm(
                algo, config, tuple(seeds), steps, window, agent_options, lambda: bar.advance(task)
            )
    curves = _curves(results, seeds, window)
    curves.to_csv(out / "curves.csv", index=False)
    settings = {**agent_options, "window": window, "distractors": distractors, "symbols": symbols}
    settings.update(wrong_reward=wrong_reward, step_cost=step_cost, max_steps=config.limit)
    summary = _summary(results, corridor, seeds, steps, quick, settings)
    write_json(out / "summary.json", summary)
    _plot(out / "success.png", curves, summary)
    return summary


def _rates(counts: dict[str, np.ndarray]) -> np.ndarray:
    """Success rate per seed and window (NaN where no episode ended)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts["successes"] / np.where(counts["episodes"] > 0, counts["episodes"], np.nan)


def _curves(results: dict[str, dict], seeds: tuple[int, ...], window: int) -> pd.DataFrame:
    rows = []
    for algo, counts in results.items():
        rates = _rates(counts)
        for s, seed in enumerate(seeds):
            for w in range(rates.shape[1]):
                episodes = int(counts["episodes"][s, w])
                rows.append(
                    {
                        "algo": algo,
                        "seed": seed,
                        "steps": (w + 1) * window,
                        "episodes": episodes,
                        "success_rate": rates[s, w],
                        "mean_return": counts["reward"][s, w] / max(episodes, 1),
                    }
                )
    return pd.DataFrame(rows)


def _summary(
    results: dict[str, dict],
    corridor: int,
    seeds: tuple[int, ...],
    steps: int,
    quick: bool,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Success over the last 10% of the steps (at least one window) per algorithm: mean over
    seeds and per seed; per seed the first step whose window reaches TARGET."""
    last, per_seed, first_target = {}, {}, {}
    for algo, counts in results.items():
        tail = max(1, counts["episodes"].shape[1] // 10)
        successes = counts["successes"][:, -tail:].sum(1)
        rates = successes / np.maximum(counts["episodes"][:, -tail:].sum(1), 1)
        last[algo], per_seed[algo] = float(rates.mean()), rates.tolist()
        reached = _rates(counts) >= TARGET
        window = settings["window"]
        first_target[algo] = [
            int((np.argmax(row) + 1) * window) if row.any() else None for row in reached
        ]
    return {
        "experiment": "recurrent-actor-critic",
        "task": f"T-maze, corridor {corridor}"
        + (f", distractors from {settings['symbols']} symbols" if settings["distractors"] else ""),
        "corridor": corridor,
        "steps": steps,
        "seeds": list(seeds),
        "algos": list(results),
        "quick": quick,
        "config": settings,
        "last_window_steps": max(1, (steps // settings["window"]) // 10) * settings["window"],
        "success_last": last,
        "success_last_per_seed": per_seed,
        "steps_to_target": first_target,
        "target": TARGET,
        "versions": versions(),
    }


def _plot(path: Path, curves: pd.DataFrame, summary: dict[str, Any]) -> None:
    """Success rate against steps: mean over seeds, min-max band."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for algo, frame in curves.groupby("algo", sort=False):
        table = frame.pivot(index="steps", columns="seed", values="success_rate")
        ax.plot(table.index, table.mean(axis=1), label=f"{algo} ({len(table.columns)} seeds)")
        ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), alpha=0.2)
    ax.axhline(0.5, color="0.4", ls=":", lw=1, label="guessing (1/2)")
    ax.axhline(TARGET, color="g", ls="--", lw=1, label=f"{TARGET:.0%}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("online steps")
    ax.set_ylabel(f"success rate (windows of {summary['config']['window']} steps)")
    ax.set_title(f"{summary['task']}\nrecurrent online actor-critic, band = min-max over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def table_text(summary: dict[str, Any]) -> str:
    """Per algorithm: success over the last window (mean, per seed) and steps to TARGET."""
    rows = [
        {
            "algo": algo,
            "success": summary["success_last"][algo],
            "per_seed": " ".join(f"{r:.2f}" for r in summary["success_last_per_seed"][algo]),
            "reached": " ".join(str(s or "-") for s in summary["steps_to_target"][algo]),
        }
        for algo in summary["algos"]
    ]
    columns = [
        Column("algo", align="left"),
        Column("success", f"success (last {summary['last_window_steps']} steps)", ".3f"),
        Column("per_seed", "per seed", align="left"),
        Column("reached", f"steps to {summary['target']:.0%} per seed", align="left"),
    ]
    return render_table(rows, columns, title=summary["task"])
