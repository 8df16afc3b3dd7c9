"""From a grid of text cells to canonical columns: find the header, read the title, classify every row.

Every row of the grid ends up in exactly one bucket: skipped (title, header, repeated header, blank, totals, page
subtotal, note), rejected (with the failing cells and why) or valid (a canonical row, still to be validated by the
pandera schema). ``rows_read = skipped + rejected + valid`` holds by construction and is checked.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from flows.ingest.parse import clean_code, clean_text, parse_account, parse_date, parse_money, squeeze
from flows.ingest.read import Grid
from schemas.spec import KindSpec, Spec, load_spec, normalize_header

HEAD_ROWS = 60  # the header is searched in the first rows only
PARALLEL_PARSE_ROWS = 50_000  # below this a file's columns parse in the calling thread
PARSE_THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_UNIT_MARKER = re.compile(r"^(?:金额)?单位[:：]\s*(万元|元)\s*$")
_AGENCY_MARKER = re.compile(r"^(?:预算)?单位(?:名称)?[:：]\s*(?P<name>.+?)\s*$")
_AGENCY_CODE_MARKER = re.compile(r"^(?:预算)?单位编码[:：]\s*(?P<code>[0-9A-Za-z]+)\s*$")
_YEAR = re.compile(r"((?:19|20|21)\d{2})\s*年")
# a budget sheet's effective date in its title (CONTRACT.md 1.3): 调整日期：2024-09-15, or （2024年9月调整）
_DATE_MARKER = re.compile(r"(?:调整|批复|下达|生效)日期[:：]\s*(?P<date>[0-9０-９][^\s)）]*)")
_MONTH_MARKER = re.compile(
    r"(?P<y>(?:19|20|21)\d{2})\s*年\s*(?P<m>1[0-2]|0?[1-9])\s*月(?:\s*(?P<d>[0-3]?\d)\s*日)?\s*(?:追加)?调整"
)


class FileError(Exception):
    """The file as a whole cannot be used (missing or ambiguous columns, no fiscal year); ``column`` names the
    canonical column concerned when there is one."""

    def __init__(self, message: str, *, column: str | None = None, check: str = "file"):
        super().__init__(message)
        self.column = column
        self.check = check


@dataclass
class Header:
    row: int  # index in the grid of the header row
    end: int  # index of the last header row (row, or row + 1 for two-row headers)
    columns: dict[str, int]  # canonical name -> grid column
    units: dict[str, str]  # canonical money column -> unit from its header, when the header says
    texts: dict[int, str]  # grid column -> header text as in the file
    extras: dict[int, str]  # grid column -> header text, for columns that map to nothing


@dataclass
class Extracted:
    """Canonical text-parsed columns of the data rows of one file, plus the accounting of every other row."""

    kind: str
    columns: dict[str, pa.Array]  # canonical -> values (string, int64 fen, date32), data rows only
    source_row: pa.Array  # int64 Excel row numbers of the data rows
    errors: list[tuple[str, pa.Array]]  # (canonical column, message array aligned with data rows)
    raw: dict[str, pa.Array]  # canonical -> the cell text as in the file, data rows only (for rejection reports)
    header: Header
    rows_read: int
    rows_skipped: int
    odd_rejects: list[dict]  # CSV rows with a wrong field count, rejected whole
    control_total: int | None  # fen
    units: dict[str, str]
    notes: list[str] = field(default_factory=list)
    fiscal_year: int | None = None
    agency_name: str | None = None
    extras: dict[str, pa.Array] = field(default_factory=dict)  # extra header -> values of data rows
    effective_date: dt.date | None = None  # a budget sheet's effective date from its title


def _key(cell: str) -> str:
    return normalize_header(cell)[0]


def _map_row(cells: list[str], kind: KindSpec) -> dict[int, str]:
    out = {}
    for j, cell in enumerate(cells):
        if cell:
            name = kind.alias_to_column.get(_key(cell))
            if name:
                out[j] = name
    return out


def find_header(rows: list[list[str]], kind: KindSpec) -> int | None:
    """Index of the first row that (with a sub-header row under it) names every required column."""
    required = set(kind.required)
    for i in range(min(len(rows), HEAD_ROWS)):
        names = set(_map_row(rows[i], kind).values())
        if i + 1 < len(rows):
            names |= set(_map_row(rows[i + 1], kind).values())
        if required <= names and required & set(_map_row(rows[i], kind).values()):
            return i
    return None


def parse_header(rows: list[list[str]], kind: KindSpec, file_label: str) -> Header:
    at = find_header(rows, kind)
    if at is None:
        raise _missing_columns(rows, kind, file_label)
    top = rows[at]
    top_map = _map_row(top, kind)
    below = rows[at + 1] if at + 1 < len(rows) else []
    below_map = _map_row(below, kind)
    # The row under the header belongs to it when it adds known sub-headers and names no required column that
    # the header row already has (a data row never consists of header names).
    adds = {j: n for j, n in below_map.items() if n not in top_map.values()}
    two_rows = bool(adds) and not (set(below_map.values()) & set(top_map.values()))
    mapping: dict[int, str] = dict(top_map)
    texts = {j: c for j, c in enumerate(top) if c}
    units: dict[str, str] = {}
    if two_rows:
        for j, n in below_map.items():
            mapping[j] = n
            texts[j] = below[j]
    seen: dict[str, int] = {}
    for j in sorted(mapping):
        name = mapping[j]
        if name in seen:
            a, b = texts[seen[name]], texts[j]
            raise FileError(
                f"{file_label}: 表头「{a}」和「{b}」都对应 {name} 列，无法判断用哪一列 (ambiguous columns)",
                column=name,
                check="ambiguous_columns",
            )
        seen[name] = j
        unit = normalize_header(texts[j])[1]
        if unit is None and two_rows:
            # a merged group cell over the sub-headers, e.g. 分季度用款计划（万元）: nearest non-empty cell to the left
            for k in range(j, -1, -1):
                if k < len(top) and top[k]:
                    unit = normalize_header(top[k])[1] if k not in top_map else None
                    break
        if unit:
            units[name] = unit
    extras = {
        j: (below[j] if two_rows and j < len(below) and below[j] else top[j])
        for j in range(max(len(top), len(below) if two_rows else 0))
        if j not in mapping and ((j < len(top) and top[j]) or (two_rows and j < len(below) and below[j]))
    }
    return Header(
        row=at,
        end=at + 1 if two_rows else at,
        columns={n: j for j, n in mapping.items()},
        units=units,
        texts=texts,
        extras=extras,
    )


def _missing_columns(rows: list[list[str]], kind: KindSpec, file_label: str) -> FileError:
    best: set[str] = set()
    for i in range(min(len(rows), HEAD_ROWS)):
        names = set(_map_row(rows[i], kind).values())
        if i + 1 < len(rows):
            names |= set(_map_row(rows[i + 1], kind).values())
        if len(names & set(kind.required)) > len(best & set(kind.required)):
            best = names
    missing = [c for c in kind.required if c not in best]
    parts = [f"{c}（可接受的表头：{kind.accepted_headers(c)}）" for c in missing]
    return FileError(
        f"{file_label}: 找不到必需列 " + "；".join(parts) + f" — no header row names every required column of a "
        f"{kind.kind} export within the first {HEAD_ROWS} rows",
        column=missing[0] if missing else None,
        check="missing_column",
    )


def read_title(rows: list[list[str]]) -> tuple[str | None, int | None, str | None, str | None]:
    """(unit, fiscal year, agency name, agency code) from the rows above the header."""
    unit = year = name = code = None
    for row in rows:
        for cell in row:
            text = unicodedata.normalize("NFKC", cell).strip()
            if not text:
                continue
            for piece in re.split(r"\s{2,}|\s(?=\S+[:：])", text):
                piece = piece.strip()
                if m := _UNIT_MARKER.match(piece):
                    unit = m.group(1)
                elif m := _AGENCY_CODE_MARKER.match(piece):
                    code = m.group("code")
                elif m := _AGENCY_MARKER.match(piece):
                    name = m.group("name")
            if year is None and (m := _YEAR.search(text)):
                year = int(m.group(1))
    return unit, year, name, code


def read_effective_date(rows: list[list[str]]) -> dt.date | None:
    """A budget sheet's effective date from the rows above the header: a `调整日期：2024-09-15` marker (also
    批复日期/下达日期/生效日期), or `（2024年9月调整）`: the first day of that month (the day when the title gives one).
    The last marker found wins (a title may name the original approval, then the adjustment)."""
    found: dt.date | None = None
    for row in rows:
        for cell in row:
            text = unicodedata.normalize("NFKC", cell).strip()
            if not text:
                continue
            for m in _DATE_MARKER.finditer(text):
                day = parse_date(pa.array([m.group("date")], pa.string()))[0][0].as_py()
                if day is not None:
                    found = day
            for m in _MONTH_MARKER.finditer(text):
                try:
                    found = dt.date(int(m.group("y")), int(m.group("m")), int(m.group("d") or 1))
                except ValueError:
                    continue
    return found


def _compared_columns(kind: KindSpec, header: Header) -> set[int]:
    """The columns whose cells the repeated-header check compares with the header text."""
    cols = {header.columns[name] for name in kind.required[:3]}
    sub = [c for c in kind.columns if c.sub and c.name in header.columns]
    if header.end > header.row and sub:
        cols.add(header.columns[sub[0].name])
    return cols


def _starts(first: pa.Array, words: tuple[str, ...], *, colon: bool = False) -> pa.Array:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    pattern = f"^(?:{alternatives})" + ("[:：]" if colon else "")
    return pc.fill_null(pc.match_substring_regex(first, pattern), False)


def undecodable_reject(number: int, fields: list[str], escaped: str, grid: Grid, header: Header) -> dict:
    """The rejection of a row holding bytes that are not valid in the file's encoding (the bytes shown escaped),
    with the row's unit as far as its readable cells tell (so it lands in that unit's outputs)."""
    units = {}
    for name in ("agency_code", "agency_name", "ori_pay_cert_no"):
        j = header.columns.get(name)
        cell = fields[j].strip() if j is not None and j < len(fields) else ""
        units[name] = cell if cell and "\\x" not in cell else None
    encoding = (grid.encoding or "").replace(" (BOM)", "").upper() or "the file's encoding"
    shown = escaped if len(escaped) <= 80 else escaped[:80] + "…"
    return {
        "source_row": number,
        "column": None,
        "value": (grid.delimiter or ",").join(fields)[:2000],
        "check": "encoding",
        "message": f"row {number}: bytes {shown} are not valid {encoding} text (shown escaped); the row is "
        f"rejected, the rest of the file loads — 第 {number} 行含有无法按 {encoding} 解码的字节 {shown}，该行未载入",
        **units,
    }


def extract(grid: Grid, kind_name: str, file_label: str, *, spec: Spec | None = None) -> Extracted:
    spec = spec or load_spec()
    kind = spec.kinds[kind_name]
    head = grid.head(HEAD_ROWS)
    header = parse_header(head, kind, file_label)
    # CSV title lines narrower than the header are odd rows, outside the grid: they are title rows too
    first_header_number = grid.row_numbers[header.row].as_py()
    odd_titles = [fields for number, fields in grid.odd_rows if number < first_header_number]
    odd_titles += [fields for number, fields, _ in grid.undecodable if number < first_header_number]
    title_unit, year, agency_name, agency_code = read_title(odd_titles + head[: header.row])
    notes: list[str] = []
    units: dict[str, str] = {}
    for c in kind.columns:
        if c.type != "money" or c.name not in header.columns:
            continue
        if c.name in header.units:
            units[c.name] = header.units[c.name]
        elif title_unit:
            units[c.name] = title_unit
        else:
            units[c.name] = kind.default_unit
            notes.append(f"no unit marker for {c.name}: assumed {kind.default_unit}")

    body = header.end + 1
    n = len(grid.row_numbers) - body
    cells = [col.slice(body) for col in grid.columns]
    # Classifying rows needs the count of non-empty cells and the first non-empty cell of each row; only that
    # cell, and the few header columns compared for repeated headers, are normalised (1M rows: 2.8 s saved).
    count = pa.array([0] * n, pa.int64()) if n else pa.array([], pa.int64())
    first = pa.array([""] * n, pa.string()) if n else pa.array([], pa.string())
    for c in reversed(cells):
        ne = pc.invert(pc.or_(pc.equal(c, ""), pc.utf8_is_space(c)))
        count = pc.add(count, pc.cast(ne, pa.int64()))
        first = pc.if_else(ne, c, first)
    first = squeeze(first)
    stripped = {j: squeeze(cells[j]) for j in _compared_columns(kind, header)}
    blank = pc.equal(count, 0)
    subtotal = _starts(first, spec.subtotals)
    total = pc.and_(_starts(first, spec.totals), pc.invert(subtotal))
    note = pc.and_(_starts(first, spec.notes, colon=True), pc.less_equal(count, 3))
    repeat = pa.array([True] * n) if n else pa.array([], pa.bool_())
    for name in kind.required[:3]:
        j = header.columns[name]
        repeat = pc.and_(repeat, pc.equal(stripped[j], _key(header.texts[j]) if j < len(grid.columns) else ""))
    # a second header row repeated on each page of a two-row header is not data either
    if header.end > header.row:
        sub = [c for c in kind.columns if c.sub and c.name in header.columns]
        if sub:
            j = header.columns[sub[0].name]
            repeat = pc.or_(repeat, pc.and_(pc.equal(stripped[j], _key(header.texts[j])), pc.less(count, 6)))
    skip = pc.or_(pc.or_(pc.or_(blank, subtotal), pc.or_(total, note)), repeat)
    data = pc.invert(skip)

    amount_col = kind.amount_column
    if amount_col not in header.columns and kind.fallback_amount_column in header.columns:
        amount_col = kind.fallback_amount_column
    # the control total is the last totals row's amount (a short CSV totals row counts too)
    totals: list[tuple[int, str]] = []
    if amount_col in header.columns:
        j = header.columns[amount_col]
        totals = [
            (grid.row_numbers[body + i].as_py(), cells[j][i].as_py()) for i in pc.indices_nonzero(total).to_pylist()
        ]
        for number, fields in grid.odd_rows:
            texts = [_key(f) for f in fields if f.strip()]
            if number > first_header_number and texts and texts[0].startswith(spec.totals):
                if not texts[0].startswith(spec.subtotals):
                    totals.append((number, fields[j] if j < len(fields) else ""))
    control_total = None
    if totals:
        number, text = max(totals)
        fen, err = parse_money(pa.array([text], pa.string()), units[amount_col])
        if fen[0].is_valid:
            control_total = fen[0].as_py()
        elif err[0].is_valid:
            notes.append(f"totals row {number}: {err[0]}")

    idx = pc.indices_nonzero(data)
    if len(idx) and idx[-1].as_py() - idx[0].as_py() + 1 == len(idx):
        take = [c.slice(idx[0].as_py(), len(idx)) for c in cells]  # one run of data rows: no copy
    else:
        take = [c.take(idx) for c in cells]
    columns: dict[str, pa.Array] = {}
    raw: dict[str, pa.Array] = {}
    errors: list[tuple[str, pa.Array]] = []
    rows = len(idx)

    def parse(c) -> tuple[pa.Array, pa.Array | None]:
        values = take[header.columns[c.name]]
        if c.type == "money":
            return parse_money(values, units[c.name])
        if c.type == "date":
            return parse_date(values)
        if c.type == "account":
            return parse_account(values)
        if c.type == "code":
            return clean_code(values), None
        return clean_text(values), None

    present = [c for c in kind.columns if c.name in header.columns]
    # Columns parse independently and Arrow's kernels release the GIL: a few threads use the cores a single file
    # would leave idle (1M rows: extract ~3 s -> ~2 s on 2 cores). Small files parse inline.
    if rows >= PARALLEL_PARSE_ROWS and PARSE_THREADS > 1:
        with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="parse") as pool:
            parsed_columns = list(pool.map(parse, present))
    else:
        parsed_columns = [parse(c) for c in present]
    for c, (parsed, err) in zip(present, parsed_columns, strict=True):
        raw[c.name] = take[header.columns[c.name]]
        columns[c.name] = parsed
        if err is not None and err.null_count < len(err):
            errors.append((c.name, err))
    if "agency_code" not in header.columns and agency_code:
        columns["agency_code"] = pa.array([agency_code] * rows, pa.string())
    if "agency_name" not in header.columns and agency_name and any(c.name == "agency_name" for c in kind.columns):
        columns["agency_name"] = pa.array([agency_name] * rows, pa.string())  # from a 预算单位：… title line
    extras = {text: take[j] for j, text in header.extras.items() if j < len(take)}

    odd_rejects = []
    odd_skipped = 0
    for number, fields in grid.odd_rows:
        if number < first_header_number:  # title rows above the header: skipped like any title row
            odd_skipped += 1
            continue
        texts = [_key(f) for f in fields if f.strip()]
        if (
            not texts
            or any(texts[0].startswith(w) for w in spec.totals + spec.subtotals)
            or (re.match("^(?:" + "|".join(map(re.escape, spec.notes)) + ")[:：]", texts[0]) and len(texts) <= 3)
        ):
            odd_skipped += 1
            continue
        odd_rejects.append(
            {
                "source_row": number,
                "column": None,
                "value": ",".join(fields)[:2000],
                "check": "field_count",
                "message": f"this row has {len(fields)} fields but the header has {grid.width}: "
                "a value with an unquoted delimiter (e.g. 1,234.56 without quotes) shifts the columns",
            }
        )
    for number, fields, escaped in grid.undecodable:
        if number < first_header_number:  # a title row with a bad byte is still a title row
            odd_skipped += 1
            continue
        odd_rejects.append(undecodable_reject(number, fields, escaped, grid, header))
    skipped = body + pc.sum(pc.cast(skip, pa.int64())).as_py() if n else body
    skipped += odd_skipped
    return Extracted(
        kind=kind_name,
        columns=columns,
        source_row=grid.row_numbers.slice(body).take(idx),
        errors=errors,
        raw=raw,
        header=header,
        rows_read=grid.rows_total,
        rows_skipped=skipped,
        odd_rejects=odd_rejects,
        control_total=control_total,
        units=units,
        notes=notes,
        fiscal_year=year,
        agency_name=agency_name,
        extras=extras,
        effective_date=read_effective_date(odd_titles + head[: header.row]) if kind_name == "budget" else None,
    )
