"""What a file is comes from its bytes, not its name (issue 11 item 1, CONTRACT.md section 1): an HTML table or an
XML Spreadsheet 2003 document saved as .xls, an .ods, a WPS .et, an xlsx under a .xls name are read as spreadsheets;
an encrypted workbook is reported as password-protected; anything else as what it is, never with a hex dump.
Every test writes the real file (xlwt for BIFF, msoffcrypto-tool for an encrypted xlsx, by hand for the rest)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from flows.build import build_night
from flows.ingest.extract import find_header
from flows.ingest.formats import sniff
from flows.ingest.read import read_grid
from flows.ingest.validate import ingest_file
from flows.warehouse import db
from schemas.spec import load_spec
from tests.builders import (
    PAYMENT_HEADER,
    Span,
    assert_accounted,
    csv_text,
    payment_row,
    write_biff,
    write_encrypted_xlsx,
    write_html_xls,
    write_ods,
    write_spreadsheetml,
    write_xlsx,
)

WIDTH = len(PAYMENT_HEADER)
TITLE = "国库集中支付明细查询"
RARE = "示例𠀀建材公司"  # 𠀀 (U+20000) is GB18030 only: a GBK page cannot hold it, a UTF-8 one can


def payments(prefix: str, *, payee: str = "示例路桥工程有限公司") -> list[list[object]]:
    """A treasury export: a merged title over the table, the unit marker, header, three vouchers, the totals."""
    return [
        [Span(TITLE, cols=WIDTH)],
        ["金额单位：元"],
        PAYMENT_HEADER,
        payment_row(f"{prefix}1", amount="1,234.56", payee=payee),
        payment_row(f"{prefix}2", amount="100.00", acct="6222020200112233445"),
        payment_row(f"{prefix}3", amount="0.01", date="2024/3/16"),
        ["合计", *[None] * (WIDTH - 5), "1,334.57", None, None, None],
    ]


def flat(rows: list[list[object]]) -> list[list[object]]:
    """The same rows for a writer without merges: a Span's text in its first cell."""
    return [[c.text if isinstance(c, Span) else c for c in row] for row in rows]


def loaded(batch, prefix: str) -> None:
    assert batch.status == "loaded", batch.error
    assert_accounted(batch)
    assert batch.rows["pay_cert_no"].tolist() == [f"{prefix}1", f"{prefix}2", f"{prefix}3"]
    assert batch.rows["pay_amt"].tolist() == [123456, 10000, 1]
    assert batch.rows["source_row"].tolist() == [4, 5, 6]  # Excel row numbers, the title rows counted
    assert batch.rows["payee_acct_no"].iloc[1] == "6222020200112233445"
    assert [d.date().isoformat() for d in batch.rows["pay_date"]] == ["2024-03-15", "2024-03-15", "2024-03-16"]
    assert batch.control_total == 133457 == batch.parsed_total
    assert batch.units == {"pay_amt": "元"}
    assert (batch.rows_read, batch.rows_skipped) == (7, 4)
    assert batch.rejects.empty


# --- each format, read like an xlsx --------------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "meta"), [("gbk", "http-equiv"), ("gb2312", "charset"), ("utf-8", "charset")])
def test_html_table_saved_as_xls(tmp_path, encoding, meta):
    path = write_html_xls(tmp_path / "支付明细.xls", payments("H"), encoding=encoding, meta=meta)
    assert path.read_bytes().startswith(b"<html")  # what the file is: not BIFF, whatever its name says
    batch = ingest_file(path, "payments")
    loaded(batch, "H")
    assert batch.encoding == ("utf-8" if encoding == "utf-8" else "gb18030")
    assert batch.rows["agency_name"].iloc[0] == "示例县公路事务中心"


def test_html_table_in_utf8_keeps_gb18030_only_characters(tmp_path):
    path = write_html_xls(tmp_path / "p.xls", payments("H", payee=RARE), encoding="utf-8")
    batch = ingest_file(path, "payments")
    assert batch.rows["payee_acct_name"].iloc[0] == RARE


def test_html_page_whose_charset_lies_is_read_in_the_charset_of_its_bytes(tmp_path):
    # a page that says gbk but was written in UTF-8: the bytes decide (the meta tag only breaks a tie)
    path = tmp_path / "p.xls"
    path.write_bytes(
        write_html_xls(tmp_path / "x.xls", payments("H"), encoding="utf-8")
        .read_bytes()
        .replace(b"charset=utf-8", b"charset=gbk")
    )
    batch = ingest_file(path, "payments")
    loaded(batch, "H")
    assert batch.encoding == "utf-8"


def test_html_titles_outside_the_table_are_title_rows(tmp_path):
    page = (
        '<html><head><meta charset="utf-8"></head><body><h2>国库集中支付明细查询</h2><p>金额单位：万元</p>'
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in PAYMENT_HEADER) + "</tr>"
        "<tr>" + "".join(f"<td>{v}</td>" for v in payment_row("W1", amount="1.5")) + "</tr></table></body></html>"
    )
    path = tmp_path / "w.xls"
    path.write_bytes(page.encode("utf-8"))
    batch = ingest_file(path, "payments")
    assert batch.status == "loaded", batch.error
    assert batch.units == {"pay_amt": "万元"}
    assert batch.rows["pay_amt"].tolist() == [1_500_000]
    assert batch.rows["source_row"].tolist() == [4]


@pytest.mark.parametrize("name", ["payments.xls", "payments.xml"])
def test_xml_spreadsheet_2003(tmp_path, name):
    rows = payments("X")
    rows[4][1] = dt.date(2024, 3, 15)  # a DateTime cell
    rows[4][AMOUNT] = 100  # a Number cell
    path = write_spreadsheetml(tmp_path / name, rows)
    assert b"urn:schemas-microsoft-com:office:spreadsheet" in path.read_bytes()[:400]
    loaded(ingest_file(path, "payments"), "X")


def test_xml_spreadsheet_2003_blank_rows_and_sheets(tmp_path):
    """ss:Index skips a blank row (the row numbers stay Excel's) and the sheet holding the header is chosen."""
    rows = payments("X")
    rows.insert(2, [None] * WIDTH)
    path = write_spreadsheetml(tmp_path / "p.xls", {"说明": [["本表由系统导出"]], "支付明细": rows})
    batch = ingest_file(path, "payments")
    assert batch.status == "loaded", batch.error
    assert batch.sheet == "支付明细"
    assert batch.rows["source_row"].tolist() == [5, 6, 7]
    assert_accounted(batch)


AMOUNT = PAYMENT_HEADER.index("支付金额")


def test_ods(tmp_path):
    rows = payments("O")
    rows[0] = [Span(TITLE, cols=WIDTH), *[None] * (WIDTH - 1)]
    rows[4][AMOUNT] = 100.0
    path = write_ods(tmp_path / "payments.ods", rows)
    loaded(ingest_file(path, "payments"), "O")


@pytest.mark.parametrize("name", ["payments.et", "payments.ett", "payments.xls"])
def test_wps_et_is_biff(tmp_path, name):
    """WPS 表格 saves .et in the BIFF8 format of .xls; a BIFF file under the .et name is read as a workbook."""
    rows = flat(payments("E"))
    rows[4][AMOUNT] = 100.0  # a number cell
    path = write_biff(tmp_path / name, rows, merges=[(0, 0, 0, WIDTH - 1)])
    assert path.read_bytes()[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    loaded(ingest_file(path, "payments"), "E")


@pytest.mark.parametrize("name", ["payments.xls", "payments.et", "payments"])
def test_xlsx_under_another_name(tmp_path, name):
    path = write_xlsx(tmp_path / "real.xlsx", flat(payments("Z")), merges=["A1:M1"])
    loaded(ingest_file(shutil.move(path, tmp_path / name), "payments"), "Z")


def test_tab_separated_text_under_a_xls_name(tmp_path):
    path = tmp_path / "p.xls"
    path.write_bytes(csv_text(flat(payments("T")), delimiter="\t").encode("gb18030"))
    loaded(ingest_file(path, "payments"), "T")


# --- merged cells: the same grid whatever the format -----------------------------------------------------------------

BUDGET = [
    ["2024年项目预算及分季度用款计划"],
    [
        Span("预算单位编码", rows=2),
        Span("项目编码", rows=2),
        Span("项目名称", rows=2),
        Span("年初预算数", rows=2),
        Span("调整预算数", rows=2),
        Span("全年预算数", rows=2),
        Span("分季度用款计划", cols=4),
    ],
    [None, None, None, None, None, None, "一季度", "二季度", "三季度", "四季度"],
    ["990001", "P001", "农村公路安保工程", "100", "20", "120", "30", "30", "30", "30"],
    ["990001", "P002", "桥梁定期检测", "50.5", None, "50.5", "10", "10", "10", "20.5"],
    ["合计", None, None, "150.5", "20", "170.5", "40", "40", "40", "50.5"],
]
BUDGET_MERGES = ["A2:A3", "B2:B3", "C2:C3", "D2:D3", "E2:E3", "F2:F3", "G2:J2"]


def markup_rows(rows):
    """Rows as HTML and SpreadsheetML write them: a cell covered by a span from the row above is left out."""
    covered = {c for c, cell in enumerate(rows[1]) if isinstance(cell, Span) and cell.rows > 1}
    return [rows[0], rows[1], [v for c, v in enumerate(rows[2]) if c not in covered], *rows[3:]]


def budget_files(tmp_path: Path) -> dict[str, Path]:
    html_rows = markup_rows(BUDGET)
    html_rows[1] = [c for c in html_rows[1] if c is not None]
    return {
        "xlsx": write_xlsx(tmp_path / "b.xlsx", flat(BUDGET), merges=BUDGET_MERGES),
        "html": write_html_xls(tmp_path / "b_html.xls", html_rows),
        "spreadsheetml": write_spreadsheetml(tmp_path / "b_xml.xls", BUDGET),
        "ods": write_ods(tmp_path / "b.ods", BUDGET),
        "biff": write_biff(tmp_path / "b.et", flat(BUDGET), merges=[(1, 2, c, c) for c in range(6)] + [(1, 1, 6, 9)]),
    }


def grid_cells(path: Path) -> list[list[str]]:
    kind = load_spec().kinds["budget"]
    grid = read_grid(path, find_header=lambda rows: find_header(rows, kind))
    rows = grid.head(len(grid.row_numbers))
    width = max(len(r) - next((i for i, v in enumerate(reversed(r)) if v), len(r)) for r in rows)
    return [r[:width] + [""] * (width - len(r)) for r in rows]


def test_merged_cells_give_the_grid_an_xlsx_gives(tmp_path):
    """colspan/rowspan (HTML), ss:MergeAcross/ss:MergeDown (SpreadsheetML), spanned cells (ods) and BIFF merges
    all lay out like an xlsx's merged cells: the text in the top-left cell, '' in the cells covered."""
    files = budget_files(tmp_path)
    expected = grid_cells(files["xlsx"])
    assert expected[1] == ["预算单位编码", "项目编码", "项目名称", "年初预算数", "调整预算数", "全年预算数",
                           "分季度用款计划", "", "", ""]  # fmt: skip
    assert expected[2] == ["", "", "", "", "", "", "一季度", "二季度", "三季度", "四季度"]
    for name, path in files.items():
        assert grid_cells(path) == expected, name


@pytest.mark.parametrize("fmt", ["html", "spreadsheetml", "ods", "biff"])
def test_two_row_budget_header_in_every_format(tmp_path, fmt):
    batch = ingest_file(budget_files(tmp_path)[fmt], "budget")
    assert batch.status == "loaded", batch.error
    assert_accounted(batch)
    assert batch.fiscal_year == 2024
    got = batch.rows[["source_row", "pro_code", "reply_amt", "adj_amt", "cur_amt", "plan_q1", "plan_q4"]]
    assert got.to_dict("records") == [
        {"source_row": 4, "pro_code": "P001", "reply_amt": 100_000_000, "adj_amt": 20_000_000,
         "cur_amt": 120_000_000, "plan_q1": 30_000_000, "plan_q4": 30_000_000},
        {"source_row": 5, "pro_code": "P002", "reply_amt": 50_500_000, "adj_amt": 0,
         "cur_amt": 50_500_000, "plan_q1": 10_000_000, "plan_q4": 20_500_000},
    ]  # fmt: skip
    assert batch.control_total == 170_500_000 == batch.parsed_total


# --- what cannot be read: said in words ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["加密.xlsx", "加密.xls", "加密.et"])
def test_password_protected_xlsx(tmp_path, name):
    path = write_encrypted_xlsx(tmp_path / name, flat(payments("P")))
    assert sniff(path).reader == "encrypted"
    batch = ingest_file(path, "payments")
    assert batch.status == "rejected"
    assert batch.error.startswith(f"{name}: password-protected workbook (文件已加密")
    assert "\\x" not in batch.error and "Cfb" not in batch.error
    assert (batch.rows_read, batch.rows_valid) == (0, 0)


def test_password_protected_biff(tmp_path):
    path = write_biff(tmp_path / "加密.xls", flat(payments("P")), filepass=True)
    batch = ingest_file(path, "payments")
    assert batch.status == "rejected"
    assert batch.error.startswith("加密.xls: password-protected workbook (文件已加密")


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("回单.xls", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF document (PDF 文档)"),
        ("扫描.xls", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image (图片)"),
        ("归档.xls", b"PK\x05\x06" + b"\0" * 18, "an empty zip archive (空压缩包)"),
        ("损坏.xlsx", b"PK\x03\x04 truncated workbook", "a damaged or truncated zip file"),
    ],
)
def test_a_file_that_is_something_else_is_named_for_what_it_is(tmp_path, name, content, what):
    path = tmp_path / name
    path.write_bytes(content)
    batch = ingest_file(path, "payments")
    assert batch.status == "rejected"
    assert batch.error.startswith(f"{name}: not a spreadsheet export: {what}"), batch.error
    assert "\\x" not in batch.error


def test_a_zip_of_other_files(tmp_path):
    import zipfile

    path = tmp_path / "导出.xls"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("支付明细.csv", csv_text(flat(payments("Q"))))
        z.writestr("说明.txt", "见附件")
    batch = ingest_file(path, "payments")
    what = "a zip archive of 2 files (支付明细.csv, 说明.txt)"
    assert batch.error.startswith(f"导出.xls: not a spreadsheet export: {what}")
    assert "请先解压" in batch.error


def test_a_damaged_biff_file_is_named_without_a_hex_dump(tmp_path):
    path = write_biff(tmp_path / "p.xls", flat(payments("D")))
    data = bytearray(path.read_bytes())
    data[600:] = b"\xff" * (len(data) - 600)  # the sectors after the header destroyed
    path.write_bytes(bytes(data))
    batch = ingest_file(path, "payments")
    assert batch.status == "rejected"
    assert "\\x" not in batch.error
    assert batch.error.startswith("p.xls: ")


# --- end to end: every format into one warehouse ---------------------------------------------------------------------


def test_every_format_lands_in_the_warehouse_with_its_amounts(tmp_path):
    raw = tmp_path / "raw" / "payments"
    write_html_xls(raw / "网页_gbk.xls", payments("HG"), encoding="gbk")
    write_html_xls(raw / "网页_utf8.xls", payments("HU"), encoding="utf-8")
    write_spreadsheetml(raw / "xml2003.xls", payments("XM"))
    write_ods(raw / "calc.ods", [[Span(TITLE, cols=WIDTH), *[None] * (WIDTH - 1)], *payments("OD")[1:]])
    write_biff(raw / "wps.et", flat(payments("ET")), merges=[(0, 0, 0, WIDTH - 1)])
    write_encrypted_xlsx(raw / "加密.xlsx", flat(payments("PW")))
    wh = tmp_path / "w.duckdb"
    build_night(wh, dt.date(2024, 12, 31), raw_dir=tmp_path / "raw")
    with db.read_only(wh) as con:
        per_file = con.execute(
            "select source_file, count(*), sum(pay_amt) from payments group by 1 order by 1"
        ).fetchall()
        files = con.execute(
            "select file_name, status, rows_read, rows_loaded, rows_duplicate, rows_rejected, rows_skipped, error "
            "from source_files order by file_name"
        ).fetchall()
    from decimal import Decimal

    prefix = "payments/"
    assert per_file == [
        (f"{prefix}{name}", 3, Decimal("1334.57"))
        for name in sorted(["网页_gbk.xls", "网页_utf8.xls", "xml2003.xls", "calc.ods", "wps.et"])
    ]
    by_name = {f[0]: f for f in files}
    for name, status, read, loaded_, duplicate, rejected, skipped, _ in files:
        assert read == loaded_ + duplicate + rejected + skipped, name
        if name != f"{prefix}加密.xlsx":
            assert (status, read, loaded_, rejected, skipped) == ("loaded", 7, 3, 0, 4), name
    assert by_name[f"{prefix}加密.xlsx"][1] == "rejected"
    assert "password-protected" in by_name[f"{prefix}加密.xlsx"][7]
