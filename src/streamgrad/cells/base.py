"""The recurrent-cell interface.

A cell is a bundle of pure functions over a parameter pytree (a flat dict of arrays):

    params  = cell.init(key, dtype)              trainable parameters theta
    weights = cell.effective(params)             the weights the step uses, psi = psi(theta)
    hidden' = cell.step(weights, hidden, x)      S_{k+1} = F(psi, S_k, x_k)

`effective` carries reparametrisations applied once per step (smooth clipping of recurrent
weights, spectral rescaling). Gradient algorithms differentiate `step` with respect to psi and
pull the result back through `effective` with one vector-Jacobian product, so the forward
sensitivities never see the reparametrisation (see gradients/rtrl.py).

Structure a cell declares, which the exact RTRL paths exploit:
- `row_local`: names of weight leaves whose row i (leading axis) affects only unit i of
  S_{k+1} (true for W, A, b of an Elman cell). Their immediate Jacobian dS_{k+1}/dpsi is
  block diagonal and is read off one vector-Jacobian product instead of a dense jacfwd.
- `structure`:
  * "dense": dS_{k+1}/dS_k is a full N x N matrix (general RTRL, O(N^2 P) per step);
  * "elementwise": dS_{k+1}/dS_k is diagonal and every leaf is row-local, so the influence
    matrix is block diagonal: O(P) per step;
  * "memory": S_{k+1} = f(psi, u_k, x_k) with a low-dimensional memory u_k = m(psi, S_k)
    (the papers' shared coupling), which also gives O(P) per step. Such a cell provides
    `memory` and `step_from_memory`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]
Structure = Literal["dense", "elementwise", "memory"]


def _identity(params: Params) -> Params:
    return params


@dataclass(frozen=True)
class Cell:
    """A recurrent cell S_{k+1} = F(psi(theta), S_k, x_k) with hidden size N and input size d."""

    name: str
    hidden_size: int
    input_size: int
    init: Callable[[jax.Array, Any], Params]
    step: Callable[[Params, jax.Array, jax.Array], jax.Array]
    row_local: tuple[str, ...]
    structure: Structure = "dense"
    effective: Callable[[Params], Params] = _identity
    memory: Callable[[Params, jax.Array], jax.Array] | None = None
    step_from_memory: Callable[[Params, jax.Array, jax.Array], jax.Array] | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def initial_hidden(self, dtype: Any = jnp.float32) -> jax.Array:
        """S_0 = 0, shape (N,)."""
        return jnp.zeros((self.hidden_size,), dtype)

    def apply(self, params: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        """S_{k+1} = F(psi(theta), S_k, x_k) from the trainable parameters."""
        return self.step(self.effective(params), hidden, x)


def normal(key: jax.Array, shape: tuple[int, ...], scale: float, dtype: Any) -> jax.Array:
    """Gaussian N(0, scale^2) array."""
    return scale * jax.random.normal(key, shape, dtype)
