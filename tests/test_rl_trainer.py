"""`OnlineActorCritic`: exact resume through save/load, predict, and `streamgrad rl train`."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli  # tests/ is on sys.path under pytest
from streamgrad.errors import UserError
from streamgrad.rl.trainer import OnlineActorCritic

SMALL = {"hidden": 3, "log_every": 25, "dtype": "float64"}


def _leaves(agent: OnlineActorCritic) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(agent.state)]


@pytest.mark.parametrize(
    ("env", "options"),
    [("FrozenLake-v1", {}), ("tmaze:3", {"algo": "tbptt:1:2"})],
)
def test_learn_2n_equals_learn_n_save_load_learn_n_bitwise(
    tmp_path: Path, env: str, options: dict
) -> None:
    straight = OnlineActorCritic(env, seed=3, **SMALL, **options).learn(120, progress_bar=False)
    first = OnlineActorCritic(env, seed=3, **SMALL, **options).learn(61, progress_bar=False)
    first.save(tmp_path / "agent")
    resumed = OnlineActorCritic.load(tmp_path / "agent").learn(59, progress_bar=False)
    assert resumed.num_timesteps == straight.num_timesteps == 120
    for a, b in zip(_leaves(straight), _leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.episodes == straight.episodes > 0
    assert pd.DataFrame(resumed.history).equals(pd.DataFrame(straight.history))
    assert resumed._actions == straight._actions  # the same point of the same episode
    # a different seed gives a different run (the test can fail)
    other = OnlineActorCritic(env, seed=4, **SMALL, **options).learn(120, progress_bar=False)
    assert any(
        not np.array_equal(a, b) for a, b in zip(_leaves(other), _leaves(straight), strict=True)
    )


def test_predict_follows_the_recurrent_state_and_leaves_learning_alone() -> None:
    agent = OnlineActorCritic("tmaze:3", seed=0, **SMALL)
    before = _leaves(agent)
    obs, _ = agent.env.reset(seed=1)
    action, hidden = agent.predict(obs, deterministic=True)
    assert action in (0, 1, 2) and hidden.shape == (3,)
    again, _ = agent.predict(obs, state=hidden, episode_start=True, deterministic=True)
    assert again == action  # episode_start restarts from S_0 = 0
    _, moved = agent.predict(obs, state=hidden, deterministic=True)
    assert not np.array_equal(moved, hidden)
    for a, b in zip(before, _leaves(agent), strict=True):
        np.testing.assert_array_equal(a, b)


def test_callback_can_stop_learning_and_bad_options_are_user_errors(tmp_path: Path) -> None:
    agent = OnlineActorCritic("tmaze:3", seed=0, **SMALL)
    agent.learn(50, callback=lambda a: a.num_timesteps < 7, progress_bar=False)
    assert agent.num_timesteps == 7
    with pytest.raises(UserError, match="tbptt:1:4"):
        OnlineActorCritic("tmaze:3", algo="tbptt:4")
    with pytest.raises(UserError, match="no saved agent"):
        OnlineActorCritic.load(tmp_path)


def test_rl_train_command_writes_results_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["rl", "train", "--env", "FrozenLake-v1", "--out", str(out), "--hidden", "4"]
    code, err = run_cli([*args, "--steps", "1500"], capsys)
    assert code == 0, err
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == ["steps", "episodes", "mean_return", "success_rate"]
    assert metrics["steps"].tolist() == [1000]
    assert (out / "learning.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1500 and summary["config"]["env"] == "FrozenLake-v1"
    code, err = run_cli([*args, "--steps", "1500", "--resume"], capsys)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["resumed"] is True
    code, err = run_cli([*args, "--steps", "2000", "--resume"], capsys)
    assert code == 2 and "--steps" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "NoSuchEnv-v0"], "--env NoSuchEnv-v0"),
        (["--env", "tmaze:3", "--algo", "tbptt:5"], "tbptt:1:5"),
        (["--env", "tmaze:3", "--cell", "lstm"], "unknown cell"),
        (["--env", "Pendulum-v1"], "Discrete action"),
        (["--env", "tmaze:3", "--gamma", "1.5"], "gamma"),
    ],
)
def test_rl_train_bad_options_give_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = run_cli(["rl", "train", "--out", str(tmp_path / "x"), *args], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
