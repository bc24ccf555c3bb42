"""The figures of `streamgrad experiment rtrl-convergence` (rtrl_convergence.py): |grad L| and
L against the training step, and TBPTT's bias against tau."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.reporting import save_figure


def plot_convergence(path: Path, table: pd.DataFrame, specs: list[str]) -> None:
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


def plot_bias(path: Path, bias: pd.DataFrame, rate: float) -> None:
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
