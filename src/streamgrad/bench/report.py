"""The benchmark's result as text and as a figure: a markdown report (for a file), the same
tables as aligned plain text (for a terminal), both through `reporting.render_table`, and a
log-log plot of time per step against N.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from streamgrad.reporting import Column, render_table, save_figure

RUN_COLUMNS = (
    Column("cell", align="left"),
    Column("algorithm", align="left"),
    Column("N", spec=","),
    Column("P", spec=","),
    Column("median_us", "median µs/step", ",.1f"),
    Column("min_us", "min µs/step", ",.1f"),
    Column("steps_per_second", "steps/s", ",.0f"),
    Column("product_us", "(N×N)@(N×P) µs", ",.1f"),
    Column("product_transposed_us", "(P×N)@(N×N) µs", ",.1f"),
    Column("ratio", "step / product", ",.2f"),
)
SLOPE_COLUMNS = (
    Column("cell", align="left"),
    Column("algorithm", align="left"),
    Column("slope", "slope of log time vs log P", ",.2f"),
    Column("sizes", "sizes N fitted", align="left"),
)


def benchmark_table(result: dict[str, Any], *, markdown: bool = True) -> str:
    """A summary, the per-run table, the fitted slopes and the skipped runs of a
    `run_benchmark` result: markdown (for a file), or with markdown=False aligned plain text
    with titled tables (for a terminal)."""
    transposed = {(p["cell"], p["N"]): p["product_transposed_us"] for p in result["products"]}
    runs = [
        {**row, "product_transposed_us": transposed.get((row["cell"], row["N"]))}
        for row in result["runs"]
    ]
    slopes = [
        {**slope, "sizes": ", ".join(f"{n:,}" for n in slope["fit_sizes"])}
        for slope in result["slopes"]
    ]
    run_title, slope_title = (None, None) if markdown else ("online learner step", "fitted slopes")
    tables = [
        render_table(runs, RUN_COLUMNS, title=run_title, markdown=markdown),
        render_table(slopes, SLOPE_COLUMNS, title=slope_title, markdown=markdown),
    ]
    summary = _summary_lines(result)
    skipped = [_skipped(item) for item in result["skipped"]]
    if markdown:
        summary = [f"- {line}" for line in summary]
        skipped = ["Skipped:", "", *(f"- {line}" for line in skipped)] if skipped else []
    else:
        skipped = [f"skipped {line}" for line in skipped]
    parts = ["\n".join(summary), *tables] + (["\n".join(skipped)] if skipped else [])
    return "\n\n".join(parts) + "\n"


def _skipped(item: dict[str, Any]) -> str:
    """'cell algorithm N=1,000: reason' (no N where the whole series was skipped)."""
    size = f" N={item['N']:,}" if "N" in item else ""
    return f"{item['cell']} {item['algorithm']}{size}: {item['reason']}"


def _summary_lines(result: dict[str, Any]) -> list[str]:
    machine, gemm = result["machine"], result["gemm"]
    load = ", ".join(f"{x:.2f}" for x in machine["load_average_start"])
    load_end = ", ".join(f"{x:.2f}" for x in machine["load_average_end"])
    return [
        f"{result['date']}: {machine['cpu']}, {machine['cpu_count']} CPUs, ran on cores "
        f"{machine['usable_cores']}, device {machine['device']}, "
        f"{result['settings']['dtype']}, jax {result['versions']['jax']}",
        f"load average (1, 5, 15 min): {load} at the start, {load_end} at the end",
        f"GEMM {gemm['size']}^3: {gemm['gflops']:.1f} GFLOP/s",
    ]


def plot_benchmark(result: dict[str, Any], path: str | Path) -> Path:
    """PNG: microseconds per step against N (log-log), one panel per cell, one line per
    algorithm, and the dense-RTRL product (N x N) @ (N x P) as a dashed reference."""
    cells = list(dict.fromkeys(row["cell"] for row in result["runs"])) or ["(no runs)"]
    columns = min(2, len(cells))
    rows_of_panels = math.ceil(len(cells) / columns)
    figure = Figure(figsize=(6.5 * columns, 4.6 * rows_of_panels), layout="constrained")
    axes = figure.subplots(rows_of_panels, columns, squeeze=False).ravel()
    for ax, cell in zip(axes, cells, strict=False):
        rows = [row for row in result["runs"] if row["cell"] == cell]
        for algorithm in dict.fromkeys(row["algorithm"] for row in rows):
            points = sorted((r["N"], r["median_us"]) for r in rows if r["algorithm"] == algorithm)
            ax.plot(*zip(*points, strict=True), marker="o", lw=1.3, label=algorithm)
        product = sorted((p["N"], p["product_us"]) for p in result["products"] if p["cell"] == cell)
        if product:
            ax.plot(*zip(*product, strict=True), "k--", marker="x", lw=1.5, label="(N×N)@(N×P)")
        sizes = sorted({row["N"] for row in rows})
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("hidden size N")
        ax.set_ylabel("µs per learner step")
        ax.set_title(cell)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    for ax in axes[len(cells) :]:
        ax.set_visible(False)
    machine = result["machine"]
    figure.suptitle(
        f"streamgrad online step, {result['settings']['dtype']}, cores {machine['usable_cores']}"
        f" ({result['date'][:10]}, load {machine['load_average_start'][0]:.2f})",
        fontsize=10,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, path)
    return path
