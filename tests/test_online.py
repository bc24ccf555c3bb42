"""The online learner: prequential semantics, bulk == live stream, reproducibility, learning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from streamgrad.data.synthetic import add_task
from streamgrad.errors import DivergenceError
from streamgrad.gradients import make_algorithm
from streamgrad.model import make_model
from streamgrad.online import LrBackoff, OnlineLearner, StreamLearner
from streamgrad.optim import make_optimizer, make_schedule, robbins_monro, with_lr_scale


def learner_for(
    spec: str,
    cell: str = "elman",
    n_classes: int | None = None,
    lr: float = 0.05,
    optimizer: str = "sgd",
    dtype=jnp.float64,
) -> tuple[OnlineLearner, object]:
    model = make_model(cell, 8, 1 if n_classes is None else 4, n_classes=n_classes)
    learner = OnlineLearner(
        make_algorithm(spec, model), make_optimizer(optimizer, make_schedule("constant", lr))
    )
    return learner, learner.init(model.init(jax.random.PRNGKey(0), dtype))


@pytest.mark.parametrize("spec", ["rtrl", "tbptt:4"])
def test_learn_one_matches_bulk_fit(spec: str) -> None:
    stream = add_task(300, lags=(2, 4), seed=1)
    learner, state = learner_for(spec)
    bulk_state, history = learner.fit(state, stream.inputs, stream.targets, chunk_size=64)
    live = StreamLearner(*learner_for(spec))
    losses, predictions = [], []
    for x, y in zip(stream.inputs, stream.targets, strict=True):
        predictions.append(live.predict_one(x))
        losses.append(live.learn_one(x, y))
    np.testing.assert_allclose(losses, history.losses, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.stack(predictions), history.outputs, rtol=1e-10, atol=1e-12)
    for a, b in zip(
        jax.tree_util.tree_leaves(live.state.params),
        jax.tree_util.tree_leaves(bulk_state.params),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_prediction_is_made_before_the_target_is_seen() -> None:
    """Changing y_k must not change o_k (only later outputs)."""
    stream = add_task(50, seed=2)
    learner, state = learner_for("rtrl")
    _, first = learner.fit(state, stream.inputs, stream.targets, chunk_size=50)
    targets = stream.targets.copy()
    targets[20] += 1.0
    learner, state = learner_for("rtrl")
    _, second = learner.fit(state, stream.inputs, targets, chunk_size=50)
    np.testing.assert_array_equal(first.outputs[:21], second.outputs[:21])
    assert not np.allclose(first.outputs[21:], second.outputs[21:])


def test_chunking_does_not_change_the_result() -> None:
    stream = add_task(200, seed=3)
    learner, state = learner_for("rtrl")
    _, whole = learner.fit(state, stream.inputs, stream.targets, chunk_size=200)
    learner, state = learner_for("rtrl")
    _, pieces = learner.fit(state, stream.inputs, stream.targets, chunk_size=33)
    np.testing.assert_allclose(whole.losses, pieces.losses, rtol=1e-12, atol=1e-14)
    assert [c.step for c in pieces.chunks] == [33, 66, 99, 132, 165, 198, 200]


def test_same_seed_same_numbers_float32() -> None:
    stream = add_task(500, seed=4)
    runs = []
    for _ in range(2):
        learner, state = learner_for("rtrl", dtype=jnp.float32, optimizer="adam", lr=1e-3)
        _, history = learner.fit(state, stream.inputs, stream.targets, chunk_size=128)
        runs.append(history.losses)
    assert runs[0].dtype == np.float32
    np.testing.assert_array_equal(runs[0], runs[1])


def test_classification_reports_accuracy() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    inputs = np.eye(4)[labels]  # the label is visible in the input: easy to learn
    learner, state = learner_for("rtrl", n_classes=3, lr=0.2)
    _, history = learner.fit(state, inputs, labels, chunk_size=100)
    assert history.outputs.shape == (400, 3)
    assert history.chunks[-1].accuracy > 0.9
    assert history.chunks[0].accuracy < history.chunks[-1].accuracy


def test_divergence_is_reported_with_its_step() -> None:
    stream = add_task(2000, seed=5)
    learner, state = learner_for("tbptt:50", lr=50.0)
    with pytest.raises(DivergenceError, match=r"diverged at step \d+"):
        learner.fit(state, stream.inputs, stream.targets * 1e3, chunk_size=500)


def backoff_learner(lr: float) -> tuple[OnlineLearner, object]:
    learner, state = learner_for("rtrl", lr=lr)
    scaled = OnlineLearner(learner.algorithm, with_lr_scale(learner.optimizer))
    return scaled, scaled.init(state.params)


def test_lr_backoff_reruns_the_chunk_with_a_lower_learning_rate() -> None:
    """lr 0.5 diverges, and so does 0.25; each back-off restarts the single chunk from the
    initial state with half the learning rate, so the run equals one made with lr 0.125."""
    stream = add_task(1500, seed=5)
    learner, state = backoff_learner(0.5)
    with pytest.raises(DivergenceError):
        learner.fit(state, stream.inputs, stream.targets, chunk_size=1500)
    learner, state = backoff_learner(0.5)
    _, history = learner.fit(
        state, stream.inputs, stream.targets, chunk_size=1500, backoff=LrBackoff(0.5, 3)
    )
    assert [scale for _, scale in history.backoffs] == [0.5, 0.25]
    assert history.backoffs[0][0] < history.backoffs[1][0]
    plain, plain_state = learner_for("rtrl", lr=0.125)
    _, expected = plain.fit(plain_state, stream.inputs, stream.targets, chunk_size=1500)
    np.testing.assert_allclose(history.losses, expected.losses, rtol=1e-10)


def test_lr_backoff_keeps_earlier_chunks_and_gives_up_after_max_times() -> None:
    stream = add_task(1500, seed=5)
    learner, state = backoff_learner(0.5)
    with pytest.raises(DivergenceError, match="after 1 learning-rate back-offs"):
        learner.fit(state, stream.inputs, stream.targets, chunk_size=100, backoff=LrBackoff(0.5, 1))
    learner, state = backoff_learner(0.5)
    _, history = learner.fit(
        state, stream.inputs, stream.targets, chunk_size=100, backoff=LrBackoff(0.5, 3)
    )
    first_divergence = history.backoffs[0][0]
    assert first_divergence > 100  # so the first chunk is kept as run with lr 0.5
    plain, plain_state = learner_for("rtrl", lr=0.5)
    _, head = plain.fit(plain_state, stream.inputs[:100], stream.targets[:100], chunk_size=100)
    np.testing.assert_allclose(history.losses[:100], head.losses, rtol=1e-10)
    # without divergence the multiplier (1) changes nothing beyond rounding
    learner, state = backoff_learner(0.05)
    _, scaled = learner.fit(state, stream.inputs, stream.targets, chunk_size=500)
    plain, plain_state = learner_for("rtrl", lr=0.05)
    _, expected = plain.fit(plain_state, stream.inputs, stream.targets, chunk_size=500)
    np.testing.assert_allclose(scaled.losses, expected.losses, rtol=1e-10)


def test_robbins_monro_schedule() -> None:
    schedule = robbins_monro(0.1, 100.0, 0.75)
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(100)) == pytest.approx(0.1 / 2**0.75)
    with pytest.raises(ValueError, match="rho"):
        robbins_monro(0.1, 100.0, 0.5)


def test_online_rtrl_learns_both_lags_of_the_add_task() -> None:
    """Below 0.0156 is impossible without the second lag (the first-lag-only loss)."""
    stream = add_task(60_000, lags=(3, 6), seed=0)
    learner, state = learner_for("rtrl", dtype=jnp.float32)
    _, history = learner.fit(state, stream.inputs, stream.targets, chunk_size=20_000)
    assert history.losses[-6000:].mean() < 0.005
