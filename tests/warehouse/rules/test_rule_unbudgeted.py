"""Rule unbudgeted (sql/rules/rule_unbudgeted.sql): a passing case, a failing case
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
