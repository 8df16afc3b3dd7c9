"""Rule refund_excess (sql/rules/rule_refund_excess.sql): a passing case, a failing case with the exact rows, the
output columns, its `exceptions` rows and alerts; held-back refunds never make a voucher's net negative and never
change the unit's paid figure (CONTRACT.md 1.2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.warehouse.rules.rulekit import (
    STANDARD_COLUMNS,
    D,
    assert_registry_rows,
    build,
    details,
    exception_rows,
    findings,
    line,
    pay,
    query,
    rule_columns,
)

JUNE, DEC = dt.date(2025, 6, 30), dt.date(2025, 12, 31)
BUDGET = [line("P1", "10000.00"), line("P2", "10000.00")]
PAYMENTS = [
    pay("PV1", "2025-01-05", "100.00"),  # row 3
    pay("PV2", "2025-01-06", "50.00"),  # row 4
    pay("PV3", "2025-02-10", "-60.00", ori="PV2"),  # row 5: an inline refund above its voucher: held back
    pay("PV4", "2025-01-07", "40.00", pro="P2"),  # row 6
    pay("PV5", "2025-01-08", "200.00", pro="P2"),  # row 7
    pay("PV6", "2025-01-09", "100.00", pro="P2"),  # row 8
]
REFUNDS = [
    ["RF1", "PV1", "2025-02-01", "30.00", "结算"],  # row 3: applied (30 of 100)
    ["RF2", "PV1", "2025-03-01", "80.00", "多付"],  # row 4: 110 > 100: held back
    ["RF3", "PV1", "2025-04-01", "20.00", "多付"],  # row 5: after the first excess: held back (130), though 50 fits
    ["RF4", "PV4", "2025-05-01", "-40.00", "全额退回"],  # row 6: exactly the voucher: applied, net 0, no finding
    ["RF5", "PV5", "2025-08-01", "250.00", "多付"],  # row 7: held back, but only a finding from 08-01 on
    ["RF6B", "PV6", "2025-03-03", "60.00", "多付"],  # row 8: same date as RF6A, later refund_no: held back (120)
    ["RF6A", "PV6", "2025-03-03", "60.00", "多付"],  # row 9: first in refund_no order: applied
]
HELD = {"RF2", "RF3", "PV3", "RF5", "RF6B"}


class TestRefundExcess:
    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("refund_excess"), JUNE, DEC, budget=BUDGET, payments=PAYMENTS, refunds=REFUNDS
        )

    @pytest.fixture(scope="class")
    def without_held(self, tmp_path_factory) -> Path:
        """The same exports without the held-back refunds."""
        return build(
            tmp_path_factory.mktemp("refund_excess_clean"),
            JUNE,
            DEC,
            budget=BUDGET,
            payments=[p for p in PAYMENTS if p[0] not in HELD],
            refunds=[r for r in REFUNDS if r[0] not in HELD],
        )

    def test_passes_when_refunds_add_up_to_at_most_the_voucher(self, tmp_path: Path):
        wh = build(
            tmp_path,
            JUNE,
            budget=BUDGET,
            payments=[pay("PV1", "2025-01-05", "100.00"), pay("PV2", "2025-01-09", "-20.00", ori="PV1")],
            refunds=[["RF1", "PV1", "2025-02-01", "30.00", "多付"], ["RF2", "PV1", "2025-03-01", "50.00", "多付"]],
        )
        assert findings(wh, "refund_excess", JUNE) == []
        assert query(wh, "select pay_cert_no, refunded_amt, net_amt, held_refund_amt from payments") == [
            ("PV1", D("100.00"), D("0.00"), D("0.00"))
        ]
        assert query(wh, "select paid_current from execution_by_unit where as_of = ?", [JUNE]) == [(D("0.00"),)]

    def test_fails_on_the_first_refund_above_the_voucher_and_every_later_one(self, failing: Path):
        assert findings(failing, "refund_excess", JUNE) == [
            (2025, "990001", "P1", "PV1", D("20.00"), "refunds/r.csv", 5),
            (2025, "990001", "P1", "PV1", D("80.00"), "refunds/r.csv", 4),
            (2025, "990001", "P1", "PV2", D("60.00"), "payments/a.csv", 5),
            (2025, "990001", "P2", "PV6", D("60.00"), "refunds/r.csv", 8),
        ]
        assert exception_rows(failing, "refund_excess", JUNE, "refund_no") == [("PV3",), ("RF2",), ("RF3",), ("RF6B",)]
        found = dict(exception_rows(failing, "refund_excess", JUNE, "refund_no, detail"))
        assert found["RF2"] == (
            "退回 RF2 (80.00 元, 2025-03-01) 使原支付凭证 PV1 的累计退回达到 110.00 元，超过支付金额 100.00 元："
            "暂不冲减支出，待数据更正"
        )
        assert "累计退回达到 130.00 元" in found["RF3"]
        assert "PV2" in details(failing, "refund_excess", JUNE)["PV2"]

    def test_a_refund_after_the_as_of_date_is_not_a_finding_yet(self, failing: Path):
        june = {r[-1] for r in exception_rows(failing, "refund_excess", JUNE, "refund_no")}
        dec = exception_rows(failing, "refund_excess", DEC, "refund_no, pay_cert_no, amount, source_row")
        assert "RF5" not in june
        assert ("RF5", "PV5", D("250.00"), 7) in dec and len(dec) == 5

    def test_held_back_refunds_do_not_reduce_spending(self, failing: Path):
        assert query(
            failing,
            "select pay_cert_no, pay_amt, refunded_amt, net_amt, refund_count, held_refund_amt, held_refund_count"
            " from payments order by 1",
        ) == [
            ("PV1", D("100.00"), D("30.00"), D("70.00"), 1, D("100.00"), 2),
            ("PV2", D("50.00"), D("0.00"), D("50.00"), 0, D("60.00"), 1),
            ("PV4", D("40.00"), D("40.00"), D("0.00"), 1, D("0.00"), 0),
            ("PV5", D("200.00"), D("0.00"), D("200.00"), 0, D("250.00"), 1),
            ("PV6", D("100.00"), D("60.00"), D("40.00"), 1, D("60.00"), 1),
        ]
        assert query(failing, "select refund_no from spend_events where event_kind = 'refund' order by 1") == [
            ("RF1",),
            ("RF4",),
            ("RF6A",),
        ]
        # 490.00 paid, 130.00 refunded (RF1 30 + RF4 40 + RF6A 60); applying every refund would give 490 - 340
        assert query(failing, "select as_of, paid_current from execution_by_unit order by as_of") == [
            (JUNE, D("360.00")),
            (DEC, D("360.00")),
        ]
        assert query(
            failing,
            "select pro_code, paid_current from execution_by_project where as_of = ? order by 1",
            [DEC],
        ) == [("P1", D("120.00")), ("P2", D("240.00"))]

    def test_a_voucher_net_is_never_negative_at_any_date(self, failing: Path):
        assert query(failing, "select count(*) from payments where net_amt < 0") == [(0,)]
        # the events of each voucher, as of each event date: never below zero
        assert query(
            failing,
            "select count(*) from (select pay_cert_no, sum(amount) over (partition by pay_cert_no order by event_date"
            " range between unbounded preceding and current row) as net from spend_events) where net < 0",
        ) == [(0,)]

    def test_the_units_figures_equal_those_without_the_held_back_refunds(self, failing: Path, without_held: Path):
        figures = (
            "select as_of, agency_code, cur_amt, paid_current, execution_rate, paid_carryover, unbudgeted_amt"
            " from execution_by_unit order by all"
        )
        assert query(failing, figures) == query(without_held, figures)
        by_project = "select as_of, pro_code, paid_current, execution_rate from execution_by_project order by all"
        assert query(failing, by_project) == query(without_held, by_project)
        by_quarter = "select as_of, pro_code, quarter, paid_amt, paid_cum from execution_by_quarter order by all"
        assert query(failing, by_quarter) == query(without_held, by_quarter)
        assert findings(without_held, "refund_excess", DEC) == []

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "refund_excess") == [*STANDARD_COLUMNS, ("refund_no", "VARCHAR")]

    def test_exceptions_rows_use_the_registry(self, failing: Path):
        assert_registry_rows(failing, "refund_excess", JUNE, 4)
        assert query(failing, "select distinct kind_zh, severity_zh from exceptions where kind = 'refund_excess'") == [
            ("退回超额", "严重")
        ]

    def test_each_held_back_refund_raises_its_own_fatal_exception_alert(self, failing: Path):
        assert query(
            failing,
            "select alert_key, kind, severity, amount, status from alerts"
            " where pay_cert_no like 'refund_excess:%' order by 1",
        ) == [
            ("exception|2025|990001|P1|refund_excess:PV1:RF2", "exception", "fatal", D("80.00"), "active"),
            ("exception|2025|990001|P1|refund_excess:PV1:RF3", "exception", "fatal", D("20.00"), "active"),
            ("exception|2025|990001|P1|refund_excess:PV2:PV3", "exception", "fatal", D("60.00"), "active"),
            ("exception|2025|990001|P2|refund_excess:PV5:RF5", "exception", "fatal", D("250.00"), "active"),
            ("exception|2025|990001|P2|refund_excess:PV6:RF6B", "exception", "fatal", D("60.00"), "active"),
        ]
