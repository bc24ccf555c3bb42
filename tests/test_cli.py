"""The command line: outputs of a run, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from streamgrad.data.synthetic import add_task
from streamgrad.data.tabular import write_table


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "add.csv"
    write_table(add_task(600, lags=(2, 3), seed=0), path)
    return path


def test_train_writes_metrics_summary_and_plot(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, err = run_cli(
        [
            "train",
            "--data",
            str(table),
            "--target",
            "y",
            "--out",
            str(out),
            "--hidden",
            "6",
            "--chunk",
            "200",
            "--lr",
            "0.05",
        ],
        capsys,
    )
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {
        "metrics.csv",
        "summary.json",
        "loss.png",
        "run.json",
        "checkpoints",
        "steps.parquet",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 600
    assert summary["data"]["rows"] == 600 and len(summary["data"]["sha256"]) == 64
    assert summary["last_10_percent"]["steps"] == 60
    assert summary["versions"]["jax"]
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("method,step,loss,running_loss,accuracy,steps_per_second")
    assert len(metrics) == 1 + 3
    assert str(out) in err


def test_same_seed_gives_the_same_summary(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    losses = []
    for name in ("a", "b"):
        code, err = run_cli(
            [
                "train",
                "--data",
                str(table),
                "--target",
                "y",
                "--hidden",
                "5",
                "--algo",
                "tbptt",
                "--tau",
                "4",
                "--seed",
                "7",
                "--out",
                str(tmp_path / name),
            ],
            capsys,
        )
        assert code == 0, err
        losses.append(json.loads((tmp_path / name / "summary.json").read_text())["overall"])
    assert losses[0] == losses[1]


def test_config_file_values_and_command_line_override(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text('cell = "diagonal"\nhidden = 4\nlr = 0.02\n')
    code, err = run_cli(
        [
            "train",
            "--data",
            str(table),
            "--target",
            "y",
            "--config",
            str(config),
            "--lr",
            "0.03",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "o" / "summary.json").read_text())["config"]
    assert (saved["cell"], saved["hidden"], saved["lr"]) == ("diagonal", 4, 0.03)


def bad_inputs(tmp_path: Path, table: Path) -> list[tuple[list[str], str]]:
    nan_file = tmp_path / "nan.csv"
    nan_file.write_text("x,y\n1,0.5\nnan,0.5\n")
    text_file = tmp_path / "text.csv"
    text_file.write_text("x,y\n1,0.5\n1,abc\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("hiden = 3\n")
    stamped = tmp_path / "stamped.csv"
    stamped.write_text("t,x,y\n0.5,1,0.5\n0.75,0,0.5\n0.75,1,0.5\n")
    base = ["--target", "y", "--out", str(tmp_path / "never")]
    return [
        (["train", "--data", str(stamped), *base, "--time", "t"], "row 4, column 't'"),
        (["train", "--data", str(stamped), *base, "--time", "when"], "'when'"),
        (["train", "--data", str(table), *base, "--algo", "tbptt:1000"], "at least 1000"),
        (["train", "--data", str(tmp_path / "missing.csv"), *base], "missing.csv"),
        (["train", "--data", str(table), "--target", "nope", "--out", str(tmp_path / "n")], "nope"),
        (["train", "--data", str(text_file), *base], "row 3"),
        (["train", "--data", str(nan_file), *base], "row 3"),
        (["train", "--data", str(empty), *base], "empty.csv"),
        (["train", "--data", str(table), *base, "--bogus"], "--bogus"),
        (["train", "--data", str(table), *base, "--cell", "lstm"], "cell"),
        (["train", "--data", str(table), *base, "--lr", "-1"], "--lr"),
        (["train", "--data", str(table), *base, "--algo", "tbptt:x"], "tbptt"),
        (["train", "--data", str(table), *base, "--config", str(bad_config)], "hiden"),
        (
            ["train", "--data", str(table), *base, "--cell", "elman", "--coupling", "dense"],
            "coupling",
        ),
        (["experiment", "rtrl-vs-tbptt", "--lags", "9,5", "--out", str(tmp_path / "e")], "lags"),
        (["nope"], "nope"),
    ]


def test_bad_input_gives_one_line_and_exit_code_2(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, needle in bad_inputs(tmp_path, table):
        code, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, err)
        assert needle in lines[0], (args, err)
        assert "Traceback" not in err


def test_existing_output_folder_is_refused_without_force(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    args = ["train", "--data", str(table), "--target", "y", "--hidden", "3", "--out", str(out)]
    code, err = run_cli(args, capsys)
    assert code == 2 and "--force" in err
    assert (out / "keep.txt").read_text() == "precious"
    code, err = run_cli([*args, "--force"], capsys)
    assert code == 0, err


def test_divergence_is_a_user_error(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(
        [
            "train",
            "--data",
            str(table),
            "--target",
            "y",
            "--lr",
            "1e4",
            "--algo",
            "tbptt:50",
            "--out",
            str(tmp_path / "d"),
        ],
        capsys,
    )
    assert code == 2 and "diverged at step" in err
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["diverged"]["step"] >= 1


def test_lr_backoff_recovers_a_diverging_run(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b"
    args = ["train", "--data", str(table), "--target", "y", "--algo", "rtrl", "--hidden", "4"]
    code, err = run_cli([*args, "--lr", "1e4", "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "diverged" in err
    code, err = run_cli(
        [*args, "--lr", "1e4", "--lr-backoff", "0.01", "--max-backoffs", "6", "--out", str(out)],
        capsys,
    )
    assert code == 0, err
    backoffs = json.loads((out / "summary.json").read_text())["lr_backoffs"]
    assert 1 <= len(backoffs) <= 6 and backoffs[-1]["lr_scale"] < 1


def test_gradcheck_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gradcheck.json"
    code, err = run_cli(["gradcheck", "--steps", "8", "--json", str(path)], capsys)
    assert code == 0, err
    report = json.loads(path.read_text())
    assert report["passed"] and report["max_error"] <= 1e-10
    cells = {(r["cell"], r["coupling"]) for r in report["rows"]}
    assert len(cells) == 6


def test_rtrl_vs_tbptt_experiment_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    code, err = run_cli(
        [
            "experiment",
            "rtrl-vs-tbptt",
            "--steps",
            "3000",
            "--hidden",
            "8",
            "--lrs",
            "0.01",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    assert {"table.csv", "metrics.csv", "summary.json", "comparison.png"} <= {
        p.name for p in out.iterdir()
    }
    summary = json.loads((out / "summary.json").read_text())
    methods = {(m["updates_every"], m["method"]) for m in summary["methods"]}
    assert methods == {
        (1, "rtrl"),
        *((1, f"tbptt:1:{tau}") for tau in (3, 7, 14)),
        *((tau, spec) for tau in (3, 7, 14) for spec in (f"rtrl:every={tau}", f"tbptt:{tau}")),
    }
    assert all(np.isfinite(m["loss"]) and m["chosen_most"] == 0.01 for m in summary["methods"])


def test_console_script_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamgrad.cli",
            "train",
            "--data",
            str(tmp_path / "x.csv"),
            "--target",
            "y",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr


def test_alignment_experiment_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "align"
    code, err = run_cli(
        ["experiment", "alignment", "--steps", "400", "--hidden", "4", "--out", str(out)], capsys
    )
    assert code == 0, err
    rows = {r["method"]: r for r in json.loads((out / "summary.json").read_text())["results"]}
    assert rows["rtrl"]["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert rows["rtrl"]["relative_error"] == pytest.approx(0.0, abs=1e-5)
    assert rows["snap1"]["cosine"] < 0.99 and rows["snap1"]["steps"] > 0
