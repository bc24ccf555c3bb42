"""Batched independent streams equal a loop of single runs (float64, tight tolerance)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from streamgrad.batched import init_batched, run_batched
from streamgrad.gradients import make_algorithm
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner

CASES = [
    ("elman", "rtrl", None),
    ("gru", "tbptt:4", None),
    ("diagonal", "rtrl", 3),
    ("elman", "tbptt:1:3", None),
    ("elman", "rtrl:every=4", None),
]


@pytest.mark.parametrize(("cell", "spec", "n_classes"), CASES)
def test_batched_run_equals_a_loop_of_single_runs(
    cell: str, spec: str, n_classes: int | None
) -> None:
    model = make_model(cell, 5, 2, n_classes=n_classes)
    learner = OnlineLearner(make_algorithm(spec, model), optax.adam(0.01))
    streams, steps = 3, 23
    keys = jax.random.split(jax.random.PRNGKey(7), streams)
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((streams, steps, 2))
    targets = (
        rng.standard_normal((streams, steps))
        if n_classes is None
        else rng.integers(0, n_classes, (streams, steps)).astype(np.int32)
    )

    states = init_batched(learner, keys, jnp.float64)
    states, (losses, outputs) = run_batched(
        learner, states, jnp.asarray(inputs), jnp.asarray(targets)
    )
    assert losses.shape == (streams, steps)
    assert outputs.shape == (streams, steps, n_classes or 1)

    for b in range(streams):
        single = learner.init(model.init(keys[b], jnp.float64))
        single, (single_losses, single_outputs) = learner.run(
            single, jnp.asarray(inputs[b]), jnp.asarray(targets[b])
        )
        np.testing.assert_allclose(losses[b], single_losses, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(outputs[b], single_outputs, rtol=1e-12, atol=1e-14)
        for batched_leaf, leaf in zip(
            jax.tree_util.tree_leaves(states), jax.tree_util.tree_leaves(single), strict=True
        ):
            np.testing.assert_allclose(batched_leaf[b], leaf, rtol=1e-12, atol=1e-14)


def test_tbptt_streams_branch_on_the_window_end_instead_of_computing_it_every_step() -> None:
    # the streams' step counters are passed unbatched, so TBPTT's "window ends now" stays a
    # lax.cond; batched it becomes a select that runs the window's backward pass every step
    model = make_model("elman", 4, 2)
    learner = OnlineLearner(make_algorithm("tbptt:5", model), optax.sgd(0.1))
    states = init_batched(learner, jax.random.split(jax.random.PRNGKey(0), 3), jnp.float64)
    one = learner.init(model.init(jax.random.PRNGKey(0), jnp.float64))
    inputs, targets = jnp.ones((3, 10, 2)), jnp.zeros((3, 10))
    together = str(jax.make_jaxpr(partial(run_batched, learner))(states, inputs, targets))
    alone = str(jax.make_jaxpr(learner.run)(one, inputs[0], targets[0]))
    assert together.count(" cond[") >= alone.count(" cond[") >= 1  # every branch survives


def test_streams_are_independent() -> None:
    """Changing one stream's data leaves the other streams' results unchanged."""
    model = make_model("elman", 4, 1)
    learner = OnlineLearner(make_algorithm("rtrl", model), optax.sgd(0.05))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    inputs = jnp.asarray(np.random.default_rng(1).standard_normal((2, 15, 1)))
    targets = jnp.asarray(np.random.default_rng(2).standard_normal((2, 15)))
    _, (losses, _) = run_batched(learner, init_batched(learner, keys, jnp.float64), inputs, targets)
    changed = targets.at[1].multiply(-3.0)
    _, (other, _) = run_batched(learner, init_batched(learner, keys, jnp.float64), inputs, changed)
    np.testing.assert_array_equal(losses[0], other[0])
    assert not np.allclose(losses[1], other[1])
