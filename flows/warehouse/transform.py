"""Reconcile: evaluate the rules and build the marts for one as-of date, in DuckDB.

The SQL lives in sql/ (staging -> rules -> marts, one relation per file). This step sets the run's parameters and
materialises the marts kept per as-of date: a rerun for the same date replaces that date's rows, other dates stay.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import duckdb

from flows.warehouse.db import as_of_definitions, first_row

log = logging.getLogger("treasury_recon.reconcile")

# read by several as-of marts; in dependency order (a later one reads the earlier snapshots)
SHARED = ("stg_payment_rows", "stg_spend_asof", "rule_carryover_squeeze")

_DUE = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


def reconcile(con: duckdb.DuckDBPyConnection, as_of: dt.date, *, carryover_due: str = "06-30") -> dict[str, int]:
    """Materialise every as-of mart for ``as_of``; returns the row count of each."""
    if not _DUE.match(carryover_due):
        raise ValueError(f"carryover_due must be MM-DD, got {carryover_due!r}")
    con.execute("set variable as_of = cast(? as date)", [as_of])
    con.execute("set variable carryover_due = ?", [carryover_due])
    counts = {}
    # Views are inlined: every mart would re-derive the staging chain (stg_payment_rows: two window passes over
    # every payment row) once per reference. Snapshot the relations several marts read, once, as temp tables of
    # the same name (the temp schema is searched first), and drop them afterwards so the views are seen again.
    db = first_row(con, "select current_database()")[0]
    for name in SHARED:
        con.execute(f'create or replace temp table "{name}" as select * from "{db}".main."{name}"')
    try:
        for name, body in as_of_definitions():
            _ensure_table(con, name, body)
            con.execute(f'delete from "{name}" where as_of = ?', [as_of])
            con.execute(f'insert into "{name}" by name select * from (\n{body}\n)')
            counts[name] = first_row(con, f'select count(*) from "{name}" where as_of = ?', [as_of])[0]
    finally:
        for name in reversed(SHARED):
            con.execute(f'drop table if exists temp.main."{name}"')
    log.info("reconciled as of %s: %s", as_of, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def _ensure_table(con: duckdb.DuckDBPyConnection, name: str, body: str) -> None:
    """Create the mart's table from its query's columns; columns added to the query later are added to it."""
    kind = first_row(con, "select table_type from information_schema.tables where table_name = ?", [name])
    if kind and kind[0] == "VIEW":
        con.execute(f'drop view "{name}"')
        kind = None
    if kind is None:
        con.execute(f'create table "{name}" as select * from (\n{body}\n) limit 0')
        return
    have = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_name = ?", [name]
        ).fetchall()
    }
    for column, dtype, *_ in con.execute(f"describe select * from (\n{body}\n)").fetchall():
        if column not in have:
            con.execute(f'alter table "{name}" add column "{column}" {dtype}')
