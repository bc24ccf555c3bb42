"""The papers' mean-field network class.

N units with i.i.d. per-unit parameters theta^i = (W^i, c^i, B^i); the readout
f = N^(-beta) sum_i C^i S^i lives in `streamgrad.model` (`meanfield_readout`).
g is the smooth clipping of `cells/clipping.py`, sigma the activation (tanh by default).

coupling = "shared" (the papers' simplified weight matrix):
    u_k       = (1/N) sum_j g(B^j) S^j_k                      memory, a scalar
    S^i_{k+1} = sigma(W^i . x_k + c^i + u_k)
coupling = "diagonal":
    S^i_{k+1} = sigma(W^i . x_k + c^i + g(B^i) S^i_k)
coupling = "dense":
    S_{k+1}   = sigma(W x_k + c + N^(-1/2) A~ S_k),  A~ = A * g(r)/r,  r = ||N^(-1/2) A||_2
    (the spectral norm of N^(-1/2) A~ is g(r) < G; elementwise clipping would not bound it).

Shapes: W (N, d), c (N,), B (N,) or A (N, N).
Laws at initialisation: W ~ N(0, w_std^2), c ~ N(bias_mean, bias_std^2), B ~ N(recurrent_mean,
recurrent_std^2) (A ~ N(0, recurrent_std^2) for dense). Non-zero means for c and B are the
defaults on purpose: with an odd sigma, symmetric W and zero-mean B the memory u vanishes as N
grows and the limit would have no memory.
Contraction: |du_{k+1}/du_k| <= G sup|sigma'| (shared), |g(B^i) sigma'| (diagonal),
||dS_{k+1}/dS_k||_2 <= G sup|sigma'| (dense): choose G * sup|sigma'| < 1 (tanh: G < 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from streamgrad.cells.base import Cell, Params, normal
from streamgrad.cells.clipping import smooth_clip, spectral_clip

Coupling = Literal["shared", "diagonal", "dense"]
ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}


def meanfield(
    hidden_size: int,
    input_size: int,
    *,
    coupling: Coupling = "shared",
    clip_at: float = 0.9,
    bound: float = 0.99,
    activation: str = "tanh",
    w_std: float = 1.0,
    bias_mean: float = 0.25,
    bias_std: float = 0.5,
    recurrent_mean: float = 0.5,
    recurrent_std: float = 0.25,
) -> Cell:
    """The mean-field cell with N = hidden_size units and d = input_size inputs (the equations
    and laws are in the module docstring)."""
    if coupling not in ("shared", "diagonal", "dense"):
        raise ValueError(f"unknown coupling {coupling!r}; use shared, diagonal or dense")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}")
    smooth_clip(jnp.zeros(()), clip_at, bound)  # validates 0 < M < G early
    n, d = hidden_size, input_size
    sigma = ACTIVATIONS[activation]
    options = {
        "coupling": coupling,
        "clip_at": clip_at,
        "bound": bound,
        "activation": activation,
        "w_std": w_std,
        "bias_mean": bias_mean,
        "bias_std": bias_std,
        "recurrent_mean": recurrent_mean,
        "recurrent_std": recurrent_std,
    }

    def init(key: jax.Array, dtype: Any = jnp.float32) -> Params:
        kw, kc, kb = jax.random.split(key, 3)
        params = {
            "W": normal(kw, (n, d), w_std, dtype),
            "c": bias_mean + normal(kc, (n,), bias_std, dtype),
        }
        if coupling == "dense":
            params["A"] = normal(kb, (n, n), recurrent_std, dtype)
        else:
            params["B"] = recurrent_mean + normal(kb, (n,), recurrent_std, dtype)
        return params

    def effective(params: Params) -> Params:
        weights = dict(params)
        if coupling == "dense":
            weights["A"] = spectral_clip(params["A"] * n**-0.5, clip_at, bound)
        else:
            weights["B"] = smooth_clip(params["B"], clip_at, bound)
        return weights

    common = {"init": init, "effective": effective, "options": options}
    return _COUPLINGS[coupling](n, d, sigma, common)


def _shared(n: int, d: int, sigma: Callable, common: dict[str, Any]) -> Cell:
    """u_k = (1/N) sum_j g(B^j) S^j_k, S^i_{k+1} = sigma(W^i . x_k + c^i + u_k)."""

    def memory(w: Params, hidden: jax.Array) -> jax.Array:
        return jnp.mean(w["B"] * hidden)[None]

    def step_from_memory(w: Params, u: jax.Array, x: jax.Array) -> jax.Array:
        return sigma(w["W"] @ x + w["c"] + u[0])

    def step(w: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        return step_from_memory(w, memory(w, hidden), x)

    return Cell(
        "meanfield",
        n,
        d,
        step=step,
        row_local=("W", "c"),
        structure="memory",
        memory=memory,
        step_from_memory=step_from_memory,
        **common,
    )


def _diagonal(n: int, d: int, sigma: Callable, common: dict[str, Any]) -> Cell:
    """S^i_{k+1} = sigma(W^i . x_k + c^i + g(B^i) S^i_k)."""

    def step(w: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        return sigma(w["W"] @ x + w["c"] + w["B"] * hidden)

    return Cell(
        "meanfield", n, d, step=step, row_local=("B", "W", "c"), structure="elementwise", **common
    )


def _dense(n: int, d: int, sigma: Callable, common: dict[str, Any]) -> Cell:
    """S_{k+1} = sigma(W x_k + c + A~ S_k), A~ the spectrally rescaled N^(-1/2) A."""

    def step(w: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
        return sigma(w["W"] @ x + w["c"] + w["A"] @ hidden)

    return Cell("meanfield", n, d, step=step, row_local=("A", "W", "c"), **common)


_COUPLINGS = {"shared": _shared, "diagonal": _diagonal, "dense": _dense}
