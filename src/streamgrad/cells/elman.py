"""Elman (vanilla tanh) cell, with dense or sparse recurrence.

    S_{k+1} = tanh(W x_k + (A * M) S_k + b)

Shapes: W (N, d), A (N, N), M (N, N) a fixed 0/1 mask, b (N,), S (N,), x (d,). Every leaf is
row-local. With `density` 1 (the default) M is all ones; below 1 each off-diagonal entry of
M is 1 with probability `density` (self-connections are kept), drawn once from `mask_seed`,
so the recurrence graph is sparse (the setting where SnAp-n for n >= 2 differs from RTRL).
The mask is applied in `effective`, so gradients of masked entries are zero.
Initialisation: W ~ N(0, 1/d), A ~ N(0, gain^2 / (density N)) (spectral radius of A * M
about `gain`), b = 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.cells.base import Cell, Params, normal


def recurrence_mask(hidden_size: int, density: float, seed: int) -> np.ndarray:
    """(N, N) 0/1 mask: ones on the diagonal, elsewhere Bernoulli(density) from `seed`."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    mask = np.random.default_rng(seed).random((hidden_size, hidden_size)) < density
    np.fill_diagonal(mask, True)
    return mask


def elman(
    hidden_size: int,
    input_size: int,
    *,
    gain: float = 0.9,
    density: float = 1.0,
    mask_seed: int = 0,
) -> Cell:
    n, d = hidden_size, input_size
    mask = recurrence_mask(n, density, mask_seed)
    sparse = not mask.all()

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        kw, ka = jax.random.split(key)
        return {
            "W": normal(kw, (n, d), d**-0.5, dtype),
            "A": normal(ka, (n, n), gain * (density * n) ** -0.5, dtype),
            "b": jnp.zeros((n,), dtype),
        }

    def step(w: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.tanh(w["W"] @ x + w["A"] @ hidden + w["b"])

    def effective(params: Params) -> Params:
        return {**params, "A": params["A"] * jnp.asarray(mask, params["A"].dtype)}

    options: dict[str, Any] = {"gain": gain}
    if sparse:
        options.update(density=density, mask_seed=mask_seed)
    return Cell(
        "elman",
        n,
        d,
        init,
        step,
        row_local=("A", "W", "b"),
        **({"effective": effective} if sparse else {}),
        options=options,
    )
