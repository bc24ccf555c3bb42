"""Incremental metrics: whole-array values, independence from batching, masked labels."""

from __future__ import annotations

import math

import numpy as np

from streamgrad.metrics import (
    Accuracy,
    BalancedAccuracy,
    ClassificationMetrics,
    LogLoss,
    Mean,
    StreamMetrics,
    log_softmax,
)


def sample(n: int = 500, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * 3
    labels = rng.integers(0, k, n)
    labels[rng.random(n) < 0.2] = -1  # not revealed
    return logits, labels


def test_values_match_a_direct_computation() -> None:
    logits, labels = sample()
    shown = labels >= 0
    x, y = logits[shown], labels[shown]
    probs = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    predicted = x.argmax(1)
    recalls = [np.mean(predicted[y == c] == c) for c in range(3)]
    values = ClassificationMetrics().update(logits, labels).get()
    assert values["labelled"] == shown.sum()
    assert values["accuracy"] == np.mean(predicted == y)
    np.testing.assert_allclose(values["balanced_accuracy"], np.mean(recalls), rtol=1e-15)
    np.testing.assert_allclose(values["log_loss"], -np.mean(np.log(probs[np.arange(len(y)), y])))


def test_batches_give_the_value_of_the_whole_stream() -> None:
    logits, labels = sample(n=1_001, seed=1)
    losses = np.random.default_rng(2).random(1_001).astype(np.float32)
    whole = StreamMetrics(3).update(losses, logits, labels).get()
    pieces = StreamMetrics(3)
    for begin in range(0, 1_001, 97):
        pieces.update(
            losses[begin : begin + 97], logits[begin : begin + 97], labels[begin : begin + 97]
        )
    for key, value in pieces.get().items():
        np.testing.assert_allclose(value, whole[key], rtol=1e-13, err_msg=key)
    assert whole["steps"] == 1_001
    assert whole["loss"] == np.sum(losses, dtype=np.float64) / 1_001


def test_balanced_accuracy_counts_only_the_classes_present() -> None:
    logits = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    metric = BalancedAccuracy().update(logits[:1], np.array([1]))
    assert metric.get() == 1.0  # class 1 only, one hit
    metric.update(logits[1:], np.array([2, 2]))  # class 2 appears later: two misses
    assert metric.get() == 0.5


def test_no_revealed_label_gives_nan() -> None:
    logits, _ = sample(n=10)
    for metric in (Accuracy(), BalancedAccuracy(), LogLoss()):
        assert math.isnan(metric.update(logits, np.full(10, -1)).get())
    assert math.isnan(Mean().get())
    values = ClassificationMetrics().update(logits, np.full(10, -1)).get()
    assert values["labelled"] == 0


def test_log_softmax_is_stable_and_normalised() -> None:
    logits = np.array([[1000.0, 0.0], [-1000.0, -1000.0]])
    out = log_softmax(logits)
    np.testing.assert_allclose(out, [[0.0, -1000.0], [-math.log(2), -math.log(2)]])
    assert log_softmax(logits.astype(np.float32)).dtype == np.float32
