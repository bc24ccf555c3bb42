"""One interface for online gradient algorithms.

An algorithm walks the stream with the network, one step at a time:

    state  = algo.init(params, hidden)
    result = algo.step(params, hidden, state, x_k, y_k)
             -> S_{k+1}, new state, output o_k, loss l_k, gradient, ready
    grads, ready = algo.flush(params, state)       pending gradient at the end of a stream

`ready` says whether `grads` should be applied now: always for RTRL (a gradient of l_k every
step), every k1 steps for TBPTT. `every_step` is True when `ready` is always True, so the
learner can skip the conditional update. All functions are pure and jit-compatible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from streamgrad.model import Model, ModelParams

State = Any


class StepResult(NamedTuple):
    hidden: jax.Array  # S_{k+1}, (N,)
    state: State  # the algorithm's state after step k
    output: jax.Array  # o_k, (K,)
    loss: jax.Array  # l_k, scalar
    grads: ModelParams  # gradient to apply now (zeros when not ready)
    ready: jax.Array | bool


@dataclass(frozen=True)
class OnlineAlgorithm:
    name: str
    model: Model
    init: Callable[[ModelParams, jax.Array], State]
    step: Callable[[ModelParams, jax.Array, State, jax.Array, jax.Array], StepResult]
    flush: Callable[[ModelParams, State], tuple[ModelParams, jax.Array | bool]]
    every_step: bool
    options: dict[str, Any] = field(default_factory=dict, compare=False)


def zeros_like_tree(tree: Any) -> Any:
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def no_pending(params: ModelParams, state: State) -> tuple[ModelParams, bool]:
    """`flush` of an every-step algorithm: it never holds a pending gradient."""
    return zeros_like_tree(params), False


def loss_and_delta(
    model: Model, readout_params: Any, new_hidden: jax.Array, target: jax.Array
) -> tuple[jax.Array, jax.Array, Any, jax.Array]:
    """(loss l_k, output o_k, dl_k/dreadout, delta_k = dl_k/dS_{k+1} (N,)): the readout end
    that every online algorithm shares."""
    (loss, output), (g_readout, delta) = jax.value_and_grad(
        model.output_loss, argnums=(0, 1), has_aux=True
    )(readout_params, new_hidden, target)
    return loss, output, g_readout, delta


def per_unit(vector: jax.Array, leaf: jax.Array) -> jax.Array:
    """Broadcast a per-unit vector (N,) against a leaf (N, ...) whose rows belong to units."""
    return vector.reshape(vector.shape + (1,) * (leaf.ndim - 1))


def tree_add(a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(jnp.add, a, b)


def tree_scale(tree: Any, scalar: jax.Array) -> Any:
    return jax.tree_util.tree_map(lambda leaf: leaf * scalar, tree)


def tree_select(pred: jax.Array | bool, on_true: Any, on_false: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def accumulate_gradient(
    algorithm: OnlineAlgorithm, params: ModelParams, inputs: jax.Array, targets: jax.Array
) -> tuple[ModelParams, jax.Array]:
    """Sum of every gradient the algorithm emits over the stream with parameters frozen
    (plus the pending gradient at the end), and the summed loss.

    For exact algorithms this equals the BPTT gradient of sum_k l_k (see `bptt_gradient`).
    inputs (T, d), targets (T,).
    """
    hidden0 = algorithm.model.cell.initial_hidden(inputs.dtype)

    def body(carry: Any, xy: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
        hidden, state, total, loss_sum = carry
        result = algorithm.step(params, hidden, state, *xy)
        total = tree_add(total, tree_scale(result.grads, jnp.asarray(result.ready, inputs.dtype)))
        return (result.hidden, result.state, total, loss_sum + result.loss), None

    carry0 = (
        hidden0,
        algorithm.init(params, hidden0),
        zeros_like_tree(params),
        jnp.zeros((), inputs.dtype),
    )
    (_, state, total, loss_sum), _ = jax.lax.scan(body, carry0, (inputs, targets))
    pending, ready = algorithm.flush(params, state)
    return tree_add(total, tree_scale(pending, jnp.asarray(ready, inputs.dtype))), loss_sum
