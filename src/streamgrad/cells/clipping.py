"""Smooth clipping g: identity on [-M, M], monotone, bounded by G > M.

    g(z) = z                                                   for |z| <= M
    g(z) = sign(z) * (M + (G - M) * tanh((|z| - M) / (G - M)))   for |z| >  M

g is twice continuously differentiable (value, slope 1 and curvature 0 match at |z| = M),
strictly increasing, |g| < G and 0 < g' <= 1. With G * sup|sigma'| < 1 the papers' hidden
maps are contractions in S for every parameter value.
"""

from __future__ import annotations

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
