"""Stationary estimators, coupling and window laws (theory/), the Markov-modulated AR process,
and the quick versions of the rtrl-convergence and rtrl-fixed-point studies."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.flatten_util import ravel_pytree

from streamgrad.cells import Cell
from streamgrad.data.processes import MarkovModulatedAR
from streamgrad.data.synthetic import ar1
from streamgrad.errors import UserError
from streamgrad.gradients import bptt_gradient, rtrl
from streamgrad.model import Model, linear_readout, make_model
from streamgrad.theory import (
    contraction_bound,
    coupling,
    gradient_bias,
    stationary_loss_and_gradient,
    window_laws,
)
from streamgrad.theory.stationary import batch_means, flat, summarize

PROCESS = MarkovModulatedAR()


@pytest.mark.parametrize("coupling_kind", ["shared", "diagonal", "dense"])
def test_stationary_estimate_equals_bptt_over_the_same_stream(coupling_kind):
    """Exact RTRL accumulated after the burn-in == BPTT of sum_{k >= burn_in} l_k, which is
    BPTT over the whole stream minus BPTT over the burn-in (float64)."""
    model = make_model("meanfield", 8, 1, coupling=coupling_kind)
    params = model.init(jax.random.PRNGKey(1), jnp.float64)
    burn_in, steps = 100, 600
    estimate = stationary_loss_and_gradient(model, params, PROCESS, steps, burn_in, 6, seed=3)
    stream = PROCESS(burn_in + steps, seed=3)
    xs, ys = jnp.asarray(stream.inputs), jnp.asarray(stream.targets)
    g_all, l_all = bptt_gradient(model, params, xs, ys)
    g_burn, l_burn = bptt_gradient(model, params, xs[:burn_in], ys[:burn_in])
    expected = (ravel_pytree(g_all)[0] - ravel_pytree(g_burn)[0]) / steps
    np.testing.assert_allclose(ravel_pytree(estimate.grad)[0], expected, rtol=0, atol=1e-13)
    assert estimate.loss == pytest.approx(float(l_all - l_burn) / steps, abs=1e-13)
    assert estimate.grad_norm > 5 * estimate.noise_floor > 0  # far from stationary at init
    assert estimate.loss_se > 0 and estimate.steps == steps and estimate.batches == 6


def test_error_bars_match_the_spread_over_independent_runs():
    """Over 32 independent runs at one theta the batch-means noise floor equals the rms spread
    of the estimated vector, and grad_norm_se the spread of the estimated norm. Here the noise
    is concentrated off the gradient's direction, so the norm spreads far less than the floor:
    the floor is the wrong error bar for |grad L| (it is its size at a stationary point)."""
    model = make_model("meanfield", 4, 1)
    params = model.init(jax.random.PRNGKey(2), jnp.float64)
    burn_in, steps, runs, batches = 200, 10_000, 32, 20
    inputs, targets = PROCESS.paths(burn_in + steps, runs, seed=5)
    estimate = jax.vmap(
        functools.partial(batch_means, rtrl(model), burn_in=burn_in, batches=batches),
        in_axes=(None, 0, 0),
    )
    losses, grads = jax.device_get(estimate(params, jnp.asarray(inputs), jnp.asarray(targets)))
    each = [
        summarize(
            losses[i],
            jax.tree_util.tree_map(lambda g, i=i: g[i], grads),
            steps=steps,
            burn_in=burn_in,
        )
        for i in range(runs)
    ]
    vectors = np.array([flat(e.grad) for e in each])
    norms = np.array([e.grad_norm for e in each])
    floor = np.mean([e.noise_floor for e in each])
    norm_se = np.mean([e.grad_norm_se for e in each])
    assert 0.8 < np.sqrt(vectors.var(axis=0, ddof=1).sum()) / floor < 1.25
    assert 0.75 < norms.std(ddof=1) / norm_se < 1.33
    assert norm_se < 0.6 * floor
    assert norms.mean() > 20 * floor  # far from stationary: the delta method applies


def _linear_model(rate: float, n: int = 3) -> Model:
    """S_{k+1} = rate * S_k + W x_k: a contraction with rate exactly `rate`."""

    def init(key, dtype=jnp.float32):
        return {"W": jax.random.normal(key, (n, 1), dtype)}

    def step(w, hidden, x):
        return rate * hidden + w["W"] @ x

    cell = Cell("linear", n, 1, init, step, row_local=("W",))
    return Model(cell, linear_readout(n, 1), "mse")


def test_coupling_recovers_a_known_contraction_rate():
    model = _linear_model(0.7)
    params = model.init(jax.random.PRNGKey(0), jnp.float64)
    inputs = np.random.default_rng(0).standard_normal((150, 1))
    result = coupling(model, params, inputs, 5, seed=2)
    assert result.hidden_rate == pytest.approx(0.7, rel=1e-4)
    assert result.sensitivity_rate == pytest.approx(0.7, rel=1e-4)
    assert result.hidden_distance[0] > 0.1 and result.hidden_distance[60] < 1e-8
    assert contraction_bound(model) is None


def test_meanfield_chains_merge_faster_than_the_bound():
    model = make_model("meanfield", 16, 1, coupling="diagonal", recurrent_mean=0.9)
    params = model.init(jax.random.PRNGKey(0), jnp.float64)
    result = coupling(model, params, PROCESS(300, seed=0), 4)
    assert 0 < result.merge_rate < contraction_bound(model) == pytest.approx(0.99)


def test_rtrl_is_unbiased_and_tbptt_bias_decays_geometrically():
    model = make_model("meanfield", 8, 1, recurrent_mean=0.9)
    params = model.init(jax.random.PRNGKey(0), jnp.float64)
    rows = gradient_bias(
        model,
        params,
        PROCESS,
        ["rtrl", "tbptt:1:1", "tbptt:1:3", "tbptt:1:6"],
        steps=4_000,
        burn_in=100,
        batches=10,
    )
    exact, *truncated = rows
    assert exact.paired_error == 0.0
    assert exact.relative_error < 3 * exact.noise_floor
    assert exact.cosine > 0.99
    errors = [row.paired_error for row in truncated]
    assert errors[0] > 3 * truncated[0].paired_floor  # TBPTT(1) is measurably biased
    assert errors[1] < 0.3 * errors[0] and errors[2] < 0.2 * errors[1]  # geometric in tau


def test_window_laws_converge():
    model = make_model("meanfield", 8, 1)
    params = model.init(jax.random.PRNGKey(0), jnp.float64)
    laws = window_laws(model, params, PROCESS, steps=3_000, burn_in=100, paths=8, windows=5)
    assert laws.window_w1[-1] < laws.window_w1[0] / 2
    assert laws.window_slope < -0.25
    assert laws.ensemble_w1.shape == laws.steps.shape and laws.floor > 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, p: stationary_loss_and_gradient(m, p, PROCESS, 100, 10, 3), "multiple"),
        (lambda m, p: stationary_loss_and_gradient(m, p, PROCESS, 100, 10, 1), "batches"),
        (lambda m, p: stationary_loss_and_gradient(m, p, PROCESS, 100, -1, 2), "burn_in"),
        (lambda m, p: stationary_loss_and_gradient(m, p, "ar1", 100, 0, 2), "callable"),
        (
            lambda m, p: stationary_loss_and_gradient(
                m, {**p, "readout": {"C": jnp.zeros((3, 1))}}, PROCESS, 100, 0, 2
            ),
            "readout/C",
        ),
        (
            lambda m, p: stationary_loss_and_gradient(
                m, p, functools.partial(ar1, phi=2.0), 100, 0, 2
            ),
            "phi",
        ),
        (
            lambda m, p: gradient_bias(m, p, PROCESS, ["bogus"], steps=10, burn_in=0, batches=2),
            "bogus",
        ),
        (lambda m, p: gradient_bias(m, p, PROCESS, "rtrl", steps=10, burn_in=0, batches=2), "list"),
        (lambda m, p: coupling(m, p, np.zeros((10, 1)), 1), "starts"),
        (lambda m, p: coupling(m, p, np.zeros((10, 2)), 3), "data_path"),
        (lambda m, p: window_laws(m, p, PROCESS, steps=100, burn_in=0, paths=2), "paths"),
    ],
)
def test_estimators_refuse_bad_arguments_with_one_line(call, message):
    model = make_model("meanfield", 4, 1)
    params = model.init(jax.random.PRNGKey(0))
    with pytest.raises(UserError, match=message) as error:
        call(model, params)
    assert "\n" not in str(error.value)


def test_markov_modulated_ar_is_reproducible_and_has_its_law():
    process = MarkovModulatedAR(means=(-1.0, 1.0), sigmas=(0.5, 0.5), phi=0.5, stay=0.9)
    inputs, targets = process.paths(200_000, 2, seed=7)
    stream = process(200_000, seed=7)
    np.testing.assert_array_equal(stream.inputs, inputs[0])
    np.testing.assert_array_equal(stream.targets, targets[0])
    assert not np.array_equal(inputs[0], inputs[1])
    block = process.paths(1_000, 2, seed=7, first=1)  # a block of paths drawn on its own
    np.testing.assert_array_equal(block[0][0], process.paths(1_000, 3, seed=7)[0][1])
    np.testing.assert_array_equal(block[1][1], process.paths(1_000, 3, seed=7)[1][2])
    # a shorter path is the prefix of the longer one, and pieces of any size join up to it
    short = process.paths(1_000, 2, seed=7)
    np.testing.assert_array_equal(short[0], inputs[:, :1_000])
    np.testing.assert_array_equal(short[1], targets[:, :1_000])
    pieces = list(process.blocks(200_000, 2, seed=7, size=70_001))
    assert [piece[0].shape for piece in pieces] == [(2, 70_001, 1)] * 2 + [(2, 59_998, 1)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in pieces], 1), inputs)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces], 1), targets)
    x = inputs[0, :, 0]
    # stationary: mean 0, variance Var(mu) + sigma^2 / (1 - phi^2) = 1 + 1/3
    assert abs(x.mean()) < 0.05
    assert x.var() == pytest.approx(1 + 0.25 / 0.75, rel=0.03)
    # the signal target is the next input without its innovation: residual variance sigma^2
    assert np.var(x[1:] - targets[0, :-1]) == pytest.approx(0.25, rel=0.02)
    nxt = MarkovModulatedAR(target="next")(70_000, seed=1)  # across a piece of the generator
    np.testing.assert_array_equal(nxt.targets[:-1], nxt.inputs[1:, 0])
    for bad in ({"phi": 1.0}, {"stay": 1.0}, {"sigmas": (1.0,)}, {"target": "x"}):
        with pytest.raises(UserError):
            MarkovModulatedAR(**bad)
    with pytest.raises(UserError, match="first"):
        process.paths(10, 1, seed=0, first=-1)
    with pytest.raises(UserError, match="size"):
        process.blocks(10, 1, seed=0, size=0)


def test_rtrl_convergence_quick(tmp_path):
    from streamgrad.experiments import rtrl_convergence

    summary = rtrl_convergence.run(tmp_path, quick=True, seeds=2, taus=(1,), progress=False)
    for name in ("convergence.csv", "training.csv", "bias.csv", "convergence.png", "bias.png"):
        assert (tmp_path / name).stat().st_size > 0
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    keys = {"grad_norm_first", "grad_norm_last", "noise_floor_last", "grad_norm_slope"}
    assert keys <= set(on_disk["algorithms"]["rtrl"])
    rtrl, tbptt = summary["algorithms"]["rtrl"], summary["algorithms"]["tbptt:1"]
    assert rtrl["grad_norm_last"] < rtrl["grad_norm_first"] / 4  # the gradient norm falls
    assert rtrl["grad_norm_slope"] < 0
    assert rtrl["loss_last"] < tbptt["loss_last"]  # TBPTT(1) misses the memory
    assert tbptt["grad_norm_last"] > tbptt["noise_floor_last"]
    bias = {row["spec"]: row for row in summary["bias_at_theta0"]}
    assert bias["tbptt:1:1"]["paired_error"] > 5 * bias["tbptt:1:1"]["paired_floor"]
    assert bias["tbptt:1:8"]["paired_error"] < bias["tbptt:1:1"]["paired_error"] / 100
    assert bias["rtrl"]["paired_error"] == 0.0
    assert "rtrl" in rtrl_convergence.table_text(summary)


def test_the_study_trains_in_float64_so_tiny_late_steps_are_not_rounded_away():
    # late in a long run alpha_k g_k falls below half of float32's spacing near theta, and
    # float32 SGD drops those steps (docs/theory.md 1.3): here steps of about 1e-9 would not
    # move float32 parameters of size 0.1..1 at all
    from streamgrad.experiments import rtrl_convergence as rc

    setup = rc.Setup("shared", 4, 2_000, (0, 2_000), 500, (1e-9, 1e15, 1.0), 100, 10, 10)
    stream = rc.PROCESS.blocks(2_000, 2, seed=0, size=500)
    snapshots, _ = rc._train(setup.model(), "rtrl", rc.initial_keys(range(2)), stream, setup)
    first, last = (jax.tree_util.tree_leaves(snapshot) for snapshot in snapshots)
    assert all(leaf.dtype == np.float64 for leaf in last)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(first, last, strict=True))
    assert 1e-8 < moved < 1e-4
    # the start is the float32 draw (the one the bias at theta_0 uses)
    theta0 = setup.model().init(rc.initial_keys(range(1))[0])
    for leaf, drawn in zip(first, jax.tree_util.tree_leaves(theta0), strict=True):
        np.testing.assert_array_equal(leaf[0], drawn)


def test_rtrl_fixed_point_quick(tmp_path):
    from streamgrad.experiments import rtrl_fixed_point

    summary = rtrl_fixed_point.run(tmp_path, quick=True, seeds=2, progress=False)
    for name in ("coupling.csv", "windows.csv", "ensemble.csv", "coupling.png", "laws.png"):
        assert (tmp_path / name).stat().st_size > 0
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert {"merge_rate", "contraction_bound", "w1_window_slope"} <= set(on_disk)
    assert 0 < summary["merge_rate"] < summary["contraction_bound"] < 1  # chains merge
    assert summary["w1_window_slope"] < -0.25  # W1 between windows shrinks
    assert "merge_rate" in rtrl_fixed_point.table_text(summary)


def test_cli_runs_the_fixed_point_study_on_workers_and_refuses_a_bad_coupling(tmp_path, capsys):
    from streamgrad.cli import main

    out = tmp_path / "fp"
    with pytest.raises(SystemExit) as done:
        main(
            [
                "experiment",
                "rtrl-fixed-point",
                "--quick",
                "--seeds",
                "2",
                "--workers",
                "2",
                "--out",
                str(out),
            ]
        )
        raise SystemExit(0)
    assert (done.value.code or 0) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["merge_rate"] < summary["contraction_bound"]
    assert "merge_rate" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["experiment", "rtrl-convergence", "--coupling", "bogus", "--out", str(out)])
    assert done.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "--coupling" in error and "\n" not in error


def _plain(value):
    """Task results as nested lists and dicts (DataFrames as columns), for exact comparison."""
    if isinstance(value, pd.DataFrame):
        return {column: value[column].tolist() for column in value.columns}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def test_study_tasks_give_the_same_numbers_on_a_local_dask_cluster():
    """The two studies' tasks (training and estimation of rtrl-convergence, coupling and window
    laws of rtrl-fixed-point) in this process and on two Dask workers on 127.0.0.1."""
    from streamgrad.experiments import rtrl_convergence, rtrl_fixed_point
    from streamgrad.sweep.executor import Task, map_tasks

    setup = rtrl_convergence.Setup(
        "shared", 8, 4_000, (0, 2_000, 4_000), 500, (0.04, 1_000.0, 1.0), 2_000, 100, 4
    )
    size = {"chain_steps": 100, "law_steps": 1_000, "paths": 4}
    tasks = [
        Task(spec, rtrl_convergence.train_block, (setup, spec, index, range(1, 3)))
        for index, spec in enumerate(["rtrl", "tbptt:2"])
    ]
    tasks.append(Task("fixed point", rtrl_fixed_point.study_seed, ("shared", 8, 1, size, 3, 50)))
    here = map_tasks(tasks, workers=0)
    there = map_tasks(tasks, workers=2)
    np.testing.assert_equal(_plain(there), _plain(here))  # bitwise, NaN == NaN
    rows = here[0]["rows"]
    assert [row["seed"] for row in rows] == [1, 1, 1, 2, 2, 2]
    assert rows[-1]["grad_norm"] < rows[-3]["grad_norm"]  # seed 2 learns
