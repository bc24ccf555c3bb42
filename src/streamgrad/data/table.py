"""The validated-table layer shared by the file readers (`tabular`, `lobster`).

What every reader needs, in one place:

* Bytes (`read_source`): the file is checked (exists, is a regular file, is not empty),
  read, decompressed when it is gzip-compressed (gzip magic bytes ``1f 8b`` or a ``.gz``
  suffix, so ``day.csv.gz`` reads exactly like ``day.csv``) and stripped of a UTF-8
  byte-order mark. `Source.text` also refuses binary data (a NUL byte) and bytes that are
  not UTF-8, naming the line.
* Located errors (`Table`, `Issue`, `enforce`): a table knows the 1-based row number of
  each record in its file, so every problem becomes one `DataError` line naming the file,
  the row, the column and the value as written (long values cut to 40 characters). A check
  is an `Issue`: the records that have a problem, the column to name for each and a
  sentence. `enforce` raises the first flagged record's problem or, when invalid rows are
  skipped, returns the rows to drop.
* Time order (`time_order`), with one semantics: **time never goes backwards**. A row is
  out of order when its stamp is earlier than the stamp of an earlier valid row; with
  ``strict=True`` a stamp equal to an earlier one is out of order too. `read_table`'s
  ``time`` column is strict (each example of a stream is its own instant); LOBSTER
  messages are not (several events can share a time stamp). Rows that other checks flag
  as invalid take no part. An out-of-order row never raises the running maximum, so
  comparing with the largest earlier valid stamp is comparing with the latest stamp that
  is kept when out-of-order rows are skipped.

Row numbers are 1-based line numbers of the (decompressed) file, a header line counting
as line 1; a format without lines (Parquet) numbers its records from 1.
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from streamgrad.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
GZIP_SUFFIX = ".gz"

_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
_SHORT = 40  # longest value quoted in full in a message


def format_suffix(path: Path) -> str:
    """The suffix naming the file's format, ignoring a trailing ``.gz``: '.csv' for both
    't.csv' and 't.csv.gz' (case as written)."""
    if path.name.lower().endswith(GZIP_SUFFIX):
        return Path(path.name[: -len(GZIP_SUFFIX)]).suffix
    return path.suffix


def check_file(path: Path, what: str = "file") -> None:
    """Raise a `DataError` unless `path` is an existing, non-empty regular file.

    `what` names the file in messages, e.g. 'orderbook file' -> 'orderbook file not found'.
    """
    file = str(path)
    try:
        if not path.exists():
            raise DataError(f"{what} not found", file=file)
        if path.is_dir():
            raise DataError("is a directory, not a file", file=file)
        if not path.is_file():
            raise DataError("is not a regular file", file=file)
        if path.stat().st_size == 0:
            raise DataError(f"{what} is empty", file=file)
    except OSError as e:
        raise DataError(f"cannot access: {e.strerror or e}", file=file) from None


@dataclass(frozen=True)
class Source:
    """The content of one file, decompressed and without a byte-order mark.

    file: the name as given (for messages).
    data: the bytes.
    offset: the number of bytes before `data` (a byte-order mark, or the lines before a
        block of the file), so that byte offsets in messages count from the start of the
        (decompressed) file.
    compressed: whether the file was gzip-compressed.
    first_line: the line number of the first line of `data` (> 1 for a block of lines).
    """

    file: str
    data: bytes
    offset: int = 0
    compressed: bool = False
    first_line: int = 1

    def line_of(self, index: int) -> int:
        """1-based line number of byte `data[index]`."""
        return self.first_line - 1 + len(_LINE_BREAK_BYTES.split(self.data[:index]))

    def from_line(self, line: int) -> Source | None:
        """The lines of this block from line `line` on (None when it ends before)."""
        if line <= self.first_line:
            return self
        cut = 0
        for count, match in enumerate(_LINE_BREAK_BYTES.finditer(self.data), self.first_line + 1):
            if count == line:
                cut = match.end()
                break
        if not cut:
            return None
        return Source(self.file, self.data[cut:], self.offset + cut, self.compressed, line)

    def text(self) -> str:
        """`data` as text, refusing binary data and anything that is not UTF-8."""
        nul = self.data.find(b"\x00")
        if nul >= 0:
            raise DataError(
                "contains a NUL byte: a binary file, not text",
                file=self.file,
                row=self.line_of(nul),
            )
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as e:
            where = " of the decompressed data" if self.compressed else ""
            raise DataError(
                f"not UTF-8 text (invalid byte at offset {e.start + self.offset}{where}); "
                "save the file as UTF-8",
                file=self.file,
                row=self.line_of(e.start),
            ) from None


def read_source(path: Path, what: str = "file") -> Source:
    """Check and read one file (see the module docstring); `what` names it in messages.

    Raises a `DataError` when the file is missing, unreadable, not valid gzip although it
    claims to be, or empty (also when only whitespace is left once decompressed).
    """
    return next(source_blocks(path, what, block_bytes=None))


def source_blocks(
    path: Path, what: str = "file", *, block_bytes: int | None = 1 << 22
) -> Iterator[Source]:
    """The file as consecutive `Source` blocks of whole lines, decompressed as it is read
    (see `read_source`), so that a file of any size is read in constant memory.

    Each block but the last ends with a line feed and holds at least `block_bytes` bytes
    (all of the file in one block for None). Raises as `read_source`; an empty file raises
    at the first block.
    """
    file = str(path)
    check_file(path, what)
    compressed = path.name.lower().endswith(GZIP_SUFFIX)
    try:
        with open(path, "rb") as raw:
            compressed = compressed or raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if compressed else raw
            yield from _blocks(stream, file, what, compressed, block_bytes)
    except (OSError, EOFError, zlib.error) as e:
        if compressed and not isinstance(e, FileNotFoundError | PermissionError):
            raise DataError(
                f"cannot decompress {what} (gzip): {first_line(e)}", file=file
            ) from None
        raise DataError(f"cannot read {what}: {e.strerror or e}", file=file) from None


def _blocks(
    stream: BinaryIO, file: str, what: str, compressed: bool, block_bytes: int | None
) -> Iterator[Source]:
    """`source_blocks` over an open (decompressing) binary stream."""
    data = stream.read(block_bytes or -1)
    offset = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    data, line = data[offset:], 1
    if not data.strip() and (block_bytes is None or len(data) < block_bytes):
        raise DataError(f"{what} is empty" + (" (only whitespace)" if data else ""), file=file)
    while data:
        more = stream.read(block_bytes) if block_bytes else b""
        cut = data.rfind(b"\n") + 1 if more else len(data)  # whole lines; the rest waits
        if cut:
            yield Source(file, data[:cut], offset, compressed, line)
            offset, line = offset + cut, line + count_lines(data[:cut])
        data = data[cut:] + more


def count_lines(data: bytes) -> int:
    """The number of line breaks (CRLF, CR or LF) in `data`."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


@dataclass(frozen=True)
class Table:
    """n records of one file, each located in it, for messages.

    file: the file name as given.
    names: the column names in file order (a field past them is called 'field_<j + 1>').
    rows: (n,) int, the 1-based row number of each record (see the module docstring).
    header_row: the row holding the column names, or None when the file has none.
    cell: (i, j) -> field j of record i as written in the file (None when it is absent).
    """

    file: str
    names: tuple[str, ...]
    rows: np.ndarray
    header_row: int | None
    cell: Callable[[int, int], object]

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def name(self, j: int) -> str:
        """The name of column `j`."""
        return self.names[j] if j < len(self.names) else f"field_{j + 1}"

    def error(self, problem: str, i: int, j: int) -> DataError:
        """The one-line error for column `j` of record `i`."""
        return DataError(
            problem,
            file=self.file,
            row=int(self.rows[i]),
            column=self.name(j),
            value=short(self.cell(i, j)),
        )


@dataclass(frozen=True)
class Issue:
    """One check over the n records of `table`.

    rows: (n,) bool, the records that have the problem.
    column: (n,) int, the column to name for each of them.
    problem: i -> the sentence for record i (asked only where `rows[i]`).
    """

    table: Table
    rows: np.ndarray
    column: np.ndarray
    problem: Callable[[int], str]

    def error(self, i: int) -> DataError:
        """The located error of record `i`."""
        return self.table.error(self.problem(i), i, int(self.column[i]))


def matrix_issue(
    table: Table,
    bad: np.ndarray,
    columns: Sequence[int],
    problem: str | Callable[[int, int], str],
) -> Issue:
    """The issue of a (n, len(columns)) bool matrix `bad` over the table columns `columns`,
    naming the first bad one of each record; `problem` is a sentence or (i, j) -> one."""
    rows = bad.any(axis=1)
    first = np.asarray(columns)[np.argmax(bad, axis=1)] if rows.any() else np.zeros(len(rows), int)
    if isinstance(problem, str):
        return Issue(table, rows, first, lambda i: problem)
    return Issue(table, rows, first, lambda i: problem(i, int(first[i])))


def flagged(issues: Sequence[Issue]) -> np.ndarray:
    """(n,) bool: the records flagged by any of `issues` (all over the same n records)."""
    return np.logical_or.reduce([issue.rows for issue in issues])


def enforce(issues: Sequence[Issue], skip: bool) -> np.ndarray:
    """(n,) bool: the records flagged by any of `issues` (all over the same n records).

    Unless `skip`, raises the error of the first flagged record, from the first of
    `issues` (their order is the reporting order) that flags it.
    """
    bad = flagged(issues)
    if bad.any() and not skip:
        raise first_error(issues, int(np.argmax(bad)))
    return bad


def first_error(issues: Sequence[Issue], i: int) -> DataError:
    """The error of record `i` from the first of `issues` that flags it."""
    return next(issue for issue in issues if issue.rows[i]).error(i)


def time_order(
    stamps: np.ndarray, valid: np.ndarray, *, strict: bool, after: float = -np.inf
) -> tuple[np.ndarray, ...]:
    """Which valid rows go back in time (see the module docstring for the semantics).

    stamps: (n,) float time stamps; valid: (n,) bool, the rows that take part; after: the
    largest valid stamp before these rows (of the earlier batches of a stream read in
    batches; -inf for none).
    Returns (late, previous): late (n,) bool flags the out-of-order rows; previous (n,)
    float is the largest stamp of the valid rows before each row (`after` for none).
    """
    earlier = np.where(valid, stamps, -np.inf)
    previous = np.maximum(np.r_[-np.inf, np.maximum.accumulate(earlier)[:-1]], after)
    late = valid & ((stamps <= previous) if strict else (stamps < previous))
    return late, previous


def first_line(error: Exception) -> str:
    """The first line of an exception's message (its type when the message is empty)."""
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def short(value: object, limit: int = _SHORT) -> object:
    """`value`, with a long string cut so that messages stay short."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value
