"""Benchmark: the time of one online learner step, against the product it cannot beat.

What is measured, for each cell x algorithm x hidden size N (input size d = 1, MSE loss,
float32 by default):

* step: the whole `OnlineLearner.step` (forward, the algorithm's update, the gradient, one
  optax SGD update) as it runs inside `OnlineLearner.run`, a jitted `lax.scan` over a chunk
  of a synthetic stream (x_k, y_k ~ N(0, 1)). After the compile and one warm-up chunk,
  `repeats` chunks are timed wall-clock up to `block_until_ready`; median and min of
  chunk time / chunk length in microseconds per step, steps/s from the median. The chunk
  length is chosen so that one chunk takes about `target_seconds` (at most `steps` steps), so
  the per-call dispatch is amortised as it is in a real run.
* product: exact dense RTRL updates J_{k+1} = D_k J_k + I_k, one (N x N) @ (N x P) product per
  step (2 N^2 P flops, P = the number of weights psi of the recurrent cell). No exact dense
  RTRL step can be cheaper than that product, so it is timed in the same run, jitted, in the
  same dtype, for every (cell, N) where a dense-path RTRL run is timed: B <- Q B repeated
  inside one jitted loop (Q orthogonal, so the values stay O(1) and nothing can be hoisted;
  the loop is unrolled twice so its carry costs no copy), time per product as median and min
  over `repeats`. The same flops in the transposed layout, (P x N) @ (N x N), which is how
  streamgrad's dense RTRL stores J, are timed too (`product_transposed_us`).
  `ratio` = median step / median product.
* gemm: one large square product (1024^3; 256^3 in quick mode), the attainable GFLOP/s.
* slopes: for each cell x algorithm series, the least-squares slope of log(step time)
  against log(P) over the sizes with N >= `fit_from` (all sizes when fewer than two
  qualify; `fit_sizes` says which). Slope 1 means time linear in P.
* context: load average at the start and the end (other processes share the machine), CPU
  count, the cores this process may run on, XLA_FLAGS, the JAX device, versions, the date.

Dense-path RTRL (`rtrl:dense`, or `rtrl` on a cell with a dense recurrence) costs 2 N^2 P
flops per step; runs above `dense_flop_limit` are skipped with a note (for the structured
cells only the smallest sizes fit). Algorithms that `make_algorithm` does not know are
skipped with a note too.

One core: `pin_to_core` must run before JAX initialises its backend (its first array, device
query or compile; importing jax is fine), because XLA reads XLA_FLAGS and sizes its thread
pools then. `bench_main` pins first thing when `cores` is given, so a command line should
parse its options and call `bench_main` without touching JAX before (importing this module
does not start it). Measured here: the affinity mask is what confines XLA to one core (a
1024^3 GEMM runs at the two-core rate without it, at the one-core rate with it);
`--xla_cpu_multi_thread_eigen=false` is added for one core as well.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from rich.console import Console
from rich.table import Table

from streamgrad.gradients import make_algorithm
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner
from streamgrad.reporting import versions, write_json

DEFAULT_CELLS = ("elman", "diagonal", "meanfield:shared", "meanfield:diagonal")
DEFAULT_ALGORITHMS = ("rtrl", "rtrl:dense", "tbptt:10", "uoro", "snap1", "rflo")
DEFAULT_DENSE_SIZES = (16, 32, 64, 128)
DEFAULT_STRUCTURED_SIZES = (100, 1_000, 10_000, 100_000)
QUICK_CELLS = ("elman", "diagonal")
QUICK_DENSE_SIZES = (4, 8)
QUICK_STRUCTURED_SIZES = (16, 64)
ONE_CORE_XLA_FLAG = "--xla_cpu_multi_thread_eigen=false"
LEARNING_RATE = 1e-3


def pin_to_core(core: int | Sequence[int]) -> list[int]:
    """Restrict every thread of this process to the given CPU core(s) (Linux affinity) and,
    for a single core, add `--xla_cpu_multi_thread_eigen=false` to XLA_FLAGS.

    Call before JAX initialises its backend: threads it starts later inherit the mask, and
    XLA reads XLA_FLAGS and sizes its thread pools at that point. If the backend is already
    up, the threads are still pinned but a warning says the flags come too late.
    Returns the sorted cores the process may now run on.
    """
    cores = {core} if isinstance(core, int) else {int(c) for c in core}
    if not cores:
        raise ValueError("pin_to_core needs at least one core")
    if not hasattr(os, "sched_setaffinity"):
        raise RuntimeError("pinning to cores needs os.sched_setaffinity (Linux)")
    if len(cores) == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {ONE_CORE_XLA_FLAG}".strip()
    tasks = Path("/proc/self/task")
    threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for thread in threads:
        try:
            os.sched_setaffinity(thread, cores)
        except ProcessLookupError:  # the thread ended since the listing
            continue
    if _backend_started():
        warnings.warn(
            "JAX's backend is already initialised: XLA_FLAGS and its thread-pool sizes are "
            "fixed; call pin_to_core before the first JAX computation",
            RuntimeWarning,
            stacklevel=2,
        )
    return sorted(os.sched_getaffinity(0))


def _backend_started() -> bool:
    """Whether JAX's backend is up (a private JAX function; assume it is if that is gone)."""
    from jax._src import xla_bridge

    return bool(getattr(xla_bridge, "backends_are_initialized", lambda: True)())


def _cell_options(spec: str) -> tuple[str, dict[str, Any]]:
    """'meanfield:shared' -> ('meanfield', {'coupling': 'shared'}); 'elman' -> ('elman', {})."""
    name, _, coupling = spec.partition(":")
    return name, ({"coupling": coupling} if coupling else {})


def _timed(function: Callable[[], Any], repeats: int) -> list[float]:
    """Wall-clock seconds of `repeats` calls, each waited for with block_until_ready."""
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(function())
        seconds.append(time.perf_counter() - tic)
    return seconds


def _chunk_length(per_step: float, target_seconds: float, most: int, multiple: int) -> int:
    """Steps per chunk so that one chunk takes about target_seconds, a multiple of `multiple`
    within [multiple, most]."""
    wanted = target_seconds / max(per_step, 1e-9)
    return int(min(max(multiple, math.ceil(wanted / multiple) * multiple), most))


def time_product(
    n: int,
    p: int,
    dtype: str,
    *,
    transposed: bool = False,
    repeats: int = 5,
    target_seconds: float = 0.2,
    quick: bool = False,
) -> tuple[float, float]:
    """(median, min) seconds of one product (N x N) @ (N x P), or (P x N) @ (N x N) when
    `transposed`, as one iteration of a jitted loop B <- Q B (Q orthogonal (N, N))."""
    rng = np.random.default_rng(0)
    q = jnp.asarray(np.linalg.qr(rng.standard_normal((n, n)))[0], dtype)
    b = jnp.asarray(rng.standard_normal((p, n) if transposed else (n, p)), dtype)

    def compiled(count: int) -> Callable[[], jax.Array]:
        def body(_: Any, m: jax.Array) -> jax.Array:
            return m @ q.T if transposed else q @ m

        loop = jax.jit(lambda m: jax.lax.fori_loop(0, count, body, m, unroll=2))
        jax.block_until_ready(loop(b))
        return lambda: loop(b)

    count = 2
    if not quick:  # calibrate: about target_seconds per timed call
        (probe,) = _timed(compiled(count), 1)
        count = _chunk_length(probe / count, target_seconds, 100_000, 2)
    seconds = np.asarray(_timed(compiled(count), repeats)) / count
    return float(np.median(seconds)), float(seconds.min())


def time_gemm(size: int, dtype: str, repeats: int) -> dict[str, float]:
    """Best time and GFLOP/s of one jitted (size x size) @ (size x size) product."""
    a = jnp.asarray(np.random.default_rng(1).standard_normal((size, size)), dtype)
    product = jax.jit(lambda m: m @ m)
    jax.block_until_ready(product(a))
    best = min(_timed(lambda: product(a), repeats))
    return {"size": size, "seconds": best, "gflops": 2 * size**3 / best / 1e9}


def time_learner(
    cell: str,
    algorithm: str,
    n: int,
    dtype: str,
    *,
    steps: int,
    repeats: int,
    target_seconds: float,
    quick: bool,
) -> dict[str, Any]:
    """Median and min microseconds per learner step for one cell x algorithm x N (see the
    module docstring), with the chunk length, P and whether the losses stayed finite."""
    name, options = _cell_options(cell)
    model = make_model(name, n, 1, **options)
    learner = OnlineLearner(make_algorithm(algorithm, model), optax.sgd(LEARNING_RATE))
    params = model.init(jax.random.PRNGKey(0), dtype)
    state = learner.init(params)
    rng = np.random.default_rng(2)

    def chunk(length: int) -> tuple[jax.Array, jax.Array]:
        inputs = jnp.asarray(rng.standard_normal((length, 1)), dtype)
        return inputs, jnp.asarray(rng.standard_normal(length), dtype)

    def timed_chunks(length: int, count: int) -> tuple[list[float], jax.Array]:
        nonlocal state
        inputs, targets = chunk(length)
        state, (losses, _) = learner.run(state, inputs, targets)  # compile + warm-up
        seconds = []
        for _ in range(count):
            tic = time.perf_counter()
            state, (losses, _) = learner.run(state, inputs, targets)
            jax.block_until_ready((state, losses))
            seconds.append(time.perf_counter() - tic)
        return seconds, losses

    length = steps
    if not quick:  # calibrate the chunk length on a short chunk
        probe_length = min(10, steps)
        (probe,), _ = timed_chunks(probe_length, 1)
        length = _chunk_length(probe / probe_length, target_seconds, steps, 10)
    seconds, losses = timed_chunks(length, repeats)
    per_step = np.asarray(seconds) / length * 1e6
    median = float(np.median(per_step))
    return {
        "cell": cell,
        "algorithm": algorithm,
        "N": n,
        "P": count_weights(cell, n, dtype),
        "chunk_steps": length,
        "repeats": repeats,
        "median_us": median,
        "min_us": float(per_step.min()),
        "steps_per_second": 1e6 / median,
        "finite": bool(np.isfinite(np.asarray(losses)).all()),
    }


def fit_slope(points: Sequence[tuple[int, float, float]], fit_from: float) -> dict[str, Any]:
    """Least-squares slope of log(time) on log(P) from (N, P, time) points, over N >= fit_from
    (all points when fewer than two qualify)."""
    chosen = [pt for pt in points if pt[0] >= fit_from]
    if len(chosen) < 2:
        chosen = list(points)
    if len(chosen) < 2:
        return {"slope": None, "fit_sizes": [pt[0] for pt in chosen]}
    log_p = np.log([pt[1] for pt in chosen])
    log_t = np.log([pt[2] for pt in chosen])
    return {"slope": float(np.polyfit(log_p, log_t, 1)[0]), "fit_sizes": [pt[0] for pt in chosen]}


def count_weights(cell: str, n: int, dtype: str) -> int:
    """P, the number of weights psi of the recurrent cell (input size 1); no arrays built."""
    name, options = _cell_options(cell)
    model = make_model(name, n, 1, **options)
    shapes = jax.eval_shape(
        lambda key: model.cell.effective(model.cell.init(key, dtype)), jax.random.PRNGKey(0)
    )
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes))


def _products(cell: str, n: int, p: int, dtype: str, repeats: int, quick: bool) -> dict[str, Any]:
    """Both layouts of the dense-RTRL product for one (cell, N), in microseconds."""
    median, best = time_product(n, p, dtype, repeats=repeats, quick=quick)
    median_t, best_t = time_product(n, p, dtype, transposed=True, repeats=repeats, quick=quick)
    return {
        "cell": cell,
        "N": n,
        "P": p,
        "flops": 2 * n * n * p,
        "product_us": median * 1e6,
        "product_min_us": best * 1e6,
        "product_gflops": 2 * n * n * p / median / 1e9,
        "product_transposed_us": median_t * 1e6,
        "product_transposed_min_us": best_t * 1e6,
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _dense_path(cell: str, algorithm: str) -> tuple[bool, bool]:
    """(whether the cell's recurrence is dense, whether the algorithm runs dense-path RTRL);
    raises ValueError for an algorithm spec that make_algorithm rejects."""
    name, options = _cell_options(cell)
    model = make_model(name, 2, 1, **options)
    built = make_algorithm(algorithm, model)
    return model.cell.structure == "dense", built.options.get("path") == "dense"


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
    """Time every cell x algorithm x N (see the module docstring) and return a JSON-ready dict
    with keys date, machine, versions, settings, gemm, products, runs, slopes, skipped.

    cells: 'elman', 'gru', 'diagonal', 'meanfield:COUPLING' (default DEFAULT_CELLS, QUICK_CELLS
    in quick mode); cells with a dense recurrence run at `dense_sizes` (default
    DEFAULT_DENSE_SIZES), the others at `structured_sizes` (default DEFAULT_STRUCTURED_SIZES;
    the QUICK_ sizes in quick mode). steps: the most steps per timed chunk
    (default 5000; 20 in quick mode, which uses that fixed chunk). repeats: timed chunks per
    run (default 7; 2 in quick mode). quick: a tiny grid and few steps, for tests.
    dtype "float64" turns on jax_enable_x64 for the process. log: called with one line of
    progress per run.
    """
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    cells = cells or (QUICK_CELLS if quick else DEFAULT_CELLS)
    dense_sizes = dense_sizes or (QUICK_DENSE_SIZES if quick else DEFAULT_DENSE_SIZES)
    structured_sizes = structured_sizes or (
        QUICK_STRUCTURED_SIZES if quick else DEFAULT_STRUCTURED_SIZES
    )
    steps = steps or (20 if quick else 5000)
    repeats = repeats or (2 if quick else 7)
    say = log or (lambda _: None)
    load_start = os.getloadavg()
    device = jax.devices()[0]
    gemm = time_gemm(256 if quick else 1024, dtype, repeats)
    say(f"gemm {gemm['size']}^3: {gemm['gflops']:.1f} GFLOP/s")

    runs: list[dict[str, Any]] = []
    products: dict[tuple[str, int], dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    for cell in cells:
        for algorithm in algorithms:
            try:
                dense_cell, dense_rtrl = _dense_path(cell, algorithm)
            except ValueError as error:
                skipped.append({"cell": cell, "algorithm": algorithm, "reason": str(error)})
                say(f"skip {cell} {algorithm}: {error}")
                continue
            sizes = dense_sizes if dense_cell else structured_sizes
            for n in (int(size) for size in sizes):
                flops = 2 * n * n * count_weights(cell, n, dtype)
                if dense_rtrl and flops > dense_flop_limit:
                    reason = (
                        f"dense RTRL needs {flops:.2g} flops per step (> {dense_flop_limit:.2g})"
                    )
                    skipped.append({"cell": cell, "algorithm": algorithm, "N": n, "reason": reason})
                    say(f"skip {cell} {algorithm} N={n}: {reason}")
                    continue
                row = time_learner(
                    cell,
                    algorithm,
                    n,
                    dtype,
                    steps=steps,
                    repeats=repeats,
                    target_seconds=target_seconds,
                    quick=quick,
                )
                if dense_rtrl and (cell, n) not in products:
                    products[(cell, n)] = _products(cell, n, row["P"], dtype, repeats, quick)
                runs.append(row)
                say(
                    f"{cell} {algorithm} N={n}: {row['median_us']:.1f} us/step "
                    f"({row['steps_per_second']:.0f} steps/s)"
                )
    for row in runs:
        product = products.get((row["cell"], row["N"]))
        row["product_us"] = product["product_us"] if product else None
        row["ratio"] = row["median_us"] / product["product_us"] if product else None

    series: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for row in runs:
        series.setdefault((row["cell"], row["algorithm"]), []).append(
            (row["N"], row["P"], row["median_us"])
        )
    slopes = [
        {"cell": cell, "algorithm": algorithm, **fit_slope(points, fit_from)}
        for (cell, algorithm), points in series.items()
    ]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
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
        },
        "versions": versions(),
        "settings": {
            "cells": list(cells),
            "algorithms": list(algorithms),
            "dense_sizes": [int(n) for n in dense_sizes],
            "structured_sizes": [int(n) for n in structured_sizes],
            "steps": steps,
            "repeats": repeats,
            "dtype": dtype,
            "quick": quick,
            "target_seconds": target_seconds,
            "fit_from": fit_from,
            "dense_flop_limit": dense_flop_limit,
            "input_size": 1,
            "optimizer": f"sgd({LEARNING_RATE})",
        },
        "gemm": gemm,
        "products": list(products.values()),
        "runs": runs,
        "slopes": slopes,
        "skipped": skipped,
    }


def write_benchmark_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write the result of `run_benchmark` as JSON (NaN and inf become null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    return path


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _table_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per run, the columns of TABLE_HEADER."""
    transposed = {(p["cell"], p["N"]): p["product_transposed_us"] for p in result["products"]}
    return [
        [
            row["cell"],
            row["algorithm"],
            f"{row['N']:,}",
            f"{row['P']:,}",
            _number(row["median_us"]),
            _number(row["min_us"]),
            _number(row["steps_per_second"], 0),
            _number(row["product_us"]),
            _number(transposed.get((row["cell"], row["N"]))),
            _number(row["ratio"], 2),
        ]
        for row in result["runs"]
    ]


TABLE_HEADER = [
    "cell",
    "algorithm",
    "N",
    "P",
    "median µs/step",
    "min µs/step",
    "steps/s",
    "(N×N)@(N×P) µs",
    "(P×N)@(N×N) µs",
    "step / product",
]


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


def benchmark_table(result: dict[str, Any]) -> str:
    """Markdown: a summary, the per-run table, the fitted slopes and the skipped runs."""
    lines = [f"- {line}" for line in _summary_lines(result)]
    lines += ["", "| " + " | ".join(TABLE_HEADER) + " |"]
    lines.append("|" + "|".join([":--", ":--", *["--:"] * (len(TABLE_HEADER) - 2)]) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in _table_rows(result)]
    lines += ["", "| cell | algorithm | slope of log time vs log P | sizes N fitted |"]
    lines.append("|:--|:--|--:|:--|")
    for slope in result["slopes"]:
        sizes = ", ".join(f"{n:,}" for n in slope["fit_sizes"])
        lines.append(
            f"| {slope['cell']} | {slope['algorithm']} | {_number(slope['slope'], 2)} | {sizes} |"
        )
    if result["skipped"]:
        lines += ["", "Skipped:", ""]
        for item in result["skipped"]:
            size = f" N={item['N']:,}" if "N" in item else ""
            lines.append(f"- {item['cell']} {item['algorithm']}{size}: {item['reason']}")
    return "\n".join(lines) + "\n"


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
    figure.savefig(path, dpi=110)
    return path


def bench_main(
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    cores: int | Sequence[int] | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Everything `streamgrad bench` does: pin to `cores` (first, before JAX starts), run the
    default benchmark (or the quick one), print progress and a rich table, and write the JSON
    and the plot when paths are given. Returns the result dict."""
    if cores is not None:
        pin_to_core(cores)
    console = Console(stderr=True)
    result = run_benchmark(quick=quick, log=lambda line: console.print(line, highlight=False))
    table = Table(title="online learner step", title_justify="left")
    for index, column in enumerate(TABLE_HEADER):
        table.add_column(column, justify="left" if index < 2 else "right")
    for row in _table_rows(result):
        table.add_row(*row)
    slopes = Table(title="slope of log time vs log P", title_justify="left")
    for column in ("cell", "algorithm", "slope", "sizes N fitted"):
        slopes.add_column(column)
    for slope in result["slopes"]:
        sizes = ", ".join(f"{n:,}" for n in slope["fit_sizes"])
        slopes.add_row(slope["cell"], slope["algorithm"], _number(slope["slope"], 2), sizes)
    output = Console(width=max(Console().width, 150))
    for line in _summary_lines(result):
        output.print(line, highlight=False)
    output.print(table)
    output.print(slopes)
    for item in result["skipped"]:
        size = f" N={item['N']:,}" if "N" in item else ""
        output.print(f"skipped {item['cell']} {item['algorithm']}{size}: {item['reason']}")
    if json_path is not None:
        output.print(f"wrote {write_benchmark_json(result, json_path)}")
    if plot_path is not None:
        output.print(f"wrote {plot_benchmark(result, plot_path)}")
    return result
