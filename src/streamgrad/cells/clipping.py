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


@jax.custom_jvp
def spectral_norm(matrix: jax.Array) -> jax.Array:
    """r = ||A||_2 = sqrt(lambda_max(A^T A)) for a 2-D `matrix`, floored at the smallest
    normal number (so 1 / r stays finite at A = 0), with the derivative

        dr = (A u) . (dA u) / r,    u the unit top eigenvector of A^T A,

    exact wherever the largest singular value is simple. First derivatives only (forward
    and reverse mode, as the engine needs); differentiating twice is refused by JAX.

    Why not `jnp.linalg.svd` or a plain `eigvalsh`: batched (vmapped) LAPACK calls on CPU
    split the batch over XLA's intra-op thread pool and wait for it, and when two such calls
    run at once on a 2-core machine both pool threads wait and the program never finishes
    (gdb stacks in `jax::ParallelBatchMap`, jax 0.10; seen with the learning-rate ensemble
    of a guarded Elman and a vmapped guarded GRU). `_top_eigen` is therefore a
    `sequential_vmap`: under vmap it runs one matrix at a time (`lax.map`), which never
    enters that path."""
    return _top_eigen(matrix)[0]


@spectral_norm.defjvp
def _spectral_norm_jvp(
    primals: tuple[jax.Array], tangents: tuple[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    (matrix,), (direction,) = primals, tangents
    r, u = _top_eigen(matrix)
    return r, jnp.dot(matrix @ u, direction @ u) / r


@jax.custom_batching.sequential_vmap
def _top_eigen(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(||A||_2 floored as in `spectral_norm`, the unit top eigenvector of A^T A)."""
    values, vectors = jnp.linalg.eigh(matrix.T @ matrix)
    return jnp.sqrt(jnp.maximum(values[-1], jnp.finfo(matrix.dtype).tiny)), vectors[:, -1]


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
