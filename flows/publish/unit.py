"""What one unit's outputs show (``UnitData``: its marts' rows as of one date) and the exact arithmetic of the rates
they print. Pure Python: the workbook worker processes unpickle UnitData and import this, never DuckDB."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from flows.formatting import CENT, half_up

MILLI = Decimal("0.001")
ZERO = Decimal("0.00")
QUARTER_NAMES = {1: "一季度", 2: "二季度", 3: "三季度", 4: "四季度"}


def rate(num: Decimal | None, den: Decimal | None) -> Fraction | None:
    """The exact fraction num / den; None when the denominator is 0 or missing."""
    if num is None or den is None or den == 0:
        return None
    return Fraction(num) / Fraction(den)


def rate3(num: Decimal | None, den: Decimal | None) -> Decimal | None:
    """num / den half-up to 0.001: the value written into a '0.0%' cell (0.348 shows 34.8%)."""
    r = rate(num, den)
    return None if r is None else half_up(r, MILLI)


def score(weight: Decimal, num: Decimal | None, den: Decimal | None) -> Decimal | None:
    """得分 = 分值 × 执行率 (exact), kept within [0, 分值], half-up to 0.01. None when 执行率 is undefined."""
    r = rate(num, den)
    if r is None:
        return None
    points = min(max(Fraction(weight) * r, Fraction(0)), Fraction(weight))
    return half_up(points, CENT)


def dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


@dataclass
class UnitData:
    """Everything published for one unit and fiscal year, as of one date (DECIMAL money as Decimal, yuan)."""

    as_of: dt.date
    unit: dict[str, Any]
    projects: list[dict[str, Any]] = field(default_factory=list)
    quarters: list[dict[str, Any]] = field(default_factory=list)
    squeeze: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agency_code(self) -> str:
        return self.unit["agency_code"]

    @property
    def fiscal_year(self) -> int:
        return int(self.unit["fiscal_year"])

    @property
    def agency_name(self) -> str:
        return self.unit.get("agency_name") or self.agency_code

    @property
    def reply_amt(self) -> Decimal:
        return dec(self.unit.get("reply_amt"))

    @property
    def squeeze_amt(self) -> Decimal:
        return sum((dec(s["amount"]) for s in self.squeeze), ZERO)
