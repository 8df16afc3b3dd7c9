"""What the B1 year gains from more Dask workers (docs/scaleout.md).

The B1 year (``--rows`` payments, 20 units x 25 projects) exported as a bureau receives it: four quarterly GB18030
files with overlapping windows (``generate(split="quarterly")``) plus refunds and budget: six files. Per runner
(``threads``, ``dask:N`` = a local cluster of N one-thread workers), each in fresh processes:

- the per-file work alone: ``ingest`` of every file, the batches gathered in the measuring process, no Prefect
  (a thread pool of one thread per file, or the Dask cluster, its start-up included);
- the nightly flow end to end (``flows.nightly.with_task_runner``) on a new warehouse, after one unmeasured flow
  on the same data that starts Prefect's temporary server. Peak RSS: the flow's process and all its descendants.

    .venv/bin/python -m bench.scaleout [--rows 1000000] [--runners threads,dask:1,dask:2] [--repeat 2] [--skip-flow]
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

from bench import harness
from bench.night import PREFECT_ENV

AS_OF = dt.date(2025, 12, 31)


def _ingest_one(path: str, label: str, kind: str):
    from flows.ingest.discover import NewFile
    from flows.ingest.validate import ingest

    return ingest(NewFile(Path(path), label, kind, "bench"))


def per_file(raw: str, runner: str):
    from flows.ingest.discover import discover

    jobs = [(str(n.path), n.label, n.kind) for n in discover(Path(raw), {})[0]]
    name, _, workers = runner.partition(":")
    if name != "threads":
        from distributed import Client, LocalCluster
    yield
    if name == "threads":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            batches = list(pool.map(lambda j: _ingest_one(*j), jobs))
    else:
        with LocalCluster(n_workers=int(workers or 2), threads_per_worker=1, dashboard_address=":0") as cluster:
            with Client(cluster) as client:
                batches = client.gather([client.submit(_ingest_one, *j, pure=False) for j in jobs])
    return {"files": len(jobs), "rows_valid": sum(b.rows_valid for b in batches)}


def flow(raw: str, runner: str, work: str):
    from flows.nightly import with_task_runner

    name, _, workers = runner.partition(":")
    run = with_task_runner(name, int(workers or 2))
    with_task_runner("threads")(raw_dir=raw, warehouse_path=f"{work}/warm.duckdb", out_dir=f"{work}/warm", as_of=AS_OF)
    yield
    r = run(raw_dir=raw, warehouse_path=f"{work}/wh.duckdb", out_dir=f"{work}/out", as_of=AS_OF)
    return {"files_new": r["files_new"], "outputs": len(r["outputs"])}


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    ap.set_defaults(repeat=2)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--units", type=int, default=20)
    ap.add_argument("--runners", default="threads,dask:1,dask:2")
    ap.add_argument("--skip-flow", action="store_true", help="the per-file work only")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.units, args.runners, args.repeat = 5_000, 2, "threads,dask:1", 1
    raw = harness.dataset(
        args.dir,
        f"quarters-{args.rows}-u{args.units}",
        payments=args.rows,
        units=args.units,
        projects_per_unit=25,
        split="quarterly",
        seed=20250101,
    )
    runners = args.runners.split(",")
    rows, base = [], None
    for runner in runners:
        r = harness.measure("bench.scaleout:per_file", {"raw": str(raw), "runner": runner}, repeat=args.repeat)
        rows.append(
            {"case": "S-f", "what": f"per-file work alone, {runner}", "rows": args.rows, "result": r, "base": base}
        )
        base = base or r
    base = None
    env = {**PREFECT_ENV, "PREFECT_HOME": str(args.dir / "prefect-home")}
    for runner in [] if args.skip_flow else runners:
        work = Path(tempfile.mkdtemp(prefix="bench-scaleout-", dir=args.dir))
        r = harness.measure(
            "bench.scaleout:flow", {"raw": str(raw), "runner": runner, "work": str(work)}, repeat=args.repeat, env=env
        )
        shutil.rmtree(work, ignore_errors=True)
        rows.append({"case": "S-n", "what": f"nightly flow, {runner}", "rows": args.rows, "result": r, "base": base})
        base = base or r
    harness.report(
        "Scale-out: threads vs a local Dask cluster",
        rows,
        args.json,
        ["peak MiB: the process and its descendants (Dask and publish workers, Prefect server)"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
