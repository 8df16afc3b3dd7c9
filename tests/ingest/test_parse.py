"""Text -> money (fen), dates and account numbers (CONTRACT.md section 1), on arrays and through real files."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from flows.ingest.parse import clean_code, parse_account, parse_date, parse_money
from flows.ingest.validate import ingest_file
from tests.builders import PAYMENT_HEADER, assert_accounted, payment_row, write_csv, write_xlsx

MARCH_15 = dt.date(2024, 3, 15)
DATE_ERROR = "expected a date such as 2024-03-15, 2024/3/15, 20240315, 2024年3月15日 or an Excel date"


def money(values: list[str], unit: str = "元") -> tuple[list, list]:
    v, e = parse_money(pa.array(values, pa.string()), unit)
    return v.to_pylist(), e.to_pylist()


def dates(values: list[str]) -> tuple[list, list]:
    v, e = parse_date(pa.array(values, pa.string()))
    return v.to_pylist(), e.to_pylist()


# --- money -----------------------------------------------------------------------------------------------------------


def test_money_plain_and_thousands_separators():
    values, errors = money(["1234.56", "1,234.56", "1,234,567.8", "12", "0.05", "¥1,000"])
    assert values == [123456, 123456, 123456780, 1200, 5, 100000]
    assert errors == [None] * 6


def test_money_full_width_digits_and_punctuation():
    # NFKC: full-width digits, comma and point as a Chinese IME types them
    values, errors = money(["１２３４．５６", "１，２３４．５６", "（１，２３４．００）"])
    assert values == [123456, 123456, -123400]
    assert errors == [None, None, None]


def test_money_accounting_negative_and_minus_sign():
    values, errors = money(["(1,234.00)", "（1,234.00）", "-1,234.50", "(0.01)"])
    assert values == [-123400, -123400, -123450, -1]
    assert errors == [None] * 4


@pytest.mark.parametrize("blank", ["", "  ", "-", "—", "——", "--", "－", "/", "无"])
def test_money_dash_or_blank_is_no_amount_not_an_error(blank):
    values, errors = money([blank])
    assert values == [None]
    assert errors == [None]


def test_money_more_than_two_decimals_in_yuan_is_rejected():
    values, errors = money(["1.234", "1,234.561", "0.001"])
    assert values == [None, None, None]
    assert errors == ["more than 2 decimals in 元: money is kept to the fen"] * 3


def test_money_wan_yuan_up_to_six_decimals_is_whole_fen():
    values, errors = money(["1.234567", "12.5", "(1.5)", "0.000001", "1,000"], unit="万元")
    # 1.234567 万元 = 12,345.67 元; 12.5 万元 = 125,000 元; 0.000001 万元 = 0.01 元
    assert values == [1234567, 12500000, -1500000, 1, 1000000000]
    assert errors == [None] * 5


def test_money_wan_yuan_seven_decimals_is_rejected():
    values, errors = money(["1.2345678"], unit="万元")
    assert values == [None]
    assert errors == ["more than 6 decimals in 万元: money is kept to the fen"]


def test_money_text_that_is_not_an_amount_is_rejected():
    values, errors = money(["abc", "12x", "1.2.3"])
    assert values == [None, None, None]
    assert errors == ["expected an amount such as 1234.56, 1,234.56 or (1,234.56)"] * 3


# --- dates -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["2024-03-15", "2024/3/15", "2024/03/15", "20240315", "2024年3月15日", "45366", "2024-03-15 10:20:00"],
)
def test_date_text_forms(text):
    values, errors = dates([text])
    assert values == [MARCH_15]
    assert errors == [None]


def test_date_excel_serial_number():
    # Excel serial 45366 is 2024-03-15; a fraction is the time of day
    values, errors = dates(["45366", "45366.75", "45292"])
    assert values == [MARCH_15, MARCH_15, dt.date(2024, 1, 1)]
    assert errors == [None, None, None]


@pytest.mark.parametrize("text", ["2025-02-30", "20250230", "2024-13-01", "2024年2月30日", "next week", "100000"])
def test_date_invalid_is_rejected_not_rolled_over(text):
    values, errors = dates([text])
    assert values == [None]
    assert errors == [DATE_ERROR]


def test_date_blank_is_null_without_error():
    values, errors = dates(["", "  "])
    assert values == [None, None]
    assert errors == [None, None]


def test_date_every_form_through_an_xlsx_file(tmp_path):
    rows = [
        PAYMENT_HEADER,
        payment_row("PV1", dt.date(2024, 3, 15)),  # an Excel date cell
        payment_row("PV2", dt.datetime(2024, 3, 15, 10, 30)),  # a date-time cell
        payment_row("PV3", "2024-03-15"),
        payment_row("PV4", "2024/3/15"),
        payment_row("PV5", 20240315),  # a number cell yyyymmdd
        payment_row("PV6", "2024年3月15日"),
        payment_row("PV7", 45366),  # a number cell holding an Excel serial
        payment_row("PV8", "2025-02-30"),
    ]
    batch = ingest_file(write_xlsx(tmp_path / "dates.xlsx", rows), "payments")
    assert batch.status == "loaded"
    assert batch.rows["pay_cert_no"].tolist() == [f"PV{i}" for i in range(1, 8)]
    assert [d.date() for d in batch.rows["pay_date"]] == [MARCH_15] * 7
    rejects = batch.rejects[["source_row", "column", "value", "check"]].to_dict("records")
    assert rejects == [{"source_row": 9, "column": "pay_date", "value": "2025-02-30", "check": "parse"}]
    assert_accounted(batch)


# --- account numbers -------------------------------------------------------------------------------------------------


def test_account_text_is_kept_exact_and_float_text_is_rejected():
    values, errors = parse_account(
        pa.array(["6228480099990000001", "0012345", "6228 4800 9999 0000 001", "4.1002003004005e+18", "12a", None])
    )
    assert values.to_pylist() == [
        "6228480099990000001",
        "0012345",
        "6228480099990000001",
        "4.1002003004005e+18",
        "12a",
        None,
    ]
    assert errors.to_pylist() == [
        None,
        None,
        None,
        "stored as a number in Excel, digits are lost: export account numbers as text",
        "expected an account number of 1 to 30 digits",
        None,
    ]


def test_account_19_digits_exact_in_csv(tmp_path):
    rows = [
        PAYMENT_HEADER,
        payment_row("PV1", acct="6228480099990000001"),
        payment_row("PV2", acct="0000000000000000019"),
    ]
    batch = ingest_file(write_csv(tmp_path / "acct.csv", rows), "payments")
    assert batch.status == "loaded"
    assert batch.rows["payee_acct_no"].tolist() == ["6228480099990000001", "0000000000000000019"]
    assert batch.rejects.empty
    assert_accounted(batch)


def test_account_19_digits_exact_in_xlsx_text_cell(tmp_path):
    rows = [PAYMENT_HEADER, payment_row("PV1", acct="6228480099990000001")]
    batch = ingest_file(write_xlsx(tmp_path / "acct.xlsx", rows), "payments")
    assert batch.status == "loaded"
    assert batch.rows["payee_acct_no"].tolist() == ["6228480099990000001"]
    assert batch.rejects.empty


def test_account_stored_as_float_in_xlsx_is_rejected(tmp_path):
    rows = [
        PAYMENT_HEADER,
        payment_row("PV1", acct="6228480099990000001"),
        payment_row("PV2", acct=float(4100200300400500600)),  # what Excel keeps of a 19-digit number: 15 digits
    ]
    batch = ingest_file(write_xlsx(tmp_path / "acct_float.xlsx", rows), "payments")
    assert batch.status == "loaded"
    assert batch.rows["pay_cert_no"].tolist() == ["PV1"]
    assert len(batch.rejects) == 1
    reject = batch.rejects.iloc[0]
    assert (reject["source_row"], reject["column"], reject["check"]) == (3, "payee_acct_no", "parse")
    assert reject["value"].startswith("4.10020030040050") and reject["value"].endswith("e+18")
    assert "stored as a number in Excel" in reject["message"]
    assert reject["message"].startswith("收款人账号「4.10020030040050")
    assert_accounted(batch)


def test_clean_code_ascii_fast_path_and_the_rest():
    plain = clean_code(pa.array(["990001250001", "", None, "A-1"]))
    assert plain.to_pylist() == ["990001250001", None, None, "A-1"]
    mixed = clean_code(pa.array(["９９０００１ 25 0001", "990001250001", " 12\t3 ", "\u3000"]))
    assert mixed.to_pylist() == ["990001250001", "990001250001", "123", None]
    spaced = clean_code(pa.array(["99 0001", "1"]))  # ASCII, but with a space: the full path
    assert spaced.to_pylist() == ["990001", "1"]


def test_threaded_column_parsing_gives_the_same_batch(tmp_path, monkeypatch):
    """Big files parse their columns in threads; the batch must be the one the inline path gives."""
    from flows.ingest import extract

    rows = [payment_row(f"PV{i}", "2025-03-15" if i % 7 else "2025-02-30") for i in range(40)]
    path = write_csv(tmp_path / "p.csv", [PAYMENT_HEADER, *rows])
    monkeypatch.setattr(extract, "PARALLEL_PARSE_ROWS", 10**9)
    inline = ingest_file(path, "payments", sha256="x")
    monkeypatch.setattr(extract, "PARALLEL_PARSE_ROWS", 0)
    monkeypatch.setattr(extract, "PARSE_THREADS", 3)
    threaded = ingest_file(path, "payments", sha256="x")
    assert inline.rows_rejected == threaded.rows_rejected == 6
    assert inline.rows.equals(threaded.rows)
    assert inline.rejects.equals(threaded.rejects)
