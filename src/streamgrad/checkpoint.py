"""Atomic, verified checkpoints of a learner state (any JAX/numpy pytree) plus JSON metadata.

On disk, `directory/checkpoint-<step:012d>.npz` is a plain (uncompressed, pickle-free) npz:

    header.npy     uint8, UTF-8 JSON: {"format", "version", "step", "treedef", "leaves",
                   "metadata"}; "leaves" lists each leaf's key path, dtype name and shape
    checksum.npy   uint8, ASCII hex sha256 of the header bytes followed by every leaf's bytes
    leaf_<i>.npy   the i-th leaf in `jax.tree_util` flattening order

Leaves of builtin numeric dtypes are stored as themselves; other dtypes (bfloat16, float8, ...)
as their raw bytes (uint8, 1-D); typed PRNG keys (`jax.random.key`) as their uint32 key data.

A save writes a temporary file in the same directory, fsyncs it, renames it over the final
name and fsyncs the directory, so a crash leaves either the old set of checkpoints or the new
one, never a half-written final file. Only then are older checkpoints pruned. Loading takes
the newest file whose checksum verifies and whose structure matches the template, warning
about (and skipping) any newer file that does not. The checksum covers everything the restored
state and metadata depend on; zip bookkeeping that the reader ignores (local-header timestamps
and sizes, the archive comment) may be damaged without effect. One writer per directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.errors import UserError

FORMAT = "streamgrad-checkpoint"
VERSION = 1
_NAME = re.compile(r"checkpoint-(\d+)\.npz")
_TEMPORARY = ".checkpoint-*.tmp"


class CheckpointError(UserError):
    """No usable checkpoint, or one saved for a different run (config, data)."""


class CheckpointWarning(UserWarning):
    """A checkpoint file was skipped (corrupt or not matching) and an older one used."""


class _Unusable(Exception):
    """Internal: why one checkpoint file cannot be used."""


def latest_step(directory: str | Path) -> int | None:
    """Step of the newest checkpoint file in `directory` (not verified), or None."""
    found = _checkpoints(Path(directory))
    return found[-1][0] if found else None


def save_checkpoint(
    directory: str | Path, state: Any, *, metadata: dict, keep: int = 2, step: int | None = None
) -> Path:
    """Write `state` and `metadata` atomically as the newest checkpoint; returns its path.

    `step` names the file and defaults to `int(state.step)` (a `LearnerState`). Afterwards the
    directory holds this checkpoint and the `keep - 1` newest ones of lower step; checkpoints
    of higher step (from a run this one resumed behind) are removed.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if step is None:
        if not hasattr(state, "step"):
            raise TypeError("state has no .step; pass step= explicitly")
        step = int(state.step)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    directory = Path(directory)
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    paths = [jax.tree_util.keystr(key_path) for key_path, _ in flat]
    header = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "treedef": str(treedef),
        "leaves": [_describe(path, leaf) for path, (_, leaf) in zip(paths, flat, strict=True)],
        "metadata": metadata,
    }
    header_bytes = json.dumps(header, sort_keys=True).encode()
    stored = [
        _to_storage(path, _host_array(leaf)) for path, (_, leaf) in zip(paths, flat, strict=True)
    ]
    members = {
        "header": np.frombuffer(header_bytes, np.uint8),
        "checksum": np.frombuffer(_checksum(header_bytes, stored).encode("ascii"), np.uint8),
        **{f"leaf_{i}": array for i, array in enumerate(stored)},
    }

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"checkpoint-{step:012d}.npz"
    temporary = directory / f".{final.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "xb") as file:
            np.savez(file, **members)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    _prune(directory, step, keep)
    return final


def object_state(obj: Any) -> dict[str, Any]:
    """The attributes of a small stateful object (a metric, a baseline) as JSON-safe values
    for checkpoint metadata: numbers as they are (JSON keeps a float exactly), numpy arrays
    as lists with their dtype, nested objects recursively. See `restore_object`."""
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            state[name] = {"array": value.tolist(), "dtype": str(value.dtype)}
        elif hasattr(value, "__dict__"):
            state[name] = {"object": object_state(value)}
        else:
            state[name] = value
    return state


def restore_object(obj: Any, state: dict[str, Any]) -> Any:
    """Set the attributes of `obj` (built like the saved one) from `object_state`; returns it."""
    for name, value in state.items():
        if isinstance(value, dict) and "array" in value:
            setattr(obj, name, np.asarray(value["array"], value["dtype"]))
        elif isinstance(value, dict) and "object" in value:
            restore_object(getattr(obj, name), value["object"])
        else:
            setattr(obj, name, value)
    return obj


def load_checkpoint(
    directory: str | Path, template: Any, *, expect: dict | None = None
) -> tuple[Any, dict]:
    """(state, metadata) from the newest usable checkpoint in `directory`.

    `template` is a state built the same way as the saved one (concrete arrays, not shape
    structs): the restored state has its tree structure, and each leaf its dtype, shape and
    kind (jax array, numpy array, numpy scalar or Python scalar). Newer files that are corrupt
    or do not match the template are skipped with a `CheckpointWarning`. Each key of `expect`
    must equal the stored metadata value, else `CheckpointError`.
    """
    directory = Path(directory)
    candidates = _checkpoints(directory)
    if not candidates:
        raise CheckpointError(f"no checkpoint found in {directory}")
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    template_leaves = [(jax.tree_util.keystr(key_path), leaf) for key_path, leaf in flat]
    problems = []
    for _, path in reversed(candidates):
        try:
            stored, metadata = _read(path, template_leaves, str(treedef))
        except _Unusable as problem:
            problems.append(f"{path.name}: {problem}")
            continue
        for problem in problems:
            warnings.warn(
                f"skipped checkpoint {problem}; using {path.name}", CheckpointWarning, stacklevel=2
            )
        _check_expected(path, metadata, expect or {})
        restored = [_restore(leaf, a) for (_, leaf), a in zip(template_leaves, stored, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, restored), metadata
    raise CheckpointError(f"no usable checkpoint in {directory}: {'; '.join(problems)}")


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoint files in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.fullmatch(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _prune(directory: Path, step: int, keep: int) -> None:
    """Delete checkpoints beyond the newest `keep` (counting the one just saved at `step`),
    any of higher step, and temporary files left by interrupted saves."""
    others = [(s, path) for s, path in _checkpoints(directory) if s != step]
    older = [path for s, path in others if s < step]
    doomed = [path for s, path in others if s > step] + older[: max(len(older) - (keep - 1), 0)]
    for path in [*doomed, *directory.glob(_TEMPORARY)]:
        path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX; other systems cannot open a directory)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _values(leaf: Any) -> tuple[np.dtype, tuple[int, ...]]:
    """dtype and shape of a leaf's values (for typed keys: of their uint32 key data)."""
    if _is_key(leaf):
        data = jax.eval_shape(jax.random.key_data, leaf)
        return np.dtype(data.dtype), tuple(data.shape)
    if not hasattr(leaf, "dtype"):
        leaf = np.asarray(leaf)
    return np.dtype(leaf.dtype), tuple(leaf.shape)


def _describe(path: str, leaf: Any) -> dict:
    """{"path", "dtype", "shape"} of a leaf, as recorded in the header."""
    dtype, shape = _values(leaf)
    name = str(leaf.dtype) if _is_key(leaf) else dtype.name
    return {"path": path, "dtype": name, "shape": list(shape)}


def _host_array(leaf: Any) -> np.ndarray:
    """The leaf's values as a numpy array (typed keys: their uint32 key data)."""
    return np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)


def _native(dtype: np.dtype) -> bool:
    """Whether npz stores this dtype as itself (builtin numeric), rather than as raw bytes."""
    return dtype.isbuiltin == 1 and dtype.kind in "biufc"


def _to_storage(path: str, array: np.ndarray) -> np.ndarray:
    if _native(array.dtype):
        return np.asarray(array, order="C")
    if array.dtype.hasobject:
        raise TypeError(f"cannot checkpoint leaf {path} of dtype {array.dtype}")
    return np.asarray(array, order="C").reshape(-1).view(np.uint8)


def _storage_layout(leaf: Any) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) that a leaf like `leaf` has in the file."""
    dtype, shape = _values(leaf)
    if _native(dtype):
        return dtype, shape
    return np.dtype(np.uint8), (int(np.prod(shape)) * dtype.itemsize,)


def _checksum(header: bytes, stored: list[np.ndarray]) -> str:
    digest = hashlib.sha256(header)
    for array in stored:
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(f"{name}.npy") as file:
        return np.lib.format.read_array(file, allow_pickle=False)


def _read(path: Path, template: list[tuple[str, Any]], treedef: str) -> tuple[list, dict]:
    """Verified leaves (stored form) and metadata of one file, or _Unusable saying why."""
    try:
        return _verify(path, template, treedef)
    except _Unusable:
        raise
    except Exception as error:  # whatever fails to parse is a corrupt file
        raise _Unusable(f"unreadable ({type(error).__name__}: {_one_line(error)})") from None


def _verify(path: Path, template: list[tuple[str, Any]], treedef: str) -> tuple[list, dict]:
    with zipfile.ZipFile(path) as archive:
        header_bytes = _member(archive, "header").tobytes()
        checksum = _member(archive, "checksum").tobytes().decode("ascii")
        header = json.loads(header_bytes)
        stored = [_member(archive, f"leaf_{i}") for i in range(len(header["leaves"]))]
    if _checksum(header_bytes, stored) != checksum:
        raise _Unusable("checksum mismatch (corrupt file)")
    if header["format"] != FORMAT or header["version"] != VERSION:
        raise _Unusable(f"unsupported format {header['format']} {header['version']}")
    if len(stored) != len(template):
        raise _Unusable(f"{len(stored)} leaves, the template has {len(template)}")
    for saved, (path_string, leaf), array in zip(header["leaves"], template, stored, strict=True):
        wanted = _describe(path_string, leaf)
        if saved != wanted:
            raise _Unusable(
                f"leaf {saved['path']} is {saved['dtype']}{tuple(saved['shape'])}, "
                f"the template has {path_string} {wanted['dtype']}{tuple(wanted['shape'])}"
            )
        if (array.dtype, array.shape) != _storage_layout(leaf):
            raise _Unusable(f"leaf {path_string} stored as {array.dtype}{array.shape}")
    if header["treedef"] != treedef:
        raise _Unusable("tree structure differs from the template")
    return stored, header["metadata"]


def _restore(template: Any, stored: np.ndarray) -> Any:
    """The stored array in the template leaf's dtype, shape and kind."""
    dtype, shape = _values(template)
    array = stored if _native(dtype) else stored.view(dtype).reshape(shape)
    if _is_key(template):
        return jax.random.wrap_key_data(jnp.asarray(array), impl=jax.random.key_impl(template))
    if isinstance(template, jax.Array):
        return jnp.asarray(array)
    if isinstance(template, np.ndarray):
        return array
    if isinstance(template, np.generic):
        return array[()]
    return type(template)(array.item())


def _check_expected(path: Path, metadata: dict, expect: dict) -> None:
    for key, wanted in expect.items():
        wanted = json.loads(json.dumps(wanted))  # compare as stored (tuples become lists)
        if key not in metadata:
            raise CheckpointError(
                f"checkpoint {path} has no {key!r} in its metadata, expected {json.dumps(wanted)}"
            )
        if metadata[key] != wanted:
            raise CheckpointError(
                f"checkpoint {path} was saved with {key} = {json.dumps(metadata[key])}, "
                f"expected {json.dumps(wanted)}"
            )


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
