"""What one unit's outputs show (``UnitData``: its marts' rows as of one date). The marts compute every figure;
this only carries them. Pure Python: the workbook worker processes unpickle UnitData and import this, never DuckDB."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

QUARTER_NAMES = {1: "一季度", 2: "二季度", 3: "三季度", 4: "四季度"}


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
    funds: list[dict[str, Any]] = field(default_factory=list)  # self_assessment_funds: the 自评表 money block
    behind: list[dict[str, Any]] = field(default_factory=list)  # behind_plan: projects behind their quarterly plan

    @property
    def agency_code(self) -> str:
        return self.unit["agency_code"]

    @property
    def fiscal_year(self) -> int:
        return int(self.unit["fiscal_year"])

    @property
    def agency_name(self) -> str:
        return self.unit.get("agency_name") or self.agency_code
