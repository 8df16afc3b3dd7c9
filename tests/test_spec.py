"""schemas/spec.py: the one list of export headers (headers.toml) that the samples, the generator and the tests
spell their exports from."""

from __future__ import annotations

import pytest

from schemas.spec import export_header, load_spec, normalize_header


def test_a_canonical_name_gives_the_first_alias_and_an_alias_stays_as_written():
    assert export_header("payments", "pay_cert_no 凭证日期 pay_amt") == ["支付凭证号", "凭证日期", "支付金额"]


def test_a_unit_marks_only_the_money_columns():
    assert export_header("budget", "pro_code reply_amt 一季度计划", unit="万元") == [
        "项目编码",
        "年初预算数（万元）",
        "一季度计划（万元）",
    ]


def test_a_header_the_reader_would_not_accept_is_refused():
    with pytest.raises(ValueError, match="'付款金额' is neither a column nor an alias"):
        export_header("payments", "pay_cert_no 付款金额")


@pytest.mark.parametrize("kind", ["payments", "refunds", "budget"])
def test_every_header_written_maps_back_to_its_column(kind: str):
    spec = load_spec().kinds[kind]
    names = " ".join(c.name for c in spec.columns)
    header = export_header(kind, names, unit="元")
    assert [spec.alias_to_column[normalize_header(h)[0]] for h in header] == [c.name for c in spec.columns]
