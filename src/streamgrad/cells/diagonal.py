"""Diagonal (element-wise recurrent) cell.

    S_{k+1} = tanh(W x_k + a * S_k + b)

Shapes: W (N, d), a (N,), b (N,). dS_{k+1}/dS_k = diag(tanh' * a), so exact RTRL keeps one
row of sensitivities per unit and costs O(P) per step.
Initialisation: W ~ N(0, 1/d), a ~ Uniform(a_low, a_high) (long memories near 1), b = 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from streamgrad.cells.base import Cell, Params, normal


def diagonal(
    hidden_size: int, input_size: int, *, a_low: float = 0.3, a_high: float = 0.95
) -> Cell:
    n, d = hidden_size, input_size

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        kw, ka = jax.random.split(key)
        return {
            "W": normal(kw, (n, d), d**-0.5, dtype),
            "a": jax.random.uniform(ka, (n,), dtype, a_low, a_high),
            "b": jnp.zeros((n,), dtype),
        }

    def step(w: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.tanh(w["W"] @ x + w["a"] * hidden + w["b"])

    return Cell(
        "diagonal",
        n,
        d,
        init,
        step,
        row_local=("W", "a", "b"),
        structure="elementwise",
        options={"a_low": a_low, "a_high": a_high},
    )
