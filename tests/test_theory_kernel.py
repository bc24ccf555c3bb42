"""The kernel limit of the shared-coupling network (streamgrad.theory, docs/theory.md section 2):
quadrature, limit memory and hidden law against Monte Carlo, empirical NTK against a dense
jacobian and against the limit kernel, the kernel ODE against explicit Euler."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import integrate, stats

from streamgrad.cells import make_cell
from streamgrad.cli import main
from streamgrad.experiments import kernel_limit_hidden, kernel_limit_training
from streamgrad.experiments.kernel_limit_hidden import data_paths, simulate
from streamgrad.model import make_model
from streamgrad.theory import empirical_ntk, hidden_law, kernel_ode, limit_memory, limit_ntk
from streamgrad.theory.limits import SharedLaws, normal_rule


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0, 20.0])
def test_normal_rule_is_accurate_where_gauss_hermite_is_not(scale: float) -> None:
    nodes, weights = normal_rule(scale)
    mean = 0.3
    approx = weights @ np.tanh(mean + scale * nodes)
    exact, _ = integrate.quad(
        lambda xi: np.tanh(mean + scale * xi) * stats.norm.pdf(xi),
        -12,
        12,
        points=[-mean / scale],
        epsabs=1e-13,
        limit=400,
    )
    assert abs(approx - exact) < 1e-11


def test_laws_refuse_other_couplings_and_fill_defaults() -> None:
    with pytest.raises(ValueError, match="shared"):
        SharedLaws.from_options({"coupling": "diagonal"})
    laws = SharedLaws.from_options({"w_std": 2.0})
    assert laws.w_std == 2.0 and laws.bias_mean == 0.25 and laws.activation == "tanh"


def test_simulate_matches_the_cell_step_by_step() -> None:
    cell = make_cell("meanfield", 50, 2, coupling="shared")
    params = cell.init(jax.random.PRNGKey(3), jnp.float32)
    weights = cell.effective(params)
    xs = np.random.default_rng(0).standard_normal((1, 30, 2))
    memory, first, second, last = simulate(
        cell, jax.tree_util.tree_map(lambda a: a[None], weights), xs
    )
    hidden = cell.initial_hidden()
    for k, x in enumerate(xs[0]):
        assert memory[0, k] == pytest.approx(float(cell.memory(weights, hidden)[0]), abs=1e-6)
        hidden = cell.step(weights, hidden, jnp.asarray(x, jnp.float32))
        assert first[0, k] == pytest.approx(float(hidden.mean()), abs=1e-6)
        assert second[0, k] == pytest.approx(float((hidden**2).mean()), abs=1e-6)
    np.testing.assert_allclose(last[0], hidden, atol=1e-6)


def test_limit_memory_against_monte_carlo_at_one_million_units() -> None:
    options = {"coupling": "shared"}
    xs = data_paths(1, 300, seed=5)
    limit = limit_memory(options, xs)[0]
    assert limit[0] == 0.0 and np.min(np.abs(limit[1:])) > 0.02  # not trivially zero
    errors = {}
    for n in (100, 1_000_000):
        cell = make_cell("meanfield", n, 1, **options)
        weights = jax.vmap(lambda key, c=cell: c.effective(c.init(key, jnp.float32)))(
            jax.random.PRNGKey(7)[None]
        )
        memory = simulate(cell, weights, xs)[0][0]
        errors[n] = np.max(np.abs(memory - limit))
    assert errors[1_000_000] < 3e-3  # about N^(-1/2) times a constant of order 1
    assert errors[100] > 10 * errors[1_000_000]


def test_limit_memory_is_a_contraction_of_its_start() -> None:
    """Paths that differ only in their first inputs end with the same memory."""
    xs = data_paths(2, 60, seed=1)
    xs[1, 40:] = xs[0, 40:]
    memory = limit_memory({}, xs)
    assert abs(memory[0, 1] - memory[1, 1]) > 1e-3
    assert abs(memory[0, -1] - memory[1, -1]) < 1e-10


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_hidden_law_against_samples(activation: str) -> None:
    options = {"activation": activation, "bound": 0.99 if activation == "tanh" else 3.0}
    x, u = np.array([0.7, -1.2]), 0.15
    law = hidden_law(options, x, u)
    rng = np.random.default_rng(0)
    laws = SharedLaws.from_options(options)
    z = (
        rng.standard_normal((200_000, 2)) @ x * laws.w_std
        + laws.bias_mean
        + laws.bias_std * rng.standard_normal(200_000)
        + u
    )
    sample = laws.sigma.value(z)
    assert stats.kstest(sample, law.cdf).pvalue > 1e-3
    low, high = laws.sigma.low, laws.sigma.high
    total, _ = integrate.quad(law.pdf, low, high, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert law.moment(1) == pytest.approx(sample.mean(), abs=5e-3)
    assert law.moment(2) == pytest.approx((sample**2).mean(), abs=5e-3)
    assert law.cdf(high) == pytest.approx(1.0) and law.pdf(high + 0.5) == 0.0


def test_empirical_ntk_against_a_dense_jacobian() -> None:
    model = make_model("meanfield", 3, 2, coupling="shared")
    params = model.init(jax.random.PRNGKey(0), jnp.float64)
    histories = np.random.default_rng(1).standard_normal((3, 4, 2))
    flat, unravel = ravel_pytree(params)

    def output(vector: jax.Array, history: np.ndarray) -> jax.Array:
        p = unravel(vector)
        hidden = model.cell.initial_hidden(jnp.float64)
        for x in history:  # a plain Python loop over model.cell.apply, not the scan
            hidden = model.cell.apply(p["cell"], hidden, jnp.asarray(x))
        return model.readout.apply(p["readout"], hidden)[0]

    jacobian = np.stack([jax.jacfwd(output)(flat, h) for h in histories])
    kernel = empirical_ntk(model, params, histories, chunk_size=2)
    np.testing.assert_allclose(kernel, jacobian @ jacobian.T, rtol=1e-12, atol=1e-14)
    direct = empirical_ntk(model, params, histories, through_memory=False, by_leaf=True)
    assert np.all(direct["cell/B"] == 0.0)  # B reaches the output only through the memory
    assert not np.allclose(sum(direct.values()), kernel)


def test_limit_ntk_against_the_empirical_ntk_at_large_n() -> None:
    options = {"coupling": "shared"}
    histories = data_paths(6, 12, seed=11)
    limit = limit_ntk(options, histories, by_leaf=True)
    errors = {}
    for n in (100, 100_000):
        model = make_model("meanfield", n, 1, **options)
        params = model.init(jax.random.PRNGKey(2), jnp.float64)
        empirical = empirical_ntk(model, params, histories, by_leaf=True)
        total = sum(empirical.values())
        errors[n] = np.linalg.norm(total - sum(limit.values())) / np.linalg.norm(total)
        if n == 100_000:
            for name, block in limit.items():
                relative = np.linalg.norm(empirical[name] - block) / np.linalg.norm(block)
                assert relative < 0.03, name
            assert np.linalg.norm(empirical["cell/B"]) < 1e-3 * np.linalg.norm(total)
    assert errors[100_000] < 0.02
    assert errors[100] > 5 * errors[100_000]


def test_limit_ntk_refuses_a_grid_too_large() -> None:
    with pytest.raises(ValueError, match="nodes"):
        limit_ntk({}, np.full((2, 3, 4), 3.0))


def test_kernel_ode_against_explicit_euler() -> None:
    rng = np.random.default_rng(4)
    features = rng.standard_normal((7, 4))
    kernel = features @ features.T  # rank 4 < M = 5: a zero eigenvalue on the sampled points
    targets, f0 = rng.standard_normal(5), rng.standard_normal(7)
    alpha, times = 1.3, np.array([0.0, 0.5, 2.0])
    solution = kernel_ode(kernel, targets, f0, alpha, times)
    f, dt, euler = f0.copy(), 1e-4, {0: f0.copy()}
    records = {round(t / dt) for t in times}
    for step in range(1, max(records) + 1):
        f = f - dt * alpha / 5 * kernel[:, :5] @ (f[:5] - targets)
        if step in records:
            euler[step] = f.copy()
    np.testing.assert_allclose(solution, np.stack([euler[k] for k in sorted(euler)]), atol=1e-3)
    assert np.max(np.abs(solution[-1] - f0)) > 0.5  # the outputs do move


@pytest.mark.slow
def test_kernel_limit_hidden_quick(tmp_path: Path) -> None:
    summary = kernel_limit_hidden.run(tmp_path, quick=True, progress=False)
    for name in ("summary.json", "paths.csv", "per_size.csv", "time_averages.parquet"):
        assert (tmp_path / name).is_file()
    for name in ("histograms.png", "time_averages.png", "convergence.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    stored = json.loads((tmp_path / "summary.json").read_text())
    assert set(stored) >= {"memory_error_slope", "ks_slope", "band_width", "seconds_per_path"}
    # the reconstruction predicts N^(-1/2) for both
    assert -0.7 < summary["memory_error_slope"] < -0.35
    assert -0.7 < summary["ks_slope"] < -0.35
    band = summary["band_width"]
    assert band["100"]["moment_1"] > 3 * band["100000"]["moment_1"]
    assert "N" in kernel_limit_hidden.table_text(summary)


@pytest.mark.slow
def test_kernel_limit_training_quick(tmp_path: Path) -> None:
    summary = kernel_limit_training.run(tmp_path, quick=True, progress=False)
    stored = json.loads((tmp_path / "summary.json").read_text())
    assert set(stored) >= {"ntk_error_slope", "ntk_drift", "ode_distance_slope"}
    assert (tmp_path / "outputs.parquet").is_file() and (tmp_path / "convergence.png").is_file()
    assert -0.7 < summary["ntk_error_slope"] < -0.35
    drift, share = summary["ntk_drift"], summary["memory_share"]
    assert drift["10000"] < drift["100"] / 10  # the kernel freezes as N grows
    assert share["10000"] < share["100"] / 10 and share["10000"] < 1e-3
    assert summary["ode_distance_slope"] < -0.25
    assert summary["ode_distance"]["10000"] < 0.1 < summary["ode_movement"]["10000"]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_cli_kernel_limit_experiments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hidden = tmp_path / "hidden"
    code, err = _cli(
        [
            *("experiment", "kernel-limit-hidden", "--sizes", "50,200", "--steps", "300"),
            *("--paths", "3", "--out", str(hidden)),
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((hidden / "summary.json").read_text())
    assert summary["paths"] == {"50": 3, "200": 3} and summary["steps"] == 300
    training = tmp_path / "training"
    code, err = _cli(
        [
            *("experiment", "kernel-limit-training", "--sizes", "20,40", "--seeds", "1"),
            *("--samples", "30", "--horizon", "0.5", "--out", str(training)),
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((training / "summary.json").read_text())
    assert summary["sizes"] == [20, 40] and set(summary["ntk_drift"]) == {"20", "40"}


@pytest.mark.parametrize("sizes", ["10,x", "0,100"])
def test_cli_kernel_limit_refuses_bad_sizes(
    sizes: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _cli(
        ["experiment", "kernel-limit-hidden", "--sizes", sizes, "--out", str(tmp_path / "x")],
        capsys,
    )
    assert code == 2 and err.startswith("error: --sizes")
