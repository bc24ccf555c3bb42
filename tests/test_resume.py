"""Kill `streamgrad train` with SIGKILL at random moments, resume, and compare bitwise with an
uninterrupted run; refuse mismatched resumes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamgrad.data.synthetic import add_task
from streamgrad.data.tabular import write_table

COMMAND = [sys.executable, "-m", "streamgrad.cli", "train"]


def final_leaves(out: Path) -> dict[str, np.ndarray]:
    """State arrays of the final checkpoint (its header holds wall times, which differ)."""
    newest = sorted((out / "checkpoints").glob("checkpoint-*.npz"))[-1]
    with np.load(newest) as archive:
        return {name: archive[name] for name in archive.files if name.startswith("leaf_")}


def launch(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("algo", ["rtrl", "tbptt:7"])
def test_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path: Path, algo: str) -> None:
    data = tmp_path / "stream.csv"
    write_table(add_task(30_000, lags=(3, 6), seed=1), data)
    options = [
        "--data",
        str(data),
        "--target",
        "y",
        "--algo",
        algo,
        "--hidden",
        "24",
        "--chunk",
        "500",
        "--checkpoint-every",
        "1000",
        "--seed",
        "3",
    ]
    reference = tmp_path / "reference"
    subprocess.run([*COMMAND, *options, "--out", str(reference)], check=True, capture_output=True)

    out = tmp_path / "interrupted"
    rng = random.Random(algo)
    process = launch([*options, "--out", str(out)])
    kills = 0
    for _ in range(4):
        deadline = time.monotonic() + 60
        while not list((out / "checkpoints").glob("checkpoint-*.npz")):
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        process = launch(["--out", str(out), "--resume"])
    assert process.wait(timeout=120) == 0, process.stderr.read()
    assert kills >= 1

    expected = json.loads((reference / "summary.json").read_text())
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["resumed"] is True
    for key in ("overall", "last_10_percent", "steps"):
        assert resumed[key] == expected[key]
    reference_leaves, resumed_leaves = final_leaves(reference), final_leaves(out)
    assert reference_leaves.keys() == resumed_leaves.keys()
    for name, array in reference_leaves.items():
        np.testing.assert_array_equal(array, resumed_leaves[name], err_msg=name)


def test_resume_refuses_changed_options_and_changed_data(tmp_path: Path) -> None:
    data = tmp_path / "stream.csv"
    write_table(add_task(2_000, seed=2), data)
    out = tmp_path / "run"
    subprocess.run(
        [
            *COMMAND,
            "--data",
            str(data),
            "--target",
            "y",
            "--hidden",
            "4",
            "--chunk",
            "500",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    changed = subprocess.run(
        [*COMMAND, "--out", str(out), "--resume", "--lr", "0.5"], capture_output=True, text=True
    )
    assert changed.returncode == 2 and "--lr" in changed.stderr
    write_table(add_task(2_000, seed=3), data)  # same file name, different content
    modified = subprocess.run(
        [*COMMAND, "--out", str(out), "--resume"], capture_output=True, text=True
    )
    assert modified.returncode == 2 and "data_sha256" in modified.stderr
    assert "Traceback" not in modified.stderr
    missing = subprocess.run(
        [*COMMAND, "--out", str(tmp_path / "none"), "--resume"], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no run to resume" in missing.stderr


def test_divergence_writes_what_happened_to_the_summary(tmp_path: Path) -> None:
    data = tmp_path / "stream.csv"
    write_table(add_task(3_000, seed=4), data)
    out = tmp_path / "run"
    result = subprocess.run(
        [
            *COMMAND,
            "--data",
            str(data),
            "--target",
            "y",
            "--lr",
            "1e4",
            "--algo",
            "tbptt:50",
            "--chunk",
            "500",
            "--checkpoint-every",
            "500",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "diverged at step" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"]["step"] >= 1
