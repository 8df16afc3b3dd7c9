"""Reconcile: evaluate the rules and build the marts for one as-of date, in DuckDB.

The SQL lives in sql/ (staging -> rules -> marts, one relation per file). This step sets the run's parameters and
materialises the marts kept per as-of date: a rerun for the same date replaces that date's rows, other dates stay.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal

import duckdb

from flows.warehouse.db import as_of_definitions, first_row

log = logging.getLogger("treasury_recon.reconcile")

# Views read by several per-as-of marts whose bodies are costly (window passes over every payment row), snapshotted
# once per run. A choice for speed, not derived: tests/test_sqlgraph.py checks each is a view of the graph and that
# they are in build order (a later one reads the earlier snapshots).
SHARED = ("int_payment_versions", "int_spend_asof", "rule_carryover_squeeze")

_DUE = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


def reconcile(
    con: duckdb.DuckDBPyConnection, as_of: dt.date, *, carryover_due: str = "06-30", weight: Decimal = Decimal("10")
) -> dict[str, int]:
    """Materialise every as-of mart for ``as_of``; returns the row count of each. ``weight`` is the 分值 of the
    自评表 money block (self_assessment_funds; the config's [publish] weight)."""
    if not _DUE.match(carryover_due):
        raise ValueError(f"carryover_due must be MM-DD, got {carryover_due!r}")
    weight = Decimal(str(weight))
    if not weight.is_finite() or weight <= 0 or weight.as_tuple().exponent < -4:
        raise ValueError(f"weight (分值) must be a positive number with at most 4 decimals, got {weight}")
    con.execute("set variable as_of = cast(? as date)", [as_of])
    con.execute("set variable carryover_due = ?", [carryover_due])
    con.execute("set variable weight = ?", [str(weight)])
    counts = {}
    # Views are inlined: every mart would re-derive the chain (int_payment_versions: two window passes over
    # every payment row) once per reference. Snapshot the relations several marts read, once, as temp tables of
    # the same name (the temp schema is searched first), and drop them afterwards so the views are seen again.
    db = first_row(con, "select current_database()")[0]
    for name in SHARED:
        con.execute(f'create or replace temp table "{name}" as select * from "{db}".main."{name}"')
    try:
        for name, body in as_of_definitions():  # in build order; build_views created the tables
            con.execute(f'delete from "{name}" where as_of = ?', [as_of])
            con.execute(f'insert into "{name}" by name select * from (\n{body}\n)')
            counts[name] = first_row(con, f'select count(*) from "{name}" where as_of = ?', [as_of])[0]
    finally:
        for name in reversed(SHARED):
            con.execute(f'drop table if exists temp.main."{name}"')
    log.info("reconciled as of %s: %s", as_of, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts
