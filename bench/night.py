"""A night's build end to end (issue 5's B1, B3 and Prefect's overhead), against the floor.

- B1: a fiscal year, ``--rows`` payments in ONE GB18030 CSV plus the budget sheet and refund notices
  (``generate(split="none")``, 20 units x 25 projects), on a new warehouse: ``build_night(raw_dir=...)``
  (discover, ingest, validate, load, reconcile, alerts, run record, atomic publish) then ``publish_outputs``
  (workbooks in worker processes, paragraphs, CSV + Parquet mart copies), no Prefect. Floors: DuckDB's own
  ``read_csv`` of the same file into a table of a new DuckDB file (``skip=2, header=true, all_varchar=true``),
  (a) from a UTF-8 copy, (b) with a Python GB18030 -> UTF-8 transcode first (DuckDB has no GB18030 decoder
  offline). Target: within 4x of floor b, peak RSS (with the publish workers) under 1.5 GB.
- B3: one daily export of 5,000 payments dated 2025-12-31 (``generate(day=..., start_no=10_000_000)``) next to
  the B1 files (hard links); a copy of B1's warehouse (made before the clock) gets the full run again. Target:
  under 10 % of B1.
- P: ``--prefect-rows`` payments through ``flows.nightly.recon_flow`` on Prefect's temporary local server
  (PREFECT_HOME under --dir; the environment ``recon run`` sets), the first flow of a process (it starts the
  server) and a second one, against ``build_night`` + ``publish_outputs`` on the same data.

    .venv/bin/python -m bench.night [--rows 1000000] [--prefect-rows 20000] [--repeat 3] [--skip P]
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench import harness

AS_OF = dt.date(2025, 12, 31)
COMMON = {"projects_per_unit": 25, "split": "none", "seed": 20250101}
PREFECT_ENV = {  # what `recon run` sets (flows/cli.py PREFECT_DEFAULTS)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}
STAGES = [
    ("discover", "flows.build", "discover"),
    ("ingest", "flows.build", "ingest"),
    ("Build.__init__ (copy, schema)", "flows.warehouse.db", "Build.__init__"),
    ("load.load_batches", "flows.warehouse.load", "load_batches"),
    ("transform.reconcile", "flows.warehouse.transform", "reconcile"),
    ("alerts.raise_and_notify", "flows.alerts.evaluate", "raise_and_notify"),
    ("Build.publish", "flows.warehouse.db", "Build.publish"),
    ("publish_outputs", "flows.publish.outputs", "publish_outputs"),
    ("  load_unit", "flows.publish.outputs", "load_unit"),
    ("  copy_mart", "flows.publish.outputs", "copy_mart"),
    ("  Workers.results (wait for workbooks)", "flows.publish.worker", "Workers.results"),
]


def floor(csv: str, transcode: bool, work: str):
    import duckdb

    db = Path(work) / "floor.duckdb"
    db.unlink(missing_ok=True)
    yield
    src = Path(csv)
    if transcode:
        decoder, src = codecs.getincrementaldecoder("gb18030")(), Path(work) / "utf8.csv"
        with open(csv, "rb") as f, src.open("wb") as out:
            while chunk := f.read(16 << 20):
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    con = duckdb.connect(str(db))
    con.execute("create table p as select * from read_csv(?, skip = 2, header = true, all_varchar = true)", [str(src)])
    rows = con.execute("select count(*) from p").fetchone()[0]
    con.close()
    return {"rows_in_table": rows}


def build_and_publish(raw: str, warehouse: str, base: str | None = None):
    from flows.build import build_night
    from flows.publish.outputs import publish_outputs

    wh = Path(warehouse)
    wh.unlink(missing_ok=True)
    if base:
        shutil.copyfile(base, wh)
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    yield
    night = build_night(wh, AS_OF, raw_dir=Path(raw))
    written = publish_outputs(wh, out, AS_OF)
    shutil.rmtree(out)
    return {"loaded": [(b.file_name, b.rows_valid) for b in night.loaded], "outputs": len(written)}


def prefect_flows(raw: str, work: str):
    from flows.nightly import recon_flow

    yield
    seconds = []
    for i in (1, 2):
        t = dt.datetime.now()
        r = recon_flow(raw_dir=raw, warehouse_path=f"{work}/wh{i}.duckdb", out_dir=f"{work}/out{i}", as_of=AS_OF)
        seconds.append((dt.datetime.now() - t).total_seconds())
        assert r["outputs"], r
    return {"first_s": seconds[0], "second_s": seconds[1]}


def _utf8_copy(csv: Path, dst: Path) -> Path:
    if not dst.exists() or dst.stat().st_mtime < csv.stat().st_mtime:
        dst.write_text(csv.read_text(encoding="gb18030"), encoding="utf-8")
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--prefect-rows", type=int, default=20_000)
    ap.add_argument("--units", type=int, default=20, help="units: one workbook each")
    ap.add_argument("--skip", default="", help="cases to leave out, e.g. P or B3,P")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.prefect_rows, args.repeat, args.units = 5_000, 2_000, 1, 2
    common = {**COMMON, "units": args.units}
    skip = set(filter(None, args.skip.upper().split(",")))
    year = harness.dataset(args.dir, f"year-{args.rows}-u{args.units}", payments=args.rows, **common)
    csv = year / "payments" / "payments_2025.csv"
    work = Path(tempfile.mkdtemp(prefix="bench-night-", dir=args.dir))
    rep, rows, notes = {"repeat": args.repeat}, [], []
    utf8 = _utf8_copy(
        csv, args.dir / f"year-{args.rows}-u{args.units}.utf8.csv"
    )  # outside the raw folder: not discovered
    fa = harness.measure("bench.night:floor", {"csv": str(utf8), "transcode": False, "work": str(work)}, **rep)
    fb = harness.measure("bench.night:floor", {"csv": str(csv), "transcode": True, "work": str(work)}, **rep)
    b1_wh = work / "b1.duckdb"
    b1 = harness.measure(
        "bench.night:build_and_publish", {"raw": str(year), "warehouse": str(b1_wh)}, stages=STAGES, **rep
    )
    rows += [
        {"case": "B1", "what": "floor a: DuckDB read_csv of a UTF-8 copy", "rows": args.rows, "result": fa},
        {
            "case": "B1",
            "what": "floor b: transcode GB18030->UTF-8 + read_csv",
            "rows": args.rows,
            "result": fb,
            "base": fa,
        },
        {
            "case": "B1",
            "what": "build_night + publish_outputs, vs floor b",
            "rows": args.rows,
            "result": b1,
            "base": fb,
            "target": "<= 4x floor b, < 1.5 GB",
        },
    ]
    if "B3" not in skip:
        daily = harness.dataset(
            args.dir,
            f"daily-5000-u{args.units}",
            payments=5_000,
            day=AS_OF.isoformat(),
            start_no=10_000_000,
            write_budget=False,
            **common,
        )
        raw = work / "raw-b3"
        for src in [*year.rglob("*_2025.*"), *daily.rglob("payments_*.csv")]:
            (raw / src.parent.name).mkdir(parents=True, exist_ok=True)
            os.link(src, raw / src.parent.name / src.name)
        b3 = harness.measure(
            "bench.night:build_and_publish",
            {"raw": str(raw), "warehouse": str(work / "b3.duckdb"), "base": str(b1_wh)},
            stages=STAGES,
            **rep,
        )
        rows.append(
            {
                "case": "B3",
                "what": "a night adding 5,000 payments, vs B1",
                "rows": 5_000,
                "result": b3,
                "base": b1,
                "target": "< 10 % of B1 (x base < 0.10)",
            }
        )
    if "P" not in skip:
        small = harness.dataset(
            args.dir, f"year-{args.prefect_rows}-u{args.units}", payments=args.prefect_rows, **common
        )
        plain = harness.measure(
            "bench.night:build_and_publish", {"raw": str(small), "warehouse": str(work / "p.duckdb")}, **rep
        )
        env = {**PREFECT_ENV, "PREFECT_HOME": str(args.dir / "prefect-home")}
        harness.run_child("bench.night:prefect_flows", {"raw": str(small), "work": str(work / "warm")}, env=env)
        flow = harness.measure("bench.night:prefect_flows", {"raw": str(small), "work": str(work)}, env=env, **rep)
        first, second = (
            {**flow, "wall_s": flow["facts"][k], "min_s": flow["facts"][k], "max_s": flow["facts"][k], "stages": {}}
            for k in ("first_s", "second_s")
        )
        rows += [
            {"case": "P", "what": "build_night + publish_outputs", "rows": args.prefect_rows, "result": plain},
            {
                "case": "P",
                "what": "recon_flow, 1st in process (starts server)",
                "rows": args.prefect_rows,
                "result": first,
                "base": plain,
            },
            {
                "case": "P",
                "what": "recon_flow, 2nd in the same process",
                "rows": args.prefect_rows,
                "result": second,
                "base": plain,
            },
        ]
        notes.append("P: the flows' figures are of the median process's runs; cpu and peak of the whole process")
    shutil.rmtree(work, ignore_errors=True)
    harness.report("A night's build: B1 (year), B3 (one more night), P (Prefect's overhead)", rows, args.json, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
