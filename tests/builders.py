"""Small helpers that write real input files (xlsx, csv/txt) for the reader and ingest tests.

Rows are lists of cell values. For xlsx, a value is written as is (str stays a text cell, int/float a number cell,
date/datetime a date cell); ``merges`` takes Excel ranges such as ``"A3:A4"``. For csv, every value is written with
``str()`` (None as empty) in the given encoding and delimiter.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import Workbook

from schemas.spec import export_header

PAYMENT_HEADER = export_header(
    "payments",
    "pay_cert_no pay_date agency_code agency_name pro_code pro_name bgt_doc_no payee_acct_name payee_acct_no pay_amt"
    " use_des status ori_pay_cert_no",
)


def payment_row(
    cert: str = "PV001",
    date: object = "2024-03-15",
    amount: object = "100.00",
    *,
    agency: str = "990001",
    agency_name: str = "示例县公路事务中心",
    pro: str = "P001",
    pro_name: str = "农村公路安保工程",
    doc: str = "示财预〔2024〕3号",
    payee: str = "示例路桥工程有限公司",
    acct: object = "4100200300400500600",
    use: str = "进度款",
    status: str = "已支付",
    original: str = "",
) -> list[object]:
    """One data row in the order of PAYMENT_HEADER."""
    return [cert, date, agency, agency_name, pro, pro_name, doc, payee, acct, amount, use, status, original]


def write_xlsx(
    path: Path,
    rows: Iterable[Sequence[object]],
    *,
    merges: Iterable[str] = (),
    sheet: str = "Sheet1",
    number_formats: dict[str, str] | None = None,
) -> Path:
    """Write ``rows`` to one sheet, then merge the given ranges. ``number_formats`` maps a cell ('B5') to a format."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(list(row))
    for rng in merges:
        ws.merge_cells(rng)
    for cell, fmt in (number_formats or {}).items():
        ws[cell].number_format = fmt
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def csv_text(rows: Iterable[Sequence[object]], *, delimiter: str = ",", quote_all: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.writer(
        buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    for row in rows:
        writer.writerow(["" if v is None else str(v) for v in row])
    return buf.getvalue()


def write_csv(
    path: Path,
    rows: Iterable[Sequence[object]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    quote_all: bool = False,
) -> Path:
    """Write rows as delimited text. ``encoding='utf-16'`` writes a BOM (as Excel's "Unicode 文本" does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text(rows, delimiter=delimiter, quote_all=quote_all).encode(encoding))
    return path


def write_export(
    path: Path, titles: Sequence[str], header: Sequence[str], rows: Iterable[Sequence[object]], *, encoding="utf-8"
) -> Path:
    """An export as treasury systems write it: title rows (one cell each), the header, the data rows."""
    return write_csv(path, [*([t] for t in titles), header, *rows], encoding=encoding)


def write_lines(path: Path, lines: Iterable[str], *, encoding: str = "utf-8") -> Path:
    """Write raw text lines exactly (for rows a csv writer would quote, e.g. an unquoted 1,234.56)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def assert_accounted(batch) -> None:
    """Nothing lost: every row read is valid, rejected or skipped."""
    assert batch.rows_read == batch.rows_valid + batch.rows_rejected + batch.rows_skipped, (
        f"{batch.file_name}: read {batch.rows_read} != valid {batch.rows_valid} + rejected {batch.rows_rejected}"
        f" + skipped {batch.rows_skipped}"
    )
