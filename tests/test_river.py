"""The river adapter: an RTRL network in river's progressive_val_score gives exactly what
StreamLearner gives on the same vectors; the classifier learns; bad input is one line."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("river")

from river import datasets, evaluate, metrics

from streamgrad.config import TrainConfig, validate
from streamgrad.errors import UserError
from streamgrad.online import StreamLearner
from streamgrad.river_adapter import RNNClassifier, RNNRegressor
from streamgrad.training import build_learner


def reference(dataset, options: dict, classes: list | None = None):
    """StreamLearner on the dataset's vectors (the first example's key order): its
    predictions (value, or the label of the largest logit) and its prequential losses."""
    stream = list(dataset)
    names = list(stream[0][0])
    config = validate(TrainConfig, options, "option")
    learner, state = build_learner(config, len(names), len(classes) if classes else None)
    live = StreamLearner(learner, state)
    predictions, losses = [], []
    for x, y in stream:
        vector = np.array([x[name] for name in names], np.float64)
        output = live.predict_one(vector)
        target = classes.index(y) if classes else y
        predictions.append(classes[int(np.argmax(output))] if classes else float(output[0]))
        losses.append(live.learn_one(vector, target))
    return predictions, losses


def adapter_losses(model, dataset) -> list[float]:
    losses = []
    for x, y in dataset:
        model.predict_one(x)
        model.learn_one(x, y)
        losses.append(model.loss)
    return losses


OPTIONS = {"cell": "elman", "hidden": 8, "algo": "rtrl", "lr": 1e-3, "seed": 0}


def test_regressor_in_progressive_val_score_equals_the_stream_learner() -> None:
    predictions, losses = reference(datasets.TrumpApproval(), OPTIONS)
    expected = metrics.MAE()
    for (_, y), prediction in zip(datasets.TrumpApproval(), predictions, strict=True):
        expected.update(y, prediction)
    model = RNNRegressor(**OPTIONS)
    result = evaluate.progressive_val_score(datasets.TrumpApproval(), model, metrics.MAE())
    assert result.get() == expected.get()
    assert model.examples == 1001 and model.loss == losses[-1]
    assert adapter_losses(RNNRegressor(**OPTIONS), datasets.TrumpApproval()) == losses
    assert np.isfinite(losses).all() and np.mean(losses[-100:]) < 0.1 * np.mean(losses[:100])


def test_classifier_learns_phishing_and_equals_the_stream_learner() -> None:
    options = {**OPTIONS, "optimizer": "adam", "lr": 0.01}
    classes = [False, True]
    predictions, losses = reference(datasets.Phishing(), options, classes)
    model = RNNClassifier(classes, **options)
    accuracy = evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
    expected = metrics.Accuracy()
    for (_, y), prediction in zip(datasets.Phishing(), predictions, strict=True):
        expected.update(y, prediction)
    assert accuracy.get() == expected.get() > 0.8  # majority class: 0.56
    assert adapter_losses(RNNClassifier(classes, **options), datasets.Phishing()) == losses
    x, _ = next(iter(datasets.Phishing()))
    probabilities = model.predict_proba_one(x)
    assert set(probabilities) == {False, True}
    assert abs(sum(probabilities.values()) - 1.0) < 1e-6
    assert model.predict_one(x) == max(probabilities, key=probabilities.get)


def test_feature_order_and_missing_features() -> None:
    given = RNNRegressor(features=["b", "a"], missing="zero", **OPTIONS)
    first = RNNRegressor(**OPTIONS)
    first.learn_one({"a": 1.0, "b": 2.0}, 1.0)
    given.learn_one({"b": 2.0}, 1.0)  # a read as 0
    assert first._vector.names == ["a", "b"] and given._vector.names == ["b", "a"]
    assert given.examples == 1 and np.isfinite(given.predict_one({"a": 0.5}))


@pytest.mark.parametrize(
    ("make", "x", "y", "message"),
    [
        (
            lambda: RNNRegressor(**OPTIONS),
            {"a": 1.0, "c": 2.0},
            1.0,
            "example 2: feature 'c' is new",
        ),
        (lambda: RNNRegressor(**OPTIONS), {"a": 1.0}, 1.0, "example 2: feature 'b' is missing"),
        (lambda: RNNRegressor(**OPTIONS), {"a": "x", "b": 1}, 1.0, "feature 'a' = 'x' is not a"),
        (lambda: RNNRegressor(**OPTIONS), {"a": 1.0, "b": float("nan")}, 1.0, "'b' = nan"),
        (lambda: RNNRegressor(**OPTIONS), {"a": 1.0, "b": 2.0}, None, "target None is not a"),
        (lambda: RNNClassifier([0, 1], **OPTIONS), {"a": 1.0, "b": 2.0}, 2, "label 2 is not"),
    ],
)
def test_bad_examples_give_one_line_errors(make, x: dict, y, message: str) -> None:
    model = make()
    model.learn_one({"a": 1.0, "b": 2.0}, 1)
    with pytest.raises(UserError, match=message) as error:
        model.learn_one(x, y)
    assert "\n" not in str(error.value)
    assert model.examples == 1  # nothing was learned from the bad example


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RNNRegressor(hidden=0), r"--hidden: .*\(got 0\)"),
        (lambda: RNNRegressor(standardize=True), "--standardize: not available"),
        (lambda: RNNRegressor(missing="skip"), "missing: use 'error' or 'zero'"),
        (lambda: RNNClassifier([1]), "classes: need at least two distinct labels"),
    ],
)
def test_bad_options_give_one_line_errors(make, message: str) -> None:
    with pytest.raises(UserError, match=message):
        make()
