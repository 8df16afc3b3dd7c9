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


# --- the other formats government systems write (issue 11): HTML and XML Spreadsheet 2003 under .xls, ods, BIFF ---


class Span:
    """A merged cell for the markup writers: ``text`` over ``cols`` columns and ``rows`` rows (the cells it covers
    are left out of the row, as HTML and SpreadsheetML leave them out)."""

    def __init__(self, text: object, cols: int = 1, rows: int = 1):
        self.text, self.cols, self.rows = text, cols, rows


def _html_escape(value: object) -> str:
    import html

    return html.escape("" if value is None else str(value), quote=True)


def html_table(rows: Iterable[Sequence[object]], *, charset: str = "gbk", meta: str = "http-equiv") -> str:
    """The page a treasury system's 导出Excel writes: an HTML table with Excel's namespaces and a charset meta tag
    (``meta='http-equiv'`` as old systems write it, ``'charset'`` for <meta charset=…>). A ``Span`` cell becomes
    colspan/rowspan; None is an empty cell."""
    head = (
        f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        if meta == "http-equiv"
        else f'<meta charset="{charset}">'
    )
    out = [
        '<html xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:x="urn:schemas-microsoft-com:office:excel"'
        ' xmlns="http://www.w3.org/TR/REC-html40">',
        f"<head>{head}<style>td {{ mso-number-format:'\\@'; }}</style></head>",
        '<body><table border="1" cellspacing="0">',
    ]
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, Span):
                attrs = (f' colspan="{v.cols}"' if v.cols > 1 else "") + (f' rowspan="{v.rows}"' if v.rows > 1 else "")
                cells.append(f"<td{attrs}>{_html_escape(v.text)}</td>")
            else:
                cells.append(f"<td>{_html_escape(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table></body></html>")
    return "\r\n".join(out)


def write_html_xls(path: Path, rows: Iterable[Sequence[object]], *, encoding: str = "gbk", **kw) -> Path:
    """Write ``html_table(rows)`` encoded in ``encoding`` (its meta tag says so) under the given (.xls) name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(html_table(rows, charset=encoding, **kw).encode(encoding))
    return path


def write_spreadsheetml(
    path: Path, sheets: dict[str, Iterable[Sequence[object]]] | Iterable[Sequence[object]], *, encoding="utf-8"
) -> Path:
    """An Excel "XML Spreadsheet 2003" document. int/float cells are Number, date/datetime DateTime, the rest
    String; None leaves the cell out (the next one then carries ss:Index, as Excel writes it); a ``Span`` cell
    gets ss:MergeAcross/ss:MergeDown; an empty row is left out (the next row carries ss:Index)."""
    import datetime as dt
    import html

    if not isinstance(sheets, dict):
        sheets = {"Sheet1": sheets}
    out = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<?mso-application progid="Excel.Sheet"?>',
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:o="urn:schemas-microsoft-com:office:'
        'office" xmlns:x="urn:schemas-microsoft-com:office:excel" xmlns:ss="urn:schemas-microsoft-com:office:'
        'spreadsheet" xmlns:html="http://www.w3.org/TR/REC-html40">',
    ]
    for name, rows in sheets.items():
        out.append(f'<Worksheet ss:Name="{html.escape(name)}"><Table>')
        skipped_row = False
        for r, row in enumerate(rows, start=1):
            if all(v is None or v == "" for v in row):
                skipped_row = True
                continue
            cells, skipped = [], False
            for c, v in enumerate(row, start=1):
                if v is None:
                    skipped = True
                    continue
                attrs = f' ss:Index="{c}"' if skipped else ""
                skipped = False
                if isinstance(v, Span):
                    attrs += f' ss:MergeAcross="{v.cols - 1}"' if v.cols > 1 else ""
                    attrs += f' ss:MergeDown="{v.rows - 1}"' if v.rows > 1 else ""
                    skipped = v.cols > 1  # the covered cells are left out: the next cell names its column
                    v = v.text
                if isinstance(v, bool) or not isinstance(v, int | float | dt.date):
                    data = f'<Data ss:Type="String">{html.escape(str(v))}</Data>'
                elif isinstance(v, dt.date):
                    stamp = v.isoformat() if isinstance(v, dt.datetime) else f"{v.isoformat()}T00:00:00"
                    data = f'<Data ss:Type="DateTime">{stamp}.000</Data>'
                else:
                    data = f'<Data ss:Type="Number">{v!r}</Data>'
                cells.append(f"<Cell{attrs}>{data}</Cell>")
            out.append((f'<Row ss:Index="{r}">' if skipped_row else "<Row>") + "".join(cells) + "</Row>")
            skipped_row = False
        out.append("</Table></Worksheet>")
    out.append("</Workbook>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("\r\n".join(out).encode(encoding))
    return path


def write_ods(path: Path, rows: Iterable[Sequence[object]], *, sheet: str = "Sheet1") -> Path:
    """A minimal OpenDocument spreadsheet (what LibreOffice saves): str is a string cell, int/float a float cell,
    date a date cell, None an empty cell; a ``Span`` cell is merged (number-columns/rows-spanned); pass None for
    the cells it covers, written as covered-table-cell as LibreOffice writes them."""
    import datetime as dt
    import html
    import zipfile

    body = []
    covered: set[tuple[int, int]] = set()
    for r, row in enumerate(rows):
        cells = []
        for c, v in enumerate(row):
            attrs = ""
            if isinstance(v, Span):
                attrs = f' table:number-columns-spanned="{v.cols}" table:number-rows-spanned="{v.rows}"'
                covered |= {(r + i, c + j) for i in range(v.rows) for j in range(v.cols)} - {(r, c)}
                v = v.text
            elif v is None:
                cells.append("<table:covered-table-cell/>" if (r, c) in covered else "<table:table-cell/>")
                continue
            if isinstance(v, dt.date):
                cells.append(
                    f'<table:table-cell{attrs} office:value-type="date" office:date-value="{v.isoformat()}">'
                    f"<text:p>{v.isoformat()}</text:p></table:table-cell>"
                )
            elif isinstance(v, int | float) and not isinstance(v, bool):
                cells.append(
                    f'<table:table-cell{attrs} office:value-type="float" office:value="{v!r}">'
                    f"<text:p>{v!r}</text:p></table:table-cell>"
                )
            else:
                cells.append(
                    f'<table:table-cell{attrs} office:value-type="string"><text:p>{html.escape(str(v))}</text:p>'
                    "</table:table-cell>"
                )
        body.append("<table:table-row>" + "".join(cells) + "</table:table-row>")
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"'
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}><office:body><office:spreadsheet>'
        f'<table:table table:name="{html.escape(sheet)}">' + "".join(body) + "</table:table>"
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.'
        'spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")  # stored, first
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
    return path


def biff_bytes(rows: Iterable[Sequence[object]], *, merges: Iterable[tuple[int, int, int, int]] = ()) -> bytes:
    """The BIFF8 Workbook stream xlwt writes for ``rows`` (``merges``: (first row, last row, first col, last col),
    0-based; the top-left value is the merged cell's)."""
    import datetime as dt

    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Sheet1")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    merged = {(r1, c1): (r2, c2) for r1, r2, c1, c2 in merges}
    covered = {
        (r, c) for (r1, c1), (r2, c2) in merged.items() for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)
    } - set(merged)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None or (r, c) in covered:
                continue
            style = date_style if isinstance(value, dt.date) else xlwt.Style.default_style
            if (r, c) in merged:
                r2, c2 = merged[(r, c)]
                sheet.write_merge(r, r2, c, c2, value, style)
            else:
                sheet.write(r, c, value, style)
    return book.get_biff_data()


def write_biff(path: Path, rows: Iterable[Sequence[object]], *, filepass: bool = False, **kw) -> Path:
    """A legacy BIFF8 workbook (.xls; WPS .et is the same format). ``filepass=True`` puts a FILEPASS record (RC4
    encryption header) after the first BOF, which is how an Excel 97-2003 file with an open password starts."""
    import os
    import struct

    from xlwt.CompoundDoc import XlsDoc

    data = biff_bytes(rows, **kw)
    if filepass:
        _, length = struct.unpack("<HH", data[:4])
        payload = struct.pack("<HHH", 1, 1, 1) + os.urandom(48)  # RC4, version 1.1, salt/verifier/hash
        data = data[: 4 + length] + struct.pack("<HH", 0x002F, len(payload)) + payload + data[4 + length :]
    path.parent.mkdir(parents=True, exist_ok=True)
    XlsDoc().save(str(path), data)
    return path


def write_encrypted_xlsx(path: Path, rows: Iterable[Sequence[object]], password: str = "123456") -> Path:
    """An xlsx with an open password, as Excel saves it: an OLE2 file holding EncryptionInfo and EncryptedPackage
    (agile encryption, written by msoffcrypto-tool)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = write_xlsx(path.with_name(path.name + ".plain.xlsx"), rows)
    with plain.open("rb") as f, path.open("wb") as out:
        OOXMLFile(f).encrypt(password, out)
    plain.unlink()
    return path
