"""Rule duplicate_conflict (sql/rules/rule_duplicate_conflict.sql): a passing case, a failing case
with the exact rows, the output columns and its `exceptions` rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.warehouse.rules.rulekit import (
    STANDARD_COLUMNS,
    D,
    assert_registry_rows,
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
