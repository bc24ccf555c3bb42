"""The local Dask workers' set-up: each pinned to its own CPU core before JAX starts.

Left alone, every worker's XLA sizes its thread pools to all the machine's cores, so K
workers on K cores run K x K busy threads and slow each other down; pinned, each worker's
runs use one core, as `dask worker --nthreads 1` on a cluster node with one core per worker
would. Imports distributed: only the Dask backend of executor.py loads this module.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


class PinToCore(WorkerPlugin):
    """Pins the worker named i (a LocalCluster names its workers 0, 1, ...) to cores[i mod
    len(cores)], before its first task starts JAX's backend (see bench/pinning.py)."""

    name = "streamgrad-pin-to-core"

    def __init__(self, cores: list[int]) -> None:
        self.cores = list(cores)

    def setup(self, worker: Any) -> None:
        from streamgrad.bench.pinning import pin_to_core

        index = worker.name if isinstance(worker.name, int) else 0
        pin_to_core(self.cores[index % len(self.cores)])
