"""Rule voided (sql/rules/rule_voided.sql): a passing case, a failing case
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
