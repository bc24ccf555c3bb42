"""The benchmark's quick mode runs end to end and reports every key (no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamgrad.bench import (
    bench_main,
    benchmark_table,
    fit_slope,
    plot_benchmark,
    run_benchmark,
)

RUN_KEYS = {
    "cell",
    "algorithm",
    "N",
    "P",
    "chunk_steps",
    "repeats",
    "median_us",
    "min_us",
    "steps_per_second",
    "finite",
    "product_us",
    "ratio",
}


@pytest.fixture(scope="module")
def quick() -> dict:
    return run_benchmark(
        cells=("elman", "meanfield:shared"),
        algorithms=("rtrl", "rtrl:dense", "tbptt:10", "no-such-algorithm"),
        quick=True,
        dense_flop_limit=1e5,
    )


def test_quick_benchmark_reports_every_key(quick: dict) -> None:
    assert set(quick) == {
        "date",
        "machine",
        "versions",
        "settings",
        "gemm",
        "products",
        "runs",
        "slopes",
        "skipped",
    }
    assert {"load_average_start", "load_average_end", "cpu_count", "usable_cores"} <= set(
        quick["machine"]
    )
    assert {"python", "jax", "jaxlib", "numpy", "streamgrad"} <= set(quick["versions"])
    assert quick["gemm"]["gflops"] > 0
    assert all(set(row) == RUN_KEYS for row in quick["runs"])
    assert all(row["finite"] and row["median_us"] >= row["min_us"] > 0 for row in quick["runs"])
    timed = {(row["cell"], row["algorithm"], row["N"]) for row in quick["runs"]}
    assert ("elman", "rtrl", 8) in timed and ("meanfield:shared", "rtrl", 64) in timed
    # the product is timed wherever dense-path RTRL ran, and both layouts are reported
    assert {(p["cell"], p["N"]) for p in quick["products"]} == {
        ("elman", 4),
        ("elman", 8),
        ("meanfield:shared", 16),
    }
    assert all(p["product_us"] > 0 and p["product_transposed_us"] > 0 for p in quick["products"])
    elman = [row for row in quick["runs"] if row["cell"] == "elman"]
    assert all(row["ratio"] is not None for row in elman)
    assert {(s["cell"], s["algorithm"]) for s in quick["slopes"]} >= {
        ("meanfield:shared", "rtrl"),
        ("elman", "rtrl"),
    }
    reasons = {(s["algorithm"], s.get("N")): s["reason"] for s in quick["skipped"]}
    assert ("no-such-algorithm", None) in reasons  # unknown to make_algorithm: skipped
    assert "flops" in reasons[("rtrl:dense", 64)]  # meanfield N=64 dense path over the limit
    json.dumps(quick)


def test_table_and_plot(quick: dict, tmp_path: Path) -> None:
    table = benchmark_table(quick)
    assert "| elman | rtrl | 8 |" in table and "GFLOP/s" in table and "load average" in table
    assert plot_benchmark(quick, tmp_path / "bench.png").stat().st_size > 1000


def test_fit_slope_uses_large_sizes_and_falls_back_to_all() -> None:
    points = [(100, 300, 1.0), (1000, 3000, 10.0), (10_000, 30_000, 100.0)]
    fitted = fit_slope(points, 1e3)
    assert fitted["slope"] == pytest.approx(1.0) and fitted["fit_sizes"] == [1000, 10_000]
    assert fit_slope(points[:2], 1e3)["fit_sizes"] == [100, 1000]
    assert fit_slope(points[:1], 1e3)["slope"] is None


def test_bench_main_quick_writes_json_and_plot(tmp_path: Path) -> None:
    result = bench_main(tmp_path / "bench.json", tmp_path / "bench.png", cores=None, quick=True)
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["settings"]["quick"] and len(written["runs"]) == len(result["runs"])
    assert (tmp_path / "bench.png").stat().st_size > 1000


def test_pin_to_core_before_jax_starts() -> None:
    core = min(os.sched_getaffinity(0))
    script = (
        "import os, jax.numpy as jnp\n"
        "from streamgrad.bench import pin_to_core\n"
        f"print(pin_to_core({core}))\n"
        "jnp.ones(3).block_until_ready()\n"
        "print(sorted(os.sched_getaffinity(0)), os.environ['XLA_FLAGS'])\n"
    )
    env = {**os.environ, "XLA_FLAGS": ""}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.splitlines() == [
        f"[{core}]",
        f"[{core}] --xla_cpu_multi_thread_eigen=false",
    ]
