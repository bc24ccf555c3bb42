"""A CSV or Parquet table read as a stream of validated batches, in constant memory.

`TableStream` reads the file that `tabular.read_table` reads whole, piece by piece
(`csv_table.csv_pieces`: blocks of lines; `parquet_table.parquet_pieces`: record batches of
row groups), checks each piece with `read_table`'s checks and one-line errors (file, row,
column, value; `skip_invalid`; strictly increasing time stamps, carried across pieces) and
joins the valid rows into batches of exactly the requested size, the chunks of the learner:

    stream = TableStream("big.parquet", "y")
    for inputs, targets in stream.batches(10_000):   # (10_000, d) float64, (10_000,)
        ...                                          # stream.position: where to resume

After each batch, `stream.position` (a `ReadPosition`, a few numbers) says where the next row
is in the file; a new `TableStream(..., position=...)` continues there without reading the
rows before it (a Parquet file from the row group holding it, a CSV file skipping the lines
unparsed). With task "auto" or "classification" a first pass reads the target column alone to
decide the task and count the classes, as `read_table` decides on the whole column.

Differences from `read_table`, which sees the whole file at once: the counts in an error
message ("N invalid cell(s) in total") are those of the piece the error is in; when several
rows are bad, the first one in file order is reported whatever its kind; and "auto" looks at
every row whose target is valid, also one that `skip_invalid` drops for another column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from streamgrad.data.columns import Columns
from streamgrad.data.csv_table import csv_pieces
from streamgrad.data.parquet_table import open_parquet, parquet_pieces
from streamgrad.data.tabular import (
    AUTO_MAX_CLASSES,
    CSV_SUFFIXES,
    MAX_CLASSES,
    Task,
    _class_labels,
    _invalid_rows,
    _resolve_columns,
    _suffix,
    check_arguments,
    used_columns,
)
from streamgrad.errors import DataError

FIRST_SKIPPED = 20
"""How many skipped row numbers a stream keeps (it counts all of them)."""


@dataclass
class ReadPosition:
    """Where a stream read in batches stands, after its last batch.

    row: the next row of the file to read (row numbers as in `tabular`).
    rows: the valid rows delivered so far (the steps of the stream).
    records: the rows read so far, valid or not.
    latest: the latest time stamp delivered (None before any, or without a time column).
    skipped: how many rows were skipped as invalid; first_skipped: the first of them.
    """

    row: int = 0
    rows: int = 0
    records: int = 0
    latest: float | None = None
    skipped: int = 0
    first_skipped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Valid:
    """The valid rows of the pieces read but not yet delivered, and the skipped ones."""

    inputs: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    stamps: list[np.ndarray] = field(default_factory=list)
    skipped: list[np.ndarray] = field(default_factory=list)
    count: int = 0

    def add(
        self, inputs: np.ndarray, targets: np.ndarray, rows: np.ndarray, stamps: np.ndarray
    ) -> None:
        for parts, part in zip(
            (self.inputs, self.targets, self.rows, self.stamps),
            (inputs, targets, rows, stamps),
            strict=True,
        ):
            parts.append(part)
        self.count += len(targets)

    def take(self, size: int) -> tuple[np.ndarray, ...]:
        """The first `size` rows: inputs, targets, rows, stamps (the rest stays)."""
        joined = [np.concatenate(parts) for parts in (self.inputs, self.targets, self.rows)]
        joined.append(np.concatenate(self.stamps))
        self.inputs, self.targets, self.rows, self.stamps = ([part[size:]] for part in joined)
        self.count -= size
        return tuple(part[:size] for part in joined)


class TableStream:
    """A table file read as validated batches; see the module docstring. The arguments are
    `read_table`'s, plus `position` (a `ReadPosition.as_dict()`, to continue a stream),
    `piece_rows` (records per Parquet piece) and `piece_bytes` (bytes per CSV piece).
    `records`: the number of records of a Parquet file (from its metadata; None for CSV), at
    least the number of steps, for a progress bar."""

    def __init__(
        self,
        path: str | Path,
        target: str,
        inputs: Sequence[str] | None = None,
        *,
        time: str | None = None,
        task: Task = "auto",
        skip_invalid: bool = False,
        position: dict | None = None,
        piece_rows: int = 1 << 16,
        piece_bytes: int = 1 << 22,
    ) -> None:
        check_arguments(task, inputs)
        self.path, self.target, self.task, self.time = Path(path), target, task, time
        self.skip, self.piece_rows, self.piece_bytes = skip_invalid, piece_rows, piece_bytes
        self.csv = _suffix(self.path) in CSV_SUFFIXES
        self.first_row = 2 if self.csv else 1
        table = next(self._pieces(self.first_row, None)).table
        self.source, self.target_name = table.file, target
        self.input_names = tuple(_resolve_columns(table, target, inputs, time))
        self.used = sorted(
            {target, *self.input_names, *([time] if time else [])}, key=table.names.index
        )
        self.n_classes = None if task == "regression" else self._count_classes()
        self.position = ReadPosition(**position) if position else ReadPosition(self.first_row)
        self.records = None if self.csv else open_parquet(self.path).metadata.num_rows

    @property
    def input_dim(self) -> int:
        return len(self.input_names)

    def batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(inputs (size, d) float64, targets (size,)) from `position` on, the last batch
        shorter; targets are float64, or int64 class labels. `position` is moved past each
        batch before it is given."""
        valid = _Valid()
        pieces = self._pieces(self.position.row, self.used) if self.position.row > 0 else []
        for piece in pieces:
            self._check(piece, valid)
            while valid.count >= size:
                yield self._deliver(valid, size)
        self.position.row = -1  # the end of the file: nothing left to read
        if valid.count:
            yield self._deliver(valid, valid.count)
        self._commit_skipped(valid, None)
        if not self.position.rows:
            raise DataError(
                f"no valid rows: all {self.position.records} data rows have an empty, "
                "non-numeric, NaN or infinite value",
                file=self.source,
            )

    def count_up_to(self, rows: int) -> int:
        """The number of valid rows from `position` on, counting no further than `rows` (and
        reading no further than needed); `position` is left as it was."""
        saved = ReadPosition(**self.position.as_dict())
        batches = self.batches(rows)
        try:
            return len(next(batches, (None, ()))[1])
        finally:
            batches.close()
            self.position = saved

    def _pieces(self, start_row: int, columns: Sequence[str] | None) -> Iterator[Columns]:
        if self.csv:
            suffix = _suffix(self.path)
            return csv_pieces(self.path, suffix, start_row=start_row, block_bytes=self.piece_bytes)
        return parquet_pieces(self.path, columns, start_row=start_row, batch_rows=self.piece_rows)

    def _check(self, piece: Columns, valid: _Valid) -> None:
        """Validate one piece and add its valid rows to `valid` (or raise, unless skipping)."""
        table = piece.table
        used, columns, values = used_columns(piece, self.target, list(self.input_names), self.time)
        latest = self.position.latest
        if valid.count and self.time:
            latest = float(valid.stamps[-1][-1]) if len(valid.stamps[-1]) else latest
        after = -np.inf if latest is None else latest
        by_name = dict(zip(used, columns, strict=True))
        bad = _invalid_rows(table, by_name, values, self.time, self.skip, after)
        kept = np.flatnonzero(~bad)
        t = used.index(self.target)
        targets = values[kept, t]
        if self.n_classes is not None:
            targets = _class_labels(targets, kept, columns[t], table, self.target, self.task)
        inputs = values[np.ix_(kept, [used.index(n) for n in self.input_names])]
        stamps = values[kept, used.index(self.time)] if self.time else np.zeros(len(kept))
        valid.add(inputs, targets, table.rows[kept], stamps)
        valid.skipped.append(table.rows[bad])
        self.position.records += len(table)

    def _deliver(self, valid: _Valid, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Take a batch and move `position` past its last row."""
        inputs, targets, rows, stamps = valid.take(size)
        last = int(rows[-1])
        self._commit_skipped(valid, last)
        if self.position.row != -1:
            self.position.row = last + 1
        self.position.rows += len(targets)
        self.position.latest = float(stamps[-1]) if self.time else None
        return inputs, targets

    def _commit_skipped(self, valid: _Valid, before: int | None) -> None:
        """Count the skipped rows before row `before` (all for None) as passed."""
        skipped = np.concatenate(valid.skipped) if valid.skipped else np.zeros(0, int)
        passed = skipped if before is None else skipped[skipped < before]
        valid.skipped = [skipped[len(passed) :]]
        self.position.skipped += len(passed)
        room = FIRST_SKIPPED - len(self.position.first_skipped)
        self.position.first_skipped += [int(r) for r in passed[:room]]

    def _count_classes(self) -> int | None:
        """A pass over the target column: the number of classes, or None for regression
        (task "auto" with a non-integer value or more than AUTO_MAX_CLASSES values)."""
        seen: set[float] = set()
        top = -np.inf
        for piece in self._pieces(self.first_row, [self.target]):
            column = piece.column(self.target)
            finite = np.isfinite(column.values)
            values = column.values[finite]
            if self.task == "auto":
                seen.update(np.unique(values).tolist())
                if not column.integer()[finite].all() or len(seen) > AUTO_MAX_CLASSES:
                    return None
            bad = (values != np.floor(values)) | (values < 0) | (values >= MAX_CLASSES)
            if bad.any():  # raise the located error
                table = piece.table
                _class_labels(values, np.flatnonzero(finite), column, table, self.target, self.task)
            top = max(top, float(values.max(initial=-np.inf)))
        return int(top) + 1 if np.isfinite(top) else 1
