"""Per-step results of a streamed run written to disk as they are produced.

In the run folder:

    steps.parquet/   a Parquet dataset (read it with `pandas.read_parquet("steps.parquet")`):
                     part-<first step:012d>.parquet files, one row group per chunk, one row
                     per step: loss, output_0..output_{K-1}, target, and for each naive
                     baseline "<name> loss" and "<name> output_j"
    metrics.csv      one row per chunk (the `ChunkRecord`), appended as chunks end

A part file is written under a temporary name and renamed when it is committed (`commit`,
before every checkpoint), so the files with a final name hold exactly the steps before the
newest commit. `StepLog(..., committed=...)` continues a run from a checkpoint: it removes
the parts and the metrics rows written after it, so a resumed run writes exactly what an
uninterrupted one would have. Memory: one chunk at a time.

`read_back` then walks the steps once to give the metrics over the whole stream and over its
last 10% (`StreamMetrics`) and a curve of mean losses over at most `CURVE_POINTS` bins, for
the model and each baseline.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from streamgrad.data.parquet_table import open_parquet, record_batches
from streamgrad.metrics import StreamMetrics
from streamgrad.online import ChunkRecord

STEPS = "steps.parquet"
METRICS = "metrics.csv"
CURVE_POINTS = 2000
MODEL = ""  # the model's columns have no prefix


def _columns(prefix: str, losses: np.ndarray, outputs: np.ndarray) -> dict[str, np.ndarray]:
    """The loss and output columns of one learner: "<prefix>loss", "<prefix>output_j"."""
    columns = {f"{prefix}loss": losses}
    columns.update({f"{prefix}output_{j}": outputs[:, j] for j in range(outputs.shape[1])})
    return columns


def _prefix(name: str) -> str:
    return f"{name} " if name else MODEL


class StepLog:
    """Writer of a run's steps.parquet and metrics.csv; see the module docstring.

    folder: the run folder; label: the run's name in metrics.csv; committed: the `commit()`
    of the checkpoint to continue from (None for a new run, which clears earlier files).
    """

    def __init__(self, folder: Path, label: str, committed: Mapping[str, int] | None) -> None:
        self.folder, self.label = folder, label
        self.steps, self.metrics = folder / STEPS, folder / METRICS
        self._writer: pq.ParquetWriter | None = None
        self._part: Path | None = None
        if committed is None:
            shutil.rmtree(self.steps, ignore_errors=True)
            self.steps.mkdir(parents=True)
            self.position = 0
            header = pd.DataFrame(columns=["method", *ChunkRecord._fields])
            self.metrics.write_text(header.to_csv(index=False))
        else:
            self.position = int(committed["steps"])
            parts = _parts(self.steps)
            for path in self.steps.iterdir():
                if parts.get(path, self.position) >= self.position:
                    path.unlink()
            os.truncate(self.metrics, int(committed["metrics_bytes"]))

    def write(
        self,
        record: ChunkRecord,
        learners: Mapping[str, tuple[np.ndarray, np.ndarray]],
        targets: np.ndarray,
    ) -> None:
        """Append one chunk: its record, and (losses (C,), outputs (C, K)) of the model
        (name "") and of each baseline, by name, with the targets (C,)."""
        columns: dict[str, np.ndarray] = {}
        for name, (losses, outputs) in learners.items():
            columns.update(_columns(_prefix(name), losses, outputs))
        columns["target"] = targets
        table = pa.table(columns)
        if self._writer is None:
            self._part = self.steps / f"part-{self.position:012d}.parquet"
            self._writer = pq.ParquetWriter(self._temporary, table.schema)
        self._writer.write_table(table)
        self.position += len(targets)
        row = pd.DataFrame([record]).assign(method=self.label)
        with open(self.metrics, "a") as file:
            file.write(row[["method", *ChunkRecord._fields]].to_csv(header=False, index=False))

    @property
    def _temporary(self) -> Path:
        assert self._part is not None
        return self._part.with_name(f".{self._part.name}.tmp")

    def commit(self) -> dict[str, int]:
        """Make everything written so far durable; returns what a checkpoint stores."""
        if self._writer is not None:
            self._writer.close()
            with open(self._temporary, "rb+") as file:
                os.fsync(file.fileno())
            os.replace(self._temporary, self._part)
            self._writer = None
        with open(self.metrics, "rb+") as file:
            os.fsync(file.fileno())
        return {"steps": self.position, "metrics_bytes": self.metrics.stat().st_size}


def _parts(steps: Path) -> dict[Path, int]:
    """The committed part files in `steps`, in step order, with the first step of each."""
    names = sorted(steps.glob("part-*.parquet"))
    return {path: int(path.name.removeprefix("part-").removesuffix(".parquet")) for path in names}


@dataclass
class Curve:
    """Mean loss over consecutive bins of `width` steps (the last one may be shorter)."""

    width: int
    sums: np.ndarray
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros_like(self.sums)

    def add(self, begin: int, losses: np.ndarray) -> None:
        bins = (begin + np.arange(len(losses))) // self.width
        self.sums += np.bincount(bins, losses, minlength=len(self.sums))
        self.counts += np.bincount(bins, minlength=len(self.sums))

    @property
    def means(self) -> np.ndarray:
        return self.sums / np.maximum(self.counts, 1)


@dataclass
class ReadBack:
    """What `read_back` finds: by learner name ("" for the model), the metrics over all steps
    and over the last 10%, and the loss curve."""

    overall: dict[str, StreamMetrics]
    last_10_percent: dict[str, StreamMetrics]
    curves: dict[str, Curve]

    def stretches(self, name: str) -> dict[str, Any]:
        return {
            "overall": self.overall[name].get(),
            "last_10_percent": self.last_10_percent[name].get(),
        }


def read_back(folder: Path, names: list[str], n_classes: int | None) -> ReadBack:
    """One pass over the steps of the run in `folder` for the learners `names`."""
    paths = list(_parts(folder / STEPS))
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    tail = total - max(1, total // 10)
    width = max(1, -(-total // CURVE_POINTS))
    found = ReadBack(
        {n: StreamMetrics(n_classes) for n in names},
        {n: StreamMetrics(n_classes) for n in names},
        {n: Curve(width, np.zeros(-(-total // width))) for n in names},
    )
    begin = 0
    for path in paths:
        for batch in record_batches(open_parquet(path)):
            targets = batch.column("target").to_numpy()
            for name in names:
                losses, outputs = _learner(batch, _prefix(name))
                found.overall[name].update(losses, outputs, targets)
                late = slice(max(0, tail - begin), None)
                found.last_10_percent[name].update(losses[late], outputs[late], targets[late])
                found.curves[name].add(begin, losses)
            begin += batch.num_rows
    return found


def _learner(batch: pa.RecordBatch, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(losses (n,), outputs (n, K)) of one learner in a batch of steps."""
    width = sum(1 for name in batch.schema.names if name.startswith(f"{prefix}output_"))
    outputs = [batch.column(f"{prefix}output_{j}").to_numpy() for j in range(width)]
    return batch.column(f"{prefix}loss").to_numpy(), np.stack(outputs, axis=1)
