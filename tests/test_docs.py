"""The documentation's worked queries run as written on the sample warehouse."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from flows.build import build_night
from flows.warehouse import db

DOC = Path(__file__).resolve().parents[1] / "docs" / "analyst.md"
# 08-01 is the day before the sample refund RF2025000011 (2025-08-02); 12-31, the last, is the demo's as-of date
AS_OF_DATES = [
    dt.date(2025, 3, 31),
    dt.date(2025, 6, 30),
    dt.date(2025, 8, 1),
    dt.date(2025, 8, 2),
    dt.date(2025, 12, 31),
]
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory):
    from tests.conftest import write_sample_raw

    base = tmp_path_factory.mktemp("docs")
    raw = write_sample_raw(base / "raw")
    wh = base / "recon.duckdb"
    for day in AS_OF_DATES:
        build_night(wh, day, raw_dir=raw)
    return wh


def test_there_are_a_dozen_worked_queries():
    assert len(QUERIES) >= 12


@pytest.mark.parametrize("query", QUERIES, ids=[f"q{i + 1}" for i in range(len(QUERIES))])
def test_worked_query_runs_and_returns_rows(sample_warehouse: Path, query: str):
    with db.read_only(sample_warehouse) as con:
        rows = con.execute(query).fetchall()
    if "rejected_rows" not in query and "from alerts" not in query:
        assert rows, query


def test_query_4_balances(sample_warehouse: Path):
    with db.read_only(sample_warehouse) as con:
        for pro_code, in_mart, from_events in con.execute(QUERIES[3]).fetchall():
            assert in_mart == from_events, pro_code


def _mart_totals(con, as_of: dt.date) -> dict[str, tuple]:
    rows = con.execute(
        "select pro_code, paid_current, paid_carryover from execution_by_project where as_of = ?", [as_of]
    ).fetchall()
    return {pro: (cur, carry) for pro, cur, carry in rows}


@pytest.mark.parametrize("as_of", AS_OF_DATES, ids=str)
def test_spend_events_add_up_to_every_project_figure(sample_warehouse: Path, as_of: dt.date):
    """CONTRACT.md 5.1: for every project and as-of date D, spend_events dated <= D sum exactly to the project's
    paid_current + paid_carryover as of D, money kind by money kind (the payments-only sum nets refunds of any
    date and does not)."""
    with db.read_only(sample_warehouse) as con:
        mart = _mart_totals(con, as_of)
        assert len(mart) == con.execute("select count(*) from budget_lines").fetchone()[0] > 0
        events = {
            pro: (cur, carry)
            for pro, cur, carry in con.execute(
                "select b.pro_code,"
                " cast(coalesce(sum(s.amount) filter (where s.money = 'current'), 0) as decimal(18, 2)),"
                " cast(coalesce(sum(s.amount) filter (where s.money = 'carryover'), 0) as decimal(18, 2))"
                " from budget_lines as b left join spend_events as s"
                " on s.fiscal_year = b.fiscal_year and s.agency_code = b.agency_code and s.pro_code = b.pro_code"
                " and s.event_date <= ? group by b.pro_code",
                [as_of],
            ).fetchall()
        }
    assert events == mart


def cur_plus_carry(mart: dict[str, tuple], pro: str):
    return mart[pro][0] + mart[pro][1]


def _at(query: str, as_of: dt.date) -> str:
    """The worked query for another as-of date (its date literal replaced)."""
    return re.sub(r"'\d{4}-\d{2}-\d{2}'", f"'{as_of.isoformat()}'", query)


@pytest.mark.parametrize("as_of", AS_OF_DATES, ids=str)
def test_the_documented_traceability_queries_add_up_for_every_project(sample_warehouse: Path, as_of: dt.date):
    """Worked queries 3 (the events behind one project) and 4 (the check), rerun for every project and date."""
    q3, q4 = QUERIES[2], QUERIES[3]
    with db.read_only(sample_warehouse) as con:
        mart = _mart_totals(con, as_of)
        for pro, (cur, carry) in mart.items():
            cur3 = con.execute(re.sub(r"'990001\d{6}'", f"'{pro}'", _at(q3, as_of)))
            columns = [d[0] for d in cur3.description]
            amount = columns.index("amount" if "amount" in columns else "net_amt")
            assert sum((r[amount] for r in cur3.fetchall()), 0) == cur + carry, pro
        checked = con.execute(_at(q4, as_of)).fetchall()
        assert {pro for pro, *_ in checked} == set(mart)
        for pro, in_mart, from_events in checked:
            assert in_mart == from_events == cur_plus_carry(mart, pro), pro
    assert "spend_events" in q3 and "spend_events" in q4
