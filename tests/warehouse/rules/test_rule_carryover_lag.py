"""Rule carryover_lag (sql/rules/rule_carryover_lag.sql): a passing case, a failing case
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
    findings,
    line,
    pay,
    rule_columns,
)


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
