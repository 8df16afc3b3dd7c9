"""Turn text cells into money (integer fen), dates and codes, vectorised with pyarrow compute.

Money never passes through a float: text is cleaned (NFKC turns full-width digits into ASCII, thousands separators
and currency signs go, ``(1,234.00)`` becomes ``-1234.00``), checked against a strict pattern, and split into
integer and fraction digits, giving an exact count of fen (0.01 yuan). 万元 amounts may carry up to six decimals
(still whole fen). The warehouse turns fen into DECIMAL(18,2) with exact decimal arithmetic.

Each parser returns (values, errors) where errors is a string array: null when the cell is fine, else what was
expected, in plain words.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

NONE_MARKERS = ["", "-", "—", "——", "--", "－", "/", "无"]
UNIT_FEN = {"元": 100, "万元": 1_000_000}
UNIT_DECIMALS = {"元": 2, "万元": 6}

_EXCEL_EPOCH_DAYS = -25569  # 1899-12-30 relative to 1970-01-01


def nfkc(arr: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(pc.utf8_normalize(arr, "NFKC"))


def clean_text(arr: pa.Array) -> pa.Array:
    """Trim surrounding whitespace (full-width spaces included); empty becomes null. Text keeps its characters."""
    trimmed = pc.utf8_trim(arr, " \t\r\n\u3000\u00a0")
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def squeeze(arr: pa.Array) -> pa.Array:
    """NFKC (full-width digits and letters to ASCII) without any whitespace. Plain ASCII without spaces (nearly
    every cell of an export) is already that: two costly passes over the column skipped."""
    if (
        pc.all(pc.string_is_ascii(arr)).as_py() is not False
        and not pc.any(pc.match_substring_regex(arr, r"\s")).as_py()
    ):
        return arr
    return pc.replace_substring_regex(pc.utf8_normalize(arr, "NFKC"), r"\s+", "")


def clean_code(arr: pa.Array) -> pa.Array:
    """Codes and numbers as text: NFKC (full-width digits to ASCII), no inner spaces; empty becomes null."""
    out = squeeze(arr)
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def parse_money(arr: pa.Array, unit: str) -> tuple[pa.Array, pa.Array]:
    """Text amounts in ``unit`` (元 or 万元) -> int64 fen. Blank or a dash is null (no amount)."""
    s = pc.utf8_normalize(arr, "NFKC")
    s = pc.replace_substring_regex(s, r"[\s,¥￥$]|元$", "")
    s = pc.replace_substring(s, "\u2212", "-")  # a typeset minus sign
    s = pc.replace_substring_regex(s, r"^\((.*)\)$", r"-\1")  # accounting negative
    s = pc.replace_substring_regex(s, r"^\+", "")
    blank = pc.is_in(s, pa.array(NONE_MARKERS))
    decimals = UNIT_DECIMALS[unit]
    parts = pc.extract_regex(s, r"^(?P<sign>-?)(?P<int>\d{1,17})(?:\.(?P<frac>\d*))?$")
    matched = pc.is_valid(parts)
    sign = pc.struct_field(parts, "sign")
    int_digits = pc.struct_field(parts, "int")
    frac = pc.utf8_rtrim(pc.fill_null(pc.struct_field(parts, "frac"), ""), "0")
    too_precise = pc.and_(matched, pc.greater(pc.utf8_length(frac), decimals))
    max_int_digits = 16 if unit == "元" else 12  # DECIMAL(18,2) holds 16 integer digits of yuan
    overflow = pc.and_(matched, pc.greater(pc.utf8_length(int_digits), max_int_digits))
    ok = pc.and_(pc.and_(matched, pc.invert(too_precise)), pc.invert(overflow))
    safe_int = pc.if_else(ok, int_digits, "0")
    safe_frac = pc.if_else(ok, pc.utf8_rpad(frac, decimals, "0"), "0" * decimals)
    scale = UNIT_FEN[unit]
    frac_factor = scale // 10**decimals
    fen = pc.add(
        pc.multiply(pc.cast(safe_int, pa.int64()), scale),
        pc.multiply(pc.cast(pc.if_else(pc.equal(safe_frac, ""), "0", safe_frac), pa.int64()), frac_factor),
    )
    fen = pc.if_else(pc.equal(sign, "-"), pc.negate(fen), fen)
    values = pc.if_else(pc.and_(ok, pc.invert(blank)), fen, pa.scalar(None, pa.int64()))
    errors = pc.case_when(
        pc.make_struct(
            blank,
            too_precise,
            overflow,
            pc.invert(matched),
        ),
        pa.scalar(None, pa.string()),
        f"more than {decimals} decimals in {unit}: money is kept to the fen",
        "amount too large for DECIMAL(18,2)",
        "expected an amount such as 1234.56, 1,234.56 or (1,234.56)",
    )
    return values, errors


def parse_date(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Text dates -> date32. Accepts 2024-03-15, 2024/3/15, 2024.3.15, 20240315, 2024年3月15日, an optional time,
    and Excel serial numbers (1-80000). Blank is null."""
    if arr.null_count == 0 and pc.all(pc.match_substring_regex(arr, r"^\d{4}-\d{2}-\d{2}$")).as_py():
        try:  # the common case, ISO dates only: a cast, which also rejects 2025-02-30 (1M rows: 1.2 s saved)
            return pc.cast(arr, pa.date32()), pa.nulls(len(arr), pa.string())
        except pa.ArrowInvalid:
            pass
    s = pc.utf8_normalize(arr, "NFKC")
    s = pc.utf8_trim_whitespace(s)
    blank = pc.equal(s, "")
    ymd = pc.extract_regex(
        s, r"^(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
    )
    compact = pc.extract_regex(s, r"^(?P<y>(?:19|20|21)\d{2})(?P<m>\d{2})(?P<d>\d{2})$")
    serial = pc.extract_regex(s, r"^(?P<n>\d{1,5})(?:\.\d+)?$")

    def iso(parts):
        y = pc.struct_field(parts, "y")
        m = pc.utf8_lpad(pc.struct_field(parts, "m"), 2, "0")
        d = pc.utf8_lpad(pc.struct_field(parts, "d"), 2, "0")
        return pc.binary_join_element_wise(y, m, d, "-")

    text = pc.coalesce(iso(ymd), iso(compact))
    parsed = pc.cast(pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
    # strptime rolls 2025-02-30 over to March: a real date keeps its day of the month (a rolled-over one never does;
    # comparing days instead of formatting the date back to text: 1M rows 1.4 s -> 0.6 s)
    real = pc.equal(pc.day(parsed), pc.cast(pc.utf8_slice_codeunits(text, 8, 10), pa.int64()))
    parsed = pc.if_else(pc.fill_null(real, False), parsed, pa.scalar(None, pa.date32()))
    n = pc.cast(pc.struct_field(serial, "n"), pa.int64())
    n_ok = pc.and_(pc.greater_equal(n, 1), pc.less_equal(n, 80000))
    from_serial = pc.cast(pc.cast(pc.add(n, _EXCEL_EPOCH_DAYS), pa.int32()), pa.date32())
    from_serial = pc.if_else(n_ok, from_serial, pa.scalar(None, pa.date32()))
    values = pc.coalesce(parsed, from_serial)
    errors = pc.if_else(
        pc.or_(blank, pc.is_valid(values)),
        pa.scalar(None, pa.string()),
        "expected a date such as 2024-03-15, 2024/3/15, 20240315, 2024年3月15日 or an Excel date",
    )
    return values, errors


def parse_account(raw: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Account numbers stay text, exact. A cell Excel stored as a float has lost digits and is rejected."""
    s = clean_code(raw)
    floaty = pc.fill_null(pc.match_substring_regex(s, r"^\d+(\.\d+)?[eE]\+?\d+$"), False)
    bad = pc.fill_null(pc.invert(pc.match_substring_regex(s, r"^\d{1,30}$")), False)
    errors = pc.case_when(
        pc.make_struct(floaty, bad),
        "stored as a number in Excel, digits are lost: export account numbers as text",
        "expected an account number of 1 to 30 digits",
    )
    return s, errors
