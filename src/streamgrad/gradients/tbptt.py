"""Truncated backpropagation through time, TBPTT(k1, k2) (Williams & Peng 1990).

The variant implemented, stated exactly:
- The network runs forward online; S_k is carried across windows and never reset.
- Every k1 steps (`every`, default tau) it computes the gradient of the sum of the last k1
  losses, backpropagated through the last k2 = tau steps only: the stored hidden state from
  k2 steps ago is the (constant) start of the window, so the chain rule is cut there.
  The window is recomputed with the current parameters, which are the ones that produced it
  because updates happen only at window ends (when k1 = k2).
- The gradient is applied once per window (`ready`). At the end of a finite stream `flush`
  returns the gradient of the losses since the last update.

TBPTT(tau) in this project means k1 = k2 = tau. With tau >= T (the whole stream in one window)
the gradient equals full BPTT; with tau < T it is biased, since dependencies longer than tau
are cut. Memory O(k2 (N + d)), time O(step) per step plus O(k2 step) per update.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from streamgrad.gradients.base import OnlineAlgorithm, StepResult, zeros_like_tree
from streamgrad.model import Model, ModelParams


class TBPTTState(NamedTuple):
    inputs: jax.Array  # (k2, d) ring buffer of x
    targets: jax.Array  # (k2,) ring buffer of y
    starts: jax.Array  # (k2, N) hidden state before each buffered step
    position: jax.Array  # next slot to write
    filled: jax.Array  # number of valid slots (<= k2)
    since_update: jax.Array  # steps since the last gradient (<= k1)


def window_gradient(
    model: Model, params: ModelParams, state: TBPTTState, n_losses: jax.Array
) -> ModelParams:
    """d/dtheta of the sum of the last `n_losses` buffered losses, the forward pass rerun with
    `params` over the valid slots of the window (k2 = buffer length, oldest first) from the
    stored S at the window's start, held constant (the truncation)."""
    k2 = state.inputs.shape[0]
    order = (state.position + jnp.arange(k2)) % k2  # oldest first
    slot = jnp.arange(k2)
    valid = slot >= k2 - state.filled
    counted = valid & (slot >= k2 - n_losses)
    start = state.starts[order[k2 - state.filled]]

    def window_loss(p: ModelParams) -> jax.Array:
        def body(h: jax.Array, item: tuple) -> tuple[jax.Array, jax.Array]:
            x, y, ok, use = item
            new_hidden, _, loss = model.forward(p, h, x, y)
            return jnp.where(ok, new_hidden, h), jnp.where(use, loss, 0.0)

        items = (state.inputs[order], state.targets[order], valid, counted)
        _, losses = jax.lax.scan(body, start, items)
        return losses.sum()

    return jax.grad(window_loss)(params)


def tbptt(model: Model, tau: int, *, every: int | None = None) -> OnlineAlgorithm:
    """TBPTT(k1 = every or tau, k2 = tau)."""
    k2 = int(tau)
    k1 = k2 if every is None else int(every)
    if k2 < 1 or not 1 <= k1 <= k2:
        raise ValueError(f"TBPTT needs 1 <= every <= tau, got every={k1}, tau={k2}")
    cell = model.cell

    def init(params: ModelParams, hidden: jax.Array) -> TBPTTState:
        target_dtype = hidden.dtype if model.loss == "mse" else jnp.int32
        return TBPTTState(
            jnp.zeros((k2, cell.input_size), hidden.dtype),
            jnp.zeros((k2,), target_dtype),
            jnp.zeros((k2, cell.hidden_size), hidden.dtype),
            *(jnp.zeros((), jnp.int32) for _ in range(3)),  # distinct buffers: donated
        )

    def gradient_if(params: ModelParams, state: TBPTTState, n_losses: jax.Array) -> ModelParams:
        return jax.lax.cond(
            n_losses > 0,
            lambda: window_gradient(model, params, state, n_losses),
            lambda: zeros_like_tree(params),
        )

    def step(
        params: ModelParams, hidden: jax.Array, state: TBPTTState, x: jax.Array, y: jax.Array
    ) -> StepResult:
        new_hidden, output, loss = model.forward(params, hidden, x, y)
        state = TBPTTState(
            state.inputs.at[state.position].set(x),
            state.targets.at[state.position].set(y.astype(state.targets.dtype)),
            state.starts.at[state.position].set(hidden),
            (state.position + 1) % k2,
            jnp.minimum(state.filled + 1, k2),
            state.since_update + 1,
        )
        ready = state.since_update == k1
        grads = gradient_if(params, state, jnp.where(ready, k1, 0))
        state = state._replace(since_update=jnp.where(ready, 0, state.since_update))
        return StepResult(new_hidden, state, output, loss, grads, ready)

    def flush(params: ModelParams, state: TBPTTState) -> tuple[ModelParams, jax.Array]:
        return gradient_if(params, state, state.since_update), state.since_update > 0

    return OnlineAlgorithm(
        f"tbptt-{k2}" if k1 == k2 else f"tbptt-{k1}-{k2}",
        model,
        init,
        step,
        flush,
        every_step=False,
        tau=k2,
        every=k1,
    )
