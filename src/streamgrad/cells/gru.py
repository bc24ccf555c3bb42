"""Gated recurrent unit (Cho et al. 2014).

    z = sigmoid(Wz x + Uz S + bz)            update gate
    r = sigmoid(Wr x + Ur S + br)            reset gate
    h = tanh(Wh x + Uh (r * S) + bh)         candidate
    S_{k+1} = (1 - z) * S + z * h

Shapes: W* (N, d), U* (N, N), b* (N,). The z and h leaves are row-local; the reset gate's
leaves are not (r_j reaches every unit through Uh[:, j]), so exact RTRL takes their
immediate Jacobian by forward mode.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from streamgrad.cells.base import Cell, Params, normal


def gru(hidden_size: int, input_size: int) -> Cell:
    n, d = hidden_size, input_size

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        keys = jax.random.split(key, 6)
        params: Params = {}
        for gate, kx, ks in zip("zrh", keys[:3], keys[3:], strict=True):
            params[f"W{gate}"] = normal(kx, (n, d), d**-0.5, dtype)
            params[f"U{gate}"] = normal(ks, (n, n), n**-0.5, dtype)
            params[f"b{gate}"] = jnp.zeros((n,), dtype)
        return params

    def step(w: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        z = jax.nn.sigmoid(w["Wz"] @ x + w["Uz"] @ hidden + w["bz"])
        r = jax.nn.sigmoid(w["Wr"] @ x + w["Ur"] @ hidden + w["br"])
        h = jnp.tanh(w["Wh"] @ x + w["Uh"] @ (r * hidden) + w["bh"])
        return (1.0 - z) * hidden + z * h

    return Cell("gru", n, d, init, step, row_local=("Uh", "Uz", "Wh", "Wz", "bh", "bz"))
