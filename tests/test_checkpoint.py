"""Checkpoints: bitwise round trips, resume equivalence, corruption fallback, atomicity."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from streamgrad.checkpoint import (
    CheckpointError,
    CheckpointWarning,
    latest_step,
    load_checkpoint,
    save_checkpoint,
)
from streamgrad.config import TrainConfig
from streamgrad.data.synthetic import add_task
from streamgrad.errors import UserError
from streamgrad.gradients import make_algorithm
from streamgrad.gradients.tbptt import TBPTTState
from streamgrad.model import make_model
from streamgrad.online import LearnerState, OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.runs import config_hash, file_sha256
from streamgrad.training import train_on_stream

SPECS = ["rtrl", "tbptt:5"]
_RNG = np.random.default_rng(0)
INPUTS = _RNG.standard_normal((24, 2))
TARGETS = _RNG.standard_normal(24)
CHUNK = 6


@functools.cache
def learner(spec: str) -> OnlineLearner:
    """One learner per spec, so its jitted `run` compiles once per test session."""
    model = make_model("elman", 4, 2)
    optimizer = make_optimizer("adam", make_schedule("constant", 1e-3))
    return OnlineLearner(make_algorithm(spec, model), optimizer)


def fresh(spec: str, seed: int = 0) -> LearnerState:
    model = learner(spec).algorithm.model
    return learner(spec).init(model.init(jax.random.PRNGKey(seed), jnp.float64))


def trained(spec: str, steps: int) -> LearnerState:
    state, _ = learner(spec).fit(fresh(spec), INPUTS[:steps], TARGETS[:steps], chunk_size=CHUNK)
    return state


def as_numpy(leaf: Any) -> np.ndarray:
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf))
    return np.asarray(leaf)


def assert_bitwise_equal(actual: Any, expected: Any) -> None:
    """Same tree structure (NamedTuple types included), leaf kinds, dtypes, shapes and bytes."""
    assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected)
    for a, b in zip(
        jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected), strict=True
    ):
        assert type(a) is type(b)
        if hasattr(b, "dtype"):
            assert a.dtype == b.dtype
        a, b = as_numpy(a), as_numpy(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        assert a.tobytes() == b.tobytes()


def load_quietly(directory: Path, template: Any, **options: Any) -> tuple[Any, dict]:
    """load_checkpoint, asserting that no checkpoint was skipped."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        return load_checkpoint(directory, template, **options)


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.fixture(scope="module")
def states() -> tuple[LearnerState, LearnerState]:
    """RTRL learner states after 6 and 12 steps (never passed to `fit`, which donates)."""
    return trained("rtrl", 6), trained("rtrl", 12)


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_learner_state_round_trip_is_bitwise(spec: str, tmp_path: Path) -> None:
    state = trained(spec, 12)
    metadata = {"config": {"algorithm": spec, "lr": 1e-3}, "position": 12, "accuracy": None}
    path = save_checkpoint(tmp_path, state, metadata=metadata)
    assert path == tmp_path / "checkpoint-000000000012.npz"
    restored, loaded = load_quietly(tmp_path, fresh(spec, seed=1))
    assert isinstance(restored, LearnerState)
    assert loaded == metadata
    assert_bitwise_equal(restored, state)
    if spec.startswith("tbptt"):
        assert isinstance(restored.algo_state, TBPTTState)


class Pair(NamedTuple):
    first: Any
    second: Any


class OtherPair(NamedTuple):
    first: Any
    second: Any


def mixed_tree(seed: int) -> dict:
    """Leaves of many kinds and dtypes, with NaN payloads and signed zeros."""
    values = jax.random.normal(jax.random.PRNGKey(seed), (5,), jnp.float64)
    odd_nan = np.array([0x7FC00123], np.uint32).view(np.float32)
    return {
        "raw_key": jax.random.PRNGKey(seed),
        "typed_key": jax.random.key(seed),
        "typed_keys": jax.random.split(jax.random.key(seed + 1), 3),
        "f64": values,
        "f32": jnp.asarray(np.concatenate([odd_nan, [-0.0, np.inf]]).astype(np.float32)),
        "bf16": values.astype(jnp.bfloat16),
        "f8": values.astype(jnp.float8_e4m3fn),
        "c128": values * (1 + 2j),
        "i8": jnp.arange(-3, 3, dtype=jnp.int8) * seed,
        "u64": jnp.asarray([2**63 + seed], jnp.uint64),
        "flags": values > 0,
        "empty": jnp.zeros((0, 3), jnp.float32),
        "count": jnp.asarray(seed, jnp.int32),
        "numpy": np.arange(6, dtype=np.int16).reshape(2, 3) + seed,
        "numpy_scalar": np.float32(seed + 0.5),
        "python": (seed, seed + 0.25, seed % 2 == 0),
        "nothing": None,
        "pair": Pair(values[:2], np.full(1, seed, np.float16)),
    }


def test_mixed_pytree_round_trip_is_bitwise(tmp_path: Path) -> None:
    tree = mixed_tree(3)
    save_checkpoint(tmp_path, tree, metadata={}, step=5)
    restored, metadata = load_quietly(tmp_path, mixed_tree(4))
    assert metadata == {}
    assert_bitwise_equal(restored, tree)


# --- resume equivalence ------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_resume_matches_uninterrupted_run(spec: str, tmp_path: Path) -> None:
    run = learner(spec)
    half = len(INPUTS) // 2
    straight, straight_history = run.fit(fresh(spec), INPUTS, TARGETS, chunk_size=CHUNK)

    first, first_history = run.fit(fresh(spec), INPUTS[:half], TARGETS[:half], chunk_size=CHUNK)
    loss_sum = float(first_history.losses.sum())
    save_checkpoint(tmp_path, first, metadata={"position": half, "loss_sum": loss_sum})
    resumed, metadata = load_quietly(tmp_path, fresh(spec, seed=1))
    assert metadata["loss_sum"] == loss_sum
    position = metadata["position"]
    second, second_history = run.fit(
        resumed, INPUTS[position:], TARGETS[position:], chunk_size=CHUNK
    )

    assert_bitwise_equal(second, straight)
    losses = np.concatenate([first_history.losses, second_history.losses])
    assert losses.tobytes() == straight_history.losses.tobytes()


def test_resume_keeps_the_lowered_learning_rate_and_the_backoff_record(tmp_path: Path) -> None:
    """lr 0.5 diverges near step 180; after resuming from a checkpoint taken after the
    back-off, the run must go on with the lowered rate and still report the back-off."""
    config = TrainConfig(hidden=8, lr=0.5, lr_backoff=0.5, chunk=100)
    stream = add_task(1500, seed=5)
    straight = train_on_stream(config, stream, checkpoints=tmp_path, checkpoint_every=100)
    assert straight.summary["lr_backoffs"]
    newest = sorted(tmp_path.glob("checkpoint-*.npz"))[-1]
    newest.unlink()  # as if killed before the last save: resume from step 1400
    resumed = train_on_stream(
        config, stream, checkpoints=tmp_path, checkpoint_every=100, resume=True
    )
    assert resumed.summary["lr_backoffs"] == straight.summary["lr_backoffs"]
    assert resumed.history.losses.tobytes() == straight.history.losses.tobytes()
    assert_bitwise_equal(resumed.state, straight.state)


# --- corruption and fallback -------------------------------------------------------------


def rewrite_leaf(data: bytes) -> bytes:
    """A well-formed npz (valid zip CRCs) whose first leaf was changed: only the sha256 sees it."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    leaf = np.lib.format.read_array(io.BytesIO(members["leaf_0.npy"]))
    leaf.flat[0] += 1
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, leaf)
    members["leaf_0.npy"] = buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def flip_at(data: bytes, content: bytes) -> bytes:
    """Flip a byte inside the (unique) occurrence of `content` in the file."""
    start = data.find(content)
    assert start > 0 and data.find(content, start + 1) < 0
    mutable = bytearray(data)
    mutable[start + len(content) // 2] ^= 0x5A
    return bytes(mutable)


def checksum_of(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open("checksum.npy") as file:
        return np.lib.format.read_array(file).tobytes()


# Damage to the payload: what the restored state or metadata depend on. (Bytes of zip
# bookkeeping that the reader does not use, such as local-header timestamps, can change
# without changing the result; the hypothesis test below covers flips anywhere.)
CORRUPTIONS = {
    "truncated": lambda data, state: data[: len(data) // 2],
    "empty": lambda data, state: b"",
    "flipped-leaf-data": lambda data, state: flip_at(data, np.asarray(state.algo_state).tobytes()),
    "flipped-header": lambda data, state: flip_at(data, b'"metadata"'),
    "flipped-checksum": lambda data, state: flip_at(data, checksum_of(data)),
    "bad-checksum": lambda data, state: rewrite_leaf(data),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupt_newest_falls_back_to_previous(
    corruption: str, states: tuple[LearnerState, LearnerState], tmp_path: Path
) -> None:
    older, newer = states
    save_checkpoint(tmp_path, older, metadata={"position": 6})
    newest = save_checkpoint(tmp_path, newer, metadata={"position": 12})
    newest.write_bytes(CORRUPTIONS[corruption](newest.read_bytes(), newer))

    with pytest.warns(CheckpointWarning, match=newest.name) as caught:
        restored, metadata = load_checkpoint(tmp_path, fresh("rtrl", seed=1))
    assert metadata == {"position": 6}
    assert_bitwise_equal(restored, older)
    if corruption == "bad-checksum":
        assert "checksum mismatch" in str(caught[0].message)


def test_no_valid_checkpoint_names_the_directory(tmp_path: Path) -> None:
    template = fresh("rtrl")
    with pytest.raises(CheckpointError, match=f"no checkpoint found in {tmp_path / 'absent'}"):
        load_checkpoint(tmp_path / "absent", template)
    with pytest.raises(CheckpointError, match=f"no checkpoint found in {tmp_path}"):
        load_checkpoint(tmp_path, template)
    (tmp_path / "checkpoint-000000000003.npz").write_bytes(b"not a checkpoint\nat all")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path, template)
    message = str(error.value)
    assert isinstance(error.value, UserError)
    assert message.startswith(f"no usable checkpoint in {tmp_path}: checkpoint-000000000003.npz")
    assert "\n" not in message


def test_template_of_another_shape_dtype_or_algorithm_is_refused(
    states: tuple[LearnerState, LearnerState], tmp_path: Path
) -> None:
    save_checkpoint(tmp_path / "rtrl", states[1], metadata={})
    wider = make_model("elman", 5, 2)
    other = OnlineLearner(make_algorithm("rtrl", wider), learner("rtrl").optimizer)
    template = other.init(wider.init(jax.random.PRNGKey(0), jnp.float64))
    with pytest.raises(CheckpointError, match=r"leaf \.params\['cell'\]\['A'\] is float64\(4, 4\)"):
        load_checkpoint(tmp_path / "rtrl", template)
    model = learner("rtrl").algorithm.model
    single = learner("rtrl").init(model.init(jax.random.PRNGKey(0), jnp.float32))
    with pytest.raises(
        CheckpointError, match=r"the template has \.params\['cell'\]\['A'\] float32"
    ):
        load_checkpoint(tmp_path / "rtrl", single)
    save_checkpoint(tmp_path / "tbptt", trained("tbptt:5", 6), metadata={})
    with pytest.raises(CheckpointError, match="25 leaves, the template has 20"):
        load_checkpoint(tmp_path / "tbptt", fresh("rtrl"))


def test_tree_structure_mismatch_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, Pair(jnp.ones(2), jnp.zeros(2)), metadata={}, step=1)
    with pytest.raises(CheckpointError, match="tree structure differs"):
        load_checkpoint(tmp_path, OtherPair(jnp.ones(2), jnp.zeros(2)))


def test_expect_mismatch_is_refused_naming_the_key(
    states: tuple[LearnerState, LearnerState], tmp_path: Path
) -> None:
    metadata = {"config_hash": "abc123", "data_sha256": "feed", "shape": [3, 4]}
    save_checkpoint(tmp_path, states[0], metadata=metadata)
    template = fresh("rtrl")
    _, loaded = load_quietly(tmp_path, template, expect={"config_hash": "abc123", "shape": (3, 4)})
    assert loaded == metadata
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path, template, expect={"config_hash": "abc123", "data_sha256": "beef"})
    message = str(error.value)
    assert "data_sha256" in message and '"feed"' in message and '"beef"' in message
    assert "\n" not in message
    with pytest.raises(CheckpointError, match="has no 'seed' in its metadata, expected 7"):
        load_checkpoint(tmp_path, template, expect={"seed": 7})


# --- atomicity and pruning ---------------------------------------------------------------


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_crash_during_save_keeps_previous_checkpoint(
    failing: str,
    states: tuple[LearnerState, LearnerState],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    older, newer = states
    save_checkpoint(tmp_path, older, metadata={"position": 6})

    def crash(*args: Any) -> None:
        raise OSError("simulated crash")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(tmp_path, newer, metadata={"position": 12})
    monkeypatch.undo()

    assert names(tmp_path) == ["checkpoint-000000000006.npz"]
    restored, metadata = load_quietly(tmp_path, fresh("rtrl", seed=1))
    assert metadata == {"position": 6}
    assert_bitwise_equal(restored, older)


def test_leftover_temporary_file_is_ignored_then_removed(
    states: tuple[LearnerState, LearnerState], tmp_path: Path
) -> None:
    older, newer = states
    save_checkpoint(tmp_path, older, metadata={})
    leftover = tmp_path / ".checkpoint-000000000012.npz.0123abcd.tmp"
    leftover.write_bytes(b"half a checkpoint")
    assert latest_step(tmp_path) == 6
    restored, _ = load_quietly(tmp_path, fresh("rtrl", seed=1))
    assert_bitwise_equal(restored, older)
    save_checkpoint(tmp_path, newer, metadata={})
    assert not leftover.exists()


def test_keep_prunes_older_checkpoints(tmp_path: Path) -> None:
    assert latest_step(tmp_path) is None
    for step in range(1, 5):
        save_checkpoint(tmp_path, {"w": jnp.full(3, step)}, metadata={"step": step}, step=step)
    assert names(tmp_path) == ["checkpoint-000000000003.npz", "checkpoint-000000000004.npz"]
    assert latest_step(tmp_path) == 4
    save_checkpoint(tmp_path, {"w": jnp.full(3, 5)}, metadata={"step": 5}, step=5, keep=1)
    assert names(tmp_path) == ["checkpoint-000000000005.npz"]
    with pytest.raises(ValueError, match="keep"):
        save_checkpoint(tmp_path, {"w": jnp.zeros(3)}, metadata={}, step=6, keep=0)


def test_saving_behind_newer_checkpoints_removes_them(
    states: tuple[LearnerState, LearnerState], tmp_path: Path
) -> None:
    older, newer = states
    save_checkpoint(tmp_path, older, metadata={"position": 6})
    newest = save_checkpoint(tmp_path, newer, metadata={"position": 12})
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(CheckpointWarning):
        resumed, _ = load_checkpoint(tmp_path, fresh("rtrl", seed=1))
    save_checkpoint(tmp_path, resumed, metadata={"position": 9}, step=9)
    assert names(tmp_path) == ["checkpoint-000000000006.npz", "checkpoint-000000000009.npz"]
    _, metadata = load_quietly(tmp_path, fresh("rtrl", seed=1))
    assert metadata == {"position": 9}


def test_save_validates_before_writing(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    with pytest.raises(TypeError, match="step="):
        save_checkpoint(directory, {"w": jnp.zeros(2)}, metadata={})
    with pytest.raises(TypeError, match="not JSON serializable"):
        save_checkpoint(directory, {"w": jnp.zeros(2)}, metadata={"path": Path("x")}, step=1)
    with pytest.raises(TypeError, match="cannot checkpoint leaf"):
        save_checkpoint(directory, {"w": np.array([None])}, metadata={}, step=1)
    assert not directory.exists()


# --- random bytes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_files(
    states: tuple[LearnerState, LearnerState], tmp_path_factory: pytest.TempPathFactory
) -> tuple[bytes, bytes]:
    directory = tmp_path_factory.mktemp("good")
    older = save_checkpoint(directory, states[0], metadata={"position": 6}, keep=2)
    newer = save_checkpoint(directory, states[1], metadata={"position": 12}, keep=2)
    return older.read_bytes(), newer.read_bytes()


def mutations(newest: bytes) -> st.SearchStrategy[bytes]:
    size = len(newest)
    return st.one_of(
        st.binary(max_size=4096),
        st.builds(lambda n: newest[:n], st.integers(0, size - 1)),
        st.builds(
            lambda i, x: newest[:i] + bytes([x]) + newest[i + 1 :],
            st.integers(0, size - 1),
            st.integers(0, 255),
        ),
        st.builds(
            lambda i, junk: (newest[:i] + junk + newest[i + len(junk) :])[:size],
            st.integers(0, size - 1),
            st.binary(min_size=1, max_size=64),
        ),
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), with_fallback=st.booleans())
def test_damaged_file_gives_fallback_or_checkpoint_error(
    data: st.DataObject,
    with_fallback: bool,
    good_files: tuple[bytes, bytes],
    states: tuple[LearnerState, LearnerState],
) -> None:
    older_bytes, newest_bytes = good_files
    damaged = data.draw(mutations(newest_bytes))
    template = fresh("rtrl", seed=1)
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        if with_fallback:
            (directory / "checkpoint-000000000006.npz").write_bytes(older_bytes)
        (directory / "checkpoint-000000000012.npz").write_bytes(damaged)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                restored, metadata = load_checkpoint(directory, template)
            except CheckpointError:
                assert not with_fallback
                event("no usable checkpoint")
                return
    # either the damage left the newest checkpoint intact, or the older one was used
    skipped = any(issubclass(w.category, CheckpointWarning) for w in caught)
    event("fell back" if skipped else "damage did not touch the payload")
    assert metadata == ({"position": 6} if skipped else {"position": 12})
    assert_bitwise_equal(restored, states[0] if skipped else states[1])


# --- hashing helpers ---------------------------------------------------------------------


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    content = np.random.default_rng(1).bytes(3 * 2**20 + 17)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()


def test_config_hash_is_canonical() -> None:
    config = {"model": {"cell": "elman", "hidden": 4}, "lr": 1e-3, "tags": ["a", "b"]}
    reordered = {"tags": ["a", "b"], "lr": 0.001, "model": {"hidden": 4, "cell": "elman"}}
    assert config_hash(config) == config_hash(reordered)
    assert len(config_hash(config)) == 64
    assert config_hash(config) != config_hash({**config, "lr": 2e-3})
    with pytest.raises(ValueError):
        config_hash({"lr": float("nan")})
