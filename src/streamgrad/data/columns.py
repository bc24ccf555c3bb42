"""Numeric columns of a table file, as `read_table` uses them.

A loader (`csv_table.load_csv`, `parquet_table.load_parquet`) returns `Columns`: the
located `Table` of the file's records and a function giving any column converted to
float64, with the reason why each cell that is not a finite number is invalid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

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
    """

    values: np.ndarray
    integer: Callable[[], np.ndarray]
    cell: Callable[[int], object]
    problem: Callable[[int], str]


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
