"""Elman (vanilla tanh) cell with dense recurrence.

    S_{k+1} = tanh(W x_k + A S_k + b)

Shapes: W (N, d), A (N, N), b (N,), S (N,), x (d,). Every leaf is row-local.
Initialisation: W ~ N(0, 1/d), A ~ N(0, gain^2/N) (spectral radius about `gain`), b = 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from streamgrad.cells.base import Cell, Params, normal


def elman(hidden_size: int, input_size: int, *, gain: float = 0.9) -> Cell:
    n, d = hidden_size, input_size

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        kw, ka = jax.random.split(key)
        return {
            "W": normal(kw, (n, d), d**-0.5, dtype),
            "A": normal(ka, (n, n), gain * n**-0.5, dtype),
            "b": jnp.zeros((n,), dtype),
        }

    def step(w: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.tanh(w["W"] @ x + w["A"] @ hidden + w["b"])

    return Cell("elman", n, d, init, step, row_local=("A", "W", "b"), options={"gain": gain})
