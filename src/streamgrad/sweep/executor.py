"""One interface for running many independent tasks, and two backends behind it.

    with make_executor(workers, scheduler) as executor:
        outcomes = executor.run(tasks, running=..., finished=...)

- `InProcess` (workers = 0): the tasks one after another in this process.
- `DaskExecutor`: each task on a Dask distributed worker, either on a LocalCluster started
  here (`workers` processes of one thread each, listening on 127.0.0.1 only) or on a running
  cluster (`scheduler` = "tcp://HOST:PORT", started with `dask scheduler` / `dask worker` or
  dask-jobqueue). When a worker dies (killed, out of memory), the scheduler gives its task to
  another worker: tasks must therefore be safe to start again (sweep tasks resume from their
  checkpoints, see task.py).

A task's exception does not stop the others: it becomes that task's `Outcome.error`. Dask is
imported only when a DaskExecutor is made.
"""

from __future__ import annotations

import os
import queue
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamgrad.errors import UserError


@dataclass(frozen=True)
class Task:
    """`function(*args)`, known by `key`; function and args must pickle (for Dask)."""

    key: str
    function: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Outcome:
    """What became of a task: its return value, or `error` (one line) if it raised."""

    key: str
    value: Any = None
    error: str | None = None


Running = Callable[[set[str]], None]
Finished = Callable[[Outcome], None]


def error_line(error: BaseException) -> str:
    """A user error's own message; anything else prefixed with its type (it is a bug, or the
    executor's: e.g. `KilledWorker: ...` when a task's workers kept dying)."""
    if isinstance(error, UserError):
        return str(error)
    return f"{type(error).__name__}: {error}".replace("\n", " ")


class Executor(ABC):
    """Runs tasks; `running(keys)` is called whenever the set of running tasks may have
    changed, `finished(outcome)` once per task, both in the calling thread."""

    description: str

    @abstractmethod
    def run(self, tasks: Sequence[Task], running: Running, finished: Finished) -> list[Outcome]:
        """Every task's outcome, in the order they finished."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(Executor):
    """The tasks one after another, in this process."""

    description = "in this process"

    def run(self, tasks: Sequence[Task], running: Running, finished: Finished) -> list[Outcome]:
        outcomes = []
        for task in tasks:
            running({task.key})
            try:
                outcome = Outcome(task.key, value=task.function(*task.args))
            except Exception as error:  # isolate the task; the sweep records the message
                outcome = Outcome(task.key, error=error_line(error))
            running(set())
            finished(outcome)
            outcomes.append(outcome)
        return outcomes

    def close(self) -> None:
        """Nothing to release."""


class DaskExecutor(Executor):
    """Tasks on Dask distributed workers: a LocalCluster of `workers` single-threaded
    processes on 127.0.0.1, or the cluster whose scheduler listens at `scheduler`."""

    POLL_SECONDS = 0.5  # how often the set of running tasks is asked for

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is not None:
            try:
                self.client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as error:
                raise UserError(f"--scheduler {scheduler}: cannot connect ({error})") from None
            self.description = f"on the Dask cluster at {scheduler}"
            self._refuse_threaded_workers(scheduler)
            return
        if workers is None or workers < 1:
            raise UserError(f"--workers: need at least 1 worker for a local cluster, got {workers}")
        self.cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # one run at a time per process: runs do not share a JAX
            processes=True,
            host="127.0.0.1",  # reachable from this machine only
            dashboard_address="127.0.0.1:0",  # any free port: sweeps may run side by side
        )
        self.client = Client(self.cluster)
        self.description = f"on {workers} local Dask worker{'s' * (workers > 1)}"

    def _refuse_threaded_workers(self, scheduler: str) -> None:
        """Runs in one worker process share JAX's process-wide settings (x64 mode, see
        task.py), so a worker must run one task at a time."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        threaded = {address: w["nthreads"] for address, w in workers.items() if w["nthreads"] > 1}
        if threaded:
            address, threads = next(iter(threaded.items()))
            self.client.close()
            raise UserError(
                f"--scheduler {scheduler}: worker {address} runs {threads} threads; start "
                "workers with `dask worker --nthreads 1` (use --nworkers for more processes)"
            )

    def run(self, tasks: Sequence[Task], running: Running, finished: Finished) -> list[Outcome]:
        # A key per submission: two sweeps with the same run ids may share a cluster.
        token = uuid.uuid4().hex[:8]
        keys = {f"{task.key}@{token}": task.key for task in tasks}
        done: queue.Queue = queue.Queue()
        futures = [
            self.client.submit(task.function, *task.args, key=key, pure=False)
            for key, task in zip(keys, tasks, strict=True)
        ]
        for future in futures:
            future.add_done_callback(done.put)  # called on the client's thread: only queue it
        outcomes: list[Outcome] = []
        while len(outcomes) < len(futures):
            try:
                future = done.get(timeout=self.POLL_SECONDS)
            except queue.Empty:
                running(self._running(keys))
                continue
            key = keys[future.key]
            try:
                outcome = Outcome(key, value=future.result())
            except Exception as error:  # the task's, or KilledWorker after repeated deaths
                outcome = Outcome(key, error=error_line(error))
            future.release()
            running(self._running(keys))
            finished(outcome)
            outcomes.append(outcome)
        return outcomes

    def _running(self, keys: dict[str, str]) -> set[str]:
        # Asked of the workers: the scheduler's `processing` also lists tasks queued on them.
        # A worker that died meanwhile answers with its error, which says nothing here.
        answers = self.client.run(_executing, on_error="return")
        return {
            keys[k]
            for names in answers.values()
            if isinstance(names, list)
            for k in names
            if k in keys
        }

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _executing(dask_worker: Any) -> list[str]:
    """On a worker: the keys of the tasks it is executing now."""
    return [str(task.key) for task in dask_worker.state.executing]


def local_cores() -> int:
    """CPU cores this process may run on: the default number of local workers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The cluster at `scheduler` if given; else `workers` local Dask workers (default: one per
    core); `workers` = 0 runs in this process without Dask."""
    if scheduler is not None and workers is not None:
        raise UserError("--workers and --scheduler: give one (the cluster has its own workers)")
    if scheduler is None and workers == 0:
        return InProcess()
    if scheduler is None and workers is None:
        workers = local_cores()
    return DaskExecutor(workers, scheduler)
