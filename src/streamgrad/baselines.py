"""Naive baselines of a stream, as learners behind the networks' interface.

Every baseline is a prequential learner with river's interface, the one
`online.StreamLearner` gives the networks:

    learner.predict_one(x)     the output o_k for the current sample, from what was learnt
                               before it: class logits (K,), or the prediction (1,) of a
                               regression target; the learner does not change
    learner.learn_one(x, y)    predict, score and learn from the target y; returns the
                               prequential loss of model.py: (o_k - y)^2 for regression,
                               -log softmax(o_k)_y for classification, which is 0 for y < 0 (a
                               label not revealed yet, from which nothing is learnt)

`prequential(learner, inputs, targets)` walks a stream with any of them: outputs (T, K), and
`prequential_losses` also returns the losses (T,).

Regression (`naive_baselines(None)`):

- `PreviousTarget`: o_k = y_{k-1} (0 at the first step).
- `RunningMean`: o_k = (y_0 + ... + y_{k-1}) / k (0 at the first step).

Classification (`naive_baselines(K)`):

- `MajorityClass`: log of the Laplace-smoothed counts of the labels revealed so far.
- `PreviousLabel`: the last revealed label, with confidence the Laplace-smoothed running hit
  rate on the revealed labels.
- `PreviousMove` (the LOB task): x_k is the mid price at sample k; it predicts the last
  observed move, with confidence as `PreviousLabel`'s.
- `logistic_regression`: online multinomial logistic regression o_k = W x_k + b, as the
  project's own `OnlineLearner` on a model whose cell is `input_cell` (S_{k+1} = x_k, no
  parameters), so exact RTRL reduces to the plain gradient of the masked cross-entropy and the
  learner runs it with the networks' code (chunked jitted scan, optax, divergence checks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from streamgrad.cells import Cell, Params
from streamgrad.gradients import rtrl
from streamgrad.metrics import log_softmax
from streamgrad.model import Model, linear_readout
from streamgrad.online import LearnerState, OnlineLearner


class Learner(Protocol):
    """A prequential learner over one stream (see the module docstring)."""

    def predict_one(self, x: Any) -> np.ndarray: ...

    def learn_one(self, x: Any, y: Any) -> float: ...


def prequential(learner: Learner, inputs: Iterable[Any], targets: np.ndarray) -> np.ndarray:
    """Predict every sample, then learn from its target: inputs (T, ...), targets (T,) ->
    outputs (T, K), row k made before target k was seen."""
    return prequential_losses(learner, inputs, targets)[0]


def prequential_losses(
    learner: Learner, inputs: Iterable[Any], targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`prequential`'s outputs (T, K) with the prequential losses (T,) float64: by the
    learner's vectorised `learn_many(inputs, targets)` when it has one (the naive baselines;
    the same numbers as the loop, bitwise, however the stream is cut into batches)."""
    if hasattr(learner, "learn_many"):
        return learner.learn_many(inputs, targets)
    outputs, losses = [], []
    for x, y in zip(inputs, targets, strict=True):
        outputs.append(learner.predict_one(x))
        losses.append(learner.learn_one(x, y))
    return np.stack(outputs), np.asarray(losses, np.float64)


def naive_baselines(n_classes: int | None) -> dict[str, Learner]:
    """The naive baselines of a task, by name: regression (`n_classes` None) or
    classification with `n_classes` classes. Their inputs are not used."""
    if n_classes is None:
        return {"previous target": PreviousTarget(), "running mean": RunningMean()}
    return {"majority class": MajorityClass(n_classes), "previous label": PreviousLabel(n_classes)}


class PreviousTarget:
    """o_k = y_{k-1}, 0 at the first step. The input is not used."""

    def __init__(self) -> None:
        self.last = 0.0

    def predict_one(self, x: Any = None) -> np.ndarray:
        return np.array([self.last])

    def learn_one(self, x: Any, y: float) -> float:
        loss = (self.last - float(y)) ** 2
        self.last = float(y)
        return loss

    def learn_many(self, x: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`learn_one` over targets (n,): outputs (n, 1) and losses (n,)."""
        y = np.asarray(y, np.float64)
        previous = np.r_[self.last, y]  # o_k = previous[k]
        self.last = float(previous[-1])
        return previous[:-1, None], (previous[:-1] - y) ** 2


class RunningMean:
    """o_k = (y_0 + ... + y_{k-1}) / k, 0 at the first step, from the running sum (added in
    stream order, so a vectorised stretch gives the same bits as step by step). The input is
    not used."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def predict_one(self, x: Any = None) -> np.ndarray:
        return np.array([self.total / self.count if self.count else 0.0])

    def learn_one(self, x: Any, y: float) -> float:
        return float(self.learn_many(None, np.array([y]))[1][0])

    def learn_many(self, x: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`learn_one` over targets (n,): outputs (n, 1) and losses (n,)."""
        y = np.asarray(y, np.float64)
        totals = np.cumsum(np.r_[self.total, y])  # sequential: total, total + y_0, ...
        counts = self.count + np.arange(len(y) + 1)
        means = np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)[:-1]
        self.total, self.count = float(totals[-1]), int(counts[-1])
        return means[:, None], (means - y) ** 2


def _loss(logits: np.ndarray, label: int) -> float:
    """Masked cross-entropy of one prediction, as in model.py: 0 for an unrevealed label."""
    return float(-log_softmax(logits)[label]) if label >= 0 else 0.0


def _losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`_loss` of predictions (n, K) against labels (n,), (n,) float64."""
    picked = -log_softmax(logits)[np.arange(len(labels)), np.maximum(labels, 0)]
    return np.where(labels >= 0, picked, 0.0).astype(np.float64)


class MajorityClass:
    """p_k(c) = (1 + revealed labels of class c before k) / (K + revealed labels before k).
    The input is not used."""

    def __init__(self, n_classes: int) -> None:
        self.counts = np.ones(n_classes)  # one pseudo-count per class (Laplace)

    def predict_one(self, x: Any = None) -> np.ndarray:
        """log p_k, (K,)."""
        return np.log(self.counts / self.counts.sum())

    def learn_one(self, x: Any, y: int) -> float:
        loss = _loss(self.predict_one(x), y)
        if y >= 0:
            self.counts[y] += 1.0
        return loss

    def learn_many(self, x: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`learn_one` over labels (n,): outputs (n, K) and losses (n,)."""
        y = np.asarray(y, np.int64)
        seen = (y[:, None] == np.arange(len(self.counts))).astype(np.float64)
        counts = self.counts + np.cumsum(np.r_[np.zeros((1, len(self.counts))), seen], axis=0)
        self.counts = counts[-1].copy()
        outputs = np.log(counts[:-1] / counts[:-1].sum(axis=1, keepdims=True))
        return outputs, _losses(outputs, y)


class _Guess:
    """Predicts one class, `guess(x)`, with confidence (hits + 1) / (revealed + 2) on the labels
    revealed before k; the other classes share the rest equally. `observe(x, guess, y)` is
    told each sample after it is scored."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.hits = 0
        self.revealed = 0

    def guess(self, x: Any) -> int:
        raise NotImplementedError

    def observe(self, x: Any, guess: int, y: int) -> None:
        raise NotImplementedError

    def predict_one(self, x: Any) -> np.ndarray:
        """log p_k, (K,)."""
        guess = np.array([self.guess(x)])
        return self._log_probs(guess, np.array([self.hits]), np.array([self.revealed]))[0]

    def _log_probs(self, guess: np.ndarray, hits: np.ndarray, revealed: np.ndarray) -> np.ndarray:
        """log p (n, K) of n predictions: guessed class (n,), hits and revealed labels (n,)
        before each."""
        if self.n_classes == 1:
            return np.zeros((len(guess), 1))
        confidence = (hits + 1.0) / (revealed + 2.0)
        probs = np.repeat(((1 - confidence) / (self.n_classes - 1))[:, None], self.n_classes, 1)
        probs[np.arange(len(guess)), guess] = confidence
        return np.log(probs)

    def learn_one(self, x: Any, y: int) -> float:
        loss = _loss(self.predict_one(x), y)
        guess = self.guess(x)
        if y >= 0:
            self.revealed += 1
            self.hits += int(guess == y)
        self.observe(x, guess, int(y))
        return loss


class PreviousLabel(_Guess):
    """The last revealed label (class 0 before any). The input is not used."""

    def __init__(self, n_classes: int) -> None:
        super().__init__(n_classes)
        self.last = 0

    def guess(self, x: Any = None) -> int:
        return self.last

    def observe(self, x: Any, guess: int, y: int) -> None:
        if y >= 0:
            self.last = y

    def learn_many(self, x: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`learn_one` over labels (n,): outputs (n, K) and losses (n,)."""
        y = np.asarray(y, np.int64)
        revealed = y >= 0
        # the last revealed label up to each step, then shifted to "before each step"
        latest = np.maximum.accumulate(np.where(revealed, np.arange(len(y)), -1))
        upto = np.r_[self.last, np.where(latest >= 0, y[np.maximum(latest, 0)], self.last)]
        guess = upto[:-1].astype(np.int64)
        hit = revealed & (guess == y)
        hits = self.hits + np.r_[0, np.cumsum(hit)]
        seen = self.revealed + np.r_[0, np.cumsum(revealed)]
        outputs = self._log_probs(guess, hits[:-1], seen[:-1])
        self.hits, self.revealed, self.last = int(hits[-1]), int(seen[-1]), int(upto[-1])
        return outputs, _losses(outputs, y)


class PreviousMove(_Guess):
    """The last observed move of the mid price x_k: with 2 classes (0 down, 1 up) the
    direction of the last mid change up to k (up before any change); with 3 classes (down,
    unchanged, up) the move into sample k (unchanged at the first sample)."""

    def __init__(self, n_classes: int) -> None:
        if n_classes not in (2, 3):
            raise ValueError(f"the previous move predicts 2 or 3 classes, got {n_classes}")
        super().__init__(n_classes)
        self.last_mid: float | None = None
        self.direction = 1  # of the last mid change (2 classes)

    def guess(self, x: Any) -> int:
        """The class this learner predicts at a sample with mid price x."""
        mid = float(x)
        move = 0.0 if self.last_mid is None else float(np.sign(mid - self.last_mid))
        if self.n_classes == 3:
            return int(move) + 1
        return self.direction if move == 0 else int(move > 0)

    def observe(self, x: Any, guess: int, y: int) -> None:
        self.direction, self.last_mid = guess, float(x)  # the 2-class guess is the last direction


def input_cell(size: int) -> Cell:
    """The memoryless cell S_{k+1} = x_k: hidden size = input size, no parameters. Its
    Jacobian dS_{k+1}/dS_k is zero (diagonal), so RTRL takes its elementwise path."""

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        return {}

    def step(weights: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        return x

    return Cell("input", size, size, init, step, row_local=(), structure="elementwise")


def logistic_regression(
    input_dim: int,
    n_classes: int,
    optimizer: optax.GradientTransformation,
    dtype: Any = jnp.float32,
) -> tuple[OnlineLearner, LearnerState]:
    """Online multinomial logistic regression o_k = W x_k + b, W (K, d) and b (K,) starting
    at zero, trained by `OnlineLearner` with `optimizer` on the masked cross-entropy."""
    model = Model(input_cell(input_dim), linear_readout(input_dim, n_classes), "xent")
    learner = OnlineLearner(rtrl(model), optimizer)
    params = jax.tree_util.tree_map(jnp.zeros_like, model.init(jax.random.PRNGKey(0), dtype))
    return learner, learner.init(params, dtype)
