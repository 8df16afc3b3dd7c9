"""Errors people hit: whole files that cannot be used and single rows that are rejected (CONTRACT.md section 1).

A file-level problem rejects the file with a message naming it and the canonical column; a row-level problem
rejects that row only, with the Excel row number (title rows counted), the column and the value as in the file.
"""

from __future__ import annotations

import os

import pytest

from flows.ingest.validate import ingest_file
from tests.builders import PAYMENT_HEADER, assert_accounted, payment_row, write_csv, write_xlsx

TITLE = [["国库集中支付明细查询"], ["单位：示例县公路事务中心"], ["金额单位：元"]]


def file_rejected(batch, check: str, column: str | None) -> None:
    assert batch.status == "rejected"
    assert batch.rows is None
    assert batch.error.startswith(f"{batch.file_name}: ")
    assert len(batch.rejects) == 1
    r = batch.rejects.iloc[0]
    assert r["check"] == check
    assert r["column"] == column
    assert r["message"] == batch.error
    assert_accounted(batch)


# --- whole files -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_missing_required_column_rejects_the_file(tmp_path, suffix):
    header = [h for h in PAYMENT_HEADER if h != "指标文号"]
    row = payment_row()
    del row[PAYMENT_HEADER.index("指标文号")]
    rows = [*TITLE, header, row, row]
    path = tmp_path / f"no_doc{suffix}"
    (write_xlsx if suffix == ".xlsx" else write_csv)(path, rows)
    batch = ingest_file(path, "payments")
    file_rejected(batch, "missing_column", "bgt_doc_no")
    assert f"no_doc{suffix}" in batch.error
    assert "bgt_doc_no" in batch.error
    assert "可接受的表头：指标文号、本级指标文号" in batch.error
    assert (batch.rows_read, batch.rows_valid) == (6, 0)


def test_two_headers_for_one_column_reject_the_file(tmp_path):
    header = [*PAYMENT_HEADER, "实际支付金额"]
    rows = [*TITLE, header, [*payment_row("PV1"), "100.00"]]
    batch = ingest_file(write_xlsx(tmp_path / "ambiguous.xlsx", rows), "payments")
    file_rejected(batch, "ambiguous_columns", "pay_amt")
    assert batch.error == (
        "ambiguous.xlsx: 表头「支付金额」和「实际支付金额」都对应 pay_amt 列，无法判断用哪一列 (ambiguous columns)"
    )


def test_empty_file(tmp_path):
    for name in ("empty.csv", "empty.xlsx"):
        (tmp_path / name).write_bytes(b"")
        batch = ingest_file(tmp_path / name, "payments")
        file_rejected(batch, "unreadable_file", None)
        assert batch.error == f"{name}: the file is empty (0 bytes) — 无法读取，不是可用的导出文件，已跳过"
        assert (batch.rows_read, batch.rows_rejected, batch.rows_skipped) == (0, 0, 0)


def test_random_bytes_named_xlsx(tmp_path):
    path = tmp_path / "corrupt.xlsx"
    path.write_bytes(os.urandom(4096))
    batch = ingest_file(path, "payments")
    file_rejected(batch, "unreadable_file", None)
    assert batch.error.startswith("corrupt.xlsx: not a readable spreadsheet")


def test_random_bytes_named_csv(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(bytes(range(256)) * 8)
    batch = ingest_file(path, "payments")
    file_rejected(batch, "unreadable_file", None)
    assert batch.error.startswith("binary.csv: ")


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        ("memo.docx", b"PK\x03\x04", "a damaged or truncated zip file"),
        ("scan.xls", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image"),  # the name says workbook, the bytes do not
    ],
)
def test_other_document_types(tmp_path, name, content, what):
    path = tmp_path / name
    path.write_bytes(content)
    batch = ingest_file(path, "payments")
    file_rejected(batch, "unreadable_file", None)
    suffix = name.rsplit(".", 1)[1]
    assert batch.error.startswith(f"{name}: not a spreadsheet export: {what}")
    assert f"(suffix '.{suffix}')" in batch.error
    assert "\\x" not in batch.error  # never a parser's hex dump


def test_a_bad_file_never_stops_the_next_one(tmp_path):
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    good = write_xlsx(tmp_path / "good.xlsx", [PAYMENT_HEADER, payment_row("PV1")])
    batches = [ingest_file(p, "payments") for p in (tmp_path / "bad.xlsx", good)]
    assert [b.status for b in batches] == ["rejected", "loaded"]
    assert batches[1].rows["pay_cert_no"].tolist() == ["PV1"]


def test_budget_without_fiscal_year_is_rejected_unless_configured(tmp_path):
    rows = [["项目预算"], ["预算单位编码", "项目编码", "项目名称", "年初预算数"], ["990001", "P001", "安保工程", 10]]
    path = write_xlsx(tmp_path / "no_year.xlsx", rows)
    batch = ingest_file(path, "budget")
    file_rejected(batch, "fiscal_year", "fiscal_year")
    configured = ingest_file(path, "budget", fiscal_year=2024)
    assert configured.status == "loaded"
    assert configured.rows["fiscal_year"].tolist() == [2024]


# --- single rows -----------------------------------------------------------------------------------------------------


def test_unparseable_date_and_amount_reject_those_rows_only(tmp_path):
    rows = [
        *TITLE,
        PAYMENT_HEADER,
        payment_row("PV1", amount="100.00"),  # Excel row 5
        payment_row("PV2", date="2024-13-45", amount="200.00"),  # row 6
        payment_row("PV3", amount="二百元"),  # row 7
        payment_row("PV4", amount="1.234"),  # row 8
        payment_row("PV5", amount="300.00"),  # row 9
    ]
    batch = ingest_file(write_xlsx(tmp_path / "bad_rows.xlsx", rows), "payments")
    assert batch.status == "loaded"
    assert batch.file_name == "bad_rows.xlsx"
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV5"]
    assert batch.rows["source_row"].tolist() == [5, 9]
    got = batch.rejects.sort_values("source_row")[["source_row", "column", "value", "check", "message"]]
    assert got.to_dict("records") == [
        {
            "source_row": 6,
            "column": "pay_date",
            "value": "2024-13-45",
            "check": "parse",
            "message": "支付日期「2024-13-45」: expected a date such as 2024-03-15, 2024/3/15, 20240315, "
            "2024年3月15日 or an Excel date",
        },
        {
            "source_row": 7,
            "column": "pay_amt",
            "value": "二百元",
            "check": "parse",
            "message": "支付金额「二百元」: expected an amount such as 1234.56, 1,234.56 or (1,234.56)",
        },
        {
            "source_row": 8,
            "column": "pay_amt",
            "value": "1.234",
            "check": "parse",
            "message": "支付金额「1.234」: more than 2 decimals in 元: money is kept to the fen",
        },
    ]
    # the whole row is kept for the report
    row_text = batch.rejects.set_index("source_row").loc[7, "row_text"]
    assert row_text.startswith("支付凭证号=PV3 | 支付日期=2024-03-15 |")
    assert (batch.rows_read, batch.rows_valid, batch.rows_rejected, batch.rows_skipped) == (9, 2, 3, 4)


def test_unparseable_cells_in_csv_keep_row_numbers(tmp_path):
    rows = [PAYMENT_HEADER, payment_row("PV1"), payment_row("PV2", date="2024/02/30"), payment_row("PV3")]
    batch = ingest_file(write_csv(tmp_path / "bad.csv", rows, encoding="gb18030"), "payments")
    assert batch.rows["source_row"].tolist() == [2, 4]
    got = batch.rejects[["source_row", "column", "value", "check"]].to_dict("records")
    assert got == [{"source_row": 3, "column": "pay_date", "value": "2024/02/30", "check": "parse"}]
    assert_accounted(batch)


def test_required_cell_left_empty_is_rejected(tmp_path):
    rows = [PAYMENT_HEADER, payment_row("PV1"), payment_row("PV2", pro=""), payment_row("PV3", amount="")]
    batch = ingest_file(write_xlsx(tmp_path / "empty_cells.xlsx", rows), "payments")
    assert batch.rows["pay_cert_no"].tolist() == ["PV1"]
    got = batch.rejects.sort_values("source_row")[["source_row", "column"]].to_dict("records")
    assert got == [{"source_row": 3, "column": "pro_code"}, {"source_row": 4, "column": "pay_amt"}]
    assert_accounted(batch)


def budget_rows(cur: object) -> list[list]:
    return [
        ["2024年项目预算及分季度用款计划"],
        ["预算单位编码", "项目编码", "项目名称", "年初预算数", "调整预算数", "全年预算数"],
        ["990001", "P001", "农村公路安保工程", 100, 20, cur],  # Excel row 3
        ["990001", "P002", "桥梁定期检测", 10, 0, 10],
    ]


def test_budget_row_whose_total_disagrees_is_rejected_with_the_numbers(tmp_path):
    batch = ingest_file(write_xlsx(tmp_path / "budget.xlsx", budget_rows(125)), "budget")
    assert batch.status == "loaded"
    assert batch.rows["pro_code"].tolist() == ["P002"]
    assert (batch.rows_read, batch.rows_valid, batch.rows_rejected, batch.rows_skipped) == (4, 1, 1, 2)
    on_cur = batch.rejects[batch.rejects["column"] == "cur_amt"]
    assert len(on_cur) == 1
    r = on_cur.iloc[0]
    assert (r["source_row"], r["value"], r["check"]) == (3, "125", "cur_equals_reply_plus_adj")
    assert r["message"] == (
        "全年预算数「125」: 全年预算数 1,250,000.00 ≠ 年初预算数 1,000,000.00 + 调整预算数 200,000.00"
        " = 1,200,000.00 (yuan)"
    )
    assert_accounted(batch)


def test_budget_total_disagreement_is_one_entry_on_cur_amt(tmp_path):
    batch = ingest_file(write_xlsx(tmp_path / "budget.xlsx", budget_rows(125)), "budget")
    got = batch.rejects[["source_row", "column", "value", "check"]].to_dict("records")
    assert got == [{"source_row": 3, "column": "cur_amt", "value": "125", "check": "cur_equals_reply_plus_adj"}]


def test_negative_payment_without_original_voucher_is_rejected(tmp_path):
    rows = [
        *TITLE,
        PAYMENT_HEADER,
        payment_row("PV1", amount="100.00"),  # row 5
        payment_row("PV2", amount="-50.00"),  # row 6: a refund that names no voucher
        payment_row("PV3", amount="(30.00)", original="PV1"),  # row 7: an inline refund of PV1
    ]
    batch = ingest_file(write_xlsx(tmp_path / "negative.xlsx", rows), "payments")
    assert batch.status == "loaded"
    assert batch.rows["pay_cert_no"].tolist() == ["PV1", "PV3"]
    assert batch.rows["pay_amt"].tolist() == [10000, -3000]
    assert batch.rows["ori_pay_cert_no"].isna().tolist() == [True, False]
    assert batch.rows["ori_pay_cert_no"].iloc[1] == "PV1"
    on_amount = batch.rejects[batch.rejects["column"] == "pay_amt"]
    assert on_amount[["source_row", "value", "check"]].to_dict("records") == [
        {"source_row": 6, "value": "-50.00", "check": "negative_needs_original"}
    ]
    assert on_amount.iloc[0]["message"] == (
        "支付金额「-50.00」: a negative amount is a refund and must name 原支付凭证号 (the original voucher)"
    )
    assert set(batch.rejects["source_row"]) == {6}
    assert (batch.rows_read, batch.rows_valid, batch.rows_rejected, batch.rows_skipped) == (7, 2, 1, 4)


def test_negative_payment_without_original_is_one_entry_on_pay_amt(tmp_path):
    rows = [PAYMENT_HEADER, payment_row("PV1"), payment_row("PV2", amount="-50.00")]
    batch = ingest_file(write_xlsx(tmp_path / "negative.xlsx", rows), "payments")
    got = batch.rejects[["source_row", "column", "value", "check"]].to_dict("records")
    assert got == [{"source_row": 3, "column": "pay_amt", "value": "-50.00", "check": "negative_needs_original"}]
