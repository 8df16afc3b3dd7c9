"""Rule refund_orphan (sql/rules/rule_refund_orphan.sql): a passing case, a failing case
with the exact rows, the output columns and its `exceptions` rows."""

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
    findings,
    line,
    pay,
    query,
    rule_columns,
)


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
