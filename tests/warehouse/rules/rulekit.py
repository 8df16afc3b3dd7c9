"""Shared by the rule tests (tests/warehouse/rules/test_rule_<kind>.py, one per rule of sql/rules/registry.csv):
input builders that write small real CSV exports, the real build (flows.build.build_night) once per as-of date,
and readers of the rule relations and their `exceptions` rows. Amounts are read with fetchall(): DECIMAL stays
Decimal.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from flows.build import build_night
from flows.warehouse import db
from schemas.spec import export_header
from tests import ROOT
from tests.builders import write_export

D = Decimal
REGISTRY_CSV = ROOT / "sql" / "rules" / "registry.csv"

# ---------------------------------------------------------------------------------------------------------------
# Input builders: small, real CSV exports
# ---------------------------------------------------------------------------------------------------------------

PAY_HEADER = export_header(
    "payments",
    "pay_cert_no pay_date agency_code agency_name pro_code pro_name bgt_doc_no bgt_source payee_acct_name"
    " payee_acct_no pay_amt use_des status contract_no ori_pay_cert_no",
)
REFUND_HEADER = export_header("refunds", "refund_no ori_pay_cert_no refund_date refund_amt reason")
BUDGET_HEADER = export_header(
    "budget", "pro_code pro_name agency_code reply_amt adj_amt cur_amt 上年结转数 plan_q1 plan_q2 plan_q3 plan_q4"
)
UNIT_NAMES = {"990001": "示例县公路事务中心", "990002": "示例县教育局"}
CUR_DOC = "示财预〔2025〕3号"
PRIOR_DOC = "示财预〔2024〕88号"  # a 2024 指标文号 paid in 2025: carry-over money


def pay(
    no: str,
    date: str,
    amount: str,
    *,
    pro: str = "P1",
    agency: str = "990001",
    doc: str = CUR_DOC,
    source: str = "",
    use: str = "进度款",
    status: str = "已支付",
    contract: str = "",
    ori: str = "",
) -> list[str]:
    """One payment-export row in the order of PAY_HEADER."""
    return [
        no,
        date,
        agency,
        UNIT_NAMES.get(agency, ""),
        pro,
        f"项目{pro}",
        doc,
        source,
        "示例路桥工程有限公司",
        "6222020200112233445",
        amount,
        use,
        status,
        contract,
        ori,
    ]


def line(
    pro: str,
    cur: str,
    carry: str = "0.00",
    plans: tuple[str, str, str, str] = ("", "", "", ""),
    *,
    agency: str = "990001",
) -> list[str]:
    """One budget-sheet row (yuan) in the order of BUDGET_HEADER: 年初预算数 = 全年预算数, no adjustment."""
    return [pro, f"项目{pro}", agency, cur, "0.00", cur, carry, *plans]


def write_payments(raw: Path, name: str, rows: list[list[str]], *, total: str | None = None) -> Path:
    """A payment export: one title row, the header (row 2), data from row 3, optionally a 合计 row."""
    if total is not None:
        totals = [""] * len(PAY_HEADER)
        totals[0], totals[PAY_HEADER.index("支付金额")] = "合计", total
        rows = [*rows, totals]
    return write_export(raw / "payments" / name, ["国库集中支付明细查询"], PAY_HEADER, rows)


def write_refunds(raw: Path, name: str, rows: list[list[str]]) -> Path:
    """A refund-notice export: one title row, the header (row 2), data from row 3."""
    return write_export(raw / "refunds" / name, ["国库集中支付资金退回"], REFUND_HEADER, rows)


def write_budget(
    raw: Path, name: str, rows: list[list[str]], *, yuan: bool = True, total: list[str] | None = None
) -> Path:
    """A 2025 budget sheet: title rows (row 1, and 金额单位：元 on row 2 when yuan), header, data after it."""
    titles = ["示例单位2025年项目预算表"] + (["金额单位：元"] if yuan else [])
    return write_export(raw / "budget" / name, titles, BUDGET_HEADER, rows + ([total] if total else []))


def run(raw: Path, wh: Path, *as_of: dt.date) -> Path:
    """The real pipeline, once per as-of date (later runs load nothing new and reconcile that date)."""
    for day in as_of:
        build_night(wh, day, raw_dir=raw)
    return wh


def build(root: Path, *as_of: dt.date, payments=(), refunds=(), budget=(), total: str | None = None) -> Path:
    """Write one payment export, one refund export and one budget sheet (those given) and run the pipeline."""
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    if payments:
        write_payments(raw, "a.csv", list(payments), total=total)
    if refunds:
        write_refunds(raw, "r.csv", list(refunds))
    if budget:
        write_budget(raw, "b.csv", list(budget))
    return run(raw, root / "w.duckdb", *as_of)


# ---------------------------------------------------------------------------------------------------------------
# Reading results
# ---------------------------------------------------------------------------------------------------------------

KEY = "fiscal_year, agency_code, pro_code, pay_cert_no, amount, source_file, source_row"
STANDARD_COLUMNS = [
    ("fiscal_year", "INTEGER"),
    ("agency_code", "VARCHAR"),
    ("pro_code", "VARCHAR"),
    ("pay_cert_no", "VARCHAR"),
    ("amount", "DECIMAL(18,2)"),
    ("detail", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "INTEGER"),
]


def query(wh: Path, sql: str, params: list | None = None) -> list[tuple]:
    with db.read_only(wh) as con:
        return con.execute(sql, params or []).fetchall()


def rule_rows(wh: Path, kind: str, as_of: dt.date, columns: str = KEY) -> list[tuple]:
    """The rule relation itself, evaluated as of a date (the rule views read the session variable as_of)."""
    with db.read_only(wh) as con:
        con.execute("set variable as_of = cast(? as date)", [as_of])
        return con.execute(f"select {columns} from rule_{kind} order by all").fetchall()


def exception_rows(wh: Path, kind: str, as_of: dt.date, columns: str = KEY) -> list[tuple]:
    """The materialised findings of one kind for one as-of date."""
    return query(wh, f"select {columns} from exceptions where kind = ? and as_of = ? order by all", [kind, as_of])


def findings(wh: Path, kind: str, as_of: dt.date) -> list[tuple]:
    """The rule's rows as of a date; the exceptions table must hold exactly the same ones."""
    rows = rule_rows(wh, kind, as_of)
    assert exception_rows(wh, kind, as_of) == rows
    return rows


def details(wh: Path, kind: str, as_of: dt.date) -> dict[str | None, str]:
    return dict(exception_rows(wh, kind, as_of, "coalesce(pay_cert_no, pro_code, source_file), detail"))


def registry() -> dict[str, tuple[str, str, str]]:
    with REGISTRY_CSV.open(encoding="utf-8") as f:
        return {r["kind"]: (r["severity"], r["category"], r["message"]) for r in csv.DictReader(f)}


def rule_columns(wh: Path, kind: str) -> list[tuple[str, str]]:
    with db.read_only(wh) as con:
        con.execute("set variable as_of = date '2025-12-31'")
        return [(name, dtype) for name, dtype, *_ in con.execute(f"describe rule_{kind}").fetchall()]


def assert_registry_rows(wh: Path, kind: str, as_of: dt.date, expected_count: int) -> None:
    """Every exceptions row of the kind carries the registry's severity, category and message."""
    rows = exception_rows(wh, kind, as_of, "kind, severity, category, message")
    assert len(rows) == expected_count > 0
    assert set(rows) == {(kind, *registry()[kind])}
