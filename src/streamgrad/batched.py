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
    return jax.vmap(learner.run)(states, inputs, targets)
