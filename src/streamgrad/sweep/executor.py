"""One interface for running many independent tasks, and two backends behind it.

    with make_executor(workers, scheduler) as executor:
        outcomes = executor.run(tasks, running=..., finished=...)

- `InProcess` (workers = 0): the tasks one after another in this process.
- `DaskExecutor`: each task on a Dask distributed worker, either on a LocalCluster started
  here (`workers` processes of one thread each, each pinned to its own core where the system
  allows (workers.py), listening on 127.0.0.1 only) or on a running
  cluster (`scheduler` = "tcp://HOST:PORT", started with `dask scheduler` / `dask worker` or
  dask-jobqueue). When a worker dies (killed, out of memory), the scheduler gives its task to
  another worker: tasks must therefore be safe to start again (sweep tasks resume from their
  checkpoints, see task.py).

A task's exception does not stop the others: it becomes that task's `Outcome.error`. Dask is
imported only when a DaskExecutor is made. `map_tasks` is the form the experiments use: the
values in task order, or the first failure raised.
"""

from __future__ import annotations

import os
import queue
import threading
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
    """What became of a task: its return value, or `error` (one line) if it raised; `user`:
    the error was a UserError (a bad option or input, not a bug)."""

    key: str
    value: Any = None
    error: str | None = None
    user: bool = False


Running = Callable[[set[str]], None]
Finished = Callable[[Outcome], None]
# Options that choose where an experiment's tasks run, not what they compute: they are left
# out of a run's identity (run.json), since every executor gives bitwise the same results.
EXECUTOR_OPTIONS = ("workers", "scheduler")


def error_line(error: BaseException) -> str:
    """A user error's own message; anything else prefixed with its type (it is a bug, or the
    executor's: e.g. `KilledWorker: ...` when a task's workers kept dying)."""
    if isinstance(error, UserError):
        return str(error)
    return f"{type(error).__name__}: {error}".replace("\n", " ")


def failed(key: str, error: BaseException) -> Outcome:
    """The outcome of the task `key` that raised `error`."""
    return Outcome(key, error=error_line(error), user=isinstance(error, UserError))


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

    def close_in_background(self) -> threading.Thread:
        """Start `close` on a thread and return it, to be joined later: Dask's workers take a
        second or two to stop, which the caller can spend writing results."""
        thread = threading.Thread(target=self.close, name="streamgrad-executor-close")
        thread.start()
        return thread

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
                outcome = failed(task.key, error)
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
        if hasattr(os, "sched_setaffinity"):  # Linux: one core per worker, see workers.py
            from streamgrad.sweep.workers import PinToCore

            self.client.register_plugin(PinToCore(sorted(os.sched_getaffinity(0))))
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
                outcome = failed(key, error)
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


def map_tasks(
    tasks: Sequence[Task],
    workers: int | None = 0,
    scheduler: str | None = None,
    finished: Finished | None = None,
) -> list[Any]:
    """The tasks' values in task order, run on `make_executor(workers, scheduler)` (default: in
    this process; workers = 0 with a scheduler means the scheduler's cluster);
    `finished(outcome)` as each ends (e.g. to advance a progress bar). If tasks failed, the
    first one's error (in task order) is raised once all have ended: a UserError as it is,
    anything else as a RuntimeError naming the task."""
    if scheduler is not None and workers == 0:
        workers = None  # --scheduler alone, with the experiments' default --workers 0
    with make_executor(workers, scheduler) as executor:
        outcomes = executor.run(tasks, running=lambda keys: None, finished=finished or _ignore)
    by_key = {outcome.key: outcome for outcome in outcomes}
    for task in tasks:
        outcome = by_key[task.key]
        if outcome.error is not None and outcome.user:
            raise UserError(outcome.error)
        if outcome.error is not None:
            raise RuntimeError(f"task {task.key} failed: {outcome.error}")
    return [by_key[task.key].value for task in tasks]


def _ignore(outcome: Outcome) -> None:
    """A `finished` callback that does nothing."""
