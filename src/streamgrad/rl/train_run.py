"""`streamgrad rl train`: one `OnlineActorCritic` run in a run folder, resumable. The folder:

- out/run.json          the options (a `--resume` must repeat them)
- out/checkpoints/      the agent, saved every `checkpoint_every` steps and at the end
- out/metrics.csv       per chunk: steps, episodes, mean return, success rate
- out/summary.json      options, totals, the last 10% of the chunks, steps/s, versions
- out/learning.png      mean return and success rate against steps
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.checkpoint import latest_step
from streamgrad.errors import UserError
from streamgrad.reporting import save_figure
from streamgrad.rl.trainer import HISTORY_COLUMNS, OnlineActorCritic
from streamgrad.runs import RunFolder

AGENT_OPTIONS = ("hidden", "cell", "algo", "optimizer", "lr", "gamma", "eta", "seed", "log_every")


def train_run(
    out: Path,
    options: dict[str, Any],
    *,
    resume: bool = False,
    force: bool = False,
    checkpoint_every: int = 10_000,
    progress: bool = False,
) -> dict[str, Any]:
    """Train on `options["env"]` for `options["steps"]` online steps into the folder `out`
    (module docstring); with `resume`, continue the run there from its last checkpoint.
    `options` holds env, steps and any of AGENT_OPTIONS (None: the trainer's default)."""
    if options.get("steps") is None or options["steps"] < 1:
        raise UserError(f"--steps: need at least 1 step, got {options.get('steps')}")
    if checkpoint_every < 1:
        raise UserError(f"checkpoint_every: need >= 1, got {checkpoint_every}")
    agent_options = {k: options[k] for k in AGENT_OPTIONS if options.get(k) is not None}
    env = options.get("env")
    if not env:
        raise UserError("rl train needs --env")
    record = {"command": "rl train", **options}
    if resume:
        folder = RunFolder.open(out, record, resume=True)
        saved = latest_step(folder.checkpoints) is not None
        agent = OnlineActorCritic.load(folder.checkpoints) if saved else None
    else:
        agent = OnlineActorCritic(env, **agent_options)  # checks the options first
        folder = RunFolder.start(out, record, force=force)
    agent = agent or OnlineActorCritic(env, **agent_options)
    started, first = time.perf_counter(), agent.num_timesteps
    while agent.num_timesteps < options["steps"]:
        chunk = min(checkpoint_every, options["steps"] - agent.num_timesteps)
        agent.learn(chunk, progress_bar=progress)
        agent.save(folder.checkpoints)
    seconds = time.perf_counter() - started
    metrics = pd.DataFrame(agent.history, columns=list(HISTORY_COLUMNS))
    metrics.to_csv(folder.path / "metrics.csv", index=False)
    _plot(folder.path / "learning.png", metrics, agent.config)
    steps_per_second = (agent.num_timesteps - first) / seconds if seconds > 0 else None
    return folder.write_summary(
        {
            "command": "rl train",
            "config": agent.config,
            "steps": agent.num_timesteps,
            "episodes": agent.episodes,
            **_last(metrics),
            "steps_per_second": steps_per_second,
            "resumed": resume,
        }
    )


def _last(metrics: pd.DataFrame) -> dict[str, float | None]:
    """Episode-weighted mean return and success rate over the last 10% of the chunks."""
    tail = metrics.tail(max(1, len(metrics) // 10))
    episodes = np.diff(np.concatenate([[0], metrics["episodes"].to_numpy()]))[-len(tail) :]
    if len(tail) == 0 or episodes.sum() == 0:
        return {"mean_return_last": None, "success_rate_last": None}
    weights = episodes / episodes.sum()
    return {
        "mean_return_last": float(np.nansum(tail["mean_return"].to_numpy() * weights)),
        "success_rate_last": float(np.nansum(tail["success_rate"].to_numpy() * weights)),
    }


def _plot(path: Path, metrics: pd.DataFrame, config: dict[str, Any]) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, column, label in zip(
        axes, ("mean_return", "success_rate"), ("mean return", "success rate"), strict=True
    ):
        ax.plot(metrics["steps"], metrics[column], marker=".", lw=1)
        ax.set_xlabel("online steps")
        ax.set_ylabel(f"{label} (episodes ending in each chunk)")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"{config['env']}: online actor-critic, {config['cell']} N={config['hidden']}, "
        f"{config['algo']}",
        fontsize=10,
    )
    save_figure(fig, path)
