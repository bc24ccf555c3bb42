"""Tests of the shared validated-table layer (streamgrad.data.table): gzip-compressed input
read identically by both readers, byte decoding, located errors and the time order."""

from __future__ import annotations

import gzip
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from streamgrad.data.dataset import Stream
from streamgrad.data.lobster import LobsterDay, read_lobster
from streamgrad.data.table import Issue, Table, enforce, read_source, time_order
from streamgrad.data.tabular import read_table, write_table
from streamgrad.errors import DataError

_NAME = "AMZN_2012-06-21_34200000_57600000_{}_1.csv"

# 4 events, 1 level, with a header line on the orderbook and a CRLF line ending.
MESSAGE = b"34200.1,1,11,100,2238100,1\n34200.2,1,12,50,2239500,-1\n34200.2,3,11,100,2238100,1\n"
MESSAGE += b"34200.4,5,0,10,2239000,1\r\n"
ORDERBOOK = b"ASK_1_PRICE,ASK_1_QTY,BID_1_PRICE,BID_1_QTY\n2239500,100,2238100,100\n"
ORDERBOOK += b"2239500,150,2238100,100\n2239500,150,2238000,300\n2239500,130,2238000,300\n"

_FIELDS = ("ask_price", "ask_size", "bid_price", "bid_size", "time", "event_type", "order_id")
_FIELDS += ("size", "price", "direction", "lines", "skipped_rows", "skipped_reasons")


def _write(path: Path, data: bytes, *, compress: bool) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _assert_same_day(a: LobsterDay, b: LobsterDay) -> None:
    assert a.n_levels == b.n_levels and len(a) == len(b)
    for name in _FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _assert_same_stream(a: Stream, b: Stream) -> None:
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert a.targets.dtype == b.targets.dtype and a.n_classes == b.n_classes
    assert (a.input_names, a.target_name, a.skipped_rows) == (
        b.input_names,
        b.target_name,
        b.skipped_rows,
    )


# --- gzip: LOBSTER ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv"])  # by suffix, or by magic bytes alone
def test_gzipped_lobster_pair_reads_like_the_plain_one(tmp_path: Path, suffix: str) -> None:
    plain = read_lobster(
        _write(tmp_path / "ob.csv", ORDERBOOK, compress=False),
        _write(tmp_path / "msg.csv", MESSAGE, compress=False),
    )
    packed = tmp_path / "packed"
    packed.mkdir()
    day = read_lobster(
        _write(packed / f"ob{suffix}", ORDERBOOK, compress=True),
        _write(packed / f"msg{suffix}", MESSAGE, compress=True),
    )
    _assert_same_day(day, plain)
    assert len(day) == 4 and day.lines.tolist() == [2, 3, 4, 5]
    assert day.time.tolist() == [34200.1, 34200.2, 34200.2, 34200.4]  # equal stamps allowed


def _bundled(kind: str) -> bytes | None:
    """The uncompressed bytes of the bundled day's `kind` file (the package ships it gzipped);
    None when it is not there."""
    packed = files("streamgrad").joinpath("resources", "lobster", _NAME.format(kind) + ".gz")
    return gzip.decompress(packed.read_bytes()) if packed.is_file() else None


def test_gzipped_bundled_day_reads_like_the_plain_one(tmp_path: Path) -> None:
    contents = {kind: _bundled(kind) for kind in ("orderbook", "message")}
    if None in contents.values():
        pytest.skip("no bundled LOBSTER day")
    days = {}
    for compress in (False, True):
        folder = tmp_path / str(compress)
        folder.mkdir()
        ob, msg = (
            _write(folder / (_NAME.format(kind) + ".gz" * compress), data, compress=compress)
            for kind, data in contents.items()
        )
        days[compress] = read_lobster(ob, msg)
    _assert_same_day(days[True], days[False])
    assert len(days[True]) == 57_515 and days[True].orderbook_file.endswith(".csv.gz")


def test_gzipped_lobster_errors_are_located_as_in_the_plain_file(tmp_path: Path) -> None:
    bad = MESSAGE.replace(b"34200.4,5", b"34200.4,9")
    plain = tmp_path / "msg.csv"
    packed = tmp_path / "msg.csv.gz"
    errors = []
    for path, compress in ((plain, False), (packed, True)):
        with pytest.raises(DataError) as info:
            read_lobster(
                _write(tmp_path / "ob.csv", ORDERBOOK, compress=False),
                _write(path, bad, compress=compress),
            )
        errors.append(info.value)
    assert [(e.row, e.column, e.value) for e in errors] == [(4, "event_type", "9")] * 2
    assert str(errors[1]) == str(errors[0]).replace("msg.csv", "msg.csv.gz")


# --- gzip: read_table / write_table ----------------------------------------------------


@pytest.mark.parametrize("name", ["t.csv.gz", "u.csv"])  # by suffix, or by magic bytes alone
def test_gzipped_csv_reads_like_the_plain_one(tmp_path: Path, name: str) -> None:
    text = b"t,a,y\n1,0.5,0\n2,1.5,1\n\n3,oops,1\n4,2.5,2\n"
    plain = _write(tmp_path / "t.csv", text, compress=False)
    packed = _write(tmp_path / name, text, compress=True)
    stream = read_table(packed, "y", time="t", skip_invalid=True)
    _assert_same_stream(stream, read_table(plain, "y", time="t", skip_invalid=True))
    assert stream.skipped_rows == (5,) and stream.n_classes == 3
    with pytest.raises(DataError) as info:
        read_table(packed, "y")
    assert (info.value.row, info.value.column, info.value.value) == (5, "a", "oops")


@pytest.mark.parametrize("suffix", [".csv.gz", ".tsv.gz", ".TXT.GZ"])
def test_write_table_compresses_and_reads_back(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    stream = Stream(rng.standard_normal((30, 2)), rng.standard_normal(30), ("a", "b"), "y")
    path = tmp_path / f"s{suffix}"
    write_table(stream, path)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    _assert_same_stream(read_table(path, "y", task="regression"), stream)


def test_parquet_cannot_be_gzipped_and_broken_gzip_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown file type '\.parquet\.gz'"):
        read_table(_write(tmp_path / "t.parquet.gz", b"a,y\n1,2\n", compress=True), "y")
    truncated = gzip.compress(b"a,y\n1,2\n" * 100)[:30]
    with pytest.raises(DataError, match="cannot decompress file"):
        read_table(_write(tmp_path / "t.csv", truncated, compress=False), "y")
    with pytest.raises(DataError, match="cannot decompress message file"):
        read_lobster(
            _write(tmp_path / "ob.csv", ORDERBOOK, compress=False),
            _write(tmp_path / "m.csv.gz", MESSAGE, compress=False),  # .gz name, plain bytes
        )
    with pytest.raises(DataError, match="file is empty"):
        read_table(_write(tmp_path / "e.csv.gz", b" \n", compress=True), "y")


# --- bytes and located errors ----------------------------------------------------------


def test_source_strips_the_byte_order_mark_and_counts_it_in_offsets(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", b"\xef\xbb\xbfa,y\n1,\xff\n", compress=False)
    source = read_source(path)
    assert source.data == b"a,y\n1,\xff\n" and source.offset == 3
    with pytest.raises(DataError, match=r"row 2: not UTF-8 text \(invalid byte at offset 9\)"):
        source.text()
    binary = read_source(_write(tmp_path / "b.csv", b"a,y\n\n1,\x002\n", compress=False))
    with pytest.raises(DataError, match="row 3: contains a NUL byte"):
        binary.text()


def test_enforce_reports_the_first_row_then_the_first_issue() -> None:
    table = Table("f.csv", ("a", "b"), np.array([2, 3, 5]), 1, lambda i, j: f"v{i}{j}")
    late = Issue(table, np.array([False, True, True]), np.array([0, 1, 1]), lambda i: "late")
    odd = Issue(table, np.array([False, True, False]), np.array([0, 0, 0]), lambda i: "odd")
    with pytest.raises(DataError) as info:
        enforce([odd, late], skip=False)
    assert str(info.value) == "f.csv, row 3, column 'a', value 'v10': odd"
    assert enforce([late, odd], skip=True).tolist() == [False, True, True]
    assert not enforce([Issue(table, np.zeros(3, bool), np.zeros(3, int), str)], False).any()


@pytest.mark.parametrize(
    ("strict", "late"),
    [(True, [0, 0, 1, 1, 0, 0, 0]), (False, [0, 0, 0, 1, 0, 0, 0])],
)
def test_time_order_semantics(strict: bool, late: list[int]) -> None:
    """Time never goes backwards; strict also refuses equal stamps. Invalid rows (the NaN
    and the final 0) take no part, and a late row does not move the latest stamp."""
    stamps = np.array([1.0, 2.0, 2.0, 1.5, np.nan, 9.0, 0.0])
    valid = np.array([True, True, True, True, False, True, False])
    flags, previous = time_order(stamps, valid, strict=strict)
    assert flags.tolist() == [bool(x) for x in late]
    assert previous.tolist() == [-np.inf, 1.0, 2.0, 2.0, 2.0, 2.0, 9.0]
