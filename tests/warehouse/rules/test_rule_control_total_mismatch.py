"""Rule control_total_mismatch (sql/rules/rule_control_total_mismatch.sql): a passing case, a failing case
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
    run,
    write_budget,
    write_payments,
)


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
