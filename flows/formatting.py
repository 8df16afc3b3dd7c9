"""How figures are shown in every output people read (workbooks, paragraphs, mart copies, the `recon run` summary,
alerts): money in 万元 rounded half-up (四舍五入) from the exact yuan, and account numbers masked.

Pure Python (no DuckDB): the workbook worker processes and the command line import it.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

CENT = Decimal("0.01")


def half_up(value: Fraction | Decimal | int, quantum: Decimal) -> Decimal:
    """``value`` rounded half away from zero (四舍五入) to ``quantum`` (e.g. Decimal("0.01")), exactly.

    A Decimal (or int) rounds with ``quantize``/ROUND_HALF_UP, exact for DECIMAL(18,2) amounts (at most 18 digits,
    inside the context's 28): one call per money cell of a workbook. A Fraction (a rate) by integer arithmetic.
    """
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 24:
        return value.quantize(quantum, rounding=ROUND_HALF_UP) + 0  # "+ 0" turns -0.00 into 0.00
    exact = Fraction(value)
    step = Fraction(quantum)
    units, rest = divmod(abs(exact), step)
    if rest * 2 >= step:
        units += 1
    result = Decimal(int(units)) * quantum
    return -result if exact < 0 and units else result + 0


def wan(yuan: Decimal | int | None) -> Decimal | None:
    """Yuan -> 万元, half-up to 0.01 万元 (moving the point four places is exact)."""
    if yuan is None:
        return None
    return half_up(Decimal(yuan).scaleb(-4) if isinstance(yuan, int | Decimal) else Fraction(yuan) / 10000, CENT)


def fmt_wan(yuan: Decimal | None) -> str:
    """Yuan as the text of 万元 to two decimals, half-up, with thousands separators ("1,234.57"); "—" for none."""
    v = wan(yuan)
    return "—" if v is None else f"{v:,.2f}"


_ACCOUNT = re.compile(r"(?<!\d)(\d{4})\d{7,}(\d{4})(?!\d)")


def mask_accounts(text: str) -> str:
    """Never show a full account number: 6222020200112233445 -> 6222***********3445 (runs of 15 or more digits,
    however long: a rejected 31-digit value too; 12-digit project codes stay)."""
    return _ACCOUNT.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 8) + m.group(2), text)
