"""Parquet files for `read_table`: numeric, boolean, decimal and string columns.

Row numbers are record indices counting from 1 (Parquet has no header row). Numbers are
read as float64; string columns are parsed like CSV cells; timestamp and date columns are
instants (`columns.as_time`), usable as the time column only.
"""

from __future__ import annotations

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
    try:
        parquet = pq.ParquetFile(path)
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
