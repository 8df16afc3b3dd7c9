"""Publish: for each budget unit and fiscal year in the marts as of a date, write the outputs analysts hand on.

Into ``out_dir/<agency_code>_<fiscal_year>/``:

- ``预算执行_<agency>_<year>_<as_of>.xlsx``: the execution workbook (unit, projects, quarters with a chart, carry-over
  squeeze, exceptions, rejected rows, data sources, and the money block of the 项目支出绩效自评表 (财预〔2020〕10号));
- ``资金情况说明_<agency>_<year>_<as_of>.md``: a draft funds paragraph written from the same numbers;
- ``marts/<mart>_<as_of>.csv`` (UTF-8 with BOM) and ``.parquet``: copies of the marts for that unit, year and date.

Money stays exact: DECIMAL columns are fetched as Python ``Decimal`` (never through ``.df()``), amounts are shown in
万元 rounded half-up to 0.01 from the exact yuan sum, and rates are exact fractions rounded half-up (四舍五入) to
0.001 (shown as 34.8%). Every file is written to a temporary name in its folder and moved into place with
``os.replace``, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import LineChart, Reference, Series
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from flows import sqlgraph, warehouse
from flows.alerts import AlertSettings
from flows.formatting import fmt_wan, mask_accounts, wan
from flows.publish_worker import Workers

log = logging.getLogger("treasury_recon.publish")

WAN = Decimal("10000")
TENTH = Decimal("0.1")
ZERO = Decimal("0.00")

MARTS = ("execution_by_project", "execution_by_unit", "execution_by_quarter", "carryover_squeeze", "exceptions")

EXCEL_MAX_CHARS = 32767  # Excel refuses longer cell text (the file needs "repair")
MAX_COLUMN_WIDTH = 60
FORMULA_PREFIXES = ("=", "+", "-", "@")
CSV_UNSAFE_PREFIX = r"^[=+\-@\t\r]"  # cells Excel would evaluate when it opens the CSV

QUARTER_NAMES = {1: "一季度", 2: "二季度", 3: "三季度", 4: "四季度"}
SEVERITY_NAMES = sqlgraph.labels("severity")  # sql/rules/labels.csv and registry.csv (ref_labels, rule_registry)
SEVERITY_ORDER = {"fatal": 0, "warning": 1, "info": 2}
KIND_NAMES = sqlgraph.labels("kind")
SQUEEZE_RULE_NAMES = sqlgraph.labels("squeeze_rule")
SOURCE_KIND_NAMES = {"payments": "支付明细", "refunds": "退回通知", "budget": "项目预算", "unknown": "无法识别"}


# --------------------------------------------------------------------------------------------------------------
# Reading the marts


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@dataclass
class UnitData:
    """Everything published for one unit and fiscal year, as of one date (DECIMAL money as Decimal, yuan)."""

    as_of: dt.date
    unit: dict[str, Any]
    projects: list[dict[str, Any]] = field(default_factory=list)
    quarters: list[dict[str, Any]] = field(default_factory=list)
    squeeze: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    funds: list[dict[str, Any]] = field(default_factory=list)  # self_assessment_funds: the 自评表 money block
    behind: list[dict[str, Any]] = field(default_factory=list)  # behind_plan: projects behind their quarterly plan

    @property
    def agency_code(self) -> str:
        return self.unit["agency_code"]

    @property
    def fiscal_year(self) -> int:
        return int(self.unit["fiscal_year"])

    @property
    def agency_name(self) -> str:
        return self.unit.get("agency_name") or self.agency_code

    @property
    def reply_amt(self) -> Decimal:
        return _dec(self.unit.get("reply_amt"))

    @property
    def squeeze_amt(self) -> Decimal:
        return sum((_dec(s["amount"]) for s in self.squeeze), ZERO)


# Exceptions for a unit and year: its own, plus the file-level findings that name no unit (e.g. a totals row that
# disagrees in a file of several units) of the files that carry the unit's rows (and of no other year). A row's
# finding that names no unit (a refund of an unknown voucher) is the operator's.
UNIT_FILES = "publish_unit_files"  # temp table: (agency_code, file_name) for every file that carries a unit's rows
EXCEPTION_FILTER = (
    "as_of = ? and ((agency_code = ? and fiscal_year = ?)"
    " or (agency_code is null and source_row is null and (fiscal_year is null or fiscal_year = ?)"
    f" and source_file in (select file_name from {UNIT_FILES} where agency_code = ?)))"
)


def _exception_params(as_of: dt.date, agency_code: str, fiscal_year: int) -> list[Any]:
    return [as_of, agency_code, fiscal_year, fiscal_year, agency_code]


# Free-text fields where an account number can appear (a rejected cell, a row's text, a finding's detail): masked
# in every staff-facing output unless the config says otherwise ([publish] mask_accounts = false).
MASKED_FIELDS = frozenset({"value", "message", "row_text", "detail", "evidence", "use_des", "error"})
MASK_FUNCTION = "recon_mask_accounts"  # mask_accounts as a DuckDB function, for the mart copies


def masked(rows: list[dict[str, Any]], mask: bool = True) -> list[dict[str, Any]]:
    """The rows with account numbers masked in their free-text fields (``mask_accounts``); as they are if not mask."""
    if not mask:
        return rows
    return [
        {k: mask_accounts(v) if k in MASKED_FIELDS and isinstance(v, str) else v for k, v in row.items()}
        for row in rows
    ]


@dataclass(frozen=True)
class Shared:
    """Read once per publish: rejected rows and data sources by unit, and what belongs to no unit (the operator's).

    Rows and files are a unit's only when they carry its rows; nothing of one unit is ever in another's outputs."""

    rejected: dict[str, list[dict[str, Any]]]  # agency_code -> its rejected rows
    sources: dict[str, list[dict[str, Any]]]  # agency_code -> the files that carry its rows
    unassigned: list[dict[str, Any]]  # rejected rows whose unit cannot be read
    all_sources: list[dict[str, Any]]  # every file, with ``agencies``: the units it carries
    mask: bool = True


VOUCHERS = "publish_vouchers"  # temp table: the vouchers the as-of date's squeeze and exceptions name


def prepare(con: duckdb.DuckDBPyConnection, as_of: dt.date, mask: bool = True) -> Shared:
    """Read once what the units' outputs need beyond their marts, and keep the few columns of the vouchers the
    squeeze and exception rows name in a temp table (DuckDB keeps temp tables on a read-only connection), so that
    each unit joins that small table instead of the whole ``payments`` view. A refund notice's file is its
    original vouchers' unit's when the notice names no unit."""
    con.execute(
        f"create or replace temp table {VOUCHERS} as"
        " select p.pay_cert_no, any_value(p.pro_name) as pro_name, any_value(p.use_des) as use_des,"
        " any_value(p.contract_no) as contract_no from payments as p"
        " where p.pay_cert_no in (select pay_cert_no from carryover_squeeze where as_of = ?"
        " union select pay_cert_no from exceptions where as_of = ? and pay_cert_no is not null)"
        " group by p.pay_cert_no",
        [as_of, as_of],
    )
    con.execute(
        f"create or replace temp table {UNIT_FILES} as select distinct agency_code, file_name from ("
        " select agency_code, source_file as file_name from raw_payments"
        " union all select agency_code, source_file from raw_budget_lines"
        " union all select coalesce(r.agency_code, v.agency_code), r.source_file from raw_refunds as r"
        " left join raw_payments as v on r.ori_pay_cert_no = v.pay_cert_no"
        " union all select agency_code, source_file from rejected_rows"
        ") where agency_code is not null"
    )
    if mask:
        try:
            con.create_function(MASK_FUNCTION, mask_accounts, ["VARCHAR"], "VARCHAR")
        except duckdb.NotImplementedException:
            pass  # already there: a second publish on this connection
    rejected = masked(
        _rows(
            con,
            'select source_file, source_row, "column", value, "check", message, row_text, agency_code'
            ' from rejected_rows order by source_file, source_row nulls first, "column"',
        ),
        mask,
    )
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        if r["agency_code"] is not None:
            by_unit.setdefault(r["agency_code"], []).append(r)
    sources = masked(
        _rows(
            con,
            "select s.*, (select string_agg(u.agency_code, ', ' order by u.agency_code) from"
            f" {UNIT_FILES} as u where u.file_name = s.file_name) as agencies from source_files as s"
            " order by s.file_name",
        ),
        mask,
    )
    unit_sources: dict[str, list[dict[str, Any]]] = {}
    for code, file_name in con.execute(f"select agency_code, file_name from {UNIT_FILES} order by 1, 2").fetchall():
        unit_sources.setdefault(code, []).append(file_name)
    by_name = {s["file_name"]: s for s in sources}
    return Shared(
        rejected=by_unit,
        sources={code: [by_name[f] for f in files if f in by_name] for code, files in unit_sources.items()},
        unassigned=[r for r in rejected if r["agency_code"] is None],
        all_sources=sources,
        mask=mask,
    )


def load_unit(
    con: duckdb.DuckDBPyConnection, unit: dict[str, Any], as_of: dt.date, shared: Shared | None = None
) -> UnitData:
    """Everything one unit's outputs show. ``shared`` comes from ``prepare(con, as_of)`` (made here if not given)."""
    if shared is None:
        shared = prepare(con, as_of)
    key = [as_of, unit["agency_code"], unit["fiscal_year"]]
    data = UnitData(as_of=as_of, unit=unit)
    data.projects = _rows(
        con,
        "select * from execution_by_project where as_of = ? and agency_code = ? and fiscal_year = ? order by pro_code",
        key,
    )
    data.quarters = _rows(
        con,
        "select * from execution_by_quarter where as_of = ? and agency_code = ? and fiscal_year = ?"
        " order by pro_code, quarter",
        key,
    )
    data.funds = _rows(
        con,
        "select * from self_assessment_funds where as_of = ? and agency_code = ? and fiscal_year = ?"
        " order by scope_kind desc, scope_code, row_no",
        key,
    )
    data.behind = _rows(
        con,
        "select * from behind_plan where as_of = ? and agency_code = ? and fiscal_year = ?"
        " and basis = 'quarter_plan' and severity is not null order by pro_code",
        key,
    )
    data.squeeze = masked(
        _rows(
            con,
            "select s.*, coalesce(b.pro_name, p.pro_name) as pro_name, p.use_des, p.contract_no"
            " from carryover_squeeze as s"
            " left join budget_lines as b"
            " on s.fiscal_year = b.fiscal_year and s.agency_code = b.agency_code and s.pro_code = b.pro_code"
            f" left join {VOUCHERS} as p on s.pay_cert_no = p.pay_cert_no"
            " where s.as_of = ? and s.agency_code = ? and s.fiscal_year = ?"
            " order by s.pro_code, s.pay_cert_no, s.rule",
            key,
        ),
        shared.mask,
    )
    exceptions = _rows(
        con,
        "select x.*, coalesce(b.pro_name, p.pro_name) as pro_name from (select * from exceptions where "
        + EXCEPTION_FILTER
        + ") as x left join budget_lines as b"
        " on x.fiscal_year = b.fiscal_year and x.agency_code = b.agency_code and x.pro_code = b.pro_code"
        f" left join {VOUCHERS} as p on x.pay_cert_no = p.pay_cert_no",
        _exception_params(as_of, unit["agency_code"], unit["fiscal_year"]),
    )
    data.exceptions = sorted(masked(exceptions, shared.mask), key=_exception_order)
    data.rejected = shared.rejected.get(unit["agency_code"], [])
    data.sources = shared.sources.get(unit["agency_code"], [])
    return data


def _exception_order(x: dict[str, Any]) -> tuple:
    return (
        SEVERITY_ORDER.get(x["severity"], 9),
        x["kind"],
        x["pro_code"] or "",
        x["pay_cert_no"] or "",
        x["source_file"] or "",
        x["source_row"] or 0,
    )


# --------------------------------------------------------------------------------------------------------------
# Workbook

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
    row = {**data.unit, "reply_amt": data.reply_amt, "squeeze_amt": data.squeeze_amt, "name": data.agency_name}
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


# --------------------------------------------------------------------------------------------------------------
# Draft paragraph


def _name(code: str | None, name: str | None) -> str:
    if name and code:
        return f"{name}（{code}）"
    return name or code or "—"


def fmt_rate_pct(pct: Decimal | None) -> str:
    """A rate the marts computed in percent (execution_rate_pct: 34.5) as text: "34.5%"; "—" when undefined."""
    return "—" if pct is None else f"{Decimal(pct):.1f}%"


def behind_thresholds(warning_pp: Decimal | None = None, critical_pp: Decimal | None = None) -> tuple[Decimal, Decimal]:
    """The behind-plan thresholds in percentage points: the configured ones, else the AlertSettings defaults (the
    one source for alerts, sheets and the paragraph)."""
    defaults = AlertSettings()
    return (
        Decimal(str(defaults.behind_warning_pp if warning_pp is None else warning_pp)),
        Decimal(str(defaults.behind_critical_pp if critical_pp is None else critical_pp)),
    )


def _funds_clause(budget_label: str, budget: Decimal, paid: Decimal, rate_label: str, pct: Decimal | None) -> str:
    """ "<budget_label> X 万元，支出 Y 万元，<rate_label> Z%": a rate always right after what it divides."""
    return f"{budget_label} {fmt_wan(budget)} 万元，支出 {fmt_wan(paid)} 万元，{rate_label} {fmt_rate_pct(pct)}"


def funds_paragraph(
    data: UnitData,
    *,
    behind_warning_pp: Decimal | None = None,
    behind_critical_pp: Decimal | None = None,
) -> str:
    """The draft funds paragraph (资金情况说明), from the same numbers and rounding as the workbook.

    Every rate is the marts' (execution_rate_pct, total_execution_rate_pct, gap_pp), written right after the two
    amounts it divides, so a reader can check it; the behind-plan thresholds are the configured ones."""
    warning_pp, _ = behind_thresholds(behind_warning_pp, behind_critical_pp)
    u = data.unit
    cur, carry = _dec(u["cur_amt"]), _dec(u["carryover_amt"])
    paid_cur, paid_carry = _dec(u["paid_current"]), _dec(u["paid_carryover"])
    as_of = data.as_of.isoformat()
    lines = [f"# 资金情况说明（草稿）：{data.agency_name} {data.fiscal_year} 年度，截至 {as_of}", ""]

    lines.append(
        f"{_name(data.agency_code, data.agency_name)}{data.fiscal_year}年度预算资金截至 {as_of} 的执行情况："
        + _funds_clause("当年财政拨款", cur, paid_cur, "执行率", u.get("execution_rate_pct"))
        + "（当年财政拨款支出 ÷ 全年预算数）；"
        + _funds_clause(
            "含上年结转的资金总额", cur + carry, paid_cur + paid_carry, "总体执行率", u.get("total_execution_rate_pct")
        )
        + f"；其中上年结转资金 {fmt_wan(carry)} 万元，已支出 {fmt_wan(paid_carry)} 万元。"
    )
    lines.append("")

    if data.projects:
        parts = []
        for p in data.projects:
            p_cur, p_paid = _dec(p["cur_amt"]), _dec(p["paid_current"])
            text = _name(p["pro_code"], p["pro_name"]) + _funds_clause(
                "当年财政拨款", p_cur, p_paid, "执行率", p.get("execution_rate_pct")
            )
            p_carry, p_paid_carry = _dec(p["carryover_amt"]), _dec(p["paid_carryover"])
            if p_carry or p_paid_carry:
                text += "，" + _funds_clause(
                    "含上年结转的资金总额",
                    p_cur + p_carry,
                    p_paid + p_paid_carry,
                    "总体执行率",
                    p.get("total_execution_rate_pct"),
                )
            parts.append(text)
        lines.append("分项目看：" + "；".join(parts) + "。")
    else:
        lines.append("本年度没有项目预算。")
    lines.append("")

    if data.squeeze:
        items = [
            f"{_name(s['pro_code'], s['pro_name'])}凭证 {s['pay_cert_no']} {fmt_wan(s['amount'])} 万元，{s['evidence']}"
            for s in data.squeeze
        ]
        lines.append(
            f"结转挤占：共 {len(data.squeeze)} 笔、合计 {fmt_wan(data.squeeze_amt)} 万元，"
            "以前年度支出占用了当年指标：" + "；".join(items) + "。"
        )
    else:
        lines.append("结转挤占：未发现以前年度支出占用当年指标。")
    lines.append("")

    unbudgeted = [x for x in data.exceptions if x["kind"] == "unbudgeted"]
    unbudgeted_amt = _dec(u.get("unbudgeted_amt"))
    if unbudgeted_amt or unbudgeted:
        items = []
        for x in unbudgeted:
            project = " ".join(filter(None, (x["pro_code"], x["pro_name"])))
            items.append(f"凭证 {x['pay_cert_no']} {fmt_wan(x['amount'])} 万元（项目 {project}）")
        lines.append(
            f"无预算支出：{fmt_wan(unbudgeted_amt)} 万元，未计入任何项目的执行数"
            + ("：" + "；".join(items) if items else "")
            + "。"
        )
    else:
        lines.append("无预算支出：无。")
    lines.append("")

    complete = [q for q in data.quarters if q["is_complete"]]
    if not complete:
        lines.append(f"用款计划进度：截至 {as_of} 尚无已结束的季度，未评价。")
    else:
        latest = max(q["quarter"] for q in complete)
        behind = []
        for q in data.behind:  # behind_plan, judged by the thresholds publish_outputs set on the session
            if q["quarter"] != latest:
                continue
            level = "（严重）" if q["severity"] == "critical" else ""
            behind.append(
                f"{_name(q['pro_code'], q['pro_name'])}全年预算 {fmt_wan(q['cur_amt'])} 万元，"
                f"累计计划 {fmt_wan(q['target_amt'])} 万元、累计支出 {fmt_wan(q['paid_cum'])} 万元，"
                f"落后 {q['gap_pp']:.2f} 个百分点{level}"
            )
        quarter = QUARTER_NAMES.get(latest, str(latest))
        basis = "（落后百分点 =（累计计划 − 累计支出）÷ 全年预算 × 100）"
        if behind:
            lines.append(
                f"用款计划进度：截至{quarter}末，{len(behind)} 个项目落后计划 {warning_pp} 个百分点以上{basis}："
                + "；".join(behind)
                + "。"
            )
        else:
            lines.append(f"用款计划进度：截至{quarter}末，没有项目落后用款计划 {warning_pp} 个百分点以上。")
    lines.append("")
    lines.append(
        f"（本段由 treasury-recon 根据截至 {as_of} 的数据生成，金额单位万元，四舍五入保留两位小数，"
        "与同目录的预算执行工作簿一致；发布前请核对。）"
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------
# Files


_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def safe_part(text: Any) -> str:
    """A file-name component from data: no separators, no leading dots (no '..')."""
    cleaned = _UNSAFE_NAME.sub("_", str(text)).strip().lstrip(".")
    return cleaned or "_"


def _tmp_for(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Write via ``write(tmp)`` to a temporary file beside ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(path)
    try:
        write(tmp)
        warehouse.fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_mart(con: duckdb.DuckDBPyConnection, mart: str, data: UnitData, folder: Path, mask: bool = True) -> list[Path]:
    """CSV (UTF-8 with BOM) and Parquet copies of one mart for the unit, year and as-of date, via DuckDB COPY;
    account numbers in free-text columns masked when ``mask`` (needs ``prepare(con, as_of, mask=True)`` first)."""
    if mart == "exceptions":
        where, params = EXCEPTION_FILTER, _exception_params(data.as_of, data.agency_code, data.fiscal_year)
    else:
        where, params = (
            "as_of = ? and agency_code = ? and fiscal_year = ?",
            [data.as_of, data.agency_code, data.fiscal_year],
        )
    columns = con.execute(f"describe select * from {_ident(mart)}").fetchall()
    order = ", ".join(_ident(c[0]) for c in columns if c[0] in ("pro_code", "quarter", "pay_cert_no", "kind"))
    order_by = f" order by {order}" if order else ""
    shown = ", ".join(
        f"{MASK_FUNCTION}({_ident(name)}) as {_ident(name)}" if mask and name in MASKED_FIELDS else _ident(name)
        for name, *_ in columns
    )
    plain = f"select {shown} from {_ident(mart)} where {where}{order_by}"
    # For the CSV only: text Excel would evaluate (=, +, -, @ first) gets a leading apostrophe. Parquet is exact.
    guarded = ", ".join(
        f"case when regexp_matches({_ident(name)}, '{CSV_UNSAFE_PREFIX}') then '''' || {_ident(name)}"
        f" else {_ident(name)} end as {_ident(name)}"
        if dtype == "VARCHAR"
        else _ident(name)
        for name, dtype, *_ in columns
    )
    csv_select = f"select {guarded} from ({plain})"
    stem = f"{mart}_{data.as_of.isoformat()}"

    def write_parquet(tmp: Path) -> None:
        con.execute(f"copy ({plain}) to {_sql_string(str(tmp))} (format parquet)", params)

    def write_csv(tmp: Path) -> None:
        raw = _tmp_for(tmp)
        try:
            con.execute(f"copy ({csv_select}) to {_sql_string(str(raw))} (format csv, header true)", params)
            with tmp.open("wb") as out, raw.open("rb") as src:
                out.write("\ufeff".encode())
                shutil.copyfileobj(src, out)
        finally:
            raw.unlink(missing_ok=True)

    return [
        write_atomic(folder / f"{stem}.csv", write_csv),
        write_atomic(folder / f"{stem}.parquet", write_parquet),
    ]


def unit_folder(data: UnitData, out_dir: Path) -> Path:
    """out_dir/<agency_code>_<fiscal_year>: where one unit's outputs go."""
    return Path(out_dir) / f"{safe_part(data.agency_code)}_{data.fiscal_year}"


def write_documents(
    data: UnitData,
    out_dir: Path,
    behind_warning_pp: Decimal | None = None,
    behind_critical_pp: Decimal | None = None,
) -> list[Path]:
    """The workbook and the draft paragraph of one unit: pure Python, no warehouse (runs in a worker process when
    several units are published)."""
    code, year, as_of = safe_part(data.agency_code), data.fiscal_year, data.as_of.isoformat()
    folder = unit_folder(data, out_dir)
    wb = build_workbook(data)
    text = funds_paragraph(data, behind_warning_pp=behind_warning_pp, behind_critical_pp=behind_critical_pp)
    return [
        write_atomic(folder / f"预算执行_{code}_{year}_{as_of}.xlsx", lambda tmp: wb.save(tmp)),
        write_atomic(folder / f"资金情况说明_{code}_{year}_{as_of}.md", lambda tmp: tmp.write_text(text, "utf-8")),
    ]


def copy_marts(con: duckdb.DuckDBPyConnection, data: UnitData, out_dir: Path, mask: bool = True) -> list[Path]:
    folder = unit_folder(data, out_dir) / "marts"
    return [path for mart in MARTS for path in copy_mart(con, mart, data, folder, mask)]


OPERATOR_FOLDER = "operator"


def write_operator_report(con: duckdb.DuckDBPyConnection, shared: Shared, as_of: dt.date, out_dir: Path) -> Path:
    """One report per as-of date for the operator, never in a unit's folder: the rejected rows whose unit cannot be
    read, the findings that name no unit, and every file with the units whose rows it carries."""
    exceptions = _rows(
        con,
        "select x.*, p.pro_name from exceptions as x"
        f" left join {VOUCHERS} as p on x.pay_cert_no = p.pay_cert_no"
        " where x.as_of = ? and x.agency_code is null",
        [as_of],
    )
    data = UnitData(
        as_of=as_of,
        unit={"agency_code": OPERATOR_FOLDER, "fiscal_year": as_of.year},
        exceptions=sorted(masked(exceptions, shared.mask), key=_exception_order),
        rejected=shared.unassigned,
        sources=shared.all_sources,
    )
    wb = Workbook()
    wb.remove(wb.active)
    for style in _named_styles():
        wb.add_named_style(style)
    sheet_rejected(wb.create_sheet("校验失败（单位不明）"), data)
    sheet_exceptions(wb.create_sheet("异常（单位不明）"), data)
    sheet_sources(wb.create_sheet("数据来源（全部文件）"), data, with_agencies=True)
    wb.properties.creator = "treasury-recon"
    wb.properties.title = f"运维报告：无法归属到预算单位的数据（截至 {as_of.isoformat()}）"
    path = Path(out_dir) / OPERATOR_FOLDER / f"运维报告_{as_of.isoformat()}.xlsx"
    return write_atomic(path, lambda tmp: wb.save(tmp))


def publish_unit(
    con: duckdb.DuckDBPyConnection,
    data: UnitData,
    out_dir: Path,
    *,
    behind_warning_pp: Decimal | None = None,
    behind_critical_pp: Decimal | None = None,
) -> list[Path]:
    written = write_documents(data, out_dir, behind_warning_pp, behind_critical_pp)
    return written + copy_marts(con, data, out_dir)


PUBLISH_WORKERS_ENV = "RECON_PUBLISH_WORKERS"


def publish_workers(units: int) -> int:
    """Processes that build workbooks: one per core (at most 4) when there are enough units to pay for starting
    them (~1 s each); 1 (this process) otherwise. $RECON_PUBLISH_WORKERS overrides."""
    configured = os.environ.get(PUBLISH_WORKERS_ENV, "").strip()
    if configured:
        if not configured.isdigit():
            raise ValueError(f"{PUBLISH_WORKERS_ENV} must be a whole number of processes, got {configured!r}")
        return max(1, int(configured))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4) if units >= 4 * min(cores, 4) and cores > 1 else 1


def publish_outputs(
    warehouse_path: Path,
    out_dir: Path,
    as_of: dt.date,
    *,
    alert_settings: AlertSettings | None = None,
    mask: bool = True,
    workers: int | None = None,
) -> list[Path]:
    """Write the workbook, draft paragraph and mart copies of every (unit, fiscal year) as of ``as_of``.

    ``alert_settings`` (the config's [alerts]; default AlertSettings()) gives the behind-plan thresholds
    behind_plan judges by for the paragraph (set on the session), the same ones the alerts use. ``mask`` (the
    config's [publish] mask_accounts) masks account numbers in every output (the warehouse keeps them exact). Rows
    and findings that belong to no unit go to one operator report, ``out_dir/operator/运维报告_<as_of>.xlsx``.

    Workbooks are built in ``workers`` processes (default: ``publish_workers``; flows/publish_worker.py) while
    this process reads the marts and writes their copies.
    Returns the paths written, unit by unit. Raises ValueError when the warehouse has no marts for ``as_of``
    (never reconciled for that date). The 自评表's 分值 is the marts' (self_assessment_funds: the reconcile step's
    weight).
    """
    written: list[Path] = []
    with warehouse.read_only(Path(warehouse_path)) as con:
        try:
            units = _rows(
                con, "select * from execution_by_unit where as_of = ? order by agency_code, fiscal_year", [as_of]
            )
            dates = [
                r[0]
                for r in con.execute(
                    "select as_of from execution_by_unit union select as_of from exceptions order by 1"
                ).fetchall()
            ]
        except duckdb.CatalogException as e:
            raise ValueError(f"{warehouse_path} has no marts yet: run a reconcile first ({e})") from None
        if not units:
            if as_of not in dates:
                raise ValueError(
                    f"the warehouse has no marts as of {as_of.isoformat()}: reconcile that date first"
                    f" (as-of dates present: {', '.join(d.isoformat() for d in dates) or 'none'})"
                )
        shared = prepare(con, as_of, mask)
        workers = publish_workers(len(units)) if workers is None else max(1, workers)
        warning_pp, critical_pp = behind_thresholds(
            *((alert_settings.behind_warning_pp, alert_settings.behind_critical_pp) if alert_settings else ())
        )
        con.execute("set variable behind_warning_pp = ?", [str(warning_pp)])  # behind_plan judges by them
        con.execute("set variable behind_critical_pp = ?", [str(critical_pp)])
        args = (Path(out_dir), warning_pp, critical_pp)
        pool = Workers(workers) if workers > 1 and len(units) > 1 else None
        try:
            pending = []
            for unit in units:
                data = load_unit(con, unit, as_of, shared)
                documents = pool.submit(data, *args) if pool else write_documents(data, *args)
                pending.append((data, documents, copy_marts(con, data, Path(out_dir), mask)))  # DuckDB meanwhile
            operator_report = write_operator_report(con, shared, as_of, Path(out_dir))
            built = pool.results() if pool else {}
        finally:
            if pool:
                pool.close()
        for data, documents, marts in pending:
            paths = (built[documents] if pool else documents) + marts
            log.info("published %s %s as of %s: %d files", data.agency_code, data.fiscal_year, as_of, len(paths))
            written.extend(paths)
        written.append(operator_report)
    return written
