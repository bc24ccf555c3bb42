"""CSV/TSV/TXT files for `read_table`: delimiter sniffing, parsing and located problems.

`load_csv` turns the text of a file into `Columns`. Row numbers are line numbers: the
header is row 1, the first data row row 2; blank lines are not records but are counted,
so row numbers always equal the line numbers an editor shows.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from streamgrad.data.columns import (
    DELIMITERS,
    INTEGER,
    Column,
    Columns,
    located,
    number_problem,
    text_problem,
)
from streamgrad.data.table import Source, first_line, short, source_blocks
from streamgrad.errors import DataError

_SNIFF_CHARS = 65_536
_SNIFF_LINES = 20
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_EXPECTED_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def load_csv(source: Source, suffix: str) -> Columns:
    """Parse `source` (a CSV, TSV or TXT file with a header line; `suffix` picks the default
    delimiter) into located numeric columns; raises `DataError` on structural problems."""
    file, text = source.file, source.text()
    header, delimiter = _layout(text, file, suffix)
    columns = _parse(text, header, delimiter, file)
    if not len(columns.table):
        raise DataError("no data rows: the file has a header only", file=file)
    return columns


def csv_pieces(
    path: Path, suffix: str, *, start_row: int = 2, block_bytes: int = 1 << 22
) -> Iterator[Columns]:
    """The file as consecutive pieces of located columns, each parsed from a block of about
    `block_bytes` bytes of whole lines (as `load_csv` parses the whole file, with the same
    row numbers and messages), in constant memory. `start_row`: the first line to read after
    the header (to resume behind the earlier rows, which are skipped unparsed)."""
    blocks = source_blocks(path, block_bytes=block_bytes)
    first = next(blocks)
    file = first.file
    header, delimiter = _layout(first.text(), file, suffix)
    pieces = 0
    for block in itertools.chain([first], blocks):
        body = block.from_line(max(start_row, 2))
        if body is None or not body.data:
            continue
        text = f"{header}\n{body.text()}"
        columns = _parse(text, header, delimiter, file, shift=body.first_line - 2)
        if len(columns.table):
            pieces += 1
            yield columns
    if not pieces and start_row <= 2:
        raise DataError("no data rows: the file has a header only", file=file)


def _layout(text: str, file: str, suffix: str) -> tuple[str, str]:
    """The header line and the delimiter of a file whose text starts with `text`."""
    header = _LINE_BREAK.split(text, maxsplit=1)[0]
    if not header.strip():
        raise DataError("header is empty: the header must be on the first line", file=file, row=1)
    return header, _sniff(text, suffix)


def _parse(text: str, header: str, delimiter: str, file: str, shift: int = 0) -> Columns:
    """Columns of `text` (a header line, then data lines); a line at index i (1-based) of
    `text` is row i + `shift` of the file."""
    table = None if '"' in text else _csv_numbers(text, header, delimiter, file, shift)
    return table if table is not None else _csv_cells(text, header, delimiter, file, shift)


def _csv_numbers(
    text: str, header: str, delimiter: str, file: str, shift: int = 0
) -> Columns | None:
    """Fast path for a well-formed file without quotes: every cell parses as a number.

    Returns None whenever anything is off (a parser error, a blank line, a short row, a
    cell that is not a number); `_csv_cells` then reads the file again and locates it.
    """
    names = [name.strip() for name in header.split(delimiter)]
    _check_header(names, header, file)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            skiprows=1,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, OverflowError):
        return None
    if frame.shape[1] != len(names) or any(dtype.kind not in "iuf" for dtype in frame.dtypes):
        return None

    def column(name: str) -> Column:
        series = frame.iloc[:, names.index(name)]
        values = series.to_numpy(dtype=np.float64)
        return Column(
            values=values,
            integer=lambda: np.full(len(values), series.dtype.kind in "iu"),
            cell=lambda i: series.iat[i].item(),
            problem=lambda i: number_problem(values[i]),
        )

    return located(file, names, np.arange(2, len(frame) + 2) + shift, 1, column)


def _csv_cells(text: str, header: str, delimiter: str, file: str, shift: int = 0) -> Columns:
    """General path: read every cell as text, then convert, keeping exact locations."""
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, OverflowError) as e:
        raise _parser_error(e, file, delimiter, shift) from None
    names = [str(name).strip() for name in frame.iloc[0]]
    body = frame.iloc[1:]
    if '"' in text:
        _reject_line_breaks(names, body, file, shift)
    _check_header(names, header, file)
    lines = _Lines(text, delimiter)
    rows = np.arange(2, len(frame) + 1)
    if len(body):
        maybe_blank = np.logical_and.reduce(
            [(body[c].str.strip() == "").to_numpy(dtype=bool) for c in body.columns]
        )
        for i in np.flatnonzero(maybe_blank):
            maybe_blank[i] = not lines.line(int(rows[i])).strip()
        body, rows = body[~maybe_blank], rows[~maybe_blank]

    def column(name: str) -> Column:
        cells = body.iloc[:, names.index(name)]
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

        def problem(i: int) -> str:
            cell = str(cells.iat[i])
            if not cell.strip():
                n_fields = lines.n_fields(int(rows[i]))
                if n_fields < len(names):
                    return f"missing value: the row has {n_fields} fields, the header {len(names)}"
            return text_problem(cell, float(values[i]), delimiter)

        return Column(
            values=values,
            integer=lambda: cells.str.fullmatch(INTEGER).to_numpy(dtype=bool),
            cell=lambda i: cells.iat[i],
            problem=problem,
            text=cells,
        )

    return located(file, names, rows + shift, 1, column)


def _check_header(names: list[str], header: str, file: str) -> None:
    """At least two columns, none unnamed, no name twice."""
    if len(names) == 1:
        raise DataError(
            f"only one column found (header {short(header)!r}); wrong delimiter? columns must "
            "be separated by ',', ';' or tab, and the file needs input columns and a target",
            file=file,
            row=1,
        )
    for j, name in enumerate(names):
        if not name:
            raise DataError(f"column {j + 1} has an empty name", file=file, row=1)
        if name in names[:j]:
            raise DataError(
                f"duplicated column name (columns {names.index(name) + 1} and {j + 1})",
                file=file,
                row=1,
                column=name,
            )


class _Lines:
    """The text of a CSV file, split into lines only when a message needs one."""

    def __init__(self, text: str, delimiter: str) -> None:
        self.text, self.delimiter = text, delimiter

    @cached_property
    def lines(self) -> list[str]:
        return _LINE_BREAK.split(self.text)

    def line(self, row: int) -> str:
        """The text of 1-based line `row`."""
        return self.lines[row - 1]

    def n_fields(self, row: int) -> int:
        """How many fields line `row` has with this delimiter."""
        return len(next(csv.reader([self.line(row)], delimiter=self.delimiter), []))


def _sniff(text: str, suffix: str) -> str:
    """Pick the delimiter giving the header > 1 field and every sample line as many.

    Failing that, the one splitting the header into the most fields; failing that (one
    column), the suffix's default. Ties go to the suffix's default (tab for .tsv, else ',').
    """
    order = ("\t", ",", ";") if suffix == ".tsv" else DELIMITERS
    head = text[:_SNIFF_CHARS]
    lines = _LINE_BREAK.split(head)[:_SNIFF_LINES]
    if len(head) < len(text) and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    sample = [line for line in lines if line.strip()]
    best, best_count = order[0], 1
    for delimiter in order:
        try:
            counts = [len(fields) for fields in csv.reader(sample, delimiter=delimiter)]
        except csv.Error:
            continue
        if counts[0] > 1 and all(c == counts[0] for c in counts):
            return delimiter
        if counts[0] > best_count:
            best, best_count = delimiter, counts[0]
    return best


def _parser_error(error: Exception, file: str, delimiter: str, shift: int) -> DataError:
    message = str(error).strip()
    if m := _EXPECTED_FIELDS.search(message):
        expected, line, saw = (int(g) for g in m.groups())
        return DataError(
            f"the row has {saw} fields but the header {expected} (delimiter {delimiter!r})",
            file=file,
            row=line + shift,
        )
    if m := _OPEN_QUOTE.search(message):
        return DataError(
            "quoted field is never closed (a '\"' without its closing quote)",
            file=file,
            row=int(m.group(1)) + 1 + shift,
        )
    return DataError(f"cannot parse as CSV: {first_line(error)}", file=file)


def _reject_line_breaks(names: list[str], body: pd.DataFrame, file: str, shift: int) -> None:
    """A quoted cell spanning lines would shift every later row number: refuse it."""
    for name in names:
        if "\n" in name or "\r" in name:
            raise DataError("column name contains a line break", file=file, row=1, column=name)
    first: tuple[int, int] | None = None
    for j, c in enumerate(body.columns):
        hits = np.flatnonzero(body[c].str.contains(r"[\r\n]", regex=True).to_numpy(dtype=bool))
        if hits.size and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), j)
    if first is not None:
        i, j = first
        raise DataError(
            "quoted cell contains a line break",
            file=file,
            row=i + 2 + shift,
            column=names[j],
            value=short(body.iat[i, j]),
        )
