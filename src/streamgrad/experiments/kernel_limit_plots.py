"""Plots of the kernel-limit experiments (kernel_limit_hidden, kernel_limit_training): small
PNGs, every title labelled as the project's reconstruction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.reporting import loglog_slope, save_figure

HIDDEN_LABEL = "project's reconstruction, docs/theory.md section 2.2"
TRAINING_LABEL = "project's reconstruction, docs/theory.md section 2.3-2.4"


def plot_histograms(path: Path, results: list[dict[str, Any]]) -> None:
    fig, axes = plt.subplots(
        1, len(results), figsize=(3.2 * len(results), 3.0), squeeze=False, sharey=True
    )
    for ax, result in zip(axes[0], results, strict=True):
        centers = 0.5 * (result["edges"][1:] + result["edges"][:-1])
        for density in result["densities"]:
            ax.plot(centers, density, color="0.6", lw=0.5, alpha=0.5)
        ax.plot(centers, result["densities"].mean(axis=0), color="red", lw=1.2, label="pooled")
        ax.plot(result["fine"], result["limit_density"], "k--", lw=1.0, label="limit")
        ax.set_title(f"N = {result['N']:,} ({result['paths']} paths)", fontsize=9)
        ax.set_xlabel("hidden unit at the last step")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Untrained hidden units vs the limit law ({HIDDEN_LABEL})", fontsize=9)
    save_figure(fig, path, dpi=90)


def plot_time_averages(path: Path, curves: pd.DataFrame) -> None:
    sizes = sorted(curves["N"].unique())
    fig, axes = plt.subplots(
        2, len(sizes), figsize=(3.2 * len(sizes), 5.0), squeeze=False, sharey="row"
    )
    for column, n in enumerate(sizes):
        for row, p in enumerate((1, 2)):
            ax = axes[row][column]
            part = curves[(curves["N"] == n) & (curves["p"] == p)]
            ax.fill_between(
                part["k"], part["min"], part["max"], color="0.7", label="min/max over paths"
            )
            ax.plot(part["k"], part["mean"], color="red", lw=1.0, label="mean over paths")
            ax.plot(part["k"], part["limit_mean"], "k--", lw=0.8, label="limit (mean)")
            ax.set_xscale("log")
            ax.set_title(f"N = {n:,}, p = {p}", fontsize=9)
            if row == 1:
                ax.set_xlabel("k")
        axes[0][0].set_ylabel("(1/k) sum_j m^1_j")
        axes[1][0].set_ylabel("(1/k) sum_j m^2_j")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Time averages of the hidden units' moments ({HIDDEN_LABEL})", fontsize=9)
    save_figure(fig, path, dpi=90)


def plot_hidden_convergence(path: Path, per_size: pd.DataFrame, summary: dict[str, Any]) -> None:
    sizes = np.array(per_size.index, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    for column, label, slope in (
        ("memory_error", "sup_k |u^N_k - u*_k|", summary["memory_error_slope"]),
        ("ks", "KS distance, last step", summary["ks_slope"]),
        ("band_width_1", "band width, p = 1", None),
        ("band_width_2", "band width, p = 2", None),
    ):
        values = per_size[column].to_numpy()
        if np.all(values > 0):
            text = f" (slope {slope:.2f})" if slope is not None else ""
            ax.plot(sizes, values, "o-", label=label + text)
    ax.plot(
        sizes,
        sizes**-0.5 * per_size["memory_error"].iloc[0] * sizes[0] ** 0.5,
        "k:",
        label="N^(-1/2)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N")
    ax.set_title("Untrained network vs its limit (project's reconstruction)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=90)


def plot_training_convergence(path: Path, table: pd.DataFrame, summary: dict[str, Any]) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    labels = {
        "ntk_error": "NTK at init vs limit (rel. Frobenius)",
        "ntk_drift": "NTK drift during training",
        "memory_share": "memory paths' share of the NTK",
        "b_share": "B's share of the NTK",
        "ode_distance": "sup |f^N_t - f^ODE_t|",
    }
    for name, label in labels.items():
        sizes = np.array(summary["sizes"], float)
        mean = np.array([summary[name][str(int(n))] for n in sizes])
        slope = loglog_slope(list(sizes), list(mean))
        ax.plot(sizes, mean, "o-", label=f"{label} (slope {slope:.2f})" if slope else label)
        ax.scatter(table["N"], table[name], s=6, color=ax.lines[-1].get_color(), alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N")
    ax.set_title(f"Trained network vs the kernel limit ({TRAINING_LABEL})", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=90)


def plot_outputs(path: Path, trajectories: pd.DataFrame) -> None:
    """Network outputs (solid) and the kernel ODE (dashed) on 4 evaluation histories, seed 0,
    for the smallest and the largest N."""
    sizes = sorted(trajectories["N"].unique())
    chosen = [sizes[0], sizes[-1]] if len(sizes) > 1 else sizes
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.5 * len(chosen), 3.5), squeeze=False)
    for ax, n in zip(axes[0], chosen, strict=True):
        part = trajectories[(trajectories["N"] == n) & (trajectories["seed"] == 0)]
        for index in range(4):
            one = part[part["history"] == index]
            line = ax.plot(one["t"], one["network"], lw=1.2)[0]
            ax.plot(one["t"], one["ode"], "--", color=line.get_color(), lw=1.0)
        ax.set_title(f"N = {n:,}: network (solid) vs kernel ODE (dashed)", fontsize=8)
        ax.set_xlabel("t = k / N")
    axes[0][0].set_ylabel("output on an evaluation history")
    save_figure(fig, path, dpi=90)
