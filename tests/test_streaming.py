"""`train` on a table read as a stream: the same numbers as the in-memory path, exact resume
after kill -9, checkpoints that do not grow with the stream, located errors in later batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from streamgrad.config import TrainConfig
from streamgrad.data.batches import TableStream
from streamgrad.data.dataset import Stream
from streamgrad.data.synthetic import add_task
from streamgrad.data.tabular import read_table, write_table
from streamgrad.errors import DataError
from streamgrad.stream_run import train_table
from streamgrad.training import train_on_stream
from test_resume import final_leaves  # tests/ is on sys.path under pytest

COMMAND = [sys.executable, "-m", "streamgrad.cli", "train"]


def labelled(rows: int, seed: int = 0) -> Stream:
    """A 3-class stream whose label is the sign pattern of the last two inputs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(rows)
    labels = (x > 0).astype(np.int64) + (np.r_[0.0, x[:-1]] > 0)
    return Stream(x[:, None], labels, ("x",), "y", n_classes=3)


def with_time(stream: Stream) -> Stream:
    """The stream with an increasing time column 't' as its first input."""
    stamps = np.cumsum(np.random.default_rng(1).uniform(0.5, 1.5, len(stream)))
    inputs = np.c_[stamps, stream.inputs]
    return Stream(inputs, stream.targets, ("t", *stream.input_names), "y", stream.n_classes)


CASES = {
    "csv-regression": ("s.csv", lambda: add_task(2_600, lags=(2, 4), seed=1), {}),
    "parquet-regression-standardized": (
        "s.parquet",
        lambda: with_time(add_task(2_600, lags=(2, 4), seed=2)),
        {"standardize": True, "time": "t"},
    ),
    "csv-classification": ("s.csv", lambda: labelled(2_600), {"standardize": True}),
    "parquet-classification": ("s.parquet", lambda: labelled(2_600, seed=3), {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_streamed_run_equals_the_in_memory_run_bitwise(tmp_path: Path, case: str) -> None:
    """Chunks of 300 steps over pieces of 170 records (Parquet) or 4 KiB (CSV, ~170 lines)."""
    name, make, extra = CASES[case]
    data = tmp_path / name
    write_table(make(), data)
    time_column = extra.get("time")
    standardize = extra.get("standardize", False)
    config = TrainConfig(hidden=6, algo="tbptt:3", chunk=300, lr=0.05, standardize=standardize)
    table = TableStream(data, "y", time=time_column, piece_rows=170, piece_bytes=4096)
    streamed = train_table(config, table, tmp_path / "run", checkpoint_every=1000)
    whole = read_table(data, "y", time=time_column)
    reference = train_on_stream(config, whole)
    steps = pd.read_parquet(tmp_path / "run" / "steps.parquet")
    assert len(steps) == len(whole) == table.position.rows
    np.testing.assert_array_equal(steps["loss"].to_numpy(), reference.history.losses)
    outputs = steps.filter(regex="^output_").to_numpy()
    np.testing.assert_array_equal(outputs, reference.history.outputs)
    for baseline, losses in reference.baselines.items():
        np.testing.assert_array_equal(steps[f"{baseline} loss"].to_numpy(), losses)
    for ours, theirs in zip(
        jax.tree_util.tree_leaves(streamed.state.params),
        jax.tree_util.tree_leaves(reference.state.params),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert streamed.summary["skill"]["best_baseline"] == reference.summary["skill"]["best_baseline"]
    for stretch in ("overall", "last_10_percent"):
        for key, value in reference.summary[stretch].items():
            assert streamed.summary[stretch][key] == pytest.approx(value, rel=1e-12)
    chunk_records = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(chunk_records["step"]) == [c.step for c in reference.history.chunks]


def test_kill_and_resume_of_a_streamed_run_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    data = tmp_path / "stream.parquet"
    write_table(add_task(40_000, lags=(3, 6), seed=4), data)
    options = ["--data", str(data), "--target", "y", "--algo", "rtrl", "--hidden", "16"]
    options += ["--chunk", "700", "--checkpoint-every", "2000", "--standardize"]
    reference = tmp_path / "reference"
    subprocess.run([*COMMAND, *options, "--out", str(reference)], check=True, capture_output=True)
    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        [*COMMAND, *options, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    kills = 0
    for pause in (0.3, 0.0, 0.5):
        deadline = time.monotonic() + 120
        while not list((out / "checkpoints").glob("checkpoint-*.npz")):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        time.sleep(pause)
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        process = subprocess.Popen(
            [*COMMAND, "--out", str(out), "--resume"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    assert kills >= 1
    expected = pd.read_parquet(reference / "steps.parquet")
    resumed = pd.read_parquet(out / "steps.parquet")
    pd.testing.assert_frame_equal(resumed, expected, check_exact=True)
    timeless = ["method", "step", "loss", "running_loss", "accuracy"]
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "metrics.csv")[timeless], pd.read_csv(reference / "metrics.csv")[timeless]
    )
    expected_leaves, resumed_leaves = final_leaves(reference), final_leaves(out)
    assert expected_leaves.keys() == resumed_leaves.keys()
    for name, array in expected_leaves.items():
        np.testing.assert_array_equal(array, resumed_leaves[name], err_msg=name)


def test_checkpoint_size_does_not_grow_with_the_stream(tmp_path: Path) -> None:
    sizes = []
    for rows in (2_000, 40_000):
        data = tmp_path / f"s{rows}.parquet"
        write_table(add_task(rows, seed=5), data)
        out = tmp_path / f"run{rows}"
        config = TrainConfig(hidden=8, algo="rtrl", chunk=500)
        train_table(config, TableStream(data, "y"), out, checkpoint_every=1000)
        sizes.append(max(p.stat().st_size for p in (out / "checkpoints").iterdir()))
    assert abs(sizes[1] - sizes[0]) < 256, sizes  # a few digits of metadata, no arrays of T


def malformed(tmp_path: Path, suffix: str, cell: object, row: int) -> Path:
    """A 5,000-row table whose cell x of data row `row` (0-based) is `cell`."""
    stream = add_task(5_000, seed=6)
    frame = pd.DataFrame({"x": stream.inputs[:, 0].astype(object), "y": stream.targets})
    frame.loc[row, "x"] = cell
    path = tmp_path / f"bad{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.astype({"x": str}).to_parquet(path)
    return path


def first_error(path: Path, **options: object) -> str:
    table = TableStream(path, "y", piece_rows=300, piece_bytes=2048, **options)
    with pytest.raises(DataError) as streamed:
        for _ in table.batches(700):
            pass
    with pytest.raises(DataError) as whole:
        read_table(path, "y", **options)
    assert str(streamed.value) == str(whole.value)
    return str(streamed.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_malformed_row_in_a_later_batch_gives_the_same_located_error(
    tmp_path: Path, suffix: str
) -> None:
    message = first_error(malformed(tmp_path, suffix, "oops", 4_321))
    row = 4_321 + (2 if suffix == ".csv" else 1)
    assert f"row {row}, column 'x', value 'oops': not a number" in message


def test_time_goes_back_across_a_batch_boundary(tmp_path: Path) -> None:
    stream = with_time(add_task(3_000, seed=7))
    stamps = stream.inputs[:, 0].copy()
    stamps[2_100] = stamps[2_099]  # record 2_101, the first of a piece of 300 records
    inputs = np.c_[stamps, stream.inputs[:, 1:]]
    path = tmp_path / "t.parquet"
    write_table(Stream(inputs, stream.targets, stream.input_names, "y"), path)
    message = first_error(path, time="t")
    assert "row 2101, column 't'" in message and "duplicated time stamp" in message


def test_skipped_rows_are_counted_across_batches(tmp_path: Path) -> None:
    path = malformed(tmp_path, ".csv", "", 10)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[[1_500, 1_501, 4_999], "x"] = ["nan", "x", "inf"]
    frame.to_csv(path, index=False)
    table = TableStream(path, "y", skip_invalid=True, piece_bytes=2048)
    targets = np.concatenate([y for _, y in table.batches(700)])
    whole = read_table(path, "y", skip_invalid=True)
    np.testing.assert_array_equal(targets, whole.targets)
    assert table.position.skipped == len(whole.skipped_rows) == 4
    assert table.position.first_skipped == list(whole.skipped_rows)
