"""`influence_norm`: ||J||_F of every algorithm's sensitivity state, per chunk in the history
and in `metrics.csv`; old chunk records without it still load."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli  # tests/ is on sys.path under pytest
from streamgrad.data.synthetic import add_task
from streamgrad.data.tabular import write_table
from streamgrad.gradients import influence_norm, make_algorithm, shadowed
from streamgrad.gradients.base import frobenius
from streamgrad.model import make_model
from streamgrad.online import ChunkRecord, OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule


def walked(spec: str, cell: str = "elman", steps: int = 40) -> tuple[OnlineLearner, object]:
    """A learner after `steps` steps of the Add task, and its state (float64)."""
    model = make_model(cell, 5, 1, density=0.5) if cell == "elman" else make_model(cell, 5, 1)
    learner = OnlineLearner(
        make_algorithm(spec, model), make_optimizer("sgd", make_schedule("constant", 0.01))
    )
    state = learner.init(model.init(jax.random.PRNGKey(0), jnp.float64))
    data = add_task(steps, lags=(2, 3), seed=0)
    state, _ = learner.run(state, jnp.asarray(data.inputs), jnp.asarray(data.targets))
    return learner, state


def norm_of(tree: object) -> float:
    return float(np.sqrt(sum(np.sum(np.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree))))


@pytest.mark.parametrize(
    ("spec", "cell"),
    [
        ("rtrl", "elman"),
        ("rtrl", "diagonal"),
        ("snap1", "gru"),
        ("snap2", "elman"),
        ("rflo:0.5", "elman"),
    ],
)
def test_it_is_the_frobenius_norm_of_the_sensitivity_state(spec: str, cell: str) -> None:
    learner, state = walked(spec, cell)
    sensitivities = state.algo_state.traces if spec.startswith("rflo") else state.algo_state
    expected = norm_of(sensitivities)
    assert expected > 0
    assert float(influence_norm(learner.algorithm, state.algo_state)) == pytest.approx(
        expected, rel=1e-12
    )


def test_uoro_reports_the_norm_of_its_rank_one_estimate() -> None:
    learner, state = walked("uoro:2")
    s, theta = state.algo_state.s, state.algo_state.theta
    outer = np.concatenate(
        [np.outer(s, np.ravel(leaf)) for leaf in jax.tree_util.tree_leaves(theta)], axis=1
    )
    assert float(influence_norm(learner.algorithm, state.algo_state)) == pytest.approx(
        np.linalg.norm(outer), rel=1e-10
    )


def test_wrappers_report_the_inner_norm_and_truncation_reports_none() -> None:
    plain, plain_state = walked("rtrl")
    every, every_state = walked("rtrl:every=7")
    assert float(influence_norm(every.algorithm, every_state.algo_state)) > 0
    assert float(influence_norm(every.algorithm, every_state.algo_state)) != float(
        influence_norm(plain.algorithm, plain_state.algo_state)
    )  # the trajectories differ (fewer updates), the quantity is the same kind
    algorithm = every.algorithm
    assert float(influence_norm(algorithm, every_state.algo_state)) == pytest.approx(
        norm_of(every_state.algo_state.inner), rel=1e-12
    )
    model = plain.algorithm.model
    shadow = shadowed(make_algorithm("snap1", model), make_algorithm("rtrl", model))
    state = shadow.init(
        model.init(jax.random.PRNGKey(0), jnp.float64), model.cell.initial_hidden(jnp.float64)
    )
    assert float(influence_norm(shadow, state)) == 0.0
    tbptt, tbptt_state = walked("tbptt:4")
    assert math.isnan(float(influence_norm(tbptt.algorithm, tbptt_state.algo_state)))


def test_the_norm_does_not_overflow_before_the_entries_do() -> None:
    big = {"a": jnp.full((4, 4), 1e30, jnp.float32), "b": jnp.zeros((3,), jnp.float32)}
    assert float(frobenius(big)) == pytest.approx(4e30, rel=1e-6)
    assert float(frobenius({"a": jnp.zeros((2, 2))})) == 0.0
    assert math.isinf(float(frobenius({"a": jnp.array([1.0, jnp.inf])})))
    assert math.isnan(float(frobenius({"a": jnp.array([1.0, jnp.nan])})))


def test_chunk_records_of_older_checkpoints_still_load() -> None:
    record = ChunkRecord(*[100, 0.5, 0.6, float("nan"), 1000.0])
    assert record.step == 100 and math.isnan(record.influence_norm)


def test_train_writes_the_influence_norm_per_chunk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "add.csv"
    write_table(add_task(400, lags=(2, 3), seed=0), table)
    out = tmp_path / "run"
    args = ["train", "--data", str(table), "--target", "y", "--hidden", "6", "--chunk", "100"]
    code, err = run_cli([*args, "--algo", "rtrl:every=10", "--out", str(out)], capsys)
    assert code == 0, err
    metrics = pd.read_csv(out / "metrics.csv")
    assert "influence_norm" in metrics.columns
    assert len(metrics) == 4 and (metrics["influence_norm"] > 0).all()
