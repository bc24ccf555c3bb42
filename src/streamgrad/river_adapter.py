"""river adapter: a streamgrad network as a river regressor or classifier.

    from river import datasets, evaluate, metrics, preprocessing
    from streamgrad.river_adapter import RNNRegressor

    model = preprocessing.StandardScaler() | RNNRegressor(hidden=16, algo="rtrl", lr=0.01)
    evaluate.progressive_val_score(datasets.TrumpApproval(), model, metrics.MAE())

`RNNRegressor` and `RNNClassifier` subclass `river.base.Regressor` / `river.base.Classifier`
and follow river's conventions: `learn_one(x, y)`, `predict_one(x)` and, for the classifier,
`predict_proba_one(x)`, with x a dict of numbers. Behind them is `online.StreamLearner`, the
prequential online learner (the recurrent state carries over from one example to the next:
the examples are one stream, in order). The options are `streamgrad train`'s (cell, hidden,
algo, optimizer, lr, seed, dtype, ...), checked the same way; the network is built at the first
example, when the number of features is known.

Feature dicts become vectors in a fixed order: `features` if given, else the keys of the first
example in their order. A key outside that set is an error (the network's input size is fixed);
a missing key is an error, or 0.0 with `missing="zero"`. Values must be finite numbers. Each of
these errors is a one-line `UserError` naming the key, the value and the example's number.

river is an optional dependency (`pip install "streamgrad[river]"`); only this module imports
it, and without it importing this module fails with a one-line ImportError.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from streamgrad.config import TrainConfig, validate
from streamgrad.errors import UserError
from streamgrad.metrics import log_softmax
from streamgrad.online import StreamLearner

try:
    from river import base
except ImportError:  # pragma: no cover - exercised only without river
    raise ImportError(
        "streamgrad.river_adapter needs river: pip install 'streamgrad[river]'"
    ) from None

# train options that belong to a whole run over a table, not to one learner fed example by
# example; river has its own tools for them (preprocessing.StandardScaler, ...).
RUN_ONLY = ("standardize", "lr_backoff", "max_backoffs", "chunk")
Missing = Literal["error", "zero"]


class FeatureVector:
    """Feature dicts -> float64 vectors (d,) in a fixed order (see the module docstring)."""

    def __init__(self, names: Sequence[Hashable] | None = None, missing: Missing = "error"):
        if missing not in ("error", "zero"):
            raise UserError(f"missing: use 'error' or 'zero', got {missing!r}")
        self.names = list(names) if names is not None else None
        self.missing = missing

    def __call__(self, x: Mapping[Hashable, Any], number: int) -> np.ndarray:
        """The vector of x, the stream's example `number` (1-based, for the error messages)."""
        if self.names is None:
            if not x:
                raise UserError(f"example {number}: no features (an empty dict)")
            self.names = list(x)
        index = {name: i for i, name in enumerate(self.names)}
        vector = np.zeros(len(self.names))
        for key, value in x.items():
            if key not in index:
                raise UserError(
                    f"example {number}: feature {key!r} is new; the network's features are "
                    f"fixed at the first example: {', '.join(map(repr, self.names))}"
                )
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise UserError(f"example {number}: feature {key!r} = {value!r} is not a number")
            vector[index[key]] = value
        if self.missing == "error" and len(x) < len(index):
            absent = next(name for name in self.names if name not in x)
            raise UserError(
                f"example {number}: feature {absent!r} is missing (pass missing='zero' to "
                "read a missing feature as 0)"
            )
        return vector


class _Network:
    """What the regressor and the classifier share: options, features, the StreamLearner."""

    def __init__(
        self,
        features: Sequence[Hashable] | None,
        missing: Missing,
        n_classes: int | None,
        options: dict[str, Any],
    ) -> None:
        given = sorted(set(options) & set(RUN_ONLY))
        if given:
            raise UserError(f"--{given[0].replace('_', '-')}: not available in the river adapter")
        self._config = validate(TrainConfig, dict(options), "option")
        self._vector = FeatureVector(features, missing)
        self._n_classes = n_classes
        self._live: StreamLearner | None = None
        self.examples = 0  # learned so far
        self.loss: float | None = None  # the last example's prequential loss

    def _learner(self, vector: np.ndarray) -> StreamLearner:
        """The StreamLearner, built at the first example (from its number of features)."""
        if self._live is None:
            from streamgrad.training import build_learner

            learner, state = build_learner(self._config, len(vector), self._n_classes)
            self._live = StreamLearner(learner, state)
        return self._live

    def _output(self, x: Mapping[Hashable, Any]) -> np.ndarray:
        """The network's output for x before learning from it (prediction value or logits)."""
        vector = self._vector(x, self.examples + 1)
        return self._learner(vector).predict_one(vector)

    def _learn(self, x: Mapping[Hashable, Any], target: float | int) -> float:
        """Predict, score and learn from one example; its prequential loss."""
        vector = self._vector(x, self.examples + 1)
        self.loss = self._learner(vector).learn_one(vector, target)
        self.examples += 1
        return self.loss


class RNNRegressor(_Network, base.Regressor):
    """A recurrent network trained online (RTRL by default) as a river regressor.

    features: the feature names in input order (default: the first example's keys);
    missing: "error" or "zero" for a key an example lacks; options: `streamgrad train`'s
    (cell, hidden, algo, tau, optimizer, lr, schedule, clip, seed, dtype, ...).
    After `learn_one`, `loss` holds that example's prequential loss (squared error).
    """

    def __init__(
        self, features: Sequence[Hashable] | None = None, missing: Missing = "error", **options: Any
    ) -> None:
        self.features, self.missing, self.options = features, missing, options
        _Network.__init__(self, features, missing, None, options)

    def learn_one(self, x: Mapping[Hashable, Any], y: float) -> None:
        if not isinstance(y, numbers.Real) or not math.isfinite(y):
            raise UserError(f"example {self.examples + 1}: target {y!r} is not a number")
        self._learn(x, float(y))

    def predict_one(self, x: Mapping[Hashable, Any]) -> float:
        return float(self._output(x)[0])


class RNNClassifier(_Network, base.Classifier):
    """A recurrent network trained online as a river classifier over the fixed `classes`
    (softmax output, cross-entropy loss). Other arguments as for RNNRegressor."""

    def __init__(
        self,
        classes: Sequence[Hashable],
        features: Sequence[Hashable] | None = None,
        missing: Missing = "error",
        **options: Any,
    ) -> None:
        self.classes, self.features, self.missing, self.options = (
            classes,
            features,
            missing,
            options,
        )
        if len(set(classes)) < 2 or len(set(classes)) != len(classes):
            raise UserError(f"classes: need at least two distinct labels, got {list(classes)!r}")
        self._index = {label: i for i, label in enumerate(classes)}
        _Network.__init__(self, features, missing, len(classes), options)

    @property
    def _multiclass(self) -> bool:
        return len(self.classes) > 2

    def learn_one(self, x: Mapping[Hashable, Any], y: Hashable) -> None:
        if y not in self._index:
            raise UserError(
                f"example {self.examples + 1}: label {y!r} is not one of the classes "
                f"{list(self.classes)!r}"
            )
        self._learn(x, self._index[y])

    def predict_proba_one(self, x: Mapping[Hashable, Any]) -> dict[Hashable, float]:
        probabilities = np.exp(log_softmax(self._output(x).astype(np.float64)))
        return dict(zip(self.classes, map(float, probabilities), strict=True))
