"""Independent streams in one program, for sweeps over seeds or data sets.

B learners with the same model, algorithm and optimizer but their own parameters, optimizer
state, hidden state and algorithm state run side by side on B streams of the same length:
`jax.vmap` of `OnlineLearner.run` over a leading axis of the state and of the streams. Each
stream's numbers are those of a single run on it (tests/test_batched.py checks it); nothing
here assumes a CPU, so the same code runs B streams at once on a GPU.

    states = init_batched(learner, keys)                   every leaf gets a leading axis B
    states, (losses, outputs) = run_batched(learner, states, inputs, targets)
        inputs (B, T, d), targets (B, T) -> losses (B, T), outputs (B, T, K)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from streamgrad.online import LearnerState, OnlineLearner


def init_batched(learner: OnlineLearner, keys: jax.Array, dtype: Any = None) -> LearnerState:
    """Stacked initial states, one per key: keys (B, 2) raw or (B,) typed PRNG keys; the
    parameters of stream b are `model.init(keys[b], dtype)` (float32 by default)."""
    model = learner.algorithm.model
    dtype = dtype or jnp.float32
    return jax.vmap(lambda key: learner.init(model.init(key, dtype)))(keys)


@partial(jax.jit, static_argnums=0, donate_argnums=1)
def run_batched(
    learner: OnlineLearner, states: LearnerState, inputs: jax.Array, targets: jax.Array
) -> tuple[LearnerState, tuple[jax.Array, jax.Array]]:
    """`learner.run` on every stream: states stacked over B (their buffers are donated),
    inputs (B, T, d), targets (B, T) -> (states, (losses (B, T), outputs (B, T, K)))."""
    return vmap_learners(learner.run, states, inputs, targets, in_axes=(0, 0))


def vmap_learners(
    fn: Callable[..., tuple[LearnerState, Any]],
    states: LearnerState,
    *args: Any,
    in_axes: tuple[int | None, ...],
) -> tuple[LearnerState, Any]:
    """`fn(state, *args) -> (state, result)` on every learner of `states` (stacked over B),
    vmapped with the step counters passed unbatched; `in_axes` is that of `args`, the
    results come stacked over B.

    The counters (the example count k and every integer scalar of the algorithm state:
    TBPTT's ring-buffer position, fill and steps since its update, the pending count of
    `every`) are the same in all learners, since every learner takes the same steps (and a
    restart of the learning-rate ensemble copies a whole state). Batched, they would turn
    TBPTT's `lax.cond` on "a window ends now" into a `select` that runs the window's backward
    pass at every step (14x one learner's step instead of about B x, docs/benchmarks.md);
    unbatched, the cond stays a branch. They are stored per learner (the state's layout does
    not change) and learner 0's are used."""
    shared = states._replace(
        params=jax.tree_util.tree_map(lambda _: False, states.params),
        opt_state=jax.tree_util.tree_map(lambda _: False, states.opt_state),
        hidden=False,
        algo_state=jax.tree_util.tree_map(
            lambda leaf: jnp.issubdtype(leaf.dtype, jnp.integer) and leaf.ndim == 1,
            states.algo_state,
        ),
        step=True,
    )
    axes = jax.tree_util.tree_map(lambda is_shared: None if is_shared else 0, shared)
    first = jax.tree_util.tree_map(lambda leaf, s: leaf[0] if s else leaf, states, shared)
    stepped, result = jax.vmap(fn, in_axes=(axes, *in_axes), out_axes=(axes, 0))(first, *args)
    size = jax.tree_util.tree_leaves(states.params)[0].shape[0]
    restacked = jax.tree_util.tree_map(
        lambda leaf, s: jnp.broadcast_to(leaf, (size, *leaf.shape)) if s else leaf,
        stepped,
        shared,
    )
    return restacked, result
