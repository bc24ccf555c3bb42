"""The update interval `every(algorithm, K)` / 'SPEC:every=K': exact against BPTT, K = 1 is the
plain algorithm, and a checkpoint in the middle of a window resumes bitwise."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from streamgrad.checkpoint import load_checkpoint, save_checkpoint
from streamgrad.data.synthetic import add_task
from streamgrad.gradcheck import CASES
from streamgrad.gradients import accumulate_gradient, bptt_gradient, every, make_algorithm
from streamgrad.model import make_model
from streamgrad.online import LearnerState, OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule
from test_gradients import relative_error, stream  # tests/ is on sys.path under pytest

IDS = [f"{c}-{o['coupling']}" if o else c for c, o in CASES]


@pytest.mark.parametrize(("cell", "options"), CASES, ids=IDS)
def test_one_update_over_the_whole_window_applies_the_bptt_gradient(
    cell: str, options: dict
) -> None:
    """K = T under SGD: the parameters stay frozen for T - 1 steps, then move by
    -lr * dL/dtheta with L the summed loss of the whole window (float64)."""
    steps, lr = 25, 0.1
    model = make_model(cell, 5, 2, **options)
    params = model.init(jax.random.PRNGKey(1), jnp.float64)
    inputs, targets = stream(model, steps, 0)
    learner = OnlineLearner(make_algorithm(f"rtrl:every={steps}", model), optax.sgd(lr))
    fresh = lambda: learner.init(jax.tree_util.tree_map(jnp.copy, params))  # noqa: E731 (run donates)
    before, _ = learner.run(fresh(), inputs[:-1], targets[:-1])
    jax.tree_util.tree_map(np.testing.assert_array_equal, before.params, params)
    after, _ = learner.run(fresh(), inputs, targets)
    reference, _ = bptt_gradient(model, params, inputs, targets)
    step = jax.tree_util.tree_map(lambda p, q: (p - q) / -lr, after.params, params)
    assert relative_error(step, reference) <= 1e-10
    assert int(after.algo_state.count) == 0


@pytest.mark.parametrize(("cell", "options"), CASES, ids=IDS)
@pytest.mark.parametrize("k", [7, 40])
def test_updates_and_the_flushed_rest_sum_to_the_bptt_gradient(
    cell: str, options: dict, k: int
) -> None:
    """K = 7 does not divide T = 30 (four updates and a flushed rest of two steps); K = 40
    exceeds T (everything is flushed). Frozen parameters, every exact path."""
    model = make_model(cell, 5, 2, **options)
    params = model.init(jax.random.PRNGKey(2), jnp.float64)
    inputs, targets = stream(model, 30, 3)
    reference, _ = bptt_gradient(model, params, inputs, targets)
    specs = ["rtrl"] if model.cell.structure == "dense" else ["rtrl", "rtrl:dense"]
    for spec in specs:
        algorithm = make_algorithm(f"{spec}:every={k}", model)
        grads, _ = accumulate_gradient(algorithm, params, inputs, targets)
        assert relative_error(grads, reference) <= 1e-10, spec


@pytest.mark.parametrize("spec", ["uoro:3", "snap1", "snap2", "rflo:0.9"])
def test_the_sum_over_a_window_is_the_sum_of_the_inner_gradients(spec: str) -> None:
    model = make_model("elman", 5, 2, density=0.4)
    params = model.init(jax.random.PRNGKey(4), jnp.float64)
    inputs, targets = stream(model, 30, 5)
    plain, _ = accumulate_gradient(make_algorithm(spec, model), params, inputs, targets)
    summed, _ = accumulate_gradient(
        make_algorithm(f"{spec}:every=4", model), params, inputs, targets
    )
    assert relative_error(summed, plain) <= 1e-12


def test_the_wrapper_keeps_the_settings_and_names_itself() -> None:
    model = make_model("meanfield", 4, 1, coupling="diagonal")
    algorithm = make_algorithm("rtrl:dense:every=10", model)
    assert (algorithm.name, algorithm.path, algorithm.every) == ("rtrl-dense-every-10", "dense", 10)
    assert not algorithm.every_step and algorithm.tau is None
    assert make_algorithm("uoro:3:every=5", model).seed == 3
    assert make_algorithm("rflo:0.9:every=5", model).decay == 0.9
    assert make_algorithm("snap1:every=2", model).name == "snap1-every-2"


def _fit(spec: str, steps: int = 400) -> tuple[LearnerState, np.ndarray]:
    data = add_task(steps, lags=(2, 5), seed=0)
    model = make_model("elman", 8, 1)
    optimizer = make_optimizer("adam", make_schedule("constant", 0.01))
    learner = OnlineLearner(make_algorithm(spec, model), optimizer)
    state = learner.init(model.init(jax.random.PRNGKey(0), jnp.float32))
    state, history = learner.fit(state, data.inputs, data.targets, chunk_size=100)
    return state, history.losses


def test_every_one_is_the_plain_algorithm_bitwise() -> None:
    model = make_model("elman", 4, 1)
    plain = make_algorithm("rtrl", model)
    assert every(plain, 1) is plain
    state, losses = _fit("rtrl:every=1")
    reference_state, reference_losses = _fit("rtrl")
    np.testing.assert_array_equal(losses, reference_losses)
    jax.tree_util.tree_map(np.testing.assert_array_equal, state, reference_state)
    _, every_ten = _fit("rtrl:every=10")
    assert not np.array_equal(every_ten, reference_losses)  # the interval changes the run


def test_a_checkpoint_inside_a_window_resumes_bitwise(tmp_path: Path) -> None:
    """Checkpoint after 100 steps with K = 7 (two steps into a window): the pending sum of
    gradients travels in the checkpoint, and the resumed run equals the uninterrupted one."""
    data = add_task(300, lags=(2, 5), seed=1)
    model = make_model("gru", 6, 1)
    optimizer = make_optimizer("adam", make_schedule("constant", 0.01))
    learner = OnlineLearner(make_algorithm("rtrl:every=7", model), optimizer)
    initial = learner.init(model.init(jax.random.PRNGKey(0), jnp.float32))
    template = jax.tree_util.tree_map(jnp.copy, initial)
    first_half = jax.tree_util.tree_map(jnp.copy, initial)
    reference, expected = learner.fit(initial, data.inputs, data.targets, chunk_size=100)

    def save(state: LearnerState, history: object) -> None:
        if len(history.losses) == 100:
            save_checkpoint(tmp_path, state, metadata={}, step=100)

    learner.fit(first_half, data.inputs[:100], data.targets[:100], chunk_size=100, on_chunk=save)
    restored, _ = load_checkpoint(tmp_path, template)
    assert int(restored.algo_state.count) == 100 % 7
    assert any(np.abs(leaf).max() > 0 for leaf in jax.tree_util.tree_leaves(restored.algo_state))
    partial = type(expected)(expected.losses[:100], expected.outputs[:100], [], 0.0)
    pending = jax.tree_util.tree_map(jnp.zeros_like, restored.algo_state.pending)
    zeroed = jax.tree_util.tree_map(  # the same resume with the pending sum dropped (a copy:
        jnp.copy, restored._replace(algo_state=restored.algo_state._replace(pending=pending))
    )  # `fit` donates the state it is given)
    resumed, history = learner.fit(
        restored, data.inputs, data.targets, chunk_size=100, history=partial
    )
    np.testing.assert_array_equal(history.losses, expected.losses)
    jax.tree_util.tree_map(np.testing.assert_array_equal, resumed, reference)
    _, dropped = learner.fit(zeroed, data.inputs, data.targets, chunk_size=100, history=partial)
    assert not np.array_equal(dropped.losses, expected.losses)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rtrl:every=0", "update interval"),
        ("rtrl:every=", "update interval"),
        ("rtrl:every=x", "update interval"),
        ("uoro:every=-3", "update interval"),
        ("tbptt:10:every=5", "tbptt:EVERY:TAU"),
        ("tbptt:every=5", "tbptt:EVERY:TAU"),
        ("rtrl:every=5:every=2", "own interval"),
        ("every=5", "unknown algorithm"),
        ("rtrl:fast:every=5", "RTRL path"),
        ("lstm:every=5", ":every=K"),
    ],
)
def test_bad_update_interval_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_algorithm(spec, make_model("elman", 3, 1))
