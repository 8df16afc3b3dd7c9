"""The execution workbook of one unit (openpyxl): seven sheets and the money block of the 项目支出绩效自评表
(财预〔2020〕10号), and the operator report's workbook. Pure Python, no DuckDB: runs in the workbook workers.

Amounts are shown in 万元 rounded half-up to 0.01 from the exact yuan; rates are the marts' (*_pct, half-up from the
exact sums, shown as 34.8%); text is always written as text, never as a formula. Nothing is computed here.
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import LineChart, Reference, Series
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from flows.formatting import wan
from flows.publish.unit import QUARTER_NAMES, UnitData
from flows.warehouse import sqlgraph

EXCEL_MAX_CHARS = 32767  # Excel refuses longer cell text (the file needs "repair")
MAX_COLUMN_WIDTH = 60
FORMULA_PREFIXES = ("=", "+", "-", "@")

SEVERITY_NAMES = sqlgraph.labels("severity")  # sql/rules/labels.csv and registry.csv (ref_labels, rule_registry)
KIND_NAMES = sqlgraph.labels("kind")
SQUEEZE_RULE_NAMES = sqlgraph.labels("squeeze_rule")
SOURCE_KIND_NAMES = {"payments": "支付明细", "refunds": "退回通知", "budget": "项目预算", "unknown": "无法识别"}


STYLE_HEADER = "表头"
STYLE_WAN = "金额万元"
STYLE_RATE = "比率"
STYLE_PP = "百分点"
STYLE_SCORE = "分数"
STYLE_DATE = "日期"
STYLE_INT = "整数"


def _named_styles() -> list[NamedStyle]:
    thin = Side(style="thin", color="999999")
    return [
        NamedStyle(
            name=STYLE_HEADER,
            font=Font(bold=True),
            fill=PatternFill("solid", fgColor="DDEBF7"),
            alignment=Alignment(horizontal="center", vertical="center", wrap_text=True),
            border=Border(bottom=thin, top=thin, left=thin, right=thin),
        ),
        NamedStyle(name=STYLE_WAN, number_format="#,##0.00"),
        NamedStyle(name=STYLE_RATE, number_format="0.0%"),
        NamedStyle(name=STYLE_PP, number_format="0.00"),
        NamedStyle(name=STYLE_SCORE, number_format="0.00"),
        NamedStyle(name=STYLE_DATE, number_format="yyyy-mm-dd"),
        NamedStyle(name=STYLE_INT, number_format="0"),
    ]


@dataclass(frozen=True)
class Col:
    """A column of a sheet: header, how to get the value from a row, and how to write it.

    kind: text | wan (yuan in, 万元 out) | rate (a fraction already rounded to 0.001) | pp | score | int | date.
    """

    header: str
    get: Callable[[dict[str, Any]], Any]
    kind: str = "text"


def text_cell(ws: Worksheet, row: int, col: int, value: Any) -> None:
    """Write text as text: never a formula, whatever it starts with; illegal XML characters replaced."""
    s = str(value)
    s = ILLEGAL_CHARACTERS_RE.sub("\ufffd", s)
    if len(s) > EXCEL_MAX_CHARS:
        marker = "…（已截断）"
        s = s[: EXCEL_MAX_CHARS - len(marker)] + marker
    cell = ws.cell(row=row, column=col)
    cell.value = s
    cell.data_type = "s"  # openpyxl makes '=…' a formula; this keeps it a literal string
    if s.startswith(FORMULA_PREFIXES):
        cell.quotePrefix = True  # Excel keeps it text even when the cell is edited


KIND_STYLES = {
    "wan": STYLE_WAN,
    "rate": STYLE_RATE,
    "pp": STYLE_PP,
    "score": STYLE_SCORE,
    "int": STYLE_INT,
    "date": STYLE_DATE,
}


def put(ws: Worksheet, row: int, col: int, value: Any, kind: str) -> str:
    """Write one value as its kind says; returns the text Excel shows (for the column width)."""
    if value is None:
        return ""
    if kind == "text" or isinstance(value, str):
        text_cell(ws, row, col, value)
        return str(value)
    style = KIND_STYLES.get(kind)
    if style is None:
        raise ValueError(f"unknown column kind {kind!r}")
    if kind == "wan":
        value = wan(value)
    elif kind == "int":
        value = int(value)
    cell = ws.cell(row=row, column=col)
    cell.value = value
    cell.style = style
    return _shown(value, kind)


@functools.lru_cache(maxsize=65536)  # names, files, messages repeat across thousands of rows
def display_width(text: str) -> int:
    """Columns a text needs: CJK (wide and full-width) characters count 2."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _shown(value: Any, kind: str) -> str:
    """The text Excel shows for a value already converted for its cell (万元 for ``wan``)."""
    if kind in ("wan", "pp", "score"):
        return f"{value:,.2f}" if kind == "wan" else f"{value:.2f}"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "date":
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return str(value)


def fit_widths(ws: Worksheet, widths: dict[int, int]) -> None:
    for col, width in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 6), MAX_COLUMN_WIDTH)


def write_table(
    ws: Worksheet, cols: Sequence[Col], rows: Iterable[dict[str, Any]], *, freeze: str = "A2", filters: bool = True
) -> int:
    """Header in row 1 (named style), one row per item; frozen header, fitted widths. Returns the last row."""
    widths: dict[int, int] = {}
    for c, col in enumerate(cols, start=1):
        ws.cell(row=1, column=c, value=col.header).style = STYLE_HEADER
        widths[c] = display_width(col.header)
    r = 1
    for r, item in enumerate(rows, start=2):
        for c, col in enumerate(cols, start=1):
            shown = put(ws, r, c, col.get(item), col.kind)
            if "\n" in shown or "\r" in shown:
                width = max((display_width(line) for line in shown.splitlines()), default=0)
            else:
                width = display_width(shown)
            if width > widths[c]:
                widths[c] = width
    fit_widths(ws, widths)
    ws.freeze_panes = freeze
    if filters and r > 1:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{r}"
    return r


def _get(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row.get(key)


def _pct(key: str) -> Callable[[dict[str, Any]], Any]:
    """A rate the marts computed in percent (execution_rate_pct: 34.8) as the fraction a '0.0%' cell holds (0.348)."""
    return lambda row: None if row.get(key) is None else row[key] / 100


def sheet_unit(ws: Worksheet, data: UnitData) -> None:
    row = {**data.unit, "name": data.agency_name}
    cols = [
        Col("财政年度", _get("fiscal_year"), "int"),
        Col("截至日期", _get("as_of"), "date"),
        Col("单位编码", _get("agency_code")),
        Col("单位名称", _get("name")),
        Col("年初预算数（万元）", _get("reply_amt"), "wan"),
        Col("全年预算数（万元）", _get("cur_amt"), "wan"),
        Col("当年支出（万元）", _get("paid_current"), "wan"),
        Col("执行率", _pct("execution_rate_pct"), "rate"),
        Col("上年结转（万元）", _get("carryover_amt"), "wan"),
        Col("结转支出（万元）", _get("paid_carryover"), "wan"),
        Col("总执行率（含结转）", _pct("total_execution_rate_pct"), "rate"),
        Col("无预算支出（万元）", _get("unbudgeted_amt"), "wan"),
        Col("结转挤占（万元）", _get("squeeze_amt"), "wan"),
        Col("项目数", _get("project_count"), "int"),
    ]
    write_table(ws, cols, [row], freeze="A2", filters=False)


def sheet_projects(ws: Worksheet, data: UnitData) -> None:
    cols = [
        Col("项目编码", _get("pro_code")),
        Col("项目名称", _get("pro_name")),
        Col("年初预算数（万元）", _get("reply_amt"), "wan"),
        Col("全年预算数（万元）", _get("cur_amt"), "wan"),
        Col("当年支出（万元）", _get("paid_current"), "wan"),
        Col("执行率", _pct("execution_rate_pct"), "rate"),
        Col("当年预算余额（万元）", _get("balance_current"), "wan"),
        Col("上年结转（万元）", _get("carryover_amt"), "wan"),
        Col("结转支出（万元）", _get("paid_carryover"), "wan"),
        Col("结转余额（万元）", _get("balance_carryover"), "wan"),
        Col("总执行率（含结转）", _pct("total_execution_rate_pct"), "rate"),
        Col("结转挤占（万元）", _get("squeeze_amt"), "wan"),
        Col("挤占笔数", _get("squeeze_count"), "int"),
    ]
    write_table(ws, cols, data.projects, freeze="C2")


def sheet_quarters(ws: Worksheet, data: UnitData) -> None:
    cols = [
        Col("项目编码", _get("pro_code")),
        Col("项目名称", _get("pro_name")),
        Col("季度", lambda r: QUARTER_NAMES.get(r["quarter"], str(r["quarter"]))),
        Col("季末日期", _get("quarter_end"), "date"),
        Col("季度已结束", lambda r: "是" if r["is_complete"] else "否"),
        Col("计划（万元）", _get("plan_amt"), "wan"),
        Col("累计计划（万元）", _get("plan_cum"), "wan"),
        Col("支出（万元）", _get("paid_amt"), "wan"),
        Col("累计支出（万元）", _get("paid_cum"), "wan"),
        Col("累计计划进度", _pct("plan_cum_pct"), "rate"),
        Col("累计支出进度", _pct("paid_cum_pct"), "rate"),
        Col("差距（百分点）", _get("gap_pp"), "pp"),
    ]
    write_table(ws, cols, data.quarters, freeze="C2")
    _quarter_charts(ws, data, quarter_col=3, plan_cum_col=7, paid_cum_col=9, first_free_col=len(cols) + 2)


def _quarter_charts(
    ws: Worksheet, data: UnitData, *, quarter_col: int, plan_cum_col: int, paid_cum_col: int, first_free_col: int
) -> None:
    """One line chart per project: cumulative paid against the cumulative quarterly plan (万元), from the table."""
    blocks: list[tuple[dict[str, Any], int, int]] = []
    for i, row in enumerate(data.quarters):
        excel_row = i + 2
        if blocks and blocks[-1][0]["pro_code"] == row["pro_code"]:
            blocks[-1] = (blocks[-1][0], blocks[-1][1], excel_row)
        else:
            blocks.append((row, excel_row, excel_row))
    anchor_col = get_column_letter(first_free_col)
    for n, (row, first, last) in enumerate(blocks):
        chart = LineChart()
        chart.title = f"{row['pro_name'] or row['pro_code']}：累计支出与累计用款计划"
        chart.y_axis.title = "万元"
        chart.x_axis.title = "季度"
        chart.y_axis.number_format = "#,##0.00"
        chart.x_axis.delete = False  # openpyxl 3.1 otherwise hides the axes in Excel
        chart.y_axis.delete = False
        chart.height = 7
        chart.width = 16
        plan = Series(Reference(ws, min_col=plan_cum_col, min_row=first, max_row=last), title="累计计划")
        paid = Series(Reference(ws, min_col=paid_cum_col, min_row=first, max_row=last), title="累计支出")
        plan.graphicalProperties.line.dashStyle = "dash"
        chart.series.extend([plan, paid])
        chart.set_categories(Reference(ws, min_col=quarter_col, min_row=first, max_row=last))
        ws.add_chart(chart, f"{anchor_col}{1 + n * 15}")


def sheet_squeeze(ws: Worksheet, data: UnitData) -> None:
    cols = [
        Col("项目编码", _get("pro_code")),
        Col("项目名称", _get("pro_name")),
        Col("支付凭证号", _get("pay_cert_no")),
        Col("挤占金额（万元）", _get("amount"), "wan"),
        Col("规则", lambda r: SQUEEZE_RULE_NAMES.get(r["rule"], r["rule"])),
        Col("证据", _get("evidence")),
        Col("用途", _get("use_des")),
        Col("合同编号", _get("contract_no")),
        Col("来源文件", _get("source_file")),
        Col("行号", _get("source_row"), "int"),
    ]
    write_table(ws, cols, data.squeeze, freeze="C2")


def sheet_exceptions(ws: Worksheet, data: UnitData) -> None:
    cols = [
        Col("严重程度", lambda r: SEVERITY_NAMES.get(r["severity"], r["severity"])),
        Col("类型", lambda r: KIND_NAMES.get(r["kind"], r["kind"])),
        Col("类型代码", _get("kind")),
        Col("项目编码", _get("pro_code")),
        Col("项目名称", _get("pro_name")),
        Col("支付凭证号", _get("pay_cert_no")),
        Col("金额（万元）", _get("amount"), "wan"),
        Col("说明", _get("detail")),
        Col("规则说明", _get("message")),
        Col("来源文件", _get("source_file")),
        Col("行号", _get("source_row"), "int"),
    ]
    write_table(ws, cols, data.exceptions, freeze="A2")


def sheet_rejected(ws: Worksheet, data: UnitData) -> None:
    cols = [
        Col("文件", _get("source_file")),
        Col("行号", _get("source_row"), "int"),
        Col("列", _get("column")),
        Col("值", _get("value")),
        Col("检查", _get("check")),
        Col("说明", _get("message")),
        Col("原始行", _get("row_text")),
    ]
    write_table(ws, cols, data.rejected, freeze="A2")


def _row_check(r: dict[str, Any]) -> str:
    parts = [r.get(k) for k in ("rows_loaded", "rows_duplicate", "rows_rejected", "rows_skipped")]
    if r.get("rows_read") is None or any(p is None for p in parts):
        return ""
    return "一致" if r["rows_read"] == sum(parts) else "不一致"


def _loaded_at(r: dict[str, Any]) -> str | None:
    value = r.get("loaded_at")
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")  # Excel has no time zones: keep it as text
    return str(value)


def sheet_sources(ws: Worksheet, data: UnitData, *, with_agencies: bool = False) -> None:
    as_of = data.as_of
    cols = [
        Col("截至日期", lambda r: as_of, "date"),
        Col("文件", _get("file_name")),
        *([Col("涉及单位", lambda r: r.get("agencies") or "（无法识别）")] if with_agencies else []),
        Col("类型", lambda r: SOURCE_KIND_NAMES.get(r["kind"], r["kind"])),
        Col("状态", _get("status")),
        Col("读取行数", _get("rows_read"), "int"),
        Col("载入行数", _get("rows_loaded"), "int"),
        Col("重复行数", _get("rows_duplicate"), "int"),
        Col("拒绝行数", _get("rows_rejected"), "int"),
        Col("跳过行数", _get("rows_skipped"), "int"),
        Col("行数核对", _row_check),
        Col("合计行金额（万元）", _get("control_total"), "wan"),
        Col("明细合计（万元）", _get("parsed_total"), "wan"),
        Col("错误", _get("error")),
        Col("载入时间", _loaded_at),
        Col("SHA-256", _get("sha256")),
    ]
    write_table(ws, cols, data.sources, freeze="C2")


def sheet_self_assessment(ws: Worksheet, data: UnitData) -> None:
    """The 自评表 money block of the unit and each project, as self_assessment_funds computed it (分值 and 得分 on
    the 年度资金总额 row, "—" on the others)."""
    cols = [
        Col("层级", _get("scope_zh")),
        Col("编码", _get("scope_code")),
        Col("名称", _get("scope_name")),
        Col("项目资金", _get("funds")),
        Col("年初预算数（万元）", _get("initial_amt"), "wan"),
        Col("全年预算数（万元）", _get("budget_amt"), "wan"),
        Col("全年执行数（万元）", _get("paid_amt"), "wan"),
        Col("分值", lambda r: r["weight"] if r["is_total"] else "—", "score"),
        Col("执行率", _pct("rate_pct"), "rate"),
        Col("得分", lambda r: r["score"] if r["is_total"] else "—", "score"),
    ]
    write_table(ws, cols, data.funds, freeze="E2", filters=False)


SHEETS: list[tuple[str, Callable[..., None]]] = [
    ("总体执行", sheet_unit),
    ("项目执行", sheet_projects),
    ("季度进度", sheet_quarters),
    ("结转挤占", sheet_squeeze),
    ("异常明细", sheet_exceptions),
    ("校验失败", sheet_rejected),
    ("数据来源", sheet_sources),
]
SELF_ASSESSMENT_SHEET = "绩效自评表（资金）"


def build_workbook(data: UnitData) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    for style in _named_styles():
        wb.add_named_style(style)
    for title, fill in SHEETS:
        fill(wb.create_sheet(title), data)
    sheet_self_assessment(wb.create_sheet(SELF_ASSESSMENT_SHEET), data)
    wb.properties.creator = "treasury-recon"
    wb.properties.title = f"{data.agency_name} {data.fiscal_year}年预算执行情况（截至 {data.as_of.isoformat()}）"
    return wb


OPERATOR_SHEETS = ("校验失败（单位不明）", "异常（单位不明）", "数据来源（全部文件）")


def build_operator_workbook(data: UnitData) -> Workbook:
    """The operator report: the rejected rows whose unit cannot be read, the findings that name no unit, and every
    file with the units whose rows it carries (``data`` holds them, as of ``data.as_of``)."""
    wb = Workbook()
    wb.remove(wb.active)
    for style in _named_styles():
        wb.add_named_style(style)
    sheet_rejected(wb.create_sheet(OPERATOR_SHEETS[0]), data)
    sheet_exceptions(wb.create_sheet(OPERATOR_SHEETS[1]), data)
    sheet_sources(wb.create_sheet(OPERATOR_SHEETS[2]), data, with_agencies=True)
    wb.properties.creator = "treasury-recon"
    wb.properties.title = f"运维报告：无法归属到预算单位的数据（截至 {data.as_of.isoformat()}）"
    return wb
