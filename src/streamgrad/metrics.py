"""Prequential metrics as small incremental objects, in the spirit of river's `metric.update`.

A metric folds in one batch of the stream at a time (a chunk, or the whole of it) and reports
its value over everything folded in so far:

    metric = Accuracy()
    metric.update(logits, labels)      logits (T, K), labels (T,); returns the metric
    metric.get()                       accuracy over all the samples updated with

Sums are kept in float64 and counts as integers, so a value does not depend on how the stream
was cut into batches beyond float64 rounding; over one batch it equals the whole-array numpy
value computed in float64, bitwise. The classification metrics skip negative labels (not
revealed yet, see model.py); over no revealed label their value is NaN.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax_j(o) = o_j - max(o) - log sum_i exp(o_i - max(o)) over the last axis,
    (..., K) -> (..., K), in the logits' dtype (the shift by the max keeps exp finite)."""
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def pointwise_log_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """-log softmax(o_k)_{y_k} per sample: logits (T, K), labels (T,) in [0, K) -> (T,)."""
    return -log_softmax(logits)[np.arange(len(labels)), labels]


class Mean:
    """Running mean of per-step values (such as the prequential losses l_k); NaN before any."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def update(self, values: np.ndarray) -> Mean:
        """Fold in values (T,)."""
        self.total += float(np.sum(values, dtype=np.float64))
        self.count += len(values)
        return self

    def get(self) -> float:
        return self.total / self.count if self.count else float("nan")


def _revealed(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose label is revealed (>= 0): logits (R, K) as float64, labels (R,)."""
    labels = np.asarray(labels)
    keep = labels >= 0
    return np.asarray(logits, np.float64)[keep], labels[keep].astype(np.int64)


class _RevealedMean:
    """Mean of a per-sample `score(logits (R, K), labels (R,)) -> (R,)` over revealed labels."""

    def __init__(self) -> None:
        self.mean = Mean()

    @staticmethod
    def score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update(self, logits: np.ndarray, labels: np.ndarray) -> _RevealedMean:
        """Fold in logits (T, K) and labels (T,)."""
        self.mean.update(self.score(*_revealed(logits, labels)))
        return self

    def get(self) -> float:
        return self.mean.get()

    @property
    def count(self) -> int:
        """Number of revealed labels seen."""
        return self.mean.count


class Accuracy(_RevealedMean):
    """Share of revealed labels predicted by the arg-max output."""

    @staticmethod
    def score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return logits.argmax(-1) == labels


class LogLoss(_RevealedMean):
    """Mean of -log softmax(o_k)_{y_k} over the revealed labels, computed in float64."""

    score = staticmethod(pointwise_log_loss)


class BalancedAccuracy:
    """Mean recall over the classes present among the revealed labels: the mean over c of
    (hits on class c) / (samples of class c)."""

    def __init__(self) -> None:
        self.hits = np.zeros(0, np.int64)  # per class, grown as classes appear
        self.count = np.zeros(0, np.int64)

    def update(self, logits: np.ndarray, labels: np.ndarray) -> BalancedAccuracy:
        logits, labels = _revealed(logits, labels)
        self.count = _add_counts(self.count, labels, len(self.count))
        self.hits = _add_counts(self.hits, labels[logits.argmax(-1) == labels], len(self.count))
        return self

    def get(self) -> float:
        present = self.count > 0
        if not present.any():
            return float("nan")
        return float(np.mean(self.hits[present] / self.count[present]))


def _add_counts(counts: np.ndarray, labels: np.ndarray, width: int) -> np.ndarray:
    """counts (C,) plus the number of times each class occurs in `labels`, as an array of at
    least `width` >= C classes (more when a larger label occurs)."""
    total = np.bincount(labels, minlength=width)
    total[: len(counts)] += counts
    return total


class ClassificationMetrics:
    """Accuracy, balanced accuracy and log-loss together, plus the number of revealed labels."""

    def __init__(self) -> None:
        self.parts = {
            "accuracy": Accuracy(),
            "balanced_accuracy": BalancedAccuracy(),
            "log_loss": LogLoss(),
        }

    def update(self, logits: np.ndarray, labels: np.ndarray) -> ClassificationMetrics:
        for metric in self.parts.values():
            metric.update(logits, labels)
        return self

    def get(self) -> dict[str, float]:
        """{"accuracy", "balanced_accuracy", "log_loss", "labelled"}."""
        values: dict[str, float] = {name: metric.get() for name, metric in self.parts.items()}
        values["labelled"] = self.parts["accuracy"].count
        return values


class StreamMetrics:
    """A stretch of a prequential run: mean loss and steps, and for classification
    (`n_classes` given) the `ClassificationMetrics` of the outputs."""

    def __init__(self, n_classes: int | None) -> None:
        self.loss = Mean()
        self.classification = ClassificationMetrics() if n_classes is not None else None

    def update(self, losses: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> StreamMetrics:
        """losses (T,), outputs (T, K), targets (T,)."""
        self.loss.update(losses)
        if self.classification is not None:
            self.classification.update(outputs, targets)
        return self

    def get(self) -> dict[str, float]:
        """{"loss", "steps"}, plus the classification metrics."""
        values: dict[str, float] = {"loss": self.loss.get(), "steps": self.loss.count}
        if self.classification is not None:
            values.update(self.classification.get())
        return values
