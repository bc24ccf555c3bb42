"""Numeric columns of a table file, as `read_table` uses them.

A loader (`csv_table.load_csv`, `parquet_table.load_parquet`) returns `Columns`: the
located `Table` of the file's records and a function giving any column converted to
float64, with the reason why each cell that is not a finite number is invalid.

Time stamps (`as_time`): a time column holds numbers (e.g. seconds) or instants, ISO 8601
dates and date-times such as ``1987-05-21`` or ``2024-01-02T10:00:00`` (parsed by pandas;
a date-time without an offset is read as UTC) or Parquet timestamp/date columns. Instants
become float64 seconds since 1970-01-01 UTC, so that time order is a comparison of numbers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from streamgrad.data.table import Table

DELIMITERS = (",", ";", "\t")
"""The CSV delimiters `read_table` recognises."""

INTEGER = r"\s*[+-]?\d+\s*"
"""A cell holding an integer literal (what task='auto' takes as a class label)."""

_NAN_WORDS = frozenset({"nan", "+nan", "-nan", "na", "n/a", "null", "none"})
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")


@dataclass(frozen=True)
class Column:
    """One column of n records, converted to numbers.

    values:  (n,) float64; NaN or ±inf where the cell is not a finite number.
    integer: () -> (n,) bool; True where the stored cell is an integer (for task="auto").
    cell:    i -> the i-th cell as stored in the file, for messages.
    problem: i -> why the i-th cell is invalid (called only where values[i] is not finite).
    instants: whether `values` are instants (seconds since 1970-01-01 UTC), not numbers.
    text: the cells as written, for a column stored as text (dates are parsed from them).
    """

    values: np.ndarray
    integer: Callable[[], np.ndarray]
    cell: Callable[[int], object]
    problem: Callable[[int], str]
    instants: bool = False
    text: pd.Series | None = None

    def show(self, value: float) -> str:
        """A value of this column as a person reads it (an instant in ISO 8601)."""
        if not self.instants:
            return f"{value:g}"
        stamp = pd.Timestamp(value, unit="s", tz="UTC").tz_localize(None)
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()


@dataclass(frozen=True)
class Columns:
    """A loaded table file: its located records and its columns by name."""

    table: Table
    column: Callable[[str], Column]


def located(
    file: str,
    names: Sequence[str],
    rows: np.ndarray,
    header_row: int | None,
    column: Callable[[str], Column],
) -> Columns:
    """`Columns` whose table cell (i, j) is `column(names[j]).cell(i)`; each column is
    converted at most once."""
    load = functools.cache(column)
    names = tuple(names)
    return Columns(Table(file, names, rows, header_row, lambda i, j: load(names[j]).cell(i)), load)


def as_time(column: Column) -> Column:
    """`column` read as time stamps (see the module docstring): a text column in which some
    cell is an ISO 8601 date or date-time, and not a number, is a column of instants (a
    number or any other text in it is invalid); any other column is returned as it is."""
    if column.instants or column.text is None:
        return column
    text = column.text.fillna("").astype(str).str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if not (parsed.notna().to_numpy(dtype=bool) & ~np.isfinite(column.values)).any():
        return column
    numbers = np.isfinite(column.values)

    def problem(i: int) -> str:
        if numbers[i]:
            return "a number in a column of dates: write every time stamp as a date or date-time"
        if not text.iat[i]:
            return "empty cell"
        return "not a date (expected ISO 8601, e.g. 2024-01-02 or 2024-01-02T10:00:00)"

    return instant_column(parsed, column.cell, problem)


def instant_column(
    stamps: pd.Series, cell: Callable[[int], object], problem: Callable[[int], str]
) -> Column:
    """A column of instants from `stamps` (n,) pandas date-times, UTC (NaT where invalid)."""
    values = ((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return Column(values, lambda: np.zeros(len(values), bool), cell, problem, instants=True)


def number_problem(value: float, null: bool = False) -> str:
    """Why a stored number `value` (not finite, or a null cell) is invalid."""
    if null:
        return "missing value (null)"
    return "NaN value" if np.isnan(value) else "infinite value"


def text_problem(cell: str, value: float, delimiter: str | None) -> str:
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
