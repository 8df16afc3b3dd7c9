"""A unit's outputs hold that unit's rows only; rows without a readable unit go to one operator report; account
numbers are masked in everything staff read (the warehouse keeps them exact). End to end: real files, a real
DuckDB file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import openpyxl
import pytest

from flows.build import build_night
from flows.config import load_settings
from flows.publish import outputs
from tests.builders import PAYMENT_HEADER, payment_row, write_csv, write_xlsx

AS_OF = dt.date(2025, 12, 31)
A, B = "110001", "220002"
A_NAME, B_NAME = "甲县交通运输局", "乙县水利局"
A_FILES = ("payments/payments_110001.xlsx", "budget/budget_110001.xlsx")
B_FILES = ("payments/payments_220002.csv", "budget/budget_220002.xlsx", "refunds/refunds_220002.xlsx")
A_ACCT_OK, A_ACCT_BAD = "6222020200112233445", "6222000011112222333"  # a loaded and a rejected row of A
B_ACCT_OK, B_ACCT_BAD = "6217000099998888777", "6217000055554444333"
LOST_ACCT = "6200111122223333444"  # a rejected row that names no unit
DOC = "示财预〔2025〕1号"


def masked(acct: str) -> str:
    return acct[:4] + "*" * (len(acct) - 8) + acct[-4:]


def budget(path: Path, code: str, name: str, lines: list[list[object]]) -> None:
    write_xlsx(
        path,
        [
            [f"{name}2025年项目预算表"],
            [f"预算单位：{name}"],
            ["项目编码", "项目名称", "预算单位编码", "年初预算数（万元）", "全年预算数（万元）", "上年结转数（万元）"],
            *lines,
        ],
    )


@pytest.fixture(scope="module")
def two_units(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("units")
    raw = base / "raw"
    a = {"agency": A, "agency_name": A_NAME, "doc": DOC, "pro": "110001250001", "pro_name": "甲公路养护"}
    b = {"agency": B, "agency_name": B_NAME, "doc": DOC, "pro": "220002250001", "pro_name": "乙水库维护"}
    write_xlsx(
        raw / "payments" / "payments_110001.xlsx",
        [
            PAYMENT_HEADER,
            payment_row("PA1", "2025-03-10", "10,000.00", acct=A_ACCT_OK, payee="甲路桥公司", **a),
            payment_row("PA2", "2025-13-45", "2,000.00", acct=A_ACCT_BAD, payee="甲路桥公司", **a),  # bad date
        ],
    )
    write_csv(
        raw / "payments" / "payments_220002.csv",
        [
            PAYMENT_HEADER,
            payment_row("PB1", "2025-04-10", "20,000.00", acct=B_ACCT_OK, payee="乙建设公司", **b),
            payment_row("PB2", "2025-04-11", "abc", acct=B_ACCT_BAD, payee="乙建设公司", **b),  # bad amount
            # neither code nor name: no unit can be read from this row
            payment_row("PX1", "2025-04-12", "300.00", acct=LOST_ACCT, payee="某公司", agency="", agency_name=""),
        ],
    )
    budget(raw / "budget" / "budget_110001.xlsx", A, A_NAME, [["110001250001", "甲公路养护", A, 10, 10, 0]])
    budget(
        raw / "budget" / "budget_220002.xlsx",
        B,
        B_NAME,
        [["220002250001", "乙水库维护", B, 20, 20, 0], ["220002250002", "乙渠道清淤", "", 5, 5, 0]],  # no code
    )
    write_xlsx(
        raw / "refunds" / "refunds_220002.xlsx",
        [
            ["退回凭证号", "原支付凭证号", "退回日期", "退回金额", "退回原因"],
            ["RB1", "PB1", "2025-05-01", "100.00", "多付"],
            ["RB2", "PB1", "不是日期", "50.00", "多付"],  # rejected; its unit is its voucher's (B)
            ["RX9", "PX999", "2025-05-02", "10.00", "原凭证不明"],  # orphan refund: a finding with no unit
        ],
    )
    wh = base / "w.duckdb"
    build_night(wh, AS_OF, raw_dir=raw)
    out = base / "out"
    exact = base / "exact"
    return {
        "warehouse": wh,
        "out": out,
        "paths": outputs.publish_outputs(wh, out, AS_OF),
        "exact": exact,
        "exact_paths": outputs.publish_outputs(wh, exact, AS_OF, mask=False),
    }


def workbook_text(path: Path) -> str:
    wb = openpyxl.load_workbook(path)
    return "\n".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row if c.value is not None)


def unit_texts(folder: Path) -> dict[Path, str]:
    """Every output of a unit folder as text: workbook cells, the paragraph, the CSV and Parquet mart copies."""
    texts = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".xlsx":
            texts[path] = workbook_text(path)
        elif path.suffix in (".md", ".csv"):
            texts[path] = path.read_text(encoding="utf-8-sig")
        elif path.suffix == ".parquet":
            with duckdb.connect() as con:
                rows = con.execute("select * from read_parquet(?)", [str(path)]).fetchall()
            texts[path] = "\n".join(" ".join(str(v) for v in row) for row in rows)
    return texts


def rejected_sheet(folder: Path, code: str) -> list[dict]:
    ws = openpyxl.load_workbook(folder / f"预算执行_{code}_2025_{AS_OF}.xlsx")["校验失败"]
    header = [c.value for c in ws[1]]
    return [dict(zip(header, [c.value for c in row], strict=True)) for row in ws.iter_rows(min_row=2)]


def test_the_warehouse_knows_each_rejected_rows_unit_and_keeps_accounts_exact(two_units):
    with duckdb.connect(str(two_units["warehouse"]), read_only=True) as con:
        rows = con.execute(
            "select source_file, source_row, agency_code, row_text from rejected_rows order by 1, 2"
        ).fetchall()
    units = {(f, r): code for f, r, code, _ in rows}
    assert units == {
        ("budget/budget_220002.xlsx", 5): B,  # no code cell: the sheet's 预算单位 title names B
        ("payments/payments_110001.xlsx", 3): A,
        ("payments/payments_220002.csv", 3): B,
        ("payments/payments_220002.csv", 4): None,
        ("refunds/refunds_220002.xlsx", 3): B,  # by its original voucher PB1
    }
    texts = " ".join(t for *_, t in rows)
    assert A_ACCT_BAD in texts and B_ACCT_BAD in texts and LOST_ACCT in texts  # exact in the warehouse


def test_a_units_outputs_hold_no_trace_of_another_unit(two_units):
    out = two_units["out"]
    for own, other, other_name, other_files, other_accts in (
        (A, B, B_NAME, B_FILES, (B_ACCT_OK, B_ACCT_BAD)),
        (B, A, A_NAME, A_FILES, (A_ACCT_OK, A_ACCT_BAD)),
    ):
        texts = unit_texts(out / f"{own}_2025")
        assert {p.suffix for p in texts} == {".xlsx", ".md", ".csv", ".parquet"}
        for path, text in texts.items():
            for trace in (other, other_name, *other_files, *other_accts, *map(masked, other_accts)):
                assert trace not in text, (path.name, trace)
            for trace in (LOST_ACCT, masked(LOST_ACCT), "PX1", "PX999", "RX9"):  # the operator's, not a unit's
                assert trace not in text, (path.name, trace)
    a_rows = rejected_sheet(out / f"{A}_2025", A)
    assert [(r["文件"], r["行号"]) for r in a_rows] == [("payments/payments_110001.xlsx", 3)]
    b_rows = rejected_sheet(out / f"{B}_2025", B)
    assert {(r["文件"], r["行号"]) for r in b_rows} == {
        ("budget/budget_220002.xlsx", 5),
        ("payments/payments_220002.csv", 3),
        ("refunds/refunds_220002.xlsx", 3),
    }
    sources = openpyxl.load_workbook(out / f"{A}_2025" / f"预算执行_{A}_2025_{AS_OF}.xlsx")["数据来源"]
    assert sorted(r[1].value for r in sources.iter_rows(min_row=2)) == sorted(A_FILES)


def test_accounts_are_masked_in_staff_outputs(two_units):
    a_text = "\n".join(unit_texts(two_units["out"] / f"{A}_2025").values())
    assert masked(A_ACCT_BAD) in a_text
    assert A_ACCT_BAD not in a_text
    (row,) = rejected_sheet(two_units["out"] / f"{A}_2025", A)
    assert f"收款人账号={masked(A_ACCT_BAD)}" in row["原始行"]


def test_the_operator_report_has_what_no_unit_owns(two_units):
    out = two_units["out"]
    report = out / "operator" / f"运维报告_{AS_OF}.xlsx"
    assert report in two_units["paths"]
    assert [p for p in out.rglob("运维报告_*")] == [report]  # one per as-of date, in no unit's folder
    wb = openpyxl.load_workbook(report)
    assert wb.sheetnames == ["校验失败（单位不明）", "异常（单位不明）", "数据来源（全部文件）"]
    text = workbook_text(report)
    assert masked(LOST_ACCT) in text and LOST_ACCT not in text
    rejected = [[c.value for c in row] for row in wb["校验失败（单位不明）"].iter_rows(min_row=2)]
    assert [(r[0], r[1]) for r in rejected] == [("payments/payments_220002.csv", 4)]
    findings = [[c.value for c in row] for row in wb["异常（单位不明）"].iter_rows(min_row=2)]
    assert [(r[2], r[5]) for r in findings] == [("refund_orphan", "PX999")]
    sources = {r[1].value: r[2].value for r in wb["数据来源（全部文件）"].iter_rows(min_row=2)}
    assert sources["payments/payments_220002.csv"] == B and sources["payments/payments_110001.xlsx"] == A


def test_mask_accounts_false_shows_them_exact(two_units, tmp_path):
    exact = two_units["exact"]
    (row,) = rejected_sheet(exact / f"{A}_2025", A)
    assert f"收款人账号={A_ACCT_BAD}" in row["原始行"]
    assert LOST_ACCT in workbook_text(exact / "operator" / f"运维报告_{AS_OF}.xlsx")
    for text in unit_texts(exact / f"{A}_2025").values():
        assert B_ACCT_BAD not in text and LOST_ACCT not in text  # exact, still the unit's rows only
    config = tmp_path / "recon.toml"
    config.write_text("[publish]\nmask_accounts = false\n", encoding="utf-8")
    assert load_settings(config).mask_accounts is False
    config.write_text("[paths]\nraw = 'raw'\n", encoding="utf-8")
    assert load_settings(config).mask_accounts is True
