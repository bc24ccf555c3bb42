"""Approximate online gradients (UORO, SnAp-1, RFLO) and the alignment shadow, in float64.

Each algorithm is checked step by step against its update written with dense jacfwd-built
matrices: D_k = dS_{k+1}/dS_k (N x N), I_k = dS_{k+1}/dpsi (N x P), dpsi/dtheta (P x P).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from streamgrad.cells.elman import recurrence_mask
from streamgrad.gradcheck import CASES
from streamgrad.gradients import (
    OnlineAlgorithm,
    accumulate_gradient,
    alignment_summary,
    make_algorithm,
    rflo,
    rtrl,
    shadowed,
    snap,
    snap1,
    uoro,
)
from streamgrad.gradients.snap import snap_pattern as snap_pattern_of
from streamgrad.gradients.traces import recurrence_diagonal
from streamgrad.model import Model, loss_value, make_model
from streamgrad.online import OnlineLearner

F64 = jnp.float64


def stream(model: Model, steps: int, seed: int) -> tuple[jax.Array, jax.Array]:
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    inputs = jax.random.normal(kx, (steps, model.cell.input_size), F64)
    if model.loss == "mse":
        return inputs, jax.random.normal(ky, (steps,), F64)
    return inputs, jax.random.randint(ky, (steps,), 0, 3)  # the xent models here have K = 3


def setup(model: Model, steps: int, seed: int = 0) -> tuple[dict, jax.Array, jax.Array]:
    params = model.init(jax.random.PRNGKey(seed + 1), F64)
    return (params, *stream(model, steps, seed))


def flat(tree: dict) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0])


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def emitted(
    algorithm: OnlineAlgorithm, params: dict, inputs: jax.Array, targets: jax.Array
) -> tuple[list[np.ndarray], object]:
    """The cell gradient the algorithm emits at each step, and its final state."""
    step = jax.jit(algorithm.step)
    hidden = algorithm.model.cell.initial_hidden(F64)
    state = algorithm.init(params, hidden)
    grads = []
    for x, y in zip(inputs, targets, strict=True):
        result = step(params, hidden, state, x, y)
        hidden, state = result.hidden, result.state
        grads.append(flat(result.grads["cell"]))
    return grads, state


class Jacobians(NamedTuple):
    D: jax.Array  # dS_{k+1}/dS_k (N, N)
    I: jax.Array  # dS_{k+1}/dpsi (N, P)
    dpsi: jax.Array  # dpsi/dtheta (P, P)
    delta: jax.Array  # dl_k/dS_{k+1} (N,)
    error: jax.Array  # dl_k/do_k (K,)


def walk(model: Model, params: dict, inputs: jax.Array, targets: jax.Array) -> Iterator[Jacobians]:
    """Dense Jacobians of every step along the stream (built by jacfwd, no structure used)."""
    cell = model.cell
    weights = cell.effective(params["cell"])
    psi, unravel_psi = ravel_pytree(weights)
    theta, unravel_theta = ravel_pytree(params["cell"])
    dpsi = jax.jacfwd(lambda t: ravel_pytree(cell.effective(unravel_theta(t)))[0])(theta)

    @jax.jit
    def one_step(hidden: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, Jacobians]:
        recurrence = jax.jacfwd(lambda s: cell.step(weights, s, x))(hidden)
        immediate = jax.jacfwd(lambda p: cell.step(unravel_psi(p), hidden, x))(psi)
        hidden = cell.step(weights, hidden, x)
        delta = jax.grad(lambda s: model.output_loss(params["readout"], s, y)[0])(hidden)
        output = model.readout.apply(params["readout"], hidden)
        error = jax.grad(lambda o: loss_value(model.loss, o, y))(output)
        return hidden, Jacobians(recurrence, immediate, dpsi, delta, error)

    hidden = cell.initial_hidden(F64)
    for x, y in zip(inputs, targets, strict=True):
        hidden, jacobians = one_step(hidden, x, y)
        yield jacobians


def snap_pattern(model: Model, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """M (N, P): 1 on the row-local diagonal blocks J[i, (i, q)]; and the (P,) mask of the
    columns of leaves that are not row-local."""
    cell = model.cell
    weights = cell.effective(params["cell"])
    n = cell.hidden_size
    blocks, others = [], []
    for name in sorted(weights):  # ravel order
        size = weights[name].size
        local = name in cell.row_local
        owner = np.repeat(np.arange(n), size // n)
        blocks.append((owner[None, :] == np.arange(n)[:, None]) & local)
        others.append(np.full(size, not local))
    return np.concatenate(blocks, axis=1).astype(float), np.concatenate(others).astype(float)


def trace_reference(
    model: Model,
    params: dict,
    inputs: jax.Array,
    targets: jax.Array,
    propagate: Callable[[Jacobians], jax.Array],
    signal: Callable[[Jacobians], jax.Array],
) -> list[np.ndarray]:
    """J_{k+1} = (propagate_k J_k + I_k) ⊙ M and the gradient
    dpsi^T (signal_k^T (J_{k+1} + I_k ⊙ others))."""
    mask, others = snap_pattern(model, params)
    influence = jnp.zeros((model.cell.hidden_size, mask.shape[1]))
    grads = []
    for jac in walk(model, params, inputs, targets):
        influence = (propagate(jac) @ influence + jac.I) * mask
        g_psi = signal(jac) @ (influence + jac.I * others)
        grads.append(np.asarray(jac.dpsi.T @ g_psi))
    return grads


def assert_same(grads: list[np.ndarray], reference: list[np.ndarray], tol: float = 1e-12) -> None:
    assert len(grads) == len(reference)
    for k, (g, r) in enumerate(zip(grads, reference, strict=True)):
        assert relative_error(g, r) <= tol, k


TRACE_CASES = [
    ("elman", {}),
    ("gru", {}),  # reset gate not row-local: immediate term only
    ("meanfield", {"coupling": "shared", "recurrent_mean": 1.5}),  # memory path, clip active
    ("meanfield", {"coupling": "dense", "recurrent_std": 2.0}),  # spectral rescaling active
]
TRACE_IDS = ["elman", "gru", "meanfield-shared", "meanfield-dense"]


@pytest.mark.parametrize(("cell", "options"), TRACE_CASES, ids=TRACE_IDS)
def test_snap1_is_masked_rtrl_step_by_step(cell: str, options: dict) -> None:
    """SnAp-1 is J_{k+1} = (D_k J_k + I_k) ⊙ M with M the row-local diagonal blocks, and the
    immediate term alone for the other leaves."""
    model = make_model(cell, 2 if cell != "meanfield" else 3, 1, **options)
    params, inputs, targets = setup(model, 3)
    grads, _ = emitted(snap1(model), params, inputs, targets)
    reference = trace_reference(model, params, inputs, targets, lambda j: j.D, lambda j: j.delta)
    assert_same(grads, reference)


@pytest.mark.parametrize(
    ("cell", "n_classes", "decay", "feedback"),
    [("elman", None, 0.7, "readout"), ("gru", 3, 0.5, "random")],
)
def test_rflo_is_its_constant_decay_trace(
    cell: str, n_classes: int | None, decay: float, feedback: str
) -> None:
    """RFLO: J_{k+1} = (decay J_k + I_k) ⊙ M, signal delta_k or B dl_k/do_k."""
    model = make_model(cell, 2, 1, n_classes=n_classes)
    params, inputs, targets = setup(model, 3)
    algorithm = rflo(model, decay=decay, feedback=feedback, seed=4)  # type: ignore[arg-type]
    grads, state = emitted(algorithm, params, inputs, targets)
    matrix = state.feedback  # type: ignore[attr-defined]
    if feedback == "readout":
        assert matrix is None
        signal = lambda j: j.delta  # noqa: E731
    else:
        assert matrix.shape == (2, n_classes)
        signal = lambda j: matrix @ j.error  # noqa: E731
    reference = trace_reference(
        model, params, inputs, targets, lambda j: decay * jnp.eye(2), signal
    )
    assert_same(grads, reference)


@pytest.mark.parametrize(
    ("cell", "options"),
    [("elman", {}), ("meanfield", {"coupling": "diagonal", "recurrent_mean": 1.5})],
    ids=["elman", "meanfield-diagonal"],
)
def test_uoro_is_its_rank_one_recursion(cell: str, options: dict) -> None:
    model = make_model(cell, 2, 1, **options)
    params, inputs, targets = setup(model, 3)
    seed, eps = 5, 1e-7
    grads, state = emitted(uoro(model, seed=seed, eps=eps), params, inputs, targets)
    sizes = [leaf.size for leaf in jax.tree_util.tree_leaves(state)]
    assert sum(sizes) == 2 + flat(params["cell"]).size + 2  # s, theta and the key: O(N + P)
    key = jax.random.PRNGKey(seed)
    s, theta, reference = jnp.zeros(2), 0.0, []
    for jac in walk(model, params, inputs, targets):
        key, subkey = jax.random.split(key)
        nu = jax.random.rademacher(subkey, (2,), F64)
        ds, nu_i = jac.D @ s, nu @ jac.I
        rho0 = jnp.sqrt((jnp.linalg.norm(theta) + eps) / (jnp.linalg.norm(ds) + eps))
        rho1 = jnp.sqrt((jnp.linalg.norm(nu_i) + eps) / (jnp.linalg.norm(nu) + eps))
        s, theta = rho0 * ds + rho1 * nu, theta / rho0 + nu_i / rho1
        reference.append(np.asarray(jac.dpsi.T @ ((jac.delta @ s) * theta)))
    assert_same(grads, reference)


def test_uoro_is_unbiased_with_error_shrinking_like_one_over_root_n() -> None:
    """The mean of n independent UORO gradients (vmap over seeds) of a frozen-parameter
    stream converges to the exact RTRL gradient at rate n^(-1/2)."""
    model = make_model("elman", 3, 2)
    params, inputs, targets = setup(model, 6, seed=2)
    exact, _ = accumulate_gradient(rtrl(model), params, inputs, targets)

    @jax.jit
    def estimates(seeds: jax.Array) -> dict:
        def one(seed: jax.Array) -> dict:
            return accumulate_gradient(uoro(model, seed=seed), params, inputs, targets)[0]

        return jax.vmap(one)(seeds)

    samples = estimates(jnp.arange(2**14))
    readout = jax.tree_util.tree_map(
        lambda a, b: jnp.abs(a - b).max(), samples["readout"], exact["readout"]
    )
    assert max(jax.tree_util.tree_leaves(readout)) <= 1e-12  # readout gradients are exact
    cell = jax.vmap(lambda tree: ravel_pytree(tree)[0])(samples["cell"])
    target = ravel_pytree(exact["cell"])[0]
    # root-mean-square error of the mean of n samples, over 2^14 / n disjoint groups
    sizes = np.array([2**4, 2**6, 2**8, 2**10])
    errors = np.array(
        [
            np.sqrt(np.mean(np.sum((cell.reshape(-1, n, target.size).mean(1) - target) ** 2, 1)))
            for n in sizes
        ]
    ) / np.linalg.norm(target)
    slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert -0.6 <= slope <= -0.4, (slope, errors)
    overall = np.linalg.norm(cell.mean(0) - target) / np.linalg.norm(target)
    assert overall <= 0.05, overall


@pytest.mark.parametrize(
    ("cell", "options"), CASES, ids=["-".join([c, *o.values()]) for c, o in CASES]
)
def test_recurrence_diagonal_is_the_jacobian_diagonal(cell: str, options: dict) -> None:
    """Not jvp(ones), which gives the row sums of D for dense cells."""
    model = make_model(cell, 4, 2, **options)
    weights = model.cell.effective(model.init(jax.random.PRNGKey(0), F64)["cell"])
    hidden = jax.random.normal(jax.random.PRNGKey(1), (4,), F64)
    x = jnp.ones((2,), F64)

    @jax.jit
    def both(s: jax.Array) -> tuple[jax.Array, jax.Array]:
        jacobian = jax.jacfwd(lambda h: model.cell.step(weights, h, x))(s)
        return jacobian, recurrence_diagonal(model.cell, weights, s, x)

    jacobian, diagonal = both(hidden)
    np.testing.assert_allclose(diagonal, jnp.diagonal(jacobian), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("cell", "options"),
    [("diagonal", {}), ("meanfield", {"coupling": "diagonal", "recurrent_mean": 1.5})],
    ids=["diagonal", "meanfield-diagonal"],
)
def test_snap1_equals_rtrl_for_elementwise_cells(cell: str, options: dict) -> None:
    model = make_model(cell, 4, 2, n_classes=3, **options)
    params, inputs, targets = setup(model, 20)
    grads, _ = accumulate_gradient(snap1(model), params, inputs, targets)
    exact, _ = accumulate_gradient(rtrl(model), params, inputs, targets)
    assert relative_error(flat(grads), flat(exact)) <= 1e-12


def test_snap1_and_rflo_are_biased_for_a_dense_recurrence() -> None:
    model = make_model("elman", 5, 2)
    params, inputs, targets = setup(model, 30)
    exact, _ = accumulate_gradient(rtrl(model), params, inputs, targets)
    for spec in ["snap1", "rflo", "rflo:0.9"]:
        grads, _ = accumulate_gradient(make_algorithm(spec, model), params, inputs, targets)
        assert relative_error(flat(grads["cell"]), flat(exact["cell"])) >= 0.2, spec


def sparse_elman(n: int = 6, density: float = 0.25) -> Model:
    return make_model("elman", n, 2, density=density, mask_seed=3)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_snap_n_is_rtrl_cut_to_the_n_step_reachable_pattern(order: int) -> None:
    """J_{k+1} = (D_k J_k + I_k) ⊙ M_n step by step, with M_n built here from the cell's
    mask: M_1 the row-local diagonal blocks, M_{m+1} = M_m | (graph M_m != 0)."""
    model = sparse_elman()
    params, inputs, targets = setup(model, 6)
    pattern, _ = snap_pattern(model, params)
    graph = recurrence_mask(6, 0.25, 3).astype(float)
    for _ in range(order - 1):
        pattern = np.maximum(pattern, (graph @ pattern > 0).astype(float))
    assert 0 < pattern.mean() < 1
    influence = jnp.zeros(pattern.shape)
    reference = []
    for jac in walk(model, params, inputs, targets):
        influence = (jac.D @ influence + jac.I) * pattern
        reference.append(np.asarray(jac.dpsi.T @ (jac.delta @ influence)))
    grads, _ = emitted(snap(model, order), params, inputs, targets)
    assert_same(grads, reference)


def test_snap_order_1_on_any_cell_equals_the_structured_snap1() -> None:
    model = sparse_elman()
    params, inputs, targets = setup(model, 25)
    masked, _ = accumulate_gradient(snap(model, 1), params, inputs, targets)
    structured, _ = accumulate_gradient(snap1(model), params, inputs, targets)
    assert relative_error(flat(masked), flat(structured)) <= 1e-12


def test_snap_n_approaches_rtrl_as_the_order_grows_on_a_sparse_recurrence() -> None:
    """The error shrinks with every order that widens the pattern, and is zero once the
    pattern stops growing (it then holds every unit a weight can ever reach)."""
    model = sparse_elman(12, 0.1)
    params, inputs, targets = setup(model, 40)
    exact, _ = accumulate_gradient(rtrl(model), params, inputs, targets)
    patterns = [snap_pattern_of(model, order) for order in range(1, 13)]
    closed = next(i for i, m in enumerate(patterns) if np.array_equal(m, patterns[-1]))
    assert closed >= 3 and not patterns[-1].all()
    errors = []
    for order in range(1, closed + 3):
        grads, _ = accumulate_gradient(snap(model, order), params, inputs, targets)
        errors.append(relative_error(flat(grads), flat(exact)))
    assert all(a > b for a, b in itertools.pairwise(errors[: closed + 1])), errors
    assert errors[closed - 1] > 1e-3 and max(errors[closed:]) <= 1e-12, errors


@pytest.mark.parametrize(("cell", "options"), CASES)
def test_snap2_is_exact_rtrl_on_every_cell_with_a_dense_or_diagonal_recurrence(
    cell: str, options: dict
) -> None:
    """D without structural zeros makes M_2 full (the unmasked RTRL path); a diagonal D keeps
    J inside M_1, so the cut drops nothing."""
    model = make_model(cell, 4, 2, **options)
    params, inputs, targets = setup(model, 15)
    grads, _ = accumulate_gradient(snap(model, 2), params, inputs, targets)
    exact, _ = accumulate_gradient(rtrl(model, path="dense"), params, inputs, targets)
    assert relative_error(flat(grads), flat(exact)) <= 1e-12


@pytest.mark.parametrize(
    ("cell", "options"),
    [("gru", {}), ("meanfield", {"coupling": "shared", "recurrent_mean": 1.5})],
    ids=["gru", "meanfield-shared"],
)
def test_rflo_without_decay_is_one_step_truncated_backpropagation(cell: str, options: dict) -> None:
    """decay = 0 keeps the immediate term only: the gradient of TBPTT(1)."""
    model = make_model(cell, 4, 2, **options)
    params, inputs, targets = setup(model, 20)
    grads, _ = accumulate_gradient(rflo(model), params, inputs, targets)
    truncated, _ = accumulate_gradient(make_algorithm("tbptt:1", model), params, inputs, targets)
    assert relative_error(flat(grads), flat(truncated)) <= 1e-12


def test_shadow_of_exact_by_exact_is_perfectly_aligned() -> None:
    model = make_model("elman", 3, 2)
    params, inputs, targets = setup(model, 12)
    exact = rtrl(model)
    _, state = emitted(shadowed(exact, exact), params, inputs, targets)
    summary = alignment_summary(state)
    assert summary["steps"] == 12
    assert abs(summary["cosine"] - 1.0) <= 1e-14
    assert summary["relative_error"] == 0.0


def test_shadow_trains_with_the_approximate_gradient_and_records_its_error() -> None:
    model = make_model("elman", 3, 2, gain=1.5)
    params, inputs, targets = setup(model, 12)
    grads, state = emitted(shadowed(snap1(model), rtrl(model)), params, inputs, targets)
    approx, _ = emitted(snap1(model), params, inputs, targets)
    exact, _ = emitted(rtrl(model), params, inputs, targets)
    assert_same(grads, approx, tol=0.0)
    cosines = [
        g @ e / np.linalg.norm(g) / np.linalg.norm(e) for g, e in zip(grads, exact, strict=True)
    ]
    errors = [np.linalg.norm(g - e) / np.linalg.norm(e) for g, e in zip(grads, exact, strict=True)]
    summary = alignment_summary(state)
    assert summary["steps"] == 12
    assert summary["cosine"] == pytest.approx(np.mean(cosines), rel=1e-12)
    assert summary["relative_error"] == pytest.approx(np.mean(errors), rel=1e-12)
    assert summary["cosine"] < 1.0 and summary["relative_error"] > 1e-3
    with pytest.raises(ValueError, match="share one model"):
        shadowed(snap1(model), rtrl(make_model("elman", 3, 2)))


FIT_CASES = [
    ("gru", None, "uoro:3"),
    ("gru", None, "snap1"),
    ("meanfield", None, "snap1"),
    ("elman", 3, "rflo-random"),
    ("elman", 3, "shadow"),
]


@pytest.mark.parametrize(("cell", "n_classes", "spec"), FIT_CASES)
def test_every_algorithm_trains_in_the_online_learner_without_nan(
    cell: str, n_classes: int | None, spec: str
) -> None:
    """A few hundred float32 steps through OnlineLearner.fit (jit, scan, donated state)."""
    model = make_model(cell, 4, 2, n_classes=n_classes)
    if spec == "rflo-random":
        algorithm = rflo(model, decay=0.5, feedback="random", seed=1)
    elif spec == "shadow":
        algorithm = shadowed(uoro(model), rtrl(model))
    else:
        algorithm = make_algorithm(spec, model)
    learner = OnlineLearner(algorithm, optax.adam(1e-2))
    state = learner.init(model.init(jax.random.PRNGKey(0), jnp.float32))
    inputs, targets = stream(model, 300, 1)
    state, history = learner.fit(state, np.asarray(inputs), np.asarray(targets), chunk_size=300)
    assert np.isfinite(history.losses).all()
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(state.params))
    if spec == "shadow":
        summary = alignment_summary(state.algo_state)
        assert summary["steps"] == 300 and -1.0 <= summary["cosine"] <= 1.0


def test_specs_are_parsed_and_bad_ones_rejected() -> None:
    model = make_model("elman", 3, 1)
    assert make_algorithm("uoro", model).seed == 0
    assert make_algorithm("uoro:7", model).seed == 7
    assert make_algorithm("snap1", model).name == "snap1"
    assert make_algorithm("rflo", model).decay == 0.0
    assert make_algorithm("rflo:0.25", model).decay == 0.25
    assert make_algorithm("snap3", model).order == 3
    for spec in [
        "uoro:x",
        "uoro:-1",
        "snap1:2",
        "snap0",
        "snapx",
        "snap2:1",
        "rflo:abc",
        "rflo:nan",
    ]:
        with pytest.raises(ValueError):
            make_algorithm(spec, model)
    with pytest.raises(ValueError, match="feedback"):
        rflo(model, feedback="transpose")  # type: ignore[arg-type]
