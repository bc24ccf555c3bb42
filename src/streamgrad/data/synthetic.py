"""Synthetic streams: ergodic processes and long-memory tasks.

Every generator is a deterministic function of its arguments and an explicit integer
`seed` (all randomness comes from `np.random.default_rng(seed)`), and returns a `Stream`
of T = `n_steps` examples (x_k, y_k), k = 0, ..., T-1. `SOURCES` maps a short name to
each generator.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import numpy as np

from streamgrad.data.dataset import Stream
from streamgrad.errors import DataError, UserError

MARKOV_STICKINESS = 0.8
"""Weight of the identity in the default transition matrix of `markov_chain`."""


def ar1(n_steps: int, *, phi: float = 0.9, sigma: float = 1.0, seed: int) -> Stream:
    """One-step-ahead prediction of a stationary AR(1) process (regression).

    x_0 ~ N(0, sigma^2 / (1 - phi^2))                  (the stationary law)
    x_{k+1} = phi * x_k + sigma * e_{k+1},  e_k ~ N(0, 1) i.i.d.
    y_k = x_{k+1}

    Returns inputs (T, 1) float64 = x_0..x_{T-1}, targets (T,) float64 = x_1..x_T.
    Requires |phi| < 1 and sigma > 0.
    """
    _check_count("n_steps", n_steps, minimum=1)
    _check_seed(seed)
    _check_real("phi", phi)
    _check_real("sigma", sigma)
    if not abs(phi) < 1:
        raise UserError(f"phi must satisfy |phi| < 1 for a stationary process, got {phi}")
    if not sigma > 0:
        raise UserError(f"sigma must be > 0, got {sigma}")
    noise = np.random.default_rng(seed).standard_normal(n_steps + 1)
    x = [float(noise[0]) * sigma / math.sqrt(1.0 - phi * phi)]
    for e in (sigma * noise[1:]).tolist():
        x.append(phi * x[-1] + e)
    path = np.asarray(x)
    return Stream(
        inputs=path[:-1, None],
        targets=path[1:].copy(),
        input_names=("x",),
        target_name="x_next",
        source=f"ar1(n_steps={n_steps}, phi={phi}, sigma={sigma}, seed={seed})",
    )


def markov_chain(
    n_steps: int,
    *,
    transition: np.ndarray | None = None,
    n_states: int | None = None,
    emission_std: float = 0.5,
    seed: int,
) -> Stream:
    """Predict the next state of a hidden Markov chain from noisy emissions (classification).

    s_0 ~ Uniform{0, ..., S-1},  P(s_{k+1} = j | s_k = i) = P[i, j]
    x_k = s_k + emission_std * e_k,  e_k ~ N(0, 1) i.i.d.   (state i emits around mean i)
    y_k = s_{k+1}

    `transition` is the S x S row-stochastic matrix P (non-negative, rows summing to 1).
    By default S = `n_states` (3 if not given) and P is a sticky random matrix drawn from
    the seed: P = 0.8 I + 0.2 D with the rows of D i.i.d. Dirichlet(1, ..., 1). If both
    `transition` and `n_states` are given they must agree.

    Returns inputs (T, 1) float64 = x_0..x_{T-1}, targets (T,) int64 = s_1..s_T,
    n_classes = S.
    """
    _check_count("n_steps", n_steps, minimum=1)
    _check_seed(seed)
    _check_real("emission_std", emission_std)
    if not emission_std >= 0:
        raise UserError(f"emission_std must be >= 0, got {emission_std}")
    rng = np.random.default_rng(seed)
    if transition is None:
        size = 3 if n_states is None else n_states
        _check_count("n_states", size, minimum=2)
        p = MARKOV_STICKINESS * np.eye(size) + (1 - MARKOV_STICKINESS) * rng.dirichlet(
            np.ones(size), size=size
        )
    else:
        p = _check_transition(transition)
        size = p.shape[0]
        if n_states is not None and n_states != size:
            raise UserError(f"n_states={n_states} but the transition matrix is {size} x {size}")
    cumulative = np.cumsum(p, axis=1).tolist()
    state = int(rng.integers(size))
    states = [state]
    for u in rng.random(n_steps).tolist():
        state = min(bisect.bisect_right(cumulative[state], u), size - 1)
        states.append(state)
    path = np.asarray(states, dtype=np.int64)
    emissions = path[:-1] + emission_std * rng.standard_normal(n_steps)
    return Stream(
        inputs=emissions[:, None],
        targets=path[1:].copy(),
        input_names=("x",),
        target_name="next_state",
        n_classes=size,
        source=f"markov(n_steps={n_steps}, n_states={size}, emission_std={emission_std}, "
        f"seed={seed})",
    )


def add_task(n_steps: int, *, lags: tuple[int, int] = (5, 9), seed: int) -> Stream:
    """The 'add' task: remember two past bits (regression).

    x_k ~ Bernoulli(1/2) in {0, 1} i.i.d.,  x_j = 0 for j < 0
    y_k = 0.5 + 0.5 * x_{k - t1} - 0.25 * x_{k - t2},  (t1, t2) = lags, t1, t2 >= 1

    Returns inputs (T, 1) float64 = x_0..x_{T-1}, targets (T,) float64.
    """
    _check_count("n_steps", n_steps, minimum=1)
    _check_seed(seed)
    if not isinstance(lags, tuple | list) or len(lags) != 2:
        raise UserError(f"lags must be a pair (t1, t2), got {lags!r}")
    t1, t2 = lags
    _check_count("lags[0]", t1, minimum=1)
    _check_count("lags[1]", t2, minimum=1)
    x = np.random.default_rng(seed).integers(0, 2, size=n_steps).astype(np.float64)
    y = 0.5 + 0.5 * _delayed(x, t1) - 0.25 * _delayed(x, t2)
    return Stream(
        inputs=x[:, None],
        targets=y,
        input_names=("x",),
        target_name="y",
        source=f"add(n_steps={n_steps}, lags=({t1}, {t2}), seed={seed})",
    )


def delayed_copy(n_steps: int, *, delay: int = 5, n_symbols: int = 4, seed: int) -> Stream:
    """Recall the symbol seen `delay` steps ago (classification).

    s_k ~ Uniform{0, ..., n_symbols-1} i.i.d.,  x_k = onehot(s_k)
    y_k = s_{k - delay} for k >= delay, 0 for k < delay

    Returns inputs (T, n_symbols) float64 one-hot rows, targets (T,) int64,
    n_classes = n_symbols. Requires delay >= 0 and n_symbols >= 2.
    """
    _check_count("n_steps", n_steps, minimum=1)
    _check_seed(seed)
    _check_count("delay", delay, minimum=0)
    _check_count("n_symbols", n_symbols, minimum=2)
    symbols = np.random.default_rng(seed).integers(0, n_symbols, size=n_steps)
    return Stream(
        inputs=np.eye(n_symbols)[symbols],
        targets=_delayed(symbols, delay),
        input_names=tuple(f"symbol_{i}" for i in range(n_symbols)),
        target_name="delayed_symbol",
        n_classes=n_symbols,
        source=f"copy(n_steps={n_steps}, delay={delay}, n_symbols={n_symbols}, seed={seed})",
    )


SOURCES: dict[str, Callable[..., Stream]] = {
    "ar1": ar1,
    "markov": markov_chain,
    "add": add_task,
    "copy": delayed_copy,
}
"""Generators by name; each is called as `SOURCES[name](n_steps, seed=..., **options)`."""


def _delayed(a: np.ndarray, lag: int) -> np.ndarray:
    """(T,) array b with b_k = a_{k - lag} for k >= lag and 0 before."""
    out = np.zeros_like(a)
    if lag < len(a):
        out[lag:] = a[: len(a) - lag]
    return out


def _check_transition(transition: np.ndarray) -> np.ndarray:
    """Validate a row-stochastic matrix; return it as a float64 array."""
    try:
        p = np.asarray(transition, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("transition matrix is not an array of numbers") from None
    if p.ndim != 2 or p.shape[0] != p.shape[1] or p.shape[0] < 2:
        raise DataError(f"transition matrix must be square, at least 2 x 2, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise DataError("transition matrix has NaN or infinite entries")
    if (p < 0).any():
        i, j = np.argwhere(p < 0)[0]
        raise DataError(f"transition matrix has a negative entry P[{i}, {j}] = {p[i, j]}")
    sums = p.sum(axis=1)
    off = np.flatnonzero(~np.isclose(sums, 1.0, rtol=0, atol=1e-8))
    if off.size:
        raise DataError(f"transition matrix row {off[0]} sums to {sums[off[0]]}, not 1")
    return p


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise UserError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise UserError(f"{name} must be >= {minimum}, got {value}")


def _check_seed(seed: object) -> None:
    _check_count("seed", seed, minimum=0)


def _check_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UserError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UserError(f"{name} must be finite, got {value}")
