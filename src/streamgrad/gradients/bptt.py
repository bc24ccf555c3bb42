"""Full backpropagation through time: the offline reference gradient.

L(theta) = sum_{k=0}^{T-1} l(y_k, G(S_{k+1}(theta)))     S_0 = 0
grad     = dL/dtheta                                      by reverse mode over a lax.scan
"""

from __future__ import annotations

import jax

from streamgrad.model import Model, ModelParams


def sequence_loss(
    model: Model,
    params: ModelParams,
    inputs: jax.Array,
    targets: jax.Array,
    hidden0: jax.Array | None = None,
) -> jax.Array:
    """sum_k l_k over the sequence; inputs (T, d), targets (T,)."""
    hidden = model.cell.initial_hidden(inputs.dtype) if hidden0 is None else hidden0

    def body(h: jax.Array, xy: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        new_hidden, _, loss = model.forward(params, h, *xy)
        return new_hidden, loss

    _, losses = jax.lax.scan(body, hidden, (inputs, targets))
    return losses.sum()


def bptt_gradient(
    model: Model, params: ModelParams, inputs: jax.Array, targets: jax.Array
) -> tuple[ModelParams, jax.Array]:
    """(dL/dtheta, L) for the whole sequence from S_0 = 0."""
    loss, grads = jax.value_and_grad(lambda p: sequence_loss(model, p, inputs, targets))(params)
    return grads, loss
