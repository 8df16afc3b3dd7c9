"""The marts (sql/marts/*.sql) on a small hand-built unit, every expected number computed here with Decimal.

Two budget units, four projects (one with carry-over money, one with a zero current-year budget, one in a second
unit), a refund in a later quarter, an unbudgeted payment, a voided voucher and an overlapping second export. The
whole pipeline runs on real CSV exports into a real DuckDB file for two as-of dates; every column of
execution_by_project, execution_by_unit and execution_by_quarter is compared with an independent Python reckoning
of the contract (CONTRACT.md section 2). Rates are exact fractions rounded half-up, so several amounts are chosen to
land exactly on a .x5 boundary where binary-float rounding goes the other way.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import shutil
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from flows.build import build_night
from flows.warehouse import db, transform
from schemas.spec import export_header
from tests.builders import write_export

D = Decimal
FISCAL_YEAR = 2025
AS_OF_A = dt.date(2025, 6, 30)  # end of Q2: before the Q3 refund and the second-half payments
AS_OF_B = dt.date(2025, 12, 31)  # after every payment and refund
CUR_DOC = "示财预〔2025〕3号"
PRIOR_DOC = "示财预〔2024〕45号"
UNIT_NAMES = {"990001": "示例县公路事务中心", "990002": "示例县生态环境分局"}
COUNTED = {"已支付", "支付成功", ""}

# ---------------------------------------------------------------------------------------------------------------
# The unit: input rows
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pay:
    no: str
    date: str
    agency: str
    pro: str
    pro_name: str
    amount: str
    doc: str = CUR_DOC
    source: str = ""
    use: str = "进度款"
    status: str = "已支付"

    @property
    def day(self) -> dt.date:
        return dt.date.fromisoformat(self.date)

    @property
    def money(self) -> str:
        """Carry-over when 指标来源 says 结转 or the 指标文号 names an earlier year than the payment's."""
        doc_year = int(re.search(r"〔(\d{4})〕", self.doc).group(1))
        return "carryover" if "结转" in self.source or doc_year < self.day.year else "current"

    @property
    def counted(self) -> bool:
        return self.status in COUNTED

    def row(self) -> list[str]:
        return [
            self.no,
            self.date,
            self.agency,
            UNIT_NAMES[self.agency],
            self.pro,
            self.pro_name,
            self.doc,
            self.source,
            "示例建设工程有限公司",
            "6222020200112233445",
            self.amount,
            self.use,
            self.status,
            "",
        ]


@dataclass(frozen=True)
class Refund:
    no: str
    ori: str
    date: str
    amount: str

    @property
    def day(self) -> dt.date:
        return dt.date.fromisoformat(self.date)


@dataclass(frozen=True)
class Line:
    agency: str
    pro: str
    name: str
    reply: str
    adj: str
    cur: str
    carry: str
    plans: tuple[str, str, str, str]

    def row(self) -> list[str]:
        return [
            self.pro,
            self.name,
            self.agency,
            UNIT_NAMES[self.agency],
            self.reply,
            self.adj,
            self.cur,
            self.carry,
            *self.plans,
        ]


LINES = [
    Line(
        "990001",
        "P1",
        "农村道路养护",
        "9000.00",
        "1000.00",
        "10000.00",
        "2000.00",
        ("2000.00", "2699.50", "3000.50", "2300.00"),
    ),
    Line("990001", "P2", "校舍维修改造", "20000.00", "0.00", "20000.00", "0.00", ("5000.00",) * 4),
    Line("990001", "P3", "以前年度结转收尾", "0.00", "0.00", "0.00", "500.00", ("", "", "", "")),  # zero budget
    Line(
        "990002", "P4", "农村环境整治", "5000.00", "0.00", "5000.00", "0.00", ("50.25", "1449.75", "1500.00", "2000.00")
    ),
]

# first export (January to June)
H1 = [
    Pay("PV101", "2025-02-10", "990001", "P1", "农村道路养护", "3000.00", use="一季度养护进度款"),
    Pay("PV102", "2025-05-20", "990001", "P1", "农村道路养护", "465.00", source="当年预算", use="2024年度养护工程尾款"),
    Pay("PV103", "2025-03-05", "990001", "P1", "农村道路养护", "800.00", doc=PRIOR_DOC),  # carry-over: 〔2024〕
    Pay("PV104", "2025-04-10", "990001", "P1", "农村道路养护", "450.00", source="上年结转"),  # carry-over: 结转
    Pay("PV105", "2025-06-01", "990001", "P1", "农村道路养护", "1000.00", status="已作废"),  # voided
    Pay("PV201", "2025-01-15", "990001", "P2", "校舍维修改造", "6930.00"),
    Pay("PV301", "2025-03-01", "990001", "P3", "以前年度结转收尾", "200.00", doc=PRIOR_DOC),
    Pay("PV901", "2025-04-01", "990001", "P9", "临时应急项目", "300.00"),  # unbudgeted
]
# second export (June to December), overlapping the first by one voucher
H2 = [
    H1[5],  # PV201 again: the same payment, loaded once
    Pay("PV202", "2025-07-20", "990001", "P2", "校舍维修改造", "1000.00"),
    Pay("PV401", "2025-10-01", "990002", "P4", "农村环境整治", "1000.00"),
]
REFUNDS = [Refund("RF1", "PV102", "2025-08-15", "100.00")]  # a Q2 payment refunded in Q3
# a late-arriving export, for the rerun of an as-of date
LATE = [Pay("PV106", "2025-06-15", "990001", "P1", "农村道路养护", "500.00")]

PAY_HEADER = export_header(
    "payments",
    "pay_cert_no pay_date agency_code agency_name pro_code pro_name bgt_doc_no bgt_source payee_acct_name"
    " payee_acct_no pay_amt use_des status ori_pay_cert_no",
)
BUDGET_HEADER = export_header(
    "budget",
    "pro_code pro_name agency_code agency_name reply_amt adj_amt cur_amt 上年结转数 plan_q1 plan_q2 plan_q3 plan_q4",
)


def write_payments(raw: Path, name: str, pays: list[Pay]) -> None:
    """One title row, the header on row 2: the i-th payment is on row i + 3."""
    write_export(raw / "payments" / name, ["国库集中支付明细查询"], PAY_HEADER, [p.row() for p in pays])


def write_unit(raw: Path) -> None:
    write_export(
        raw / "budget" / "budget_2025.csv",
        ["示例县2025年项目预算及分季度用款计划表", "金额单位：元"],
        BUDGET_HEADER,
        [line.row() for line in LINES],
    )
    write_payments(raw, "pay_2025_h1.csv", H1)
    write_payments(raw, "pay_2025_h2.csv", H2)
    write_export(
        raw / "refunds" / "refunds_2025.csv",
        ["国库集中支付资金退回"],
        export_header("refunds", "refund_no ori_pay_cert_no refund_date refund_amt reason"),
        [[r.no, r.ori, r.date, r.amount, "结算退回"] for r in REFUNDS],
    )


# ---------------------------------------------------------------------------------------------------------------
# The contract, reckoned in Python
# ---------------------------------------------------------------------------------------------------------------


def half_up(num: Decimal, den: Decimal, places: int) -> Decimal | None:
    """num / den rounded half away from zero to `places` decimals, exactly (no float); None when den is 0."""
    if den == 0:
        return None
    q = Fraction(num) / Fraction(den) * 10**places
    n = math.floor(abs(q) + Fraction(1, 2))
    return Decimal(-n if q < 0 else n).scaleb(-places)


def vouchers(pays: list[Pay]) -> dict[str, Pay]:
    """Each voucher once (the overlapping export repeats identical rows)."""
    out: dict[str, Pay] = {}
    for p in pays:
        assert out.setdefault(p.no, p) == p
    return out


@dataclass(frozen=True)
class Event:
    voucher: Pay
    day: dt.date
    amount: Decimal


def events(pays: list[Pay], refunds: list[Refund], as_of: dt.date) -> list[Event]:
    """Counted payments on their date and refunds on theirs, dated on or before as_of."""
    counted = {no: p for no, p in vouchers(pays).items() if p.counted}
    out = [Event(p, p.day, D(p.amount)) for p in counted.values() if p.day <= as_of]
    out += [Event(counted[r.ori], r.day, -D(r.amount)) for r in refunds if r.day <= as_of and r.ori in counted]
    return out


def net_as_of(pays: list[Pay], refunds: list[Refund], as_of: dt.date, no: str) -> Decimal:
    return sum((e.amount for e in events(pays, refunds, as_of) if e.voucher.no == no), D("0.00"))


def names_prior_year(use: str) -> bool:
    years = [int(y) for y in re.findall(r"((?:19|20)\d{2})\s*年", use)]
    return any(y < FISCAL_YEAR for y in years) or any(w in use for w in ("上年", "以前年度", "往年", "去年"))


def paid(evs: list[Event], agency: str, pro: str | None, money: str | None, quarter: int | None = None) -> Decimal:
    return sum(
        (
            e.amount
            for e in evs
            if e.voucher.agency == agency
            and (pro is None or e.voucher.pro == pro)
            and (money is None or e.voucher.money == money)
            and (quarter is None or (e.day.month - 1) // 3 + 1 == quarter)
        ),
        D("0.00"),
    )


def expected_projects(pays: list[Pay], refunds: list[Refund], as_of: dt.date) -> list[dict]:
    evs = events(pays, refunds, as_of)
    rows = []
    for line in LINES:
        cur, carry = D(line.cur), D(line.carry)
        pc = paid(evs, line.agency, line.pro, "current")
        pco = paid(evs, line.agency, line.pro, "carryover")
        squeezed = [
            p
            for p in vouchers(pays).values()
            if p.counted
            and p.day <= as_of
            and (p.agency, p.pro) == (line.agency, line.pro)
            and p.money == "current"
            and names_prior_year(p.use)
        ]
        rows.append(
            {
                "fiscal_year": FISCAL_YEAR,
                "as_of": as_of,
                "agency_code": line.agency,
                "pro_code": line.pro,
                "pro_name": line.name,
                "cur_amt": cur,
                "paid_current": pc,
                "execution_rate": half_up(pc, cur, 12),
                "execution_rate_pct": half_up(pc * 100, cur, 1),
                "carryover_amt": carry,
                "paid_carryover": pco,
                "total_execution_rate": half_up(pc + pco, cur + carry, 12),
                "total_execution_rate_pct": half_up((pc + pco) * 100, cur + carry, 1),
                "squeeze_amt": sum((net_as_of(pays, refunds, as_of, p.no) for p in squeezed), D("0.00")),
                "squeeze_count": len(squeezed),
                "balance_current": cur - pc,
                "balance_carryover": carry - pco,
                "reply_amt": D(line.reply),
                "adj_amt": cur - D(line.reply),
                "total_amt": cur + carry,
                "paid_total": pc + pco,
            }
        )
    return rows


def expected_units(pays: list[Pay], refunds: list[Refund], as_of: dt.date) -> list[dict]:
    evs = events(pays, refunds, as_of)
    projects = expected_projects(pays, refunds, as_of)
    rows = []
    for agency in sorted({line.agency for line in LINES}):
        lines = [line for line in LINES if line.agency == agency]
        budgeted = {line.pro for line in lines}
        cur = sum((D(line.cur) for line in lines), D("0.00"))
        carry = sum((D(line.carry) for line in lines), D("0.00"))
        pc = sum((paid(evs, agency, pro, "current") for pro in budgeted), D("0.00"))
        pco = sum((paid(evs, agency, pro, "carryover") for pro in budgeted), D("0.00"))
        unbudgeted = sum((e.amount for e in evs if e.voucher.agency == agency and e.voucher.pro not in budgeted), D(0))
        rows.append(
            {
                "fiscal_year": FISCAL_YEAR,
                "as_of": as_of,
                "agency_code": agency,
                "agency_name": UNIT_NAMES[agency],
                "cur_amt": cur,
                "paid_current": pc,
                "execution_rate": half_up(pc, cur, 12),
                "execution_rate_pct": half_up(pc * 100, cur, 1),
                "carryover_amt": carry,
                "paid_carryover": pco,
                "total_execution_rate": half_up(pc + pco, cur + carry, 12),
                "total_execution_rate_pct": half_up((pc + pco) * 100, cur + carry, 1),
                "unbudgeted_amt": unbudgeted,
                "project_count": len(lines),
                "reply_amt": sum((D(line.reply) for line in lines), D("0.00")),
                "squeeze_amt": sum((p["squeeze_amt"] for p in projects if p["agency_code"] == agency), D("0.00")),
                "squeeze_count": sum(p["squeeze_count"] for p in projects if p["agency_code"] == agency),
                "total_amt": cur + carry,
                "paid_total": pc + pco,
            }
        )
    return rows


def expected_quarters(pays: list[Pay], refunds: list[Refund], as_of: dt.date) -> list[dict]:
    evs = events(pays, refunds, as_of)
    rows = []
    for line in LINES:
        cur = D(line.cur)
        plan_cum = paid_cum = D("0.00")
        for quarter in range(1, 5):
            end = dt.date(FISCAL_YEAR, quarter * 3, calendar.monthrange(FISCAL_YEAR, quarter * 3)[1])
            plan = D(line.plans[quarter - 1]) if line.plans[quarter - 1] else None
            paid_q = paid(evs, line.agency, line.pro, "current", quarter)  # a refund counts in its own quarter
            plan_cum += plan or 0
            paid_cum += paid_q
            rows.append(
                {
                    "fiscal_year": FISCAL_YEAR,
                    "as_of": as_of,
                    "agency_code": line.agency,
                    "pro_code": line.pro,
                    "pro_name": line.name,
                    "quarter": quarter,
                    "quarter_end": end,
                    "is_complete": end <= as_of,
                    "cur_amt": cur,
                    "plan_amt": plan,
                    "plan_cum": plan_cum,
                    "paid_amt": paid_q,
                    "paid_cum": paid_cum,
                    "gap_pp": half_up((plan_cum - paid_cum) * 100, cur, 2) if end <= as_of else None,
                    "plan_cum_pct": half_up(plan_cum * 100, cur, 1),
                    "paid_cum_pct": half_up(paid_cum * 100, cur, 1),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------------------------
# The warehouse
# ---------------------------------------------------------------------------------------------------------------

ORDER = {
    "execution_by_project": "agency_code, pro_code",
    "execution_by_unit": "agency_code",
    "execution_by_quarter": "agency_code, pro_code, quarter",
}


def run(raw: Path, wh: Path, *as_of: dt.date) -> None:
    for day in as_of:
        build_night(wh, day, raw_dir=raw)


def mart(wh: Path, name: str, as_of: dt.date) -> list[dict]:
    """Every column of a mart's rows for one as-of date, as dicts (fetchall keeps DECIMAL as Decimal)."""
    with db.read_only(wh) as con:
        cur = con.execute(f'select * from "{name}" where as_of = ? order by {ORDER[name]}', [as_of])
        columns = [d[0] for d in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def query(wh: Path, sql: str, params: list | None = None) -> list[tuple]:
    with db.read_only(wh) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def unit(tmp_path_factory) -> Path:
    """The unit's warehouse, reconciled as of A and then as of B. Read-only: tests that rerun copy it."""
    root = tmp_path_factory.mktemp("marts")
    write_unit(root / "raw")
    run(root / "raw", root / "w.duckdb", AS_OF_A, AS_OF_B)
    return root


EXPECTED = {
    "execution_by_project": expected_projects,
    "execution_by_unit": expected_units,
    "execution_by_quarter": expected_quarters,
}
ALL_PAYS = H1 + H2


# ---------------------------------------------------------------------------------------------------------------
# execution_by_project, execution_by_unit, execution_by_quarter: every column, two as-of dates side by side
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", [AS_OF_A, AS_OF_B], ids=["as_of_06-30", "as_of_12-31"])
@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_column_of_the_mart(unit: Path, name: str, as_of: dt.date):
    expected = EXPECTED[name](ALL_PAYS, REFUNDS, as_of)
    got = mart(unit / "w.duckdb", name, as_of)
    assert [list(r) for r in got] == [list(r) for r in expected]  # the same columns, in the same order
    assert got == expected


def test_contract_columns_are_present(unit: Path):
    contract = {
        "execution_by_project": "fiscal_year, as_of, agency_code, pro_code, pro_name, cur_amt, paid_current, "
        "execution_rate, carryover_amt, paid_carryover, total_execution_rate, squeeze_amt",
        "execution_by_unit": "fiscal_year, as_of, agency_code, agency_name, cur_amt, paid_current, execution_rate, "
        "carryover_amt, paid_carryover, unbudgeted_amt",
        "execution_by_quarter": "fiscal_year, as_of, agency_code, pro_code, quarter, plan_amt, plan_cum, paid_amt, "
        "paid_cum, gap_pp",
    }
    for name, columns in contract.items():
        types = dict(query(unit / "w.duckdb", f'select column_name, column_type from (describe "{name}")'))
        assert set(columns.split(", ")) <= set(types), name
        for column, dtype in types.items():
            if column.endswith("_amt") or column.startswith(("paid_", "plan_cum", "balance_")):
                if not column.endswith("_pct"):
                    assert dtype == "DECIMAL(18,2)", (name, column, dtype)
            if column.endswith("execution_rate"):
                assert dtype == "DECIMAL(24,12)", (name, column, dtype)


def test_two_as_of_dates_are_kept_side_by_side(unit: Path):
    wh = unit / "w.duckdb"
    counts = {
        name: query(wh, f'select as_of, count(*) from "{name}" group by as_of order by as_of') for name in EXPECTED
    }
    assert counts == {
        "execution_by_project": [(AS_OF_A, 4), (AS_OF_B, 4)],
        "execution_by_unit": [(AS_OF_A, 2), (AS_OF_B, 2)],
        "execution_by_quarter": [(AS_OF_A, 16), (AS_OF_B, 16)],
    }
    assert query(
        wh, "select as_of, paid_current, squeeze_amt from execution_by_project where pro_code = 'P1' order by 1"
    ) == [
        (AS_OF_A, D("3465.00"), D("465.00")),
        (AS_OF_B, D("3365.00"), D("365.00")),
    ]


def test_rates_round_half_up_on_exact_boundaries(unit: Path):
    """Hand-checked values of the boundary cases, and proof that binary-float rounding would get them wrong."""
    wh = unit / "w.duckdb"
    rate = "select execution_rate, execution_rate_pct from {} where as_of = ? and {}"
    # P1 as of 06-30: 3,000.00 + 465.00 of 10,000.00 = 34.65 % -> 34.7
    assert query(wh, rate.format("execution_by_project", "pro_code = 'P1'"), [AS_OF_A]) == [(D("0.3465"), D("34.7"))]
    assert round(3465 / 10000 * 100, 1) == 34.6
    # P2 as of 12-31: 7,930.00 of 20,000.00 = 39.65 % -> 39.7
    assert query(wh, rate.format("execution_by_project", "pro_code = 'P2'"), [AS_OF_B]) == [(D("0.3965"), D("39.7"))]
    assert round(7930 / 20000 * 100, 1) == 39.6
    # unit 990001 as of 06-30: 10,395.00 of 30,000.00 = 34.65 % -> 34.7 (the unbudgeted 300.00 not included)
    assert query(wh, rate.format("execution_by_unit", "agency_code = '990001'"), [AS_OF_A]) == [
        (D("0.3465"), D("34.7"))
    ]
    gap = "select gap_pp from execution_by_quarter where as_of = ? and pro_code = ? and quarter = ?"
    # P1 Q2 as of 06-30: plan 4,699.50 - paid 3,465.00 = 1,234.50 of 10,000.00 = 12.345 pp -> 12.35
    assert query(wh, gap, [AS_OF_A, "P1", 2]) == [(D("12.35"),)]
    # P4 Q1 as of 06-30: plan 50.25 - paid 0 of 5,000.00 = 1.005 pp -> 1.01
    assert query(wh, gap, [AS_OF_A, "P4", 1]) == [(D("1.01"),)]
    assert round(50.25 / 5000 * 100, 2) == 1.0
    # P1 total-funds rate as of 06-30: 4,715.00 of 12,000.00 = 0.392916666666… -> 0.392916666667
    assert query(
        wh, "select total_execution_rate from execution_by_project where as_of = ? and pro_code = 'P1'", [AS_OF_A]
    ) == [(D("0.392916666667"),)]


def test_a_zero_budget_project_has_null_rates(unit: Path):
    wh = unit / "w.duckdb"
    assert query(
        wh,
        "select as_of, cur_amt, paid_current, execution_rate, execution_rate_pct, total_execution_rate,"
        " total_execution_rate_pct, balance_carryover from execution_by_project where pro_code = 'P3' order by 1",
    ) == [
        (AS_OF_A, D("0.00"), D("0.00"), None, None, D("0.4"), D("40.0"), D("300.00")),
        (AS_OF_B, D("0.00"), D("0.00"), None, None, D("0.4"), D("40.0"), D("300.00")),
    ]
    assert query(
        wh,
        "select distinct plan_amt, plan_cum, gap_pp, plan_cum_pct, paid_cum_pct from execution_by_quarter"
        " where pro_code = 'P3'",
    ) == [(None, D("0.00"), None, None, None)]


def test_the_refund_counts_in_the_quarter_of_its_date(unit: Path):
    assert query(
        unit / "w.duckdb",
        "select quarter, paid_amt, paid_cum, gap_pp from execution_by_quarter where as_of = ? and pro_code = 'P1'"
        " order by quarter",
        [AS_OF_B],
    ) == [
        (1, D("3000.00"), D("3000.00"), D("-10.00")),
        (2, D("465.00"), D("3465.00"), D("12.35")),
        (3, D("-100.00"), D("3365.00"), D("43.35")),
        (4, D("0.00"), D("3365.00"), D("66.35")),
    ]


def test_a_rerun_for_the_same_as_of_date_replaces_its_rows(unit: Path, tmp_path: Path):
    shutil.copytree(unit, tmp_path / "u")
    raw, wh = tmp_path / "u" / "raw", tmp_path / "u" / "w.duckdb"
    before = {name: (mart(wh, name, AS_OF_A), mart(wh, name, AS_OF_B)) for name in EXPECTED}

    run(raw, wh, AS_OF_A)  # nothing new: the same rows, not twice
    for name in EXPECTED:
        assert (mart(wh, name, AS_OF_A), mart(wh, name, AS_OF_B)) == before[name]

    write_payments(raw, "pay_2025_late.csv", LATE)  # a late export with a June payment
    run(raw, wh, AS_OF_A)
    for name, reckon in EXPECTED.items():
        assert mart(wh, name, AS_OF_A) == reckon(ALL_PAYS + LATE, REFUNDS, AS_OF_A)
        assert mart(wh, name, AS_OF_B) == before[name][1]  # the other date's rows stay as they were
    assert query(wh, "select as_of, count(*) from execution_by_project group by 1 order by 1") == [
        (AS_OF_A, 4),
        (AS_OF_B, 4),
    ]
    assert query(
        wh,
        "select paid_current, execution_rate_pct from execution_by_project where as_of = ? and pro_code = 'P1'",
        [AS_OF_A],
    ) == [(D("3965.00"), D("39.7"))]


# ---------------------------------------------------------------------------------------------------------------
# payments and traceability
# ---------------------------------------------------------------------------------------------------------------


def test_payments_one_row_per_counted_voucher_with_refunds_and_money(unit: Path):
    rows = query(
        unit / "w.duckdb",
        "select pay_cert_no, pay_date, fiscal_year, agency_code, agency_name, pro_code, pro_name, bgt_doc_no,"
        " money, pay_amt, refunded_amt, net_amt, payee_acct_name, payee_acct_no, use_des, source_file, source_row"
        " from payments order by pay_cert_no",
    )
    refunded = {r.ori: D(r.amount) for r in REFUNDS}
    rows_of = {p.no: ("payments/pay_2025_h1.csv", i + 3) for i, p in enumerate(H1)}
    rows_of |= {p.no: ("payments/pay_2025_h2.csv", i + 3) for i, p in enumerate(H2) if p.no not in rows_of}
    expected = [
        (
            p.no,
            p.day,
            p.day.year,
            p.agency,
            UNIT_NAMES[p.agency],
            p.pro,
            p.pro_name,
            p.doc,
            p.money,
            D(p.amount),
            refunded.get(p.no, D("0.00")),
            D(p.amount) - refunded.get(p.no, D("0.00")),
            "示例建设工程有限公司",
            "6222020200112233445",
            p.use,
            *rows_of[p.no],
        )
        for p in sorted(vouchers(ALL_PAYS).values(), key=lambda p: p.no)
        if p.counted
    ]
    assert rows == expected
    money = {r[0]: r[8] for r in rows}
    assert money["PV102"] == "current"  # 指标来源 当年预算, 〔2025〕
    assert money["PV103"] == "carryover"  # 〔2024〕 paid in 2025
    assert money["PV104"] == "carryover"  # 指标来源 上年结转
    assert "PV105" not in money  # voided
    assert query(unit / "w.duckdb", "select count(*), count(distinct pay_cert_no) from payments") == [(9, 9)]
    assert query(
        unit / "w.duckdb", "select refunded_amt, net_amt, refund_count from payments where pay_cert_no = 'PV102'"
    ) == [(D("100.00"), D("365.00"), 1)]


def test_project_rows_trace_to_their_vouchers(unit: Path):
    """One join from execution_by_project to payments gives the vouchers whose net_amt adds up to what was paid."""
    rows = query(
        unit / "w.duckdb",
        "select e.pro_code, e.paid_current, e.paid_carryover, count(p.pay_cert_no),"
        " coalesce(sum(p.net_amt), 0),"
        " coalesce(sum(p.net_amt) filter (where p.money = 'current'), 0),"
        " coalesce(sum(p.net_amt) filter (where p.money = 'carryover'), 0)"
        " from execution_by_project as e"
        " left join payments as p"
        " on p.fiscal_year = e.fiscal_year and p.agency_code = e.agency_code and p.pro_code = e.pro_code"
        " where e.as_of = ? group by all order by 1",
        [AS_OF_B],
    )
    assert rows == [
        ("P1", D("3365.00"), D("1250.00"), 4, D("4615.00"), D("3365.00"), D("1250.00")),
        ("P2", D("7930.00"), D("0.00"), 2, D("7930.00"), D("7930.00"), D("0.00")),
        ("P3", D("0.00"), D("200.00"), 1, D("200.00"), D("0.00"), D("200.00")),
        ("P4", D("1000.00"), D("0.00"), 1, D("1000.00"), D("1000.00"), D("0.00")),
    ]
    for _, paid_current, paid_carryover, _, net, net_current, net_carryover in rows:
        assert net == paid_current + paid_carryover
        assert (net_current, net_carryover) == (paid_current, paid_carryover)
    # the unbudgeted voucher is in payments but in no project row: it is the unit's unbudgeted_amt
    assert query(
        unit / "w.duckdb",
        "select p.pay_cert_no, p.net_amt, u.unbudgeted_amt from payments as p"
        " inner join execution_by_unit as u on u.agency_code = p.agency_code and u.as_of = ?"
        " where not exists (select 1 from budget_lines as b where b.agency_code = p.agency_code"
        " and b.pro_code = p.pro_code and b.fiscal_year = p.fiscal_year)",
        [AS_OF_B],
    ) == [("PV901", D("300.00"), D("300.00"))]


# ---------------------------------------------------------------------------------------------------------------
# self_assessment_funds: the 自评表 money block; behind_plan: the projects behind their quarterly plan
# ---------------------------------------------------------------------------------------------------------------

TEN, FIVE, FIFTEEN = D("10"), D("5"), D("15")
FUNDS_ROWS = ("年度资金总额", "其中：当年财政拨款", "上年结转资金", "其他资金")


def bounded_score(weight: Decimal, paid: Decimal, budget: Decimal) -> Decimal | None:
    """得分 = 分值 × 执行率 within [0, 分值], half-up to 0.01, from the exact fraction."""
    if budget == 0:
        return None
    points = min(max(Fraction(weight) * Fraction(paid) / Fraction(budget), Fraction(0)), Fraction(weight))
    return half_up(D(points.numerator), D(points.denominator), 2)


def expected_self_assessment(
    pays: list[Pay], refunds: list[Refund], as_of: dt.date, weight: Decimal = TEN
) -> list[dict]:
    scopes = [("unit", "单位", u["agency_code"], u["agency_name"], u) for u in expected_units(pays, refunds, as_of)]
    scopes += [("project", "项目", p["pro_code"], p["pro_name"], p) for p in expected_projects(pays, refunds, as_of)]
    rows = []
    for kind, kind_zh, code, name, s in scopes:
        current = (s["reply_amt"], s["cur_amt"], s["paid_current"])
        carry = (s["carryover_amt"], s["carryover_amt"], s["paid_carryover"])
        other = (D("0.00"), D("0.00"), D("0.00"))
        total = tuple(a + b + c for a, b, c in zip(current, carry, other, strict=True))
        for row_no, (funds, (initial, budget, paid_amt)) in enumerate(
            zip(FUNDS_ROWS, (total, current, carry, other), strict=True), start=1
        ):
            rows.append(
                {
                    "fiscal_year": FISCAL_YEAR,
                    "as_of": as_of,
                    "agency_code": s["agency_code"],
                    "scope_kind": kind,
                    "scope_zh": kind_zh,
                    "scope_code": code,
                    "scope_name": name,
                    "row_no": row_no,
                    "funds": funds,
                    "is_total": row_no == 1,
                    "initial_amt": initial,
                    "budget_amt": budget,
                    "paid_amt": paid_amt,
                    "weight": weight if row_no == 1 else None,
                    "rate": half_up(paid_amt, budget, 12),
                    "rate_pct": half_up(paid_amt * 100, budget, 1),
                    "score": bounded_score(weight, paid_amt, budget) if row_no == 1 else None,
                }
            )
    return rows


SELF_ASSESSMENT_ORDER = "agency_code, scope_kind desc, scope_code, row_no"


@pytest.mark.parametrize("as_of", [AS_OF_A, AS_OF_B], ids=["as_of_06-30", "as_of_12-31"])
def test_every_column_of_self_assessment_funds(unit: Path, as_of: dt.date):
    with db.read_only(unit / "w.duckdb") as con:
        cur = con.execute(
            f"select * from self_assessment_funds where as_of = ? order by {SELF_ASSESSMENT_ORDER}", [as_of]
        )
        got = [dict(zip([d[0] for d in cur.description], row, strict=True)) for row in cur.fetchall()]
    expected = sorted(
        expected_self_assessment(ALL_PAYS, REFUNDS, as_of),
        key=lambda r: (r["agency_code"], r["scope_kind"] != "unit", r["scope_code"], r["row_no"]),
    )
    assert [list(r) for r in got] == [list(r) for r in expected]
    assert got == expected


def test_self_assessment_funds_by_hand(unit: Path):
    """P1 as of 06-30: 年初 9,000 + 2,000 结转; 全年 10,000 + 2,000; paid 3,465 current + 1,250 carry-over."""
    rows = query(
        unit / "w.duckdb",
        "select funds, initial_amt, budget_amt, paid_amt, weight, rate_pct, score from self_assessment_funds"
        " where as_of = ? and scope_code = 'P1' order by row_no",
        [AS_OF_A],
    )
    assert rows == [
        ("年度资金总额", D("11000.00"), D("12000.00"), D("4715.00"), D("10.0000"), D("39.3"), D("3.93")),
        ("其中：当年财政拨款", D("9000.00"), D("10000.00"), D("3465.00"), None, D("34.7"), None),
        ("上年结转资金", D("2000.00"), D("2000.00"), D("1250.00"), None, D("62.5"), None),
        ("其他资金", D("0.00"), D("0.00"), D("0.00"), None, None, None),
    ]


def test_self_assessment_weight_comes_from_the_reconcile_step(unit: Path, tmp_path: Path):
    shutil.copytree(unit, tmp_path / "u")
    with db.writer(tmp_path / "u" / "w.duckdb") as con:
        transform.reconcile(con, AS_OF_A, weight=D("7.5"))
    got = query(
        tmp_path / "u" / "w.duckdb",
        "select scope_code, weight, score from self_assessment_funds where as_of = ? and is_total order by 1",
        [AS_OF_A],
    )
    expected = {
        r["scope_code"]: bounded_score(D("7.5"), r["paid_amt"], r["budget_amt"])
        for r in expected_self_assessment(ALL_PAYS, REFUNDS, AS_OF_A)
        if r["is_total"]
    }
    assert {code: score for code, _, score in got} == expected
    assert {w for _, w, _ in got} == {D("7.5")}
    with pytest.raises(ValueError, match="weight"):
        with db.writer(tmp_path / "x.duckdb") as con:
            transform.reconcile(con, AS_OF_A, weight=D("0"))


@pytest.mark.parametrize(
    ("weight", "num", "den", "expected"),
    [
        ("10", "3525.00", "10000.00", D("3.53")),  # 3.525 exactly: half-up (float gives 3.52)
        ("10", "3524.99", "10000.00", D("3.52")),
        ("10", "-3525.00", "10000.00", D("0.00")),  # never below 0
        ("10", "150.00", "100.00", D("10.00")),  # never above 分值
        ("7.125", "150.00", "100.00", D("7.13")),  # 分值 itself half-up
        ("20", "0.35", "1.00", D("7.00")),
        ("10", "0.05", "0.40", D("1.25")),  # 1.25 exactly
        ("10", "1.00", "0.00", None),
    ],
)
def test_bounded_score_rounds_half_up_within_the_weight(unit: Path, weight, num, den, expected):
    assert round(10 * 0.3525, 2) == 3.52  # what float rounding would have shown
    got = query(
        unit / "w.duckdb",
        "select bounded_score(cast(? as decimal(9, 4)), cast(? as decimal(18, 2)), cast(? as decimal(18, 2)))",
        [weight, num, den],
    )
    assert got == [(expected,)]


def expected_behind_plan(as_of: dt.date, warning: Decimal = FIVE, critical: Decimal = FIFTEEN) -> list[dict]:
    rows = []
    quarters = expected_quarters(ALL_PAYS, REFUNDS, as_of)
    for line in LINES:
        if not any(line.plans):
            continue
        q = max((r for r in quarters if r["pro_code"] == line.pro and r["is_complete"]), key=lambda r: r["quarter"])
        gap = q["plan_cum"] - q["paid_cum"]
        cur = q["cur_amt"]
        severity = None
        if cur > 0 and gap * 100 >= critical * cur:
            severity = "critical"
        elif cur > 0 and gap * 100 >= warning * cur:
            severity = "warning"
        rows.append(
            {
                "pro_code": line.pro,
                "basis": "quarter_plan",
                "quarter": q["quarter"],
                "target_amt": q["plan_cum"],
                "paid_cum": q["paid_cum"],
                "gap_amt": gap,
                "gap_pp": half_up(gap * 100, cur, 2),
                "severity": severity,
            }
        )
    return rows


BEHIND = (
    "select pro_code, basis, quarter, target_amt, paid_cum, gap_amt, gap_pp, severity from behind_plan"
    " where as_of = ? order by pro_code, basis"
)


@pytest.mark.parametrize("as_of", [AS_OF_A, AS_OF_B], ids=["as_of_06-30", "as_of_12-31"])
def test_behind_plan_at_the_latest_completed_quarter(unit: Path, as_of: dt.date):
    got = query(unit / "w.duckdb", BEHIND, [as_of])
    assert got == [tuple(r.values()) for r in expected_behind_plan(as_of)]


def test_behind_plan_by_hand_and_by_the_sessions_thresholds(unit: Path):
    """As of 06-30 (Q2): P1 1,234.50 of 10,000 = 12.35 pp (warning); P2 3,070 of 20,000 = 15.35 pp (critical);
    P4 1,500 of 5,000 = 30 pp (critical). With thresholds 13 / 16: P1 is not behind, P2 only a warning."""
    wh = unit / "w.duckdb"
    severities = "select pro_code, gap_pp, severity from behind_plan where as_of = ? order by pro_code"
    assert query(wh, severities, [AS_OF_A]) == [
        ("P1", D("12.35"), "warning"),
        ("P2", D("15.35"), "critical"),
        ("P4", D("30.00"), "critical"),
    ]
    with db.read_only(wh) as con:
        con.execute("set variable behind_warning_pp = '13'")
        con.execute("set variable behind_critical_pp = '16'")
        assert con.execute(severities, [AS_OF_A]).fetchall() == [
            ("P1", D("12.35"), None),
            ("P2", D("15.35"), "warning"),
            ("P4", D("30.00"), "critical"),
        ]
        assert con.execute(BEHIND, [AS_OF_A]).fetchall() == [
            tuple(r.values()) for r in expected_behind_plan(AS_OF_A, D("13"), D("16"))
        ]


def test_behind_plan_against_elapsed_time_when_configured(unit: Path):
    """P3 has no plan: judged against 序时进度 only when elapsed_baseline is on; its cur_amt is 0, so never behind."""
    with db.read_only(unit / "w.duckdb") as con:
        elapsed = "select pro_code, target_amt, paid_cum, gap_pp, severity from behind_plan where basis = 'elapsed'"
        assert con.execute(elapsed).fetchall() == []
        con.execute("set variable elapsed_baseline = true")
        assert con.execute(elapsed + " and as_of = ?", [AS_OF_A]).fetchall() == [
            ("P3", D("0.00"), D("0.00"), None, None)
        ]
