"""A model = recurrent cell + readout + per-step loss.

    S_{k+1} = F(psi(theta_cell), S_k, x_k)           the cell
    o_k     = G(theta_readout, S_{k+1})              readout, shape (K,)
    l_k     = loss(o_k, y_k)

Losses: "mse" (K = 1): l = (o - y)^2; "xent" (K = number of classes): l = -log softmax(o)_y,
and l = 0 for a negative label y (a label not revealed yet at that step).
The prediction for y_k is made from S_{k+1}, which has seen x_k but not y_k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from streamgrad.cells import Cell, Params, make_cell
from streamgrad.cells.base import normal

LossName = Literal["mse", "xent"]
ModelParams = dict[str, Params]


@dataclass(frozen=True)
class Readout:
    """o = apply(params, S): maps hidden (N,) to outputs (K,)."""

    name: str
    init: Callable[[jax.Array, Any], Params]
    apply: Callable[[Params, jax.Array], jax.Array]


def linear_readout(hidden_size: int, n_outputs: int) -> Readout:
    """o = V S + c with V (K, N) ~ N(0, 1/N), c (K,) = 0."""

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        return {
            "V": normal(key, (n_outputs, hidden_size), hidden_size**-0.5, dtype),
            "c": jnp.zeros((n_outputs,), dtype),
        }

    def apply(params: Params, hidden: jax.Array) -> jax.Array:
        return params["V"] @ hidden + params["c"]

    return Readout("linear", init, apply)


def meanfield_readout(hidden_size: int, n_outputs: int, beta: float) -> Readout:
    """o = N^(-beta) sum_i C^i S^i with C (N, K) ~ N(0, 1): beta = 1/2 is the kernel regime."""
    if not 0.5 <= beta < 1.0:
        raise ValueError(f"beta must lie in [1/2, 1), got {beta}")
    scale = hidden_size**-beta

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        return {"C": normal(key, (hidden_size, n_outputs), 1.0, dtype)}

    def apply(params: Params, hidden: jax.Array) -> jax.Array:
        return scale * (hidden @ params["C"])

    return Readout("meanfield", init, apply)


def loss_value(loss: LossName, output: jax.Array, target: jax.Array) -> jax.Array:
    """Scalar loss for one step: output (K,), target scalar (float or int label)."""
    if loss == "mse":
        return jnp.square(output[0] - target)
    # A negative label means "not revealed yet" (delayed labels): no loss, no gradient.
    revealed = target >= 0
    loss = optax.softmax_cross_entropy_with_integer_labels(output, jnp.maximum(target, 0))
    return jnp.where(revealed, loss, 0.0)


@dataclass(frozen=True)
class Model:
    cell: Cell
    readout: Readout
    loss: LossName

    def init(self, key: jax.Array, dtype: Any = jnp.float32) -> ModelParams:
        k_cell, k_readout = jax.random.split(key)
        return {
            "cell": self.cell.init(k_cell, dtype),
            "readout": self.readout.init(k_readout, dtype),
        }

    def output_loss(
        self, readout_params: Params, hidden: jax.Array, target: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """(loss, output) from the new hidden state S_{k+1}."""
        output = self.readout.apply(readout_params, hidden)
        return loss_value(self.loss, output, target), output

    def forward(
        self, params: ModelParams, hidden: jax.Array, x: jax.Array, target: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One step of the network: (S_{k+1}, output o_k, loss l_k)."""
        new_hidden = self.cell.apply(params["cell"], hidden, x)
        loss, output = self.output_loss(params["readout"], new_hidden, target)
        return new_hidden, output, loss


def make_model(
    cell: str,
    hidden_size: int,
    input_size: int,
    *,
    n_classes: int | None = None,
    beta: float = 0.5,
    **cell_options: Any,
) -> Model:
    """Cell by name plus the readout that suits it: the N^(-beta) readout for `meanfield`,
    a linear readout otherwise. Classification (cross-entropy) when `n_classes` is given."""
    recurrent = make_cell(cell, hidden_size, input_size, **cell_options)
    n_outputs = 1 if n_classes is None else n_classes
    if n_classes is not None and n_classes < 2:
        raise ValueError(f"classification needs at least 2 classes, got {n_classes}")
    readout = (
        meanfield_readout(hidden_size, n_outputs, beta)
        if cell == "meanfield"
        else linear_readout(hidden_size, n_outputs)
    )
    return Model(recurrent, readout, "mse" if n_classes is None else "xent")
