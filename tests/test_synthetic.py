"""Tests for streamgrad.data.synthetic: exact formulas, reproducibility, ergodic statistics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from streamgrad.data.dataset import Stream
from streamgrad.data.synthetic import SOURCES, add_task, ar1, delayed_copy, markov_chain
from streamgrad.errors import DataError, UserError


def _same(a: Stream, b: Stream) -> bool:
    return np.array_equal(a.inputs, b.inputs) and np.array_equal(a.targets, b.targets)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sources_are_reproducible_and_seed_dependent(name: str) -> None:
    make: Callable[..., Stream] = SOURCES[name]
    first, again, other = make(500, seed=3), make(500, seed=3), make(500, seed=4)
    assert _same(first, again)
    assert not _same(first, other)
    assert len(first) == 500 and first.inputs.dtype == np.float64
    assert first.inputs.shape == (500, len(first.input_names))
    assert np.isfinite(first.inputs).all()


def test_sources_registry() -> None:
    expected = {"ar1": ar1, "markov": markov_chain, "add": add_task, "copy": delayed_copy}
    assert expected == SOURCES


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_single_step(name: str) -> None:
    assert len(SOURCES[name](1, seed=0)) == 1


def test_add_task_formula() -> None:
    t1, t2 = 3, 7
    stream = add_task(2_000, lags=(t1, t2), seed=5)
    x = stream.inputs[:, 0]
    assert stream.inputs.shape == (2_000, 1) and set(np.unique(x)) == {0.0, 1.0}
    for k in range(len(x)):
        past1 = x[k - t1] if k >= t1 else 0.0
        past2 = x[k - t2] if k >= t2 else 0.0
        assert stream.targets[k] == 0.5 + 0.5 * past1 - 0.25 * past2
    assert stream.targets.dtype == np.float64 and stream.n_classes is None
    assert abs(x.mean() - 0.5) < 0.05


def test_add_task_lags_longer_than_stream() -> None:
    stream = add_task(4, lags=(5, 9), seed=0)
    np.testing.assert_array_equal(stream.targets, np.full(4, 0.5))


def test_ar1_target_is_next_input() -> None:
    stream = ar1(1_000, phi=0.5, sigma=2.0, seed=1)
    assert stream.inputs.shape == (1_000, 1) and stream.targets.shape == (1_000,)
    np.testing.assert_array_equal(stream.inputs[1:, 0], stream.targets[:-1])


def test_ar1_innovations_match_sigma() -> None:
    phi, sigma = 0.7, 0.3
    stream = ar1(100_000, phi=phi, sigma=sigma, seed=2)
    innovations = stream.targets - phi * stream.inputs[:, 0]
    assert abs(innovations.std() / sigma - 1) < 0.02
    assert abs(np.corrcoef(innovations[1:], innovations[:-1])[0, 1]) < 0.02


@pytest.mark.parametrize("phi", [0.9, -0.5, 0.0])
def test_ar1_stationary_variance(phi: float) -> None:
    sigma = 1.5
    x = ar1(200_000, phi=phi, sigma=sigma, seed=11).inputs[:, 0]
    assert abs(x.var() / (sigma**2 / (1 - phi**2)) - 1) < 0.1
    assert abs(x.mean()) < 0.1 * sigma / np.sqrt(1 - phi**2)


def test_markov_transition_frequencies() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    stream = markov_chain(100_000, transition=p, emission_std=0.0, seed=3)
    assert stream.n_classes == 3 and stream.targets.dtype == np.int64
    states = stream.targets  # s_1 .. s_T
    # Noise-free emissions equal the state index: x_k = s_k, so x_{k+1} = y_k.
    np.testing.assert_array_equal(stream.inputs[1:, 0], states[:-1])
    counts = np.zeros((3, 3))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    empirical = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(empirical, p, atol=0.02)


def test_markov_default_matrix_is_sticky() -> None:
    stream = markov_chain(20_000, n_states=4, seed=8)
    states = stream.targets
    assert stream.n_classes == 4 and set(np.unique(states)) == {0, 1, 2, 3}
    assert np.mean(states[1:] == states[:-1]) > 0.8
    noise = stream.inputs[1:, 0] - states[:-1]
    assert abs(noise.std() / 0.5 - 1) < 0.05


def test_markov_n_states_must_match_matrix() -> None:
    with pytest.raises(UserError, match="n_states"):
        markov_chain(10, transition=np.eye(2), n_states=3, seed=0)
    assert markov_chain(10, transition=np.eye(2), seed=0).n_classes == 2


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones((2, 3)) / 3, "square"),
        (np.ones((1, 1)), "square"),
        (np.array([[0.5, 0.5], [1.2, -0.2]]), "negative"),
        (np.array([[0.5, 0.4], [0.5, 0.5]]), "row 0 sums"),
        (np.array([[np.nan, 1.0], [0.5, 0.5]]), "NaN"),
        ([["a", "b"], ["c", "d"]], "not an array of numbers"),
    ],
)
def test_markov_rejects_bad_matrices(matrix: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        markov_chain(10, transition=matrix, seed=0)


def test_delayed_copy() -> None:
    delay, n_symbols = 4, 5
    stream = delayed_copy(1_000, delay=delay, n_symbols=n_symbols, seed=2)
    assert stream.inputs.shape == (1_000, n_symbols) and stream.n_classes == n_symbols
    np.testing.assert_array_equal(stream.inputs.sum(axis=1), np.ones(1_000))
    symbols = stream.inputs.argmax(axis=1)
    np.testing.assert_array_equal(stream.targets[delay:], symbols[:-delay])
    np.testing.assert_array_equal(stream.targets[:delay], np.zeros(delay))
    assert stream.targets.dtype == np.int64


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (ar1, {"n_steps": 0}, "n_steps must be >= 1"),
        (ar1, {"n_steps": 10.0}, "n_steps must be an integer"),
        (ar1, {"n_steps": True}, "n_steps must be an integer"),
        (ar1, {"phi": 1.0}, "phi"),
        (ar1, {"phi": float("nan")}, "phi must be finite"),
        (ar1, {"sigma": 0.0}, "sigma must be > 0"),
        (ar1, {"seed": -1}, "seed must be >= 0"),
        (ar1, {"seed": "0"}, "seed must be an integer"),
        (markov_chain, {"n_states": 1}, "n_states must be >= 2"),
        (markov_chain, {"emission_std": -1.0}, "emission_std must be >= 0"),
        (add_task, {"lags": (0, 3)}, r"lags\[0\] must be >= 1"),
        (add_task, {"lags": (1, 2, 3)}, "lags must be a pair"),
        (delayed_copy, {"delay": -1}, "delay must be >= 0"),
        (delayed_copy, {"n_symbols": 1}, "n_symbols must be >= 2"),
    ],
)
def test_invalid_arguments(
    make: Callable[..., Stream], kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"n_steps": 10, "seed": 0, **kwargs}
    with pytest.raises(UserError, match=message) as info:
        make(**arguments)
    assert "\n" not in str(info.value)
