"""Rule carryover_squeeze (sql/rules/rule_carryover_squeeze.sql): a passing case, a failing case
with the exact rows, the output columns and its `exceptions` rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flows.warehouse import db
from tests.warehouse.rules.rulekit import (
    PRIOR_DOC,
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
    rule_rows,
)

SQUEEZE_COLUMNS = "fiscal_year, agency_code, pro_code, pay_cert_no, amount, rule, evidence"


class TestCarryoverSqueeze:
    APRIL = dt.date(2025, 4, 30)  # before the refund of PV1
    JUNE = dt.date(2025, 6, 30)  # after it

    @pytest.fixture(scope="class")
    def failing(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("squeeze"),
            self.APRIL,
            self.JUNE,
            budget=[line("P1", "100000.00", "500.00")],
            payments=[
                pay("PV1", "2025-03-01", "1000.00", use="2024年度工程尾款"),
                pay("PV2", "2025-03-02", "200.00", use="支付上年度欠款"),
                pay("PV3", "2025-03-03", "300.00", use="", contract="HT-2024-015"),  # 用途 blank
                pay("PV4", "2025-03-04", "400.00", pro="P9", use="去年维修费"),  # unbudgeted ones count too
                # carry-over money may pay prior-year obligations: no squeeze
                pay("PV5", "2025-03-05", "500.00", doc=PRIOR_DOC, use="2024年度工程尾款"),
                # this year's year, this year's contract: no squeeze
                pay("PV6", "2025-03-06", "600.00", use="2025年进度款", contract="HT-2025-001"),
                pay("PV7", "2025-08-01", "700.00", use="上年尾款"),  # after both as-of dates
            ],
            refunds=[["RF1", "PV1", "2025-05-01", "100.00", "结算"]],
        )

    @pytest.fixture(scope="class")
    def excess(self, tmp_path_factory) -> Path:
        return build(
            tmp_path_factory.mktemp("squeeze_excess"),
            self.JUNE,
            budget=[line("P1", "100000.00", "120.00")],
            payments=[
                pay("PV1", "2025-03-01", "100.00", doc=PRIOR_DOC),
                pay("PV2", "2025-04-01", "50.00", source="上年结转"),  # 150.00 > 120.00: crosses here
            ],
        )

    def test_passes_for_current_year_purposes_and_carryover_within_its_amount(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.JUNE,
            budget=[line("P1", "100000.00", "500.00")],
            payments=[
                pay("PV1", "2025-03-01", "1000.00", use="2025年度进度款", contract="HT-2025-007"),
                pay("PV2", "2025-03-02", "200.00", use="本年度设备采购"),
                pay("PV3", "2025-03-03", "500.00", doc=PRIOR_DOC, use="2024年度工程尾款"),  # exactly 500.00
            ],
        )
        assert findings(wh, "carryover_squeeze", self.JUNE) == []

    def test_prior_year_text_amount_is_net_as_of_with_evidence(self, failing: Path):
        expected = [
            (
                2025,
                "990001",
                "P1",
                "PV1",
                D("900.00"),
                "prior_year_text",
                "用途「2024年度工程尾款」含以前年度「2024年」",
            ),
            (2025, "990001", "P1", "PV2", D("200.00"), "prior_year_text", "用途「支付上年度欠款」含「上年度」"),
            (2025, "990001", "P1", "PV3", D("300.00"), "prior_year_text", "合同编号「HT-2024-015」含以前年度 2024"),
            (2025, "990001", "P9", "PV4", D("400.00"), "prior_year_text", "用途「去年维修费」含「去年」"),
        ]
        assert rule_rows(failing, "carryover_squeeze", self.JUNE, SQUEEZE_COLUMNS) == expected
        april = rule_rows(failing, "carryover_squeeze", self.APRIL, SQUEEZE_COLUMNS)
        assert april == [(*expected[0][:4], D("1000.00"), *expected[0][5:]), *expected[1:]]
        # the exceptions rows, the carryover_squeeze mart and the project's squeeze_amt agree
        assert exception_rows(failing, "carryover_squeeze", self.JUNE, "pay_cert_no, amount, source_row") == [
            ("PV1", D("900.00"), 3),
            ("PV2", D("200.00"), 4),
            ("PV3", D("300.00"), 5),
            ("PV4", D("400.00"), 6),
        ]
        assert details(failing, "carryover_squeeze", self.JUNE)["PV1"] == (
            "凭证 PV1 挤占 900.00 元：用途「2024年度工程尾款」含以前年度「2024年」"
        )
        assert (
            query(failing, f"select {SQUEEZE_COLUMNS} from carryover_squeeze where as_of = ? order by all", [self.JUNE])
            == expected
        )
        # P1's squeeze (PV4 is unbudgeted: a finding, but in no project row)
        assert query(failing, "select as_of, squeeze_amt, squeeze_count from execution_by_project order by as_of") == [
            (self.APRIL, D("1500.00"), 3),
            (self.JUNE, D("1400.00"), 3),
        ]

    def test_carryover_excess_on_the_crossing_voucher_with_balance_arithmetic(self, excess: Path):
        assert rule_rows(excess, "carryover_squeeze", self.JUNE, SQUEEZE_COLUMNS) == [
            (
                2025,
                "990001",
                "P1",
                "PV2",
                D("30.00"),
                "carryover_excess",
                "上年结转数 120.00 元；截至 2025-06-30 结转资金净支出 150.00 元；超出 30.00 元，"
                "本笔（净额 50.00 元）占 30.00 元",
            )
        ]
        assert exception_rows(excess, "carryover_squeeze", self.JUNE) == [
            (2025, "990001", "P1", "PV2", D("30.00"), "payments/a.csv", 4)
        ]
        # also an overspend, of the same amount
        assert exception_rows(excess, "overspend", self.JUNE, "pay_cert_no, amount") == [("PV2", D("30.00"))]

    def test_carryover_excess_adds_up_to_the_project_excess(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.JUNE,
            budget=[line("P1", "100000.00", "120.00")],
            payments=[
                pay("PV1", "2025-03-01", "100.00", doc=PRIOR_DOC),
                pay("PV2", "2025-04-01", "50.00", source="上年结转"),
                pay("PV3", "2025-05-01", "40.00", source="上年结转"),
            ],
        )
        rows = rule_rows(wh, "carryover_squeeze", self.JUNE, "pay_cert_no, amount, rule")
        assert {rule for _, _, rule in rows} == {"carryover_excess"}
        assert "PV2" in {no for no, _, _ in rows}  # the voucher that crosses the line
        assert sum(amount for _, amount, _ in rows) == D("190.00") - D("120.00")

    def test_carryover_excess_is_net_of_later_refunds(self, tmp_path: Path):
        wh = build(
            tmp_path,
            self.JUNE,
            budget=[line("P1", "100000.00", "120.00")],
            payments=[
                pay("PV1", "2025-03-01", "100.00", doc=PRIOR_DOC),
                pay("PV2", "2025-04-01", "50.00", source="上年结转"),
            ],
            refunds=[["RF1", "PV2", "2025-05-01", "10.00", "结算"]],
        )
        assert exception_rows(wh, "overspend", self.JUNE, "pay_cert_no, amount") == [("PV2", D("20.00"))]
        assert rule_rows(wh, "carryover_squeeze", self.JUNE, "pay_cert_no, amount, rule") == [
            ("PV2", D("20.00"), "carryover_excess")
        ]

    def test_output_columns(self, failing: Path):
        assert rule_columns(failing, "carryover_squeeze") == [
            ("fiscal_year", "INTEGER"),
            ("agency_code", "VARCHAR"),
            ("pro_code", "VARCHAR"),
            ("pay_cert_no", "VARCHAR"),
            ("amount", "DECIMAL(18,2)"),
            ("rule", "VARCHAR"),
            ("evidence", "VARCHAR"),
            ("source_file", "VARCHAR"),
            ("source_row", "INTEGER"),
            ("detail", "VARCHAR"),
        ]
        with db.read_only(failing) as con:
            mart = {name: dtype for name, dtype, *_ in con.execute("describe carryover_squeeze").fetchall()}
        for name in ["fiscal_year", "as_of", "agency_code", "pro_code", "pay_cert_no", "amount", "rule", "evidence"]:
            assert name in mart

    def test_exceptions_rows_use_the_registry(self, failing: Path, excess: Path):
        assert_registry_rows(failing, "carryover_squeeze", self.JUNE, 4)
        assert_registry_rows(excess, "carryover_squeeze", self.JUNE, 1)
