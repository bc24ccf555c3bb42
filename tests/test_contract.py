"""The contraction guard `contract=G` of Elman and GRU: the spectral bound holds, it stops a
run that diverges without it, and `streamgrad train --contract` reaches the cell."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cli_runner import run_cli  # tests/ is on sys.path under pytest
from streamgrad.cells.clipping import spectral_clip, spectral_norm
from streamgrad.data.synthetic import add_task
from streamgrad.data.tabular import write_table
from streamgrad.errors import DivergenceError
from streamgrad.gradients import make_algorithm
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule, scale_lr, with_lr_scale

RECURRENT = {"elman": ("A",), "gru": ("Uz", "Ur", "Uh")}
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # the learning-rate ensemble's default grid


@pytest.mark.parametrize(
    ("cell", "options"), [("elman", {}), ("elman", {"density": 0.3}), ("gru", {})]
)
def test_the_recurrent_matrices_stay_below_the_bound(cell: str, options: dict) -> None:
    guarded = make_model(cell, 8, 2, contract=0.9, **options).cell
    plain = make_model(cell, 8, 2, **options).cell
    params = guarded.init(jax.random.PRNGKey(0), jnp.float64)

    def scaled(to: float) -> dict:  # the recurrent matrices at spectral norm `to` in psi
        weights = plain.effective(params)
        factors = {name: to / np.linalg.norm(weights[name], 2) for name in RECURRENT[cell]}
        return {name: value * factors.get(name, 1.0) for name, value in params.items()}

    for norm in (1.0, 10.0, 1e4):
        for name in RECURRENT[cell]:
            assert np.linalg.norm(guarded.effective(scaled(norm))[name], 2) <= 0.9 + 1e-12
    small = scaled(0.5)  # below M = 0.9 G = 0.81 the guard changes nothing, bitwise
    for name in RECURRENT[cell]:
        np.testing.assert_array_equal(guarded.effective(small)[name], plain.effective(small)[name])


def test_spectral_clip_of_zero_is_zero_with_a_finite_gradient() -> None:
    zero = jnp.zeros((3, 3))
    assert not spectral_clip(zero, 0.5, 0.6).any()
    assert jnp.isfinite(jax.grad(lambda a: spectral_clip(a, 0.5, 0.6).sum())(zero)).all()


def test_spectral_norm_matches_the_svd_and_runs_one_matrix_at_a_time_under_vmap() -> None:
    matrices = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 6))
    directions = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 6))

    def by_svd(a: jax.Array) -> jax.Array:
        return jnp.linalg.svd(a, compute_uv=False)[0]

    for norm in (spectral_norm, by_svd):  # values and derivatives, batched
        assert jax.vmap(norm)(matrices).shape == (4,)
    np.testing.assert_allclose(jax.vmap(spectral_norm)(matrices), jax.vmap(by_svd)(matrices))
    np.testing.assert_allclose(
        jax.vmap(jax.grad(spectral_norm))(matrices), jax.vmap(jax.grad(by_svd))(matrices)
    )
    tangent = jax.vmap(lambda a, d: jax.jvp(spectral_norm, (a,), (d,))[1])
    expected = jax.vmap(lambda a, d: jax.jvp(by_svd, (a,), (d,))[1])
    np.testing.assert_allclose(tangent(matrices, directions), expected(matrices, directions))
    # batched LAPACK calls can deadlock XLA:CPU's intra-op pool: under vmap the
    # eigendecomposition must see one (6, 6) matrix at a time, inside a loop
    text = str(jax.make_jaxpr(jax.vmap(jax.grad(spectral_norm)))(matrices))
    eigh = [line for line in text.splitlines() if "= eigh[" in line]
    assert eigh and all("f64[6,6]" in line and "f64[4,6,6]" not in line for line in eigh)


def seasonal_series(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """A half-hourly-like series: daily (48) and weekly (336) cycles plus noise, one step
    ahead: inputs (T, 1) = s_0..s_{T-1}, targets (T,) = s_1..s_T."""
    k = np.arange(steps + 1)
    noise = np.random.default_rng(0).standard_normal(steps + 1)
    s = np.sin(2 * np.pi * k / 48) + 0.5 * np.sin(2 * np.pi * k / 336) + 0.1 * noise
    return s[:-1, None], s[1:]


def diverged_per_lr(cell: str, lrs: tuple[float, ...], steps: int, **options: object) -> list:
    """RTRL + Adam on `seasonal_series` at each learning rate (float32, seed 1): whether the
    run diverged (`fit` raises DivergenceError at a non-finite loss, parameter or influence
    entry). One learner for all rates, each the multiplier of `with_lr_scale` in the state,
    so the scan compiles once. (Not `run_batched`: vmapping the scan of a guarded GRU with
    N = 32 hangs in XLA on CPU, see the report.)"""
    model = make_model(cell, 32, 1, **options)
    optimizer = with_lr_scale(make_optimizer("adam", make_schedule("constant", 1.0)))
    learner = OnlineLearner(make_algorithm("rtrl", model), optimizer)
    inputs, targets = seasonal_series(steps)
    diverged = []
    for lr in lrs:
        state = learner.init(model.init(jax.random.PRNGKey(1), jnp.float32))
        state = state._replace(opt_state=scale_lr(state.opt_state, lr))
        try:
            learner.fit(state, inputs, targets, chunk_size=steps)
            diverged.append(False)
        except DivergenceError:
            diverged.append(True)
    return diverged


@pytest.mark.parametrize(("cell", "options"), [("elman", {"gain": 3.0}), ("gru", {})])
def test_the_guard_stops_a_run_that_diverges_without_it(cell: str, options: dict) -> None:
    """Unguarded, RTRL + Adam at lr 1e-2 blows up within 2,000 steps (the Elman cell with a
    chaotic initial gain 3, the GRU from its default initialisation: the influence matrix
    overflows). With contract = 0.9 no rate of the grid diverges."""
    assert diverged_per_lr(cell, (1e-2,), 2_000, **options) == [True]
    assert diverged_per_lr(cell, LRS, 2_000, contract=0.9, **options) == [False] * len(LRS)


def test_train_takes_contract_for_elman_and_gru_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "add.csv"
    write_table(add_task(400, lags=(2, 3), seed=0), table)
    common = ["train", "--data", str(table), "--target", "y", "--hidden", "6", "--chunk", "200"]
    out = tmp_path / "gru"
    code, err = run_cli([*common, "--cell", "gru", "--contract", "0.9", "--out", str(out)], capsys)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["config"]["contract"] == 0.9
    code, err = run_cli(
        [*common, "--cell", "meanfield", "--contract", "0.9", "--out", str(tmp_path / "mf")],
        capsys,
    )
    assert code == 2 and "--contract" in err and len(err.strip().splitlines()) == 1
