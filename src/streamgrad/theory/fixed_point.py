"""The fixed point of (X_k, S_k, J_k) with theta frozen: coupling and window laws.

With theta frozen, the hidden state and the forward sensitivities are driven by the data:
S_{k+1} = F(S_k, x_k) and J_{k+1} = D_k J_k + I_k (gradients/rtrl.py). When F is a
contraction in S with rate r < 1 (the meanfield cell with G sup|sigma'| < 1), two copies
started from different (S_0, J_0) on the same data path merge geometrically:
|S^a_k - S^b_k| <= r^k |S^a_0 - S^b_0|, and |J^a_k - J^b_k| = O(k r^k) (the J recursion is
driven by the S difference through D_k and I_k). So the chain (X_k, S_k, J_k) forgets its
start, and its law converges to a unique stationary law whatever the start.

`coupling` measures that: chains from random starts on one data path, the distances to the
first chain against k, and a least-squares fit of log distance = a + k log r. J is the
state exact RTRL keeps: the influence matrix for the dense and elementwise paths, the memory
sensitivity du_k/dpsi for the shared coupling (from which J_{k+1} follows given x_k).

`window_laws` measures the convergence in law: features of (S_k, J_k) (hidden units, and
projections e_i^T J_k v_j on fixed random parameter directions v_j, computed as forward-mode
tangents dS_k/dtheta . v_j) over many independent data paths; Wasserstein-1 distances between
the laws of equal windows of two independent paths (they shrink like n^(-1/2) with the
window length n once n exceeds the mixing time) and between the law across paths at step k and
the pooled stationary law (it shrinks geometrically in k down to the sampling floor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from streamgrad.data.dataset import Stream
from streamgrad.data.processes import Process, check_int
from streamgrad.errors import UserError
from streamgrad.gradients import rtrl
from streamgrad.model import Model, ModelParams
from streamgrad.theory.stationary import check_params


@dataclass(frozen=True)
class Coupling:
    """Distances of chains from different starts to the first chain, against k (T,):
    max over chains of |S^a_k - S^0_k| and of |J^a_k - J^0_k| (Euclidean / Frobenius), and
    fitted geometric rates (NaN when the distances never leave the fit range)."""

    hidden_distance: np.ndarray
    sensitivity_distance: np.ndarray
    hidden_rate: float
    sensitivity_rate: float

    @property
    def merge_rate(self) -> float:
        """The slower of the two fitted rates."""
        return float(np.nanmax([self.hidden_rate, self.sensitivity_rate]))


SUP_SLOPE = {"tanh": 1.0, "sigmoid": 0.25}
"""sup |sigma'| of the meanfield cell's activations."""


def contraction_bound(model: Model) -> float | None:
    """G sup|sigma'| for the meanfield cell (its hidden map contracts at least this fast),
    None for other cells."""
    options = model.cell.options
    if model.cell.name != "meanfield" or "bound" not in options:
        return None
    return float(options["bound"]) * SUP_SLOPE[options["activation"]]


def coupling(
    model: Model,
    params: ModelParams,
    data_path: Stream | np.ndarray,
    starts: int = 4,
    *,
    seed: int = 0,
    spread: float = 1.0,
) -> Coupling:
    """Run `starts` chains of (S_k, J_k) (exact RTRL state) with frozen `params` on the
    inputs of `data_path` ((T, d) array or Stream). Chain 0 starts from S_0 = 0 and RTRL's
    own J_0; the others from S_0 ~ Uniform(-spread, spread)^N and J_0 plus N(0, spread^2)
    noise on every entry."""
    check_params(model, params)
    check_int("starts", starts, 2)
    check_int("seed", seed, 0)
    if not (np.isfinite(spread) and spread > 0):
        raise UserError(f"spread must be a positive number, got {spread}")
    inputs = np.asarray(data_path.inputs if isinstance(data_path, Stream) else data_path)
    if inputs.ndim != 2 or inputs.shape[1] != model.cell.input_size or len(inputs) < 2:
        raise UserError(
            f"data_path must be (T >= 2, {model.cell.input_size}) inputs, got shape {inputs.shape}"
        )
    if not np.all(np.isfinite(inputs)):
        raise UserError("data_path has NaN or infinite inputs")
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    hidden, sensitivity = _chain_distances(
        model, params, jnp.asarray(inputs, dtype), starts, seed, spread
    )
    eps = float(jnp.finfo(dtype).eps)
    return Coupling(hidden, sensitivity, fit_rate(hidden, eps), fit_rate(sensitivity, eps))


def _chain_distances(
    model: Model, params: ModelParams, inputs: jax.Array, starts: int, seed: int, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    algorithm = rtrl(model)
    n, dtype = model.cell.hidden_size, inputs.dtype
    hidden0 = model.cell.initial_hidden(dtype)
    state0 = algorithm.init(params, hidden0)
    key_s, key_j = jax.random.split(jax.random.PRNGKey(seed))
    shifts = jax.random.uniform(key_s, (starts, n), dtype, -spread, spread).at[0].set(0.0)
    leaves, treedef = jax.tree_util.tree_flatten(state0)
    keys = jax.random.split(key_j, len(leaves))
    noisy = [
        leaf + spread * jax.random.normal(k, (starts, *leaf.shape), dtype).at[0].set(0.0)
        for leaf, k in zip(leaves, keys, strict=True)
    ]
    states = jax.tree_util.tree_unflatten(treedef, noisy)
    zero = jnp.zeros((), dtype)

    def distances(hidden: jax.Array, state: Any) -> tuple[jax.Array, jax.Array]:
        flat = jnp.concatenate(
            [leaf.reshape(starts, -1) for leaf in jax.tree_util.tree_leaves(state)], axis=1
        )
        return (
            jnp.linalg.norm(hidden - hidden[0], axis=1).max(),
            jnp.linalg.norm(flat - flat[0], axis=1).max(),
        )

    def body(carry: Any, x: jax.Array) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        hidden, state = carry
        result = jax.vmap(lambda h, s: algorithm.step(params, h, s, x, zero))(hidden, state)
        return (result.hidden, result.state), distances(result.hidden, result.state)

    start = (hidden0 + shifts, states)
    first = distances(*start)
    _, (d_hidden, d_state) = jax.jit(lambda c, xs: jax.lax.scan(body, c, xs))(start, inputs)
    return (
        np.concatenate([[float(first[0])], np.asarray(d_hidden, np.float64)]),
        np.concatenate([[float(first[1])], np.asarray(d_state, np.float64)]),
    )


def fit_rate(distances: np.ndarray, eps: float) -> float:
    """Geometric rate r from a least-squares fit of log d_k = a + k log r over the steps
    where d_k lies between 1e3 eps d_0 (above rounding) and d_0 / 10 (past the transient).
    NaN with fewer than 3 such steps."""
    d0 = distances[0]
    steps = np.arange(len(distances))
    inside = (distances < d0 / 10) & (distances > 1e3 * eps * max(d0, 1.0))
    last = np.flatnonzero(distances <= 1e3 * eps * max(d0, 1.0))
    if last.size:  # only the first descent: rounding noise later is not the rate
        inside &= steps < last[0]
    if inside.sum() < 3:
        return float("nan")
    slope = np.polyfit(steps[inside], np.log(distances[inside]), 1)[0]
    return float(np.exp(slope))


POOLED = 20_000
"""Size of the subsample of the pooled law that W1 against the ensemble uses."""


@dataclass(frozen=True)
class WindowLaws:
    """W1 between laws of features of (S_k, J_k) (mean over features, see module doc).

    window_lengths (W,), window_w1 (W,): equal windows [burn_in, burn_in + n) of independent
    paths, mean over path pairs; window_slope: log-log slope of window_w1 against n.
    steps (K,), ensemble_w1 (K,): the law across paths at step k + 1 against the pooled law
    of the second halves of all paths (a subsample of POOLED points); floor: W1 between two
    samples of `paths` points of the pooled law (what sampling alone gives)."""

    window_lengths: np.ndarray
    window_w1: np.ndarray
    window_slope: float
    steps: np.ndarray
    ensemble_w1: np.ndarray
    floor: float


def trace_features(
    model: Model,
    params: ModelParams,
    inputs: jax.Array,
    hidden0: jax.Array,
    *,
    units: int,
    directions: ModelParams,
) -> jax.Array:
    """Features per step, (T, units + units * m): S_{k+1}[:units] and (dS_{k+1}/dtheta v_j)
    [:units] for the m stacked directions v_j (leading axis of `directions`), from S_0 =
    hidden0 and dS_0/dtheta = 0. inputs (T, d)."""

    def hidden_path(cell_params: Any) -> jax.Array:
        def body(h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
            new = model.cell.apply(cell_params, h, x)
            return new, new[:units]

        return jax.lax.scan(body, hidden0, inputs)[1]

    def tangent(v: Any) -> jax.Array:
        return jax.jvp(hidden_path, (params["cell"],), (v,))[1]

    path = hidden_path(params["cell"])
    tangents = jax.vmap(tangent)(directions)  # (m, T, units)
    return jnp.concatenate([path, *tangents], axis=1)


def window_laws(
    model: Model,
    params: ModelParams,
    process: Process,
    *,
    steps: int,
    burn_in: int,
    paths: int,
    windows: int = 8,
    units: int = 2,
    projections: int = 2,
    seed: int = 0,
) -> WindowLaws:
    """Empirical laws of (S_k, J_k) features over time windows and across `paths`
    independent data paths `process(burn_in + steps, seed=seed + p)`, every path started
    from the far corner S_0 = (1, ..., 1), J_0 = 0; `windows` log-spaced window lengths from
    100 (or steps / 10) to steps."""
    check_params(model, params)
    for name, value, minimum in (
        ("steps", steps, 20),
        ("burn_in", burn_in, 0),
        ("paths", paths, 4),
        ("windows", windows, 2),
        ("units", units, 1),
        ("projections", projections, 1),
        ("seed", seed, 0),
    ):
        check_int(name, value, minimum)
    if units > model.cell.hidden_size:
        raise UserError(f"units={units} exceeds the hidden size {model.cell.hidden_size}")
    streams = [process(burn_in + steps, seed=seed + p) for p in range(paths)]
    directions = _unit_directions(params["cell"], projections, seed)
    features = _path_features(model, params, streams, units, directions)
    lengths = np.unique(np.geomspace(min(100, steps // 10), steps, windows).astype(int))
    window_w1 = _window_w1(features[:, burn_in:], lengths)
    slope = float(np.polyfit(np.log(lengths), np.log(window_w1), 1)[0])
    times, ensemble, floor = _against_pooled(features, burn_in + steps // 2, seed)
    return WindowLaws(lengths, window_w1, slope, times, ensemble, floor)


def _path_features(
    model: Model, params: ModelParams, streams: list[Stream], units: int, directions: ModelParams
) -> np.ndarray:
    """`trace_features` of every stream from S_0 = (1, ..., 1), (paths, T, F) float64, in the
    dtype of `params`; a UserError when the streams' inputs do not fit the model."""
    if any(s.input_dim != model.cell.input_size for s in streams):
        raise UserError(f"process inputs do not have the model's {model.cell.input_size} columns")
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    inputs = jnp.asarray(np.stack([s.inputs for s in streams]), dtype)
    start = jnp.ones((model.cell.hidden_size,), dtype)  # far from typical states
    trace = jax.jit(
        jax.vmap(
            lambda xs: trace_features(model, params, xs, start, units=units, directions=directions)
        )
    )
    return np.asarray(trace(inputs), np.float64)


def _window_w1(features: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """W1 between the first n steps of paths 2i and 2i + 1 of features (paths, T, F), mean
    over the pairs, for each window length n in `lengths`."""
    pairs = [(p, p + 1) for p in range(0, len(features) - 1, 2)]
    return np.array(
        [np.mean([_w1(features[a, :n], features[b, :n]) for a, b in pairs]) for n in lengths]
    )


def _against_pooled(
    features: np.ndarray, pooled_from: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Steps k (K,) and W1 between the law across paths at step k and a subsample of POOLED
    points of features (paths, T, F) from step `pooled_from` on, pooled over the paths; and
    the sampling floor, W1 between two samples of `paths` pooled points."""
    paths, length, width = features.shape
    rng = np.random.default_rng(seed)
    pooled = features[:, pooled_from:].reshape(-1, width)
    pooled = pooled[rng.choice(len(pooled), size=min(len(pooled), POOLED), replace=False)]
    times = np.unique(np.geomspace(1, length, 30).astype(int)) - 1
    ensemble = np.array([_w1(features[:, k], pooled) for k in times])
    draw = pooled[rng.choice(len(pooled), size=2 * paths, replace=False)]
    return times, ensemble, _w1(draw[:paths], draw[paths:])


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over feature columns of the 1-D Wasserstein-1 distance (scipy.stats)."""
    return float(
        np.mean([scipy.stats.wasserstein_distance(a[:, j], b[:, j]) for j in range(a.shape[1])])
    )


def _unit_directions(tree: Any, count: int, seed: int) -> Any:
    """`count` random unit directions in the space of `tree`, stacked on a leading axis."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    drawn = [
        jax.random.normal(k, (count, *leaf.shape), leaf.dtype)
        for leaf, k in zip(leaves, keys, strict=True)
    ]
    norm = jnp.sqrt(sum(jnp.sum(d.reshape(count, -1) ** 2, axis=1) for d in drawn))
    return jax.tree_util.tree_unflatten(
        treedef, [d / norm.reshape((count,) + (1,) * (d.ndim - 1)) for d in drawn]
    )
