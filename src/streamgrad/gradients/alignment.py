"""Measure how well an approximate gradient follows the exact one, online.

`shadowed(approx, exact)` runs both algorithms on the same hidden stream with the same
parameters at every step and trains with the approximate gradient (so the trajectory is the
approximation's), while it accumulates, over the steps where both emit a gradient and the
exact cell gradient is nonzero, the cosine and relative error of the cell-parameter
gradients g = dl_k/dtheta_cell:

    cos_k = <g_approx, g_exact> / (|g_approx| |g_exact|),
    err_k = |g_approx - g_exact| / |g_exact|.

`alignment_summary(state)` reads their means. The shadow costs the exact algorithm's full
price on top of the approximation's (O(N^2 P) per step against dense RTRL): it is a
diagnostic, not a way to train cheaply.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from streamgrad.gradients.base import OnlineAlgorithm, State, StepResult, inner_influence
from streamgrad.model import ModelParams


class ShadowState(NamedTuple):
    approx: State  # the approximate algorithm's state
    exact: State  # the exact algorithm's state
    cosine_sum: jax.Array  # sum of cos_k over the compared steps
    error_sum: jax.Array  # sum of err_k over the compared steps
    steps: jax.Array  # number of compared steps


def shadowed(approx: OnlineAlgorithm, exact: OnlineAlgorithm) -> OnlineAlgorithm:
    """`approx`, with `exact` run beside it to record the alignment of their gradients."""
    if approx.model != exact.model:
        raise ValueError("shadowed algorithms must share one model")

    def init(params: ModelParams, hidden: jax.Array) -> ShadowState:
        return ShadowState(
            approx.init(params, hidden),
            exact.init(params, hidden),
            jnp.zeros((), hidden.dtype),  # distinct buffers: the learner donates its state
            jnp.zeros((), hidden.dtype),
            jnp.zeros((), jnp.int32),
        )

    def step(
        params: ModelParams, hidden: jax.Array, state: ShadowState, x: jax.Array, y: jax.Array
    ) -> StepResult:
        result = approx.step(params, hidden, state.approx, x, y)
        reference = exact.step(params, hidden, state.exact, x, y)
        g_approx, _ = ravel_pytree(result.grads["cell"])
        g_exact, _ = ravel_pytree(reference.grads["cell"])
        exact_norm = jnp.linalg.norm(g_exact)
        compared = jnp.logical_and(result.ready, reference.ready) & (exact_norm > 0)
        safe_norm = jnp.where(compared, exact_norm, 1.0)
        approx_norm = jnp.linalg.norm(g_approx)
        approx_norm = jnp.where(approx_norm > 0, approx_norm, 1.0)  # cos = 0 if g_approx = 0
        cosine = jnp.clip(g_approx @ g_exact / (approx_norm * safe_norm), -1.0, 1.0)
        error = jnp.linalg.norm(g_approx - g_exact) / safe_norm
        state = ShadowState(
            result.state,
            reference.state,
            state.cosine_sum + jnp.where(compared, cosine, 0.0),
            state.error_sum + jnp.where(compared, error, 0.0),
            state.steps + compared.astype(jnp.int32),
        )
        return result._replace(state=state)

    def flush(params: ModelParams, state: ShadowState) -> tuple[ModelParams, jax.Array | bool]:
        return approx.flush(params, state.approx)

    name = f"{approx.name}~{exact.name}"
    return OnlineAlgorithm(
        name,
        approx.model,
        init,
        step,
        flush,
        every_step=approx.every_step,
        influence=inner_influence(approx, lambda state: state.approx),
    )


def alignment_summary(state: ShadowState) -> dict[str, float]:
    """Mean cosine, mean relative error and number of compared steps (NaN means if none)."""
    steps = int(state.steps)
    divisor = steps if steps else float("nan")
    return {
        "cosine": float(state.cosine_sum) / divisor,
        "relative_error": float(state.error_sum) / divisor,
        "steps": steps,
    }
