"""Pinning this process to CPU cores before JAX starts its backend.

`pin_to_core` must run before JAX initialises its backend (its first array, device query or
compile; importing jax is fine), because XLA reads XLA_FLAGS and sizes its thread pools then.
Measured here: the affinity mask is what confines XLA to one core (a 1024^3 GEMM runs at the
two-core rate without it, at the one-core rate with it); `--xla_cpu_multi_thread_eigen=false`
is added for one core as well.

Whether the backend is already up is read from `jax._src.xla_bridge.backends_are_initialized`:
jax (0.10) has no public function for it (`jax.extend.backend` offers `backends()`,
`get_backend()` and `clear_backends()`, each of which starts or resets the backend instead of
asking), so this module is the one place that reaches into a private JAX module, and it only
decides whether to warn: if that function is gone, the backend is assumed started.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

ONE_CORE_XLA_FLAG = "--xla_cpu_multi_thread_eigen=false"


def pin_to_core(core: int | Sequence[int]) -> list[int]:
    """Restrict every thread of this process to the given CPU core(s) (Linux affinity) and,
    for a single core, add `--xla_cpu_multi_thread_eigen=false` to XLA_FLAGS.

    Call before JAX initialises its backend: threads it starts later inherit the mask, and
    XLA reads XLA_FLAGS and sizes its thread pools at that point. If the backend is already
    up, the threads are still pinned but a warning says the flags come too late.
    Returns the sorted cores the process may now run on.
    """
    cores = {core} if isinstance(core, int) else {int(c) for c in core}
    if not cores:
        raise ValueError("pin_to_core needs at least one core")
    if not hasattr(os, "sched_setaffinity"):
        raise RuntimeError("pinning to cores needs os.sched_setaffinity (Linux)")
    if len(cores) == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {ONE_CORE_XLA_FLAG}".strip()
    tasks = Path("/proc/self/task")
    threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for thread in threads:
        try:
            os.sched_setaffinity(thread, cores)
        except ProcessLookupError:  # the thread ended since the listing
            continue
    if _backend_started():
        warnings.warn(
            "JAX's backend is already initialised: XLA_FLAGS and its thread-pool sizes are "
            "fixed; call pin_to_core before the first JAX computation",
            RuntimeWarning,
            stacklevel=2,
        )
    return sorted(os.sched_getaffinity(0))


def _backend_started() -> bool:
    """Whether JAX's backend is up (private JAX function, see the module docstring)."""
    from jax._src import xla_bridge

    return bool(getattr(xla_bridge, "backends_are_initialized", lambda: True)())
