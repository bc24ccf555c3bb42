"""Smooth clipping g: identity on [-M, M], monotone, bounded by G > M.

    g(z) = z                                                   for |z| <= M
    g(z) = sign(z) * (M + (G - M) * tanh((|z| - M) / (G - M)))   for |z| >  M

g is twice continuously differentiable (value, slope 1 and curvature 0 match at |z| = M),
strictly increasing, |g| < G and 0 < g' <= 1. With G * sup|sigma'| < 1 the papers' hidden
maps are contractions in S for every parameter value.

`spectral_clip` applies g to a matrix's spectral norm r = ||A||_2 instead of to its entries,
A -> A g(r) / r: A is unchanged while r <= M, and ||g(r) A / r||_2 = g(r) < G always
(elementwise clipping bounds no operator norm). It is smooth wherever the largest singular
value is simple, so gradients pull back through it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp


def smooth_clip(z: jax.Array, clip_at: float, bound: float) -> jax.Array:
    """Apply g elementwise; clip_at = M, bound = G (requires 0 < M < G)."""
    if not 0.0 < clip_at < bound:
        raise ValueError(f"smooth clipping needs 0 < M < G, got M={clip_at}, G={bound}")
    width = bound - clip_at
    excess = jnp.maximum(jnp.abs(z) - clip_at, 0.0)
    clipped = jnp.sign(z) * (clip_at + width * jnp.tanh(excess / width))
    return jnp.where(jnp.abs(z) <= clip_at, z, clipped)


def spectral_norm(matrix: jax.Array) -> jax.Array:
    """||A||_2 = sqrt(largest eigenvalue of A^T A), for a 2-D `matrix`. By `eigvalsh` rather
    than an SVD: XLA's CPU SVD hangs inside a vmapped scan (a guarded GRU, N = 32, under
    `jax.vmap` of the learner's scan, jax 0.10), eigh does not. Floored at the smallest normal
    number so that the square root's derivative stays finite at A = 0."""
    largest = jnp.linalg.eigvalsh(matrix.T @ matrix)[-1]
    return jnp.sqrt(jnp.maximum(largest, jnp.finfo(matrix.dtype).tiny))


def spectral_clip(matrix: jax.Array, clip_at: float, bound: float) -> jax.Array:
    """A g(r) / r with r = ||A||_2 (2-D `matrix`): spectral norm below `bound` = G, the
    identity while r <= `clip_at` = M. The factor is exactly 1 there (also for A = 0)."""
    r = spectral_norm(matrix)
    beyond = r > clip_at
    factor = jnp.where(beyond, smooth_clip(r, clip_at, bound) / jnp.where(beyond, r, 1.0), 1.0)
    return matrix * factor


def contraction(bound: float) -> Callable[[jax.Array], jax.Array]:
    """The recurrent-matrix guard of the `contract=G` option of Elman and GRU:
    A -> spectral_clip(A, M = 0.9 G, G), which leaves A alone up to 90% of the bound."""
    if not bound > 0.0:
        raise ValueError(f"contract must be > 0, got {bound}")
    return partial(spectral_clip, clip_at=0.9 * bound, bound=bound)
