"""Read a spreadsheet or CSV export into a grid of text cells, keeping Excel row numbers.

A grid is the file as a person sees it in Excel: every row (title rows, blank rows, notes included), every cell as
text ('' for empty), and the 1-based row number of each row. Finding the header and the meaning of the rows is
extract.py's job; turning text into money and dates is parsing.py's.

- xlsx / xlsm / xls / ods: python-calamine (ten times faster than openpyxl on large sheets, and reads legacy .xls).
- csv / txt: the encoding is detected (UTF-8 with or without BOM, UTF-16 with BOM, else GB18030, a superset of GBK);
  the delimiter is the one that makes a header row appear; pyarrow parses the body single-threaded so that rows it
  cannot fit to the header width are reported with their record number.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
DELIMITERS = (",", "\t", ";", "|")
HEAD_BYTES = 1 << 20  # enough for the title and header rows of any real export
csv.field_size_limit(2**31 - 1)  # text fields can be hundreds of thousands of characters long


class UnreadableFile(Exception):
    """The file is not a readable export (other type, corrupt, empty, unknown encoding)."""


@dataclass
class Grid:
    """The cells of one sheet as text. ``columns[j][i]`` is the cell in row ``row_numbers[i]``, column j."""

    columns: list[pa.Array]
    row_numbers: pa.Array  # int64, 1-based, as Excel shows them
    rows_total: int  # every row of the sheet, odd rows included
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    # CSV rows whose field count differs from the header's: (row number, fields)
    odd_rows: list[tuple[int, list[str]]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.columns)

    def head(self, n: int) -> list[list[str]]:
        """The first n rows as lists of text, for header detection."""
        n = min(n, len(self.row_numbers))
        cols = [c.slice(0, n).to_pylist() for c in self.columns]
        return [[col[i] for col in cols] for i in range(n)]


def cell_text(value: object) -> str:
    """One spreadsheet cell as the text a person sees (numbers without float noise, dates as ISO)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if math.isfinite(value) and abs(value) < 1e15:
            # what Excel shows: 15 significant digits, so a formula's 0.30000000000000004 reads 0.3
            text = format(value, ".15g")
            if "e" not in text:
                return text
        return repr(value)  # 6.2e18 stays visibly a float (an account number that lost digits)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


def read_grid(path: Path, *, find_header: Callable[[list[list[str]]], int | None] | None = None) -> Grid:
    """Read any supported file into a Grid.

    ``find_header`` returns the index of the header row in a sheet's first rows, or None: it picks the sheet of a
    workbook, and the delimiter and width of a CSV file.
    """
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as e:
        raise UnreadableFile(f"cannot open: {e}") from e
    if size == 0:
        raise UnreadableFile("the file is empty (0 bytes)")
    if suffix in SPREADSHEET_SUFFIXES:
        return _read_spreadsheet(path, find_header)
    if suffix in TEXT_SUFFIXES:
        return _read_text(path, find_header)
    raise UnreadableFile(
        f"not a spreadsheet export: suffix {suffix or '(none)'!r}; expected one of "
        + ", ".join(sorted(SPREADSHEET_SUFFIXES | TEXT_SUFFIXES))
    )


def _read_spreadsheet(path: Path, find_header) -> Grid:
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except Exception as e:  # calamine raises several types for zip/xml/format errors
        raise UnreadableFile(f"not a readable spreadsheet ({type(e).__name__}: {e})") from e
    first = None
    for name in wb.sheet_names:
        try:
            rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
        except Exception as e:
            raise UnreadableFile(f"sheet {name!r} cannot be read ({type(e).__name__}: {e})") from e
        if not rows:
            continue
        grid = _grid_from_rows(rows, sheet=name)
        if first is None:
            first = grid
        if find_header is None or find_header(grid.head(60)) is not None:
            return grid
    if first is None:
        raise UnreadableFile("the workbook has no cells")
    return first


def _grid_from_rows(rows: list[list[object]], sheet: str | None) -> Grid:
    width = max(len(r) for r in rows)
    if any(len(r) != width for r in rows):
        rows = [r if len(r) == width else [*r, *([""] * (width - len(r)))] for r in rows]
    columns = []
    for j in range(width):
        # text cells (most of them) are kept as they are: 200k rows x 17 columns 1.2-2.0 s -> ~1.0 s
        col = [v if (v := r[j]).__class__ is str else cell_text(v) for r in rows]
        columns.append(pa.array(col, pa.string()))
    return Grid(
        columns=columns,
        row_numbers=pa.array(range(1, len(rows) + 1), pa.int64()),
        rows_total=len(rows),
        sheet=sheet,
    )


def detect_encoding(path: Path) -> str:
    """utf-8 (BOM or not), utf-16 (BOM), else gb18030. Raises UnreadableFile for binary or undecodable files."""
    with path.open("rb") as f:
        start = f.read(4)
        if start.startswith(codecs.BOM_UTF8):
            enc = "utf-8-sig"
        elif start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        else:
            enc = "utf-8"
        f.seek(0)
        # UTF-8 is checked over the whole file (fast); GB18030 accepts almost any byte string, so only the head
        # is checked here and a later decoding error is reported by the CSV reader.
        for candidate, whole in ((enc, True), ("gb18030", False)):
            f.seek(0)
            dec = codecs.getincrementaldecoder(candidate)()
            try:
                while chunk := f.read(1 << 24 if whole else HEAD_BYTES):
                    if "\x00" in dec.decode(chunk):
                        raise UnreadableFile("binary content (NUL bytes): not a text export")
                    if not whole:
                        break
                if whole:
                    dec.decode(b"", final=True)
                return candidate
            except UnicodeDecodeError:
                continue
    raise UnreadableFile("text in an unknown encoding (tried UTF-8, UTF-16 with BOM, GB18030/GBK)")


def _head_text(path: Path, encoding: str) -> str:
    with path.open("rb") as f:
        raw = f.read(HEAD_BYTES)
    return codecs.getincrementaldecoder(encoding)().decode(raw, final=False)


def _read_text(path: Path, find_header) -> Grid:
    encoding = detect_encoding(path)
    head = _head_text(path, encoding)
    if not head.strip():
        raise UnreadableFile("the file has no text (only blank lines)")
    # The delimiter is the one under which the header row appears; else the most frequent one.
    complete = head if len(head) < HEAD_BYTES // 4 else head[: head.rfind("\n") + 1]
    chosen = None
    for delim in DELIMITERS:
        rows = list(csv.reader(io.StringIO(complete), delimiter=delim))[:60]
        at = find_header(rows) if find_header is not None else None
        if at is not None:
            # the header sets the width (a sub-header row under it may be as wide)
            chosen = (delim, max(len(r) for r in rows[at : at + 2]))
            break
    if chosen is None:
        delim = max(DELIMITERS, key=complete.count)
        rows = list(csv.reader(io.StringIO(complete), delimiter=delim))[:60]
        chosen = (delim, max((len(r) for r in rows), default=1))
    delim, width = chosen
    odd: list[tuple[int, list[str]]] = []

    def on_invalid(row) -> str:
        odd.append((row.number, next(csv.reader([row.text], delimiter=delim), [])))
        return "skip"

    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            str(path),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, encoding=encoding, block_size=1 << 22
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delim,
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise UnreadableFile(f"not a readable CSV ({e})") from e
    total = table.num_rows + len(odd)
    # pyarrow reports odd rows by record number; the fitting rows take the other numbers, in order.
    if odd:
        odd_numbers = {n for n, _ in odd}
        numbers = [n for n in range(1, total + 1) if n not in odd_numbers]
        row_numbers = pa.array(numbers, pa.int64())
    else:
        row_numbers = pa.array(range(1, total + 1), pa.int64())
    columns = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns]
    if table.num_rows == 0:
        columns = [pa.array([], pa.string()) for _ in names]
    return Grid(
        columns=columns,
        row_numbers=row_numbers,
        rows_total=total,
        encoding=encoding.replace("-sig", " (BOM)"),
        delimiter=delim,
        odd_rows=odd,
    )
