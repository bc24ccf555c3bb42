"""Baselines as prequential learners: no look-ahead, and the logistic regression of the
network learner against a direct implementation."""

from __future__ import annotations

import numpy as np
import pytest

from streamgrad import baselines
from streamgrad.online import StreamLearner
from streamgrad.optim import make_optimizer, make_schedule


def stream(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((n, 4))
    labels = (inputs @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(int)
    labels[rng.random(n) < 0.3] = -1
    return inputs, labels


def direct_logistic(inputs: np.ndarray, labels: np.ndarray, lr: float) -> np.ndarray:
    """Online logistic regression with plain SGD, written out: logits (T, 2)."""
    weights, bias = np.zeros((2, inputs.shape[1])), np.zeros(2)
    outputs = []
    for x, y in zip(inputs, labels, strict=True):
        logits = weights @ x + bias
        outputs.append(logits)
        if y >= 0:
            error = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            error[y] -= 1.0  # d(-log softmax_y)/dlogits
            weights -= lr * np.outer(error, x)
            bias -= lr * error
    return np.array(outputs)


def test_logistic_regression_is_trained_by_the_online_learner() -> None:
    inputs, labels = stream()
    optimizer = make_optimizer("sgd", make_schedule("constant", 0.1))
    learner, state = baselines.logistic_regression(4, 2, optimizer)
    _, history = learner.fit(state, inputs, labels, chunk_size=64)
    np.testing.assert_allclose(history.outputs, direct_logistic(inputs, labels, 0.1), atol=1e-5)
    # the same learner behind river's interface, one sample at a time
    live = StreamLearner(*baselines.logistic_regression(4, 2, optimizer))
    outputs = baselines.prequential(live, inputs.astype(np.float32), labels)
    np.testing.assert_allclose(outputs, history.outputs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "learner, inputs",
    [
        (lambda: baselines.MajorityClass(2), None),
        (lambda: baselines.PreviousMove(2), "mid"),
        (lambda: baselines.PreviousMove(3), "mid"),
    ],
)
def test_a_label_changes_only_later_predictions(learner, inputs) -> None:
    rng = np.random.default_rng(1)
    mid = np.cumsum(rng.integers(-1, 2, 200)).astype(float)
    labels = rng.integers(0, 2, 200)
    xs = mid if inputs == "mid" else np.zeros(200)
    first = baselines.prequential(learner(), xs, labels)
    changed = labels.copy()
    changed[100] = 1 - changed[100]
    second = baselines.prequential(learner(), xs, changed)
    np.testing.assert_array_equal(first[:101], second[:101])
    assert not np.array_equal(first[101:], second[101:])
    np.testing.assert_allclose(np.exp(first).sum(1), 1.0)


def test_learn_one_returns_the_masked_log_loss() -> None:
    learner = baselines.MajorityClass(2)
    assert learner.learn_one(None, 1) == pytest.approx(np.log(2))  # p(1) = 1/2
    assert learner.learn_one(None, -1) == 0.0  # not revealed: no loss, nothing learnt
    assert learner.learn_one(None, 0) == pytest.approx(-np.log(1 / 3))
