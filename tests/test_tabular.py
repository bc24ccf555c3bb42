"""Tests for streamgrad.data.tabular: round trips, every validation case, corruption fuzzing."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamgrad.data.dataset import Stream
from streamgrad.data.tabular import read_table, write_table
from streamgrad.errors import DataError, UserError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _error(path: Path, target: str = "y", **kwargs: object) -> DataError:
    """Read `path`, expecting a DataError; check its message is one line naming the file."""
    with pytest.raises(DataError) as info:
        read_table(path, target, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert path.name in message
    assert "\n" not in message
    return info.value


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt", ".parquet", ".pq"])
def test_round_trip_regression(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((50, 3)) * np.array([1e-300, 1.0, 1e300])
    stream = Stream(inputs, rng.standard_normal(50), ("a", "b", "c"), "y")
    path = tmp_path / f"s{suffix}"
    write_table(stream, path)
    back = read_table(path, "y", task="regression")
    np.testing.assert_array_equal(back.inputs, stream.inputs)
    np.testing.assert_array_equal(back.targets, stream.targets)
    assert back.inputs.dtype == np.float64 and back.targets.dtype == np.float64
    assert back.input_names == ("a", "b", "c") and back.target_name == "y"
    assert back.n_classes is None and back.skipped_rows == ()
    assert back.source == str(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_classification(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(1)
    stream = Stream(rng.standard_normal((40, 2)), rng.integers(0, 4, 40), ("u", "v"), "label", 4)
    path = tmp_path / f"s{suffix}"
    write_table(stream, path)
    back = read_table(path, "label")
    np.testing.assert_array_equal(back.inputs, stream.inputs)
    np.testing.assert_array_equal(back.targets, stream.targets)
    assert back.targets.dtype == np.int64
    assert back.n_classes == int(stream.targets.max()) + 1


def test_inputs_order_and_subset(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "a,y,b,c\n1,0,2,3\n4,1,5,6\n")
    every = read_table(path, "y")
    assert every.input_names == ("a", "b", "c")
    np.testing.assert_array_equal(every.inputs, [[1, 2, 3], [4, 5, 6]])
    chosen = read_table(path, "y", ["c", "a"])
    assert chosen.input_names == ("c", "a")
    np.testing.assert_array_equal(chosen.inputs, [[3, 1], [6, 4]])


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["a", "b", "y"]) + "\r\n" + delimiter.join(["1.5", "-2", "3"]) + "\r\n"
    stream = read_table(_write(tmp_path, "t.csv", text), "y", task="regression")
    np.testing.assert_array_equal(stream.inputs, [[1.5, -2.0]])
    np.testing.assert_array_equal(stream.targets, [3.0])


def test_quotes_bom_whitespace_and_blank_lines(tmp_path: Path) -> None:
    text = '\ufeff"a", b ,y\n"1", 2 ,3\n\n  \n4,5,6\n\n'
    stream = read_table(_write(tmp_path, "t.csv", text), "y", task="regression")
    assert stream.input_names == ("a", "b")
    np.testing.assert_array_equal(stream.inputs, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(stream.targets, [3, 6])


# --- validation: files -------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in str(_error(tmp_path / "absent.csv"))


def test_directory(tmp_path: Path) -> None:
    directory = tmp_path / "dir.csv"
    directory.mkdir()
    assert "directory" in str(_error(directory))


def test_unknown_suffix(tmp_path: Path) -> None:
    assert "unknown file type" in str(_error(_write(tmp_path, "t.xlsx", "a,y\n1,2\n")))


@pytest.mark.parametrize("text", ["", " \n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    assert "empty" in str(_error(_write(tmp_path, "t.csv", text)))


def test_header_only(tmp_path: Path) -> None:
    assert "no data rows" in str(_error(_write(tmp_path, "t.csv", "a,b,y\n")))


def test_header_not_on_first_line(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "\na,y\n1,2\n"))
    assert error.row == 1 and "header is empty" in str(error)


@pytest.mark.parametrize("header", ["a b y", "a|b|y"])
def test_single_column_wrong_delimiter(tmp_path: Path, header: str) -> None:
    error = _error(_write(tmp_path, "t.csv", f"{header}\n1 2 3\n"))
    assert "wrong delimiter?" in str(error) and "row 1" in str(error)


def test_header_and_rows_use_different_delimiters(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a;b;y\n1,2,3\n"))
    assert "wrong delimiter?" in str(error)
    assert error.row == 2 and error.column == "a" and error.value == "1,2,3"


def test_decimal_comma_hint(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a;b;y\n1;2;3\n1,5;2;3\n"))
    assert error.row == 3 and error.column == "a" and "decimal comma" in str(error)


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b,y\n1,2,3\n\x00\x9f\x12garbage")
    error = _error(path)
    assert error.row == 3 and "binary" in str(error)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("a,b,y\n1,2,3\nt\u00e9,2,3\n".encode("latin-1"))
    error = _error(path)
    assert error.row == 3 and "UTF-8" in str(error)


def test_unclosed_quote(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", 'a,b,y\n1,2,3\n4,"5,6\n7,8,9\n'))
    assert error.row == 3 and "quote" in str(error)


def test_quoted_line_break(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", 'a,b,y\n1,2,3\n4,"5\n5",6\n'))
    assert error.row == 3 and error.column == "b" and "line break" in str(error)


# --- validation: columns -----------------------------------------------------------------


def test_missing_target_lists_columns(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,b,c\n1,2,3\n"))
    assert error.row == 1 and error.column == "y"
    assert "available columns: 'a', 'b', 'c'" in str(error)


def test_missing_input_lists_columns(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,b,y\n1,2,3\n"), inputs=["a", "zz"])
    assert error.column == "zz" and "available columns: 'a', 'b', 'y'" in str(error)


def test_missing_header_hint(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "1,2,3\n4,5,6\n"))
    assert "header row missing" in str(error)


def test_duplicated_column_name(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,b,a,y\n1,2,3,4\n"))
    assert error.row == 1 and error.column == "a" and "columns 1 and 3" in str(error)


def test_empty_column_name(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", ",a,y\n0,1,2\n"))
    assert error.row == 1 and "column 1 has an empty name" in str(error)


def test_target_is_also_an_input(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,b,y\n1,2,3\n"), inputs=["a", "y"])
    assert error.column == "y" and "both the target and an input" in str(error)


def test_input_listed_twice(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,b,y\n1,2,3\n"), inputs=["a", "a"])
    assert error.column == "a" and "twice" in str(error)


def test_no_inputs_given(tmp_path: Path) -> None:
    assert "no input columns" in str(_error(_write(tmp_path, "t.csv", "a,y\n1,2\n"), inputs=[]))


def test_no_input_columns_left(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"y": [1.0, 2.0]}), path)
    assert "no input columns left" in str(_error(path))


def test_bad_arguments(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "a,y\n1,2\n")
    with pytest.raises(UserError, match="task"):
        read_table(path, "y", task="ranking")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="not the string"):
        read_table(path, "y", "a")


# --- validation: cells -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("abc", "not a number"),
        ("", "empty cell"),
        ("   ", "empty cell"),
        ("nan", "missing value (NaN)"),
        ("NaN", "missing value (NaN)"),
        ("inf", "infinite value"),
        ("-inf", "infinite value"),
        ("1e999", "infinite value"),
    ],
)
def test_invalid_cell_is_located(tmp_path: Path, cell: str, problem: str) -> None:
    # Line 3 is blank, so the bad cell on line 5 is data record 3 but row 5.
    text = f"a,b,y\n1,2,3\n\n4,5,6\n7,{cell},9\n10,11,12\n"
    error = _error(_write(tmp_path, "t.csv", text))
    assert (error.row, error.column, error.value) == (5, "b", cell)
    message = str(error)
    assert "row 5" in message and "column 'b'" in message and problem in message


def test_first_invalid_cell_is_reported(tmp_path: Path) -> None:
    text = "a,b,y\n1,2,3\n4,x,z\nq,5,6\n"
    error = _error(_write(tmp_path, "t.csv", text))
    assert (error.row, error.column) == (3, "b")
    assert "3 invalid cell(s)" in str(error)


def test_unused_columns_are_not_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "a,note,y\n1,hello,3\n4,,6\n")
    assert read_table(path, "y", ["a"]).inputs.tolist() == [[1.0], [4.0]]
    assert _error(path).column == "note"


def test_short_row(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,b,y\n1,2,3\n4,5\n"))
    assert (error.row, error.column) == (3, "y")
    assert "2 fields" in str(error)


def test_long_row(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,b,y\n1,2,3\n\n4,5,6,7\n"))
    assert error.row == 4 and "4 fields" in str(error)


# --- skip_invalid ------------------------------------------------------------------------


def test_skip_invalid_records_every_row(tmp_path: Path) -> None:
    text = "a,b,y\n1,2,3\nx,5,6\n\n7,8,inf\n9,10,11\n12,,13\n"
    stream = read_table(_write(tmp_path, "t.csv", text), "y", skip_invalid=True)
    assert stream.skipped_rows == (3, 5, 7)
    np.testing.assert_array_equal(stream.inputs, [[1, 2], [9, 10]])
    np.testing.assert_array_equal(stream.targets, [3, 11])


def test_skip_invalid_parquet_rows_are_record_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table({"a": [1.0, None, 3.0, float("nan")], "y": [0.5, 1.5, float("inf"), 2.5]})
    pq.write_table(table, path)
    stream = read_table(path, "y", skip_invalid=True)
    assert stream.skipped_rows == (2, 3, 4)
    assert stream.inputs.tolist() == [[1.0]] and stream.targets.tolist() == [0.5]


def test_skip_invalid_with_nothing_left(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,y\nx,1\n2,nan\n"), skip_invalid=True)
    assert "no valid rows" in str(error)


# --- time stamps -------------------------------------------------------------------------


def test_time_column_is_checked_and_not_an_input(tmp_path: Path) -> None:
    stream = read_table(_write(tmp_path, "t.csv", "t,a,y\n1,2,3\n2.5,4,5\n"), "y", time="t")
    assert stream.input_names == ("a",)
    np.testing.assert_array_equal(stream.inputs, [[2], [4]])


@pytest.mark.parametrize(
    ("stamps", "row", "problem"),
    [("1,2,2", 4, "duplicated time stamp"), ("1,3,2", 4, "time stamps go back")],
)
def test_bad_time_stamps_are_located(tmp_path: Path, stamps: str, row: int, problem: str) -> None:
    rows = "".join(f"{t},0,1\n" for t in stamps.split(","))
    error = _error(_write(tmp_path, "t.csv", "t,a,y\n" + rows), time="t")
    assert (error.row, error.column, problem in str(error)) == (row, "t", True)


def test_time_column_must_exist_and_differ_from_the_target(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "t,a,y\n1,2,3\n")
    assert "no time column" in str(_error(path, time="when"))
    assert "target and the time column" in str(_error(path, time="y"))


@settings(max_examples=300, deadline=None)
@given(
    stamps=st.lists(st.one_of(st.integers(-3, 12), st.just(float("nan"))), min_size=1, max_size=12),
    skip=st.booleans(),
)
def test_time_stamps_kept_are_exactly_the_strictly_increasing_record(
    stamps: list[float], skip: bool
) -> None:
    """Kept rows are those whose stamp exceeds every earlier valid stamp; without skipping,
    the first missing stamp, or else the first late one, raises naming its row."""
    expected, latest = [], -np.inf
    for i, t in enumerate(stamps):
        if t == t and t > latest:
            expected.append(i)
            latest = t
    late = [i for i, t in enumerate(stamps) if t == t and i not in expected]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.csv"
        path.write_text("t,a,y\n" + "".join(f"{t},{i},{i}\n" for i, t in enumerate(stamps)))
        try:
            stream = read_table(path, "y", time="t", task="regression", skip_invalid=skip)
        except DataError as error:
            assert "\n" not in str(error)
            if skip:
                assert not expected  # nothing valid left
            else:  # missing stamps are reported first, then the first late one
                nan_rows = [i for i, t in enumerate(stamps) if t != t]
                assert error.row == min(nan_rows or late) + 2
            return
    assert skip or len(expected) == len(stamps)
    assert stream.targets.tolist() == expected


# --- classification ----------------------------------------------------------------------


def test_auto_detects_classification(tmp_path: Path) -> None:
    stream = read_table(_write(tmp_path, "t.csv", "a,y\n0.5,0\n1.5,3\n2.5,1\n"), "y")
    assert stream.n_classes == 4 and stream.targets.dtype == np.int64


def test_auto_float_literals_mean_regression(tmp_path: Path) -> None:
    stream = read_table(_write(tmp_path, "t.csv", "a,y\n0.5,0.0\n1.5,1.0\n"), "y")
    assert stream.n_classes is None and stream.targets.dtype == np.float64


def test_auto_many_distinct_integers_mean_regression(tmp_path: Path) -> None:
    rows = "".join(f"{k},{k}\n" for k in range(21))
    stream = read_table(_write(tmp_path, "t.csv", "a,y\n" + rows), "y")
    assert stream.n_classes is None
    rows = "".join(f"{k},{k % 20}\n" for k in range(40))
    assert read_table(_write(tmp_path, "u.csv", "a,y\n" + rows), "y").n_classes == 20


def test_auto_after_skipping_invalid_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "a,y\n1,0\n2,oops\n3,1\n")
    stream = read_table(path, "y", skip_invalid=True)
    assert stream.n_classes == 2 and stream.skipped_rows == (3,)


def test_classification_accepts_integral_floats(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "a,y\n0.5,1.0\n1.5,2\n")
    stream = read_table(path, "y", task="classification")
    assert stream.targets.tolist() == [1, 2] and stream.n_classes == 3


@pytest.mark.parametrize("label", ["1.5", "-1", "1e9"])
def test_classification_rejects_bad_labels(tmp_path: Path, label: str) -> None:
    path = _write(tmp_path, "t.csv", f"a,y\n0.5,1\n1.5,{label}\n")
    error = _error(path, task="classification")
    assert (error.row, error.column) == (3, "y") and "class labels" in str(error)


def test_auto_negative_integer_labels_are_an_error(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.csv", "a,y\n0.5,1\n1.5,-1\n"))
    assert error.row == 3 and "task='regression'" in str(error)
    stream = read_table(tmp_path / "t.csv", "y", task="regression")
    assert stream.targets.tolist() == [1.0, -1.0]


def test_regression_keeps_integers_as_floats(tmp_path: Path) -> None:
    stream = read_table(_write(tmp_path, "t.csv", "a,y\n1,2\n3,4\n"), "y", task="regression")
    assert stream.targets.dtype == np.float64 and stream.n_classes is None


# --- Parquet -----------------------------------------------------------------------------


def test_parquet_auto_uses_column_type(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [0.1, 0.2], "i": [0, 2], "f": [0.0, 2.0]}), path)
    assert read_table(path, "i", ["a"]).n_classes == 3
    assert read_table(path, "f", ["a"]).n_classes is None


def test_parquet_strings_bools_and_dictionaries(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table(
        {
            "s": ["1.5", " 2 "],
            "b": [True, False],
            "d": pa.array(["3", "4"]).dictionary_encode(),
            "y": [1.0, 2.0],
        }
    )
    pq.write_table(table, path)
    stream = read_table(path, "y")
    np.testing.assert_array_equal(stream.inputs, [[1.5, 1.0, 3.0], [2.0, 0.0, 4.0]])


@pytest.mark.parametrize(
    ("column", "row", "problem"),
    [
        (pa.array([1.0, None, 3.0]), 2, "missing value (null)"),
        (pa.array([1.0, 2.0, float("nan")]), 3, "NaN value"),
        (pa.array([float("-inf"), 2.0, 3.0]), 1, "infinite value"),
        (pa.array(["1", "2", "three"]), 3, "not a number"),
    ],
)
def test_parquet_invalid_cell(tmp_path: Path, column: pa.Array, row: int, problem: str) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": column, "y": [0.0, 1.0, 2.0]}), path)
    error = _error(path)
    assert (error.row, error.column) == (row, "x") and problem in str(error)


def test_parquet_non_numeric_type(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"t": pa.array([1, 2], pa.timestamp("s")), "y": [0.0, 1.0]}), path)
    error = _error(path)
    assert error.column == "t" and "not numeric" in str(error)


def test_parquet_duplicated_column_name(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.Table.from_arrays(
        [pa.array([1.0]), pa.array([2.0]), pa.array([3.0])], ["a", "y", "a"]
    )
    pq.write_table(table, path)
    error = _error(path)
    assert error.column == "a" and "columns 1 and 3" in str(error)


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"a": pa.array([], pa.float64()), "y": pa.array([], pa.float64())}), path
    )
    assert "no data rows" in str(_error(path))


@pytest.mark.parametrize("data", [b"PAR1 not really", bytes(range(256)) * 4])
def test_parquet_garbage(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(data)
    assert "cannot read as Parquet" in str(_error(path))


def test_write_table_rejects_clashing_names(tmp_path: Path) -> None:
    stream = Stream(np.zeros((2, 2)), np.zeros(2), ("a", "y"), "y")
    with pytest.raises(DataError, match="not unique"):
        write_table(stream, tmp_path / "t.csv")


# --- property-based corruption suite -----------------------------------------------------

_DELIMITERS = (",", ";", "\t")
_BAD_CELLS = ("abc", "", "  ", "nan", "NaN", "inf", "-inf", "1e999", '"', "0x1F", "True", "1,5")


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[list[str]], str, str]:
    """A valid CSV as (header + rows of cells, delimiter, line ending); the target is 'y'."""
    n_inputs = draw(st.integers(1, 3))
    names = [f"x{j}" for j in range(n_inputs)]
    names.insert(draw(st.integers(0, n_inputs)), "y")
    number = st.one_of(
        st.integers(-50, 50).map(str),
        st.floats(-1e6, 1e6, allow_nan=False).map(repr),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
    )
    rows = draw(
        st.lists(st.lists(number, min_size=len(names), max_size=len(names)), min_size=1, max_size=6)
    )
    return [names, *rows], draw(st.sampled_from(_DELIMITERS)), draw(st.sampled_from(["\n", "\r\n"]))


def _render(cells: list[list[str]], delimiter: str, eol: str) -> bytes:
    return "".join(delimiter.join(row) + eol for row in cells).encode()


def _corrupt(data: bytes, delimiter: str, draw: st.DrawFn) -> bytes:
    """Apply one random corruption to the bytes of a CSV file."""
    sep = delimiter.encode()
    lines = data.split(b"\n")
    line = draw(st.integers(0, len(lines) - 1))
    kind = draw(
        st.sampled_from(
            [
                "cell",
                "delete_delimiter",
                "add_column",
                "truncate",
                "insert_bytes",
                "change_delimiter",
                "change_delimiter_one_line",
                "drop_header",
                "empty",
                "duplicate_name",
                "blank_line",
            ]
        )
    )
    if kind == "cell":
        fields = lines[line].split(sep)
        fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(_BAD_CELLS)).encode()
        lines[line] = sep.join(fields)
    elif kind == "delete_delimiter":
        lines[line] = lines[line].replace(sep, b"", 1)
    elif kind == "add_column":
        lines[line] = lines[line] + sep + b"1"
    elif kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    elif kind == "insert_bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif kind in ("change_delimiter", "change_delimiter_one_line"):
        other = draw(st.sampled_from([d for d in _DELIMITERS if d != delimiter])).encode()
        if kind == "change_delimiter":
            return data.replace(sep, other)
        lines[line] = lines[line].replace(sep, other)
    elif kind == "drop_header":
        return b"\n".join(lines[1:])
    elif kind == "empty":
        return b""
    elif kind == "duplicate_name":
        names = lines[0].split(sep)
        names[draw(st.integers(0, len(names) - 1))] = draw(st.sampled_from(names))
        lines[0] = sep.join(names)
    else:  # blank_line
        lines.insert(line, draw(st.sampled_from([b"", b"  ", b"\r"])))
    return b"\n".join(lines)


def _check_stream(stream: Stream) -> None:
    n = len(stream)
    assert n >= 1 and stream.input_dim >= 1
    assert stream.inputs.shape == (n, len(stream.input_names))
    assert stream.inputs.dtype == np.float64 and np.isfinite(stream.inputs).all()
    assert stream.targets.shape == (n,) and stream.target_name == "y"
    if stream.n_classes is None:
        assert stream.targets.dtype == np.float64 and np.isfinite(stream.targets).all()
    else:
        assert stream.targets.dtype == np.int64
        assert stream.targets.min() >= 0 and stream.targets.max() < stream.n_classes
    assert list(stream.skipped_rows) == sorted(set(stream.skipped_rows))
    assert all(row >= 2 for row in stream.skipped_rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=_tables(), data=st.data())
def test_corrupted_csv_reads_or_raises_data_error(
    table: tuple[list[list[str]], str, str], data: st.DataObject
) -> None:
    cells, delimiter, eol = table
    content = _render(cells, delimiter, eol)
    for _ in range(data.draw(st.integers(1, 3), label="n_corruptions")):
        content = _corrupt(content, delimiter, data.draw)
    task = data.draw(st.sampled_from(["auto", "regression", "classification"]), label="task")
    skip_invalid = data.draw(st.booleans(), label="skip_invalid")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / data.draw(st.sampled_from(["t.csv", "t.tsv", "t.txt"]))
        path.write_bytes(content)
        try:
            stream = read_table(path, "y", task=task, skip_invalid=skip_invalid)
        except DataError as error:
            assert "\n" not in str(error) and path.name in str(error)
            return
    _check_stream(stream)


@settings(max_examples=100, deadline=None)
@given(table=_tables())
def test_valid_csv_reads_exactly(table: tuple[list[list[str]], str, str]) -> None:
    cells, delimiter, eol = table
    names, rows = cells[0], cells[1:]
    expected = np.array([[float(v) for v in row] for row in rows])
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.csv"
        path.write_bytes(_render(cells, delimiter, eol))
        stream = read_table(path, "y", task="regression")
    t = names.index("y")
    assert stream.input_names == tuple(n for n in names if n != "y")
    np.testing.assert_array_equal(stream.inputs, np.delete(expected, t, axis=1))
    np.testing.assert_array_equal(stream.targets, expected[:, t])


@settings(max_examples=100, deadline=None)
@given(table=_tables(), data=st.data())
def test_one_bad_cell_is_located_exactly(
    table: tuple[list[list[str]], str, str], data: st.DataObject
) -> None:
    cells, delimiter, eol = table
    names, n_rows = cells[0], len(cells) - 1
    r = data.draw(st.integers(1, n_rows), label="row")
    c = data.draw(st.integers(0, len(names) - 1), label="column")
    bad = [b for b in _BAD_CELLS if b not in ('"', delimiter) and delimiter not in b]
    cells[r][c] = data.draw(st.sampled_from(bad), label="cell")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.csv"
        path.write_bytes(_render(cells, delimiter, eol))
        with pytest.raises(DataError) as info:
            read_table(path, "y")
        assert (info.value.row, info.value.column) == (r + 1, names[c])
        assert f"row {r + 1}" in str(info.value) and path.name in str(info.value)
        if n_rows == 1:
            with pytest.raises(DataError, match="no valid rows"):
                read_table(path, "y", task="regression", skip_invalid=True)
        else:
            stream = read_table(path, "y", task="regression", skip_invalid=True)
            assert stream.skipped_rows == (r + 1,) and len(stream) == n_rows - 1


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".parquet"]))
def test_arbitrary_bytes_read_or_raise_data_error(content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"t{suffix}"
        path.write_bytes(content)
        try:
            stream = read_table(path, "y")
        except DataError as error:
            assert "\n" not in str(error)
            return
    _check_stream(stream)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_damaged_parquet_reads_or_raises_data_error(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.parquet"
        table = pa.table({"a": [1.0, None, 3.0], "s": ["1", "x", None], "y": [0, 1, 2]})
        pq.write_table(table, path)
        content = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4), label="n_flips")):
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
        path.write_bytes(bytes(content[: data.draw(st.integers(0, len(content)))]))
        try:
            stream = read_table(path, "y", skip_invalid=data.draw(st.booleans()))
        except DataError as error:
            assert "\n" not in str(error)
            return
    _check_stream(stream)
