"""Rule plan_sum_mismatch (sql/rules/rule_plan_sum_mismatch.sql): a passing case, a failing case
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
    query,
    rule_columns,
    run,
    write_budget,
)


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
