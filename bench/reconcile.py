"""Reconcile only (issue 5's B4): ``transform.reconcile`` in a ``Build`` transaction, 1M -> 10M payments.

The warehouse: the B1 year (``generate(split="none")``, ``--rows`` payments, 20 units x 25 projects) built once by
``build_night`` and kept under --dir; for each ``--factors`` k > 1 a copy with the payment and refund exports
replicated k times in SQL (new voucher numbers PV2025 + n + r x 20,000,000; the 原支付凭证号 follow; the budget's
money x k, so execution rates stay those of the year). Only ``reconcile(con, as_of)`` is timed (the private copy
is made before the clock). Target: linear growth; 10M under 60 s and 4 GB.

    .venv/bin/python -m bench.reconcile [--rows 1000000] [--factors 1,10] [--repeat 3] [--dir bench/data]
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

from bench import harness

AS_OF = dt.date(2025, 12, 31)
STEP = 20_000_000  # voucher-number offset of each replica


def reconcile(warehouse: str):
    from flows.warehouse import db
    from flows.warehouse.transform import reconcile

    build = db.Build(Path(warehouse))
    yield
    try:
        with build.transaction() as con:
            marts = reconcile(con, AS_OF)
        rows = build.con.execute("select count(*) from raw_payments").fetchone()[0]
    finally:
        build.abandon()
    return {"raw_payments": rows, "marts": marts}


def build_year(raw: str, warehouse: str) -> dict:
    from flows.build import build_night

    build_night(Path(warehouse), AS_OF, raw_dir=Path(raw))
    return {}


def _renumber(col: str, width: int, step: int) -> str:
    return (
        f"case when try_cast(substr({col}, 7) as bigint) is null then {col} || '-r' || r.k"
        f" else substr({col}, 1, 6)"
        f" || lpad(cast(cast(substr({col}, 7) as bigint) + r.k * {step} as varchar), {width}, '0') end"
    )


def replicate(src: str, dst: str, factor: int) -> dict:
    """dst: src with the payment and refund files replicated ``factor`` times (factor - 1 new copies)."""
    from flows.warehouse import db

    shutil.copyfile(src, dst)
    con = db.connect(dst)
    con.execute("begin transaction")
    con.execute("create temp table rep as select range as k from range(1, ?)", [factor])
    fstep = con.execute("select coalesce(max(file_id), 0) + 1 from source_file_log").fetchone()[0]

    def select(table, special):
        cols = [r[0] for r in con.execute(f"describe {table}").fetchall()]
        return ", ".join(special.get(c, f'x."{c}"') for c in cols)

    renamed = "regexp_replace(x.{}, '(\\.[^./]*)$', '_r' || r.k || '\\1')"
    common = {"file_id": f"x.file_id + r.k * {fstep}", "source_file": renamed.format("source_file")}
    kinds = "(select file_id from source_file_log where kind in ('payments', 'refunds'))"
    log = {
        **common,
        "file_name": renamed.format("file_name"),
        "file_path": renamed.format("file_path"),
        "sha256": "x.sha256 || '-r' || r.k",
    }
    ori = _renumber("x.ori_pay_cert_no", 9, STEP)
    con.execute(
        f"insert into source_file_log select {select('source_file_log', log)} from source_file_log x, rep r"
        f" where x.file_id in {kinds}"
    )
    pay = {**common, "pay_cert_no": _renumber("x.pay_cert_no", 9, STEP), "ori_pay_cert_no": ori}
    con.execute(f"insert into raw_payments select {select('raw_payments', pay)} from raw_payments x, rep r")
    ref = {**common, "refund_no": _renumber("x.refund_no", 7, 1_000_000), "ori_pay_cert_no": ori}
    con.execute(f"insert into raw_refunds select {select('raw_refunds', ref)} from raw_refunds x, rep r")
    for table in ("rejected_rows", "raw_extra_columns"):
        con.execute(
            f"insert into {table} select {select(table, common)} from {table} x, rep r where x.file_id in {kinds}"
        )
    money = {r[0] for r in con.execute("describe raw_budget_lines").fetchall()} & {
        "reply_amt",
        "adj_amt",
        "cur_amt",
        "carryover_amt",
        "plan_q1",
        "plan_q2",
        "plan_q3",
        "plan_q4",
    }
    con.execute(f"update raw_budget_lines set {', '.join(f'{c} = {c} * {factor}' for c in sorted(money))}")
    con.execute(
        f"update source_file_log set control_total = control_total * {factor},"
        f" parsed_total = parsed_total * {factor} where kind = 'budget'"
    )
    con.execute("commit")
    con.execute("checkpoint")
    con.close()
    return {}


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--factors", default="1,10", help="warehouse sizes as multiples of --rows")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.factors, args.repeat = 5_000, "1,3", 1
    raw = harness.dataset(
        args.dir,
        f"year-{args.rows}-u20",
        payments=args.rows,
        units=20,
        projects_per_unit=25,
        split="none",
        seed=20250101,
    )
    rows, base = [], None
    for k in map(int, args.factors.split(",")):
        wh = args.dir / f"reconcile-{args.rows}-x{k}.duckdb"
        if not wh.exists():
            year = args.dir / f"reconcile-{args.rows}-x1.duckdb"
            if not year.exists():
                harness.run_child("bench.reconcile:build_year", {"raw": str(raw), "warehouse": str(year)})
            if k > 1:
                harness.run_child("bench.reconcile:replicate", {"src": str(year), "dst": str(wh), "factor": k})
        r = harness.measure("bench.reconcile:reconcile", {"warehouse": str(wh)}, repeat=args.repeat)
        rows.append(
            {
                "case": "B4",
                "what": f"reconcile only, warehouse x{k}",
                "rows": r["facts"]["raw_payments"],
                "result": r,
                "base": base,
                "target": "10M: < 60 s, < 4 GB" if k > 1 else "",
            }
        )
        base = base or r
    harness.report("Reconcile only (B4)", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
