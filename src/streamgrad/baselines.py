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
    """`prequential`'s outputs (T, K) with the prequential losses (T,) float64."""
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


class RunningMean:
    """o_k = mean(y_0, ..., y_{k-1}), 0 at the first step, updated as
    m_{k+1} = m_k + (y_k - m_k) / (k + 1). The input is not used."""

    def __init__(self) -> None:
        self.mean = 0.0
        self.count = 0

    def predict_one(self, x: Any = None) -> np.ndarray:
        return np.array([self.mean])

    def learn_one(self, x: Any, y: float) -> float:
        loss = (self.mean - float(y)) ** 2
        self.count += 1
        self.mean += (float(y) - self.mean) / self.count
        return loss


def _loss(logits: np.ndarray, label: int) -> float:
    """Masked cross-entropy of one prediction, as in model.py: 0 for an unrevealed label."""
    return float(-log_softmax(logits)[label]) if label >= 0 else 0.0


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
        if self.n_classes == 1:
            return np.zeros(1)
        confidence = (self.hits + 1.0) / (self.revealed + 2.0)
        probs = np.full(self.n_classes, (1 - confidence) / (self.n_classes - 1))
        probs[self.guess(x)] = confidence
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
