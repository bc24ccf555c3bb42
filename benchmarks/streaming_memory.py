"""Peak memory and throughput of `streamgrad train` on long Parquet streams.

For each size (rows), generate a two-column Parquet stream (x, y float32, written row group by
row group, never held whole), run `streamgrad train` on it (Elman N = 4, TBPTT(1), chunks of
100,000 steps) under `/usr/bin/time` and record the peak resident memory of the process and
its throughput; for the sizes given by --in-memory, also run the in-memory path
(`read_table` + `train_on_stream`, the Python API on arrays) on the same file in the same
session. Prints a Markdown table (the one in docs/benchmarks.md) and writes --json.

    python benchmarks/streaming_memory.py --sizes 1e4,1e6,1e7,1e8 --in-memory 1e6,1e7 \
        --work /tmp/streaming-bench --json streaming.json

Throughput is given twice: "train steps/s" is the summary's steps_per_second (time spent in
the learner's chunks only), "end-to-end steps/s" divides the steps by the whole command's wall
time (start-up, reading and validating the file, baselines, writing steps.parquet, summary).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

OPTIONS = {"cell": "elman", "hidden": 4, "algo": "tbptt:1", "chunk": 100_000, "seed": 0}
GROUP = 1_000_000  # rows per row group of the generated files


def generate(path: Path, rows: int) -> None:
    """x_k ~ N(0, 1), y_k = 0.8 x_{k-1} + 0.2 e_k, written one row group at a time."""
    rng = np.random.default_rng(0)
    schema = pa.schema([("x", pa.float32()), ("y", pa.float32())])
    previous = np.float32(0.0)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, GROUP):
            x = rng.standard_normal(min(GROUP, rows - start)).astype(np.float32)
            y = 0.8 * np.r_[previous, x[:-1]] + 0.2 * rng.standard_normal(len(x))
            writer.write_table(pa.table({"x": x, "y": y.astype(np.float32)}, schema=schema))
            previous = x[-1]


def measured(command: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MB, wall seconds, stdout) of a command run under /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r") as peak:
        tic = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", peak.name, *command],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - tic
        return int(peak.read().split()[-1]) / 1024, wall, done.stdout


def streamed(data: Path, out: Path) -> dict[str, float]:
    flags = [f"--{key}={value}" for key, value in OPTIONS.items()]
    command = [sys.executable, "-m", "streamgrad.cli", "train", "--data", str(data)]
    command += ["--target", "y", *flags, "--checkpoint-every", "10000000"]
    peak, wall, _ = measured([*command, "--out", str(out), "--force"])
    summary = json.loads((out / "summary.json").read_text())
    return _row(peak, wall, summary["steps"], summary["steps_per_second"])


def in_memory(data: Path) -> dict[str, float]:
    peak, wall, stdout = measured([sys.executable, __file__, "--run-in-memory", str(data)])
    result = json.loads(stdout.strip().splitlines()[-1])
    return _row(peak, wall, result["steps"], result["steps_per_second"])


def _row(peak: float, wall: float, steps: int, speed: float) -> dict[str, float]:
    return {
        "peak_rss_mb": round(peak, 1),
        "wall_seconds": round(wall, 1),
        "train_steps_per_second": round(speed),
        "end_to_end_steps_per_second": round(steps / wall),
    }


def run_in_memory(data: str) -> None:
    """The in-memory path on `data`; prints its steps and steps/s as JSON."""
    from streamgrad.config import TrainConfig, validate
    from streamgrad.data.tabular import read_table
    from streamgrad.training import train_on_stream

    config = validate(TrainConfig, dict(OPTIONS), "option")
    result = train_on_stream(config, read_table(data, "y"))
    speed = result.summary["steps_per_second"]
    print(json.dumps({"steps": result.summary["steps"], "steps_per_second": speed}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e4,1e6,1e7,1e8")
    parser.add_argument("--in-memory", default="1e6,1e7")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sg-bench")
    parser.add_argument("--json", type=Path, default=Path("streaming.json"))
    parser.add_argument("--run-in-memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_in_memory:
        return run_in_memory(args.run_in_memory)
    args.work.mkdir(parents=True, exist_ok=True)
    both = {int(float(s)) for s in args.in_memory.split(",") if s}
    results = []
    for rows in (int(float(s)) for s in args.sizes.split(",")):
        data = args.work / f"stream-{rows}.parquet"
        if not data.exists():
            generate(data, rows)
        row = {"rows": rows, "load": os.getloadavg()[0], "streamed": streamed(data, args.work)}
        if rows in both:
            row["in_memory"] = in_memory(data)
        results.append(row)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(row), flush=True)
    print(markdown(results))


def markdown(results: list[dict]) -> str:
    lines = [
        "| rows | path | peak RSS (MB) | train steps/s | end-to-end steps/s | load |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in results:
        for path in ("streamed", "in_memory"):
            if path in row:
                r = row[path]
                lines.append(
                    f"| {row['rows']:,} | {path.replace('_', '-')} | {r['peak_rss_mb']:.0f} | "
                    f"{r['train_steps_per_second']:,} | {r['end_to_end_steps_per_second']:,} | "
                    f"{row['load']:.1f} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
