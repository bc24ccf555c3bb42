"""With theta frozen, (data, hidden state, sensitivities) has a unique stationary law.

For each seed (its own initial parameters theta and data): chains of (S_k, J_k) started from
different random (S_0, J_0) on one data path of the Markov-modulated AR process merge
geometrically (`theory.coupling`; fitted rate against the cell's bound G sup|sigma'|), and the
empirical laws of (S_k, projections of J_k) over windows of two independent paths, and
across many paths at a fixed step, converge in Wasserstein-1 (`theory.window_laws`).
Writes coupling.csv, windows.csv, ensemble.csv, summary.json, coupling.png and laws.png.
Each seed is one task of the sweep executor (`--workers`, `--scheduler`; sweep/executor.py);
a seed's numbers depend on nothing else, so they are the same wherever the tasks run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.experiments.rtrl_convergence import PROCESS, RECURRENT_MEAN, network
from streamgrad.progress import progress_bar
from streamgrad.reporting import Column, render_table, save_figure, versions, write_json
from streamgrad.sweep.executor import Task, map_tasks
from streamgrad.theory.fixed_point import contraction_bound, coupling, window_laws

DEFAULT = {"chain_steps": 400, "law_steps": 20_000, "paths": 64}
QUICK = {"chain_steps": 200, "law_steps": 4_000, "paths": 16}


def run(
    out: Path,
    *,
    quick: bool = False,
    seeds: int = 5,
    coupling_kind: str = "shared",
    hidden: int = 32,
    starts: int = 8,
    burn_in: int = 500,
    progress: bool = True,
    workers: int | None = 0,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Coupling and window laws for `seeds` parameter draws (float64), one executor task each
    on `make_executor(workers, scheduler)` (default: this process); see module doc."""
    size = QUICK if quick else DEFAULT
    bound = contraction_bound(network(coupling_kind, hidden))
    tasks = [
        Task(f"seed {seed}", study_seed, (coupling_kind, hidden, seed, size, starts, burn_in))
        for seed in range(seeds)
    ]
    with progress_bar(progress) as bar:
        task = bar.add_task("coupling and window laws", total=seeds)
        results = map_tasks(tasks, workers, scheduler, lambda outcome: bar.advance(task))
    chains, windows, ensembles, per_seed = (list(part) for part in zip(*results, strict=True))
    chain_table, window_table = pd.concat(chains), pd.concat(windows)
    ensemble_table, seeds_table = pd.concat(ensembles), pd.DataFrame(per_seed)
    chain_table.to_csv(out / "coupling.csv", index=False)
    window_table.to_csv(out / "windows.csv", index=False)
    ensemble_table.to_csv(out / "ensemble.csv", index=False)
    _plot_coupling(out / "coupling.png", chain_table, seeds_table, bound)
    _plot_laws(out / "laws.png", window_table, ensemble_table)
    summary = {
        "experiment": "rtrl-fixed-point",
        "quick": quick,
        "seeds": seeds,
        "process": PROCESS.settings(),
        "model": {
            "cell": "meanfield",
            "coupling": coupling_kind,
            "hidden": hidden,
            "recurrent_mean": RECURRENT_MEAN,
            "dtype": "float64",
        },
        "starts": starts,
        **size,
        "burn_in": burn_in,
        "merge_rate": float(seeds_table.merge_rate.max()),
        "contraction_bound": bound,
        "w1_window_slope": float(seeds_table.w1_window_slope.mean()),
        "per_seed": per_seed,
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    return summary


def study_seed(
    coupling_kind: str, hidden: int, seed: int, size: dict[str, int], starts: int, burn_in: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """One task: for the parameters drawn with `seed` (float64), the coupling distances
    against k, W1 against the window length and against the step k (`window_laws`), and this
    seed's row of summary.json (fitted rates, first and last W1)."""
    model = network(coupling_kind, hidden)
    with jax.enable_x64(True):  # distances down to 1e-15 need float64
        params = model.init(jax.random.PRNGKey(seed), jnp.float64)
        chain_path = PROCESS(size["chain_steps"], seed=seed)
        result = coupling(model, params, chain_path, starts, seed=seed)
        laws = window_laws(
            model,
            params,
            PROCESS,
            steps=size["law_steps"],
            burn_in=burn_in,
            paths=size["paths"],
            seed=1000 * (seed + 1),
        )
    chain = pd.DataFrame(
        {
            "seed": seed,
            "step": np.arange(len(result.hidden_distance)),
            "hidden_distance": result.hidden_distance,
            "sensitivity_distance": result.sensitivity_distance,
        }
    )
    window = pd.DataFrame({"seed": seed, "window": laws.window_lengths, "w1": laws.window_w1})
    ensemble = pd.DataFrame(
        {"seed": seed, "step": laws.steps + 1, "w1": laws.ensemble_w1, "floor": laws.floor}
    )
    row = {
        "seed": seed,
        "hidden_rate": result.hidden_rate,
        "sensitivity_rate": result.sensitivity_rate,
        "merge_rate": result.merge_rate,
        "w1_window_slope": laws.window_slope,
        "w1_window_first": float(laws.window_w1[0]),
        "w1_window_last": float(laws.window_w1[-1]),
        "w1_ensemble_first": float(laws.ensemble_w1[0]),
        "w1_ensemble_last": float(laws.ensemble_w1[-1]),
        "w1_floor": laws.floor,
    }
    return chain, window, ensemble, row


def _plot_coupling(
    path: Path, chains: pd.DataFrame, seeds: pd.DataFrame, bound: float | None
) -> None:
    """log distance of the chains against k, per seed, with the fitted rate and the bound."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for (seed, rows), color in zip(
        chains.groupby("seed"),
        plt.cm.viridis(np.linspace(0, 0.9, chains.seed.nunique())),
        strict=True,
    ):
        fit = seeds[seeds.seed == seed].iloc[0]
        for ax, column, rate in (
            (axes[0], "hidden_distance", fit.hidden_rate),
            (axes[1], "sensitivity_distance", fit.sensitivity_rate),
        ):
            positive = rows[rows[column] > 0]
            ax.semilogy(
                positive.step,
                positive[column],
                color=color,
                lw=1,
                label=f"seed {seed}: r = {rate:.3f}",
            )
    for ax, column in zip(axes, ("hidden_distance", "sensitivity_distance"), strict=True):
        first = chains[chains.step == 0][column].max()
        k = np.arange(chains.step.max() + 1)
        if bound is not None:
            ax.semilogy(k, first * bound**k, "k--", lw=1, label=f"bound G sup|sigma'| = {bound}")
        merged = chains.step[chains[column] > 1e-15].max()  # the rest is rounding or 0
        ax.set(xlabel="step k", ylim=(1e-16, None), xlim=(0, 1.5 * merged + 5))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set(ylabel="max distance to chain 0", title="hidden state S_k")
    axes[1].set(title="sensitivities J_k (RTRL state)")
    save_figure(fig, path)


def _plot_laws(path: Path, windows: pd.DataFrame, ensemble: pd.DataFrame) -> None:
    """W1 between windows of independent paths against window length, and W1 between the law
    across paths at step k and the stationary law, with the sampling floor."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    mean_w = windows.groupby("window").w1.agg(["mean", "std"])
    n = mean_w.index.to_numpy()
    axes[0].errorbar(
        n,
        mean_w["mean"],
        yerr=mean_w["std"],
        marker="o",
        capsize=3,
        label="W1(window of path a, window of path b)",
    )
    axes[0].plot(n, mean_w["mean"].iloc[0] * (n / n[0]) ** -0.5, "k:", label="n^(-1/2)")
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="window length n",
        ylabel="W1",
        title="laws over time windows",
    )
    mean_e = ensemble.groupby("step")[["w1", "floor"]].mean()
    axes[1].loglog(
        mean_e.index, mean_e.w1, marker="o", ms=3, label="W1(law across paths at k, stationary law)"
    )
    axes[1].plot(mean_e.index, mean_e.floor, "k--", lw=1, label="sampling floor")
    axes[1].set(xlabel="step k", title="laws across paths, from S_0 = (1, ..., 1)")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def table_text(summary: dict[str, Any]) -> str:
    """Per seed: merge rates of S and J, W1 between windows; then the summary numbers."""
    columns = [
        Column("seed"),
        Column("hidden_rate", "rate S", ".4f"),
        Column("sensitivity_rate", "rate J", ".4f"),
        Column("w1_window_slope", "W1 slope", ".3f"),
        Column("w1_window_first", "W1 first", ".4f"),
        Column("w1_window_last", "W1 last", ".4f"),
    ]
    footer = (
        f"merge_rate {summary['merge_rate']:.4f}  contraction_bound "
        f"{summary['contraction_bound']}  w1_window_slope {summary['w1_window_slope']:.3f}"
    )
    return render_table(summary["per_seed"], columns) + "\n" + footer
