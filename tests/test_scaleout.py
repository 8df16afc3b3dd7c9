"""Scale-out: the per-file work on a local Dask cluster with two workers gives the same warehouse as threads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flows.demo.generate import generate
from flows.nightly import with_task_runner
from flows.warehouse import db

RUN_SPECIFIC = {
    "loaded_at",
    "run_id",
    "first_seen",
    "last_seen",
    "resolved_at",
    "notified_at",
    "created_at",
    "delivered_at",
    "started_at",
    "finished_at",
}
PUBLIC = [
    "payments",
    "budget_lines",
    "source_files",
    "rejected_rows",
    "exceptions",
    "execution_by_project",
    "execution_by_unit",
    "execution_by_quarter",
    "carryover_squeeze",
    "alerts",
    "raw_extra_columns",
]


def contents(wh: Path) -> dict[str, list]:
    out = {}
    with db.read_only(wh) as con:
        for name in PUBLIC:
            cols = [d[0] for d in con.execute(f'select * from "{name}" limit 0').description]
            keep = ", ".join(f'"{c}"' for c in cols if c not in RUN_SPECIFIC)
            out[name] = sorted(map(repr, con.execute(f'select {keep} from "{name}"').fetchall()))
    return out


def test_dask_local_cluster_gives_the_same_warehouse(prefect_server, tmp_path: Path):
    raw = tmp_path / "raw"
    generate(raw, payments=6000, units=4, projects_per_unit=5, formats=("csv", "xlsx"), seed=7)
    as_of = dt.date(2025, 9, 30)
    threads = with_task_runner("threads")(
        raw_dir=str(raw), warehouse_path=str(tmp_path / "threads.duckdb"), out_dir=str(tmp_path / "o1"), as_of=as_of
    )
    dask = with_task_runner("dask", workers=2)(
        raw_dir=str(raw), warehouse_path=str(tmp_path / "dask.duckdb"), out_dir=str(tmp_path / "o2"), as_of=as_of
    )
    assert threads["files_new"] == dask["files_new"] == 10
    a, b = contents(tmp_path / "threads.duckdb"), contents(tmp_path / "dask.duckdb")
    assert a["payments"] and a["execution_by_project"] and a["rejected_rows"]
    for name in PUBLIC:
        assert a[name] == b[name], name
