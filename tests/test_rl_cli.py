"""`streamgrad experiment actor-critic` on the command line: outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli  # tests/ is on sys.path under pytest


def test_actor_critic_command_writes_its_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ac"
    code, _ = run_cli(
        ["experiment", "actor-critic", "--quick", "--seeds", "0", "--t-max", "3", "--out",
         str(out)], capsys,
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"] == "random" and summary["seeds"] == [0]
    assert summary["config"]["t_max"] == 3
    assert set(summary["ode_distance"]) == {"100", "1000"}
    assert (out / "ode_distance.png").exists() and (out / "metrics.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "NoSuchEnv-v0"], "--env NoSuchEnv-v0"),
        (["--env", "CartPole-v1"], "transition table"),
        (["--sizes", "100,x"], "--sizes"),
        (["--sizes", "1"], "--sizes"),
    ],
)
def test_actor_critic_bad_options_give_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = run_cli(["experiment", "actor-critic", "--out", str(tmp_path / "x"), *args], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
