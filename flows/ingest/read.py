"""Read a spreadsheet or CSV export into a grid of text cells, keeping Excel row numbers.

A grid is the file as a person sees it in Excel: every row (title rows, blank rows, notes included), every cell as
text ('' for empty), and the 1-based row number of each row. Finding the header and the meaning of the rows is
extract.py's job; turning text into money and dates is parsing.py's.

What a file is comes from its bytes, not its suffix (formats.sniff):

- xlsx / xlsm / xls / et / ods / xlsb: python-calamine (ten times faster than openpyxl on large sheets, reads BIFF);
  an encrypted workbook is reported as password-protected.
- an HTML table or an XML Spreadsheet 2003 document (what many systems' 导出Excel writes under a .xls name):
  formats.html_sheets / formats.spreadsheetml_sheets, merged cells laid out as calamine lays out an xlsx's.
- csv / txt (and text under a spreadsheet name): the encoding is chosen from samples of the whole file (UTF-8 with
  or without BOM, UTF-16 with BOM, else GB18030, a superset of GBK), so one bad row cannot change it; the delimiter
  is the one that makes a header row appear; pyarrow parses the body single-threaded so that rows it cannot fit to
  the header width are reported with their record number.

Text is decoded row by row: bytes not valid in the file's encoding are marked (formats.MARK), and the rows holding
them leave the grid for ``Grid.undecodable`` (row number, fields with the bytes escaped as \\xff), which
extract.py rejects one by one while the rest of the file loads.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flows.ingest.formats import (
    BAD,
    ENCRYPTED,
    MARK,
    Format,
    UnreadableFile,
    declared_encoding,
    decode_markup,
    html_sheets,
    plain_error,
    sniff,
    spreadsheetml_sheets,
)

__all__ = ["Grid", "UnreadableFile", "cell_text", "detect_encoding", "read_grid"]

SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".et", ".ett", ".htm", ".html", ".xml"}
TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
DELIMITERS = (",", "\t", ";", "|")
HEAD_BYTES = 1 << 20  # enough for the title and header rows of any real export
SAMPLES, SAMPLE_BYTES = 4, 1 << 18  # beyond the head, the encoding is judged on 4 windows of 256 KiB
TRANSCODE_CHUNK = 1 << 22
_HIGH = bytes(range(0x80, 0x100))
_ESCAPED = re.compile(BAD + r"((?:\\x[0-9a-f]{2})+)")
# the suffixes calamine opens by name; a workbook under another name is handed to it as bytes
_CALAMINE_NAMES = {".xlsx": {".xlsx", ".xlsm"}, ".xls": {".xls"}, ".ods": {".ods"}, ".xlsb": {".xlsb"}}
csv.field_size_limit(2**31 - 1)  # text fields can be hundreds of thousands of characters long


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
    # rows holding bytes not valid in the encoding: (row number, fields with the bytes as \\xff, the bytes)
    undecodable: list[tuple[int, list[str], str]] = field(default_factory=list)

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
    """Read any supported file into a Grid; what the file is comes from its bytes (formats.sniff).

    ``find_header`` returns the index of the header row in a sheet's first rows, or None: it picks the sheet of a
    workbook, and the delimiter and width of a CSV file.
    """
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
        if size == 0:
            raise UnreadableFile("the file is empty (0 bytes)")
        fmt = sniff(path)
    except OSError as e:
        raise UnreadableFile(f"cannot open: {e}") from e
    if fmt.reader == "calamine":
        return _read_workbook(path, fmt, find_header)
    if fmt.reader in ("html", "spreadsheetml"):
        return _read_markup(path, fmt, find_header)
    if fmt.reader == "encrypted":
        raise UnreadableFile(ENCRYPTED)
    if fmt.reader == "other":
        raise UnreadableFile(f"not a spreadsheet export: {fmt.what} (suffix {suffix or '(none)'!r})")
    if suffix in TEXT_SUFFIXES:
        return _read_text(path, find_header)
    if suffix in SPREADSHEET_SUFFIXES:
        try:  # tab-separated text saved under a .xls name is common too
            return _read_text(path, find_header)
        except UnreadableFile as e:
            raise UnreadableFile(
                f"not a readable spreadsheet: neither a workbook (xlsx, xls, et, ods), an HTML or XML table nor "
                f"text ({e})"
            ) from e
    raise UnreadableFile(
        f"not a spreadsheet export: suffix {suffix or '(none)'!r}; expected one of "
        + ", ".join(sorted(SPREADSHEET_SUFFIXES | TEXT_SUFFIXES))
    )


def _pick_sheet(grids: Iterable[Grid], find_header) -> Grid:
    """The first sheet whose first rows hold the header, else the first sheet with cells."""
    first = None
    for grid in grids:
        if first is None:
            first = grid
        if find_header is None or find_header(grid.head(60)) is not None:
            return grid
    if first is None:
        raise UnreadableFile("the workbook has no cells")
    return first


def _read_workbook(path: Path, fmt: Format, find_header) -> Grid:
    from python_calamine import CalamineWorkbook, PasswordError

    try:
        if path.suffix.lower() in _CALAMINE_NAMES.get(fmt.suffix or "", ()):
            wb = CalamineWorkbook.from_path(str(path))
        else:  # calamine picks its reader by the name: an xlsx saved as .xls, a WPS .et
            with path.open("rb") as f:
                wb = CalamineWorkbook.from_filelike(f)
    except PasswordError as e:
        raise UnreadableFile(ENCRYPTED) from e
    except Exception as e:  # calamine raises several types for zip/xml/format errors
        raise UnreadableFile(f"not a readable spreadsheet: {fmt.what} that cannot be opened ({plain_error(e)})") from e

    def sheets():
        for name in wb.sheet_names:
            try:
                rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
            except PasswordError as e:
                raise UnreadableFile(ENCRYPTED) from e
            except Exception as e:
                raise UnreadableFile(f"sheet {name!r} cannot be read ({plain_error(e)})") from e
            if rows:
                yield _grid_from_rows(rows, sheet=name)

    return _pick_sheet(sheets(), find_header)


def _read_markup(path: Path, fmt: Format, find_header) -> Grid:
    """An HTML table or an XML Spreadsheet 2003 document: decoded in its declared charset (GBK or UTF-8, checked
    against the bytes), rows holding undecodable bytes set apart like a CSV's."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = choose_encoding(_spread(data), declared_encoding(data[:HEAD_BYTES]), binary_ok=True)
    text = decode_markup(data, encoding)
    del data
    reader = html_sheets if fmt.reader == "html" else spreadsheetml_sheets
    marked = BAD in text
    sheets = reader(text)
    del text

    def grids():
        for name, rows in sheets:
            grid = _grid_from_rows(rows, sheet=name if fmt.reader == "spreadsheetml" else None)
            grid.encoding = encoding.replace("-sig", " (BOM)")
            yield _set_apart_undecodable(grid) if marked else grid

    return _pick_sheet(grids(), find_header)


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
    """utf-8-sig / utf-16 by their BOM, else utf-8 or gb18030, whichever the bulk of the file decodes in (a few
    bad rows do not change the verdict). Raises UnreadableFile for binary or undecodable files."""
    with path.open("rb") as f:
        start = f.read(4)
    if start.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return choose_encoding(_samples(path))


def _samples(path: Path) -> list[bytes]:
    """The head (1 MiB) and, for a larger file, SAMPLES windows spread over the rest, each cut at line ends."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
        out = [head if len(head) < HEAD_BYTES else head[: head.rfind(b"\n") + 1] or head]
        if size > 2 * HEAD_BYTES:
            for k in range(1, SAMPLES + 1):
                f.seek(HEAD_BYTES + (size - HEAD_BYTES) * k // (SAMPLES + 1))
                chunk = f.read(SAMPLE_BYTES)
                a, b = chunk.find(b"\n"), chunk.rfind(b"\n")
                if 0 <= a < b:
                    out.append(chunk[a + 1 : b + 1])
    return out


def _spread(data: bytes) -> list[bytes]:
    """Samples of bytes in memory, like _samples of a file."""
    if len(data) <= 2 * HEAD_BYTES:
        return [data]
    step = (len(data) - HEAD_BYTES) // (SAMPLES + 1)
    return [data[:HEAD_BYTES]] + [data[HEAD_BYTES + k * step :][:SAMPLE_BYTES] for k in range(1, SAMPLES + 1)]


def choose_encoding(samples: list[bytes], declared: str | None = None, *, binary_ok: bool = False) -> str:
    """The candidate (the declared charset, utf-8, gb18030; ties in that order) in which the samples hold the
    fewest undecodable byte sequences; unknown when more than a tenth of their non-ASCII bytes stay undecodable."""
    if not binary_ok and any(b"\x00" in s for s in samples):
        raise UnreadableFile("binary content (NUL bytes): not a text export")
    high = sum(len(s) - len(s.translate(None, _HIGH)) for s in samples)
    candidates = list(dict.fromkeys(c for c in (declared, "utf-8", "gb18030") if c))
    if high == 0:
        return candidates[0]
    scored = []
    for i, candidate in enumerate(candidates):
        try:
            # "replace" stays in C (a Python handler costs ~0.7 s on 2 MiB of GBK judged as UTF-8); a U+FFFD
            # already in the text counts against every candidate alike
            bad = sum(s.decode(candidate, "replace").count("\ufffd") for s in samples)
        except LookupError:
            continue
        scored.append((bad, i, candidate))
    bad, _, best = min(scored)
    if bad * 10 > high:
        raise UnreadableFile("text in an unknown encoding (tried UTF-8, UTF-16 with BOM, GB18030/GBK)")
    return best


def _head_text(path: Path, encoding: str) -> str:
    with path.open("rb") as f:
        raw = f.read(HEAD_BYTES)
    return codecs.getincrementaldecoder(encoding)(MARK).decode(raw, final=False)


class _Utf8Stream(io.RawIOBase):
    """The file's text as UTF-8 for pyarrow, decoded chunk by chunk; bytes not valid in ``encoding`` are marked
    (formats.MARK) instead of failing the whole file. ``marked`` tells whether any were."""

    def __init__(self, path: Path, encoding: str):
        super().__init__()
        self._f = path.open("rb")
        self._decoder = codecs.getincrementaldecoder(encoding)(MARK)
        self._pending = b""
        self._eof = False
        self.marked = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._pending) < n) and not self._eof:
            raw = self._f.read(TRANSCODE_CHUNK)
            self._eof = not raw
            text = self._decoder.decode(raw, final=self._eof)
            if BAD in text:
                self.marked = True
            self._pending += text.encode("utf-8")
        if n < 0 or n >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


def _set_apart_undecodable(grid: Grid) -> Grid:
    """Move the rows holding marked bytes out of the grid into ``grid.undecodable`` (the marks removed, the bytes
    left escaped as \\xff)."""
    if not grid.columns or not len(grid.row_numbers):
        return grid
    mask = functools.reduce(pc.or_, (pc.match_substring(c, BAD) for c in grid.columns))
    positions = pc.indices_nonzero(mask).to_pylist()
    if not positions:
        return grid
    numbers = grid.row_numbers.to_pylist()
    for i in positions:
        fields = [c[i].as_py() or "" for c in grid.columns]
        while fields and not fields[-1]:
            fields.pop()
        joined = "".join(fields)
        escaped = "".join(_ESCAPED.findall(joined))
        grid.undecodable.append((numbers[i], [f.replace(BAD, "") for f in fields], escaped))
    keep = pc.invert(mask)
    grid.columns = [pc.filter(c, keep) for c in grid.columns]
    grid.row_numbers = pc.filter(grid.row_numbers, keep)
    return grid


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
    undecodable: list[tuple[int, list[str], str]] = []

    def on_invalid(row) -> str:
        fields = next(csv.reader([row.text], delimiter=delim), [])
        if BAD in row.text:
            escaped = "".join(_ESCAPED.findall(row.text))
            undecodable.append((row.number, [f.replace(BAD, "") for f in fields], escaped))
        else:
            odd.append((row.number, fields))
        return "skip"

    names = [f"c{i}" for i in range(width)]
    # UTF-8 goes to pyarrow as it is (it checks the bytes); anything else, or UTF-8 with a bad byte, is decoded
    # by _Utf8Stream, which marks undecodable bytes instead of failing the file
    stream = None if encoding == "utf-8" else _Utf8Stream(path, encoding)
    try:
        table = _parse_csv(path if stream is None else stream, names, delim, on_invalid)
    except pa.ArrowInvalid as e:
        if stream is not None or "UTF8" not in str(e):
            raise UnreadableFile(f"not a readable CSV ({_short(e)})") from e
        odd.clear()
        undecodable.clear()
        stream = _Utf8Stream(path, encoding)
        try:
            table = _parse_csv(stream, names, delim, on_invalid)
        except pa.ArrowInvalid as e2:
            raise UnreadableFile(f"not a readable CSV ({_short(e2)})") from e2
    finally:
        if stream is not None:
            stream.close()
    total = table.num_rows + len(odd) + len(undecodable)
    # pyarrow reports odd rows by record number; the fitting rows take the other numbers, in order.
    if odd or undecodable:
        odd_numbers = {n for n, _ in odd} | {n for n, _, _ in undecodable}
        numbers = [n for n in range(1, total + 1) if n not in odd_numbers]
        row_numbers = pa.array(numbers, pa.int64())
    else:
        row_numbers = pa.array(range(1, total + 1), pa.int64())
    columns = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns]
    if table.num_rows == 0:
        columns = [pa.array([], pa.string()) for _ in names]
    grid = Grid(
        columns=columns,
        row_numbers=row_numbers,
        rows_total=total,
        encoding=encoding.replace("-sig", " (BOM)"),
        delimiter=delim,
        odd_rows=odd,
        undecodable=undecodable,
    )
    return _set_apart_undecodable(grid) if stream is not None and stream.marked else grid


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__


def _parse_csv(source, names: list[str], delim: str, on_invalid) -> pa.Table:
    return pacsv.read_csv(
        source if not isinstance(source, Path) else str(source),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 22),
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
