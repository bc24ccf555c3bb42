"""An update interval for any every-step algorithm: sum K gradients, apply them once.

`every(algorithm, K)` wraps an algorithm that emits a gradient of l_k at every step (RTRL,
SnAp, UORO, RFLO) and emits instead, every K steps, the sum of its last K gradients:

    G_m = sum_{k = (m-1)K}^{mK-1} dl_k/dtheta,     ready at k = mK - 1 (m = 1, 2, ...),

so the learner applies one optimizer update per K steps with the parameters held fixed in
between. The wrapped algorithm runs unchanged at every step (its sensitivities, e.g. RTRL's
influence matrix J_k, keep following the stream); only the gradients are held back. For an
exact algorithm each G_m is therefore the exact gradient of the window's summed loss
sum_k l_k with respect to the current parameters, through the whole past (not truncated),
and with K = T the one update's gradient is the BPTT gradient of the whole stream. This is
what separates averaging (an update every K steps) from truncation (TBPTT(K, K) also cuts the
chain rule K steps back).

State: (inner state, pending sum of gradients since the last update, count of them). The
pending sum is part of the learner state, so checkpoints carry it and a run resumed in the
middle of a window continues exactly. `flush` returns it at the end of a finite stream.
K = 1 returns the algorithm itself. Cost: one tree addition per step and P extra numbers.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from streamgrad.gradients.base import (
    OnlineAlgorithm,
    State,
    StepResult,
    inner_influence,
    tree_add,
    zeros_like_tree,
)
from streamgrad.model import ModelParams


class EveryState(NamedTuple):
    inner: State  # the wrapped algorithm's state
    pending: ModelParams  # sum of the gradients emitted since the last update
    count: jax.Array  # how many (0 <= count < K), int32


def every(algorithm: OnlineAlgorithm, k: int) -> OnlineAlgorithm:
    """`algorithm` with one update every `k` steps, of the sum of its last `k` gradients.
    The other settings (path, seed, ...) are kept; `every` is set to k."""
    k = int(k)
    if k < 1:
        raise ValueError(f"the update interval must be >= 1, got every={k}")
    if not algorithm.every_step:
        raise ValueError(
            f"{algorithm.name} already updates at its own interval; every=K needs an "
            "algorithm that emits a gradient at every step"
        )
    if k == 1:
        return algorithm

    def init(params: ModelParams, hidden: jax.Array) -> EveryState:
        return EveryState(
            algorithm.init(params, hidden), zeros_like_tree(params), jnp.zeros((), jnp.int32)
        )

    def step(
        params: ModelParams, hidden: jax.Array, state: EveryState, x: jax.Array, y: jax.Array
    ) -> StepResult:
        result = algorithm.step(params, hidden, state.inner, x, y)
        total = tree_add(state.pending, result.grads)
        count = state.count + 1
        ready = count == k
        grads = jax.tree_util.tree_map(lambda g: jnp.where(ready, g, 0), total)
        pending = jax.tree_util.tree_map(lambda g: jnp.where(ready, 0, g), total)
        state = EveryState(result.state, pending, jnp.where(ready, 0, count))
        return result._replace(state=state, grads=grads, ready=ready)

    def flush(params: ModelParams, state: EveryState) -> tuple[ModelParams, jax.Array]:
        return state.pending, state.count > 0

    return dataclasses.replace(
        algorithm,
        name=f"{algorithm.name}-every-{k}",
        init=init,
        step=step,
        flush=flush,
        every_step=False,
        influence=inner_influence(algorithm, lambda state: state.inner),
        every=k,
    )
