"""Parquet files for `read_table`: numeric, boolean, decimal and string columns.

Row numbers are record indices counting from 1 (Parquet has no header row). Numbers are
read as float64; string columns are parsed like CSV cells; timestamp and date columns are
instants (`columns.as_time`), usable as the time column only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from streamgrad.data.columns import (
    INTEGER,
    Column,
    Columns,
    instant_column,
    located,
    number_problem,
    text_problem,
)
from streamgrad.data.table import first_line
from streamgrad.errors import DataError


def load_parquet(path: Path) -> Columns:
    """Read the schema of a Parquet file; its columns are read and converted on demand."""
    file = str(path)
    parquet, names, n_rows = _open(path)

    def column(name: str) -> Column:
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
                f"cannot read column: {first_line(e)}", file=file, column=name
            ) from None

    return located(file, names, np.arange(1, n_rows + 1), None, column)


def parquet_pieces(
    path: Path, columns: Sequence[str] | None, *, start_row: int = 1, batch_rows: int = 1 << 16
) -> Iterator[Columns]:
    """The `columns` (None: all) of the file as consecutive pieces of at most `batch_rows`
    records (as `load_parquet` reads them, with the same row numbers and messages), read row
    group by row group in constant memory, from record `start_row` (1-based) on: the row
    groups before it are not read."""
    file = str(path)
    parquet, names, _ = _open(path)
    sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
    starts = np.cumsum([0, *sizes])  # record index of each group's first record
    group = int(np.searchsorted(starts, start_row - 1, side="right")) - 1
    row = int(starts[group]) + 1
    try:
        for batch in record_batches(parquet, columns, group, batch_rows):
            piece = batch.slice(max(0, start_row - row))
            row += len(batch) - len(piece)
            if len(piece):
                yield _piece(piece, file, names, row)
            row += len(piece)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"cannot read: {first_line(e)}", file=file, row=row) from None


def record_batches(
    parquet: pq.ParquetFile,
    columns: Sequence[str] | None = None,
    first_group: int = 0,
    batch_rows: int = 1 << 16,
) -> Iterator[pa.RecordBatch]:
    """The records of `parquet` from row group `first_group` on, in batches of at most
    `batch_rows`, holding one row group at a time in memory (asked for all row groups at
    once, the reader buffers them all; opened with `open_parquet`, it does not pre-buffer)."""
    for group in range(first_group, parquet.num_row_groups):
        yield from parquet.iter_batches(batch_rows, [group], columns, use_threads=False)


def open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file opened for reading piece by piece (no pre-buffering of whole row
    groups, whose memory the reader keeps)."""
    return pq.ParquetFile(path, pre_buffer=False)


def _piece(batch: pa.RecordBatch, file: str, names: list[str], row: int) -> Columns:
    """The located columns of `batch`, whose first record is row `row` of the file."""

    def column(name: str) -> Column:
        return _arrow_column(pa.chunked_array([batch.column(name)]), name, file)

    return located(file, names, np.arange(row, row + len(batch)), None, column)


def _open(path: Path) -> tuple[pq.ParquetFile, list[str], int]:
    """The file, its column names and record count; raises `DataError` when it cannot be
    read, has no columns or records, or names a column twice."""
    file = str(path)
    try:
        parquet = open_parquet(path)
        names = list(parquet.schema_arrow.names)
        n_rows = parquet.metadata.num_rows
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"cannot read as Parquet: {first_line(e)}", file=file) from None
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
    return parquet, names, n_rows


def _arrow_column(data: pa.ChunkedArray, name: str, file: str) -> Column:
    """Convert one Parquet column to numbers (see `Column`)."""
    if pa.types.is_dictionary(data.type):
        data = data.cast(data.type.value_type)
    kind = data.type
    null = data.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        cells = pd.Series(data.to_numpy(zero_copy_only=False), dtype=object)
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        integer = cells.astype(str).str.fullmatch(INTEGER).to_numpy(dtype=bool) & ~null

        def problem(i: int) -> str:
            if null[i]:
                return number_problem(values[i], null=True)
            return text_problem(str(cells.iat[i]), float(values[i]), None)

        return Column(values, lambda: integer, lambda i: cells.iat[i], problem, text=cells)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        stamps = pd.to_datetime(pd.Series(data.to_pandas()), utc=True)
        return instant_column(
            stamps, lambda i: data[i].as_py(), lambda i: number_problem(np.nan, null=True)
        )
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
    return Column(
        values=values,
        integer=lambda: np.full(len(values), pa.types.is_integer(kind)),
        cell=lambda i: data[i].as_py(),
        problem=lambda i: number_problem(values[i], null=bool(null[i])),
    )
