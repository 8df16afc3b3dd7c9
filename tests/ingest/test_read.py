"""Reading real exports: encodings, delimiters, title rows, header detection, two-row headers, totals, pages, notes,
units and long text (CONTRACT.md section 1). Every test writes a real file to tmp_path and ingests it."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.ingest.validate import ingest_file
from tests.builders import (
    PAYMENT_HEADER,
    assert_accounted,
    csv_text,
    payment_row,
    write_csv,
    write_lines,
    write_xlsx,
)

WIDTH = len(PAYMENT_HEADER)
AMOUNT_AT = PAYMENT_HEADER.index("支付金额")
RARE_PAYEE = "示例𠀀䶮建材公司"  # 𠀀 (U+20000) and 䶮 (U+4DAE) exist in GB18030 but not in GBK


def pad(row: list) -> list:
    """A row as Excel saves it to CSV: as wide as the table (trailing empty fields)."""
    return list(row) + [None] * (WIDTH - len(row))


def totals(amount: object, word: str = "合计") -> list:
    row: list = [word] + [None] * (WIDTH - 1)
    row[AMOUNT_AT] = amount
    return row


def loaded(batch) -> None:
    assert batch.status == "loaded", batch.error
    assert_accounted(batch)


# --- encodings and delimiters ----------------------------------------------------------------------------------------

ENCODED = [
    ("utf8.csv", "utf-8", ",", "utf-8"),
    ("utf8bom.csv", "utf-8-sig", ",", "utf-8 (BOM)"),
    ("gb18030.csv", "gb18030", ",", "gb18030"),
    ("unicode_text.txt", "utf-16", "\t", "utf-16"),
    ("semicolon.csv", "utf-8", ";", "utf-8"),
]


@pytest.mark.parametrize(("name", "encoding", "delimiter", "reported"), ENCODED)
def test_text_export_encodings_and_delimiters(tmp_path, name, encoding, delimiter, reported):
    rows = [PAYMENT_HEADER, payment_row("PV1", amount="1,234.56", payee=RARE_PAYEE), payment_row("PV2")]
    path = write_csv(tmp_path / name, rows, encoding=encoding, delimiter=delimiter)
    batch = ingest_file(path, "payments")
    loaded(batch)
    assert batch.encoding == reported
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV2"]
    assert batch.rows["payee_acct_name"].tolist() == [RARE_PAYEE, "示例路桥工程有限公司"]
    assert batch.rows["agency_name"].tolist() == ["示例县公路事务中心"] * 2
    assert batch.rows["pay_amt"].tolist() == [123456, 10000]
    assert batch.rows["source_row"].tolist() == [2, 3]
    assert batch.rejects.empty


def test_gb18030_file_really_is_not_utf8_or_gbk(tmp_path):
    # the precondition of the GB18030 case above: the file could be neither UTF-8 nor GBK
    path = write_csv(tmp_path / "gb.csv", [PAYMENT_HEADER, payment_row(payee=RARE_PAYEE)], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    with pytest.raises(UnicodeEncodeError):
        RARE_PAYEE.encode("gbk")


def test_semicolon_delimiter_with_unquoted_thousands_separator(tmp_path):
    header = ";".join(PAYMENT_HEADER)
    row = ";".join(str(v) for v in payment_row("PV1", amount="1,234,567.89"))
    batch = ingest_file(write_lines(tmp_path / "semi.csv", [header, row]), "payments")
    loaded(batch)
    assert batch.rows["pay_amt"].tolist() == [123456789]


# --- title rows and header detection ---------------------------------------------------------------------------------

TITLE = [["国库集中支付明细查询"], ["单位：示例县公路事务中心"], ["查询期间：2024-01-01至2024-03-31"], ["金额单位：元"]]


def test_title_rows_above_header_xlsx(tmp_path):
    rows = [*TITLE, PAYMENT_HEADER, payment_row("PV1"), payment_row("PV2")]
    batch = ingest_file(write_xlsx(tmp_path / "titled.xlsx", rows), "payments")
    loaded(batch)
    assert batch.rows["source_row"].tolist() == [6, 7]  # Excel row numbers, title rows counted
    assert (batch.rows_read, batch.rows_skipped, batch.rows_valid) == (7, 5, 2)
    assert batch.units == {"pay_amt": "元"}
    assert batch.notes == []  # the unit came from the marker, nothing assumed


def test_title_rows_above_header_csv_padded_as_excel_saves_them(tmp_path):
    rows = [*(pad(r) for r in TITLE), PAYMENT_HEADER, payment_row("PV1"), payment_row("PV2")]
    batch = ingest_file(write_csv(tmp_path / "titled.csv", rows, encoding="gb18030"), "payments")
    loaded(batch)
    assert batch.rows["source_row"].tolist() == [6, 7]
    assert (batch.rows_read, batch.rows_skipped, batch.rows_valid) == (7, 5, 2)
    assert batch.rejects.empty


def test_title_rows_above_header_csv_one_field_each(tmp_path):
    # the usual shape of a system CSV export: each title line is a single field
    rows = [["国库集中支付明细查询"], ["单位：万元"], ["查询期间：2024-01-01至2024-03-31"], PAYMENT_HEADER]
    rows += [payment_row("PV1", amount="1.5")]
    batch = ingest_file(write_csv(tmp_path / "titled_short.csv", rows), "payments")
    loaded(batch)
    assert batch.rejects.empty
    assert (batch.rows_read, batch.rows_skipped, batch.rows_valid) == (5, 4, 1)
    assert batch.units == {"pay_amt": "万元"}
    assert batch.rows["pay_amt"].tolist() == [1500000]  # 1.5 万元, not 1.50 元


def test_header_found_by_content_any_order_aliases_spaces_and_unit_suffix(tmp_path):
    header = [
        "支付金额（元）",
        "收款人账号",
        " 收款人 ",  # alias of payee_acct_name, next to 收款人账号: never a substring match
        "凭证号",
        "原支付凭证号",  # 凭证号 ≠ 原支付凭证号
        "付款 日期",
        "单位编码",
        "预算项目编码",
        "本级指标文号",
        "备用列",  # an extra column: kept, never an error
    ]
    row = ["1,000.50", "6228480099990000001", "某公司", "PV9", "", "2024年3月15日", "990001", "P001", "文1", "x"]
    batch = ingest_file(write_xlsx(tmp_path / "aliases.xlsx", [["明细"], header, row]), "payments")
    loaded(batch)
    r = batch.rows.iloc[0]
    assert r["pay_cert_no"] == "PV9"
    assert r["pay_date"].date() == dt.date(2024, 3, 15)
    assert r["agency_code"] == "990001"
    assert r["pro_code"] == "P001"
    assert r["bgt_doc_no"] == "文1"
    assert r["payee_acct_name"] == "某公司"
    assert r["payee_acct_no"] == "6228480099990000001"
    assert r["pay_amt"] == 100050
    assert batch.units == {"pay_amt": "元"}  # from the header's （元）
    assert batch.extras.to_dict("records") == [{"source_row": 3, "header": "备用列", "value": "x"}]


def test_header_with_full_width_brackets_unit_wan_yuan(tmp_path):
    header = [h if h != "支付金额" else "支付金额（万元）" for h in PAYMENT_HEADER]
    batch = ingest_file(write_xlsx(tmp_path / "wan.xlsx", [header, payment_row(amount="2.5")]), "payments")
    loaded(batch)
    assert batch.units == {"pay_amt": "万元"}
    assert batch.rows["pay_amt"].tolist() == [2500000]


# --- two-row merged header (budget) ----------------------------------------------------------------------------------


def budget_two_row_header() -> tuple[list[list], list[str]]:
    rows = [
        ["2024年项目预算及分季度用款计划"],
        ["预算单位编码", "项目编码", "项目名称", "年初预算数", "调整预算数", "全年预算数", "分季度用款计划"],
        [None, None, None, None, None, None, "一季度", "二季度", "三季度", "四季度"],
        ["990001", "P001", "农村公路安保工程", 100, 20, 120, 30, 30, 30, 30],
        ["990001", "P002", "桥梁定期检测", 50.5, None, 50.5, 10, 10, 10, 20.5],
        ["合计", None, None, 150.5, 20, 170.5, 40, 40, 40, 50.5],
    ]
    merges = ["A2:A3", "B2:B3", "C2:C3", "D2:D3", "E2:E3", "F2:F3", "G2:J2"]
    return rows, merges


def test_budget_two_row_merged_header(tmp_path):
    rows, merges = budget_two_row_header()
    batch = ingest_file(write_xlsx(tmp_path / "budget.xlsx", rows, merges=merges), "budget")
    loaded(batch)
    assert batch.fiscal_year == 2024
    assert (batch.rows_read, batch.rows_skipped, batch.rows_valid) == (6, 4, 2)
    got = batch.rows[["source_row", "pro_code", "reply_amt", "adj_amt", "cur_amt", "plan_q1", "plan_q4"]]
    assert got.to_dict("records") == [
        {
            "source_row": 4,
            "pro_code": "P001",
            "reply_amt": 100_000_000,
            "adj_amt": 20_000_000,
            "cur_amt": 120_000_000,
            "plan_q1": 30_000_000,
            "plan_q4": 30_000_000,
        },
        {
            "source_row": 5,
            "pro_code": "P002",
            "reply_amt": 50_500_000,
            "adj_amt": 0,  # derived: cur - reply
            "cur_amt": 50_500_000,
            "plan_q1": 10_000_000,
            "plan_q4": 20_500_000,
        },
    ]
    assert batch.control_total == 170_500_000  # 合计's 全年预算数, in fen
    assert batch.parsed_total == 170_500_000


def test_budget_two_row_header_in_csv(tmp_path):
    rows, _ = budget_two_row_header()
    batch = ingest_file(write_csv(tmp_path / "budget.csv", [r + [None] * (10 - len(r)) for r in rows]), "budget")
    loaded(batch)
    assert batch.rows["plan_q2"].tolist() == [30_000_000, 10_000_000]
    assert batch.control_total == 170_500_000


# --- totals, pages, notes --------------------------------------------------------------------------------------------


def test_totals_row_is_the_control_total(tmp_path):
    rows = [*TITLE, PAYMENT_HEADER, payment_row("PV1", amount="1,000.00"), payment_row("PV2", amount="234.56")]
    rows.append(totals("1,234.56"))
    batch = ingest_file(write_xlsx(tmp_path / "totals.xlsx", rows), "payments")
    loaded(batch)
    assert batch.rows_valid == 2
    assert batch.rows_skipped == 6  # 4 title + header + 合计
    assert batch.control_total == 123456
    assert batch.parsed_total == 123456


def test_totals_row_mismatch_is_recorded_not_fatal(tmp_path):
    rows = [PAYMENT_HEADER, payment_row("PV1", amount="1,000.00"), payment_row("PV2", amount="234.56")]
    rows.append(totals("1,300.00", word="总计"))
    batch = ingest_file(write_xlsx(tmp_path / "mismatch.xlsx", rows), "payments")
    loaded(batch)
    assert batch.rows_valid == 2
    assert (batch.control_total, batch.parsed_total) == (130000, 123456)


def test_totals_row_counts_voided_and_rejected_rows_too(tmp_path):
    # the control total is compared with every parsed data row, voided included
    rows = [
        PAYMENT_HEADER,
        payment_row("PV1", amount="100.00"),
        payment_row("PV2", amount="50.00", status="已作废"),
        payment_row("PV3", date="2025-02-30", amount="25.00"),
        totals("175.00"),
    ]
    batch = ingest_file(write_xlsx(tmp_path / "voided.xlsx", rows), "payments")
    loaded(batch)
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV2"]
    assert (batch.control_total, batch.parsed_total) == (17500, 17500)


def test_totals_row_in_csv_padded(tmp_path):
    rows = [PAYMENT_HEADER, payment_row("PV1", amount="1,000.00"), totals("1,000.00")]
    batch = ingest_file(write_csv(tmp_path / "totals.csv", rows), "payments")
    loaded(batch)
    assert (batch.control_total, batch.rows_skipped) == (100000, 2)


def test_totals_row_in_csv_without_trailing_fields(tmp_path):
    header = ",".join(PAYMENT_HEADER)
    data = ",".join(str(v) for v in payment_row("PV1", amount="1000.00"))
    short_total = "合计" + "," * AMOUNT_AT + "1000.00"
    batch = ingest_file(write_lines(tmp_path / "short_total.csv", [header, data, short_total]), "payments")
    loaded(batch)
    assert batch.rejects.empty
    assert batch.control_total == 100000


def test_paginated_export_repeated_headers_and_page_subtotals_skipped(tmp_path):
    rows = [
        ["国库集中支付明细查询"],
        PAYMENT_HEADER,
        payment_row("PV1", amount="100.00"),
        payment_row("PV2", amount="100.00"),
        totals("200.00", word="小计"),
        [],
        PAYMENT_HEADER,
        payment_row("PV3", amount="100.00"),
        totals("100.00", word="本页小计"),
        totals("300.00"),
        ["注：本表数据来源于预算管理一体化系统"],
        ["制表人：张三", None, "审核人：李四"],
    ]
    batch = ingest_file(write_xlsx(tmp_path / "pages.xlsx", rows), "payments")
    loaded(batch)
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV2", "PV3"]
    assert batch.rows["source_row"].tolist() == [3, 4, 8]
    assert (batch.rows_read, batch.rows_skipped, batch.rows_rejected) == (12, 9, 0)
    assert batch.control_total == 30000  # the 合计, never a 小计
    assert batch.parsed_total == 30000


def test_paginated_csv_export(tmp_path):
    rows = [
        PAYMENT_HEADER,
        payment_row("PV1"),
        totals("100.00", word="小计"),
        PAYMENT_HEADER,
        payment_row("PV2"),
        totals("100.00", word="小计"),
        totals("200.00"),
        pad(["说明：单位为元"]),
    ]
    batch = ingest_file(write_csv(tmp_path / "pages.csv", rows, encoding="utf-8-sig"), "payments")
    loaded(batch)
    assert batch.rows["source_row"].tolist() == [2, 5]
    assert (batch.rows_read, batch.rows_skipped, batch.control_total) == (8, 6, 20000)
    assert batch.rejects.empty


# --- units -----------------------------------------------------------------------------------------------------------


def test_wan_yuan_marker_in_title(tmp_path):
    rows = [["国库集中支付明细查询"], ["单位：万元"], PAYMENT_HEADER, payment_row(amount="1.5"), totals("1.5")]
    batch = ingest_file(write_xlsx(tmp_path / "wan.xlsx", rows), "payments")
    loaded(batch)
    assert batch.units == {"pay_amt": "万元"}
    assert batch.rows["pay_amt"].tolist() == [1500000]
    assert batch.control_total == 1500000
    assert batch.notes == []


def test_unit_line_naming_the_agency_is_not_a_unit(tmp_path):
    rows = [["国库集中支付明细查询"], ["单位：示例县公路事务中心"], PAYMENT_HEADER, payment_row(amount="1.5")]
    batch = ingest_file(write_xlsx(tmp_path / "agency.xlsx", rows), "payments")
    loaded(batch)
    assert batch.units == {"pay_amt": "元"}
    assert batch.rows["pay_amt"].tolist() == [150]
    assert batch.notes == ["no unit marker for pay_amt: assumed 元"]


def test_agency_and_unit_on_one_title_line(tmp_path):
    rows = [["预算单位：示例县公路事务中心    金额单位：万元"], PAYMENT_HEADER, payment_row(amount="1.5")]
    batch = ingest_file(write_xlsx(tmp_path / "both.xlsx", rows), "payments")
    loaded(batch)
    assert batch.units == {"pay_amt": "万元"}
    assert batch.rows["pay_amt"].tolist() == [1500000]


def test_budget_defaults_to_wan_yuan_without_marker(tmp_path):
    rows = [
        ["2024年项目预算"],
        ["单位：示例县公路事务中心"],  # an agency, not a unit
        ["预算单位编码", "项目编码", "项目名称", "年初预算数"],
        ["990001", "P001", "安保工程", "12.345678"],
    ]
    batch = ingest_file(write_xlsx(tmp_path / "budget.xlsx", rows), "budget")
    loaded(batch)
    assert batch.units == {"reply_amt": "万元"}
    assert batch.notes == ["no unit marker for reply_amt: assumed 万元"]
    assert batch.rows["reply_amt"].tolist() == [12345678]  # 12.345678 万元 = 123,456.78 元
    assert batch.rows["cur_amt"].tolist() == [12345678]


def test_budget_with_yuan_marker(tmp_path):
    rows = [
        ["2024年项目预算"],
        ["金额单位：元"],
        ["预算单位编码", "项目编码", "项目名称", "年初预算数"],
        ["990001", "P001", "安保工程", "123,456.78"],
    ]
    batch = ingest_file(write_xlsx(tmp_path / "budget_yuan.xlsx", rows), "budget")
    loaded(batch)
    assert batch.units == {"reply_amt": "元"}
    assert batch.rows["reply_amt"].tolist() == [12345678]


def test_payments_default_to_yuan_without_marker(tmp_path):
    batch = ingest_file(write_csv(tmp_path / "p.csv", [PAYMENT_HEADER, payment_row(amount="1.5")]), "payments")
    loaded(batch)
    assert batch.units == {"pay_amt": "元"}
    assert batch.notes == ["no unit marker for pay_amt: assumed 元"]
    assert batch.rows["pay_amt"].tolist() == [150]


# --- long text, odd CSV rows -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "encoding", "delimiter"), [("long.csv", "utf-8", ","), ("long.txt", "utf-16", "\t")])
def test_very_long_text_field_survives(tmp_path, name, encoding, delimiter):
    long = "长" * 200_000
    rows = [PAYMENT_HEADER, payment_row("PV1", use=long), payment_row("PV2")]
    batch = ingest_file(write_csv(tmp_path / name, rows, encoding=encoding, delimiter=delimiter), "payments")
    loaded(batch)
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV2"]
    assert batch.rows["use_des"].iloc[0] == long


def test_long_text_field_in_xlsx(tmp_path):
    long = "长" * 32_000  # near Excel's 32,767-character cell limit
    batch = ingest_file(write_xlsx(tmp_path / "long.xlsx", [PAYMENT_HEADER, payment_row(use=long)]), "payments")
    loaded(batch)
    assert batch.rows["use_des"].iloc[0] == long


def test_csv_unquoted_comma_in_amount_rejects_that_row_only(tmp_path):
    header = ",".join(PAYMENT_HEADER)
    good1 = ",".join(str(v) for v in payment_row("PV1", amount="100.00"))
    shifted = ",".join(str(v) for v in payment_row("PV2", amount="1,234.56"))  # 1,234.56 without quotes
    good2 = ",".join(str(v) for v in payment_row("PV3", amount="200.00"))
    batch = ingest_file(write_lines(tmp_path / "shifted.csv", [header, good1, shifted, good2]), "payments")
    loaded(batch)
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV3"]
    assert batch.rows["source_row"].tolist() == [2, 4]
    assert (batch.rows_read, batch.rows_valid, batch.rows_rejected, batch.rows_skipped) == (4, 2, 1, 1)
    reject = batch.rejects.iloc[0]
    assert (reject["source_row"], reject["check"]) == (3, "field_count")
    assert reject["value"] == shifted
    assert "14 fields but the header has 13" in reject["message"]


def test_legacy_xls_export_is_read(tmp_path):
    """Old treasury clients still export .xls (BIFF8); python-calamine reads it like xlsx."""
    import datetime as dt

    import xlwt

    from flows.ingest.validate import ingest_file

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("支付明细")
    rows = [
        ["国库集中支付明细查询"],
        ["金额单位：元"],
        ["支付凭证号", "支付日期", "预算单位编码", "项目编码", "指标文号", "收款人全称", "收款人账号", "支付金额"],
        ["PV1", dt.date(2025, 3, 5), "990001", "P1", "示财预〔2025〕3号", "示例公司", "6222020200112233445", 1234.56],
        ["PV2", "2025/3/6", "990001", "P1", "示财预〔2025〕3号", "示例公司", "6222020200112233446", "2,000.00"],
        ["合计", "", "", "", "", "", "", 3234.56],
    ]
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value, date_style if isinstance(value, dt.date) else xlwt.Style.default_style)
    path = tmp_path / "payments.xls"
    book.save(str(path))
    batch = ingest_file(path, "payments")
    assert batch.status == "loaded", batch.error
    assert batch.rows["pay_amt"].tolist() == [123456, 200000]
    assert batch.rows["payee_acct_no"].tolist() == ["6222020200112233445", "6222020200112233446"]
    assert str(batch.rows["pay_date"].iloc[0].date()) == "2025-03-05"
    assert batch.control_total == 323456 == batch.parsed_total
    assert (batch.rows_read, batch.rows_skipped) == (6, 4)


def test_grid_from_ragged_rows_with_typed_cells():
    from flows.ingest.read import _grid_from_rows

    rows = [["标题"], ["a", 1.0, dt.datetime(2025, 3, 15)], ["b", 0.30000000000000004, None, True]]
    grid = _grid_from_rows(rows, sheet="s")
    assert [c.to_pylist() for c in grid.columns] == [
        ["标题", "a", "b"],
        ["", "1", "0.3"],
        ["", "2025-03-15", ""],
        ["", "", "TRUE"],
    ]
    assert grid.rows_total == 3


# --- one bad byte loses one row, not the file (issue 11 item 2) -----------------------------------------------------

MIB = 1 << 20


def gbk_export_with_bad_rows(path, n: int, bad: dict[int, bytes]) -> tuple[list[bytes], dict[int, int]]:
    """A GB18030 CSV of n vouchers under a title and the header; the data row i in ``bad`` gets those bytes in its
    用途 cell. Returns the lines and, per bad row, its Excel row number -> the byte offset where it starts."""
    lines = [line.encode("gb18030") for line in [f"国库集中支付明细查询{',' * (WIDTH - 1)}", ",".join(PAYMENT_HEADER)]]
    offsets = {}
    for i in range(n):
        row = payment_row(f"PV{i:06d}", amount=f"{i % 997}.{i % 100:02d}", use=f"第{i}笔进度款")
        line = ",".join(str(v) for v in row).encode("gb18030")
        if i in bad:
            line = line.replace("进度款".encode("gb18030"), "进度".encode("gb18030") + bad[i] + "款".encode("gb18030"))
            offsets[len(lines) + 1] = sum(len(x) + 2 for x in lines)
        lines.append(line)
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return lines, offsets


def test_gbk_csv_with_bad_bytes_early_and_past_the_first_mib_loses_only_those_rows(tmp_path):
    n = 12_000
    path = tmp_path / "支付明细.csv"
    _, offsets = gbk_export_with_bad_rows(path, n, {3: b"\xff", 10_500: b"\x80\xfe"})
    assert path.stat().st_size > 1.2 * MIB
    (early, early_at), (late, late_at) = sorted(offsets.items())
    assert early_at < 1000 and late_at > MIB  # one bad row in the head, one past what the old check decoded
    with pytest.raises(UnicodeDecodeError):  # the precondition: the file is not valid GB18030 as a whole
        path.read_bytes().decode("gb18030")
    batch = ingest_file(path, "payments")
    loaded(batch)
    assert batch.encoding == "gb18030"
    assert (batch.rows_read, batch.rows_valid, batch.rows_rejected, batch.rows_skipped) == (n + 2, n - 2, 2, 2)
    assert batch.rows["pay_amt"].sum() == sum((i % 997) * 100 + i % 100 for i in range(n) if i not in (3, 10_500))
    assert "PV000004" in set(batch.rows["pay_cert_no"]) and "PV000003" not in set(batch.rows["pay_cert_no"])
    rejects = batch.rejects.sort_values("source_row")
    assert rejects["source_row"].tolist() == [early, late] == [6, 10_503]
    assert rejects["check"].tolist() == ["encoding", "encoding"]
    first, second = rejects.to_dict("records")
    assert first["message"].startswith(r"row 6: bytes \xff are not valid GB18030 text (shown escaped)")
    assert "第 6 行含有无法按 GB18030 解码的字节" in first["message"]
    assert r"进度\xff款" in first["row_text"] and "PV000003" in first["row_text"]
    assert r"\x80" in second["message"] and "PV010500" in second["row_text"]
    assert first["agency_code"] == "990001"  # the row's unit from its readable cells: it lands in that unit's outputs


def test_bad_row_in_the_warehouse_keeps_the_accounting(tmp_path):
    raw = tmp_path / "raw" / "payments"
    raw.mkdir(parents=True)
    gbk_export_with_bad_rows(raw / "p.csv", 50, {7: b"\xff\xff"})
    wh = tmp_path / "w.duckdb"
    from flows.build import build_night
    from flows.warehouse import db

    build_night(wh, dt.date(2024, 12, 31), raw_dir=tmp_path / "raw")
    with db.read_only(wh) as con:
        files = con.execute(
            "select status, rows_read, rows_loaded, rows_duplicate, rows_rejected, rows_skipped from source_files"
        ).fetchall()
        rejected = con.execute('select source_row, "check", row_text from rejected_rows').fetchall()
        count = con.execute("select count(*) from payments").fetchall()[0][0]
    assert files == [("loaded", 52, 49, 0, 1, 2)]
    assert count == 49
    assert [(r[0], r[1]) for r in rejected] == [(10, "encoding")]
    assert r"\xff\xff" in rejected[0][2]


def test_utf8_csv_with_one_bad_byte_stays_utf8(tmp_path):
    """The verdict comes from the bulk of the file: one stray byte in a UTF-8 export does not turn the whole file
    into GB18030 mojibake (the old whole-file UTF-8 check failed, then GB18030 read every row wrong)."""
    rows = [PAYMENT_HEADER, *(payment_row(f"PV{i}", payee="示例路桥工程有限公司") for i in range(20))]
    data = csv_text(rows).encode("utf-8").replace(b"PV7,", b"PV7\xff,")
    path = tmp_path / "u.csv"
    path.write_bytes(data)
    batch = ingest_file(path, "payments")
    loaded(batch)
    assert batch.encoding == "utf-8"
    assert batch.rows_valid == 19
    assert set(batch.rows["payee_acct_name"]) == {"示例路桥工程有限公司"}
    assert batch.rejects["source_row"].tolist() == [9]
    assert r"PV7\xff" in batch.rejects["row_text"].iloc[0]


def test_bad_byte_in_a_title_row_is_still_a_title_row(tmp_path):
    path = tmp_path / "t.csv"
    lines = [
        b"\xb9\xfa\xbf\xe2\xff\xd6\xa7\xb8\xb6",
        "金额单位：万元".encode("gbk"),
        ",".join(PAYMENT_HEADER).encode("gbk"),
    ]
    lines.append(",".join(str(v) for v in payment_row("PV1", amount="1.5")).encode("gbk"))
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    batch = ingest_file(path, "payments")
    loaded(batch)
    assert (batch.rows_read, batch.rows_valid, batch.rows_rejected, batch.rows_skipped) == (4, 1, 0, 3)
    assert batch.rows["pay_amt"].tolist() == [1_500_000]


def test_bad_byte_in_a_row_with_a_shifted_column_is_one_rejection(tmp_path):
    header = ",".join(PAYMENT_HEADER).encode("gbk")
    good = ",".join(str(v) for v in payment_row("PV1")).encode("gbk")
    bad = ",".join(str(v) for v in payment_row("PV2", amount="1,234.56")).encode("gbk") + b"\xff"
    path = tmp_path / "s.csv"
    path.write_bytes(b"\r\n".join([header, good, bad, good.replace(b"PV1", b"PV3")]) + b"\r\n")
    batch = ingest_file(path, "payments")
    loaded(batch)
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV3"]
    assert batch.rejects[["source_row", "check"]].values.tolist() == [[3, "encoding"]]


def test_html_table_with_a_bad_byte_loses_only_that_row(tmp_path):
    from tests.builders import html_table

    rows = [PAYMENT_HEADER, *(payment_row(f"PV{i}") for i in range(5))]
    data = html_table(rows, charset="gbk").encode("gbk").replace(b">PV2<", b">PV2\xff<")
    path = tmp_path / "h.xls"
    path.write_bytes(data)
    batch = ingest_file(path, "payments")
    loaded(batch)
    assert batch.encoding == "gb18030"
    assert batch.rows["pay_cert_no"].tolist() == ["PV0", "PV1", "PV3", "PV4"]
    assert batch.rejects["source_row"].tolist() == [4]
    assert r"PV2\xff" in batch.rejects["row_text"].iloc[0]
