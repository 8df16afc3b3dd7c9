"""Rule unknown_status (sql/rules/rule_unknown_status.sql): a passing case, a failing case
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
