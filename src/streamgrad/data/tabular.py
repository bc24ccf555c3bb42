"""Read and write a stream stored as a CSV or Parquet table.

A table holds one example per row: the input columns x_k (d of them) and one target
column y_k, for k = 0, ..., T-1 in row order. `read_table` validates every cell it uses
and reports the first problem on one line, as a `DataError` naming the file, the row,
the column and the offending value (through the shared layer in `data.table`).

Row numbers (in error messages and in `Stream.skipped_rows`) are 1-based:

* CSV/TSV/TXT: the line number in the file. The header is row 1, so the first data row
  is row 2. Blank lines are not records and are ignored, but they are counted, so row
  numbers always equal the line numbers an editor shows.
* Parquet: the record index, counting from 1 (the first record is row 1; Parquet has
  no header row).

Layout: `csv_table` parses text files, `parquet_table` Parquet files, both into the
numeric `columns.Columns` that `read_table` checks and turns into a `Stream`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from streamgrad.data.columns import Column, Columns, as_time
from streamgrad.data.csv_table import load_csv
from streamgrad.data.dataset import Stream
from streamgrad.data.parquet_table import load_parquet
from streamgrad.data.table import (
    GZIP_SUFFIX,
    Issue,
    Table,
    check_file,
    enforce,
    format_suffix,
    matrix_issue,
    read_source,
    time_order,
)
from streamgrad.errors import DataError, UserError

Task = Literal["regression", "classification", "auto"]

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
"""Text formats; each may also be gzip-compressed (`t.csv.gz`)."""
PARQUET_SUFFIXES = (".parquet", ".pq")
AUTO_MAX_CLASSES = 20
"""task="auto" reads an integer target with at most this many distinct values as labels."""
MAX_CLASSES = 2**20
SKIP_OPTION = "--skip-invalid (Python: skip_invalid=True)"
"""How messages name the option: by its command-line flag, and the `read_table` parameter."""
"""Class labels must be below this (a guard against a stray huge label)."""


def read_table(
    path: str | Path,
    target: str,
    inputs: Sequence[str] | None = None,
    *,
    task: Task = "auto",
    skip_invalid: bool = False,
    time: str | None = None,
) -> Stream:
    """Read a stream from a CSV (.csv, .txt, .tsv, each optionally .gz) or Parquet (.parquet,
    .pq) file.

    Returns a `Stream` with inputs (T, d) float64 (the `inputs` columns, in the order
    given; `None` means every column except the target, in file order) and targets (T,):
    float64 for regression, int64 class labels for classification.

    CSV: UTF-8 text (a byte-order mark is allowed), header on line 1, delimiter sniffed
    among ',', ';' and tab, '"' quotes fields. Header names are stripped of surrounding
    whitespace. Cells are parsed as decimal numbers (surrounding whitespace allowed).
    A gzip-compressed file reads like the plain one. Parquet: integer, float, boolean and
    decimal columns are numbers; string columns are parsed like CSV cells; any other type
    is an error. Row numbers are as in the module docstring.

    task:
        "regression": targets are float64.
        "classification": every target must be an integer >= 0 (1.0 is fine, 1.5 is not);
            n_classes = max(target) + 1.
        "auto": classification if the target column is integer-typed (every cell an
            integer literal in CSV, an integer type in Parquet) and has at most
            `AUTO_MAX_CLASSES` (20) distinct values; regression otherwise.

    time: optional time-stamp column: numbers (e.g. seconds), ISO 8601 dates or date-times
        (``1987-05-21``, ``2024-01-02T10:00:00``; without an offset read as UTC) or a
        Parquet timestamp/date column (see `columns.as_time`). It is validated, not used as
        an input (unless listed in `inputs`, as numbers; dates may not be inputs): stamps
        must be strictly increasing (the strict time order of `data.table`), and the first
        duplicated or earlier stamp raises, naming its row and the previous stamp.

    Messages name options by their command-line flag (`streamgrad train`), followed by the
    parameter of this function: --skip-invalid is `skip_invalid`, --task is `task`.

    skip_invalid: rows with an empty, non-numeric, NaN or infinite value in a used column,
        or a time stamp not after every earlier one, are dropped and their row numbers
        recorded in `Stream.skipped_rows`; by default the first such cell raises. No row
        is ever dropped otherwise (blank lines of a CSV file are not rows).

    Raises:
        DataError: the file or a cell cannot be used; the one-line message names the
            file, row, column and value where known.
        UserError: an invalid argument (`task`, `inputs` given as one string).
    """
    check_arguments(task, inputs)
    loaded = _load(Path(path))
    input_names = _resolve_columns(loaded.table, target, inputs, time)
    return _stream(loaded, target, input_names, task, time, skip_invalid)


def check_arguments(task: Task, inputs: Sequence[str] | None) -> None:
    """Refuse an unknown `task`, and `inputs` given as one string (see `read_table`)."""
    if task not in ("regression", "classification", "auto"):
        raise UserError(f"task must be 'regression', 'classification' or 'auto', not {task!r}")
    if isinstance(inputs, str):
        raise UserError(f"inputs must be a list of column names, not the string {inputs!r}")


def _load(path: Path) -> Columns:
    check_file(path)
    suffix = _suffix(path)
    return load_csv(read_source(path), suffix) if suffix in CSV_SUFFIXES else load_parquet(path)


def _stream(
    loaded: Columns, target: str, input_names: list[str], task: Task, time: str | None, skip: bool
) -> Stream:
    """The checked `Stream` of the target and input columns (see `read_table`)."""
    table = loaded.table
    used, columns, values = used_columns(loaded, target, input_names, time)
    bad_rows = _invalid_rows(table, dict(zip(used, columns, strict=True)), values, time, skip)
    kept = np.flatnonzero(~bad_rows)
    if kept.size == 0:
        raise DataError(
            f"no valid rows: all {len(bad_rows)} data rows have an empty, non-numeric, "
            "NaN or infinite value",
            file=table.file,
        )
    inputs_array = np.ascontiguousarray(values[np.ix_(kept, [used.index(n) for n in input_names])])
    t = used.index(target)
    targets = values[kept, t]
    is_labels = task == "classification" or (
        task == "auto"
        and bool(columns[t].integer()[kept].all())
        and np.unique(targets).size <= AUTO_MAX_CLASSES
    )
    n_classes: int | None = None
    if is_labels:
        targets = _class_labels(targets, kept, columns[t], table, target, task)
        n_classes = int(targets.max()) + 1
    return Stream(
        inputs=inputs_array,
        targets=targets,
        input_names=tuple(input_names),
        target_name=target,
        n_classes=n_classes,
        source=table.file,
        skipped_rows=tuple(int(r) for r in table.rows[bad_rows]),
    )


def used_columns(
    loaded: Columns, target: str, input_names: list[str], time: str | None
) -> tuple[list[str], list[Column], np.ndarray]:
    """The used columns' names and `Column`s in file order, and their values (n, used)."""
    table = loaded.table
    used = sorted({target, *input_names, *([time] if time else [])}, key=table.names.index)
    columns = [as_time(loaded.column(n)) if n == time else loaded.column(n) for n in used]
    for name, column in zip(used, columns, strict=True):
        if column.instants and (name != time or name in input_names):
            raise DataError(
                "is not numeric but dates or times, which only the time column may hold",
                file=table.file,
                column=name,
            )
    return used, columns, np.stack([c.values for c in columns], axis=1)


def _invalid_rows(
    table: Table,
    columns: dict[str, Column],
    values: np.ndarray,
    time: str | None,
    skip: bool,
    after: float = -np.inf,
) -> np.ndarray:
    """(n,) bool: rows with a used cell that is not valid (a finite number, or a time stamp)
    or, given a `time` column, a stamp that is not after every earlier valid stamp. Unless
    `skip`, the first bad cell raises; then, with every cell valid, the first stamp out of
    order. `columns` are the used columns by name, in file order, as `values` (n, used);
    `after`: the latest valid stamp before these rows (of earlier batches of the file)."""
    used = list(columns)
    bad = ~np.isfinite(values)
    n_bad = int(bad.sum())
    cells = matrix_issue(
        table,
        bad,
        [table.names.index(name) for name in used],
        lambda i, j: (
            f"{columns[table.names[j]].problem(i)} ({n_bad} invalid cell(s) in total; "
            f"{SKIP_OPTION} drops such rows)"
        ),
    )
    invalid = enforce([cells], skip)
    if time is None:
        return invalid
    stamps = values[:, used.index(time)]
    late, previous = time_order(stamps, ~invalid, strict=True, after=after)
    n_late = int(late.sum())

    def problem(i: int) -> str:
        kind = "duplicated time stamp" if stamps[i] == previous[i] else "time stamps go back"
        return (
            f"{kind}: not after the previous {columns[time].show(previous[i])} ({n_late} such "
            "row(s); "
            f"{SKIP_OPTION} drops them)"
        )

    column = np.full(len(late), table.names.index(time))
    return invalid | enforce([Issue(table, late, column, problem)], skip)


def _class_labels(
    values: np.ndarray, kept: np.ndarray, column: Column, table: Table, target: str, task: Task
) -> np.ndarray:
    """The target values (T,) as int64 labels, checking each is an integer in [0, MAX_CLASSES).

    `kept` (T,) holds the record index of each value, to name the row of a bad label.
    """
    bad = (values != np.floor(values)) | (values < 0) | (values >= MAX_CLASSES)
    if bad.any():
        i = int(kept[np.argmax(bad)])
        problem = f"class labels must be integers in [0, {MAX_CLASSES})"
        if task == "auto":
            problem += (
                f" (--task auto reads an integer column with <= {AUTO_MAX_CLASSES} distinct "
                "values as class labels; pass --task regression (Python: task='regression') "
                "to read it as numbers)"
            )
        raise table.error(problem, i, table.names.index(target))
    return values.astype(np.int64)


def write_table(stream: Stream, path: str | Path) -> None:
    """Write `stream` as a table: the input columns, then the target column (last).

    The format follows the suffix, as in `read_table`: .csv/.txt (comma), .tsv (tab),
    each gzip-compressed when the name ends in .gz, .parquet/.pq. Floats are written with
    full precision, so `read_table` gives back the same arrays (class labels are written
    as integers).

    Raises:
        DataError: unknown suffix, clashing column names, or the file cannot be written.
    """
    file = str(path)
    path = Path(path)
    suffix = _suffix(path)
    names = [*stream.input_names, stream.target_name]
    if len(stream.input_names) != stream.input_dim:
        raise DataError(
            f"stream has {stream.input_dim} input columns but {len(stream.input_names)} names",
            file=file,
        )
    if len(set(names)) != len(names):
        raise DataError(f"column names are not unique: {names}", file=file)
    columns = [stream.inputs[:, j] for j in range(stream.input_dim)] + [stream.targets]
    try:
        if suffix in CSV_SUFFIXES:  # pandas compresses a name ending in .gz
            frame = pd.DataFrame(dict(zip(names, columns, strict=True)))
            frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
        else:
            pq.write_table(pa.table(dict(zip(names, columns, strict=True))), path)
    except OSError as e:
        raise DataError(f"cannot write: {e.strerror or e}", file=file) from None


def _suffix(path: Path) -> str:
    """The lower-case format suffix: '.csv' for 't.csv' and 't.csv.gz'. Only the text
    formats may be gzip-compressed (Parquet compresses its columns itself)."""
    suffix = format_suffix(path).lower()
    compressed = path.name.lower().endswith(GZIP_SUFFIX)
    if suffix in CSV_SUFFIXES or (suffix in PARQUET_SUFFIXES and not compressed):
        return suffix
    written = format_suffix(path) + path.name[-len(GZIP_SUFFIX) :] if compressed else path.suffix
    raise DataError(
        f"unknown file type {written!r}: expected one of "
        + ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
        + f" (the first {len(CSV_SUFFIXES)} also gzip-compressed, as name.csv.gz)",
        file=str(path),
    )


def _resolve_columns(
    table: Table, target: str, inputs: Sequence[str] | None, time: str | None = None
) -> list[str]:
    """Check the target, time and input columns exist and are distinct; return the input
    names (by default every column but the target and the time column)."""
    names, file = table.names, table.file

    def missing(name: str, role: str) -> DataError:
        hint = ""
        if table.header_row is not None and all(_is_number(n) for n in names):
            hint = f" (row {table.header_row} looks like data: is the header row missing?)"
        available = ", ".join(repr(n) for n in names)
        return DataError(
            f"no {role} column of that name; available columns: {available}{hint}",
            file=file,
            row=table.header_row,
            column=name,
        )

    if target not in names:
        raise missing(target, "target")
    if time is not None and time not in names:
        raise missing(time, "time")
    if time == target:
        raise DataError("is both the target and the time column", file=file, column=time)
    if inputs is None:
        input_names = [n for n in names if n not in (target, time)]
        if not input_names:
            raise DataError("no input columns left: the only column is the target", file=file)
        return input_names
    input_names = list(inputs)
    if not input_names:
        raise DataError("no input columns given", file=file)
    seen: set[str] = set()
    for name in input_names:
        if name == target:
            raise DataError("is both the target and an input column", file=file, column=name)
        if name in seen:
            raise DataError("input column is listed twice", file=file, column=name)
        if name not in names:
            raise missing(name, "input")
        seen.add(name)
    return input_names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
