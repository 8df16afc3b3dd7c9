"""The rule registry (sql/rules/registry.csv): the contract's kinds and severities, a rule file for each."""

from __future__ import annotations

from tests.warehouse.rules.rulekit import (
    REGISTRY_CSV,
    registry,
)


def test_registry_matches_the_contract():
    """CONTRACT.md section 3: severities of the exception kinds; every registry kind has a rule file."""
    reg = registry()
    assert list(reg) == [
        "unbudgeted",
        "duplicate_conflict",
        "overspend",
        "refund_orphan",
        "refund_excess",
        "control_total_mismatch",
        "plan_sum_mismatch",
        "carryover_squeeze",
        "carryover_lag",
        "unknown_status",
        "voided",
    ]
    severities = {kind: severity for kind, (severity, _, _) in reg.items()}
    assert severities == {
        "unbudgeted": "fatal",
        "duplicate_conflict": "fatal",
        "overspend": "fatal",
        "refund_orphan": "fatal",
        "refund_excess": "fatal",
        "control_total_mismatch": "fatal",
        "plan_sum_mismatch": "warning",
        "carryover_squeeze": "warning",
        "carryover_lag": "warning",
        "unknown_status": "warning",
        "voided": "info",
    }
    for kind in reg:
        assert (REGISTRY_CSV.parent / f"rule_{kind}.sql").is_file()
