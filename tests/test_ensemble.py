"""The learning-rate ensemble: its copies are the single learners, its choice is causal, a
diverging copy is restarted, and `train --lr a,b,c` records and resumes it exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli
from streamgrad.bench.measure import time_ensemble
from streamgrad.data.synthetic import add_task
from streamgrad.data.tabular import write_table
from streamgrad.ensemble import LrEnsemble, _restart_failed
from streamgrad.errors import DivergenceError
from streamgrad.gradients import make_algorithm
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule

TRAIN = [sys.executable, "-m", "streamgrad.cli", "train"]


def learner_at(spec: str, model: object, optimizer: str, lr: float) -> OnlineLearner:
    schedule = make_schedule("constant", lr)
    return OnlineLearner(make_algorithm(spec, model), make_optimizer(optimizer, schedule))


def stream(steps: int, dtype: object, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((steps, 2))
    targets = 0.7 * np.r_[0.0, inputs[:-1, 0]] + 0.1 * rng.standard_normal(steps)
    return jnp.asarray(inputs, dtype), jnp.asarray(targets, dtype)


def leaves(tree: object) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize(("cell", "spec"), [("elman", "rtrl"), ("gru", "tbptt:4")])
def test_one_copy_equals_the_single_learner_bitwise(cell: str, spec: str) -> None:
    model = make_model(cell, 6, 2)
    inputs, targets = stream(80, jnp.float32)
    single = learner_at(spec, model, "sgd", 0.02)
    ensemble = LrEnsemble(learner_at(spec, model, "sgd", 1.0), [0.02])
    state, (losses, outputs) = single.run(
        single.init(model.init(jax.random.PRNGKey(1))), inputs, targets
    )
    together, (e_losses, e_outputs) = ensemble.run(
        ensemble.init(model.init(jax.random.PRNGKey(1))), inputs, targets
    )
    np.testing.assert_array_equal(e_losses, losses)
    np.testing.assert_array_equal(e_outputs, outputs)
    copy = together.copies
    for part in ("params", "hidden", "algo_state"):
        for mine, theirs in zip(
            leaves(getattr(copy, part)), leaves(getattr(state, part)), strict=True
        ):
            np.testing.assert_array_equal(mine[0], theirs, err_msg=part)


@pytest.mark.parametrize("spec", ["rtrl", "tbptt:4", "tbptt:1:3", "rtrl:every=3"])
@pytest.mark.parametrize(("optimizer", "rtol"), [("sgd", 0.0), ("adam", 1e-12)])
def test_copies_equal_independent_learners(spec: str, optimizer: str, rtol: float) -> None:
    """float64 (conftest.py runs tests in x64 mode): with SGD every copy's parameters equal
    the single learner's bitwise; with Adam to 1e-12 (XLA compiles Adam's step with a constant
    learning rate differently from one with a traced multiplier: last-bit differences). The
    algorithms with step counters (TBPTT, every=K) check that the counters, shared by the
    copies, still follow each copy."""
    model = make_model("elman", 5, 2)
    inputs, targets = stream(60, jnp.float64)
    rates = (0.003, 0.01, 0.05)
    ensemble = LrEnsemble(learner_at(spec, model, optimizer, 1.0), rates)
    together = ensemble.init(model.init(jax.random.PRNGKey(2), jnp.float64))
    together, _ = ensemble.run(together, inputs, targets)
    for g, lr in enumerate(rates):
        single = learner_at(spec, model, optimizer, lr)
        state = single.init(model.init(jax.random.PRNGKey(2), jnp.float64))
        state, _ = single.run(state, inputs, targets)
        for mine, theirs in zip(leaves(together.params), leaves(state.params), strict=True):
            np.testing.assert_allclose(mine[g], theirs, rtol=rtol, atol=0.0)


def test_tbptt_copies_branch_on_the_window_end_instead_of_computing_it_every_step() -> None:
    # the copies' step counters are passed unbatched, so TBPTT's "window ends now" stays a
    # lax.cond; batched it becomes a select that runs the window's backward pass every step
    model = make_model("elman", 4, 2)
    ensemble = LrEnsemble(learner_at("tbptt:5", model, "sgd", 1.0), (0.01, 0.1))
    state = ensemble.init(model.init(jax.random.PRNGKey(0), jnp.float64))
    one = ensemble.member.init(model.init(jax.random.PRNGKey(0), jnp.float64))
    inputs, targets = stream(10, jnp.float64)
    xy = (inputs[0], targets[0])
    together = str(jax.make_jaxpr(lambda s: ensemble._step(s, *xy))(state))
    alone = str(jax.make_jaxpr(lambda s: ensemble.member.step(s, *xy))(one))
    assert together.count(" cond[") >= alone.count(" cond[") >= 1  # every branch survives


def test_the_choice_at_step_k_uses_losses_up_to_k_minus_1_only() -> None:
    model = make_model("elman", 5, 2)
    inputs, targets = stream(300, jnp.float32, seed=3)
    rates, half_life = (0.001, 0.03, 0.1), 4.0
    ensemble = LrEnsemble(learner_at("rtrl", model, "sgd", 1.0), rates, half_life=half_life)
    state = ensemble.init(model.init(jax.random.PRNGKey(0)))
    _, (losses, outputs, chosen) = ensemble.trace(state, inputs, targets)
    chosen = np.asarray(chosen)
    # every copy's own losses, from the single learners (bitwise equal, see above)
    own = []
    for lr in rates:
        single = learner_at("rtrl", model, "sgd", lr)
        _, (single_losses, _) = single.run(
            single.init(model.init(jax.random.PRNGKey(0))), inputs, targets
        )
        own.append(np.asarray(single_losses, np.float64))
    own = np.stack(own)
    assert np.isfinite(own).all()
    decay = 0.5 ** (1 / half_life)
    running = np.zeros(len(rates))
    for k in range(len(targets)):
        # the choice minimises R(k-1), the losses up to step k-1 (up to float32 rounding)
        assert running[chosen[k]] <= running.min() + 1e-6 * (1 + running.min()), k
        running = decay * running + (1 - decay) * own[:, k]
    np.testing.assert_array_equal(np.asarray(losses), own[chosen, np.arange(len(chosen))])
    assert len(set(chosen.tolist())) >= 2 and (np.diff(chosen) != 0).sum() >= 2  # it switches

    # changing y_k changes nothing up to and including step k's output and choice
    k = int(np.flatnonzero(np.diff(chosen))[0]) + 1
    changed = targets.at[k].add(5.0)
    state = ensemble.init(model.init(jax.random.PRNGKey(0)))
    _, (_, outputs_changed, chosen_changed) = ensemble.trace(state, inputs, changed)
    np.testing.assert_array_equal(
        np.asarray(outputs_changed)[: k + 1], np.asarray(outputs)[: k + 1]
    )
    np.testing.assert_array_equal(np.asarray(chosen_changed)[: k + 1], chosen[: k + 1])
    assert not np.array_equal(np.asarray(chosen_changed)[k + 1 :], chosen[k + 1 :]) or not (
        np.array_equal(np.asarray(outputs_changed)[k + 1 :], np.asarray(outputs)[k + 1 :])
    )


def test_a_diverging_copy_is_restarted_from_the_best_keeping_its_rate() -> None:
    model = make_model("elman", 6, 2)
    inputs, targets = stream(400, jnp.float32, seed=4)
    rates = (0.01, 1e5)  # the second copy diverges within a few steps, again and again
    ensemble = LrEnsemble(learner_at("rtrl", model, "sgd", 1.0), rates)
    state = ensemble.init(model.init(jax.random.PRNGKey(0)))
    state, history = ensemble.fit(state, np.asarray(inputs), np.asarray(targets), chunk_size=100)
    assert np.isfinite(history.losses).all()
    restarts = np.asarray(state.restarts)
    assert restarts[0] == 0 and restarts[1] >= 1
    assert all(np.isfinite(leaf).all() for leaf in leaves(state.copies) if leaf.dtype.kind == "f")
    multipliers = np.asarray(state.copies.opt_state[-1].hyperparams["step_size"])
    np.testing.assert_array_equal(multipliers, np.asarray(rates, np.float32))
    # the ensemble predicts as well as the sane copy alone (it never trusts the diverging one)
    single = learner_at("rtrl", model, "sgd", 0.01)
    _, alone = single.fit(
        single.init(model.init(jax.random.PRNGKey(0))), inputs, targets, chunk_size=100
    )
    assert history.losses[100:].mean() <= 1.05 * alone.losses[100:].mean()


def test_restart_copies_the_best_finite_copy_and_keeps_the_multiplier() -> None:
    model = make_model("elman", 4, 1)
    ensemble = LrEnsemble(learner_at("rtrl", model, "adam", 1.0), (0.1, 0.2, 0.3))
    state = ensemble.init(model.init(jax.random.PRNGKey(0)))
    copies = jax.tree_util.tree_map(
        lambda leaf: (
            leaf + jnp.arange(3).reshape((-1,) + (1,) * (leaf.ndim - 1)).astype(leaf.dtype)
            if leaf.dtype.kind == "f"
            else leaf
        ),
        state.copies,
    )
    copies = copies._replace(
        params={
            **copies.params,
            "readout": jax.tree_util.tree_map(
                lambda leaf: leaf.at[2].set(jnp.nan), copies.params["readout"]
            ),
        }
    )
    running = jnp.asarray([0.5, 0.2, 0.1])  # copy 2 is the "best" but not finite: copy 1 is
    fixed, new_running, restarted = _restart_failed(copies, running, jnp.zeros(3))
    np.testing.assert_array_equal(restarted, [0, 0, 1])
    np.testing.assert_array_equal(new_running, running[jnp.asarray([0, 1, 1])])
    for part in (fixed.params, fixed.hidden, fixed.algo_state, fixed.opt_state[:-1]):
        for leaf in leaves(part):
            np.testing.assert_array_equal(leaf[2], leaf[1])
    multipliers = copies.opt_state[-1].hyperparams["step_size"]  # each copy's own, kept
    assert len(set(np.asarray(multipliers).tolist())) == 3
    np.testing.assert_array_equal(fixed.opt_state[-1].hyperparams["step_size"], multipliers)


def test_every_copy_diverging_stops_the_run() -> None:
    model = make_model("elman", 6, 2)
    inputs, targets = stream(300, jnp.float32, seed=4)
    ensemble = LrEnsemble(learner_at("rtrl", model, "sgd", 1.0), (1e5, 1e6))
    with pytest.raises(DivergenceError):
        ensemble.fit(ensemble.init(model.init(jax.random.PRNGKey(0))), inputs, targets)


def test_on_the_add_task_the_ensemble_ends_within_10_percent_of_the_best_rate() -> None:
    """SGD (copies bitwise equal to the single learners), Elman N = 16, 30,000 steps: loss over
    the last 10% against the best of the five single learning rates in hindsight."""
    data = add_task(30_000, lags=(5, 9), seed=0)
    model = make_model("elman", 16, data.input_dim)
    rates = (0.003, 0.01, 0.03, 0.1, 0.3)  # 0.3 diverges alone
    tail = len(data) // 10
    singles = []
    for lr in rates:
        single = learner_at("rtrl", model, "sgd", lr)
        try:
            _, history = single.fit(
                single.init(model.init(jax.random.PRNGKey(0))), data.inputs, data.targets
            )
            singles.append(history.losses[-tail:].mean())
        except DivergenceError:
            singles.append(np.inf)
    ensemble = LrEnsemble(learner_at("rtrl", model, "sgd", 1.0), rates)
    _, history = ensemble.fit(
        ensemble.init(model.init(jax.random.PRNGKey(0))), data.inputs, data.targets
    )
    assert np.isinf(singles[-1])
    assert history.losses[-tail:].mean() <= 1.10 * min(singles)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "add.csv"
    write_table(add_task(3_000, lags=(2, 3), seed=0), path)
    return path


def test_train_with_several_rates_writes_the_chosen_rate(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", str(table), "--target", "y", "--hidden", "4", "--chunk", "500"]
    code, err = run_cli([*args, "--lr", "0.003,0.03,0.3", "--out", str(out)], capsys)
    assert code == 0, err
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 6 and set(metrics["chosen_lr"]) <= {0.003, 0.03, 0.3}
    chosen = json.loads((out / "summary.json").read_text())["lr_ensemble"]
    assert chosen["lrs"] == [0.003, 0.03, 0.3] and chosen["final_chosen_lr"] in chosen["lrs"]
    assert sum(chosen["chosen_fraction"]) == pytest.approx(1.0)
    assert len(chosen["final_running_loss"]) == 3 and len(chosen["restarts"]) == 3
    single = tmp_path / "single"
    code, err = run_cli([*args, "--lr", "0.03", "--out", str(single)], capsys)
    assert code == 0, err
    assert "lr_ensemble" not in json.loads((single / "summary.json").read_text())
    assert pd.read_csv(single / "metrics.csv")["chosen_lr"].isna().all()


@pytest.mark.parametrize(
    ("lr", "extra"),
    [("0.01,abc", []), ("0.01,-1", []), ("0.01,0.01", []), ("0.01,0.1", ["--lr-backoff", "0.5"])],
)
def test_a_bad_lr_list_is_one_line_naming_the_flag(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], lr: str, extra: list[str]
) -> None:
    args = ["train", "--data", str(table), "--target", "y", "--lr", lr, *extra]
    code, err = run_cli([*args, "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--lr" in err and "Traceback" not in err


def final_leaves(out: Path) -> dict[str, np.ndarray]:
    newest = sorted((out / "checkpoints").glob("checkpoint-*.npz"))[-1]
    with np.load(newest) as archive:
        return {name: archive[name] for name in archive.files if name.startswith("leaf_")}


def test_a_killed_ensemble_run_resumes_bitwise(tmp_path: Path) -> None:
    data = tmp_path / "stream.csv"
    write_table(add_task(10_000, lags=(3, 6), seed=1), data)
    options = ["--data", str(data), "--target", "y", "--hidden", "8", "--chunk", "500"]
    options += ["--checkpoint-every", "1000", "--lr", "0.003,0.03,0.3", "--seed", "3"]
    reference = tmp_path / "reference"
    subprocess.run([*TRAIN, *options, "--out", str(reference)], check=True, capture_output=True)
    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        [*TRAIN, *options, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list((out / "checkpoints").glob("checkpoint-*.npz")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run([*TRAIN, "--out", str(out), "--resume"], check=True, capture_output=True)
    expected = json.loads((reference / "summary.json").read_text())
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["resumed"] is True
    for key in ("overall", "last_10_percent", "steps", "lr_ensemble"):
        assert resumed[key] == expected[key], key
    reference_leaves, resumed_leaves = final_leaves(reference), final_leaves(out)
    assert reference_leaves.keys() == resumed_leaves.keys()
    for name, array in reference_leaves.items():
        np.testing.assert_array_equal(array, resumed_leaves[name], err_msg=name)
    columns = ["step", "loss", "running_loss", "chosen_lr"]
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "metrics.csv")[columns], pd.read_csv(reference / "metrics.csv")[columns]
    )


def test_bench_times_the_ensemble_against_one_learner() -> None:
    timing = {"steps": 20, "repeats": 2, "target_seconds": 0.1, "quick": True}
    result = time_ensemble((1e-3, 1e-2), "elman", "rtrl", 8, "float32", **timing)
    assert (result["cell"], result["algorithm"], result["N"]) == ("elman", "rtrl", 8)
    assert result["lrs"] == [1e-3, 1e-2] and result["finite"]
    assert len(result["round_ratios"]) == 2 and min(result["round_ratios"]) > 0
    assert result["ratio"] == pytest.approx(float(np.median(result["round_ratios"])))
