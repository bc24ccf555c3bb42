"""What a worker does with one run of a sweep: start it, or resume it from its checkpoints.

A run may be started more than once: after a worker dies (Dask gives the task to another
worker), after the sweep itself was interrupted, or (rarely) twice at once when a worker that
the scheduler gave up on is still alive. A lock file next to the run folder serialises the
attempts, and each attempt resumes from the newest checkpoint the previous ones left, or
starts afresh when there is none.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamgrad.errors import UserError
from streamgrad.runs import RUN_FILE


def run_in_folder(command: str, options: dict[str, Any], folder: str) -> dict[str, Any]:
    """Run `command` with `options` into `folder` (resuming what an earlier attempt left).

    Returns {"summary": ..., "resumed": bool}, or {"error": message, "resumed": bool} for a
    user error (bad option, missing file, diverged run): a failed run is a result, not an
    exception, so its message reaches the sweep intact from any worker.
    """
    from streamgrad.jobs import run_job

    path = Path(folder)
    with _exclusive(path.parent / f"{path.name}.lock"):
        resume = (path / RUN_FILE).is_file() and _has_checkpoint(path / "checkpoints")
        if not resume and path.exists():
            shutil.rmtree(path)  # an attempt that died before its first checkpoint
        with _default_precision():
            try:
                summary = run_job(command, options, path, resume=resume)
            except UserError as error:
                return {"error": str(error), "resumed": resume}
    return {"summary": summary, "resumed": resume}


def _has_checkpoint(checkpoints: Path) -> bool:
    """A checkpoint in `checkpoints` or a folder below it (lob keeps one folder per RNN)."""
    from streamgrad.checkpoint import latest_step

    folders = [checkpoints, *(p for p in checkpoints.rglob("*") if p.is_dir())]
    return any(latest_step(folder) is not None for folder in folders)


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `lock` (released when the holder dies, too)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _default_precision() -> Iterator[None]:
    """Run in JAX's default (float32) mode whatever ran before in this process.

    A float64 run switches JAX's process-wide x64 mode on; a float32 run after it in the same
    worker would then compute differently from the same run on a fresh worker, and a sweep's
    results would depend on which worker ran what.
    """
    import jax

    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)
