"""Gated recurrent unit (Cho et al. 2014).

    z = sigmoid(Wz x + Uz S + bz)            update gate
    r = sigmoid(Wr x + Ur S + br)            reset gate
    h = tanh(Wh x + Uh (r * S) + bh)         candidate
    S_{k+1} = (1 - z) * S + z * h

Shapes: W* (N, d), U* (N, N), b* (N,). The z and h leaves are row-local; the reset gate's
leaves are not (r_j reaches every unit through Uh[:, j]), so exact RTRL takes their
immediate Jacobian by forward mode.

Contraction guard (`contract` = G, off by default): `effective` rescales each recurrent
matrix Uz, Ur, Uh smoothly by its spectral norm (cells/clipping.py `spectral_clip`, as for
Elman and `meanfield --coupling dense`), so ||U*||_2 < G for every parameter value. With
|S| <= 1 (S_0 = 0 and S_{k+1} a convex combination of S and h), sigmoid' <= 1/4 and
|h - S| <= 2, the one-step Jacobian D = dS_{k+1}/dS_k then obeys

    ||D||_2 <= sqrt(1 + G^2) + G / 2 + G^2 / 4,

a bound on how fast the influence matrix J_{k+1} = D J_k + I_k can grow that no parameter
value escapes; unguarded, ||D|| grows with ||U*|| without limit. It is not the theory's
strict contraction: the leak (1 - z) S lets D approach the identity (the long memory a GRU
is built for), so the guard caps the growth rather than forcing decay. The rescaled
matrices are the weights psi the step uses, so the declared row-local leaves stay row-local
and exact RTRL pulls gradients back through `effective`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from streamgrad.cells.base import Cell, Params, normal
from streamgrad.cells.clipping import contraction

RECURRENT = ("Ur", "Uh", "Uz")


def gru(hidden_size: int, input_size: int, *, contract: float | None = None) -> Cell:
    """GRU cell (module docstring); `contract` = G turns on the guard of its U matrices."""
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

    row_local = ("Uh", "Uz", "Wh", "Wz", "bh", "bz")
    if contract is None:
        return Cell("gru", n, d, init, step, row_local=row_local)
    guard = contraction(contract)

    def effective(params: Params) -> Params:
        return {**params, **{name: guard(params[name]) for name in RECURRENT}}

    return Cell(
        "gru",
        n,
        d,
        init,
        step,
        row_local=row_local,
        effective=effective,
        options={"contract": contract},
    )
