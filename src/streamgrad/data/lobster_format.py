"""The LOBSTER file format: column names, event types, price units, and parsing.

`read_fields` reads one LOBSTER file (message or orderbook; plain or gzip-compressed,
through `data.table.read_source`) into `Fields`: every data row's numbers plus what the
checks in `lobster_checks` need to locate a problem. Only structural problems (a missing
or empty file, no row layout that LOBSTER allows) raise here.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from streamgrad.data.table import Table, read_source
from streamgrad.errors import DataError

MESSAGE_COLUMNS: tuple[str, ...] = ("time", "event_type", "order_id", "size", "price", "direction")
"""Names of the six LOBSTER message columns (a seventh trailing column is ignored)."""

EVENT_TYPES: dict[int, str] = {
    1: "new limit order",
    2: "partial cancellation",
    3: "full deletion",
    4: "visible execution",
    5: "hidden execution",
    6: "cross trade",
    7: "trading halt",
}
"""LOBSTER event types (message column 2)."""

PRICE_SCALE = 10_000.0
"""LOBSTER prices are integers in units of 1e-4 dollars."""
EMPTY_ASK = 9_999_999_999.0
"""Marker price of an empty ask level (its size is 0)."""
EMPTY_BID = -9_999_999_999.0
"""Marker price of an empty bid level (its size is 0)."""

_NUMBER = re.compile(rb"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_NON_FINITE = re.compile(rb"\s*[+-]?(?:nan|inf|infinity)\s*", re.IGNORECASE)


def orderbook_columns(levels: int) -> tuple[str, ...]:
    """Column names of an orderbook file with `levels` levels (4 per level)."""
    return tuple(
        f"{side}_{what}_{i}"
        for i in range(1, levels + 1)
        for side, what in (("ask", "price"), ("ask", "size"), ("bid", "price"), ("bid", "size"))
    )


@dataclass(frozen=True)
class Fields:
    """One parsed LOBSTER file of n data rows.

    table: the rows located in the file (line numbers, column names, fields as written).
    values: (n, len(table.names)) float64; NaN where a row could not be parsed.
    field_counts: (n,) number of fields in each row.
    n_fields: the number of fields a row must have.
    bad_field: (n,) index of the first field that is not a number, or -1.
    """

    table: Table
    values: np.ndarray
    field_counts: np.ndarray
    n_fields: int
    bad_field: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


def read_fields(path: Path, *, kind: str) -> Fields:
    """Read one `kind` ('message' or 'orderbook') file; raises `DataError` on structural
    problems only."""
    name = str(path)
    data = read_source(path, f"{kind} file").data.rstrip(b" \t\r\n")
    buf = np.frombuffer(data, dtype=np.uint8)
    line_ends = np.append(np.flatnonzero(buf == ord("\n")), len(data))
    line_starts = np.append(0, line_ends[:-1] + 1)
    cr = line_ends > line_starts
    cr[cr] = buf[line_ends[cr] - 1] == ord("\r")
    line_ends = line_ends - cr  # a CRLF line ends before its CR
    comma_lines = np.searchsorted(line_ends, np.flatnonzero(buf == ord(",")))
    field_counts = np.bincount(comma_lines, minlength=line_ends.size) + 1
    header = int(_is_header(data[line_starts[0] : line_ends[0]]))
    line_starts, line_ends, field_counts = (
        a[header:] for a in (line_starts, line_ends, field_counts)
    )
    if line_starts.size == 0:
        raise DataError(f"{kind} file has a header line but no data", file=name, row=1)

    n_fields, columns = _layout(field_counts, kind=kind, file=name, first_line=1 + header)
    values, bad_field = _parse(data, line_starts, line_ends, field_counts, n_fields, columns)

    def cell(row: int, index: int) -> str | None:
        """The field as written in the file, or None when the row is too short."""
        fields = data[line_starts[row] : line_ends[row]].split(b",")
        return fields[index].decode("utf-8", "replace") if index < len(fields) else None

    rows = np.arange(line_starts.size, dtype=np.int64) + 1 + header
    table = Table(name, columns, rows, 1 if header else None, cell)
    return Fields(table, values, field_counts, n_fields, bad_field)


def _is_header(line: bytes) -> bool:
    """A first line is a header when it starts with neither a digit nor '-' and none of
    its fields is a number (so a data row with a corrupted first field is not mistaken
    for a header and silently dropped)."""
    if not line or line[:1].isdigit() or line.startswith(b"-"):
        return False
    return not any(_NUMBER.fullmatch(f) or _NON_FINITE.fullmatch(f) for f in line.split(b","))


def _layout(
    field_counts: np.ndarray, *, kind: str, file: str, first_line: int
) -> tuple[int, tuple[str, ...]]:
    """The number of fields rows must have (the most common count) and the column names.

    Raises a structural `DataError` when that count is not a valid layout.
    """
    n_fields = int(np.argmax(np.bincount(field_counts)))  # the most common count
    row = first_line + int(np.argmax(field_counts == n_fields))
    if kind == "orderbook":
        if n_fields % 4:
            raise DataError(
                f"orderbook rows have {n_fields} fields; LOBSTER orderbooks have 4 per level",
                file=file,
                row=row,
            )
        return n_fields, orderbook_columns(n_fields // 4)
    if n_fields not in (6, 7):
        raise DataError(
            f"message rows have {n_fields} fields; LOBSTER messages have 6 "
            f"({', '.join(MESSAGE_COLUMNS)}), optionally plus one trailing column",
            file=file,
            row=row,
        )
    return n_fields, MESSAGE_COLUMNS


def _parse(
    data: bytes,
    line_starts: np.ndarray,
    line_ends: np.ndarray,
    field_counts: np.ndarray,
    n_fields: int,
    columns: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the first len(columns) fields of every data line as float64.

    Returns values (n, len(columns)) with NaN rows where parsing failed, and bad_field
    (n,) int: -1, or the index of the first field that is not a number.
    Happy path: pandas' C parser on the whole body. Fallback: a line-by-line scan.
    """
    n, n_cols = line_starts.size, len(columns)
    bad_field = np.full(n, -1, dtype=np.int64)
    if np.all(field_counts == n_fields):
        try:
            frame = pd.read_csv(
                io.BytesIO(data[line_starts[0] :]),
                header=None,
                usecols=range(n_cols),
                dtype=np.float64,
                na_filter=False,
                skip_blank_lines=False,
                quoting=csv.QUOTE_NONE,
                encoding="latin-1",
                engine="c",
            )
        except ValueError:
            pass
        else:
            if frame.shape == (n, n_cols):
                return frame.to_numpy(dtype=np.float64), bad_field
    values = np.full((n, n_cols), np.nan)
    for row in range(n):
        fields = data[line_starts[row] : line_ends[row]].split(b",")
        if len(fields) != n_fields:
            continue
        for col in range(n_cols):
            field = fields[col]
            if _NUMBER.fullmatch(field) or _NON_FINITE.fullmatch(field):
                values[row, col] = float(field)
            else:
                bad_field[row] = col
                break
    return values, bad_field
