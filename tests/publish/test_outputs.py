"""Publishing: the workbook, the draft paragraph and the mart copies, end to end on the hand-worked samples."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import zipfile
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import openpyxl
import pytest

from flows.build import build_night
from flows.formatting import half_up, wan
from flows.publish import outputs
from flows.publish.unit import UnitData
from flows.publish.workbook import EXCEL_MAX_CHARS, display_width, text_cell
from flows.warehouse import db, transform
from tests.conftest import write_sample_raw

DEC31 = dt.date(2025, 12, 31)
JUN30 = dt.date(2025, 6, 30)
UNIT = "990001"
P1, P2, P3 = "990001250001", "990001250002", "990001250003"
WAN_FORMAT = "#,##0.00"
RATE_FORMAT = "0.0%"


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    """The samples reconciled as of 12-31 and 06-30 and published for both dates."""
    base = tmp_path_factory.mktemp("publish")
    raw = write_sample_raw(base / "raw")
    wh = base / "w.duckdb"
    out = base / "out"
    build_night(wh, DEC31, raw_dir=raw)
    build_night(wh, JUN30, raw_dir=raw)
    paths = {d: outputs.publish_outputs(wh, out, d) for d in (DEC31, JUN30)}
    return {"warehouse": wh, "out": out, "paths": paths}


def unit_dir(published: dict) -> Path:
    return published["out"] / f"{UNIT}_2025"


def workbook(published: dict, as_of: dt.date) -> openpyxl.Workbook:
    return openpyxl.load_workbook(unit_dir(published) / f"预算执行_{UNIT}_2025_{as_of.isoformat()}.xlsx")


def header_index(ws) -> dict[str, int]:
    """Header text -> column number; '全年预算数（万元）' is also found as '全年预算数'."""
    found = {}
    for cell in ws[1]:
        if cell.value is None:
            continue
        found[cell.value] = cell.column
        found.setdefault(re.sub(r"（.*?）$", "", cell.value), cell.column)
    return found


def table(ws) -> list[dict[str, openpyxl.cell.Cell]]:
    """The sheet as rows of header -> cell (both the full header and the header without its unit)."""
    cols = header_index(ws)
    return [{h: row[c - 1] for h, c in cols.items()} for row in ws.iter_rows(min_row=2) if row[0].value is not None]


def dec(cell) -> Decimal:
    """A number read back from the workbook, as the Decimal it shows (41.7 -> 41.70 is compared by value)."""
    assert isinstance(cell.value, int | float), (cell.coordinate, cell.value)
    return Decimal(str(cell.value))


def assert_wan(cell, expected: str) -> None:
    assert dec(cell) == Decimal(expected), (cell.coordinate, cell.value, expected)
    assert cell.number_format == WAN_FORMAT


def assert_rate(cell, expected: str) -> None:
    assert dec(cell) == Decimal(expected), (cell.coordinate, cell.value, expected)
    assert cell.number_format == RATE_FORMAT


# ---------------------------------------------------------------------------------------------------------------
# Workbook contents


def test_sheets_in_order(published):
    wb = workbook(published, DEC31)
    assert wb.sheetnames == [
        "总体执行",
        "项目执行",
        "季度进度",
        "结转挤占",
        "异常明细",
        "校验失败",
        "数据来源",
        "绩效自评表（资金）",
    ]


def test_project_sheet_rates_and_amounts(published):
    rows = {r["项目编码"].value: r for r in table(workbook(published, DEC31)["项目执行"])}
    assert set(rows) == {P1, P2, P3}
    expected = {
        P1: ("120.00", "41.70", "0.348", "30.00", "12.00"),
        P2: ("40.00", "14.00", "0.350", "0.00", "0.00"),
        P3: ("18.00", "5.70", "0.317", "0.00", "0.00"),
    }
    for pro, (budget, paid, rate, carry, paid_carry) in expected.items():
        r = rows[pro]
        assert_wan(r["全年预算数"], budget)
        assert_wan(r["当年支出"], paid)
        assert_rate(r["执行率"], rate)
        assert_wan(r["上年结转"], carry)
        assert_wan(r["结转支出"], paid_carry)
    assert rows[P1]["项目名称"].value == "农村公路安保工程"
    with duckdb.connect(str(published["warehouse"]), read_only=True) as con:
        pct = dict(
            con.execute(
                "select pro_code, execution_rate_pct from execution_by_project where as_of = ?", [DEC31]
            ).fetchall()
        )
    for pro, r in rows.items():
        assert dec(r["执行率"]) * 100 == pct[pro]  # the mart's exact half-up percent
    assert_wan(rows[P2]["年初预算数"], "35.00")  # 35 + 5 adjustment = 40
    assert_wan(rows[P1]["结转挤占"], "24.00")


def test_unit_sheet(published):
    (row,) = table(workbook(published, DEC31)["总体执行"])
    assert row["单位编码"].value == UNIT
    assert row["单位名称"].value == "示例县公路事务中心"
    assert_wan(row["全年预算数"], "178.00")
    assert_wan(row["当年支出"], "61.40")
    assert_rate(row["执行率"], "0.345")
    assert_wan(row["上年结转"], "30.00")
    assert_wan(row["结转支出"], "12.00")
    assert_wan(row["无预算支出"], "0.80")
    assert row["截至日期"].value.date() == DEC31


def test_quarter_gaps_as_of_june(published):
    rows = table(workbook(published, JUN30)["季度进度"])
    gaps = {(r["项目编码"].value, r["季度"].value): r["差距"] for r in rows}
    assert len(gaps) == 12
    for pro, gap in ((P1, "15.25"), (P2, "12.50"), (P3, "18.33")):
        cell = gaps[(pro, "二季度")]
        assert dec(cell) == Decimal(gap)
        assert cell.number_format == "0.00"
        assert gaps[(pro, "三季度")].value is None  # quarter not over on 06-30
    q2 = next(r for r in rows if r["项目编码"].value == P1 and r["季度"].value == "二季度")
    assert_wan(q2["累计计划"], "60.00")
    assert_wan(q2["累计支出"], "41.70")
    assert_wan(q2["计划"], "40.00")
    assert_wan(q2["支出"], "23.70")
    assert_rate(q2["累计计划进度"], "0.500")


def test_squeeze_sheet(published):
    (row,) = table(workbook(published, DEC31)["结转挤占"])
    assert row["支付凭证号"].value == "PV2025000107"
    assert_wan(row["挤占金额"], "24.00")
    assert "2024年" in row["证据"].value
    assert row["用途"].value == "2024年度安保工程质保金"
    assert row["来源文件"].value == "payments/payments_2025_06-07.csv"
    assert row["行号"].value == 2


def test_exceptions_sheet(published):
    rows = table(workbook(published, DEC31)["异常明细"])
    by_voucher = {(r["类型代码"].value, r["支付凭证号"].value): r for r in rows}
    voided = by_voucher[("voided", "PV2025000105")]
    assert voided["严重程度"].value == "提示"
    assert voided["来源文件"].value == "payments/payments_2025_01-06.xlsx"
    assert voided["行号"].value == 8
    assert_wan(voided["金额"], "1.20")
    unbudgeted = by_voucher[("unbudgeted", "PV2025000109")]
    assert unbudgeted["严重程度"].value == "严重"
    assert_wan(unbudgeted["金额"], "0.80")
    assert unbudgeted["行号"].value == 4
    june = {(r["类型代码"].value, r["支付凭证号"].value) for r in table(workbook(published, JUN30)["异常明细"])}
    assert ("unbudgeted", "PV2025000109") not in june  # paid 07-15, after the as-of date


def test_sources_and_rejected_sheets(published):
    wb = workbook(published, DEC31)
    assert [c.value for c in wb["校验失败"][1]][:6] == ["文件", "行号", "列", "值", "检查", "说明"]
    rows = {r["文件"].value: r for r in table(wb["数据来源"])}
    assert set(rows) == {
        "budget/budget_2025.xlsx",
        "payments/payments_2025_01-06.xlsx",
        "payments/payments_2025_06-07.csv",
        "refunds/refunds_2025.xlsx",
    }
    xlsx = rows["payments/payments_2025_01-06.xlsx"]
    assert xlsx["读取行数"].value == 10
    assert xlsx["载入行数"].value + xlsx["重复行数"].value + xlsx["拒绝行数"].value + xlsx["跳过行数"].value == 10
    assert xlsx["行数核对"].value == "一致"
    assert_wan(xlsx["合计行金额"], "51.90")
    assert_wan(xlsx["明细合计"], "51.90")
    assert re.fullmatch(r"[0-9a-f]{64}", xlsx["SHA-256"].value)
    assert xlsx["截至日期"].value.date() == DEC31


def self_assessment(published: dict, as_of: dt.date = DEC31, scope: str = UNIT) -> dict[str, dict]:
    rows = table(workbook(published, as_of)["绩效自评表（资金）"])
    return {r["项目资金"].value: r for r in rows if r["编码"].value == scope}


def test_self_assessment_unit_block(published):
    block = self_assessment(published)
    assert list(block) == ["年度资金总额", "其中：当年财政拨款", "上年结转资金", "其他资金"]
    total = block["年度资金总额"]
    assert total["层级"].value == "单位"
    assert_wan(total["年初预算数"], "203.00")  # 173 (120 + 35 + 18) + 30
    assert_wan(total["全年预算数"], "208.00")  # 178 + 30
    assert_wan(total["全年执行数"], "73.40")  # 61.40 + 12.00; the unbudgeted 0.80 is not the unit's budget
    assert dec(total["分值"]) == 10
    assert_rate(total["执行率"], "0.353")
    assert dec(total["得分"]) == Decimal("3.53")  # 10 × 0.352884… half-up
    assert total["得分"].number_format == "0.00"
    current = block["其中：当年财政拨款"]
    assert_wan(current["年初预算数"], "173.00")
    assert_wan(current["全年预算数"], "178.00")
    assert_wan(current["全年执行数"], "61.40")
    assert_rate(current["执行率"], "0.345")
    carry = block["上年结转资金"]
    assert_wan(carry["年初预算数"], "30.00")
    assert_wan(carry["全年预算数"], "30.00")
    assert_wan(carry["全年执行数"], "12.00")
    other = block["其他资金"]
    assert_wan(other["全年预算数"], "0.00")
    assert other["执行率"].value is None  # 0 / 0: blank, not an error


def test_self_assessment_project_block(published):
    block = self_assessment(published, scope=P1)
    total = block["年度资金总额"]
    assert total["层级"].value == "项目"
    assert_wan(total["全年预算数"], "150.00")
    assert_wan(total["全年执行数"], "53.70")
    assert_rate(total["执行率"], "0.358")
    assert dec(total["得分"]) == Decimal("3.58")
    assert set(self_assessment(published, scope=P2)) == set(block)


def test_self_assessment_weight(published, tmp_path):
    """分值 is the reconcile step's ([publish] weight), stored in self_assessment_funds; publish shows it."""
    wh = tmp_path / "w.duckdb"
    shutil.copyfile(published["warehouse"], wh)
    with db.writer(wh) as con:
        transform.reconcile(con, DEC31, weight=Decimal("20"))
    outputs.publish_outputs(wh, tmp_path, DEC31)
    wb = openpyxl.load_workbook(tmp_path / f"{UNIT}_2025" / f"预算执行_{UNIT}_2025_{DEC31}.xlsx")
    total = next(r for r in table(wb["绩效自评表（资金）"]) if r["项目资金"].value == "年度资金总额")
    assert dec(total["分值"]) == 20
    assert dec(total["得分"]) == Decimal("7.06")  # 20 × 0.352884… = 7.0577 -> 7.06


# ---------------------------------------------------------------------------------------------------------------
# Workbook form: chart, frozen headers, styles, widths


def test_quarter_chart(published):
    path = unit_dir(published) / f"预算执行_{UNIT}_2025_{DEC31}.xlsx"
    wb = openpyxl.load_workbook(path)
    assert len(wb["季度进度"]._charts) == 3  # one per project
    with zipfile.ZipFile(path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 3
        xml = z.read(charts[0]).decode("utf-8")
    assert "<c:lineChart>" in xml or "lineChart" in xml
    assert "累计计划" in xml and "累计支出" in xml
    assert "'季度进度'!$G$2:$G$5" in xml  # cumulative plan of the first project
    assert "'季度进度'!$I$2:$I$5" in xml  # cumulative paid


def test_frozen_headers_styles_and_widths(published):
    wb = workbook(published, DEC31)
    for ws in wb:
        assert ws.freeze_panes is not None and ws.freeze_panes.endswith("2"), ws.title
        header = ws["A1"]
        assert header.style == "表头", ws.title
        assert header.font.b, ws.title
    assert "表头" in wb.named_styles
    ws = wb["项目执行"]
    # 项目名称: "养护道班运行经费" is 8 CJK characters = width 16
    assert ws.column_dimensions["B"].width >= 16
    assert ws.column_dimensions["C"].width >= display_width("年初预算数（万元）") == 18


def test_text_cell_limits():
    ws = openpyxl.Workbook().active
    text_cell(ws, 1, 1, "a\x00b")
    text_cell(ws, 1, 2, "长" * 40000)
    assert ws["A1"].value == "a\ufffdb"
    assert len(ws["B1"].value) == EXCEL_MAX_CHARS
    assert ws["B1"].value.endswith("（已截断）")


def test_display_width():
    assert display_width("abc") == 3
    assert display_width("项目名称") == 8
    assert display_width("（万元）") == 8


# ---------------------------------------------------------------------------------------------------------------
# Formula injection


def test_text_is_never_a_formula(tmp_path):
    raw = write_sample_raw(tmp_path / "raw")
    evil_name = '=HYPERLINK("http://example.invalid/x","养护道班运行经费")'
    budget = raw / "budget" / "budget_2025.xlsx"
    wb = openpyxl.load_workbook(budget)
    ws = wb.active
    for row in ws.iter_rows():
        for cell in row:
            if cell.value == "养护道班运行经费":
                cell.value = evil_name
                cell.data_type = "s"  # the export holds the text, not a formula
            elif cell.value == "桥梁定期检测":
                cell.value = "@桥梁定期检测"
    wb.save(budget)
    payments = raw / "payments" / "payments_2025_06-07.csv"
    text = payments.read_text(encoding="utf-8-sig")
    payments.write_text(text.replace(",2024年度安保工程质保金,", ",=2024年度安保工程质保金+1,"), encoding="utf-8-sig")
    wh = tmp_path / "w.duckdb"
    build_night(wh, DEC31, raw_dir=raw)
    paths = outputs.publish_outputs(wh, tmp_path / "out", DEC31)

    xlsx = next(p for p in paths if p.suffix == ".xlsx")
    wb = openpyxl.load_workbook(xlsx)
    names = {r["项目编码"].value: r["项目名称"] for r in table(wb["项目执行"])}
    for pro, expected in ((P3, evil_name), (P2, "@桥梁定期检测")):
        cell = names[pro]
        assert cell.value == expected
        assert cell.data_type == "s"
        assert cell.quotePrefix  # Excel keeps it text even when someone edits the cell
    (squeeze,) = table(wb["结转挤占"])
    assert squeeze["用途"].value == "=2024年度安保工程质保金+1"
    assert squeeze["用途"].data_type == "s"
    for r in table(wb["绩效自评表（资金）"]):
        if r["编码"].value == P3:
            assert r["名称"].value == evil_name and r["名称"].data_type == "s"
    with zipfile.ZipFile(xlsx) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in z.read(name).decode("utf-8"), name  # no formula anywhere

    # The CSV copy is for Excel too: a leading apostrophe keeps it text there. The Parquet copy is exact.
    marts = xlsx.parent / "marts"
    with (marts / f"execution_by_project_{DEC31}.csv").open(encoding="utf-8-sig", newline="") as f:
        csv_names = {r["pro_code"]: r["pro_name"] for r in csv.DictReader(f)}
    assert csv_names[P3] == "'" + evil_name
    assert csv_names[P1] == "农村公路安保工程"
    parquet = marts / f"execution_by_project_{DEC31}.parquet"
    con = duckdb.connect()
    got = dict(con.execute("select pro_code, pro_name from read_parquet(?)", [str(parquet)]).fetchall())
    assert got[P3] == evil_name


# ---------------------------------------------------------------------------------------------------------------
# Draft paragraph


def paragraph(published: dict, as_of: dt.date) -> str:
    return (unit_dir(published) / f"资金情况说明_{UNIT}_2025_{as_of.isoformat()}.md").read_text(encoding="utf-8")


def test_paragraph(published):
    text = paragraph(published, DEC31)
    assert "2025年度预算资金截至 2025-12-31 的执行情况：当年财政拨款 178.00 万元，支出 61.40 万元，执行率 34.5%" in text
    assert "含上年结转的资金总额 208.00 万元，支出 73.40 万元，总体执行率 35.3%" in text
    assert "其中上年结转资金 30.00 万元，已支出 12.00 万元" in text
    assert (
        "农村公路安保工程（990001250001）当年财政拨款 120.00 万元，支出 41.70 万元，执行率 34.8%，"
        "含上年结转的资金总额 150.00 万元，支出 53.70 万元，总体执行率 35.8%"
    ) in text
    assert "PV2025000107 24.00 万元" in text
    assert "无预算支出：0.80 万元" in text and "PV2025000109" in text


def test_paragraph_behind_plan_in_june(published):
    text = paragraph(published, JUN30)
    assert "截至二季度末" in text
    assert "累计计划 60.00 万元、累计支出 41.70 万元，落后 15.25 个百分点" in text
    assert "累计计划 20.00 万元、累计支出 15.00 万元，落后 12.50 个百分点" in text
    assert "累计计划 9.00 万元、累计支出 5.70 万元，落后 18.33 个百分点" in text
    assert "无预算支出：无" in text


def test_paragraph_numbers_equal_the_workbook(published):
    text = paragraph(published, DEC31)
    wb = workbook(published, DEC31)
    for r in table(wb["项目执行"]):
        assert (
            f"{r['项目名称'].value}（{r['项目编码'].value}）当年财政拨款 {dec(r['全年预算数']):,.2f} 万元，"
            f"支出 {dec(r['当年支出']):,.2f} 万元，执行率 {dec(r['执行率']) * 100:.1f}%"
        ) in text
    (unit,) = table(wb["总体执行"])
    assert (
        f"当年财政拨款 {dec(unit['全年预算数']):,.2f} 万元，支出 {dec(unit['当年支出']):,.2f} 万元，"
        f"执行率 {dec(unit['执行率']) * 100:.1f}%（"
    ) in text
    assert f"无预算支出：{dec(unit['无预算支出']):,.2f} 万元" in text
    total = self_assessment(published)["年度资金总额"]
    assert (
        f"含上年结转的资金总额 {dec(total['全年预算数']):,.2f} 万元，支出 {dec(total['全年执行数']):,.2f} 万元，"
        f"总体执行率 {dec(total['执行率']) * 100:.1f}%"
    ) in text


def rates_with_operands(text: str) -> list[tuple[list[str], str]]:
    """Each rate of the paragraph with the two amounts just before it in its clause (budget, then paid)."""
    found = []
    for clause in re.split(r"[；。\n]", text):
        for m in re.finditer(r"执行率 ([\d.]+)%", clause):
            found.append((re.findall(r"([\d,]+\.\d{2}) 万元", clause[: m.start()])[-2:], m.group(1)))
    return found


def test_paragraph_rates_are_the_division_of_the_numbers_beside_them(published):
    """A reader checks a rate by dividing the two amounts written next to it."""
    for as_of in (DEC31, JUN30):
        found = rates_with_operands(paragraph(published, as_of))
        assert len(found) >= 5, found  # the unit's two rates and one per project
        for operands, pct in found:
            assert len(operands) == 2, (operands, pct)
            budget, paid = (Fraction(Decimal(x.replace(",", ""))) for x in operands)
            assert Decimal(pct) == half_up(paid / budget * 100, Decimal("0.1")), (operands, pct)
    text = paragraph(published, DEC31)
    assert "当年财政拨款 178.00 万元，支出 61.40 万元，执行率 34.5%" in text
    assert "含上年结转的资金总额 208.00 万元，支出 73.40 万元，总体执行率 35.3%" in text


def test_paragraph_uses_the_configured_behind_plan_thresholds(published, tmp_path):
    """One source of thresholds (the [alerts] config): 13 / 18 names P1 (15.25) and P3 (18.33, critical), not P2."""
    from flows.config import AlertSettings

    looser = AlertSettings(behind_warning_pp=Decimal("13"), behind_critical_pp=Decimal("18"))
    outputs.publish_outputs(published["warehouse"], tmp_path, JUN30, alert_settings=looser)
    text = (tmp_path / f"{UNIT}_2025" / f"资金情况说明_{UNIT}_2025_{JUN30}.md").read_text(encoding="utf-8")
    assert "2 个项目落后计划 13 个百分点以上" in text
    assert "落后 15.25 个百分点；" in text  # warning, not critical
    assert "落后 18.33 个百分点（严重）" in text
    assert "12.50" not in text
    default = paragraph(published, JUN30)  # the AlertSettings defaults, 5 / 15
    assert "3 个项目落后计划 5 个百分点以上" in default and "落后 15.25 个百分点（严重）" in default


# ---------------------------------------------------------------------------------------------------------------
# Mart copies and the files written


def test_mart_copies(published):
    marts = unit_dir(published) / "marts"
    con = duckdb.connect(str(published["warehouse"]), read_only=True)
    try:
        for mart in outputs.MARTS:
            for as_of in (DEC31, JUN30):
                csv_path = marts / f"{mart}_{as_of}.csv"
                parquet = marts / f"{mart}_{as_of}.parquet"
                assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf"), csv_path
                with csv_path.open(encoding="utf-8-sig", newline="") as f:
                    rows = list(csv.DictReader(f))
                n = con.execute(f"select count(*) from read_parquet('{parquet}')").fetchone()[0]
                assert len(rows) == n
                assert {r["as_of"] for r in rows} <= {as_of.isoformat()}
        expected = {
            "execution_by_project": ["cur_amt", "paid_current", "carryover_amt", "paid_carryover", "squeeze_amt"],
            "execution_by_unit": ["cur_amt", "paid_current", "unbudgeted_amt"],
            "execution_by_quarter": ["plan_amt", "plan_cum", "paid_amt", "paid_cum"],
            "carryover_squeeze": ["amount"],
            "exceptions": ["amount"],
        }
        for mart, columns in expected.items():
            parquet = marts / f"{mart}_{DEC31}.parquet"
            for column in columns:
                (kind,) = con.execute(f"select distinct typeof({column}) from read_parquet('{parquet}')").fetchone()
                assert kind == "DECIMAL(18,2)", (mart, column, kind)
        rate = con.execute(
            f"select distinct typeof(execution_rate) from read_parquet('{marts}/execution_by_project_{DEC31}.parquet')"
        ).fetchone()[0]
        assert rate.startswith("DECIMAL")
        paid = con.execute(
            f"select sum(paid_current) from read_parquet('{marts}/execution_by_project_{DEC31}.parquet')"
        ).fetchone()[0]
        assert paid == Decimal("614000.00")
        unit = con.execute(
            f"select unbudgeted_amt, execution_rate_pct from read_parquet('{marts}/execution_by_unit_{DEC31}.parquet')"
        ).fetchall()
        assert unit == [(Decimal("8000.00"), Decimal("34.5"))]
        kinds = {
            r[0]: r[1]
            for r in con.execute(
                f"select pay_cert_no, kind from read_parquet('{marts}/exceptions_{DEC31}.parquet')"
                " where pay_cert_no is not null and kind in ('voided', 'unbudgeted')"
            ).fetchall()
        }
        assert kinds == {"PV2025000105": "voided", "PV2025000109": "unbudgeted"}
    finally:
        con.close()


def test_paths_written_and_no_temporary_files(published):
    for as_of, paths in published["paths"].items():
        assert len(paths) == 2 + 2 * len(outputs.MARTS) + 1  # the unit's files and the operator report
        assert all(p.is_file() for p in paths)
        assert paths[-1] == published["out"] / "operator" / f"运维报告_{as_of}.xlsx"
        names = {p.name for p in paths}
        assert f"预算执行_{UNIT}_2025_{as_of}.xlsx" in names
        assert f"资金情况说明_{UNIT}_2025_{as_of}.md" in names
    leftovers = [p for p in published["out"].rglob("*") if p.name.startswith(".") or ".tmp" in p.name]
    assert leftovers == []


def test_republish_replaces_files(published, tmp_path):
    first = outputs.publish_outputs(published["warehouse"], tmp_path, DEC31)
    second = outputs.publish_outputs(published["warehouse"], tmp_path, DEC31)
    assert first == second
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(p.name for p in second)


def test_unknown_as_of_is_an_error(published, tmp_path):
    with pytest.raises(ValueError, match="2025-03-31"):
        outputs.publish_outputs(published["warehouse"], tmp_path, dt.date(2025, 3, 31))


def test_weight_must_be_positive(published, tmp_path):
    wh = tmp_path / "w.duckdb"
    shutil.copyfile(published["warehouse"], wh)
    with pytest.raises(ValueError, match="weight"):
        with db.writer(wh) as con:
            transform.reconcile(con, DEC31, weight=Decimal("0"))


# ---------------------------------------------------------------------------------------------------------------
# Rounding: half-up from the exact value, never binary float


def test_half_up_helpers():
    assert half_up(Fraction(3525, 1000), Decimal("0.01")) == Decimal("3.53")
    assert half_up(Fraction(-3525, 1000), Decimal("0.01")) == Decimal("-3.53")
    assert half_up(Fraction(3524999, 1000000), Decimal("0.01")) == Decimal("3.52")
    assert str(half_up(Fraction(-1, 1000), Decimal("0.01"))) == "0.00"  # no "-0.00"
    assert wan(Decimal("12345.00")) == Decimal("1.23")
    assert wan(Decimal("12350.00")) == Decimal("1.24")  # 1.235 half-up
    assert round(10 * 0.3525, 2) == 3.52  # what float rounding would have shown


def test_wan_fast_path_agrees_with_exact_reference():
    """wan() rounds Decimals with quantize for speed; it must give what the Fraction reference gives, sign and
    .x5 boundaries included, for the largest DECIMAL(18,2) too."""
    import random

    rng = random.Random(7)
    values = [Decimal(rng.randrange(-(10**12), 10**12)) / 100 for _ in range(5000)]
    values += [Decimal(f"{sign}{n}50.00") for sign in ("", "-") for n in range(0, 100000, 997)]  # x.xx5 万元
    values += [Decimal("-0.49"), Decimal("-49.99"), Decimal("0.00"), Decimal("9999999999999999.99"), 12350]
    for v in values:
        expected = half_up(Fraction(v) / 10000, Decimal("0.01"))
        got = wan(v)
        assert got == expected and str(got) == str(expected), v


def write_budget(path: Path, lines: list[tuple]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "预算"
    ws.append(["示例单位2025年项目预算表"])
    ws.append(
        ["项目编码", "项目名称", "预算单位编码", "年初预算数（万元）", "全年预算数（万元）", "上年结转数（万元）"]
    )
    for line in lines:
        ws.append(list(line))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def write_payments(path: Path, rows: list[tuple]) -> None:
    header = [
        "支付凭证号",
        "支付日期",
        "预算单位编码",
        "预算单位名称",
        "项目编码",
        "指标文号",
        "收款人全称",
        "支付金额",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for cert, date, pro, doc, amount in rows:
            w.writerow([cert, date, "880001", "舍入测试单位", pro, doc, "示例公司", amount])


def test_score_rounding_at_half_boundary(tmp_path):
    """A small unit whose total execution rate is exactly 0.3525: 得分 = 10 × 0.3525 = 3.525 -> 3.53 (half-up)."""
    raw = tmp_path / "raw"
    write_budget(
        raw / "budget" / "budget.xlsx", [("A01", "甲项目", "880001", 20, 20, 5), ("A02", "乙项目", "880001", 15, 15, 0)]
    )
    write_payments(
        raw / "payments" / "payments.csv",
        [
            ("PV1", "2025-03-10", "A01", "示财预〔2025〕1号", "70,000.00"),
            ("PV2", "2025-04-10", "A01", "示财预〔2024〕9号", "18,125.00"),  # earlier-year quota: carry-over money
            ("PV3", "2025-05-10", "A02", "示财预〔2025〕1号", "52,875.00"),
        ],
    )
    wh = tmp_path / "w.duckdb"
    build_night(wh, DEC31, raw_dir=raw)
    paths = outputs.publish_outputs(wh, tmp_path / "out", DEC31)

    # by hand, in yuan, with Decimal
    budget = Decimal("200000.00") + Decimal("50000.00") + Decimal("150000.00")
    paid = Decimal("70000.00") + Decimal("18125.00") + Decimal("52875.00")
    assert paid / budget == Decimal("0.3525")
    expected = (Decimal("10") * paid / budget).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert expected == Decimal("3.53")
    a01 = (Decimal("10") * (Decimal("88125.00") / Decimal("250000.00"))).quantize(Decimal("0.01"), ROUND_HALF_UP)
    a02 = (Decimal("10") * (Decimal("52875.00") / Decimal("150000.00"))).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert (a01, a02) == (Decimal("3.53"), Decimal("3.53"))

    wb = openpyxl.load_workbook(next(p for p in paths if p.suffix == ".xlsx"))
    totals = {r["编码"].value: r for r in table(wb["绩效自评表（资金）"]) if r["项目资金"].value == "年度资金总额"}
    assert set(totals) == {"880001", "A01", "A02"}
    unit = totals["880001"]
    assert_wan(unit["全年预算数"], "40.00")
    assert_wan(unit["全年执行数"], "14.10")
    assert_rate(unit["执行率"], "0.353")  # 0.3525 half-up to 0.001
    assert dec(unit["得分"]) == expected
    assert dec(totals["A01"]["得分"]) == a01
    assert dec(totals["A02"]["得分"]) == a02
    carry = next(
        r for r in table(wb["绩效自评表（资金）"]) if r["编码"].value == "A01" and r["项目资金"].value == "上年结转资金"
    )
    assert_wan(carry["全年执行数"], "1.81")  # 18,125.00 yuan = 1.8125 万元 -> 1.81


# ---------------------------------------------------------------------------------------------------------------
# Workbooks built in worker processes


def cells(path: Path) -> dict[str, list[tuple]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: [tuple((c.value, c.number_format) for c in row) for row in ws.iter_rows()] for ws in wb}


def test_worker_processes_write_the_same_outputs(tmp_path):
    from flows.demo.generate import generate

    raw = tmp_path / "raw"
    generate(raw, payments=3000, units=4, projects_per_unit=3, seed=11)
    wh = tmp_path / "w.duckdb"
    build_night(wh, DEC31, raw_dir=raw)
    one = outputs.publish_outputs(wh, tmp_path / "one", DEC31, workers=1)
    two = outputs.publish_outputs(wh, tmp_path / "two", DEC31, workers=2)
    rel_one = [p.relative_to(tmp_path / "one") for p in one]
    assert rel_one == [p.relative_to(tmp_path / "two") for p in two]  # same files, same order (unit by unit)
    assert len({r.parts[0] for r in rel_one}) == 4 + 1  # four units and the operator report
    for rel in rel_one:
        a, b = tmp_path / "one" / rel, tmp_path / "two" / rel
        if rel.suffix == ".xlsx":
            assert cells(a) == cells(b), rel
        else:
            assert a.read_bytes() == b.read_bytes(), rel


def test_a_failing_worker_is_an_error_naming_the_cause(tmp_path):
    from flows.publish.worker import Workers

    bad = UnitData(as_of=DEC31, unit={"fiscal_year": 2025})  # no agency_code
    pool = Workers(2)
    pool.submit(bad, tmp_path, Decimal("10"))
    with pytest.raises(RuntimeError, match=r"(?s)workbook worker failed.*KeyError: .agency_code."):
        pool.results()
    assert pool.procs == []


def test_publish_workers_default():
    """Without run.publish_workers (or $RECON_PUBLISH_WORKERS: tests/test_config.py) the run chooses."""
    assert outputs.publish_workers(1) == 1  # one unit: no process to start
    assert outputs.publish_workers(1000) >= 1
