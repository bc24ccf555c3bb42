"""Row-local checks of LOBSTER files, as `data.table.Issue`s in reporting order.

A row-local problem concerns one data row (the same row of both files): with
``skip_invalid=True`` `read_lobster` drops that row; otherwise the first flagged row
raises. The checks are vectorised over all rows; messages are built only when asked.
"""

from __future__ import annotations

import numpy as np

from streamgrad.data.lobster_format import EMPTY_ASK, EMPTY_BID, EVENT_TYPES, PRICE_SCALE, Fields
from streamgrad.data.table import Issue, flagged, matrix_issue, time_order

_MAX_EXACT = 2.0**53  # integers above this are not exact in float64


def row_issues(book: Fields, msgs: Fields | None) -> list[Issue]:
    """Every row-local check, in reporting order: the message file's checks, its time
    order among the rows that pass every other check, then the orderbook's checks."""
    issues = _book_issues(book)
    if msgs is None:
        return issues
    checks = _message_issues(msgs)
    return [*checks, _time_issue(msgs, ~flagged([*checks, *issues])), *issues]


def _format_issues(fields: Fields) -> list[Issue]:
    """Rows with the wrong number of fields, then fields that are not numbers."""
    counts, n_fields = fields.field_counts, fields.n_fields
    return [
        Issue(
            fields.table,
            counts != n_fields,
            np.minimum(counts, n_fields),  # the first missing or the first extra field
            lambda r: f"row has {counts[r]} fields, expected {n_fields}",
        ),
        Issue(fields.table, fields.bad_field >= 0, fields.bad_field, lambda r: "not a number"),
    ]


def _not_whole(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (x != np.rint(x)) | (np.abs(x) > _MAX_EXACT)


def _book_issues(book: Fields) -> list[Issue]:
    """Row-local problems of an orderbook file, in reporting order."""
    v, table = book.values, book.table
    n_levels = v.shape[1] // 4
    price_cols = [c for i in range(n_levels) for c in (4 * i, 4 * i + 2)]
    size_cols = [c for i in range(n_levels) for c in (4 * i + 1, 4 * i + 3)]
    prices, sizes = v[:, price_cols], v[:, size_cols]
    empty = np.zeros_like(prices, dtype=bool)
    empty[:, 0::2] = prices[:, 0::2] == EMPTY_ASK
    empty[:, 1::2] = prices[:, 1::2] == EMPTY_BID
    with np.errstate(invalid="ignore"):
        ask1, bid1 = v[:, 0], v[:, 2]
        crossed = ~empty[:, 0] & ~empty[:, 1] & (bid1 >= ask1)
        return [
            *_format_issues(book),
            matrix_issue(table, ~np.isfinite(v), range(v.shape[1]), "value is not finite"),
            matrix_issue(
                table, _not_whole(prices), price_cols, "price is not a whole number of 1e-4 $"
            ),
            matrix_issue(
                table, _not_whole(sizes), size_cols, "size is not a whole number of shares"
            ),
            matrix_issue(table, sizes < 0, size_cols, "size is negative"),
            matrix_issue(
                table,
                ~empty & (prices <= 0),
                price_cols,
                "price is not positive (empty levels use ask 9999999999 / bid -9999999999)",
            ),
            matrix_issue(
                table,
                empty & (sizes != 0),
                size_cols,
                "empty level (marker price) has a non-zero size",
            ),
            Issue(
                table,
                crossed,
                np.full(len(book), 2),
                lambda r: (
                    f"book is {'locked' if bid1[r] == ask1[r] else 'crossed'} at level 1: "
                    f"bid {bid1[r] / PRICE_SCALE} {'==' if bid1[r] == ask1[r] else '>'} "
                    f"ask {ask1[r] / PRICE_SCALE}"
                ),
            ),
        ]


def _message_issues(msgs: Fields) -> list[Issue]:
    """Row-local problems of a message file, in reporting order (time order excluded)."""
    v, table = msgs.values, msgs.table
    with np.errstate(invalid="ignore"):
        event_type, direction = v[:, 1], v[:, 5]
        return [
            *_format_issues(msgs),
            matrix_issue(table, ~np.isfinite(v), range(6), "value is not finite"),
            matrix_issue(
                table,
                ~np.isin(event_type, list(EVENT_TYPES))[:, None],
                [1],
                "unknown event type (LOBSTER types are 1..7)",
            ),
            matrix_issue(
                table,
                ~np.isin(direction, [-1.0, 1.0])[:, None],
                [5],
                "direction must be 1 (buy) or -1 (sell)",
            ),
            matrix_issue(table, _not_whole(v[:, 2:5]), [2, 3, 4], "not a whole number"),
            matrix_issue(table, v[:, 2:4] < 0, [2, 3], "negative order id or size"),
        ]


def _time_issue(msgs: Fields, valid: np.ndarray) -> Issue:
    """Rows among `valid` whose time is earlier than an earlier valid row's; equal times
    are fine (the non-strict order of `data.table`: events can share a time stamp)."""
    late, previous = time_order(msgs.values[:, 0], valid, strict=False)
    return Issue(
        msgs.table,
        late,
        np.zeros(len(msgs), dtype=np.int64),
        lambda r: f"time goes backwards (an earlier row has time {float(previous[r])!r})",
    )
