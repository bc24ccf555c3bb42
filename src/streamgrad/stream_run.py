"""`streamgrad train` on a table file of any length, in constant memory.

The file is read as validated batches (`data.batches.TableStream`), standardised on the fly
when asked (`data.standardize.Standardizer`), walked chunk by chunk by
`OnlineLearner.fit_stream` beside the task's naive baselines, and every step's loss and output
goes to disk as it is produced (`step_log.StepLog`: steps.parquet, metrics.csv). Nothing of
length T is kept: a checkpoint holds the learner state, the standardiser's running moments,
the reader's position in the file, the walk's running metrics, the baselines' state and the
committed length of the output files. A run killed at any moment and continued with `resume`
reads the file from the checkpoint's row and writes exactly what the uninterrupted run writes
(same steps.parquet values, metrics.csv and parameters, bitwise). Every number equals that of
`training.train_on_stream` on the same file read whole (same chunks, same float64 standardised
inputs, same baselines).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamgrad.baselines import naive_baselines
from streamgrad.checkpoint import load_checkpoint, object_state, restore_object, save_checkpoint
from streamgrad.config import TrainConfig
from streamgrad.data.batches import ReadPosition, TableStream
from streamgrad.data.standardize import Standardizer
from streamgrad.metrics import LogLoss, Mean
from streamgrad.online import Chunk, History, LearnerState, LrBackoff, OnlineLearner, Walk
from streamgrad.reporting import plot_losses
from streamgrad.step_log import StepLog, read_back
from streamgrad.training import build_learner, check_long_enough, run_summary, skill


@dataclass
class StreamedRun:
    """A finished streamed run: its summary and final learner state."""

    label: str
    summary: dict[str, Any]
    state: LearnerState


class _Run:
    """The state of a streamed run besides the learner's, and its checkpoints (see the
    module docstring)."""

    def __init__(
        self, folder: Path, table: TableStream, learner: OnlineLearner, config: TrainConfig
    ) -> None:
        self.folder, self.table, self.learner = folder, table, learner
        self.baselines = naive_baselines(table.n_classes)
        self.standardizer = Standardizer(table.input_dim) if config.standardize else None
        self.walk = Walk()
        self.log: StepLog | None = None
        self.saved = 0

    def batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The table's batches of `size` rows, with standardised inputs when asked."""
        for inputs, targets in self.table.batches(size):
            yield (self.standardizer(inputs) if self.standardizer else inputs), targets

    def record(self, chunk: Chunk) -> None:
        """Run the baselines on a chunk and write its steps."""
        learners = {"": (chunk.losses, chunk.outputs)}
        for name, baseline in self.baselines.items():
            outputs, losses = baseline.learn_many(None, chunk.targets)
            learners[name] = (losses, outputs)
        assert self.log is not None
        self.log.write(chunk.record, learners, chunk.targets)

    def save(self, state: LearnerState, expect: dict[str, Any]) -> None:
        """Commit the output files, then checkpoint everything the run continues from."""
        assert self.log is not None and self.walk.shown is not None
        metadata = {
            **expect,
            "position": self.walk.step,
            "reader": self.table.position.as_dict(),
            "wall_seconds": self.walk.wall_seconds,
            "backoffs": [list(b) for b in self.walk.backoffs],
            "running": object_state(self.walk.running),
            "shown": object_state(self.walk.shown),
            "baselines": {name: object_state(b) for name, b in self.baselines.items()},
            "log": self.log.commit(),
        }
        tree = (state, self.standardizer.state() if self.standardizer else {})
        save_checkpoint(self.folder / "checkpoints", tree, metadata=metadata, step=self.walk.step)
        self.saved = self.walk.step

    def restore(self, template: LearnerState, label: str, expect: dict[str, Any]) -> LearnerState:
        """Continue from the newest valid checkpoint (refusing one whose `expect` differ)."""
        moments = self.standardizer.state() if self.standardizer else {}
        (state, moments), meta = load_checkpoint(
            self.folder / "checkpoints", (template, moments), expect=expect
        )
        if self.standardizer:
            self.standardizer.restore(moments)
        self.table.position = ReadPosition(**meta["reader"])
        shown = LogLoss() if self.learner.classification else Mean()
        self.walk = Walk(
            int(meta["position"]),
            float(meta["wall_seconds"]),
            [(int(step), float(scale)) for step, scale in meta["backoffs"]],
            restore_object(Mean(), meta["running"]),
            restore_object(shown, meta["shown"]),
        )
        for name, baseline in self.baselines.items():
            restore_object(baseline, meta["baselines"][name])
        self.log = StepLog(self.folder, label, meta["log"])
        self.saved = self.walk.step
        return state


def train_table(
    config: TrainConfig,
    table: TableStream,
    folder: Path,
    *,
    label: str | None = None,
    progress: bool = False,
    checkpoint_every: int = 50_000,
    resume: bool = False,
    expect: dict[str, Any] | None = None,
) -> StreamedRun:
    """Prequential online training over the table, streamed, into the run folder `folder`:
    steps.parquet, metrics.csv, loss.png and checkpoints/ (at the first chunk end after every
    `checkpoint_every` steps, and at the end, with `expect`: config and data hashes). With
    `resume`, continue from the newest valid checkpoint. Returns the summary (as
    `train_on_stream`'s: metrics over the whole stream and its last 10%, read back from
    steps.parquet; steps/s; back-offs; the baselines and the model's skill)."""
    label = label or config.algorithm_spec
    expect = expect or {}
    learner, state = build_learner(config, table.input_dim, table.n_classes)
    run = _Run(folder, table, learner, config)
    if resume:
        state = run.restore(state, label, expect)
    else:
        check_table(config, table, learner)
        run.log = StepLog(folder, label, None)
    walked = learner.fit_stream(
        state,
        run.batches(config.chunk),
        chunk_size=config.chunk,
        walk=run.walk,
        total=table.records,
        progress=progress,
        description=label,
        backoff=config.lr_backoff and LrBackoff(config.lr_backoff, config.max_backoffs),
    )
    for state, chunk in walked:  # the last state is the result
        run.record(chunk)
        if run.walk.step - run.saved >= checkpoint_every:
            run.save(state, expect)
    if run.saved < run.walk.step:
        run.save(state, expect)
    return StreamedRun(label, _summary(run, config, label), state)


def check_table(
    config: TrainConfig, table: TableStream, learner: OnlineLearner | None = None
) -> None:
    """Raise before anything is written when the table cannot be trained on: fewer valid rows
    than one truncation window (read only that far), or a problem in those rows."""
    if learner is None:
        learner, _ = build_learner(config, table.input_dim, table.n_classes)
    window = learner.algorithm.tau or 1
    check_long_enough(learner, config, table.count_up_to(window), table.source)


def _summary(run: _Run, config: TrainConfig, label: str) -> dict[str, Any]:
    """The run's summary from its steps on disk; draws loss.png."""
    names = list(run.baselines)
    found = read_back(run.folder, ["", *names], run.table.n_classes)
    walk = run.walk
    summary = {
        "label": label,
        "algorithm": run.learner.algorithm.name,
        "config": config.model_dump(),
    }
    summary.update(run_summary(walk.step, found.stretches(""), walk.wall_seconds, walk.backoffs))
    model_loss = summary["last_10_percent"]["loss"]
    summary.update(skill(model_loss, {name: found.stretches(name) for name in names}))
    width = found.curves[""].width
    plot_losses(
        run.folder / "loss.png",
        {label: History(found.curves[""].means, np.zeros((0, 1)), [], walk.wall_seconds)},
        title=f"{Path(run.table.source).name}: prequential loss of {label}",
        log_scale=run.table.n_classes is None,
        baselines={name: found.curves[name].means for name in names},
        stride=width,
    )
    return summary
