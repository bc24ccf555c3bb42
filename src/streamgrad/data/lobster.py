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

Layout: `lobster_format` holds the format (columns, event types, units) and parses a file,
`lobster_checks` holds the row-local checks, and the shared `data.table` layer reads the
bytes (plain or gzip-compressed), locates errors and checks the time order (LOBSTER's is
not strict: several events can share a time stamp).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamgrad.data.lobster_checks import row_issues
from streamgrad.data.lobster_format import (
    EMPTY_ASK,
    EMPTY_BID,
    EVENT_TYPES,
    MESSAGE_COLUMNS,
    PRICE_SCALE,
    Fields,
    orderbook_columns,
    read_fields,
)
from streamgrad.data.table import Issue, enforce, first_error
from streamgrad.errors import DataError, UserError

__all__ = ["EVENT_TYPES", "MESSAGE_COLUMNS", "LobsterDay", "orderbook_columns", "read_lobster"]


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
    fields is a number), LF or CRLF line endings, a UTF-8 byte-order mark, gzip
    compression (e.g. `day_message_1.csv.gz`), any number of book levels (the orderbook
    has 4*L columns; L is inferred), and an extra trailing column in the message file
    (7 columns, ignored). `levels` keeps the first `levels` book levels; asking for more
    than the file has is an error.

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
    book = read_fields(Path(orderbook), kind="orderbook")
    n_file_levels = book.n_fields // 4
    if levels is not None and levels > n_file_levels:
        raise DataError(
            f"asked for {levels} book levels but the file has {n_file_levels}",
            file=book.table.file,
        )
    msgs = read_fields(Path(message), kind="message") if message is not None else None
    if msgs is not None and len(msgs) != len(book):
        raise _length_mismatch(book, msgs)
    issues = row_issues(book, msgs)
    bad = enforce(issues, skip_invalid)
    if bad.all():
        first = first_error(issues, 0)
        raise DataError(f"no valid row left after skipping all {len(book)}; first: {first}")
    return _make_day(book, msgs, levels or n_file_levels, bad, issues)


def _length_mismatch(book: Fields, msgs: Fields) -> DataError:
    """The error for files of different lengths, at the first row the shorter one lacks."""
    longer, shorter = (msgs, book) if len(msgs) > len(book) else (book, msgs)
    return DataError(
        f"has {len(longer)} data rows but {shorter.table.file} has {len(shorter)}; "
        "row k of the orderbook must be the book after message k",
        file=longer.table.file,
        row=int(longer.table.rows[len(shorter)]),
    )


def _make_day(
    book: Fields, msgs: Fields | None, levels: int, bad: np.ndarray, issues: list[Issue]
) -> LobsterDay:
    """Build the `LobsterDay` from the rows not flagged by `bad` (n,) bool, recording the
    flagged ones with their first problem among `issues`."""
    keep = ~bad
    skipped = np.flatnonzero(bad)
    ob = book.values[keep].reshape(-1, book.n_fields // 4, 4)[:, :levels]
    ask_price = np.where(ob[:, :, 0] == EMPTY_ASK, np.nan, ob[:, :, 0] / PRICE_SCALE)
    bid_price = np.where(ob[:, :, 2] == EMPTY_BID, np.nan, ob[:, :, 2] / PRICE_SCALE)
    msg_arrays: list[np.ndarray | None] = [None] * 6
    if msgs is not None:
        m = msgs.values[keep]
        msg_arrays = [
            m[:, 0],
            m[:, 1].astype(np.int64),
            m[:, 2].astype(np.int64),
            m[:, 3],
            m[:, 4] / PRICE_SCALE,
            m[:, 5].astype(np.int64),
        ]
    arrays = [
        ask_price,
        np.ascontiguousarray(ob[:, :, 1]),
        bid_price,
        np.ascontiguousarray(ob[:, :, 3]),
        *msg_arrays,
        book.table.rows[keep].astype(np.int64),
    ]
    for array in arrays:
        if array is not None:
            array.setflags(write=False)
    return LobsterDay(
        *arrays,
        n_levels=levels,
        orderbook_file=book.table.file,
        message_file=msgs.table.file if msgs is not None else None,
        skipped_rows=tuple(int(book.table.rows[r]) for r in skipped),
        skipped_reasons=tuple(str(first_error(issues, int(r))) for r in skipped),
    )
