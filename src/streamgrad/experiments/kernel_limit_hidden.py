"""kernel-limit-hidden: the untrained shared-coupling network on the same data paths for each N.

For N = 1e2 ... 1e6 hidden units and K steps of a data path (AR(1), phi = 0.9, unit stationary
variance: project choice), each path l with its own parameter draw (the papers' "simulation
instances"), the experiment records, against the project's reconstruction of the limit
(docs/theory.md, section 2; `streamgrad.theory.limits`):

* sup_k |u^N_k - u*_k| (memory against the limit memory), and its log-log slope in N;
* the hidden units at the last step: histograms (one grey curve per path, the pooled one in
  red, the limit density dashed) and the Kolmogorov-Smirnov distance to the limit law sigma(Z),
  Z ~ N(m_c + u*_{K-1}, w^2 |x_{K-1}|^2 + s_c^2), with its slope in N;
* the time averages (1/k) sum_{j<=k} m^p_j of the units' moments m^p_j = (1/N) sum_i (S^i_j)^p,
  p = 1, 2, as a min/max band over paths with their mean, and the band width at k = K.

The simulation is a jitted, chunked `lax.scan` in float32 that carries only the memory u: per
step it computes the N units, the memory and the two moments in one pass, so nothing of size
N x K exists (the last step's units are recomputed from u_{K-1} for the histogram). Paths run
`2^20 / N` at a time (vmap); the number of paths at size N is min(paths, budget / (N K)). Each
such batch is one task of the sweep executor (`--workers`, `--scheduler`: sweep/executor.py),
which gives bitwise the same numbers wherever the tasks run.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from streamgrad.cells import Cell, make_cell
from streamgrad.data.synthetic import ar1
from streamgrad.experiments import kernel_limit_plots as plots
from streamgrad.progress import progress_bar
from streamgrad.reporting import Column, loglog_slope, render_table, versions, write_json
from streamgrad.sweep.executor import Outcome, Task, map_tasks
from streamgrad.theory import hidden_law, limit_memory
from streamgrad.theory.limits import SharedLaws

SIZES = (100, 1_000, 10_000, 100_000, 1_000_000)
QUICK = {"sizes": (100, 1_000, 10_000, 100_000), "steps": 5_000, "paths": 16, "budget": 2e10}
AR_PHI = 0.9
UNITS_PER_BATCH = 2**20
CHUNK_STEPS = 1_000
BINS = 80
LABEL = plots.HIDDEN_LABEL


def data_paths(n_paths: int, steps: int, seed: int) -> np.ndarray:
    """Stationary AR(1) paths (n_paths, steps, 1), phi = AR_PHI, unit variance; path l has
    seed `seed + l`, so every N sees the same paths."""
    sigma = math.sqrt(1.0 - AR_PHI**2)
    return np.stack(
        [ar1(steps, phi=AR_PHI, sigma=sigma, seed=seed + path).inputs for path in range(n_paths)]
    )


def _chunk_runner(cell: Cell, batched: bool) -> Any:
    """jit: (weights, u, xs (C, [P,] d)) -> u after the chunk and, per step k,
    (u_{k+1}, m^1_{k+1}, m^2_{k+1}), each (C, [P]). `batched` maps over paths (leading axis of
    the weights and u); a single path runs unbatched, which XLA fuses into one pass over the
    units (a batch of one is 4x slower)."""

    def one_step(weights: Any, u: jax.Array, x: jax.Array) -> tuple[jax.Array, tuple]:
        hidden = cell.step_from_memory(weights, u, x)  # (N,)
        new_u = cell.memory(weights, hidden)  # (1,)
        return new_u, (new_u[0], hidden.mean(), jnp.square(hidden).mean())

    step = jax.vmap(one_step) if batched else one_step

    @jax.jit
    def run(weights: Any, u: jax.Array, xs: jax.Array) -> tuple[jax.Array, tuple]:
        return jax.lax.scan(lambda carry, x: step(weights, carry, x), u, xs)

    return run


def simulate(
    cell: Cell, weights: Any, xs: np.ndarray, *, advance: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The finite network on paths xs (P, K, d) with effective weights batched over P (float32).

    Returns the memory u_0..u_K (P, K+1), the moments m^1_k, m^2_k for k = 1..K (P, K) each,
    and the last hidden units S_K (P, N). `advance(steps)` is called after each chunk."""
    n_paths, steps = xs.shape[:2]
    batched = n_paths > 1
    run = _chunk_runner(cell, batched)
    if not batched:
        weights = jax.tree_util.tree_map(lambda leaf: leaf[0], weights)
    u = jnp.zeros((n_paths, 1) if batched else (1,), jnp.float32)
    pieces: list[list[np.ndarray]] = []
    for begin in range(0, steps, CHUNK_STEPS):
        chunk = np.swapaxes(xs[:, begin : begin + CHUNK_STEPS], 0, 1)  # (C, P, d)
        u, outputs = run(weights, u, jnp.asarray(chunk if batched else chunk[:, 0], jnp.float32))
        pieces.append([np.asarray(a).reshape(len(chunk), n_paths).T for a in outputs])
        if advance is not None:
            advance(len(chunk))
    memory, first, second = (np.concatenate([p[i] for p in pieces], axis=1) for i in range(3))
    memory = np.concatenate([np.zeros((n_paths, 1), np.float32), memory], axis=1)
    last_x = jnp.asarray(xs[:, -1], jnp.float32)
    previous = jnp.asarray(memory[:, -2:-1])
    if batched:
        last = jax.vmap(cell.step_from_memory)(weights, previous, last_x)
    else:
        last = cell.step_from_memory(weights, previous[0], last_x[0])[None]
    return memory, first, second, np.asarray(last)


def _init_weights(cell: Cell, seed: int, paths: range) -> Any:
    """Effective weights of independent draws, one per path (key = fold_in(seed, path))."""
    keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(seed), p) for p in paths])
    return jax.vmap(lambda key: cell.effective(cell.init(key, jnp.float32)))(keys)


def _time_average_grid(steps: int) -> np.ndarray:
    """About 300 log-spaced k in 1..K (K included), where the time averages are kept."""
    return np.unique(np.geomspace(1, steps, 300).astype(int))


def run(
    out: Path,
    *,
    quick: bool = False,
    sizes: tuple[int, ...] = SIZES,
    steps: int = 50_000,
    paths: int = 100,
    budget: float = 5e11,
    seed: int = 0,
    cell_options: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int | None = 0,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Run the sweep over `sizes`; `quick` replaces sizes, steps, paths and budget by QUICK.
    `budget` caps paths x N x K per size (unit-steps; 5e11 is about 6 minutes on 2 cores).
    The batches of paths run on `make_executor(workers, scheduler)` (default: this process)."""
    if quick:
        sizes, steps, paths = QUICK["sizes"], QUICK["steps"], QUICK["paths"]
        budget = QUICK["budget"]
    if steps < 2 or paths < 1 or not sizes or min(sizes) < 1:
        raise ValueError(
            f"need steps >= 2, paths >= 1 and sizes >= 1, got {steps}, {paths}, {sizes}"
        )
    options = {"coupling": "shared", **(cell_options or {})}
    counts = {n: int(min(paths, max(1, budget // (n * steps)))) for n in sizes}
    started = time.perf_counter()
    xs = data_paths(max(counts.values()), steps, seed)
    limit = limit_memory(options, xs)  # (P, K+1)
    grid = _time_average_grid(steps)
    batches = {
        f"N={n} paths={b.start}-{b.stop - 1}": (n, b) for n in sizes for b in _batches(n, counts[n])
    }
    shared = (grid, options, seed)
    tasks = [
        Task(key, simulate_batch, (n, b, xs[b.start : b.stop], limit[b.start : b.stop], *shared))
        for key, (n, b) in batches.items()
    ]
    with progress_bar(progress) as bar:
        bars = {n: bar.add_task(f"N = {n:,}", total=counts[n] * steps) for n in sizes}

        def finished(outcome: Outcome) -> None:
            n, batch = batches[outcome.key]
            bar.advance(bars[n], len(batch) * steps)

        pieces = map_tasks(tasks, workers, scheduler, finished)
    sizes_of = [n for n, _ in batches.values()]
    results = [
        _one_size(
            n, [p for m, p in zip(sizes_of, pieces, strict=True) if m == n], xs, limit, options
        )
        for n in sizes
    ]
    limit_averages = _limit_time_averages(options, xs, limit, grid)
    return _finish(out, results, limit_averages, grid, steps, seed, options, started)


def _batches(n: int, count: int) -> list[range]:
    """The paths 0..count-1 at size n in batches of UNITS_PER_BATCH / n (one vmapped program
    and one executor task each)."""
    per_batch = max(1, UNITS_PER_BATCH // n)
    return [range(begin, min(begin + per_batch, count)) for begin in range(0, count, per_batch)]


def simulate_batch(
    n: int,
    batch: range,
    xs: np.ndarray,
    limit: np.ndarray,
    grid: np.ndarray,
    options: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """One task: the paths `batch` (their inputs xs (B, K, d) and limit memory (B, K+1)) at
    size n. Returns their rows of paths.csv, histograms of the last units (B, BINS) and time
    averages of the moments at the grid (B, 2, G)."""
    cell = make_cell("meanfield", n, xs.shape[2], **options)
    edges = np.linspace(*_support(options), BINS + 1)
    tic = time.perf_counter()
    memory, first, second, last = simulate(cell, _init_weights(cell, seed, batch), xs)
    seconds = (time.perf_counter() - tic) / len(batch)
    averages = np.stack([_running_mean(m)[:, grid - 1] for m in (first, second)], 1)
    rows, densities = [], []
    for j, path in enumerate(batch):
        law = hidden_law(options, xs[j, -1], limit[j, -2])
        units = last[j].astype(np.float64)
        densities.append(np.histogram(units, edges, density=True)[0])
        rows.append(
            {
                "N": n,
                "path": path,
                "memory_error": float(np.max(np.abs(memory[j] - limit[j]))),
                "ks": float(stats.kstest(units, law.cdf).statistic),
                "time_average_1": float(averages[j, 0, -1]),
                "time_average_2": float(averages[j, 1, -1]),
                "seconds": seconds,
            }
        )
    return {"rows": rows, "densities": np.stack(densities), "averages": averages}


def _one_size(
    n: int, pieces: list[dict[str, Any]], xs: np.ndarray, limit: np.ndarray, options: dict[str, Any]
) -> dict[str, Any]:
    """The batches of size n put together (per-path rows, histograms, time-average curves),
    with the pooled limit density of the hidden units."""
    count = sum(len(piece["rows"]) for piece in pieces)
    law = hidden_law(options, xs[:count, -1], limit[:count, -2])
    fine = np.linspace(*_support(options), 401)[1:-1]
    return {
        "N": n,
        "paths": count,
        "rows": [row for piece in pieces for row in piece["rows"]],
        "edges": np.linspace(*_support(options), BINS + 1),
        "densities": np.concatenate([piece["densities"] for piece in pieces]),
        "fine": fine,
        "limit_density": _path_mean(law.pdf(fine[:, None]).T),
        "averages": np.concatenate([piece["averages"] for piece in pieces]),  # (P, 2, G)
    }


def _running_mean(values: np.ndarray) -> np.ndarray:
    """(1/k) sum_{j<=k} values[..., j-1] along the last axis, in float64."""
    return np.cumsum(values, axis=-1, dtype=np.float64) / np.arange(1, values.shape[-1] + 1)


def _support(options: dict[str, Any]) -> tuple[float, float]:
    activation = SharedLaws.from_options(options).sigma
    return activation.low, activation.high


def _limit_time_averages(
    options: dict[str, Any], xs: np.ndarray, limit: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """(1/k) sum_{j<=k} E[sigma(Z_j)^p] along each path at the grid: (P, 2, G)."""
    out = np.empty((len(xs), 2, len(grid)))
    for path in range(len(xs)):
        law = hidden_law(options, xs[path], limit[path, :-1])
        for p in (1, 2):
            out[path, p - 1] = _running_mean(law.moment(p))[grid - 1]
    return out


def _finish(
    out: Path,
    results: list[dict[str, Any]],
    limit_averages: np.ndarray,
    grid: np.ndarray,
    steps: int,
    seed: int,
    options: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    table = pd.DataFrame([row for result in results for row in result["rows"]])
    table.to_csv(out / "paths.csv", index=False)
    per_size, widths = _per_size_table(table, results)
    per_size.reset_index().to_csv(out / "per_size.csv", index=False)
    curves = _time_average_table(results, limit_averages, grid)
    curves.to_parquet(out / "time_averages.parquet", index=False)
    _histogram_table(results).to_csv(out / "histograms.csv", index=False)
    sizes = [int(n) for n in per_size.index]
    summary = {
        "experiment": "kernel-limit-hidden",
        "label": LABEL,
        "sizes": sizes,
        "steps": steps,
        "paths": {str(n): int(per_size.loc[n, "paths"]) for n in sizes},
        "seed": seed,
        "cell_options": options,
        "data": f"AR(1), phi = {AR_PHI}, unit stationary variance, path l has seed {seed} + l",
        "memory_error": {str(n): float(per_size.loc[n, "memory_error"]) for n in sizes},
        "memory_error_slope": loglog_slope(sizes, list(per_size["memory_error"])),
        "ks": {str(n): float(per_size.loc[n, "ks"]) for n in sizes},
        "ks_slope": loglog_slope(sizes, list(per_size["ks"])),
        "band_width": {str(n): widths[n] for n in sizes},
        "seconds_per_path": {str(n): float(per_size.loc[n, "seconds_per_path"]) for n in sizes},
        "wall_seconds": time.perf_counter() - started,
        "versions": versions(),
    }
    plots.plot_histograms(out / "histograms.png", results)
    plots.plot_time_averages(out / "time_averages.png", curves)
    plots.plot_hidden_convergence(out / "convergence.png", per_size, summary)
    write_json(out / "summary.json", summary)
    return summary


def _per_size_table(
    table: pd.DataFrame, results: list[dict[str, Any]]
) -> tuple[pd.DataFrame, dict[int, dict[str, float]]]:
    """Means over paths per N, and the band widths (range over paths at k = K) per N and p."""
    per_size = table.groupby("N").agg(
        paths=("path", "size"),
        memory_error=("memory_error", "mean"),
        memory_error_max=("memory_error", "max"),
        ks=("ks", "mean"),
        seconds_per_path=("seconds", "mean"),
    )
    widths = {
        result["N"]: {
            f"moment_{p}": float(np.ptp(result["averages"][:, p - 1, -1])) for p in (1, 2)
        }
        for result in results
    }
    per_size["band_width_1"] = [widths[n]["moment_1"] for n in per_size.index]
    per_size["band_width_2"] = [widths[n]["moment_2"] for n in per_size.index]
    return per_size, widths


def _path_mean(values: np.ndarray) -> np.ndarray:
    """The mean over the first axis (paths), summed in path order: numpy's mean may sum in an
    order that depends on the array's memory address, and the results must not."""
    return np.add.accumulate(values, axis=0)[-1] / len(values)


def _time_average_table(
    results: list[dict[str, Any]], limit_averages: np.ndarray, grid: np.ndarray
) -> pd.DataFrame:
    """Per N and p: min, max and mean over paths of the time averages at the grid's k, and the
    mean of the limit's."""
    frames = []
    for result, p in itertools.product(results, (1, 2)):
        values, limit = result["averages"][:, p - 1], limit_averages[: result["paths"], p - 1]
        columns = {"min": values.min(axis=0), "max": values.max(axis=0)}
        columns.update(mean=_path_mean(values), limit_mean=_path_mean(limit))
        frames.append(pd.DataFrame({"N": result["N"], "p": p, "k": grid, **columns}))
    return pd.concat(frames)


def _histogram_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Per N the curves of histograms.png: one per path, the pooled one and the limit's."""
    frames = []
    for result in results:
        centers = 0.5 * (result["edges"][1:] + result["edges"][:-1])
        curves = [(f"path {path}", centers, d) for path, d in enumerate(result["densities"])]
        curves.append(("pooled", centers, _path_mean(result["densities"])))
        curves.append(("limit", result["fine"], result["limit_density"]))
        for name, s, density in curves:
            frames.append(
                pd.DataFrame({"N": result["N"], "curve": name, "s": s, "density": density})
            )
    return pd.concat(frames, ignore_index=True)


def table_text(summary: dict[str, Any]) -> str:
    """Per N: paths, memory error, KS distance, band widths, seconds per path; the slopes."""
    rows = [
        {
            "N": n,
            "paths": summary["paths"][str(n)],
            "memory_error": summary["memory_error"][str(n)],
            "ks": summary["ks"][str(n)],
            "band_1": summary["band_width"][str(n)]["moment_1"],
            "band_2": summary["band_width"][str(n)]["moment_2"],
            "seconds": summary["seconds_per_path"][str(n)],
        }
        for n in summary["sizes"]
    ]
    columns = [
        Column("N", spec=","),
        Column("paths"),
        Column("memory_error", "sup|u-u*|", ".3e"),
        Column("ks", "KS", ".4f"),
        Column("band_1", "band p=1", ".2e"),
        Column("band_2", "band p=2", ".2e"),
        Column("seconds", "s/path", ".2f"),
    ]
    text = render_table(rows, columns)
    slopes = (summary["memory_error_slope"], summary["ks_slope"])
    if None not in slopes:
        text += f"\nslopes in N: memory error {slopes[0]:.3f}, KS {slopes[1]:.3f} ({LABEL})"
    return text
