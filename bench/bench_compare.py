"""Benchmark against the alternatives (issue 5): the pipeline next to what a user could do instead (not a test).

    python bench/bench_compare.py [--rows 1000000] [--xlsx-rows 200000] [--big-rows 10000000]
                                  [--prefect-rows 20000] [--seed 20250101] [--dir bench/data] [--keep]
                                  [--repeat 3] [--big-repeat 3] [--skip B4,P]

One run, one set of data, one table. Every figure is the median of ``--repeat`` fresh processes (``--big-repeat``
for the big reconcile) with its ratio to a baseline measured in the same run; each measurement runs in its own
Python process started from this small one, so its peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) is its own
(Linux carries a parent's ru_maxrss across fork + exec, so this process never generates or loads data itself).
Imports happen before the clock in every measured process.

B1  A fiscal year, ``--rows`` payments in ONE GB18030 CSV from ``flows.demo.generate.generate(split="none", units=20,
    projects_per_unit=25)`` plus its budget sheet and refund notices, end to end on a new warehouse:
    ``build_night`` (discover -> ingest -> validate -> load -> reconcile -> alerts, one atomic publish) then
    ``publish.publish_outputs`` (plain functions, no Prefect). Baselines, DuckDB's own ``read_csv`` of the same
    data into a table of a new DuckDB file (``skip=2, header=true, all_varchar=true``: the file's title and unit
    rows skipped; typed sniffing stops at the file's bad rows, so every column stays text): (a) of a UTF-8 copy of
    the file (DuckDB has no GB18030 decoder offline: the encodings extension is not installed), (b) a Python
    transcode GB18030 -> UTF-8 (16 MiB chunks, to a temporary file) + the same ``read_csv``. Target: within 4x of
    the floor, peak RSS under 1.5 GB (1536 MiB); judged on the process's own peak and, since publish_outputs builds
    workbooks in worker processes, on the peak of the process and its workers together (RSS summed, sampled every
    0.1 s; shared library pages count once per process, so this errs high).
B2  ``--xlsx-rows`` payments in one xlsx (``generate(formats=("xlsx",))``), ``ingest`` only (read, parse,
    validate; the sha256 is computed before the clock), against ``pandas.read_excel(path, engine="openpyxl")`` of
    the same file and nothing else. ``engine="calamine"`` is shown for reference. Target: at least 8x faster.
B3  An incremental night: one daily export of 5,000 payments dated 2025-12-31 (``generate(day=..., start_no=
    10_000_000, write_budget=False, split="none")``) lands in a raw folder holding the B1 files (hard links); a
    copy of the warehouse B1 published (copied before the clock) gets the full run again: ``build_night`` (discover
    hashes every file and skips the known ones, ingest + load the new one, reconcile as of 2025-12-31) then
    ``publish_outputs``. Baseline: B1's pipeline. Target: under 10 % of B1.
B4  ``flows.warehouse.transform.reconcile`` alone inside ``db.Build(...).transaction()`` (the private copy is made
    before the clock; the commit is inside it), as of 2025-12-31, on the warehouse B1 published and on a
    ``--big-rows`` one made from it in SQL (not measured): raw_payments, raw_refunds, rejected_rows and the
    source_file_log rows of the payment and refund files replicated as further exports with new voucher and refund
    numbers (PV2025 + number + k * 20,000,000; the 原支付凭证号 of refunds and negative vouchers follow), and the
    budget's money columns multiplied by the same factor so that execution rates stay what they were. Baseline:
    the same at ``--rows``. Target: the big one under 60 s and 4 GB (4096 MiB); linear growth means ~10x.
P   Prefect's own overhead: the ``--prefect-rows`` data (same generator) on a new warehouse via
    ``flows.nightly.recon_flow`` against a local ephemeral Prefect server (PREFECT_SERVER_ALLOW_EPHEMERAL_MODE
    default; PREFECT_HOME under --dir; one unmeasured warm-up run first creates its database; the environment
    ``recon run`` sets: PREFECT_SERVER_ANALYTICS_ENABLED=false, DO_NOT_TRACK=1, PREFECT_TASKS_DEFAULT_NO_CACHE=true,
    PREFECT_LOGGING_LEVEL=WARNING), both the first flow of the process (which starts the temporary server) and a
    second one in the same process; against plain ``build_night`` + ``publish_outputs`` and against the flow's own
    steps without Prefect (which add ``alerts.raise_and_notify``).

Where the time goes: timers wrapped around functions of flows/ in the measuring process (flows/ itself is not
changed), and a proxy connection that times each ``insert into "<mart>"`` of reconcile. MiB = 2**20 bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (str(REPO), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# Shared helpers of the ingest benchmark (standard library only at import: this process stays small).
from bench_ingest import _commit, _maxrss_mib, _nproc, _proc_status_mib  # noqa: E402
from bench_ingest import _install_timers as _install_stage_timers  # noqa: E402
from bench_ingest import _versions as _base_versions  # noqa: E402

FISCAL_YEAR = 2025
AS_OF = dt.date(2025, 12, 31)
UNITS, PROJECTS_PER_UNIT = 20, 25
DAILY_ROWS, DAILY_START_NO, DAILY_DAY = 5_000, 10_000_000, dt.date(2025, 12, 31)
REPLICA_STEP = 20_000_000  # voucher-number offset of each replica in the big warehouse
MIB_1_5_GB, MIB_4_GB = 1536.0, 4096.0
CASES = ("B1", "B2", "B3", "B4", "P")
PREFECT_ENV = {  # what `recon run` sets (flows/cli.py PREFECT_DEFAULTS)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}

# (label, module, attribute, depth): wrapped with a timer in the measuring process; depth indents the report
STAGES = [
    ("warehouse.known_files", "flows.warehouse.db", "known_files", 0),
    ("discover", "flows.build", "discover", 0),
    ("sha256_of (every file in raw/)", "flows.ingest.discover", "sha256_of", 1),
    ("ingest", "flows.build", "ingest", 0),
    ("Build.__init__", "flows.warehouse.db", "Build.__init__", 0),
    ("shutil.copyfile (warehouse copy)", "shutil", "copyfile", 1),
    ("ensure_schema", "flows.warehouse.db", "ensure_schema", 1),
    ("load.load_batches", "flows.warehouse.load", "load_batches", 0),
    ("transform.reconcile", "flows.warehouse.transform", "reconcile", 0),
    ("alerts.raise_and_notify", "flows.alerts.evaluate", "raise_and_notify", 0),
    ("Build.publish (checkpoint, os.replace)", "flows.warehouse.db", "Build.publish", 0),
    ("publish.publish_outputs", "flows.publish.outputs", "publish_outputs", 0),
    ("prepare (shared reads, voucher temp table)", "flows.publish.outputs", "prepare", 1),
    ("load_unit (queries of the marts)", "flows.publish.outputs", "load_unit", 1),
    ("copy_mart (CSV + Parquet)", "flows.publish.outputs", "copy_mart", 1),
    ("write_documents (here: one process only)", "flows.publish.outputs", "write_documents", 1),
    ("build_workbook", "flows.publish.documents", "build_workbook", 2),
    ("Workers.results (wait for the workbook processes)", "flows.publish.worker", "Workers.results", 1),
]
_INSERT = re.compile(r'\s*insert into "([^"]+)"', re.IGNORECASE)


# --------------------------------------------------------------------------------------------------------------------
# Measuring process
# --------------------------------------------------------------------------------------------------------------------


def _record(record: dict, label: str, seconds: float) -> None:
    r = record.setdefault(label, {"calls": 0, "seconds": 0.0})
    r["calls"] += 1
    r["seconds"] += seconds
    r["hwm_mib"] = _proc_status_mib("VmHWM")


class _TimedCon:
    """A DuckDB connection that times each ``insert into "<mart>"`` (the rest of reconcile as one line)."""

    def __init__(self, con, record: dict):
        self._con, self._record = con, record

    def execute(self, sql, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            m = _INSERT.match(sql)
            label = f"reconcile: insert {m.group(1)}" if m else "reconcile: other statements"
            _record(self._record, label, time.perf_counter() - t)

    def __getattr__(self, name):
        return getattr(self._con, name)


def _install_timers(record: dict) -> None:
    _install_stage_timers(record, STAGES)
    from flows.warehouse import transform

    marts = transform.reconcile

    def timed_marts(con, *a, **k):
        return marts(_TimedCon(con, record), *a, **k)

    transform.reconcile = timed_marts


def _descendants() -> list[int]:
    """The pids of this process's live descendants."""
    out, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _status_mib(pid: int, field: str) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(x.split()[1]) / 1024 for x in status.splitlines() if x.startswith(f"{field}:")), 0.0)


def _tree_rss_mib() -> float:
    """RSS of this process and all its live descendants, summed (MiB)."""
    return sum(_status_mib(pid, "VmRSS") for pid in [os.getpid(), *_descendants()])


class _Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, _tree_rss_mib())
            self.stop.wait(0.1)


def _cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _descendants_hwm() -> list[tuple[int, str, float]]:
    """(pid, command, VmHWM MiB) of this process's live descendants (the Prefect temporary server)."""
    out = []
    for kid in _descendants():
        try:
            cmd = Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out.append((kid, cmd.strip()[:100], _status_mib(kid, "VmHWM")))
    return out


def _warehouse_check(path: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        n, total = con.execute("select count(*), sum(pay_amt) from raw_payments").fetchone()
        files = con.execute("select count(*) from source_file_log").fetchone()[0]
        exc = con.execute("select count(*) from exceptions where as_of = ?", [AS_OF]).fetchone()[0]
    finally:
        con.close()
    return {"raw_payments": n, "sum_pay_amt": str(total), "files_logged": files, "exceptions": exc}


def _result(t0: float, t1: float, cpu0: float, **extra) -> None:
    out = {
        "wall_s": t1 - t0,
        "cpu_s": _cpu_s() - cpu0,
        "peak_rss_mib": _maxrss_mib(),
        "vmhwm_mib": _proc_status_mib("VmHWM"),
        **extra,
    }
    print("BENCH-RESULT " + json.dumps(out, ensure_ascii=False, default=str))


def child_floor(utf8: str | None, gb18030: str | None, work: str) -> None:
    """DuckDB read_csv into a table of a new DuckDB file; with gb18030, a Python transcode to UTF-8 first."""
    import codecs

    import duckdb

    db, tmp = Path(work) / "floor.duckdb", Path(work) / "transcoded.utf8.csv"
    cpu0, t0 = _cpu_s(), time.perf_counter()
    transcode_s = None
    if gb18030:
        decoder = codecs.getincrementaldecoder("gb18030")()
        with open(gb18030, "rb") as src, tmp.open("wb") as out:
            while chunk := src.read(16 << 20):
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
        utf8 = str(tmp)
        transcode_s = time.perf_counter() - t0
    con = duckdb.connect(str(db))
    con.execute(
        "create table payments as select * from read_csv(?, skip = 2, header = true, all_varchar = true)", [utf8]
    )
    con.close()
    t1 = time.perf_counter()
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("select count(*) from payments").fetchone()[0]
    con.close()
    _result(t0, t1, cpu0, rows_in_table=rows, transcode_s=transcode_s)


def child_pipeline(raw: str, mode: str, work: str) -> None:
    """mode plain: build_night(raw_dir=...) + publish_outputs; steps: the flow's steps without Prefect (ingest_all,
    then build_night on its batches: the same work, ingest timed apart). Both include alerts and the run record."""
    t = time.perf_counter()
    from flows.build import build_night, ingest_all
    from flows.publish import outputs

    import_s = time.perf_counter() - t
    stages: dict = {}
    _install_timers(stages)
    wh, out = Path(work) / "wh.duckdb", Path(work) / "out"
    sampler = _Sampler()  # the publish workers are processes of their own: their memory counts too
    sampler.start()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    if mode == "plain":
        loaded = build_night(wh, AS_OF, raw_dir=Path(raw), run_id="bench").loaded
    else:
        batches, skipped = ingest_all(Path(raw), wh)
        loaded = build_night(wh, AS_OF, batches=batches, skipped=skipped, run_id="bench").loaded
    t_run = time.perf_counter()
    written = outputs.publish_outputs(wh, out, AS_OF)
    t1 = time.perf_counter()
    sampler.stop.set()
    sampler.join()
    _result(
        t0,
        t1,
        cpu0,
        import_s=import_s,
        tree_peak_mib=sampler.peak,
        run_s=t_run - t0,
        publish_s=t1 - t_run,
        files_loaded=[(b.file_name, b.status, b.rows_valid, b.rows_rejected) for b in loaded],
        outputs=len(written),
        check=_warehouse_check(wh),
        stages=stages,
    )


def child_flow(raw: str, work: str) -> None:
    """recon_flow twice in one process, each on a new warehouse: the first starts Prefect's temporary server."""
    t = time.perf_counter()
    from flows.nightly import recon_flow

    import_s = time.perf_counter() - t
    stages: dict = {}
    _install_timers(stages)
    runs = []
    for i in (1, 2):
        cpu0, t0 = _cpu_s(), time.perf_counter()
        r = recon_flow(
            raw_dir=raw,
            warehouse_path=str(Path(work) / f"wh{i}.duckdb"),
            out_dir=str(Path(work) / f"out{i}"),
            as_of=AS_OF,
        )
        runs.append(
            {
                "t0": t0,
                "t1": time.perf_counter(),
                "cpu0": cpu0,
                "cpu_s": _cpu_s() - cpu0,
                "peak_rss_mib": _maxrss_mib(),
                "files_new": r["files_new"],
                "outputs": len(r["outputs"]),
                "stages": json.loads(json.dumps(stages)),
            }
        )
        stages.clear()
    server = _descendants_hwm()  # the temporary server runs until this process exits
    first, second = runs
    _result(
        first["t0"],
        first["t1"],
        first["cpu0"],
        cpu_s=first["cpu_s"],
        peak_rss_mib=first["peak_rss_mib"],
        import_s=import_s,
        second={
            "wall_s": second["t1"] - second["t0"],
            "cpu_s": second["cpu_s"],
            "peak_rss_mib": second["peak_rss_mib"],
        },
        outputs=[first["outputs"], second["outputs"]],
        files_new=[first["files_new"], second["files_new"]],
        server=server,
        check=_warehouse_check(Path(work) / "wh1.duckdb"),
        stages=first["stages"],
        stages_second=second["stages"],
    )


def child_ingest_xlsx(path: str) -> None:
    from flows.ingest.discover import NewFile, sha256_of
    from flows.ingest.validate import ingest

    p = Path(path)
    new = NewFile(path=p, label=f"payments/{p.name}", kind="payments", sha256=sha256_of(p))
    cpu0, t0 = _cpu_s(), time.perf_counter()
    batch = ingest(new, None)
    t1 = time.perf_counter()
    _result(
        t0,
        t1,
        cpu0,
        status=batch.status,
        rows_valid=batch.rows_valid,
        rows_rejected=batch.rows_rejected,
        rows_skipped=batch.rows_skipped,
    )


def child_read_excel(path: str, engine: str) -> None:
    import pandas as pd

    if engine == "openpyxl":
        import openpyxl  # noqa: F401  (imported before the clock like every other import)
    else:
        import python_calamine  # noqa: F401
    cpu0, t0 = _cpu_s(), time.perf_counter()
    df = pd.read_excel(path, engine=engine)
    t1 = time.perf_counter()
    _result(t0, t1, cpu0, shape=list(df.shape))


def child_reconcile(wh: str) -> None:
    from flows.warehouse import db
    from flows.warehouse.transform import reconcile

    stages: dict = {}
    t = time.perf_counter()
    build = db.Build(Path(wh))
    build_s = time.perf_counter() - t
    try:
        cpu0, t0 = _cpu_s(), time.perf_counter()
        with build.transaction() as con:
            counts = reconcile(_TimedCon(con, stages), AS_OF)
        t1 = time.perf_counter()
        rows = build.con.execute("select count(*) from raw_payments").fetchone()[0]
    finally:
        build.abandon()
    _result(t0, t1, cpu0, build_copy_s=build_s, counts=counts, raw_payments=rows, stages=stages)


# --------------------------------------------------------------------------------------------------------------------
# Data (each step in its own process, not measured)
# --------------------------------------------------------------------------------------------------------------------


def prep_year(out: str, rows: int, seed: int) -> None:
    from flows.demo.generate import generate

    generate(Path(out), payments=rows, units=UNITS, projects_per_unit=PROJECTS_PER_UNIT, split="none", seed=seed)


def prep_xlsx(out: str, rows: int, seed: int) -> None:
    from flows.demo.generate import generate

    generate(
        Path(out),
        payments=rows,
        units=UNITS,
        projects_per_unit=PROJECTS_PER_UNIT,
        split="none",
        formats=("xlsx",),
        write_budget=False,
        seed=seed,
    )


def prep_daily(out: str, seed: int) -> None:
    from flows.demo.generate import generate

    generate(
        Path(out),
        payments=DAILY_ROWS,
        units=UNITS,
        projects_per_unit=PROJECTS_PER_UNIT,
        split="none",
        day=DAILY_DAY,
        start_no=DAILY_START_NO,
        write_budget=False,
        seed=seed,
    )


def prep_utf8(src: str, dst: str) -> None:
    Path(dst).write_text(Path(src).read_text(encoding="gb18030"), encoding="utf-8")


def prep_warehouse(raw: str, wh: str) -> None:
    """Only when B1 is skipped: the warehouse B3 and B4 start from."""
    from flows.build import build_night

    build_night(Path(wh), AS_OF, raw_dir=Path(raw), run_id="bench-prep")


def _remap(column: str, step: int, width: int) -> str:
    """A voucher/refund number of replica r.k: the digits after the 6-character prefix + k * step, same width."""
    return (
        f"case when try_cast(substr({column}, 7) as bigint) is null then {column} || '-r' || r.k"
        f" else substr({column}, 1, 6) || lpad(cast(cast(substr({column}, 7) as bigint) + r.k * {step} as varchar),"
        f" {width}, '0') end"
    )


def prep_big(src: str, dst: str, factor: int) -> None:
    """The big warehouse: a copy of src with the payment and refund exports replicated factor times in SQL."""
    from flows.warehouse import db

    shutil.copyfile(src, dst)
    con = db.connect(dst)
    try:
        con.execute("begin transaction")
        con.execute("create temp table rep as select range as k from range(1, ?)", [factor])
        step = con.execute("select coalesce(max(file_id), 0) from source_file_log").fetchone()[0] + 1

        def columns(table):
            return [r[0] for r in con.execute(f"describe {table}").fetchall()]

        def select(table, special):
            return ", ".join(special.get(c, f'x."{c}"') for c in columns(table))

        renamed = "regexp_replace(x.{c}, '(\\.[^./]*)$', '_r' || r.k || '\\1')"
        common = {"file_id": f"x.file_id + r.k * {step}", "source_file": renamed.format(c="source_file")}
        kinds = "(select file_id from source_file_log where kind in ('payments', 'refunds'))"
        log_cols = {
            "file_id": f"x.file_id + r.k * {step}",
            "file_name": renamed.format(c="file_name"),
            "file_path": renamed.format(c="file_path"),
            "sha256": "x.sha256 || '-r' || r.k",
        }
        con.execute(
            f"insert into source_file_log select {select('source_file_log', log_cols)} from source_file_log x, rep r"
            f" where x.file_id in {kinds}"
        )
        pay = {
            **common,
            "pay_cert_no": _remap("x.pay_cert_no", REPLICA_STEP, 9),
            "ori_pay_cert_no": _remap("x.ori_pay_cert_no", REPLICA_STEP, 9),
        }
        con.execute(f"insert into raw_payments select {select('raw_payments', pay)} from raw_payments x, rep r")
        ref = {
            **common,
            "refund_no": _remap("x.refund_no", 1_000_000, 7),
            "ori_pay_cert_no": _remap("x.ori_pay_cert_no", REPLICA_STEP, 9),
        }
        con.execute(f"insert into raw_refunds select {select('raw_refunds', ref)} from raw_refunds x, rep r")
        for table in ("rejected_rows", "raw_extra_columns"):
            con.execute(
                f"insert into {table} select {select(table, common)} from {table} x, rep r where x.file_id in {kinds}"
            )
        money = [c for c in ("reply_amt", "adj_amt", "cur_amt", "carryover_amt", "plan_q1", "plan_q2", "plan_q3",
                             "plan_q4") if c in columns("raw_budget_lines")]  # fmt: skip
        con.execute(f"update raw_budget_lines set {', '.join(f'{c} = {c} * {factor}' for c in money)}")
        con.execute(
            f"update source_file_log set control_total = control_total * {factor},"
            f" parsed_total = parsed_total * {factor} where kind = 'budget'"
        )
        con.execute("commit")
        con.execute("checkpoint")
    finally:
        con.close()


# --------------------------------------------------------------------------------------------------------------------
# This (small) process: run the children, then report
# --------------------------------------------------------------------------------------------------------------------


def _run_child(task: str, *args, env: dict | None = None, cwd: Path = REPO, prep: bool = False) -> dict | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task, json.dumps([str(a) for a in args])]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-20000:] + proc.stderr[-20000:])
        raise SystemExit(f"{task} failed (exit {proc.returncode})")
    if prep:
        print(f"  prepared {task} {args[0]} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        return None
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH-RESULT "))
    r = json.loads(line.removeprefix("BENCH-RESULT "))
    r["loadavg"] = load
    print(f"  {task} {r['wall_s']:.2f} s, peak {r['peak_rss_mib']:,.0f} MiB (load avg {load:.2f})", file=sys.stderr)
    return r


def _measure(
    label: str, n: int, task: str, *args, fresh_work: Path | None = None, before=None, after=None, **kw
) -> list[dict]:
    """n fresh processes; fresh_work: a new work folder under it per run, passed as the last argument, prepared by
    ``before(work)`` and looked at by ``after(work)`` (not measured), then removed."""
    runs = []
    for i in range(n):
        print(f"measuring {label} ({i + 1}/{n}) ...", file=sys.stderr)
        work = Path(tempfile.mkdtemp(prefix="compare-work-", dir=fresh_work)) if fresh_work else None
        try:
            if before:
                before(work)
            runs.append(_run_child(task, *args, *([work] if work else []), **kw))
            if after:
                after(work)
        finally:
            if work:
                shutil.rmtree(work, ignore_errors=True)
    return runs


class Data:
    """The data folder: each data set in its own folder, marked done when complete (reused with --keep)."""

    def __init__(self, root: Path, keep: bool):
        self.root, self.keep, self.made = root, keep, []
        root.mkdir(parents=True, exist_ok=True)

    def get(self, name: str, make) -> Path:
        path = self.root / name
        done = self.root / f"{name}.done"
        if not (self.keep and done.exists() and path.exists()):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            make(path)
            done.touch()
        self.made += [path, done]
        return path

    def cleanup(self) -> None:
        if self.keep:
            return
        for path in self.made:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".lock").unlink(missing_ok=True)  # db.Build's lock file
        for leftover in self.root.glob("compare-work-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(self.root / "compare-prefect-home", ignore_errors=True)
        if self.root.exists() and not any(self.root.iterdir()):
            self.root.rmdir()


def _code_fingerprint() -> str:
    """A hash of flows/, schemas/ and sql/ as they are on disk: a change during the run mixes versions."""
    import hashlib

    h = hashlib.sha256()
    for folder in ("flows", "schemas", "sql"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def _median(runs: list[dict], key: str = "wall_s") -> dict:
    return sorted(runs, key=lambda r: r[key])[(len(runs) - 1) // 2]


def _summary(runs: list[dict] | None) -> dict | None:
    if not runs:
        return None
    walls = [r["wall_s"] for r in runs]
    return {
        "runs": runs,
        "median": _median(runs),
        "wall": statistics.median(walls),
        "min": min(walls),
        "max": max(walls),
        "peak": max(r["peak_rss_mib"] for r in runs),
        "n": len(runs),
    }


def _x(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    extra = []
    for name in ("prefect", "openpyxl", "python-calamine"):
        try:
            extra.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            extra.append(f"{name} -")
    return _base_versions() + ", " + ", ".join(extra)


def _versions_in_child() -> str:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", "versions", "[]"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "-"


def _mem_total() -> str:
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        return f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        return "-"


def _verdict(misses: list[str], ok: str = "PASS") -> str:
    return ok if not misses else "MISS: " + "; ".join(misses)


def _table_lines(args, s: dict) -> list[tuple]:
    """(case, key, label, rows, baseline key or None, target, verdict)."""
    lines = []
    r1, rx = args.rows, args.xlsx_rows
    if s.get("b1"):
        b1 = s["b1"]
        lines += [
            ("B1", "b1_floor_a", "floor a: DuckDB read_csv of a UTF-8 copy", r1, None, "", "base"),
            ("B1", "b1_floor_b", "floor b: Python GB18030->UTF-8 + read_csv", r1, "b1_floor_a", "", ""),
        ]
        tree = max(r.get("tree_peak_mib", 0) for r in b1["runs"])
        for key, name in (("b1_floor_a", "a"), ("b1_floor_b", "b")):
            ratio = b1["wall"] / s[key]["wall"]
            misses = [f"{ratio:.1f}x > 4x"] if ratio > 4 else []
            if b1["peak"] >= MIB_1_5_GB:
                misses.append(f"{b1['peak']:,.0f} MiB >= 1536")
            if tree >= MIB_1_5_GB:
                misses.append(f"{tree:,.0f} MiB with the publish workers >= 1536")
            label = f"pipeline: build_night + publish_outputs, vs floor {name}"
            lines.append(("B1", "b1", label, r1, key, f"<= 4x floor {name}, < 1.5 GB", _verdict(misses)))
    if s.get("b2_ingest"):
        speed = s["b2_openpyxl"]["wall"] / s["b2_ingest"]["wall"]
        verdict = _verdict([f"only {speed:.1f}x faster"] if speed < 8 else [], f"PASS ({speed:.1f}x faster)")
        lines += [
            ("B2", "b2_openpyxl", "pandas.read_excel(engine=openpyxl)", rx, None, "", "base"),
            (
                "B2",
                "b2_ingest",
                "ingest (read + parse + validate)",
                rx,
                "b2_openpyxl",
                ">= 8x faster",
                verdict,
            ),
            ("B2", "b2_calamine", "(reference) pandas.read_excel(engine=calamine)", rx, "b2_openpyxl", "", ""),
        ]
    if s.get("b3"):
        if s.get("b1"):
            share = s["b3"]["wall"] / s["b1"]["wall"]
            verdict = _verdict([f"{share:.0%} of B1"] if share >= 0.10 else [], f"PASS ({share:.1%} of B1)")
            lines.append(("B3", "b1", "B1 pipeline (full year, new warehouse)", r1, None, "", "base"))
        else:
            verdict = "n/a (B1 skipped: no baseline)"
        lines.append(
            (
                "B3",
                "b3",
                f"incremental night: +{DAILY_ROWS:,} payments, full run",
                DAILY_ROWS,
                "b1",
                "< 10 % of B1",
                verdict,
            )
        )
    if s.get("b4_1m"):
        lines.append(
            ("B4", "b4_1m", "reconcile only, warehouse of B1", s["b4_1m"]["median"]["raw_payments"], None, "", "base")
        )
    if s.get("b4_big"):
        big = s["b4_big"]
        misses = []
        if big["wall"] >= 60:
            misses.append(f"{big['wall']:.1f} s >= 60 s")
        if big["peak"] >= MIB_4_GB:
            misses.append(f"{big['peak']:,.0f} MiB >= 4096")
        rows = big["median"]["raw_payments"]
        lines.append(
            ("B4", "b4_big", "reconcile only, replicated warehouse", rows, "b4_1m", "< 60 s, < 4 GB", _verdict(misses))
        )
    if s.get("p_plain"):
        rp = args.prefect_rows
        lines += [
            ("P", "p_plain", "plain: build_night + publish_outputs", rp, None, "", "base"),
            ("P", "p_steps", "plain: the flow's steps (+ alerts), no Prefect", rp, "p_plain", "", ""),
            ("P", "p_flow", "recon_flow, 1st in process (starts temp server)", rp, "p_plain", "", ""),
            ("P", "p_flow2", "recon_flow, 2nd in the same process", rp, "p_plain", "", ""),
        ]
    return lines


def _side_by_side(title: str, cols: list[tuple[str, dict]]) -> list[str]:
    """Stage seconds of several median runs next to each other, in STAGES order then the marts by time."""
    present = [(name, r.get("stages") or {}) for name, r in cols]
    depth = {label: d for label, _m, _a, d in STAGES}
    labels = [label for label, *_ in STAGES if any(label in st for _, st in present)]
    marts = sorted(
        {k for _, st in present for k in st if k.startswith("reconcile:")},
        key=lambda k: -max(st.get(k, {}).get("seconds", 0) for _, st in present),
    )
    order = []
    for label in labels:
        order.append((label, depth[label]))
        if label == "transform.reconcile":
            order += [(k, 1) for k in marts]
    if "transform.reconcile" not in labels:
        order += [(k, 0) for k in marts]
    head = f"    {'stage':<54}" + "".join(f" {name:>22}" for name, _ in present)
    out = [f"  {title}", head]
    for label, d in order:
        row = f"    {'  ' * d + label:<54}"
        for _, st in present:
            v = st.get(label)
            row += f" {'-':>22}" if v is None else f" {v['seconds']:>9.2f} s {v['hwm_mib']:>6,.0f} MiB"
        out.append(row)
    return out


def _notes(args, s: dict) -> list[str]:
    out = []
    if s.get("b1"):
        m = s["b1"]["median"]
        c = m["check"]
        out.append(
            f"B1 check: loaded {m['files_loaded']}; raw_payments {c['raw_payments']:,} rows, sum {c['sum_pay_amt']};"
            f" exceptions as of {AS_OF} {c['exceptions']:,}; {m['outputs']} output files"
        )
        tree = max(r.get("tree_peak_mib", 0) for r in s["b1"]["runs"])
        out.append(
            f"   peak memory of the process and its publish workers together (RSS summed, sampled every 0.1 s):"
            f" {tree:,.0f} MiB (largest of the runs)"
        )
        out.append(
            f"   build_night {m['run_s']:.2f} s + publish_outputs {m['publish_s']:.2f} s (median run); imports"
            f" {m['import_s']:.2f} s not counted. Floors: rows in the DuckDB table"
            f" {s['b1_floor_a']['median']['rows_in_table']:,} (the 合计 row included); floor b's transcode"
            f" {s['b1_floor_b']['median']['transcode_s']:.2f} s of {s['b1_floor_b']['wall']:.2f} s"
        )
    if s.get("b2_ingest"):
        m = s["b2_ingest"]["median"]
        out.append(
            f"B2 check: ingest status {m['status']}, valid {m['rows_valid']:,}, rejected {m['rows_rejected']:,},"
            f" skipped {m['rows_skipped']:,}; read_excel shape {s['b2_openpyxl']['median']['shape']} (openpyxl),"
            f" {s['b2_calamine']['median']['shape']} (calamine)"
        )
    if s.get("b3"):
        m = s["b3"]["median"]
        c = m["check"]
        out.append(
            f"B3 check: loaded {m['files_loaded']} (the other files skipped by sha256); raw_payments"
            f" {c['raw_payments']:,} rows; build_night {m['run_s']:.2f} s + publish_outputs {m['publish_s']:.2f} s"
        )
    if s.get("b4_1m"):
        for key in ("b4_1m", "b4_big"):
            if s.get(key):
                m = s[key]["median"]
                out.append(
                    f"B4 {key[3:]}: raw_payments {m['raw_payments']:,}; marts {m['counts']}; the private copy"
                    f" (Build, before the clock) {m['build_copy_s']:.2f} s"
                )
        if s.get("b4_big"):
            out.append(
                f"   growth: {s['b4_big']['median']['raw_payments'] / s['b4_1m']['median']['raw_payments']:.1f}x rows"
                f" -> {s['b4_big']['wall'] / s['b4_1m']['wall']:.1f}x time,"
                f" {s['b4_big']['peak'] / s['b4_1m']['peak']:.1f}x peak RSS"
            )
    if s.get("p_flow"):
        f = s["p_flow"]["median"]
        steps = s["p_steps"]["wall"]
        server = ", ".join(f"pid {pid} {hwm:,.0f} MiB ({cmd[:60]})" for pid, cmd, hwm in f["server"]) or "none found"
        out.append(
            f"P: Prefect's overhead per run = recon_flow - the same steps without Prefect: first flow of a process"
            f" {s['p_flow']['wall'] - steps:+.2f} s, a later flow {s['p_flow2']['wall'] - steps:+.2f} s; importing"
            f" flows.nightly (prefect) {f['import_s']:.2f} s vs {s['p_plain']['median']['import_s']:.2f} s for the"
            f" plain modules (imports not counted); the temporary server's memory (VmHWM, not in peak RSS): {server};"
            f" outputs {f['outputs']}, files {f['files_new']}"
        )
    out.append("")
    out.append("where the time goes (median runs; timers around flows/ functions; peak RSS when each call returned)")
    cols = [(name, s[k]["median"]) for k, name in (("b1", "B1"), ("b3", "B3 night")) if s.get(k)]
    if cols:
        out += _side_by_side("B1 and B3 (build_night + publish_outputs)", cols)
    cols = [(name, s[k]["median"]) for k, name in (("b4_1m", "B4 base"), ("b4_big", "B4 big")) if s.get(k)]
    if cols:
        out += _side_by_side("B4 reconcile (each insert into a mart; delete, set, count and DDL as other)", cols)
    if s.get("p_flow"):
        flow2 = dict(s["p_flow"]["median"], stages=s["p_flow"]["median"]["stages_second"])
        cols = [("plain", s["p_plain"]["median"]), ("steps", s["p_steps"]["median"])]
        cols += [("flow 1st", s["p_flow"]["median"]), ("flow 2nd", flow2)]
        out += _side_by_side("P (the same data; inside Prefect the stages run in tasks)", cols)
    return out


def report(args, s: dict, versions: str, code: dict) -> None:
    print()
    print("treasury-recon against the alternatives (issue 5): one run, one set of data, every ratio within it")
    print(f"command : {shlex.join([sys.executable, *sys.argv])}")
    (commit, tree), (commit_end, tree_end) = code["start"], code["end"]
    print(f"commit  : {commit} (flows/, schemas/, sql/ on disk: {tree})")
    if (commit, tree) != (commit_end, tree_end):
        print(
            f"WARNING : the code changed during the run (at the end: {commit_end}, tree {tree_end}): the figures mix"
            " versions; run again"
        )
    print(f"nproc   : {_nproc()}    memory: {_mem_total()}    platform: {platform.platform()}")
    print(f"versions: {versions}")
    print(
        "method  : N fresh processes per figure, wall = median, (min-max) over them, cpu = user+sys of the median"
        " run, peak = the largest ru_maxrss of the N; x base = ratio to the case's baseline in this run; MiB = 2**20"
    )
    loads = [r["loadavg"] for v in s.values() if v for r in v["runs"]]
    if loads:
        print(f"load    : 1-minute load average when each measurement started: {min(loads):.2f}-{max(loads):.2f}")
    print()
    head = (
        f"{'case':<4} {'measurement':<50} {'rows':>10} {'N':>2} {'wall s':>8} {'(min-max)':>15} {'x base':>7} "
        f"{'cpu s':>7} {'peak MiB':>9} {'x base':>7}  {'target':<27} result"
    )
    print(head)
    print("-" * len(head))
    for case, key, label, nrows, base_key, target, verdict in _table_lines(args, s):
        m = s[key]
        base = s.get(base_key) if base_key else None
        xt = "base" if base_key is None else _x(m["wall"], base["wall"] if base else None)
        xm = "base" if base_key is None else _x(m["peak"], base["peak"] if base else None)
        rng = f"{m['min']:.2f}-{m['max']:.2f}"
        verdict = "" if verdict == "base" else verdict
        print(
            f"{case:<4} {label:<50} {nrows:>10,} {m['n']:>2} {m['wall']:>8.2f} {rng:>15} {xt:>7} "
            f"{m['median']['cpu_s']:>7.1f} {m['peak']:>9,.0f} {xm:>7}  {target:<27} {verdict}".rstrip()
        )
    print()
    for line in _notes(args, s):
        print(line)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="payments of the B1 year (one CSV)")
    p.add_argument("--xlsx-rows", type=int, default=200_000, help="payments of the B2 xlsx")
    p.add_argument(
        "--big-rows", type=int, default=10_000_000, help="payments of the big B4 warehouse (a multiple of --rows)"
    )
    p.add_argument("--prefect-rows", type=int, default=20_000, help="payments of the Prefect-overhead data")
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--dir", type=Path, default=REPO / "bench" / "data", help="where the generated data go")
    p.add_argument("--keep", action="store_true", help="keep the generated data and warehouses (reused next time)")
    p.add_argument("--repeat", type=int, default=3, help="fresh processes per figure; the median is reported")
    p.add_argument("--big-repeat", type=int, default=3, help="fresh processes for the big reconcile")
    p.add_argument("--skip", default="", help="comma-separated cases to skip: B1,B2,B3,B4,P")
    p.add_argument("--child", nargs=2, metavar=("TASK", "JSON_ARGS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        task, a = args.child[0], json.loads(args.child[1])
        if task == "versions":
            print(_versions())
            return
        tasks = {
            "floor": lambda utf8, gb, work: child_floor(utf8 or None, gb or None, work),
            "pipeline": child_pipeline,
            "flow": child_flow,
            "ingest_xlsx": child_ingest_xlsx,
            "read_excel": child_read_excel,
            "reconcile": child_reconcile,
            "prep_year": lambda out, rows, seed: prep_year(out, int(rows), int(seed)),
            "prep_xlsx": lambda out, rows, seed: prep_xlsx(out, int(rows), int(seed)),
            "prep_daily": lambda out, seed: prep_daily(out, int(seed)),
            "prep_utf8": prep_utf8,
            "prep_warehouse": prep_warehouse,
            "prep_big": lambda src, dst, factor: prep_big(src, dst, int(factor)),
        }
        tasks[task](*a)
        return

    skip = {x.strip().upper() for x in args.skip.split(",") if x.strip()}
    if skip - set(CASES):
        p.error(f"--skip: unknown case(s) {sorted(skip - set(CASES))}; the cases are {', '.join(CASES)}")
    want = set(CASES) - skip
    root = args.dir.resolve()
    data = Data(root, args.keep)
    seed, n = args.seed, args.repeat
    s: dict[str, dict] = {}
    commit_start, code_start = _commit(), _code_fingerprint()
    try:
        versions = _versions_in_child()
        if want & {"B1", "B3", "B4"}:
            year = data.get(
                f"compare_year_{args.rows}_s{seed}", lambda d: _run_child("prep_year", d, args.rows, seed, prep=True)
            )
            csv_path = year / "payments" / f"payments_{FISCAL_YEAR}.csv"
            b1_wh = root / f"compare_year_{args.rows}_s{seed}.duckdb"

        if "B1" in want:
            utf8 = data.get(
                f"compare_year_{args.rows}_s{seed}.utf8.csv", lambda d: _run_child("prep_utf8", csv_path, d, prep=True)
            )
            s["b1_floor_a"] = _summary(_measure("B1 floor a", n, "floor", utf8, "", fresh_work=root))
            s["b1_floor_b"] = _summary(_measure("B1 floor b", n, "floor", "", csv_path, fresh_work=root))

            def keep_last(work: Path, runs=[]) -> None:  # noqa: B006  (counts the runs of this loop)
                runs.append(work)
                if len(runs) == n:  # the warehouse of the last run is what B3 and B4 start from
                    b1_wh.unlink(missing_ok=True)
                    shutil.move(work / "wh.duckdb", b1_wh)

            s["b1"] = _summary(_measure("B1 pipeline", n, "pipeline", year, "plain", fresh_work=root, after=keep_last))
            data.made.append(b1_wh)
        elif want & {"B3", "B4"} and not (args.keep and b1_wh.exists()):
            _run_child("prep_warehouse", year, b1_wh, prep=True)
            data.made.append(b1_wh)

        if "B2" in want:
            xdir = data.get(
                f"compare_xlsx_{args.xlsx_rows}_s{seed}",
                lambda d: _run_child("prep_xlsx", d, args.xlsx_rows, seed, prep=True),
            )
            xlsx = xdir / "payments" / f"payments_{FISCAL_YEAR}.xlsx"
            s["b2_openpyxl"] = _summary(_measure("B2 read_excel(openpyxl)", n, "read_excel", xlsx, "openpyxl"))
            s["b2_ingest"] = _summary(_measure("B2 ingest", n, "ingest_xlsx", xlsx))
            s["b2_calamine"] = _summary(_measure("B2 read_excel(calamine)", n, "read_excel", xlsx, "calamine"))

        if "B3" in want:

            def make_night(d: Path) -> None:
                for src in sorted(year.rglob("*")):
                    if src.is_file():
                        dst = d / src.relative_to(year)
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            os.link(src, dst)
                        except OSError:
                            shutil.copyfile(src, dst)
                _run_child("prep_daily", d, seed + 1, prep=True)

            night = data.get(f"compare_night_{args.rows}_s{seed}", make_night)
            copy = lambda work: shutil.copyfile(b1_wh, work / "wh.duckdb")  # noqa: E731  (last night's warehouse)
            s["b3"] = _summary(
                _measure("B3 incremental night", n, "pipeline", night, "plain", fresh_work=root, before=copy)
            )

        if "B4" in want:
            s["b4_1m"] = _summary(_measure("B4 reconcile", n, "reconcile", b1_wh))
            factor = max(1, round(args.big_rows / args.rows))
            big = data.get(
                f"compare_big_{args.rows}x{factor}_s{seed}.duckdb",
                lambda d: _run_child("prep_big", b1_wh, d, factor, prep=True),
            )
            s["b4_big"] = _summary(_measure("B4 reconcile big", args.big_repeat, "reconcile", big))

        if "P" in want:
            small = data.get(
                f"compare_small_{args.prefect_rows}_s{seed}",
                lambda d: _run_child("prep_year", d, args.prefect_rows, seed, prep=True),
            )
            home = root / "compare-prefect-home"
            home.mkdir(exist_ok=True)
            env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
            env.update({k: os.environ.get(k, v) for k, v in PREFECT_ENV.items()})
            env["PREFECT_HOME"] = str(home)
            print("warm-up flow run (creates the Prefect database in PREFECT_HOME; not measured) ...", file=sys.stderr)
            _measure("P warm-up", 1, "flow", small, fresh_work=root, env=env, cwd=root)
            s["p_plain"] = _summary(_measure("P plain", n, "pipeline", small, "plain", fresh_work=root))
            s["p_steps"] = _summary(_measure("P steps", n, "pipeline", small, "steps", fresh_work=root))
            flows = _measure("P recon_flow", n, "flow", small, fresh_work=root, env=env, cwd=root)
            s["p_flow"] = _summary(flows)
            s["p_flow2"] = _summary([dict(r, **r["second"]) for r in flows])
    finally:
        data.cleanup()
    code = {"start": (commit_start, code_start), "end": (_commit(), _code_fingerprint())}
    report(args, s, versions, code)


if __name__ == "__main__":
    main()
