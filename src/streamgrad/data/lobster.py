"""Reader for LOBSTER limit-order-book files (a message file and an orderbook file).

LOBSTER (lobsterdata.com) exports one trading day of one ticker as two CSV files with the
same number of rows:

* message file, 6 columns, no header: ``time`` (seconds after midnight), ``event_type``
  (1 new limit order, 2 partial cancellation, 3 full deletion, 4 visible execution,
  5 hidden execution, 6 cross trade, 7 trading halt), ``order_id``, ``size`` (shares),
  ``price`` (dollars x 10,000) and ``direction`` (1 buy limit order, -1 sell limit order).
* orderbook file, 4 columns per level: ``ask_price_i, ask_size_i, bid_price_i, bid_size_i``
  for i = 1..L, prices in dollars x 10,000. Row k is the book AFTER message k.

`read_lobster` parses both files with pandas' C parser and validates them with vectorised
checks; only when something is wrong does it scan the file line by line to say exactly
where. Every problem is reported as a `DataError` naming the file, the 1-based line number
in that file (a header line counts as line 1), the column and the value as written.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from streamgrad.errors import DataError, UserError

__all__ = ["EVENT_TYPES", "MESSAGE_COLUMNS", "LobsterDay", "orderbook_columns", "read_lobster"]

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

_PRICE_SCALE = 10_000.0  # LOBSTER prices are integers in units of 1e-4 dollars
_EMPTY_ASK = 9_999_999_999.0  # marker price of an empty ask level (its size is 0)
_EMPTY_BID = -9_999_999_999.0  # marker price of an empty bid level (its size is 0)
_MAX_EXACT = 2.0**53  # integers above this are not exact in float64

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
class LobsterDay:
    """One LOBSTER day: T events and the book after each, as read-only numpy arrays.

    Book (always present), L = `n_levels`:
        ask_price, bid_price: (T, L) float64 dollars. An empty level (LOBSTER's marker
            price 9999999999 for asks / -9999999999 for bids, with size 0) is NaN here.
        ask_size, bid_size: (T, L) float64 shares; 0 on empty levels.
    Messages (None when only the orderbook file was read):
        time: (T,) float64 seconds after midnight, non-decreasing.
        event_type: (T,) int64 in 1..7 (see `EVENT_TYPES`).
        order_id: (T,) int64 (0 for hidden executions).
        size: (T,) float64 shares.
        price: (T,) float64 dollars (LOBSTER price / 10,000).
        direction: (T,) int64, 1 = buy limit order, -1 = sell limit order.
    Row k of the book is the state AFTER message k.

    lines: (T,) int64, the 1-based line number of each kept row in the orderbook file
        (a header line counts as line 1).
    skipped_rows: orderbook line numbers of the rows dropped by ``skip_invalid=True``
        (the same data rows were dropped from the message file).
    skipped_reasons: one message per skipped row, naming the file, line, column and value
        that made it invalid.
    """

    ask_price: np.ndarray
    ask_size: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    time: np.ndarray | None
    event_type: np.ndarray | None
    order_id: np.ndarray | None
    size: np.ndarray | None
    price: np.ndarray | None
    direction: np.ndarray | None
    lines: np.ndarray
    n_levels: int
    orderbook_file: str
    message_file: str | None
    skipped_rows: tuple[int, ...] = ()
    skipped_reasons: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.ask_price.shape[0])

    @property
    def has_messages(self) -> bool:
        """True when the message file was read (time and event fields are arrays)."""
        return self.time is not None


@dataclass(frozen=True)
class _Table:
    """One parsed CSV file: n data rows, the first `len(columns)` fields of each as floats.

    values: (n, len(columns)) float64; NaN where a row could not be parsed.
    field_counts: (n,) number of fields in each row.
    n_fields: the number of fields a row must have.
    bad_field: (n,) index of the first field that is not a number, or -1.
    """

    path: str
    body: bytes
    line_starts: np.ndarray
    line_ends: np.ndarray
    first_line: int
    columns: tuple[str, ...]
    n_fields: int
    field_counts: np.ndarray
    values: np.ndarray
    bad_field: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def line(self, row: int) -> int:
        """1-based line number in the file of data row `row` (0-based)."""
        return self.first_line + row

    def fields(self, row: int) -> list[bytes]:
        return self.body[self.line_starts[row] : self.line_ends[row]].split(b",")

    def field_name(self, index: int) -> str:
        return self.columns[index] if index < len(self.columns) else f"field_{index + 1}"

    def text(self, row: int, index: int) -> str | None:
        """The field as written in the file, or None when the row is too short."""
        fields = self.fields(row)
        return fields[index].decode("utf-8", "replace") if index < len(fields) else None


@dataclass(frozen=True)
class _Issue:
    """A row-local problem: `rows` (n,) bool flags the rows that have it, `field` (n,)
    gives the field to report for each row, `problem(row)` says what is wrong."""

    rows: np.ndarray
    field: np.ndarray
    problem: Callable[[int], str]


def read_lobster(
    orderbook: str | Path,
    message: str | Path | None = None,
    *,
    levels: int | None = None,
    skip_invalid: bool = False,
) -> LobsterDay:
    """Read a LOBSTER orderbook file and, optionally, its message file.

    Accepted layouts: an optional header line in either file (the first line is taken as
    a header when its first character is not a digit or a minus sign and none of its
    fields is a number), LF or CRLF line endings, a UTF-8 byte-order mark, any number of
    book levels (the orderbook has 4*L columns; L is inferred), and an extra trailing
    column in the message file (7 columns, ignored). `levels` keeps the first `levels`
    book levels; asking for more than the file has is an error.

    Validation (each failure is a `DataError` naming the file, the 1-based line number in
    that file counting any header line, the column, e.g. 'ask_price_1' or 'time', and the
    value as written):

    * structural, always raised: a missing or empty file, a file whose rows do not have
      4*L (orderbook) or 6 or 7 (message) fields, different row counts in the two files;
    * row-local: a row with the wrong number of fields, a field that is not a number or
      not finite, a non-integer price, size or order id, a negative size or order id, a
      non-positive price that is not the empty-level marker, an empty level with a
      non-zero size, a crossed (bid > ask) or locked (bid == ask) book at level 1, an
      event type outside 1..7, a direction other than 1 or -1, a time earlier than a
      previous row's.

    With ``skip_invalid=True`` rows with a row-local problem are dropped from BOTH files
    (the same data row), and their orderbook line numbers and reasons are recorded in
    `LobsterDay.skipped_rows` / `skipped_reasons`; a time earlier than the latest kept
    time drops that row. Structural problems still raise, as does a file with no valid
    row left.

    Returns a `LobsterDay` with T rows (prices in dollars, empty levels as NaN).
    """
    if levels is not None and levels < 1:
        raise UserError(f"levels must be at least 1, got {levels}")
    book = _read_table(Path(orderbook), kind="orderbook")
    n_file_levels = book.n_fields // 4
    if levels is not None and levels > n_file_levels:
        raise DataError(
            f"asked for {levels} book levels but the file has {n_file_levels}",
            file=book.path,
        )
    msgs = _read_table(Path(message), kind="message") if message is not None else None
    if msgs is not None and len(msgs) != len(book):
        longer, shorter = (msgs, book) if len(msgs) > len(book) else (book, msgs)
        raise DataError(
            f"has {len(longer)} data rows but {shorter.path} has {len(shorter)}; "
            "row k of the orderbook must be the book after message k",
            file=longer.path,
            row=longer.line(len(shorter)),
        )

    # (table, its row-local issues in reporting order); the message file is reported first.
    checked = [(book, _book_issues(book))]
    if msgs is not None:
        checked.insert(0, (msgs, _message_issues(msgs)))
    bad = np.zeros(len(book), dtype=bool)
    for _, issues in checked:
        for issue in issues:
            bad |= issue.rows
    if msgs is not None:  # time order is checked among the rows that are otherwise valid
        time_issue = _time_issue(msgs, ~bad)
        checked[0][1].append(time_issue)
        bad |= time_issue.rows

    def error_at(row: int) -> DataError:
        table, issue = next((t, i) for t, issues in checked for i in issues if i.rows[row])
        field = int(issue.field[row])
        return DataError(
            issue.problem(row),
            file=table.path,
            row=table.line(row),
            column=table.field_name(field),
            value=table.text(row, field),
        )

    skipped = np.flatnonzero(bad)
    if skipped.size and not skip_invalid:
        raise error_at(int(skipped[0]))
    if skipped.size == len(book):
        raise DataError(f"no valid row left after skipping all {len(book)}; first: {error_at(0)}")
    keep = ~bad
    return _make_day(
        book,
        msgs,
        keep,
        levels or n_file_levels,
        skipped_rows=tuple(book.line(int(r)) for r in skipped),
        skipped_reasons=tuple(str(error_at(int(r))) for r in skipped),
    )


def _make_day(
    book: _Table,
    msgs: _Table | None,
    keep: np.ndarray,
    levels: int,
    *,
    skipped_rows: tuple[int, ...],
    skipped_reasons: tuple[str, ...],
) -> LobsterDay:
    """Build the `LobsterDay` from the rows flagged by `keep` (T,) bool."""
    ob = book.values[keep].reshape(-1, book.n_fields // 4, 4)[:, :levels]
    ask_price = np.where(ob[:, :, 0] == _EMPTY_ASK, np.nan, ob[:, :, 0] / _PRICE_SCALE)
    bid_price = np.where(ob[:, :, 2] == _EMPTY_BID, np.nan, ob[:, :, 2] / _PRICE_SCALE)
    msg_arrays: list[np.ndarray | None] = [None] * 6
    if msgs is not None:
        m = msgs.values[keep]
        msg_arrays = [
            m[:, 0],
            m[:, 1].astype(np.int64),
            m[:, 2].astype(np.int64),
            m[:, 3],
            m[:, 4] / _PRICE_SCALE,
            m[:, 5].astype(np.int64),
        ]
    arrays = [
        ask_price,
        np.ascontiguousarray(ob[:, :, 1]),
        bid_price,
        np.ascontiguousarray(ob[:, :, 3]),
        *msg_arrays,
        np.flatnonzero(keep).astype(np.int64) + book.first_line,
    ]
    for array in arrays:
        if array is not None:
            array.setflags(write=False)
    return LobsterDay(
        *arrays,
        n_levels=levels,
        orderbook_file=book.path,
        message_file=msgs.path if msgs is not None else None,
        skipped_rows=skipped_rows,
        skipped_reasons=skipped_reasons,
    )


def _read_table(path: Path, *, kind: str) -> _Table:
    """Read one file into a `_Table`; raises `DataError` on structural problems only."""
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{kind} file not found", file=name) from None
    except OSError as exc:
        raise DataError(f"cannot read {kind} file: {exc.strerror or exc}", file=name) from None
    data = data.removeprefix(codecs.BOM_UTF8).rstrip(b" \t\r\n")
    if not data:
        raise DataError(f"{kind} file is empty", file=name)

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
    return _Table(
        path=name,
        body=data,
        line_starts=line_starts,
        line_ends=line_ends,
        first_line=1 + header,
        columns=columns,
        n_fields=n_fields,
        field_counts=field_counts,
        values=values,
        bad_field=bad_field,
    )


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


def _format_issues(table: _Table) -> list[_Issue]:
    """Rows with the wrong number of fields, then fields that are not numbers."""
    counts = table.field_counts
    wrong = counts != table.n_fields
    return [
        _Issue(
            wrong,
            np.minimum(counts, table.n_fields),  # the first missing or the first extra field
            lambda r: f"row has {counts[r]} fields, expected {table.n_fields}",
        ),
        _Issue(table.bad_field >= 0, table.bad_field, lambda r: "not a number"),
    ]


def _column_issue(bad: np.ndarray, columns: list[int], problem: str) -> _Issue:
    """An issue from a (n, len(columns)) bool matrix; reports the first bad column."""
    rows = bad.any(axis=1)
    first = np.argmax(bad, axis=1) if rows.any() else np.zeros(len(rows), dtype=np.int64)
    return _Issue(rows, np.asarray(columns)[first], lambda r: problem)


def _not_whole(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (x != np.rint(x)) | (np.abs(x) > _MAX_EXACT)


def _book_issues(book: _Table) -> list[_Issue]:
    """Row-local problems of an orderbook table, in reporting order."""
    v = book.values
    n_levels = v.shape[1] // 4
    price_cols = [c for i in range(n_levels) for c in (4 * i, 4 * i + 2)]
    size_cols = [c for i in range(n_levels) for c in (4 * i + 1, 4 * i + 3)]
    prices, sizes = v[:, price_cols], v[:, size_cols]
    empty = np.zeros_like(prices, dtype=bool)
    empty[:, 0::2] = prices[:, 0::2] == _EMPTY_ASK
    empty[:, 1::2] = prices[:, 1::2] == _EMPTY_BID
    with np.errstate(invalid="ignore"):
        ask1, bid1 = v[:, 0], v[:, 2]
        crossed = ~empty[:, 0] & ~empty[:, 1] & (bid1 >= ask1)
        issues = [
            *_format_issues(book),
            _column_issue(~np.isfinite(v), list(range(v.shape[1])), "value is not finite"),
            _column_issue(_not_whole(prices), price_cols, "price is not a whole number of 1e-4 $"),
            _column_issue(_not_whole(sizes), size_cols, "size is not a whole number of shares"),
            _column_issue(sizes < 0, size_cols, "size is negative"),
            _column_issue(
                ~empty & (prices <= 0),
                price_cols,
                "price is not positive (empty levels use ask 9999999999 / bid -9999999999)",
            ),
            _column_issue(
                empty & (sizes != 0), size_cols, "empty level (marker price) has a non-zero size"
            ),
            _Issue(
                crossed,
                np.full(len(book), 2),
                lambda r: (
                    f"book is {'locked' if bid1[r] == ask1[r] else 'crossed'} at level 1: "
                    f"bid {bid1[r] / _PRICE_SCALE} {'==' if bid1[r] == ask1[r] else '>'} "
                    f"ask {ask1[r] / _PRICE_SCALE}"
                ),
            ),
        ]
    return issues


def _message_issues(msgs: _Table) -> list[_Issue]:
    """Row-local problems of a message table, in reporting order (time order excluded)."""
    v = msgs.values
    with np.errstate(invalid="ignore"):
        event_type, direction = v[:, 1], v[:, 5]
        return [
            *_format_issues(msgs),
            _column_issue(~np.isfinite(v), list(range(6)), "value is not finite"),
            _column_issue(
                ~np.isin(event_type, list(EVENT_TYPES))[:, None],
                [1],
                "unknown event type (LOBSTER types are 1..7)",
            ),
            _column_issue(
                ~np.isin(direction, [-1.0, 1.0])[:, None],
                [5],
                "direction must be 1 (buy) or -1 (sell)",
            ),
            _column_issue(_not_whole(v[:, 2:5]), [2, 3, 4], "not a whole number"),
            _column_issue(v[:, 2:4] < 0, [2, 3], "negative order id or size"),
        ]


def _time_issue(msgs: _Table, valid: np.ndarray) -> _Issue:
    """Rows among `valid` whose time is earlier than the latest time of the valid rows
    before them (the rows that would be kept)."""
    time = msgs.values[:, 0]
    rows = np.flatnonzero(valid)
    latest = np.maximum.accumulate(time[rows])
    earlier = np.zeros(len(msgs), dtype=bool)
    earlier[rows[1:]] = time[rows[1:]] < latest[:-1]
    latest_before = np.full(len(msgs), np.nan)
    latest_before[rows[1:]] = latest[:-1]
    return _Issue(
        earlier,
        np.zeros(len(msgs), dtype=np.int64),
        lambda r: f"time goes backwards (an earlier row has time {float(latest_before[r])!r})",
    )
