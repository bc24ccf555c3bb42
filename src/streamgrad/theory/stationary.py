"""The stationary loss L(theta) and its gradient, estimated from one long run (docs/theory.md).

With theta frozen, the data, hidden state and sensitivities (X_k, S_k, J_k) form an ergodic
Markov chain (the cell is a contraction, the data process ergodic), so the long-run loss and
its gradient are time averages:

    L(theta)      = lim_T (1/T) sum_{k<T} l_k(theta)
    grad L(theta) = lim_T (1/T) sum_{k<T} dl_k/dtheta = lim_T (1/T) sum_{k<T} delta_k^T J_{k+1}

where dl_k/dtheta is the exact derivative through the whole past, which RTRL emits at step
k. `stationary_loss_and_gradient` runs `burn_in` steps (the chain forgets its start), then
`steps` more in `batches` consecutive batches of equal length b, and returns the averages and
their batch-means standard errors: with batch means m_1..m_B of a quantity,

    estimate = (1/B) sum_j m_j,    se = std(m_1..m_B, ddof=1) / sqrt(B),

consistent for the standard deviation of the estimate when b is much longer than the chain's
correlation time. The noise floor of |grad L| is sqrt(sum_i se_i^2): even at a stationary
point (grad L = 0) the estimated norm is about that large, since
E|estimate|^2 = |grad L|^2 + sum_i se_i^2.

The floor is the root-mean-square size of the noise vector, not the spread of the estimated
norm. Away from a stationary point the norm moves only with the noise along the gradient's
direction u = estimate / |estimate| (delta method):

    se(|grad L|) = std(u . m_1, ..., u . m_B, ddof=1) / sqrt(B)   (grad_norm_se)

which lies between 0 and the floor (u^T C u <= tr C for the batch-means covariance C). It
equals the floor when the noise is one-dimensional and aligned with grad L, and can be far
below it when the noise is spread over many directions. It needs |grad L| well above the
floor: within a few floors u is itself noisy and the interval +-1.96 se covers a little less
than 95% (93% at 1.2 to 2.5 floors in docs/theory.md, section 1.2), and at grad L = 0 the norm
is chi-like with a spread of the order of the floor. The floor is the conservative bound.

`gradient_bias` runs any online algorithm the same way (its emitted gradients summed over
the batch, divided by b: its time-averaged gradient) and compares it with grad L estimated
on an independent run: relative error, cosine, and the noise floor of the relative error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.data.dataset import Stream
from streamgrad.data.processes import Process, check_int
from streamgrad.errors import UserError
from streamgrad.gradients import OnlineAlgorithm, make_algorithm, rtrl
from streamgrad.gradients.base import tree_add, tree_scale, zeros_like_tree
from streamgrad.model import Model, ModelParams


@dataclass(frozen=True)
class StationaryEstimate:
    """L(theta) and grad L(theta) (mean per-step loss and gradient) with batch-means
    standard errors; `grad` and `grad_se` have the layout of the parameters (numpy);
    `grad_norm_se` is the standard error of `grad_norm` (module docstring)."""

    loss: float
    loss_se: float
    grad: ModelParams
    grad_se: ModelParams
    steps: int
    burn_in: int
    batches: int
    grad_norm_se: float

    @property
    def grad_norm(self) -> float:
        """|estimated grad L|, Euclidean over all parameters."""
        return float(np.linalg.norm(flat(self.grad)))

    @property
    def noise_floor(self) -> float:
        """sqrt(sum_i se_i^2): what |grad L| estimates to at a stationary point."""
        return float(np.linalg.norm(flat(self.grad_se)))


def flat(tree: ModelParams) -> np.ndarray:
    """All leaves of a parameter-shaped tree as one float64 vector (in `ravel_pytree`'s order),
    in numpy: the same numbers whether or not JAX's x64 mode is on."""
    return np.concatenate(
        [np.asarray(leaf, np.float64).ravel() for leaf in jax.tree_util.tree_leaves(tree)]
    )


def batch_means(
    algorithm: OnlineAlgorithm,
    params: ModelParams,
    inputs: jax.Array,
    targets: jax.Array,
    *,
    burn_in: int,
    batches: int,
) -> tuple[jax.Array, ModelParams]:
    """Per-batch mean loss (B,) and mean emitted gradient (each leaf (B, ...)) of an online
    algorithm with frozen `params` on inputs (burn_in + B b, d), targets (burn_in + B b,),
    after `burn_in` steps that only move the state. A gradient still pending at the end
    (TBPTT's last window) counts in the last batch. Pure: jit and vmap it."""
    hidden = algorithm.model.cell.initial_hidden(inputs.dtype)
    state = algorithm.init(params, hidden)

    def advance(carry: Any, xy: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
        result = algorithm.step(params, *carry, *xy)
        return (result.hidden, result.state), None

    (hidden, state), _ = jax.lax.scan(
        advance, (hidden, state), (inputs[:burn_in], targets[:burn_in])
    )
    length = (inputs.shape[0] - burn_in) // batches
    shaped = (
        inputs[burn_in:].reshape(batches, length, -1),
        targets[burn_in:].reshape(batches, length),
    )

    def accumulate(carry: Any, xy: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
        hidden, state, total, loss = carry
        result = algorithm.step(params, hidden, state, *xy)
        ready = jnp.asarray(result.ready, inputs.dtype)
        total = tree_add(total, tree_scale(result.grads, ready))
        return (result.hidden, result.state, total, loss + result.loss), None

    def batch(carry: Any, xy: tuple[jax.Array, jax.Array]) -> tuple[Any, Any]:
        zero = (zeros_like_tree(params), jnp.zeros((), inputs.dtype))
        (hidden, state, total, loss), _ = jax.lax.scan(accumulate, (*carry, *zero), xy)
        return (hidden, state), (loss, total)

    (_, state), (losses, totals) = jax.lax.scan(batch, (hidden, state), shaped)
    pending, ready = algorithm.flush(params, state)
    last = tree_scale(pending, jnp.asarray(ready, inputs.dtype))
    totals = jax.tree_util.tree_map(lambda t, p: t.at[-1].add(p), totals, last)
    return losses / length, tree_scale(totals, 1.0 / length)


def summarize(
    losses: np.ndarray, grads: ModelParams, *, steps: int, burn_in: int
) -> StationaryEstimate:
    """Batch means (B,) and (B, ...) -> estimate with batch-means standard errors."""
    count = losses.shape[0]
    rows = _rows(grads, count)
    mean = rows.mean(axis=0)
    # u = mean / |mean|; an exactly zero mean has no direction and gets grad_norm_se = 0
    direction = mean / max(float(np.linalg.norm(mean)), np.finfo(np.float64).tiny)

    def se(values: Any) -> np.ndarray:
        return _se(np.asarray(values, np.float64))

    losses = np.asarray(losses, np.float64)
    if not np.all(np.isfinite(losses)):
        raise UserError("the stationary estimate is not finite: the network diverged on the run")
    return StationaryEstimate(
        loss=float(losses.mean()),
        loss_se=float(se(losses)),
        grad=jax.tree_util.tree_map(lambda g: np.asarray(g, np.float64).mean(axis=0), grads),
        grad_se=jax.tree_util.tree_map(se, grads),
        steps=steps,
        burn_in=burn_in,
        batches=count,
        grad_norm_se=float(_se(rows @ direction)),
    )


def stationary_loss_and_gradient(
    model: Model,
    params: ModelParams,
    process: Process,
    steps: int,
    burn_in: int,
    batches: int,
    *,
    seed: int = 0,
) -> StationaryEstimate:
    """Estimate L(theta) and grad L(theta) by exact RTRL over one run of
    `process(burn_in + steps, seed=seed)` (module docstring). `steps` must be a multiple of
    `batches` (>= 2); the batch length should exceed the correlation time of the chain."""
    stream = draw_stream(model, params, process, steps, burn_in, batches, seed)
    return estimate_on(rtrl(model), params, stream, burn_in=burn_in, batches=batches)


def estimate_on(
    algorithm: OnlineAlgorithm, params: ModelParams, stream: Stream, *, burn_in: int, batches: int
) -> StationaryEstimate:
    """`batch_means` of `algorithm` on a given stream, summarised (arguments not checked)."""
    losses, grads = _run(algorithm, params, stream, burn_in, batches)
    return summarize(losses, grads, steps=len(stream) - burn_in, burn_in=burn_in)


def _run(
    algorithm: OnlineAlgorithm, params: ModelParams, stream: Stream, burn_in: int, batches: int
) -> tuple[np.ndarray, ModelParams]:
    """`batch_means` on a stream, jitted, results on the host."""
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    target_dtype = jnp.int32 if algorithm.model.loss == "xent" else dtype
    run = jax.jit(partial(batch_means, algorithm, burn_in=burn_in, batches=batches))
    losses, grads = run(
        params, jnp.asarray(stream.inputs, dtype), jnp.asarray(stream.targets, target_dtype)
    )
    return np.asarray(losses), jax.device_get(grads)


@dataclass(frozen=True)
class Bias:
    """An online algorithm's time-averaged gradient g_a against grad L(theta), all relative to
    |grad L|: against the independent exact estimate (relative_error, its noise floor, cosine),
    and paired with exact RTRL on the same run (paired_error, its noise floor), which cancels
    most of the noise and so resolves much smaller biases."""

    algorithm: str
    relative_error: float  # |g_a - grad L| / |grad L|
    noise_floor: float  # sqrt(sum of squared standard errors of g_a and grad L) / |grad L|
    cosine: float  # cos(g_a, grad L)
    paired_error: float  # |g_a - g_rtrl| / |grad L|, g_rtrl on the same run as g_a
    paired_floor: float  # batch-means standard error of g_a - g_rtrl / |grad L|


def gradient_bias(
    model: Model,
    params: ModelParams,
    process: Process,
    algorithms: Sequence[str | OnlineAlgorithm],
    *,
    steps: int = 100_000,
    burn_in: int = 1_000,
    batches: int = 20,
    seed: int = 0,
) -> list[Bias]:
    """Each algorithm's time-averaged gradient (frozen `params`, on the run seed + 1, the same
    run for all) against grad L estimated by exact RTRL on an independent run (seed). An
    unbiased algorithm has errors within a few noise floors; the bias of TBPTT(1, tau)
    ('tbptt:1:TAU') decays geometrically in tau at the chain's contraction rate, that of
    TBPTT(tau, tau) only like 1 / tau (docs/theory.md, section 1.2). Algorithms are specs for
    `make_algorithm` ('rtrl', 'tbptt:5', 'uoro', 'snap1', 'rflo') or built algorithms."""
    if isinstance(algorithms, str) or not algorithms:
        raise UserError(f"algorithms must be a non-empty list of specs, got {algorithms!r}")
    built = [_algorithm(spec, model) for spec in algorithms]
    reference = stationary_loss_and_gradient(
        model, params, process, steps, burn_in, batches, seed=seed
    )
    stream = draw_stream(model, params, process, steps, burn_in, batches, seed + 1)
    truth, truth_se = flat(reference.grad), flat(reference.grad_se)
    scale = float(np.linalg.norm(truth))
    exact = _flat_batches(rtrl(model), params, stream, burn_in, batches)
    rows = []
    for algorithm in built:
        batch = _flat_batches(algorithm, params, stream, burn_in, batches)
        mean, se = batch.mean(axis=0), _se(batch)
        rows.append(
            Bias(
                algorithm.name,
                float(np.linalg.norm(mean - truth)) / scale,
                float(np.sqrt(np.sum(se**2 + truth_se**2))) / scale,
                float(mean @ truth / (np.linalg.norm(mean) * scale)),
                float(np.linalg.norm(mean - exact.mean(axis=0))) / scale,
                float(np.linalg.norm(_se(batch - exact))) / scale,
            )
        )
    return rows


def _flat_batches(
    algorithm: OnlineAlgorithm, params: ModelParams, stream: Stream, burn_in: int, batches: int
) -> np.ndarray:
    """Batch-mean gradients of `algorithm` on `stream`, flattened: (B, P) float64."""
    _, grads = _run(algorithm, params, stream, burn_in, batches)
    return _rows(grads, batches)


def _rows(grads: ModelParams, count: int) -> np.ndarray:
    """A tree of leaves (B, ...) as one (B, P) float64 array, P in `flat`'s order."""
    leaves = jax.tree_util.tree_leaves(grads)
    return np.concatenate([np.asarray(g, np.float64).reshape(count, -1) for g in leaves], 1)


def _se(values: np.ndarray) -> np.ndarray:
    """Batch-means standard error along axis 0."""
    return np.std(values, axis=0, ddof=1) / math.sqrt(values.shape[0])


def _algorithm(spec: str | OnlineAlgorithm, model: Model) -> OnlineAlgorithm:
    if isinstance(spec, OnlineAlgorithm):
        return spec
    try:
        return make_algorithm(spec, model)
    except ValueError as error:
        raise UserError(f"algorithms: {error}") from None


def draw_stream(
    model: Model,
    params: ModelParams,
    process: Process,
    steps: int,
    burn_in: int,
    batches: int,
    seed: int,
) -> Stream:
    """Check the estimator's arguments (one-line UserErrors) and draw the run."""
    check_params(model, params)
    for name, value, minimum in (
        ("steps", steps, 1),
        ("burn_in", burn_in, 0),
        ("batches", batches, 2),
        ("seed", seed, 0),
    ):
        check_int(name, value, minimum)
    if steps % batches:
        raise UserError(f"steps={steps} must be a multiple of batches={batches}")
    if not callable(process):
        raise UserError(f"process must be callable as process(n_steps, seed=...), got {process!r}")
    stream = process(burn_in + steps, seed=seed)
    if not isinstance(stream, Stream):
        raise UserError(f"process returned {type(stream).__name__}, not a Stream")
    if stream.input_dim != model.cell.input_size or len(stream) != burn_in + steps:
        raise UserError(
            f"process gave {len(stream)} steps of {stream.input_dim} inputs; the model needs "
            f"{burn_in + steps} steps of {model.cell.input_size}"
        )
    if (stream.n_classes is None) != (model.loss == "mse"):
        raise UserError(f"process targets ({stream.target_name}) do not suit a {model.loss} model")
    return stream


def check_params(model: Model, params: ModelParams) -> None:
    """Refuse parameters whose structure or shapes differ from `model.init`'s."""
    expected = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    try:
        pairs = jax.tree_util.tree_map(lambda e, p: (e.shape, np.shape(p)), expected, params)
    except (ValueError, TypeError):
        raise UserError("params do not have the model's layout (use model.init)") from None
    for path, (want, got) in jax.tree_util.tree_leaves_with_path(
        pairs, is_leaf=lambda leaf: isinstance(leaf, tuple) and len(leaf) == 2
    ):
        if tuple(want) != tuple(got):
            name = "/".join(str(getattr(key, "key", key)) for key in path)
            raise UserError(f"params {name} has shape {tuple(got)}, the model needs {tuple(want)}")
