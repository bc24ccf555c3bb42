"""Elman (vanilla tanh) cell, with dense or sparse recurrence.

    S_{k+1} = tanh(W x_k + (A * M) S_k + b)

Shapes: W (N, d), A (N, N), M (N, N) a fixed 0/1 mask, b (N,), S (N,), x (d,). Every leaf is
row-local. With `density` 1 (the default) M is all ones; below 1 each off-diagonal entry of
M is 1 with probability `density` (self-connections are kept), drawn once from `mask_seed`,
so the recurrence graph is sparse (the setting where SnAp-n for n >= 2 differs from RTRL).
The mask is applied in `effective`, so gradients of masked entries are zero.
Initialisation: W ~ N(0, 1/d), A ~ N(0, gain^2 / (density N)) (spectral radius of A * M
about `gain`), b = 0.

Contraction guard (`contract` = G, off by default): `effective` also rescales the recurrent
matrix smoothly by its spectral norm r = ||A * M||_2 (cells/clipping.py `spectral_clip`, the
rescaling of `meanfield --coupling dense`, with M = 0.9 G):

    A~ = (A * M) g(r) / r,    ||A~||_2 = g(r) < G.

Since tanh' <= 1, ||dS_{k+1}/dS_k||_2 = ||diag(tanh'(.)) A~||_2 < G, so with G < 1 the cell
is a contraction in S for every parameter value, the condition of the convergence theory
(docs/theory.md). Without it nothing stops training from growing ||A|| past 1, and then the
influence matrix J_{k+1} = D_k J_k + I_k of RTRL can grow geometrically. The rescaling acts
on the weights psi the step uses, so A~ stays row-local (unit i reads row i of A~) and exact
RTRL pulls its gradient back through `effective` like any other reparametrisation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.cells.base import Cell, Params, normal
from streamgrad.cells.clipping import contraction


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
    contract: float | None = None,
) -> Cell:
    """Elman cell (module docstring); `contract` = G turns on the contraction guard."""
    n, d = hidden_size, input_size
    mask = recurrence_mask(n, density, mask_seed)
    sparse = not mask.all()
    guard = contraction(contract) if contract is not None else None

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
        recurrent = params["A"] * jnp.asarray(mask, params["A"].dtype) if sparse else params["A"]
        if guard is not None:
            recurrent = guard(recurrent)
        return {**params, "A": recurrent}

    options: dict[str, Any] = {"gain": gain}
    if sparse:
        options.update(density=density, mask_seed=mask_seed)
    if contract is not None:
        options.update(contract=contract)
    return Cell(
        "elman",
        n,
        d,
        init,
        step,
        row_local=("A", "W", "b"),
        **({"effective": effective} if sparse or guard is not None else {}),
        options=options,
    )
