"""The benchmark grid: every cell x algorithm x hidden size N, timed with `measure`, with the
machine context and the fitted slopes, as one JSON-ready dict.

Cells with a dense recurrence run at the dense sizes, the others at the structured sizes.
Dense-path RTRL (`rtrl:dense`, or `rtrl` on a cell with a dense recurrence) costs 2 N^2 P
flops per step; runs above `dense_flop_limit` are skipped with a note (for the structured
cells only the smallest sizes fit), and so are algorithms that `make_algorithm` does not know.
The product is timed once per (cell, N) where a dense-path RTRL run is timed, and
`ratio` = median step / median product. Outside quick mode, "ensemble" times the
learning-rate ensemble of ENSEMBLE_LRS against one learner at ENSEMBLE_CASE. Context: load
average at the start and the end (other processes share the machine), CPU count, the cores
this process may run on, XLA_FLAGS, the JAX device, versions, the date.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from streamgrad.bench.measure import (
    LEARNING_RATE,
    count_weights,
    dense_path,
    fit_slope,
    time_ensemble,
    time_gemm,
    time_learner,
    time_products,
)
from streamgrad.reporting import versions, write_json

DEFAULT_CELLS = ("elman", "diagonal", "meanfield:shared", "meanfield:diagonal")
DEFAULT_ALGORITHMS = ("rtrl", "rtrl:dense", "tbptt:10", "uoro", "snap1", "rflo")
DEFAULT_DENSE_SIZES = (16, 32, 64, 128)
DEFAULT_STRUCTURED_SIZES = (100, 1_000, 10_000, 100_000)
QUICK_CELLS = ("elman", "diagonal")
QUICK_DENSE_SIZES = (4, 8)
QUICK_STRUCTURED_SIZES = (16, 64)
# the learning-rate ensemble timed against one learner (issue 15: at most 2.5x at N = 32)
ENSEMBLE_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
ENSEMBLE_CASE = ("elman", "rtrl", 32)


def run_benchmark(
    cells: Sequence[str] | None = None,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    dense_sizes: Sequence[float] | None = None,
    structured_sizes: Sequence[float] | None = None,
    steps: int | None = None,
    repeats: int | None = None,
    dtype: str = "float32",
    *,
    quick: bool = False,
    target_seconds: float = 0.25,
    fit_from: float = 1e3,
    dense_flop_limit: float = 2e9,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time every cell x algorithm x N (see the module docstring); a JSON-ready dict with keys
    date, machine, versions, settings, gemm, products, runs, slopes, skipped.

    cells: 'elman', 'gru', 'diagonal', 'meanfield:COUPLING'; dense cells run at `dense_sizes`,
    the others at `structured_sizes` (defaults: the DEFAULT_ names; quick: the QUICK_ ones, a
    tiny grid for tests). steps: the most steps per timed chunk (5000; quick: a fixed chunk of
    20). repeats: timed chunks per run (7; quick: 2). dtype "float64" turns on jax_enable_x64
    for the process. log: called with one line of progress per run.
    """
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dense = dense_sizes or (QUICK_DENSE_SIZES if quick else DEFAULT_DENSE_SIZES)
    structured = structured_sizes or (QUICK_STRUCTURED_SIZES if quick else DEFAULT_STRUCTURED_SIZES)
    settings = {
        "cells": list(cells or (QUICK_CELLS if quick else DEFAULT_CELLS)),
        "algorithms": list(algorithms),
        "dense_sizes": [int(n) for n in dense],
        "structured_sizes": [int(n) for n in structured],
        "steps": steps or (20 if quick else 5000),
        "repeats": repeats or (2 if quick else 7),
        "dtype": dtype,
        "quick": quick,
        "target_seconds": target_seconds,
        "fit_from": fit_from,
        "dense_flop_limit": dense_flop_limit,
        "input_size": 1,
        "optimizer": f"sgd({LEARNING_RATE})",
    }
    say = log or (lambda _: None)
    load_start = os.getloadavg()
    gemm = time_gemm(256 if quick else 1024, dtype, settings["repeats"])
    say(f"gemm {gemm['size']}^3: {gemm['gflops']:.1f} GFLOP/s")
    runs, products, skipped = _time_grid(settings, say)
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(load_start),
        "versions": versions(),
        "settings": settings,
        "gemm": gemm,
        "products": products,
        "runs": runs,
        "slopes": _slopes(runs, fit_from),
        "skipped": skipped,
        **({} if quick else {"ensemble": _time_ensemble(settings, say)}),
    }


def _time_grid(
    settings: dict[str, Any], say: Callable[[str], None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(runs, products, skipped) over settings' cells x algorithms x sizes; each run gets the
    product_us of its (cell, N) and the ratio to it (None where no product was timed)."""
    dtype, repeats, quick = settings["dtype"], settings["repeats"], settings["quick"]
    runs: list[dict[str, Any]] = []
    products: dict[tuple[str, int], dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    for cell in settings["cells"]:
        for algorithm in settings["algorithms"]:
            try:
                dense_cell, dense_rtrl = dense_path(cell, algorithm)
            except ValueError as error:
                skipped.append({"cell": cell, "algorithm": algorithm, "reason": str(error)})
                say(f"skip {cell} {algorithm}: {error}")
                continue
            for n in settings["dense_sizes" if dense_cell else "structured_sizes"]:
                flops = 2 * n * n * count_weights(cell, n, dtype)
                if dense_rtrl and flops > settings["dense_flop_limit"]:
                    reason = (
                        f"dense RTRL needs {flops:.2g} flops per step "
                        f"(> {settings['dense_flop_limit']:.2g})"
                    )
                    skipped.append({"cell": cell, "algorithm": algorithm, "N": n, "reason": reason})
                    say(f"skip {cell} {algorithm} N={n}: {reason}")
                    continue
                row = time_learner(
                    cell,
                    algorithm,
                    n,
                    dtype,
                    steps=settings["steps"],
                    repeats=repeats,
                    target_seconds=settings["target_seconds"],
                    quick=quick,
                )
                if dense_rtrl and (cell, n) not in products:
                    products[(cell, n)] = time_products(cell, n, row["P"], dtype, repeats, quick)
                runs.append(row)
                say(
                    f"{cell} {algorithm} N={n}: {row['median_us']:.1f} us/step "
                    f"({row['steps_per_second']:.0f} steps/s)"
                )
    for row in runs:
        product = products.get((row["cell"], row["N"]))
        row["product_us"] = product["product_us"] if product else None
        row["ratio"] = row["median_us"] / product["product_us"] if product else None
    return runs, list(products.values()), skipped


def _time_ensemble(settings: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    """`time_ensemble` of ENSEMBLE_LRS at ENSEMBLE_CASE with the grid's timing settings."""
    timing = {k: settings[k] for k in ("steps", "repeats", "target_seconds", "quick")}
    result = time_ensemble(ENSEMBLE_LRS, *ENSEMBLE_CASE, settings["dtype"], **timing)
    say(f"ensemble of {len(ENSEMBLE_LRS)} rates: {result['ratio']:.2f} x one learner per step")
    return result


def _slopes(runs: list[dict[str, Any]], fit_from: float) -> list[dict[str, Any]]:
    """The fitted slope of each cell x algorithm series (see `fit_slope`)."""
    series: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for row in runs:
        series.setdefault((row["cell"], row["algorithm"]), []).append(
            (row["N"], row["P"], row["median_us"])
        )
    return [
        {"cell": cell, "algorithm": algorithm, **fit_slope(points, fit_from)}
        for (cell, algorithm), points in series.items()
    ]


def _machine(load_start: tuple[float, float, float]) -> dict[str, Any]:
    """CPU, cores, load average at the start and now, the JAX device and XLA_FLAGS."""
    device = jax.devices()[0]
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "device": str(device),
        "device_kind": device.device_kind,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def write_benchmark_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write the result of `run_benchmark` as JSON (NaN and inf become null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    return path
