"""The documentation's worked queries run as written on the sample warehouse."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from flows import pipeline, warehouse

DOC = Path(__file__).resolve().parents[1] / "docs" / "analyst.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory):
    from tests.conftest import write_sample_raw

    base = tmp_path_factory.mktemp("docs")
    raw = write_sample_raw(base / "raw")
    wh = base / "recon.duckdb"
    pipeline.run_plain(raw, wh, dt.date(2025, 6, 30))
    pipeline.run_plain(raw, wh, dt.date(2025, 12, 31))
    return wh


def test_there_are_a_dozen_worked_queries():
    assert len(QUERIES) >= 12


@pytest.mark.parametrize("query", QUERIES, ids=[f"q{i + 1}" for i in range(len(QUERIES))])
def test_worked_query_runs_and_returns_rows(sample_warehouse: Path, query: str):
    with warehouse.read_only(sample_warehouse) as con:
        rows = con.execute(query).fetchall()
    if "rejected_rows" not in query and "from alerts" not in query:
        assert rows, query


def test_query_4_balances(sample_warehouse: Path):
    with warehouse.read_only(sample_warehouse) as con:
        for pro_code, in_mart, from_events in con.execute(QUERIES[3]).fetchall():
            assert in_mart == from_events, pro_code
