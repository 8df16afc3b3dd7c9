"""The reconciliation rules (sql/rules/*.sql), one test group per rule of sql/rules/registry.csv.

Each group builds real export files in raw/{payments,refunds,budget}/, runs the whole pipeline into a real DuckDB
file and checks: a passing case (the rule returns no rows for clean input), a failing case (exactly the expected
rows, exact Decimal amounts), the rule relation's output columns, and that its `exceptions` rows carry the
registry's kind, severity, category and message. Amounts are read with fetchall(): DECIMAL stays Decimal.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from flows.build import build_night
from flows.warehouse import db

D = Decimal
REGISTRY_CSV = Path(__file__).resolve().parent.parent / "sql" / "rules" / "registry.csv"

# ---------------------------------------------------------------------------------------------------------------
# Input builders: small, real CSV exports
# ---------------------------------------------------------------------------------------------------------------

PAY_HEADER = [
    "支付凭证号",
    "支付日期",
    "预算单位编码",
    "预算单位名称",
    "项目编码",
    "项目名称",
    "指标文号",
    "指标来源",
    "收款人全称",
    "收款人账号",
    "支付金额",
    "用途",
    "支付状态",
    "合同编号",
    "原支付凭证号",
]
REFUND_HEADER = ["退回凭证号", "原支付凭证号", "退回日期", "退回金额", "退回原因"]
BUDGET_HEADER = [
    "项目编码",
    "项目名称",
    "预算单位编码",
    "年初预算数",
    "调整预算数",
    "全年预算数",
    "上年结转数",
    "一季度",
    "二季度",
    "三季度",
    "四季度",
]
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


def write_csv(path: Path, titles: list[str], header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        for title in titles:
            w.writerow([title])
        w.writerow(header)
        w.writerows(rows)
    return path


def write_payments(raw: Path, name: str, rows: list[list[str]], *, total: str | None = None) -> Path:
    """A payment export: one title row, the header (row 2), data from row 3, optionally a 合计 row."""
    if total is not None:
        totals = [""] * len(PAY_HEADER)
        totals[0], totals[PAY_HEADER.index("支付金额")] = "合计", total
        rows = [*rows, totals]
    return write_csv(raw / "payments" / name, ["国库集中支付明细查询"], PAY_HEADER, rows)


def write_refunds(raw: Path, name: str, rows: list[list[str]]) -> Path:
    """A refund-notice export: one title row, the header (row 2), data from row 3."""
    return write_csv(raw / "refunds" / name, ["国库集中支付资金退回"], REFUND_HEADER, rows)


def write_budget(
    raw: Path, name: str, rows: list[list[str]], *, yuan: bool = True, total: list[str] | None = None
) -> Path:
    """A 2025 budget sheet: title rows (row 1, and 金额单位：元 on row 2 when yuan), header, data after it."""
    titles = ["示例单位2025年项目预算表"] + (["金额单位：元"] if yuan else [])
    return write_csv(raw / "budget" / name, titles, BUDGET_HEADER, rows + ([total] if total else []))


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


def test_registry_matches_the_contract():
    """CONTRACT.md section 3: severities of the exception kinds; every registry kind has a rule file."""
    reg = registry()
    assert list(reg) == [
        "unbudgeted",
        "duplicate_conflict",
        "overspend",
        "refund_orphan",
        "control_total_mismatch",
        "plan_sum_mismatch",
        "carryover_squeeze",
        "carryover_lag",
        "unknown_status",
        "voided",
    ]
    severities = {kind: severity for kind, (severity, _, _) in reg.items()}
    assert severities == {
        "unbudgeted": "fatal",
        "duplicate_conflict": "fatal",
        "overspend": "fatal",
        "refund_orphan": "fatal",
        "control_total_mismatch": "fatal",
        "plan_sum_mismatch": "warning",
        "carryover_squeeze": "warning",
        "carryover_lag": "warning",
        "unknown_status": "warning",
        "voided": "info",
    }
    for kind in reg:
        assert (REGISTRY_CSV.parent / f"rule_{kind}.sql").is_file()


# ---------------------------------------------------------------------------------------------------------------
# unbudgeted
# ---------------------------------------------------------------------------------------------------------------


class TestUnbudgeted:
    AS_OF = dt.date(2025, 9, 30)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("unbudgeted"),
            self.AS_OF,
            budget=[line("P1", "10000.00"), line("P2", "5000.00", agency="990002")],
            payments=[
                pay("PV1", "2025-02-01", "100.00", pro="P1"),  # budgeted
                pay("PV2", "2025-03-01", "300.00", pro="P9"),  # no budget line at all
                pay("PV3", "2025-04-01", "200.00", pro="P2"),  # P2 is budgeted for 990002, not 990001
                pay("PV4", "2025-12-20", "999.00", pro="P9"),  # after the as-of date
            ],
            refunds=[["RF1", "PV2", "2025-05-01", "50.00", "多付"]],
        )

    def test_passes_when_every_payment_has_a_budget_line(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.AS_OF,
            budget=[line("P1", "10000.00"), line("P2", "5000.00", agency="990002")],
            payments=[
                pay("PV1", "2025-02-01", "100.00"),
                pay("PV2", "2025-03-01", "300.00", pro="P2", agency="990002"),
            ],
        )
        assert findings(wh, "unbudgeted", self.AS_OF) == []

    def test_fails_per_payment_net_of_refunds_as_of(self, failing: Path):
        assert findings(failing, "unbudgeted", self.AS_OF) == [
            (2025, "990001", "P2", "PV3", D("200.00"), "payments/a.csv", 5),
            (2025, "990001", "P9", "PV2", D("250.00"), "payments/a.csv", 4),
        ]
        assert "P9" in details(failing, "unbudgeted", self.AS_OF)["PV2"]
        # never counted as a project's: P1 has only its own payment; the unit shows them apart
        assert query(failing, "select pro_code, paid_current from execution_by_project order by 1") == [
            ("P1", D("100.00")),
            ("P2", D("0.00")),
        ]
        assert query(failing, "select agency_code, paid_current, unbudgeted_amt from execution_by_unit order by 1") == [
            ("990001", D("100.00"), D("450.00")),
            ("990002", D("0.00"), D("0.00")),
        ]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "unbudgeted") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "unbudgeted", self.AS_OF, 2)

    def test_next_year_refund_of_a_budgeted_voucher_is_not_unbudgeted(self, tmp_path: Path):
        as_of = dt.date(2026, 1, 31)
        wh = build(
            tmp_path,
            as_of,
            budget=[line("P1", "1000.00")],
            payments=[pay("PV1", "2025-11-01", "100.00")],
            refunds=[["RF1", "PV1", "2026-01-10", "10.00", "多付"]],
        )
        assert findings(wh, "unbudgeted", as_of) == []
        assert query(wh, "select fiscal_year, unbudgeted_amt from execution_by_unit where unbudgeted_amt <> 0") == []


# ---------------------------------------------------------------------------------------------------------------
# duplicate_conflict
# ---------------------------------------------------------------------------------------------------------------


class TestDuplicateConflict:
    AS_OF = dt.date(2025, 12, 31)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        root = tmp_path_factory.mktemp("duplicate_conflict")
        raw = root / "raw"
        write_budget(raw, "b.csv", [line("P1", "10000.00"), line("P2", "10000.00")])
        # a.csv sorts first by name but is the later export: its latest pay_date (03-01) is later than b.csv's
        write_payments(
            raw,
            "a.csv",
            [
                pay("PV1", "2025-01-05", "150.00"),
                pay("PV2", "2025-01-06", "200.00"),
                pay("PV3", "2025-01-07", "300.00"),
                pay("PV8", "2025-03-01", "10.00"),
            ],
        )
        write_payments(
            raw,
            "b.csv",
            [
                pay("PV1", "2025-01-05", "100.00"),  # other amount
                pay("PV2", "2025-01-06", "200.00", pro="P2"),  # other project
                pay("PV3", "2025-01-08", "300.00"),  # other date
                pay("PV9", "2025-01-08", "10.00"),  # only here: loaded from b.csv
            ],
        )
        return run(raw, root / "w.duckdb", self.AS_OF)

    def test_passes_for_identical_overlapping_exports(self, tmp_path: Path):
        raw = tmp_path / "raw"
        write_budget(raw, "b.csv", [line("P1", "10000.00")])
        write_payments(raw, "a.csv", [pay("PV1", "2025-01-05", "100.00"), pay("PV2", "2025-01-06", "200.00")])
        write_payments(raw, "b.csv", [pay("PV2", "2025-01-06", "200.00"), pay("PV3", "2025-01-09", "1,300.00")])
        wh = run(raw, tmp_path / "w.duckdb", self.AS_OF)
        assert findings(wh, "duplicate_conflict", self.AS_OF) == []
        assert query(wh, "select count(*), sum(pay_amt) from payments") == [(3, D("1600.00"))]

    def test_fails_once_per_losing_row_and_the_later_export_wins(self, failing: Path):
        assert findings(failing, "duplicate_conflict", self.AS_OF) == [
            (2025, "990001", "P1", "PV1", D("100.00"), "payments/b.csv", 3),
            (2025, "990001", "P1", "PV3", D("300.00"), "payments/b.csv", 5),
            (2025, "990001", "P2", "PV2", D("200.00"), "payments/b.csv", 4),
        ]
        assert query(
            failing, "select pay_cert_no, pay_date, pro_code, pay_amt, source_file from payments order by 1"
        ) == [
            ("PV1", dt.date(2025, 1, 5), "P1", D("150.00"), "payments/a.csv"),
            ("PV2", dt.date(2025, 1, 6), "P1", D("200.00"), "payments/a.csv"),
            ("PV3", dt.date(2025, 1, 7), "P1", D("300.00"), "payments/a.csv"),
            ("PV8", dt.date(2025, 3, 1), "P1", D("10.00"), "payments/a.csv"),
            ("PV9", dt.date(2025, 1, 8), "P1", D("10.00"), "payments/b.csv"),
        ]
        detail = details(failing, "duplicate_conflict", self.AS_OF)["PV1"]
        assert "b.csv" in detail and "a.csv" in detail and "100.00" in detail and "150.00" in detail

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "duplicate_conflict") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "duplicate_conflict", self.AS_OF, 3)


# ---------------------------------------------------------------------------------------------------------------
# overspend (current-year and carry-over money)
# ---------------------------------------------------------------------------------------------------------------


class TestOverspend:
    MARCH = dt.date(2025, 3, 31)
    APRIL = dt.date(2025, 4, 30)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("overspend"),
            self.MARCH,
            self.APRIL,
            budget=[line("P1", "1000.00", "120.00")],
            payments=[
                pay("PV1", "2025-02-01", "600.00"),
                pay("PV2", "2025-03-01", "500.00"),  # current: 1,100.00 > 1,000.00, crosses here
                pay("PV3", "2025-02-10", "100.00", doc=PRIOR_DOC),  # carry-over by 指标文号 year
                pay("PV4", "2025-03-10", "50.00", source="上年结转"),  # carry-over by 指标来源; 150 > 120
            ],
            refunds=[["RF1", "PV2", "2025-04-15", "150.00", "结算"]],  # brings current back to 950.00
        )

    def test_passes_when_spending_reaches_the_budget_exactly(self, tmp_path: Path):
        as_of = dt.date(2025, 12, 31)
        wh = build(
            tmp_path,
            as_of,
            budget=[line("P1", "1000.00", "120.00")],
            payments=[
                pay("PV1", "2025-02-01", "600.00"),
                pay("PV2", "2025-03-01", "400.00"),
                pay("PV3", "2025-02-10", "100.00", doc=PRIOR_DOC),
                pay("PV4", "2025-03-10", "20.00", source="结转资金"),
            ],
        )
        assert findings(wh, "overspend", as_of) == []

    def test_fails_on_the_crossing_voucher_with_the_excess(self, failing: Path):
        assert findings(failing, "overspend", self.MARCH) == [
            (2025, "990001", "P1", "PV2", D("100.00"), "payments/a.csv", 4),
            (2025, "990001", "P1", "PV4", D("30.00"), "payments/a.csv", 6),
        ]
        found = details(failing, "overspend", self.MARCH)
        assert "当年财政拨款" in found["PV2"] and "1100.00" in found["PV2"] and "100.00" in found["PV2"]
        assert "上年结转资金" in found["PV4"] and "150.00" in found["PV4"] and "30.00" in found["PV4"]

    def test_a_later_refund_ends_the_current_overspend_as_of_its_date(self, failing: Path):
        assert findings(failing, "overspend", self.APRIL) == [
            (2025, "990001", "P1", "PV4", D("30.00"), "payments/a.csv", 6)
        ]
        # the earlier as-of date keeps its own findings
        assert len(exception_rows(failing, "overspend", self.MARCH)) == 2

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "overspend") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "overspend", self.MARCH, 2)


# ---------------------------------------------------------------------------------------------------------------
# refund_orphan
# ---------------------------------------------------------------------------------------------------------------


class TestRefundOrphan:
    AS_OF = dt.date(2025, 6, 30)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("refund_orphan"),
            self.AS_OF,
            budget=[line("P1", "10000.00")],
            payments=[
                pay("PV1", "2025-01-05", "100.00"),
                pay("PV2", "2025-01-06", "50.00", status="已作废"),
                pay("PV7", "2025-01-08", "-30.00", ori="PV404"),  # inline refund of an unknown voucher
            ],
            refunds=[
                ["RF1", "PV405", "2025-02-01", "12.50", "多付"],  # unknown original
                ["RF2", "PV1", "2025-02-02", "-10.00", "结算"],  # known original: applied, not an orphan
                ["RF3", "PV2", "2025-02-03", "5.00", "多付"],  # original voided: not a counted payment
                ["RF4", "PV406", "2025-12-01", "7.00", "多付"],  # after the as-of date
            ],
        )

    def test_passes_when_every_refund_has_its_voucher(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.AS_OF,
            budget=[line("P1", "10000.00")],
            payments=[pay("PV1", "2025-01-05", "100.00"), pay("PV2", "2025-01-09", "-20.00", ori="PV1")],
            refunds=[["RF1", "PV1", "2025-02-01", "12.50", "多付"]],
        )
        assert findings(wh, "refund_orphan", self.AS_OF) == []
        assert query(wh, "select pay_cert_no, refunded_amt, net_amt from payments") == [("PV1", D("32.50"), D("67.50"))]

    def test_fails_once_per_orphan_refund_as_of(self, failing: Path):
        assert findings(failing, "refund_orphan", self.AS_OF) == [
            (2025, "990001", None, "PV404", D("30.00"), "payments/a.csv", 5),
            (2025, None, None, "PV2", D("5.00"), "refunds/r.csv", 5),
            (2025, None, None, "PV405", D("12.50"), "refunds/r.csv", 3),
        ]
        found = details(failing, "refund_orphan", self.AS_OF)
        assert "已作废或状态不明" in found["PV2"]
        assert "不在已载入的支付明细中" in found["PV405"]
        # orphans are kept, never applied; the known refund is applied
        assert query(failing, "select pay_cert_no, refunded_amt, net_amt from payments") == [
            ("PV1", D("10.00"), D("90.00"))
        ]
        assert query(failing, "select count(*) from raw_refunds") == [(4,)]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "refund_orphan") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "refund_orphan", self.AS_OF, 3)


# ---------------------------------------------------------------------------------------------------------------
# control_total_mismatch
# ---------------------------------------------------------------------------------------------------------------


class TestControlTotalMismatch:
    AS_OF = dt.date(2025, 12, 31)
    ROWS = (
        pay("PV1", "2025-01-05", "100.00"),
        pay("PV2", "2025-01-06", "200.00"),
        pay("PV3", "2025-01-07", "50.00", status="已作废"),  # voided rows count in the control total
    )

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("control_total"),
            self.AS_OF,
            budget=[line("P1", "10000.00")],
            payments=self.ROWS,
            total="340.00",
        )

    def test_passes_when_the_totals_row_includes_voided_and_duplicate_rows(self, tmp_path: Path):
        raw = tmp_path / "raw"
        write_budget(raw, "b.csv", [line("P1", "10000.00")], total=["合计", "", "", "10000.00", "0", "10000.00", "0"])
        write_payments(raw, "a.csv", list(self.ROWS), total="350.00")
        # an overlapping export: its repeated PV2 is a duplicate row, still in its totals row
        write_payments(
            raw, "b.csv", [pay("PV2", "2025-01-06", "200.00"), pay("PV4", "2025-02-01", "1.50")], total="201.50"
        )
        wh = run(raw, tmp_path / "w.duckdb", self.AS_OF)
        assert findings(wh, "control_total_mismatch", self.AS_OF) == []
        assert query(wh, "select file_name, control_total, parsed_total from source_files order by 1") == [
            ("budget/b.csv", D("10000.00"), D("10000.00")),
            ("payments/a.csv", D("350.00"), D("350.00")),
            ("payments/b.csv", D("201.50"), D("201.50")),
        ]

    def test_fails_once_per_file_with_the_difference(self, failing: Path):
        assert findings(failing, "control_total_mismatch", self.AS_OF) == [
            (2025, "990001", None, None, D("-10.00"), "payments/a.csv", None)
        ]
        detail = details(failing, "control_total_mismatch", self.AS_OF)["payments/a.csv"]
        assert "340.00" in detail and "350.00" in detail and "-10.00" in detail

    def test_fails_for_a_budget_sheet_on_its_full_year_total(self, tmp_path: Path):
        raw = tmp_path / "raw"
        write_budget(
            raw,
            "b.csv",
            [line("P1", "10000.00"), line("P2", "5000.00")],
            total=["合计", "", "", "15000.00", "0", "16000.00", "0"],
        )
        wh = run(raw, tmp_path / "w.duckdb", self.AS_OF)
        rows = findings(wh, "control_total_mismatch", self.AS_OF)
        assert [(fy, pro, no, amount, f, r) for fy, _agency, pro, no, amount, f, r in rows] == [
            (2025, None, None, D("1000.00"), "budget/b.csv", None)
        ]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "control_total_mismatch") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "control_total_mismatch", self.AS_OF, 1)


# ---------------------------------------------------------------------------------------------------------------
# plan_sum_mismatch
# ---------------------------------------------------------------------------------------------------------------


class TestPlanSumMismatch:
    AS_OF = dt.date(2025, 12, 31)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("plan_sum"),
            self.AS_OF,
            budget=[
                line("P1", "10000.00", plans=("2500.00", "2500.00", "2500.00", "2400.00")),
                line("P2", "5000.00", plans=("3000.00", "", "", "")),
                line("P3", "8000.00"),  # no plan: nothing to compare
            ],
        )

    def test_passes_when_the_plan_adds_up_or_is_absent(self, tmp_path: Path):
        raw = tmp_path / "raw"
        write_budget(
            raw,
            "b.csv",
            [
                line("P1", "10000.00", plans=("2500.00", "2500.00", "2500.00", "2500.00")),
                line("P2", "5000.00"),
            ],
        )
        # a sheet without a unit marker is in 万元: 1 万元 = 0.25 + 0.25 + 0.3 + 0.2
        write_budget(raw, "c.csv", [line("P5", "1", plans=("0.25", "0.25", "0.3", "0.2"), agency="990002")], yuan=False)
        wh = run(raw, tmp_path / "w.duckdb", self.AS_OF)
        assert findings(wh, "plan_sum_mismatch", self.AS_OF) == []
        assert query(wh, "select cur_amt, plan_q3 from budget_lines where pro_code = 'P5'") == [
            (D("10000.00"), D("3000.00"))
        ]

    def test_fails_once_per_line_with_plan_minus_budget(self, failing: Path):
        assert findings(failing, "plan_sum_mismatch", self.AS_OF) == [
            (2025, "990001", "P1", None, D("-100.00"), "budget/b.csv", 4),
            (2025, "990001", "P2", None, D("-2000.00"), "budget/b.csv", 5),
        ]
        detail = details(failing, "plan_sum_mismatch", self.AS_OF)["P1"]
        assert "9900.00" in detail and "10000.00" in detail

    def test_output_column_names(self, failing: Path):
        assert [name for name, _ in rule_columns(failing, "plan_sum_mismatch")] == [n for n, _ in STANDARD_COLUMNS]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "plan_sum_mismatch") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "plan_sum_mismatch", self.AS_OF, 2)


# ---------------------------------------------------------------------------------------------------------------
# carryover_squeeze: prior_year_text and carryover_excess
# ---------------------------------------------------------------------------------------------------------------

SQUEEZE_COLUMNS = "fiscal_year, agency_code, pro_code, pay_cert_no, amount, rule, evidence"


class TestCarryoverSqueeze:
    APRIL = dt.date(2025, 4, 30)  # before the refund of PV1
    JUNE = dt.date(2025, 6, 30)  # after it

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("squeeze"),
            self.APRIL,
            self.JUNE,
            budget=[line("P1", "100000.00", "500.00")],
            payments=[
                pay("PV1", "2025-03-01", "1000.00", use="2024年度工程尾款"),
                pay("PV2", "2025-03-02", "200.00", use="支付上年度欠款"),
                pay("PV3", "2025-03-03", "300.00", use="", contract="HT-2024-015"),  # 用途 blank
                pay("PV4", "2025-03-04", "400.00", pro="P9", use="去年维修费"),  # unbudgeted ones count too
                # carry-over money may pay prior-year obligations: no squeeze
                pay("PV5", "2025-03-05", "500.00", doc=PRIOR_DOC, use="2024年度工程尾款"),
                # this year's year, this year's contract: no squeeze
                pay("PV6", "2025-03-06", "600.00", use="2025年进度款", contract="HT-2025-001"),
                pay("PV7", "2025-08-01", "700.00", use="上年尾款"),  # after both as-of dates
            ],
            refunds=[["RF1", "PV1", "2025-05-01", "100.00", "结算"]],
        )

    @pytest.fixture(scope="class")
    def excess(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("squeeze_excess"),
            self.JUNE,
            budget=[line("P1", "100000.00", "120.00")],
            payments=[
                pay("PV1", "2025-03-01", "100.00", doc=PRIOR_DOC),
                pay("PV2", "2025-04-01", "50.00", source="上年结转"),  # 150.00 > 120.00: crosses here
            ],
        )

    def test_passes_for_current_year_purposes_and_carryover_within_its_amount(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.JUNE,
            budget=[line("P1", "100000.00", "500.00")],
            payments=[
                pay("PV1", "2025-03-01", "1000.00", use="2025年度进度款", contract="HT-2025-007"),
                pay("PV2", "2025-03-02", "200.00", use="本年度设备采购"),
                pay("PV3", "2025-03-03", "500.00", doc=PRIOR_DOC, use="2024年度工程尾款"),  # exactly 500.00
            ],
        )
        assert findings(wh, "carryover_squeeze", self.JUNE) == []

    def test_prior_year_text_amount_is_net_as_of_with_evidence(self, failing: Path):
        expected = [
            (
                2025,
                "990001",
                "P1",
                "PV1",
                D("900.00"),
                "prior_year_text",
                "用途「2024年度工程尾款」含以前年度「2024年」",
            ),
            (2025, "990001", "P1", "PV2", D("200.00"), "prior_year_text", "用途「支付上年度欠款」含「上年度」"),
            (2025, "990001", "P1", "PV3", D("300.00"), "prior_year_text", "合同编号「HT-2024-015」含以前年度 2024"),
            (2025, "990001", "P9", "PV4", D("400.00"), "prior_year_text", "用途「去年维修费」含「去年」"),
        ]
        assert rule_rows(failing, "carryover_squeeze", self.JUNE, SQUEEZE_COLUMNS) == expected
        april = rule_rows(failing, "carryover_squeeze", self.APRIL, SQUEEZE_COLUMNS)
        assert april == [(*expected[0][:4], D("1000.00"), *expected[0][5:]), *expected[1:]]
        # the exceptions rows, the carryover_squeeze mart and the project's squeeze_amt agree
        assert exception_rows(failing, "carryover_squeeze", self.JUNE, "pay_cert_no, amount, source_row") == [
            ("PV1", D("900.00"), 3),
            ("PV2", D("200.00"), 4),
            ("PV3", D("300.00"), 5),
            ("PV4", D("400.00"), 6),
        ]
        assert details(failing, "carryover_squeeze", self.JUNE)["PV1"] == (
            "凭证 PV1 挤占 900.00 元：用途「2024年度工程尾款」含以前年度「2024年」"
        )
        assert (
            query(failing, f"select {SQUEEZE_COLUMNS} from carryover_squeeze where as_of = ? order by all", [self.JUNE])
            == expected
        )
        # P1's squeeze (PV4 is unbudgeted: a finding, but in no project row)
        assert query(failing, "select as_of, squeeze_amt, squeeze_count from execution_by_project order by as_of") == [
            (self.APRIL, D("1500.00"), 3),
            (self.JUNE, D("1400.00"), 3),
        ]

    def test_carryover_excess_on_the_crossing_voucher_with_balance_arithmetic(self, excess: Path):
        assert rule_rows(excess, "carryover_squeeze", self.JUNE, SQUEEZE_COLUMNS) == [
            (
                2025,
                "990001",
                "P1",
                "PV2",
                D("30.00"),
                "carryover_excess",
                "上年结转数 120.00 元；截至 2025-06-30 结转资金净支出 150.00 元；超出 30.00 元，"
                "本笔（净额 50.00 元）占 30.00 元",
            )
        ]
        assert exception_rows(excess, "carryover_squeeze", self.JUNE) == [
            (2025, "990001", "P1", "PV2", D("30.00"), "payments/a.csv", 4)
        ]
        # also an overspend, of the same amount
        assert exception_rows(excess, "overspend", self.JUNE, "pay_cert_no, amount") == [("PV2", D("30.00"))]

    def test_carryover_excess_adds_up_to_the_project_excess(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.JUNE,
            budget=[line("P1", "100000.00", "120.00")],
            payments=[
                pay("PV1", "2025-03-01", "100.00", doc=PRIOR_DOC),
                pay("PV2", "2025-04-01", "50.00", source="上年结转"),
                pay("PV3", "2025-05-01", "40.00", source="上年结转"),
            ],
        )
        rows = rule_rows(wh, "carryover_squeeze", self.JUNE, "pay_cert_no, amount, rule")
        assert {rule for _, _, rule in rows} == {"carryover_excess"}
        assert "PV2" in {no for no, _, _ in rows}  # the voucher that crosses the line
        assert sum(amount for _, amount, _ in rows) == D("190.00") - D("120.00")

    def test_carryover_excess_is_net_of_later_refunds(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.JUNE,
            budget=[line("P1", "100000.00", "120.00")],
            payments=[
                pay("PV1", "2025-03-01", "100.00", doc=PRIOR_DOC),
                pay("PV2", "2025-04-01", "50.00", source="上年结转"),
            ],
            refunds=[["RF1", "PV2", "2025-05-01", "10.00", "结算"]],
        )
        assert exception_rows(wh, "overspend", self.JUNE, "pay_cert_no, amount") == [("PV2", D("20.00"))]
        assert rule_rows(wh, "carryover_squeeze", self.JUNE, "pay_cert_no, amount, rule") == [
            ("PV2", D("20.00"), "carryover_excess")
        ]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "carryover_squeeze") == [
            ("fiscal_year", "INTEGER"),
            ("agency_code", "VARCHAR"),
            ("pro_code", "VARCHAR"),
            ("pay_cert_no", "VARCHAR"),
            ("amount", "DECIMAL(18,2)"),
            ("rule", "VARCHAR"),
            ("evidence", "VARCHAR"),
            ("source_file", "VARCHAR"),
            ("source_row", "INTEGER"),
            ("detail", "VARCHAR"),
        ]
        with db.read_only(failing) as con:
            mart = {name: dtype for name, dtype, *_ in con.execute("describe carryover_squeeze").fetchall()}
        for name in ["fiscal_year", "as_of", "agency_code", "pro_code", "pay_cert_no", "amount", "rule", "evidence"]:
            assert name in mart

    def test_exceptions_rows_use_the_registry(self, failing: Path, excess: Path):
        assert_registry_rows(failing, "carryover_squeeze", self.JUNE, 4)
        assert_registry_rows(excess, "carryover_squeeze", self.JUNE, 1)


# ---------------------------------------------------------------------------------------------------------------
# carryover_lag
# ---------------------------------------------------------------------------------------------------------------


class TestCarryoverLag:
    BEFORE = dt.date(2025, 6, 29)
    DUE = dt.date(2025, 6, 30)
    AFTER = dt.date(2025, 7, 31)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("carryover_lag"),
            self.BEFORE,
            self.DUE,
            self.AFTER,
            budget=[line("P1", "10000.00", "500.00"), line("P2", "10000.00")],
            payments=[
                pay("PV1", "2025-03-01", "200.00", doc=PRIOR_DOC),
                pay("PV2", "2025-07-15", "100.00", source="上年结转"),
                pay("PV3", "2025-03-01", "900.00"),  # current-year money does not pay carry-over down
            ],
        )

    def test_passes_before_the_due_date(self, failing: Path):
        assert findings(failing, "carryover_lag", self.BEFORE) == []

    def test_passes_when_the_carryover_is_paid_by_the_due_date(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.DUE,
            budget=[line("P1", "10000.00", "500.00")],
            payments=[
                pay("PV1", "2025-03-01", "200.00", doc=PRIOR_DOC),
                pay("PV2", "2025-06-30", "300.00", source="结转"),
            ],
        )
        assert findings(wh, "carryover_lag", self.DUE) == []

    def test_fails_on_and_after_the_due_date_with_the_outstanding_amount(self, failing: Path):
        assert findings(failing, "carryover_lag", self.DUE) == [
            (2025, "990001", "P1", None, D("300.00"), "budget/b.csv", 4)
        ]
        assert findings(failing, "carryover_lag", self.AFTER) == [
            (2025, "990001", "P1", None, D("200.00"), "budget/b.csv", 4)
        ]
        detail = details(failing, "carryover_lag", self.AFTER)["P1"]
        assert "500.00" in detail and "300.00" in detail and "200.00" in detail and "2025-06-30" in detail

    def test_output_column_names(self, failing: Path):
        assert [name for name, _ in rule_columns(failing, "carryover_lag")] == [n for n, _ in STANDARD_COLUMNS]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "carryover_lag") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "carryover_lag", self.DUE, 1)


# ---------------------------------------------------------------------------------------------------------------
# unknown_status
# ---------------------------------------------------------------------------------------------------------------


class TestUnknownStatus:
    AS_OF = dt.date(2025, 6, 30)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("unknown_status"),
            self.AS_OF,
            budget=[line("P1", "10000.00")],
            payments=[
                pay("PV1", "2025-02-01", "100.00", status="待审核"),
                pay("PV2", "2025-02-02", "200.00"),
                pay("PV3", "2025-08-01", "300.00", status="待审核"),  # after the as-of date
            ],
        )

    def test_passes_for_paid_success_and_blank_status(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.AS_OF,
            budget=[line("P1", "10000.00")],
            payments=[
                pay("PV1", "2025-02-01", "100.00", status="已支付"),
                pay("PV2", "2025-02-02", "200.00", status="支付成功"),
                pay("PV3", "2025-02-03", "300.00", status=""),
            ],
        )
        assert findings(wh, "unknown_status", self.AS_OF) == []
        assert query(wh, "select paid_current from execution_by_project") == [(D("600.00"),)]

    def test_fails_per_voucher_and_the_voucher_does_not_count(self, failing: Path):
        assert findings(failing, "unknown_status", self.AS_OF) == [
            (2025, "990001", "P1", "PV1", D("100.00"), "payments/a.csv", 3)
        ]
        assert "待审核" in details(failing, "unknown_status", self.AS_OF)["PV1"]
        assert query(failing, "select pay_cert_no from payments order by 1") == [("PV2",)]
        assert query(failing, "select paid_current from execution_by_project") == [(D("200.00"),)]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "unknown_status") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "unknown_status", self.AS_OF, 1)


# ---------------------------------------------------------------------------------------------------------------
# voided
# ---------------------------------------------------------------------------------------------------------------


class TestVoided:
    AS_OF = dt.date(2025, 6, 30)

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("voided"),
            self.AS_OF,
            budget=[line("P1", "10000.00")],
            payments=[
                pay("PV1", "2025-02-01", "100.00", status="已作废"),
                pay("PV2", "2025-02-02", "200.00", status="作废"),
                pay("PV3", "2025-02-03", "300.00", status="已撤销"),
                pay("PV4", "2025-02-04", "400.00"),
                pay("PV5", "2025-09-01", "500.00", status="已作废"),  # after the as-of date
            ],
        )

    def test_passes_without_voided_vouchers(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.AS_OF,
            budget=[line("P1", "10000.00")],
            payments=[pay("PV1", "2025-02-01", "100.00"), pay("PV2", "2025-02-02", "200.00", status="支付成功")],
        )
        assert findings(wh, "voided", self.AS_OF) == []

    def test_fails_per_voided_voucher_loaded_but_never_counted(self, failing: Path):
        assert findings(failing, "voided", self.AS_OF) == [
            (2025, "990001", "P1", "PV1", D("100.00"), "payments/a.csv", 3),
            (2025, "990001", "P1", "PV2", D("200.00"), "payments/a.csv", 4),
            (2025, "990001", "P1", "PV3", D("300.00"), "payments/a.csv", 5),
        ]
        assert "已撤销" in details(failing, "voided", self.AS_OF)["PV3"]
        assert query(failing, "select pay_cert_no from payments") == [("PV4",)]
        assert query(failing, "select count(*) from raw_payments") == [(5,)]
        assert query(failing, "select paid_current from execution_by_project") == [(D("400.00"),)]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "voided") == STANDARD_COLUMNS

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "voided", self.AS_OF, 3)
