"""Benchmark of the read + validate + load path on large synthetic payment exports (not a test).

    python bench/bench_ingest.py [--csv-rows 1000000] [--xlsx-rows 200000] [--seed 20250101] [--dir bench/data]
                                 [--keep] [--repeat 3] [--profile]

1. Writes two synthetic 国库集中支付明细 exports with the 17 headers of ``flows.demo.samples.PAYMENT_HEADER``: a CSV in
   GB18030 (title row, 金额单位：元 row, header, data, 合计 row; amounts such as "12,345.67", quoted) and an xlsx
   (the same layout, dates and amounts as typed cells, accounts as text). Writing them is not measured; files that
   already exist for the same row count and seed are reused (``--keep`` keeps them after the run).
2. Measures each file ``--repeat`` times, each in a fresh Python process started from this small one, so that the
   peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) is the one of that measurement alone (Linux carries a parent's
   ru_maxrss into its child, so this process never loads the data itself):
   ingest = ``flows.ingest.validate.ingest(NewFile(...), None)`` (read, parse, validate);
   load = ``flows.warehouse.load.load_batches(con, [batch], "bench")`` inside ``db.writer`` on a new DuckDB file
   (private copy, one transaction, atomic publish). Reconciliation is not measured.
   Imports and the sha256 of the file (computed by ``discover`` in a real run) happen before the clock starts.
3. Prints one table against the targets (times of the median run, peak = the largest of the runs), and where the
   time goes by stage (timers wrapped around functions of flows/ in the measuring process; flows/ itself is not
   changed). ``--profile`` adds one cProfile run per file.

Row counts of 0 skip a format. MiB = 2**20 bytes; the memory target 1.5 GB is taken as 1536 MiB.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGETS = {
    # format: (seconds, peak MiB or None, the rows the target is stated for)
    "csv": (10.0, 1536.0, 1_000_000),
    "xlsx": (8.0, None, 200_000),
}
TITLE = "示例市财政局国库集中支付明细（2025年1月1日至2025年12月31日）"
UNIT_ROW = "金额单位：元"


# --------------------------------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------------------------------

REGIONS = ["示例市", "城关区", "东湖区", "西山区", "南岭县", "北川县", "清河县", "白沙县", "青石镇", "临江县"]
DEPARTMENTS = [
    "教育局",
    "财政局",
    "卫生健康委员会",
    "交通运输局",
    "公路事务中心",
    "农业农村局",
    "水利局",
    "自然资源局",
    "生态环境局",
    "住房和城乡建设局",
    "民政局",
    "人力资源和社会保障局",
    "文化广电旅游局",
    "市场监督管理局",
    "应急管理局",
    "公安局",
    "司法局",
    "审计局",
    "统计局",
    "医疗保障局",
    "林业局",
    "第一中学",
    "第二中学",
    "实验小学",
    "人民医院",
    "中医院",
    "疾病预防控制中心",
    "妇幼保健院",
    "图书馆",
    "档案馆",
]
TOPICS = [
    "农村公路安保工程",
    "桥梁定期检测",
    "养护道班运行经费",
    "义务教育学校公用经费",
    "学生营养改善计划",
    "基本公共卫生服务",
    "高标准农田建设",
    "农村饮水安全巩固提升",
    "老旧小区改造",
    "城乡居民养老保险补助",
    "森林防火",
    "河道清淤整治",
    "信息化系统运维",
    "办公楼维修改造",
    "应急物资储备",
    "公共文化服务体系建设",
    "食品安全抽检",
    "人才引进专项",
    "乡村振兴衔接资金",
    "污水处理设施运行",
    "垃圾分类处理",
    "地质灾害防治",
    "困难群众救助",
    "就业创业补贴",
    "医疗设备购置",
]
FUNC_CODES = [
    "2010101",
    "2050202",
    "2070109",
    "2080501",
    "2100302",
    "2110302",
    "2120501",
    "2130101",
    "2130305",
    "2140101",
    "2140106",
    "2140199",
    "2240101",
]
ECO_CODES = ["30201", "30205", "30206", "30211", "30213", "30226", "30227", "30299", "31002", "31003", "30901"]
FUND_TYPES = ["一般公共预算资金", "政府性基金预算资金", "国有资本经营预算资金"]
PAY_TYPES = ["国库集中支付", "授权支付", "直接支付"]
PLACES = ["示例", "东湖", "西山", "南岭", "北川", "清河", "白沙", "临江", "青石", "红旗", "光明", "长兴"]
BUSINESSES = [
    "路桥工程",
    "建筑安装",
    "机电维修",
    "检测技术",
    "汽车租赁",
    "信息技术",
    "办公用品",
    "医疗器械",
    "物业管理",
    "餐饮服务",
    "印务",
    "环保科技",
    "园林绿化",
    "劳务派遣",
    "电力工程",
    "水务",
    "商贸",
    "文化传媒",
    "会计师事务所",
    "律师事务所",
]
SUFFIXES = ["有限公司", "有限责任公司", "股份有限公司", "经营部", "工程队", "服务中心"]
ACCOUNT_PREFIXES = ["6228", "6217", "6222", "4100", "4402", "3302", "1101", "6214"]
USES = [
    "进度款",
    "工程尾款",
    "质保金",
    "设计费",
    "监理费",
    "设备购置",
    "设备维修",
    "办公用品采购",
    "水电费",
    "物业管理费",
    "印刷费",
    "差旅费",
    "会议费",
    "培训费",
    "劳务费",
    "专家咨询费",
    "租车费用",
    "网络运维服务费",
    "检测服务费（首期）",
    "检测服务费（尾款）",
    "材料采购款",
    "燃料费",
    "保险费",
    "补助资金",
]


def _money_text(fen: int) -> str:
    """Integer fen as the text an export shows: 12,345.67, -3,000.00."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def synthetic_payments(n: int, seed: int) -> tuple[dict[str, list], int]:
    """n payment rows as columns keyed by the export headers (text, except 支付日期 as date and 支付金额 as fen),
    sorted by date, and the total in fen (the 合计 row)."""
    import numpy as np

    from flows.demo.samples import PAYMENT_HEADER

    rng = np.random.default_rng(seed)
    # ~200 units and ~500 projects; each project belongs to one unit and has its own function code and documents
    units = [(r, d) for r in REGIONS for d in DEPARTMENTS]
    rng.shuffle(units)
    units = units[:200]
    unit_codes = [f"{100000 + 37 * i + int(rng.integers(0, 30)):06d}" for i in range(len(units))]
    unit_names = [f"{r}{d}" for r, d in units]
    n_projects = 500
    proj_unit = rng.integers(0, len(units), n_projects)
    proj_codes = [f"{unit_codes[u]}25{i:04d}" for i, u in enumerate(proj_unit)]
    phases = ["", "（一期）", "（二期）", "专项"]
    proj_names = [f"{TOPICS[int(rng.integers(0, len(TOPICS)))]}{phases[i % 4]}" for i in range(n_projects)]
    docs = [f"示财{k}〔{y}〕{int(rng.integers(1, 160))}号" for y in (2024, 2025) for k in ("预", "建", "社") * 10]
    proj_docs = rng.integers(0, len(docs), (n_projects, 2))
    proj_func = rng.integers(0, len(FUNC_CODES), n_projects)
    proj_fund = rng.choice(len(FUND_TYPES), n_projects, p=[0.85, 0.12, 0.03])
    # ~3,000 payees with 19-digit accounts
    names = sorted({f"{p}{b}{s}" for p in PLACES for b in BUSINESSES for s in SUFFIXES})
    rng.shuffle(names)
    payee_names = names[:3000] + [f"{unit_names[i]}（零星支出）" for i in range(len(units))]
    payee_accts = [
        f"{ACCOUNT_PREFIXES[int(rng.integers(0, len(ACCOUNT_PREFIXES)))]}{int(rng.integers(0, 10**15)):015d}"
        for _ in payee_names
    ]

    day = np.sort(rng.integers(0, 365, n))
    proj = rng.integers(0, n_projects, n)
    payee = rng.integers(0, len(payee_names), n)
    # amounts: log-normal around a few tens of thousands of yuan, whole fen
    fen = np.round(rng.lognormal(mean=np.log(30_000), sigma=1.4, size=n) * 100).astype(np.int64)
    fen = np.clip(fen, 1_000, 500_000_000)
    whole = rng.random(n) < 0.4  # many payments are whole yuan or whole hundreds
    fen[whole] = fen[whole] // 10_000 * 10_000 + 10_000
    voided = rng.random(n) < 0.03
    refund = (rng.random(n) < 0.005) & ~voided
    refund[0] = False
    fen[refund] = -(fen[refund] // 20)
    fen[refund] = np.minimum(fen[refund], -100)
    original = np.where(refund, (rng.random(n) * np.arange(n)).astype(np.int64), -1)

    start = dt.date(2025, 1, 1)
    dates = [start + dt.timedelta(days=i) for i in range(365)]
    vouchers = [f"PV2025{i + 1:08d}" for i in range(n)]
    use_pick = rng.integers(0, len(USES), n)
    months = day * 12 // 365 + 1
    proj_l = proj.tolist()
    cols: dict[str, list] = {
        "支付凭证号": vouchers,
        "支付日期": [dates[d] for d in day.tolist()],
        "预算单位编码": [unit_codes[proj_unit[p]] for p in proj_l],
        "预算单位名称": [unit_names[proj_unit[p]] for p in proj_l],
        "项目编码": [proj_codes[p] for p in proj_l],
        "项目名称": [proj_names[p] for p in proj_l],
        "指标文号": [docs[proj_docs[p, k]] for p, k in zip(proj_l, rng.integers(0, 2, n).tolist(), strict=True)],
        "功能分类编码": [FUNC_CODES[proj_func[p]] for p in proj_l],
        "部门经济分类编码": [ECO_CODES[i] for i in rng.integers(0, len(ECO_CODES), n).tolist()],
        "资金性质": [FUND_TYPES[proj_fund[p]] for p in proj_l],
        "支付方式": [PAY_TYPES[i] for i in rng.choice(3, n, p=[0.8, 0.15, 0.05]).tolist()],
        "收款人全称": [payee_names[i] for i in payee.tolist()],
        "收款人账号": [payee_accts[i] for i in payee.tolist()],
        "支付金额": fen.tolist(),
        "用途": [
            "退回多付款项" if r else f"{m}月{USES[u]}"
            for r, m, u in zip(refund.tolist(), months.tolist(), use_pick.tolist(), strict=True)
        ],
        "支付状态": ["已作废" if v else "已支付" for v in voided.tolist()],
        "原支付凭证号": [vouchers[o] if o >= 0 else "" for o in original.tolist()],
    }
    assert list(cols) == PAYMENT_HEADER
    return cols, int(fen.sum())


def write_csv(path: Path, cols: dict[str, list], total_fen: int) -> None:
    """GB18030, CRLF, every row as wide as the header (as Excel saves a sheet); amounts like "12,345.67"."""
    width = len(cols)
    out = dict(cols)
    out["支付日期"] = [d.isoformat() for d in cols["支付日期"]]
    out["支付金额"] = [_money_text(f) for f in cols["支付金额"]]
    amount_at = list(cols).index("支付金额")
    total = [""] * width
    total[0], total[amount_at] = "合计", _money_text(total_fen)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="gb18030", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow([TITLE] + [""] * (width - 1))
        w.writerow([UNIT_ROW] + [""] * (width - 1))
        w.writerow(list(cols))
        w.writerows(zip(*out.values(), strict=True))
        w.writerow(total)
    tmp.replace(path)


def write_xlsx(path: Path, cols: dict[str, list], total_fen: int) -> None:
    """openpyxl write-only: dates as date cells, amounts as numbers in yuan, codes and accounts as text."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("支付明细")
    ws.append([TITLE])
    ws.append([UNIT_ROW])
    ws.append(list(cols))
    values = dict(cols)
    values["支付金额"] = [f / 100 for f in cols["支付金额"]]
    values["原支付凭证号"] = [v or None for v in cols["原支付凭证号"]]
    for row in zip(*values.values(), strict=True):
        ws.append(row)
    amount_at = list(cols).index("支付金额")
    ws.append(["合计"] + [None] * (amount_at - 1) + [total_fen / 100])
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)


def generate(fmt: str, rows: int, seed: int, path: Path) -> None:
    t = time.perf_counter()
    cols, total = synthetic_payments(rows, seed)
    (write_csv if fmt == "csv" else write_xlsx)(path, cols, total)
    print(
        f"generated {path} ({rows:,} rows, {path.stat().st_size / 2**20:,.1f} MiB) in {time.perf_counter() - t:.1f} s",
        file=sys.stderr,
    )


def ensure_files(data_dir: Path, csv_rows: int, xlsx_rows: int, seed: int) -> dict[str, tuple[Path, int, bool]]:
    """format -> (path, rows, reused). Generation runs in its own process: the benchmark process stays small, so
    its peak RSS cannot leak into a measurement (Linux carries the parent's ru_maxrss across fork + exec)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for fmt, rows in (("csv", csv_rows), ("xlsx", xlsx_rows)):
        if rows <= 0:
            continue
        path = data_dir / f"payments_{rows}_seed{seed}.{fmt}"
        reused = path.exists()
        if reused:
            print(f"reusing {path} (kept by an earlier --keep run)", file=sys.stderr)
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--generate", fmt, str(rows), str(seed), str(path)]
            subprocess.run(cmd, cwd=REPO, check=True)
        out[fmt] = (path, rows, reused)
    return out


# --------------------------------------------------------------------------------------------------------------------
# The measuring process
# --------------------------------------------------------------------------------------------------------------------


def _proc_status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _maxrss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 2**20 if sys.platform == "darwin" else kb / 1024  # bytes on macOS, KiB on Linux


_start_rss = _maxrss_mib()  # before any heavy import: what the process inherited from its parent, if anything


# (label, module, attribute, depth): wrapped with a timer in the measuring process; depth only indents the report
STAGES = [
    ("ingest_file", "flows.ingest.validate", "ingest_file", 0),
    ("read_grid", "flows.ingest.validate", "read_grid", 1),
    ("detect_encoding", "flows.ingest.read", "detect_encoding", 2),
    ("pyarrow.csv.read_csv", "pyarrow.csv", "read_csv", 2),
    ("_grid_from_rows (cell_text per cell)", "flows.ingest.read", "_grid_from_rows", 2),
    ("extract", "flows.ingest.validate", "extract", 1),
    ("parse_money", "flows.ingest.extract", "parse_money", 2),
    ("parse_date", "flows.ingest.extract", "parse_date", 2),
    ("parse_account", "flows.ingest.extract", "parse_account", 2),
    ("clean_code", "flows.ingest.extract", "clean_code", 2),
    ("clean_text", "flows.ingest.extract", "clean_text", 2),
    ("_validate", "flows.ingest.validate", "_validate", 1),
    ("_frame (arrow -> pandas)", "flows.ingest.validate", "_frame", 2),
    ("pandera DataFrameSchema.validate", "pandera.api.pandas.container", "DataFrameSchema.validate", 2),
    ("load: Build + load_batches + publish", "__main__", "_load", 0),
    ("Build (private copy)", "flows.warehouse.db", "Build.__init__", 1),
    ("ensure_schema (tables, macros, views)", "flows.warehouse.db", "ensure_schema", 2),
    ("load_batches (one transaction)", "flows.warehouse.load", "load_batches", 1),
    ("_insert_rows", "flows.warehouse.load", "_insert_rows", 2),
    ("_insert_rejects", "flows.warehouse.load", "_insert_rejects", 2),
    ("Build.publish (checkpoint, os.replace)", "flows.warehouse.db", "Build.publish", 1),
]


def _install_timers(record: dict[str, dict], stages: list[tuple] | None = None) -> None:
    """Wrap each (label, module, attribute, depth) of ``stages`` (default: STAGES) with a timer into ``record``."""
    import importlib

    for label, module, attr, _depth in STAGES if stages is None else stages:
        owner = importlib.import_module(module)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        original = getattr(owner, name, None)
        if original is None:  # not in this version of flows/
            continue

        def make(fn, label=label):
            @functools.wraps(fn)
            def timed(*a, **k):
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    r = record.setdefault(label, {"calls": 0, "seconds": 0.0})
                    r["calls"] += 1
                    r["seconds"] += time.perf_counter() - t
                    r["rss_mib"] = _proc_status_mib("VmRSS")
                    r["hwm_mib"] = _proc_status_mib("VmHWM")

            return timed

        setattr(owner, name, make(original))


def _load(warehouse_path: Path, batch) -> None:
    """What a run does to load one batch: a private copy of the warehouse (``Build``, which creates the schema),
    ``load_batches`` in one transaction, and the atomic publish. Reconciliation is not part of this path."""
    from flows.warehouse import db, load

    with db.writer(warehouse_path) as con:
        load.load_batches(con, [batch], "bench")


def child(fmt: str, path: Path, work: Path, profile_to: Path | None) -> None:
    t = time.perf_counter()
    import duckdb

    from flows.ingest.discover import NewFile, sha256_of
    from flows.ingest.validate import ingest

    import_s = time.perf_counter() - t
    rss_import = _maxrss_mib()
    new = NewFile(path=path, label=f"payments/{path.name}", kind="payments", sha256=sha256_of(path))
    warehouse_path = work / "bench.duckdb"
    stages: dict[str, dict] = {}
    profiler = None
    if profile_to is not None:
        import cProfile

        profiler = cProfile.Profile()
    else:
        _install_timers(stages)

    if profiler:
        profiler.enable()
    t0 = time.perf_counter()
    batch = ingest(new, None)
    t1 = time.perf_counter()
    load_error = None
    try:
        _load(warehouse_path, batch)
    except Exception as e:  # report a broken load in the table instead of a traceback
        load_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    t2 = time.perf_counter()
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile_to))
    peak = _maxrss_mib()
    hwm = _proc_status_mib("VmHWM")

    loaded, rejected = (None, None), None
    if load_error is None:
        con = duckdb.connect(str(warehouse_path), read_only=True)
        try:
            loaded = con.execute("select count(*), sum(pay_amt) from raw_payments").fetchone()
            rejected = con.execute("select count(*) from rejected_rows").fetchone()[0]
        finally:
            con.close()
    result = {
        "format": fmt,
        "import_s": import_s,
        "ingest_s": t1 - t0,
        "load_s": t2 - t1,
        "total_s": t2 - t0,
        "load_error": load_error,
        "peak_rss_mib": peak,
        "rss_after_import_mib": rss_import,
        "maxrss_at_start_mib": _start_rss,
        "vmhwm_mib": hwm,
        "versions": _versions(),
        "status": batch.status,
        "error": batch.error,
        "encoding": batch.encoding,
        "rows_read": batch.rows_read,
        "rows_valid": batch.rows_valid,
        "rows_rejected": batch.rows_rejected,
        "rows_skipped": batch.rows_skipped,
        "control_total": batch.control_total,
        "parsed_total": batch.parsed_total,
        "rows_in_duckdb": loaded[0],
        "sum_in_duckdb": str(loaded[1]),
        "rejected_rows_in_duckdb": rejected,
        "warehouse_mib": warehouse_path.stat().st_size / 2**20 if warehouse_path.exists() else 0.0,
        "stages": stages,
    }
    print("BENCH-RESULT " + json.dumps(result, ensure_ascii=False))


def measure(fmt: str, path: Path, data_dir: Path, profile_to: Path | None = None) -> dict:
    """One measurement in a fresh process started from this (small) one, with a new warehouse."""
    work = Path(tempfile.mkdtemp(prefix="bench-warehouse-", dir=data_dir))
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", fmt, str(path), str(work)]
        if profile_to is not None:
            cmd += ["--profile-to", str(profile_to)]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"measurement of {path} failed (exit {proc.returncode})")
        line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH-RESULT "))
        return json.loads(line.removeprefix("BENCH-RESULT "))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------------


def _commit() -> str:
    """The commit measured, and whether flows/, schemas/ or sql/ differ from it."""
    git = shutil.which("git")
    if not git:
        return "-"
    run = functools.partial(subprocess.run, cwd=REPO, capture_output=True, text=True, check=False)
    head = run([git, "log", "-1", "--format=%h %s"]).stdout.strip() or "-"
    dirty = run([git, "status", "--porcelain", "--", "flows", "schemas", "sql"]).stdout.strip()
    return head + (" (+ uncommitted changes in flows/, schemas/ or sql/)" if dirty else "")


def _nproc() -> str:
    exe = shutil.which("nproc")
    if exe:
        out = subprocess.run([exe], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            return out
    return str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())


def _versions() -> str:
    import duckdb
    import pandas
    import pandera
    import pyarrow

    return (
        f"python {platform.python_version()}, duckdb {duckdb.__version__}, pyarrow {pyarrow.__version__}, "
        f"pandas {pandas.__version__}, pandera {pandera.__version__}"
    )


def _verdict(fmt: str, rows: int, r: dict, peak: float) -> tuple[str, str]:
    seconds, mib, target_rows = TARGETS[fmt]
    target = f"{target_rows:,} rows < {seconds:g} s" + (f", < {mib / 1024:g} GiB" if mib else "")
    if r["load_error"]:
        return target, "FAIL: load raised (see below)"
    if rows != target_rows:
        return target, "n/a (target is for another row count)"
    misses = []
    if r["total_s"] >= seconds:
        misses.append(f"time {r['total_s']:.2f} s >= {seconds:g} s")
    if mib and peak >= mib:
        misses.append(f"peak RSS {peak:,.0f} MiB >= {mib:,.0f} MiB")
    return target, "PASS" if not misses else "MISS: " + "; ".join(misses)


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["total_s"])[(len(runs) - 1) // 2]


def report(files: dict, results: dict[str, list[dict]]) -> None:
    first = next(iter(results.values()))[0] if results else {}
    repeat = max((len(v) for v in results.values()), default=0)
    print()
    print("treasury-recon ingest benchmark: flows.ingest.validate.ingest (read+parse+validate) + load_batches")
    print(f"command : {shlex.join([sys.executable, *sys.argv])}")
    print(f"commit  : {_commit()}")
    print(f"nproc   : {_nproc()}    platform: {platform.platform()}")
    print(f"versions: {first.get('versions', '-')}")
    print(
        f"method  : {repeat} fresh process(es) per file; times of the median run (by total), peak RSS = max "
        "ru_maxrss over the runs, MiB = 2**20 bytes"
    )
    print()
    head = (
        f"{'file':<34} {'MiB':>6} {'rows':>10} {'ingest s':>9} {'load s':>7} {'total s':>8} {'(min-max)':>12} "
        f"{'rows/s':>8} {'peak RSS MiB':>12}  {'target':<32} result"
    )
    print(head)
    print("-" * len(head))
    for fmt, runs in results.items():
        path, rows, _ = files[fmt]
        r = _median_run(runs)
        peak = max(x["peak_rss_mib"] for x in runs)
        totals = [x["total_s"] for x in runs]
        target, verdict = _verdict(fmt, rows, r, peak)
        load = "FAILED" if r["load_error"] else f"{r['load_s']:.2f}"
        print(
            f"{path.name:<34} {path.stat().st_size / 2**20:>6.1f} {rows:>10,} {r['ingest_s']:>9.2f} {load:>7} "
            f"{r['total_s']:>8.2f} {f'{min(totals):.2f}-{max(totals):.2f}':>12} {rows / r['total_s']:>8,.0f} "
            f"{peak:>12,.0f}  {target:<32} {verdict}"
        )
    print()
    for fmt, runs in results.items():
        r = _median_run(runs)
        if r["load_error"]:
            print(f"{fmt:<4} LOAD FAILED: {r['load_error']}")
        in_db = "-" if r["rows_in_duckdb"] is None else f"{r['rows_in_duckdb']:,}"
        ok = (
            r["status"] == "loaded"
            and r["rows_valid"] == files[fmt][1]
            and r["rows_in_duckdb"] == r["rows_valid"]
            and r["control_total"] == r["parsed_total"]
        )
        print(
            f"{fmt:<4} check: status={r['status']} encoding={r['encoding']} read={r['rows_read']:,} "
            f"valid={r['rows_valid']:,} rejected={r['rows_rejected']:,} skipped={r['rows_skipped']:,} "
            f"in duckdb={in_db} "
            f"合计 {'=' if r['control_total'] == r['parsed_total'] else '!='} parsed sum -> "
            f"{'OK' if ok else 'UNEXPECTED'}" + (f" ({r['error']})" if r["error"] else "")
        )
        print(
            f"     memory: ru_maxrss at process start {r['maxrss_at_start_mib']:,.0f} MiB, after imports "
            f"{r['rss_after_import_mib']:,.0f} MiB, peak {r['peak_rss_mib']:,.0f} MiB "
            f"(VmHWM {r['vmhwm_mib']:,.0f} MiB); imports {r['import_s']:.2f} s (not counted); "
            f"DuckDB file {r['warehouse_mib']:,.0f} MiB"
        )
    print()
    print("where the time goes, median run (timers around flows/ functions; RSS and peak RSS when each call returned)")
    for fmt, runs in results.items():
        r = _median_run(runs)
        print(f"  {files[fmt][0].name}")
        for label, _module, _attr, depth in STAGES:
            st = r["stages"].get(label)
            if not st:
                continue
            name = "  " * depth + label + (f" x{st['calls']}" if st["calls"] > 1 else "")
            rss = f"{st['rss_mib']:>7,.0f}" if st.get("rss_mib") is not None else "      ?"
            hwm = f"{st['hwm_mib']:>7,.0f}" if st.get("hwm_mib") is not None else "      ?"
            print(f"    {name:<44} {st['seconds']:>7.2f} s   RSS {rss} MiB   peak so far {hwm} MiB")


def print_profile(path: Path, fmt: str) -> None:
    import pstats

    print()
    print(f"cProfile of {fmt} (separate run; profiling overhead inflates times): {path}")
    stats = pstats.Stats(str(path))
    stats.strip_dirs().sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv-rows", type=int, default=1_000_000, help="data rows of the CSV file (0: skip)")
    p.add_argument("--xlsx-rows", type=int, default=200_000, help="data rows of the xlsx file (0: skip)")
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--dir", type=Path, default=REPO / "bench" / "data", help="where the generated files go")
    p.add_argument("--keep", action="store_true", help="keep the generated files (reused by the next run)")
    p.add_argument("--repeat", type=int, default=3, help="fresh processes per file; the median run is reported")
    p.add_argument("--profile", action="store_true", help="also run each file once under cProfile and print it")
    p.add_argument("--child", nargs=3, metavar=("FORMAT", "FILE", "WORKDIR"), help=argparse.SUPPRESS)
    p.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--generate", nargs=4, metavar=("FORMAT", "ROWS", "SEED", "FILE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.generate:
        fmt, rows, seed, file = args.generate
        generate(fmt, int(rows), int(seed), Path(file))
        return

    if args.child:
        fmt, file, work = args.child
        child(fmt, Path(file), Path(work), args.profile_to)
        return

    data_dir = args.dir.resolve()
    files = ensure_files(data_dir, args.csv_rows, args.xlsx_rows, args.seed)
    try:
        results: dict[str, list[dict]] = {}
        for fmt, (path, _rows, _) in files.items():
            for i in range(args.repeat):
                print(f"measuring {path.name} ({i + 1}/{args.repeat}) ...", file=sys.stderr)
                results.setdefault(fmt, []).append(measure(fmt, path, data_dir))
        report(files, results)
        if args.profile:
            for fmt, (path, _rows, _) in files.items():
                out = data_dir / f"profile_{fmt}.pstats"
                measure(fmt, path, data_dir, profile_to=out)
                print_profile(out, fmt)
    finally:
        if not args.keep:
            for path, _rows, _ in files.values():
                path.unlink(missing_ok=True)
            for out in data_dir.glob("profile_*.pstats"):
                out.unlink()
            if data_dir.exists() and not any(data_dir.iterdir()):
                data_dir.rmdir()


if __name__ == "__main__":
    main()
