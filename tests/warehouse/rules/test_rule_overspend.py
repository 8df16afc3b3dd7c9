"""Rule overspend (sql/rules/rule_overspend.sql): a passing case, a failing case
with the exact rows, the output columns and its `exceptions` rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.warehouse.rules.rulekit import (
    PRIOR_DOC,
    STANDARD_COLUMNS,
    D,
    assert_registry_rows,
    build,
    details,
    exception_rows,
    findings,
    line,
    pay,
    rule_columns,
)


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
