"""pandera schemas of the canonical rows (CONTRACT.md section 1), one DataFrameModel per input kind.

The readers have already turned text into typed columns (money as exact integer fen, dates as dates); these schemas
state what a usable row is. Validation is lazy: every failing cell is collected and becomes a rejected_rows entry.
Each check has a plain-words message in MESSAGES, keyed by (column, check name).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

CODE = r"^[0-9A-Za-z][0-9A-Za-z\-_./]{0,63}$"
MAX_FEN = 10**18 - 1  # DECIMAL(18,2)


class _Base(pa.DataFrameModel):
    source_row: Series[int] = pa.Field(ge=1)

    class Config:
        strict = True
        coerce = True


class PaymentRow(_Base):
    """One row of a 国库集中支付明细 export."""

    pay_cert_no: Series[str] = pa.Field(str_matches=CODE)
    pay_date: Series[pd.Timestamp] = pa.Field(ge=pd.Timestamp("1990-01-01"), le=pd.Timestamp("2100-12-31"))
    agency_code: Series[str] = pa.Field(str_matches=CODE)
    agency_name: Series[str] = pa.Field(nullable=True)
    pro_code: Series[str] = pa.Field(str_matches=CODE)
    pro_name: Series[str] = pa.Field(nullable=True)
    bgt_doc_no: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 200})
    bgt_source: Series[str] = pa.Field(nullable=True)
    exp_func_code: Series[str] = pa.Field(nullable=True)
    exp_func_name: Series[str] = pa.Field(nullable=True)
    dep_bgt_eco_code: Series[str] = pa.Field(nullable=True)
    gov_bgt_eco_code: Series[str] = pa.Field(nullable=True)
    fund_type: Series[str] = pa.Field(nullable=True)
    pay_type: Series[str] = pa.Field(nullable=True)
    payee_acct_name: Series[str] = pa.Field(str_length={"min_value": 1})
    payee_acct_no: Series[str] = pa.Field(nullable=True, str_matches=r"^\d{1,30}$")
    payee_bank: Series[str] = pa.Field(nullable=True)
    pay_amt: Series[pd.Int64Dtype] = pa.Field(ge=-MAX_FEN, le=MAX_FEN)
    use_des: Series[str] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(nullable=True)
    contract_no: Series[str] = pa.Field(nullable=True)
    ori_pay_cert_no: Series[str] = pa.Field(nullable=True, str_matches=CODE)

    @pa.dataframe_check(name="negative_needs_original")
    def negative_needs_original(cls, df: pd.DataFrame) -> Series[bool]:
        """A negative amount is a refund of another voucher and must name it (原支付凭证号)."""
        return ~(df["pay_amt"].fillna(0) < 0) | df["ori_pay_cert_no"].notna()


class RefundRow(_Base):
    """One row of a 国库集中支付资金退回 notice. refund_amt is stored positive."""

    refund_no: Series[str] = pa.Field(str_matches=CODE)
    ori_pay_cert_no: Series[str] = pa.Field(str_matches=CODE)
    refund_date: Series[pd.Timestamp] = pa.Field(ge=pd.Timestamp("1990-01-01"), le=pd.Timestamp("2100-12-31"))
    refund_amt: Series[pd.Int64Dtype] = pa.Field(gt=0, le=MAX_FEN)
    reason: Series[str] = pa.Field(nullable=True)
    agency_code: Series[str] = pa.Field(nullable=True)


class BudgetRow(_Base):
    """One project of a 项目预算及分季度用款计划 sheet, in fen."""

    fiscal_year: Series[int] = pa.Field(ge=1990, le=2100)
    pro_code: Series[str] = pa.Field(str_matches=CODE)
    pro_name: Series[str] = pa.Field(str_length={"min_value": 1})
    agency_code: Series[str] = pa.Field(str_matches=CODE)
    agency_name: Series[str] = pa.Field(nullable=True)
    exp_func_code: Series[str] = pa.Field(nullable=True)
    bgt_doc_no: Series[str] = pa.Field(nullable=True)
    reply_amt: Series[pd.Int64Dtype] = pa.Field(ge=0, le=MAX_FEN)
    adj_amt: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=-MAX_FEN, le=MAX_FEN)
    cur_amt: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, le=MAX_FEN)
    carryover_amt: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, le=MAX_FEN)
    adjusted_on: Series[pd.Timestamp] = pa.Field(
        nullable=True, ge=pd.Timestamp("1990-01-01"), le=pd.Timestamp("2100-12-31")
    )
    approved_on: Series[pd.Timestamp] = pa.Field(
        nullable=True, ge=pd.Timestamp("1990-01-01"), le=pd.Timestamp("2100-12-31")
    )
    plan_q1: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, le=MAX_FEN)
    plan_q2: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, le=MAX_FEN)
    plan_q3: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, le=MAX_FEN)
    plan_q4: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, le=MAX_FEN)

    @pa.dataframe_check(name="cur_equals_reply_plus_adj")
    def cur_equals_reply_plus_adj(cls, df: pd.DataFrame) -> Series[bool]:
        """全年预算数 = 年初预算数 + 调整预算数 when all three are given."""
        given = df["cur_amt"].notna() & df["adj_amt"].notna() & df["reply_amt"].notna()
        return ~given | (df["cur_amt"] == df["reply_amt"] + df["adj_amt"]).fillna(False)

    @pa.dataframe_check(name="unique_project")
    def unique_project(cls, df: pd.DataFrame) -> Series[bool]:
        """A project appears once per budget sheet."""
        return ~df.duplicated(["agency_code", "pro_code"], keep="first")


MODELS: dict[str, type[_Base]] = {"payments": PaymentRow, "refunds": RefundRow, "budget": BudgetRow}

# Plain words for failures, by (column, check); "*" matches any column.
MESSAGES = {
    ("*", "not_nullable"): "a value is required here and the cell is empty",
    ("*", "str_matches"): "expected a code of letters and digits (no spaces), up to 64 characters",
    ("payee_acct_no", "str_matches"): "expected an account number of 1 to 30 digits",
    ("*", "str_length"): "the text is empty or too long",
    ("*", "greater_than_or_equal_to"): "the value is below the allowed range",
    ("*", "less_than_or_equal_to"): "the value is above the allowed range",
    ("refund_amt", "greater_than"): "a refund amount must not be zero",
    ("*", "negative_needs_original"): "a negative amount is a refund and must name 原支付凭证号 (the original voucher)",
    ("*", "cur_equals_reply_plus_adj"): "全年预算数 must equal 年初预算数 + 调整预算数",
    ("*", "unique_project"): "the same project appears twice in this budget sheet; the first row is kept",
    ("*", "coerce_dtype"): "the value has the wrong type",
}


def message_for(column: str | None, check: str) -> str:
    name = check.split("(")[0]
    return MESSAGES.get((column or "*", name)) or MESSAGES.get(("*", name)) or f"failed check {check}"
