"""How a sweep scales: the same 8 independent `train` runs one after another in one process
(`streamgrad sweep --workers 0`), then on K local Dask workers (`--workers K`), each timed as
the whole command a user runs; and the executor's own cost per task.

    python -m streamgrad.sweep.scaling [--runs 8] [--rows 300000] [--workers 2] [--json F]

The baseline is what `--workers 0` does: the runs one after another in one process, JAX using
every core it may (its default). The workers run one task at a time each, each pinned to its
own core (workers.py), so K workers on K cores do not oversubscribe. Both wall times include
everything a user waits for: Python's start and imports, the cluster's start and close, each
worker's imports and compilations. Other processes on the machine slow both sides; the load
average before and after is printed so the numbers can be judged.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from streamgrad.reporting import write_json

SPEC = """command = "train"
[base]
data = "stream.parquet"
target = "y"
cell = "elman"
hidden = {hidden}
algo = "rtrl"
[grid]
seed = {seeds}
"""


def _noop() -> None:
    """A task that does nothing: what is left is the executor's cost."""


def task_overhead(workers: int, tasks: int = 200) -> float:
    """Seconds per no-op task on `workers` local Dask workers (the cluster already up)."""
    from streamgrad.sweep.executor import Task, make_executor

    with make_executor(workers) as executor:
        warm = [Task(f"warm{i}", _noop, ()) for i in range(2 * workers)]
        executor.run(warm, running=lambda keys: None, finished=lambda outcome: None)
        batch = [Task(f"noop{i}", _noop, ()) for i in range(tasks)]
        tic = time.perf_counter()
        executor.run(batch, running=lambda keys: None, finished=lambda outcome: None)
        return (time.perf_counter() - tic) / tasks


def measure(runs: int, rows: int, workers: int, hidden: int = 32) -> dict[str, Any]:
    """Wall seconds of `streamgrad sweep` run as a command (a new Python process, imports and
    all) with --workers 0 and with --workers K, their ratio, the runs' own time, the
    executor's per-task cost, and the load average around the measurement."""
    from streamgrad.data.synthetic import add_task
    from streamgrad.data.tabular import write_table

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as folder:
        root = Path(folder)
        write_table(add_task(rows, lags=(5, 9), seed=0), root / "stream.parquet")
        spec = root / "sweep.toml"
        spec.write_text(SPEC.format(hidden=hidden, seeds=list(range(runs))))
        timings, per_run = {}, {}
        for name, count in (("in_process", 0), ("workers", workers)):
            command = [sys.executable, "-m", "streamgrad.cli", "sweep", str(spec)]
            command += ["--out", str(root / name), "--workers", str(count)]
            tic = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            timings[name] = time.perf_counter() - tic
            table = pd.read_csv(root / name / "results.csv")
            per_run[name] = float(table["wall_seconds"].sum())
    overhead = task_overhead(workers)
    return {
        "runs": runs,
        "rows": rows,
        "hidden": hidden,
        "workers": workers,
        "cores": len(os.sched_getaffinity(0)),
        "in_process_seconds": timings["in_process"],
        "workers_seconds": timings["workers"],
        "ratio": timings["workers"] / timings["in_process"],
        # the runs' own time (train's wall_seconds, summed), and what the command adds around
        # them: with workers, the cluster's start and close, each worker's imports and the
        # time one worker waits for the other at the end
        "in_process_run_seconds": per_run["in_process"],
        "workers_run_seconds": per_run["workers"],
        "in_process_outside_runs_seconds": timings["in_process"] - per_run["in_process"],
        "workers_outside_runs_seconds": timings["workers"] - per_run["workers"] / workers,
        "seconds_per_task_overhead": overhead,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure(args.runs, args.rows, args.workers)
    if args.json:
        write_json(args.json, result)
    print(
        f"{result['runs']} train runs ({result['rows']:,} rows, Elman N = {result['hidden']}, "
        f"RTRL) on {result['cores']} cores: in this process {result['in_process_seconds']:.1f} s, "
        f"{result['workers']} workers {result['workers_seconds']:.1f} s, "
        f"ratio {result['ratio']:.3f}; the runs themselves {result['in_process_run_seconds']:.1f} "
        f"s here, {result['workers_run_seconds']:.1f} s on the workers (summed), "
        f"outside the runs {result['in_process_outside_runs_seconds']:.1f} s here, "
        f"{result['workers_outside_runs_seconds']:.1f} s with workers; executor "
        f"{1e3 * result['seconds_per_task_overhead']:.2f} ms per task; load average "
        f"{result['load_average_before'][0]:.2f} before, "
        f"{result['load_average_after'][0]:.2f} after"
    )


if __name__ == "__main__":
    main()
