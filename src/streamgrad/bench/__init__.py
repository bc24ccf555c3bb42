"""Benchmark: the time of one online learner step, against the product it cannot beat.

For each cell x algorithm x hidden size N (input size d = 1, MSE loss, float32 by default):
the whole learner step, the dense-RTRL product (N x N) @ (N x P) that no exact dense RTRL step
can beat, one large GEMM, and the slope of log time against log P per series.

Modules: `measure` (the timing primitives and what exactly each one times), `suite` (the grid,
the skip rules and the machine context, `run_benchmark`), `report` (markdown and plain-text
tables, the plot), `pinning` (CPU pinning before JAX starts).

One core: `bench_main` pins first thing when `cores` is given, so a command line should parse
its options and call `bench_main` without touching JAX before (importing this package does not
start it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from streamgrad.bench.measure import fit_slope
from streamgrad.bench.pinning import pin_to_core
from streamgrad.bench.report import benchmark_table, plot_benchmark
from streamgrad.bench.suite import run_benchmark, write_benchmark_json

__all__ = [
    "bench_main",
    "benchmark_table",
    "fit_slope",
    "pin_to_core",
    "plot_benchmark",
    "run_benchmark",
    "write_benchmark_json",
]


def bench_main(
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    cores: int | Sequence[int] | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Everything `streamgrad bench` does: pin to `cores` (first, before JAX starts), run the
    default benchmark (or the quick one), print progress and the tables, and write the JSON
    and the plot when paths are given. Returns the result dict."""
    if cores is not None:
        pin_to_core(cores)
    progress = Console(stderr=True, highlight=False)
    result = run_benchmark(quick=quick, log=progress.print)
    output = Console(soft_wrap=True, highlight=False, markup=False)
    output.print(benchmark_table(result, markdown=False), end="")
    if json_path is not None:
        output.print(f"wrote {write_benchmark_json(result, json_path)}")
    if plot_path is not None:
        output.print(f"wrote {plot_benchmark(result, plot_path)}")
    return result
