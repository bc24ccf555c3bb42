"""Read and write a stream stored as a CSV or Parquet table.

A table holds one example per row: the input columns x_k (d of them) and one target
column y_k, for k = 0, ..., T-1 in row order. `read_table` validates every cell it uses
and reports the first problem on one line, as a `DataError` naming the file, the row,
the column and the offending value.

Row numbers (in error messages and in `Stream.skipped_rows`) are 1-based:

* CSV/TSV/TXT: the line number in the file. The header is row 1, so the first data row
  is row 2. Blank lines are not records and are ignored, but they are counted, so row
  numbers always equal the line numbers an editor shows.
* Parquet: the record index, counting from 1 (the first record is row 1; Parquet has
  no header row).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from streamgrad.data.dataset import Stream
from streamgrad.errors import DataError, UserError

Task = Literal["regression", "classification", "auto"]

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
DELIMITERS = (",", ";", "\t")
AUTO_MAX_CLASSES = 20
"""task="auto" reads an integer target with at most this many distinct values as labels."""
MAX_CLASSES = 2**20
"""Class labels must be below this (a guard against a stray huge label)."""

_SNIFF_CHARS = 65_536
_SNIFF_LINES = 20
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
_INTEGER = r"\s*[+-]?\d+\s*"
_NAN_WORDS = frozenset({"nan", "+nan", "-nan", "na", "n/a", "null", "none"})
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")
_EXPECTED_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


@dataclass(frozen=True)
class _Column:
    """One column of n records, converted to numbers.

    values:  (n,) float64; NaN or ±inf where the cell is not a finite number.
    integer: () -> (n,) bool; True where the stored cell is an integer (for task="auto").
    cell:    i -> the i-th cell as stored in the file, for messages.
    problem: i -> why the i-th cell is invalid (called only where values[i] is not finite).
    """

    values: np.ndarray
    integer: Callable[[], np.ndarray]
    cell: Callable[[int], object]
    problem: Callable[[int], str]


@dataclass(frozen=True)
class _Table:
    """Column names (file order), 1-based row numbers (n,) and a column loader."""

    names: list[str]
    rows: np.ndarray
    header_row: int | None
    column: Callable[[str], _Column]


def read_table(
    path: str | Path,
    target: str,
    inputs: Sequence[str] | None = None,
    *,
    task: Task = "auto",
    skip_invalid: bool = False,
    time: str | None = None,
) -> Stream:
    """Read a stream from a CSV (.csv, .txt, .tsv) or Parquet (.parquet, .pq) file.

    Returns a `Stream` with inputs (T, d) float64 (the `inputs` columns, in the order
    given; `None` means every column except the target, in file order) and targets (T,):
    float64 for regression, int64 class labels for classification.

    CSV: UTF-8 text (a byte-order mark is allowed), header on line 1, delimiter sniffed
    among ',', ';' and tab, '"' quotes fields. Header names are stripped of surrounding
    whitespace. Cells are parsed as decimal numbers (surrounding whitespace allowed).
    Parquet: integer, float, boolean and decimal columns are numbers; string columns are
    parsed like CSV cells; any other type is an error.

    task:
        "regression": targets are float64.
        "classification": every target must be an integer >= 0 (1.0 is fine, 1.5 is not);
            n_classes = max(target) + 1.
        "auto": classification if the target column is integer-typed (every cell an
            integer literal in CSV, an integer type in Parquet) and has at most
            `AUTO_MAX_CLASSES` (20) distinct values; regression otherwise.

    time: optional time-stamp column (numeric, e.g. seconds). It is validated, not used as
        an input (unless listed in `inputs`): stamps must be strictly increasing, and the
        first duplicated or earlier stamp raises, naming its row and the previous stamp.

    skip_invalid: rows with an empty, non-numeric, NaN or infinite value in a used column,
        or a time stamp not after every earlier one, are dropped and their row numbers
        recorded in `Stream.skipped_rows`; by default the first such cell raises. No row
        is ever dropped otherwise (blank lines of a CSV file are not rows).

    Row numbers are 1-based: the line number for CSV (header = row 1, first data row =
    row 2), the record index for Parquet (first record = row 1).

    Raises:
        DataError: the file or a cell cannot be used; the one-line message names the
            file, row, column and value where known.
        UserError: an invalid argument (`task`, `inputs` given as one string).
    """
    if task not in ("regression", "classification", "auto"):
        raise UserError(f"task must be 'regression', 'classification' or 'auto', not {task!r}")
    if isinstance(inputs, str):
        raise UserError(f"inputs must be a list of column names, not the string {inputs!r}")
    file = str(path)
    path = Path(path)
    _check_file(path, file)
    suffix = _suffix(path)
    table = _load_csv(path, file, suffix) if suffix in CSV_SUFFIXES else _load_parquet(path, file)
    input_names = _resolve_columns(table, target, inputs, file, time)
    used = sorted({target, *input_names, *([time] if time else [])}, key=table.names.index)
    columns = [table.column(name) for name in used]
    values = np.stack([c.values for c in columns], axis=1)  # (n, len(used)), file order

    bad = ~np.isfinite(values)
    bad_rows = bad.any(axis=1)
    if bad_rows.any() and not skip_invalid:
        i = int(np.argmax(bad_rows))
        j = int(np.argmax(bad[i]))
        raise DataError(
            f"{columns[j].problem(i)} ({int(bad.sum())} invalid cell(s) in total; "
            "skip_invalid=True drops such rows)",
            file=file,
            row=int(table.rows[i]),
            column=used[j],
            value=_short(columns[j].cell(i)),
        )
    if time is not None:
        bad_rows |= _out_of_order(
            values[:, used.index(time)], bad_rows, table, time, file, skip_invalid
        )
    kept = np.flatnonzero(~bad_rows)
    if kept.size == 0:
        raise DataError(
            f"no valid rows: all {len(bad_rows)} data rows have an empty, non-numeric, "
            "NaN or infinite value",
            file=file,
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
        targets = _class_labels(targets, kept, columns[t], table, target, task, file)
        n_classes = int(targets.max()) + 1
    return Stream(
        inputs=inputs_array,
        targets=targets,
        input_names=tuple(input_names),
        target_name=target,
        n_classes=n_classes,
        source=file,
        skipped_rows=tuple(int(r) for r in table.rows[bad_rows]),
    )


def _out_of_order(
    stamps: np.ndarray, invalid: np.ndarray, table: _Table, time: str, file: str, skip: bool
) -> np.ndarray:
    """(n,) bool: rows whose time stamp is not after every earlier valid stamp. Such a row
    never raises the running maximum, so comparing with the maximum over all earlier valid
    rows gives the same answer as comparing with the last kept one."""
    valid = np.where(invalid, -np.inf, stamps)
    before = np.r_[-np.inf, np.maximum.accumulate(valid)[:-1]]
    late = ~invalid & (stamps <= before)
    if late.any() and not skip:
        i = int(np.argmax(late))
        problem = "duplicated time stamp" if stamps[i] == before[i] else "time stamps go back"
        raise DataError(
            f"{problem}: not after the previous {before[i]:g} ({int(late.sum())} such row(s); "
            "skip_invalid=True drops them)",
            file=file,
            row=int(table.rows[i]),
            column=time,
            value=_short(table.column(time).cell(i)),
        )
    return late


def _class_labels(
    values: np.ndarray,
    kept: np.ndarray,
    column: _Column,
    table: _Table,
    target: str,
    task: Task,
    file: str,
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
                f" (task='auto' reads an integer column with <= {AUTO_MAX_CLASSES} distinct "
                "values as class labels; pass task='regression' to read it as numbers)"
            )
        raise DataError(
            problem, file=file, row=int(table.rows[i]), column=target, value=_short(column.cell(i))
        )
    return values.astype(np.int64)


def write_table(stream: Stream, path: str | Path) -> None:
    """Write `stream` as a table: the input columns, then the target column (last).

    The format follows the suffix, as in `read_table`: .csv/.txt (comma), .tsv (tab),
    .parquet/.pq. Floats are written with full precision, so `read_table` gives back the
    same arrays (class labels are written as integers).

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
        if suffix in CSV_SUFFIXES:
            frame = pd.DataFrame(dict(zip(names, columns, strict=True)))
            frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
        else:
            pq.write_table(pa.table(dict(zip(names, columns, strict=True))), path)
    except OSError as e:
        raise DataError(f"cannot write: {e.strerror or e}", file=file) from None


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise DataError(
            f"unknown file type {path.suffix!r}: expected one of "
            + ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES),
            file=str(path),
        )
    return suffix


def _check_file(path: Path, file: str) -> None:
    try:
        if not path.exists():
            raise DataError("file not found", file=file)
        if path.is_dir():
            raise DataError("is a directory, not a file", file=file)
        if not path.is_file():
            raise DataError("is not a regular file", file=file)
        if path.stat().st_size == 0:
            raise DataError("file is empty", file=file)
    except OSError as e:
        raise DataError(f"cannot access: {e.strerror or e}", file=file) from None


def _resolve_columns(
    table: _Table, target: str, inputs: Sequence[str] | None, file: str, time: str | None = None
) -> list[str]:
    """Check the target, time and input columns exist and are distinct; return the input
    names (by default every column but the target and the time column)."""
    names = table.names

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


def _load_csv(path: Path, file: str, suffix: str) -> _Table:
    text = _read_text(path, file)
    header = _LINE_BREAK.split(text, maxsplit=1)[0]
    if not header.strip():
        raise DataError("header is empty: the header must be on the first line", file=file, row=1)
    delimiter = _sniff(text, suffix)
    table = None if '"' in text else _csv_numbers(text, header, delimiter, file)
    return table if table is not None else _csv_cells(text, header, delimiter, file)


def _read_text(path: Path, file: str) -> str:
    """The file as text, refusing binary data and anything that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", file=file) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(
            "contains a NUL byte: a binary file, not CSV text", file=file, row=_line_of(data, nul)
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"not UTF-8 text (invalid byte at offset {e.start}); save the file as UTF-8",
            file=file,
            row=_line_of(data, e.start),
        ) from None
    if not text.strip():
        raise DataError("file is empty (only whitespace)", file=file)
    return text


def _csv_numbers(text: str, header: str, delimiter: str, file: str) -> _Table | None:
    """Fast path for a well-formed file without quotes: every cell parses as a number.

    Returns None whenever anything is off (a parser error, a blank line, a short row, a
    cell that is not a number); `_csv_cells` then reads the file again and locates it.
    """
    names = [name.strip() for name in header.split(delimiter)]
    _check_header(names, header, file)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            skiprows=1,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, OverflowError):
        return None
    if frame.shape[1] != len(names) or any(dtype.kind not in "iuf" for dtype in frame.dtypes):
        return None

    def column(name: str) -> _Column:
        series = frame.iloc[:, names.index(name)]
        values = series.to_numpy(dtype=np.float64)
        return _Column(
            values=values,
            integer=lambda: np.full(len(values), series.dtype.kind in "iu"),
            cell=lambda i: series.iat[i].item(),
            problem=lambda i: "NaN value" if np.isnan(values[i]) else "infinite value",
        )

    return _Table(names, np.arange(2, len(frame) + 2), header_row=1, column=column)


def _csv_cells(text: str, header: str, delimiter: str, file: str) -> _Table:
    """General path: read every cell as text, then convert, keeping exact locations."""
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, OverflowError) as e:
        raise _parser_error(e, file, delimiter) from None
    names = [str(name).strip() for name in frame.iloc[0]]
    body = frame.iloc[1:]
    if '"' in text:
        _reject_line_breaks(names, body, file)
    _check_header(names, header, file)
    source = _CsvSource(text, delimiter)
    rows = np.arange(2, len(frame) + 1)
    if len(body):
        maybe_blank = np.logical_and.reduce(
            [(body[c].str.strip() == "").to_numpy(dtype=bool) for c in body.columns]
        )
        for i in np.flatnonzero(maybe_blank):
            maybe_blank[i] = not source.line(int(rows[i])).strip()
        body, rows = body[~maybe_blank], rows[~maybe_blank]
    if not len(body):
        raise DataError("no data rows: the file has a header only", file=file)

    def column(name: str) -> _Column:
        cells = body.iloc[:, names.index(name)]
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

        def problem(i: int) -> str:
            cell = str(cells.iat[i])
            if not cell.strip():
                n_fields = source.n_fields(int(rows[i]))
                if n_fields < len(names):
                    return f"missing value: the row has {n_fields} fields, the header {len(names)}"
            return _text_problem(cell, float(values[i]), delimiter)

        return _Column(
            values=values,
            integer=lambda: cells.str.fullmatch(_INTEGER).to_numpy(dtype=bool),
            cell=lambda i: cells.iat[i],
            problem=problem,
        )

    return _Table(names=names, rows=rows, header_row=1, column=column)


def _check_header(names: list[str], header: str, file: str) -> None:
    """At least two columns, none unnamed, no name twice."""
    if len(names) == 1:
        raise DataError(
            f"only one column found (header {_short(header)!r}); wrong delimiter? columns must "
            "be separated by ',', ';' or tab, and the file needs input columns and a target",
            file=file,
            row=1,
        )
    for j, name in enumerate(names):
        if not name:
            raise DataError(f"column {j + 1} has an empty name", file=file, row=1)
        if name in names[:j]:
            raise DataError(
                f"duplicated column name (columns {names.index(name) + 1} and {j + 1})",
                file=file,
                row=1,
                column=name,
            )


class _CsvSource:
    """The text of a CSV file, split into lines only when a message needs one."""

    def __init__(self, text: str, delimiter: str) -> None:
        self.text, self.delimiter = text, delimiter

    @cached_property
    def lines(self) -> list[str]:
        return _LINE_BREAK.split(self.text)

    def line(self, row: int) -> str:
        """The text of 1-based line `row`."""
        return self.lines[row - 1]

    def n_fields(self, row: int) -> int:
        """How many fields line `row` has with this delimiter."""
        return len(next(csv.reader([self.line(row)], delimiter=self.delimiter), []))


def _sniff(text: str, suffix: str) -> str:
    """Pick the delimiter giving the header > 1 field and every sample line as many.

    Failing that, the one splitting the header into the most fields; failing that (one
    column), the suffix's default. Ties go to the suffix's default (tab for .tsv, else ',').
    """
    order = ("\t", ",", ";") if suffix == ".tsv" else DELIMITERS
    head = text[:_SNIFF_CHARS]
    lines = _LINE_BREAK.split(head)[:_SNIFF_LINES]
    if len(head) < len(text) and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    sample = [line for line in lines if line.strip()]
    best, best_count = order[0], 1
    for delimiter in order:
        try:
            counts = [len(fields) for fields in csv.reader(sample, delimiter=delimiter)]
        except csv.Error:
            continue
        if counts[0] > 1 and all(c == counts[0] for c in counts):
            return delimiter
        if counts[0] > best_count:
            best, best_count = delimiter, counts[0]
    return best


def _parser_error(error: Exception, file: str, delimiter: str) -> DataError:
    message = str(error).strip()
    if m := _EXPECTED_FIELDS.search(message):
        expected, line, saw = (int(g) for g in m.groups())
        return DataError(
            f"the row has {saw} fields but the header {expected} (delimiter {delimiter!r})",
            file=file,
            row=line,
        )
    if m := _OPEN_QUOTE.search(message):
        return DataError(
            "quoted field is never closed (a '\"' without its closing quote)",
            file=file,
            row=int(m.group(1)) + 1,
        )
    return DataError(f"cannot parse as CSV: {_first_line(error)}", file=file)


def _reject_line_breaks(names: list[str], body: pd.DataFrame, file: str) -> None:
    """A quoted cell spanning lines would shift every later row number: refuse it."""
    for name in names:
        if "\n" in name or "\r" in name:
            raise DataError("column name contains a line break", file=file, row=1, column=name)
    first: tuple[int, int] | None = None
    for j, c in enumerate(body.columns):
        hits = np.flatnonzero(body[c].str.contains(r"[\r\n]", regex=True).to_numpy(dtype=bool))
        if hits.size and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), j)
    if first is not None:
        i, j = first
        raise DataError(
            "quoted cell contains a line break",
            file=file,
            row=i + 2,
            column=names[j],
            value=_short(body.iat[i, j]),
        )


def _load_parquet(path: Path, file: str) -> _Table:
    try:
        parquet = pq.ParquetFile(path)
        names = list(parquet.schema_arrow.names)
        n_rows = parquet.metadata.num_rows
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"cannot read as Parquet: {_first_line(e)}", file=file) from None
    for j, name in enumerate(names):
        if name in names[:j]:
            raise DataError(
                f"duplicated column name (columns {names.index(name) + 1} and {j + 1})",
                file=file,
                column=name,
            )
    if not names:
        raise DataError("the file has no columns", file=file)
    if n_rows == 0:
        raise DataError("no data rows: the file has no records", file=file)

    def column(name: str) -> _Column:
        try:
            data = parquet.read(columns=[name]).column(0)
            if len(data) != n_rows:
                raise DataError(
                    f"corrupt file: the column has {len(data)} values, the metadata says {n_rows}",
                    file=file,
                    column=name,
                )
            return _arrow_column(data, name, file)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise DataError(
                f"cannot read column: {_first_line(e)}", file=file, column=name
            ) from None

    return _Table(names=names, rows=np.arange(1, n_rows + 1), header_row=None, column=column)


def _arrow_column(data: pa.ChunkedArray, name: str, file: str) -> _Column:
    """Convert one Parquet column to numbers (see `_Column`)."""
    if pa.types.is_dictionary(data.type):
        data = data.cast(data.type.value_type)
    kind = data.type
    null = data.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        cells = pd.Series(data.to_numpy(zero_copy_only=False), dtype=object)
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        integer = cells.astype(str).str.fullmatch(_INTEGER).to_numpy(dtype=bool) & ~null

        def problem(i: int) -> str:
            if null[i]:
                return "missing value (null)"
            return _text_problem(str(cells.iat[i]), float(values[i]), None)

        return _Column(values, lambda: integer, lambda i: cells.iat[i], problem)
    numeric = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )
    if not numeric:
        raise DataError(f"column type {kind} is not numeric", file=file, column=name)
    values = data.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)

    def number_problem(i: int) -> str:
        if null[i]:
            return "missing value (null)"
        return "NaN value" if np.isnan(values[i]) else "infinite value"

    return _Column(
        values=values,
        integer=lambda: np.full(len(values), pa.types.is_integer(kind)),
        cell=lambda i: data[i].as_py(),
        problem=number_problem,
    )


def _text_problem(cell: str, value: float, delimiter: str | None) -> str:
    """Why the text `cell` (parsed to `value`) is not a finite number."""
    stripped = cell.strip()
    if not stripped:
        return "empty cell"
    if np.isinf(value):
        return "infinite value"
    if stripped.lower() in _NAN_WORDS:
        return "missing value (NaN)"
    if _DECIMAL_COMMA.fullmatch(cell):
        return "not a number (decimal comma? write decimals with '.')"
    if delimiter is not None and any(d in cell for d in DELIMITERS if d != delimiter):
        return f"not a number (wrong delimiter? the file is read with {delimiter!r})"
    return "not a number"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _line_of(data: bytes, offset: int) -> int:
    """1-based line number of byte `offset`."""
    return len(_LINE_BREAK_BYTES.split(data[:offset]))


def _first_line(error: Exception) -> str:
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def _short(value: object, limit: int = 40) -> object:
    """`value`, with long strings cut so that messages stay short."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value
