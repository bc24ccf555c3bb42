"""Tests of the LOBSTER reader: the real AMZN day, layouts, validation, corruption."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamgrad.data.lob_features import lob_features
from streamgrad.data.lobster import LobsterDay, read_lobster
from streamgrad.errors import DataError, UserError

_NAME = "AMZN_2012-06-21_34200000_57600000_{}_1.csv"
_CANDIDATES = (
    Path(__file__).resolve().parents[1] / "shared" / "data" / "lobster",
    Path("/work/shared/data/lobster"),
)
DATA = next((d for d in _CANDIDATES if (d / _NAME.format("message")).is_file()), None)
needs_data = pytest.mark.skipif(DATA is None, reason="LOBSTER sample files not found")
MESSAGE = DATA / _NAME.format("message") if DATA else Path()
ORDERBOOK = DATA / _NAME.format("orderbook") if DATA else Path()

# A small valid pair: 5 events, 1 level; the orderbook file has a header line.
BASE_MESSAGE = [
    "34200.1,1,11,100,2238100,1",
    "34200.2,1,12,50,2239500,-1",
    "34200.3,3,11,100,2238100,1",
    "34200.3,4,12,20,2239500,-1",
    "34200.4,5,0,10,2239000,1",
]
BASE_ORDERBOOK = [
    "2239500,100,2238100,100",
    "2239500,150,2238100,100",
    "2239500,150,2238000,300",
    "2239500,130,2238000,300",
    "2239500,130,2238000,300",
]
HEADER = "ASK_1_PRICE,ASK_1_QTY,BID_1_PRICE,BID_1_QTY"


def write_pair(
    folder: Path,
    message: list[str] | None = None,
    orderbook: list[str] | None = None,
    *,
    header: bool = True,
    newline: str = "\n",
) -> tuple[Path, Path]:
    """Write a message/orderbook pair (defaults: the BASE files); returns (orderbook, msg)."""
    message = BASE_MESSAGE if message is None else message
    orderbook = BASE_ORDERBOOK if orderbook is None else orderbook
    msg_path, ob_path = folder / "message.csv", folder / "orderbook.csv"
    msg_path.write_bytes("".join(row + newline for row in message).encode())
    ob_lines = ([HEADER] if header else []) + orderbook
    ob_path.write_bytes("".join(row + newline for row in ob_lines).encode())
    return ob_path, msg_path


def set_field(rows: list[str], row: int, col: int, value: str) -> list[str]:
    fields = rows[row].split(",")
    fields[col] = value
    return [*rows[:row], ",".join(fields), *rows[row + 1 :]]


def assert_valid(day: LobsterDay) -> None:
    """The invariants every returned day satisfies."""
    n = len(day)
    assert n > 0
    for a in (day.ask_size, day.bid_size, day.ask_price, day.bid_price):
        assert a.shape == (n, day.n_levels)
    assert np.all(day.ask_size >= 0) and np.all(day.bid_size >= 0)
    assert np.all(np.isnan(day.ask_price) | (day.ask_price > 0))
    assert np.all(np.isnan(day.bid_price) | (day.bid_price > 0))
    with np.errstate(invalid="ignore"):
        assert not np.any(day.bid_price[:, 0] >= day.ask_price[:, 0])
    assert np.all(np.diff(day.lines) > 0)
    assert not set(day.lines.tolist()) & set(day.skipped_rows)
    assert len(day.skipped_rows) == len(day.skipped_reasons)
    if day.has_messages:
        assert day.time.shape == (n,) and np.all(np.isfinite(day.time))
        assert np.all(np.diff(day.time) >= 0)
        assert set(np.unique(day.event_type)) <= set(range(1, 8))
        assert set(np.unique(day.direction)) <= {-1, 1}
        assert np.all(day.size >= 0)


# --- the real AMZN day ---------------------------------------------------------------


@pytest.fixture(scope="module")
def amzn() -> LobsterDay:
    return read_lobster(ORDERBOOK, MESSAGE)


@needs_data
def test_real_day_loads(amzn: LobsterDay) -> None:
    assert len(amzn) == 57_515 and amzn.n_levels == 1
    assert_valid(amzn)
    types, counts = np.unique(amzn.event_type, return_counts=True)
    assert dict(zip(types.tolist(), counts.tolist(), strict=True)) == {
        1: 27_845,
        2: 16,
        3: 18_235,
        4: 8_974,
        5: 2_445,
    }
    mid = (amzn.ask_price[:, 0] + amzn.bid_price[:, 0]) / 2
    assert mid.min() == pytest.approx(220.52) and mid.max() == pytest.approx(226.025)
    assert mid[0] == pytest.approx(223.565) and mid[-1] == pytest.approx(220.575)
    assert amzn.time[0] == 34200.017459617 and amzn.time[-1] == 57599.95935965
    assert amzn.price[0] == 223.82 and amzn.order_id[1] == 11_885_113
    assert amzn.lines[0] == 2 and amzn.lines[-1] == 57_516  # header is line 1
    assert amzn.skipped_rows == () and not np.isnan(amzn.ask_price).any()
    assert not amzn.ask_price.flags.writeable


@needs_data
def test_real_day_layout_variants(tmp_path: Path, amzn: LobsterDay) -> None:
    """No header, CRLF, a 7th message column and book-only reading give the same data."""
    n = 2000
    msg_rows = MESSAGE.read_text().splitlines()[:n]
    ob_rows = ORDERBOOK.read_text().splitlines()[1 : n + 1]
    variants = {
        "plain": write_pair(tmp_path, msg_rows, ob_rows, header=False),
    }
    for name, kwargs, rows in (
        ("crlf", {"newline": "\r\n"}, msg_rows),
        ("seventh_zero", {}, [r + ",0" for r in msg_rows]),
        ("seventh_text", {}, [r + ",MPID" for r in msg_rows]),
    ):
        folder = tmp_path / name
        folder.mkdir()
        variants[name] = write_pair(folder, rows, ob_rows, **kwargs)
    for name, (ob, msg) in variants.items():
        day = read_lobster(ob, msg)
        assert len(day) == n, name
        for field in ("ask_price", "ask_size", "bid_price", "bid_size", "time", "event_type"):
            np.testing.assert_array_equal(getattr(day, field), getattr(amzn, field)[:n])
        assert day.lines[0] == (1 if name == "plain" else 2)
    book_only = read_lobster(variants["plain"][0])
    assert not book_only.has_messages and book_only.time is None and book_only.message_file is None
    np.testing.assert_array_equal(book_only.bid_size, amzn.bid_size[:n])


# --- layouts on small synthetic files -----------------------------------------------


def test_base_pair_reads(tmp_path: Path) -> None:
    day = read_lobster(*write_pair(tmp_path))
    assert_valid(day)
    assert len(day) == 5 and day.message_file.endswith("message.csv")
    np.testing.assert_array_equal(day.event_type, [1, 1, 3, 4, 5])
    np.testing.assert_array_equal(day.direction, [1, -1, 1, -1, 1])
    assert day.price[0] == 223.81 and day.bid_price[2, 0] == 223.80
    np.testing.assert_array_equal(day.lines, [2, 3, 4, 5, 6])


def test_header_only_when_no_field_is_a_number(tmp_path: Path) -> None:
    """A data row whose first field is corrupted is reported, not taken as a header."""
    rows = set_field(BASE_MESSAGE, 0, 0, "x34200.1")
    with pytest.raises(DataError, match=r"message\.csv, row 1, column 'time'"):
        read_lobster(*write_pair(tmp_path, rows))
    day = read_lobster(*write_pair(tmp_path, rows), skip_invalid=True)
    assert day.skipped_rows == (2,) and len(day) == 4  # orderbook line 2 = data row 1


def test_multi_level_with_empty_levels(tmp_path: Path) -> None:
    """3 levels, with LOBSTER's empty-level markers on deeper levels."""
    rows = [
        "2239500,100,2238100,200,2239600,50,2238000,70,2239700,10,2237900,5",
        "2239500,100,2238100,200,2239600,50,-9999999999,0,9999999999,0,-9999999999,0",
        "2239500,90,2238100,200,9999999999,0,2238000,70,9999999999,0,-9999999999,0",
    ]
    ob = tmp_path / "ob.csv"
    ob.write_text("\n".join(rows) + "\n")
    day = read_lobster(ob)
    assert_valid(day)
    assert day.n_levels == 3 and day.ask_price.shape == (3, 3)
    np.testing.assert_array_equal(day.ask_price[0], [223.95, 223.96, 223.97])
    np.testing.assert_array_equal(day.bid_price[1], [223.81, np.nan, np.nan])
    np.testing.assert_array_equal(day.ask_price[2], [223.95, np.nan, np.nan])
    np.testing.assert_array_equal(day.ask_size[2], [90, 0, 0])
    two = read_lobster(ob, levels=2)
    assert two.n_levels == 2 and two.bid_size.shape == (3, 2)
    np.testing.assert_array_equal(two.bid_size, day.bid_size[:, :2])
    with pytest.raises(DataError, match="asked for 4 book levels but the file has 3"):
        read_lobster(ob, levels=4)
    with pytest.raises(UserError, match="at least 1"):
        read_lobster(ob, levels=0)


# --- validation ------------------------------------------------------------------------

Edit = Callable[[list[str], list[str]], tuple[list[str], list[str]]]


def _msg(row: int, col: int, value: str) -> Edit:
    return lambda m, o: (set_field(m, row, col, value), o)


def _ob(row: int, col: int, value: str) -> Edit:
    return lambda m, o: (m, set_field(o, row, col, value))


# (edit, file, line in that file, column, words in the problem). The orderbook has a header.
ROW_CASES: dict[str, tuple[Edit, str, int, str, str]] = {
    "text": (_ob(1, 1, "abc"), "orderbook", 3, "ask_size_1", "not a number"),
    "empty_field": (_msg(2, 3, ""), "message", 3, "size", "not a number"),
    "random_bytes": (_msg(1, 4, "22\x0139"), "message", 2, "price", "not a number"),
    "nan": (_ob(3, 2, "nan"), "orderbook", 5, "bid_price_1", "not finite"),
    "inf_time": (_msg(4, 0, "inf"), "message", 5, "time", "not finite"),
    "missing_field": (
        lambda m, o: ([*m[:2], m[2].rsplit(",", 1)[0], *m[3:]], o),
        "message",
        3,
        "direction",
        "5 fields, expected 6",
    ),
    "extra_field": (
        lambda m, o: (m, [*o[:3], o[3] + ",7", *o[4:]]),
        "orderbook",
        5,
        "field_5",
        "5 fields, expected 4",
    ),
    "negative_book_size": (_ob(2, 3, "-300"), "orderbook", 4, "bid_size_1", "negative"),
    "negative_msg_size": (_msg(1, 3, "-50"), "message", 2, "size", "negative"),
    "fractional_price": (_ob(0, 0, "2239500.5"), "orderbook", 2, "ask_price_1", "whole number"),
    "zero_price": (_ob(0, 2, "0"), "orderbook", 2, "bid_price_1", "not positive"),
    "empty_level_with_size": (
        _ob(4, 0, "9999999999"),
        "orderbook",
        6,
        "ask_size_1",
        "non-zero size",
    ),
    "crossed": (_ob(2, 2, "2239600"), "orderbook", 4, "bid_price_1", "crossed"),
    "locked": (_ob(2, 2, "2239500"), "orderbook", 4, "bid_price_1", "locked"),
    "event_type_9": (_msg(3, 1, "9"), "message", 4, "event_type", "unknown event type"),
    "event_type_0": (_msg(0, 1, "0"), "message", 1, "event_type", "unknown event type"),
    "direction_0": (_msg(2, 5, "0"), "message", 3, "direction", "direction must be"),
    "time_backwards": (_msg(3, 0, "34200.25"), "message", 4, "time", "time goes backwards"),
}


@pytest.mark.parametrize("case", sorted(ROW_CASES))
def test_row_problems_name_file_line_column(tmp_path: Path, case: str) -> None:
    edit, which, line, column, problem = ROW_CASES[case]
    message, orderbook = edit(list(BASE_MESSAGE), list(BASE_ORDERBOOK))
    ob, msg = write_pair(tmp_path, message, orderbook)
    with pytest.raises(DataError) as info:
        read_lobster(ob, msg)
    text = str(info.value)
    assert f"{which}.csv, row {line}, column '{column}'" in text
    assert problem in text and "\n" not in text
    assert info.value.row == line and info.value.column == column
    # skip_invalid drops that data row from both files and records it.
    day = read_lobster(ob, msg, skip_invalid=True)
    assert_valid(day)
    data_row = line - (which == "orderbook")
    assert day.skipped_rows == (data_row + 1,)  # orderbook line numbers (header = line 1)
    assert day.skipped_reasons == (text,)
    assert len(day) == 4 and data_row + 1 not in day.lines


STRUCTURAL_CASES: dict[str, tuple[Edit, str, str]] = {
    "empty_message": (lambda m, o: ([], o), "message", "message file is empty"),
    "blank_message": (lambda m, o: (["  ", ""], o), "message", "message file is empty"),
    "header_only": (lambda m, o: (m, []), "orderbook", "header line but no data"),
    "row_deleted_in_one_file": (lambda m, o: (m[:3] + m[4:], o), "orderbook", "has 5 data rows"),
    "five_columns_everywhere": (
        lambda m, o: (m, [r + ",1" for r in o]),
        "orderbook",
        "4 per level",
    ),
    "eight_message_columns": (
        lambda m, o: ([r + ",1,1" for r in m], o),
        "message",
        "LOBSTER messages have 6",
    ),
}


@pytest.mark.parametrize("skip_invalid", [False, True])
@pytest.mark.parametrize("case", sorted(STRUCTURAL_CASES))
def test_structural_problems_always_raise(tmp_path: Path, case: str, skip_invalid: bool) -> None:
    edit, which, problem = STRUCTURAL_CASES[case]
    message, orderbook = edit(list(BASE_MESSAGE), list(BASE_ORDERBOOK))
    ob, msg = write_pair(tmp_path, message, orderbook)
    with pytest.raises(DataError, match=problem) as info:
        read_lobster(ob, msg, skip_invalid=skip_invalid)
    assert info.value.file.endswith(f"{which}.csv")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="orderbook file not found"):
        read_lobster(tmp_path / "nope.csv")


def test_skip_invalid_in_both_files(tmp_path: Path) -> None:
    message = set_field(BASE_MESSAGE, 1, 1, "8")
    orderbook = set_field(BASE_ORDERBOOK, 3, 1, "x")
    ob, msg = write_pair(tmp_path, message, orderbook, header=False)
    with pytest.raises(DataError, match=r"message\.csv, row 2, column 'event_type'"):
        read_lobster(ob, msg)
    day = read_lobster(ob, msg, skip_invalid=True)
    assert_valid(day)
    assert day.skipped_rows == (2, 4)
    assert "message.csv, row 2" in day.skipped_reasons[0]
    assert "orderbook.csv, row 4, column 'ask_size_1'" in day.skipped_reasons[1]
    np.testing.assert_array_equal(day.lines, [1, 3, 5])
    np.testing.assert_array_equal(day.event_type, [1, 3, 5])  # messages stay aligned
    np.testing.assert_array_equal(day.bid_size[:, 0], [100, 300, 300])


def test_skip_invalid_time_skips_only_the_offending_row(tmp_path: Path) -> None:
    message = set_field(BASE_MESSAGE, 2, 0, "34200.15")  # earlier than row 2
    day = read_lobster(*write_pair(tmp_path, message), skip_invalid=True)
    assert day.skipped_rows == (4,) and "time goes backwards" in day.skipped_reasons[0]
    np.testing.assert_array_equal(day.time, [34200.1, 34200.2, 34200.3, 34200.4])


def test_skip_invalid_with_every_row_bad(tmp_path: Path) -> None:
    orderbook = [r.replace("2238", "2240") for r in BASE_ORDERBOOK]  # all crossed
    with pytest.raises(DataError, match="no valid row left"):
        read_lobster(*write_pair(tmp_path, orderbook=orderbook), skip_invalid=True)


# --- corruption suite -------------------------------------------------------------------

_N_ROWS = 50
if DATA is not None:
    _REAL_MESSAGE = MESSAGE.read_bytes().split(b"\n")[:_N_ROWS]
    _REAL_ORDERBOOK = ORDERBOOK.read_bytes().split(b"\n")[: _N_ROWS + 1]  # with its header
else:
    _REAL_MESSAGE = [r.encode() for r in BASE_MESSAGE]
    _REAL_ORDERBOOK = [HEADER.encode(), *(r.encode() for r in BASE_ORDERBOOK)]

_FIELD_VALUES = st.sampled_from(
    [b"abc", b"", b"nan", b"NaN", b"inf", b"-inf", b"1e400", b" ", b"1.5", b"-1", b"0", b"\xff"]
)


@st.composite
def corruption(draw: st.DrawFn) -> tuple[str, Callable[[bytes], bytes]]:
    """(which file, an edit of that file's bytes)."""
    which = draw(st.sampled_from(["message", "orderbook"]))
    n_lines = len(_REAL_MESSAGE if which == "message" else _REAL_ORDERBOOK)
    row, other = draw(st.integers(0, n_lines - 1)), draw(st.integers(0, n_lines - 1))
    col, at = draw(st.integers(0, 7)), draw(st.integers(0, 200))
    kind = draw(
        st.sampled_from(
            [
                "replace_field",
                "delete_field",
                "add_field",
                "truncate",
                "insert_bytes",
                "swap_times",
                "cross_book",
                "delete_row",
                "empty_file",
            ]
        )
    )
    value = draw(_FIELD_VALUES)
    noise = draw(st.binary(min_size=1, max_size=4))
    ticks = draw(st.integers(0, 3))

    def edit(content: bytes) -> bytes:
        lines = content.split(b"\n")
        if kind == "empty_file" or row >= len(lines):
            return b""
        fields = lines[row].split(b",")
        c = col % len(fields)
        if kind == "replace_field":
            fields[c] = value
        elif kind == "delete_field":
            del fields[c]
        elif kind == "add_field":
            fields.insert(c, value)
        elif kind == "truncate":  # the file ends inside this row
            head = b"".join(line + b"\n" for line in lines[:row])
            return head + lines[row][: at % (len(lines[row]) + 1)]
        elif kind == "insert_bytes":
            cut = at % (len(lines[row]) + 1)
            fields = [lines[row][:cut] + noise + lines[row][cut:]]
        elif kind == "swap_times" and other < len(lines):
            a, b = lines[row].split(b",", 1), lines[other].split(b",", 1)
            if len(a) == 2 and len(b) == 2:
                lines[other] = a[0] + b"," + b[1]
                fields = [b[0], a[1]]
        elif kind == "cross_book" and len(fields) >= 4 and fields[0].isdigit():
            fields[2] = str(int(fields[0]) + 100 * ticks).encode()  # bid >= ask
        elif kind == "delete_row":
            del lines[row]
            return b"\n".join(lines)
        lines[row] = b",".join(fields)
        return b"\n".join(lines)

    return which, edit


def _check_read(orderbook: Path, message: Path) -> None:
    """read_lobster returns a valid day or raises a one-line DataError, never anything else;
    a day that reads cleanly reads the same with skip_invalid and gives finite features."""
    results: dict[bool, LobsterDay | None] = {}
    for skip in (False, True):
        try:
            day = read_lobster(orderbook, message, skip_invalid=skip)
        except DataError as err:
            assert "\n" not in str(err)
            results[skip] = None
            continue
        assert_valid(day)
        assert skip or day.skipped_rows == ()
        results[skip] = day
        try:
            frame = lob_features(day)
        except DataError:
            continue
        assert np.all(np.isfinite(frame.values))
    clean = results[False]
    if clean is not None:
        assert results[True] is not None and results[True].skipped_rows == ()
        np.testing.assert_array_equal(results[True].lines, clean.lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(corruption(), min_size=1, max_size=3))
def test_corrupted_files_give_day_or_data_error(
    edits: list[tuple[str, Callable[[bytes], bytes]]],
) -> None:
    files = {
        "message": b"".join(line + b"\n" for line in _REAL_MESSAGE),
        "orderbook": b"".join(line + b"\n" for line in _REAL_ORDERBOOK),
    }
    for which, edit in edits:
        files[which] = edit(files[which])
    with tempfile.TemporaryDirectory() as folder:
        paths = {which: Path(folder) / f"{which}.csv" for which in files}
        for which, content in files.items():
            paths[which].write_bytes(content)
        _check_read(paths["orderbook"], paths["message"])
