"""Exactness of the gradient algorithms against full BPTT, in float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from streamgrad.gradcheck import CASES
from streamgrad.gradients import (
    accumulate_gradient,
    bptt_gradient,
    make_algorithm,
    rtrl,
    tbptt,
)
from streamgrad.model import Model, make_model

CELL_CASES = [
    *CASES,
    ("elman", {"density": 0.3}),  # sparse recurrence, masked in `effective`
    # recurrent weights beyond M, so the smooth clipping and spectral rescaling are active
    ("meanfield", {"coupling": "shared", "recurrent_mean": 1.5, "recurrent_std": 1.0}),
    ("meanfield", {"coupling": "diagonal", "recurrent_mean": 1.5, "recurrent_std": 1.0}),
    ("meanfield", {"coupling": "dense", "recurrent_std": 2.0}),
    # the contraction guard: ||A||_2 and ||U*||_2 are 1.5-1.7 at N = 6, so G = 1.5 or 1.7 puts
    # them in the curved part of g (beyond M = 0.9 G) and G = 0.5 in its saturated part
    ("elman", {"contract": 1.5}),
    ("elman", {"density": 0.3, "contract": 0.5}),
    ("gru", {"contract": 1.7}),
]
IDS = [f"{c}-{'-'.join(f'{v}' for v in o.values())}" if o else c for c, o in CELL_CASES]


def stream(model: Model, steps: int, seed: int) -> tuple[jax.Array, jax.Array]:
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    inputs = jax.random.normal(kx, (steps, model.cell.input_size), jnp.float64)
    if model.loss == "mse":
        return inputs, jax.random.normal(ky, (steps,), jnp.float64)
    n_classes = model.readout.init(ky, jnp.float64)
    k = jax.tree_util.tree_leaves(n_classes)[0].shape
    return inputs, jax.random.randint(ky, (steps,), 0, min(k))


def relative_error(grads: dict, reference: dict) -> float:
    a, b = ravel_pytree(grads)[0], ravel_pytree(reference)[0]
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def check(model: Model, spec: str, steps: int = 30, seed: int = 0) -> float:
    params = model.init(jax.random.PRNGKey(seed + 1), jnp.float64)
    inputs, targets = stream(model, steps, seed)
    reference, _ = bptt_gradient(model, params, inputs, targets)
    grads, _ = jax.jit(
        lambda p: accumulate_gradient(make_algorithm(spec, model), p, inputs, targets)
    )(params)
    return relative_error(grads, reference)


@pytest.mark.parametrize(("cell", "options"), CELL_CASES, ids=IDS)
@pytest.mark.parametrize("n_classes", [None, 3])
def test_rtrl_equals_bptt(cell: str, options: dict, n_classes: int | None) -> None:
    model = make_model(cell, 6, 3, n_classes=n_classes, **options)
    assert check(model, "rtrl") <= 1e-10


@pytest.mark.parametrize(("cell", "options"), CELL_CASES, ids=IDS)
def test_dense_rtrl_path_equals_bptt_for_every_cell(cell: str, options: dict) -> None:
    assert check(make_model(cell, 5, 2, **options), "rtrl:dense") <= 1e-10


@pytest.mark.parametrize(("cell", "options"), CELL_CASES, ids=IDS)
def test_scalar_case_input_output_and_hidden_of_size_one(cell: str, options: dict) -> None:
    model = make_model(cell, 1, 1, **options)
    assert check(model, "rtrl", steps=12) <= 1e-10
    assert check(model, "tbptt:12", steps=12) <= 1e-10


@pytest.mark.parametrize(("cell", "options"), CELL_CASES[:6], ids=IDS[:6])
def test_tbptt_with_window_covering_the_stream_equals_bptt(cell: str, options: dict) -> None:
    model = make_model(cell, 5, 2, **options)
    assert check(model, "tbptt:30", steps=30) <= 1e-10  # window ends exactly at T
    assert check(model, "tbptt:45", steps=30) <= 1e-10  # pending window flushed at the end


@pytest.mark.parametrize(("cell", "options"), CELL_CASES[:6], ids=IDS[:6])
def test_short_window_tbptt_is_biased(cell: str, options: dict) -> None:
    assert check(make_model(cell, 5, 2, **options), "tbptt:3", steps=30) > 1e-3


def per_window_reference(
    model: Model, params: dict, inputs: jax.Array, targets: jax.Array, every: int, tau: int
) -> dict:
    """TBPTT(k1, k2) written out directly: for each window end e, differentiate the last k1
    losses through the last k2 steps starting from the true (constant) hidden state."""
    hiddens = [model.cell.initial_hidden(jnp.float64)]
    for x in inputs:
        hiddens.append(model.cell.apply(params["cell"], hiddens[-1], x))
    steps = len(inputs)
    ends = list(range(every, steps + 1, every))
    if ends[-1] != steps:
        ends.append(steps)
    total, previous = jax.tree_util.tree_map(jnp.zeros_like, params), 0
    for end in ends:
        first_loss, begin = previous, max(0, end - tau)

        def window(
            p: dict, begin: int = begin, end: int = end, first: int = first_loss
        ) -> jax.Array:
            h, loss = hiddens[begin], 0.0
            for k in range(begin, end):
                h, _, lk = model.forward(p, h, inputs[k], targets[k])
                loss = loss + (lk if k >= first else 0.0)
            return loss

        total = jax.tree_util.tree_map(jnp.add, total, jax.grad(window)(params))
        previous = end
    return total


@pytest.mark.parametrize(("every", "tau"), [(4, 4), (3, 7), (1, 5), (5, 5)])
def test_tbptt_k1_k2_matches_its_definition(every: int, tau: int) -> None:
    model = make_model("elman", 5, 2)
    params = model.init(jax.random.PRNGKey(3), jnp.float64)
    inputs, targets = stream(model, 23, 4)
    grads, _ = accumulate_gradient(tbptt(model, tau, every=every), params, inputs, targets)
    reference = per_window_reference(model, params, inputs, targets, every, tau)
    assert relative_error(grads, reference) <= 1e-12


def test_structured_paths_are_refused_for_cells_without_that_structure() -> None:
    with pytest.raises(ValueError, match="structure"):
        rtrl(make_model("elman", 4, 2), path="elementwise")
    with pytest.raises(ValueError, match="structure"):
        rtrl(make_model("gru", 4, 2), path="memory")


def test_declared_row_local_leaves_are_row_local() -> None:
    """A cell that declares a leaf row-local promises dS'_j/dW[i] = 0 for j != i: the
    vjp-with-ones trick of dense RTRL is only exact under that promise."""
    for cell_name, options in [*CELL_CASES[:6], *CELL_CASES[-3:]]:  # + the contraction guard
        cell = make_model(cell_name, 4, 3, **options).cell
        weights = cell.effective(cell.init(jax.random.PRNGKey(0), jnp.float64))
        hidden = jax.random.normal(jax.random.PRNGKey(1), (4,), jnp.float64)
        x = jnp.ones((3,), jnp.float64)
        for name in cell.row_local:

            def step(w: jax.Array, c=cell, ws=weights, n=name, h=hidden, xs=x) -> jax.Array:
                return c.step({**ws, n: w}, h, xs)

            jac = jax.jacfwd(step)(weights[name])
            jac = np.asarray(jac).reshape(4, 4, -1)  # (unit j, row i, rest)
            off_diagonal = jac * (1 - np.eye(4))[:, :, None]
            assert np.abs(off_diagonal).max() == 0.0, (cell_name, name)


def test_unknown_algorithm_specs_are_rejected() -> None:
    model = make_model("elman", 3, 1)
    for spec in ["uoro2", "tbptt", "tbptt:x", "tbptt:5:3", "rtrl:fast"]:
        with pytest.raises((ValueError, KeyError)):
            make_algorithm(spec, model)
