"""Ingestion: read + parse + validate (+ load for the CSV), against pandas.read_excel for the xlsx.

- I1: ``--rows`` payments in ONE GB18030 CSV (``generate(split="none")``: title row, unit marker, totals row,
  thousands separators, 19-digit accounts, voided vouchers, a few bad rows): ``ingest`` then one atomic load
  (``db.writer`` + ``load.load_batches``) into a new DuckDB file. Target: < 10 s and < 1.5 GB at 1M rows.
- I2: ``--xlsx-rows`` payments in one xlsx: ``ingest`` only (the sha256 before the clock), against
  ``pandas.read_excel(path, engine="openpyxl")`` of the same file (calamine for reference). Target: >= 8x faster.

    .venv/bin/python -m bench.ingest [--rows 1000000] [--xlsx-rows 200000] [--repeat 3] [--dir bench/data]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from bench import harness

UNITS, PROJECTS = 20, 25
STAGES = [
    ("read_grid", "flows.ingest.validate", "read_grid"),
    ("extract", "flows.ingest.validate", "extract"),
    ("_validate (pandera)", "flows.ingest.validate", "_validate"),
    ("Build.__init__ (copy, schema)", "flows.warehouse.db", "Build.__init__"),
    ("load_batches", "flows.warehouse.load", "load_batches"),
    ("Build.publish", "flows.warehouse.db", "Build.publish"),
]


def _new_file(path: str):
    from flows.ingest.discover import NewFile, sha256_of

    p = Path(path)
    return NewFile(path=p, label=f"payments/{p.name}", kind="payments", sha256=sha256_of(p))


def ingest_load(path: str, load: bool):
    from flows.ingest.validate import ingest
    from flows.warehouse import db
    from flows.warehouse.load import load_batches

    new, work = _new_file(path), Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    yield
    batch = ingest(new, None)
    if load:
        with db.writer(work / "wh.duckdb") as con:
            load_batches(con, [batch], "bench")
    shutil.rmtree(work)
    return {"status": batch.status, "valid": batch.rows_valid, "rejected": batch.rows_rejected}


def read_excel(path: str, engine: str):
    import pandas as pd

    __import__("openpyxl" if engine == "openpyxl" else "python_calamine")
    yield
    return {"shape": list(pd.read_excel(path, engine=engine).shape)}


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--xlsx-rows", type=int, default=200_000)
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.xlsx_rows, args.repeat = 5_000, 2_000, 1
    common = {"units": UNITS, "projects_per_unit": PROJECTS, "split": "none", "seed": 20250101}
    year = harness.dataset(args.dir, f"year-{args.rows}-u{UNITS}", payments=args.rows, **common)
    xlsx = harness.dataset(
        args.dir, f"xlsx-{args.xlsx_rows}", payments=args.xlsx_rows, formats=["xlsx"], write_budget=False, **common
    )
    csv_path, xlsx_path = str(year / "payments/payments_2025.csv"), str(xlsx / "payments/payments_2025.xlsx")
    run = {"repeat": args.repeat, "stages": STAGES}
    i1 = harness.measure("bench.ingest:ingest_load", {"path": csv_path, "load": True}, **run)
    base = harness.measure("bench.ingest:read_excel", {"path": xlsx_path, "engine": "openpyxl"}, repeat=args.repeat)
    i2 = harness.measure("bench.ingest:ingest_load", {"path": xlsx_path, "load": False}, **run)
    cal = harness.measure("bench.ingest:read_excel", {"path": xlsx_path, "engine": "calamine"}, repeat=args.repeat)
    rows = [
        {
            "case": "I1",
            "what": "CSV GB18030: ingest + load",
            "rows": args.rows,
            "result": i1,
            "target": "< 10 s, < 1.5 GB (1M)",
        },
        {"case": "I2", "what": "pandas.read_excel(engine=openpyxl)", "rows": args.xlsx_rows, "result": base},
        {
            "case": "I2",
            "what": "xlsx: ingest (read, parse, validate)",
            "rows": args.xlsx_rows,
            "result": i2,
            "base": base,
            "target": ">= 8x faster (x base <= 0.125)",
        },
        {
            "case": "I2",
            "what": "(reference) read_excel(engine=calamine)",
            "rows": args.xlsx_rows,
            "result": cal,
            "base": base,
        },
    ]
    harness.report("Ingestion: read + parse + validate (+ load)", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
