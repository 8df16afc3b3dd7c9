"""What B1 gains from more Dask workers (issue 5, scale-out; not a test).

    python bench/bench_scaleout.py [--rows 1000000] [--runners threads,dask:1,dask:2] [--repeat 2]
                                   [--seed 20250101] [--dir bench/data] [--keep] [--skip-flow]

The B1 year of bench_compare.py (``--rows`` payments, 20 units x 25 projects, GB18030 CSV), but exported the way a
bureau receives it: four quarterly payment files with overlapping windows (``generate(split="quarterly")``), plus
the refund notices and the budget sheet: six files, so the per-file work can run in parallel. Each runner runs the
whole nightly flow (``flows.nightly.with_task_runner(runner, workers)``: discover -> ingest per file -> load ->
reconcile -> alerts -> publish the warehouse -> publish the outputs) on a new warehouse, ``--repeat`` times, each in
a fresh Python process that first runs one unmeasured flow on a small data set (that starts Prefect's temporary
server, a once-per-process cost measured by bench_compare.py's P case). ``dask:N`` is a local Dask cluster of N
worker processes (one thread each) started by the flow run itself, so its start-up is counted.

First, per runner and in fresh processes, the per-file work alone: ``ingest`` of every file with the
results gathered in the measuring process, no Prefect: a thread pool of one thread per file, or a local Dask
cluster of N workers (its start-up timed and shown apart, included in the wall time). ``--skip-flow`` stops there.

Then for the flow, printed per runner (median run): wall time, the ingest phase (flow start until the load
begins: discovery, the per-file tasks, the validated rows travelling back), load + reconcile + alerts, publishing
the outputs, and the peak memory of all the run's processes together (the flow's process plus the Dask workers,
the publish workers and Prefect's temporary server, sampled every 0.1 s from /proc, RSS summed). MiB = 2**20 bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (str(REPO), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench_compare import PREFECT_ENV, Data, _code_fingerprint, _mem_total, _Sampler  # noqa: E402
from bench_ingest import _commit, _nproc  # noqa: E402

AS_OF = dt.date(2025, 12, 31)
UNITS, PROJECTS_PER_UNIT = 20, 25


def child_flow(raw: str, small: str, runner: str, work: str) -> None:
    from flows.nightly import recon_flow, with_task_runner
    from flows.publish import outputs
    from flows.warehouse import load

    marks: dict[str, float] = {}

    def mark(name, fn):
        def wrapped(*a, **k):
            marks.setdefault(name, time.perf_counter())
            try:
                return fn(*a, **k)
            finally:
                marks[name + "_end"] = time.perf_counter()

        return wrapped

    recon_flow(
        raw_dir=small, warehouse_path=str(Path(work) / "warm.duckdb"), out_dir=str(Path(work) / "warm"), as_of=AS_OF
    )
    load.load_batches = mark("load", load.load_batches)
    outputs.publish_outputs = mark("publish", outputs.publish_outputs)
    name, _, workers = runner.partition(":")
    flow = with_task_runner(name, int(workers or 2))
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    result = flow(
        raw_dir=raw, warehouse_path=str(Path(work) / "wh.duckdb"), out_dir=str(Path(work) / "out"), as_of=AS_OF
    )
    t1 = time.perf_counter()
    sampler.stop.set()
    sampler.join()
    out = {
        "wall_s": t1 - t0,
        "ingest_s": marks["load"] - t0,
        "load_reconcile_s": marks["publish"] - marks["load"],
        "publish_s": marks["publish_end"] - marks["publish"],
        "peak_tree_mib": sampler.peak,
        "files_new": result["files_new"],
        "outputs": len(result["outputs"]),
    }
    print("BENCH-RESULT " + json.dumps(out))


def _ingest_one(path: str, label: str, kind: str):
    from flows.ingest.discover import NewFile
    from flows.ingest.validate import ingest

    return ingest(NewFile(Path(path), label, kind, "bench"))


def child_plain(raw: str, runner: str) -> None:
    """The per-file work alone (``ingest`` of every file, results back in this process), no Prefect:
    a thread pool, or a local Dask cluster of N workers (its start-up timed apart)."""
    from flows.ingest.discover import discover

    new, _ = discover(Path(raw), {})
    jobs = [(str(n.path), n.label, n.kind) for n in new]
    name, _, workers = runner.partition(":")
    t0 = time.perf_counter()
    start_s = 0.0
    if name == "threads":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            batches = list(pool.map(lambda j: _ingest_one(*j), jobs))
    else:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=int(workers or 2), threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
        start_s = time.perf_counter() - t0
        try:
            batches = client.gather([client.submit(_ingest_one, *j, pure=False) for j in jobs])
        finally:
            client.close()
            cluster.close()
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "start_s": start_s, "rows_valid": sum(b.rows_valid for b in batches)}
    print("BENCH-RESULT " + json.dumps(out))


def prep(out: str, rows: str, seed: str) -> None:
    from flows.demo.generate import generate

    rows, seed = int(rows), int(seed)  # arguments reach a child process as text
    generate(Path(out), payments=rows, units=UNITS, projects_per_unit=PROJECTS_PER_UNIT, split="quarterly", seed=seed)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--runners", default="threads,dask:1,dask:2", help="threads | dask:N (a local cluster of N)")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--dir", type=Path, default=BENCH / "data")
    p.add_argument("--keep", action="store_true", help="keep the generated data (reused next time)")
    p.add_argument("--skip-flow", action="store_true", help="only the per-file work without Prefect")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        task, params = args.child
        {"flow": child_flow, "plain": child_plain, "prep": prep}[task](*json.loads(params))
        return

    data = Data(args.dir.resolve(), args.keep)
    code = _code_fingerprint()

    def run(task: str, *params, env=None) -> str:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task, json.dumps([str(x) for x in params])]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-20000:] + proc.stderr[-20000:])
            raise SystemExit(f"{task} failed (exit {proc.returncode})")
        return proc.stdout

    try:
        print(f"generating {args.rows:,} payments in quarterly files ...", file=sys.stderr)
        raw = data.get(f"scaleout_{args.rows}_{args.seed}", lambda d: run("prep", d, args.rows, args.seed))
        small = data.get(f"scaleout_small_{args.seed}", lambda d: run("prep", d, 2000, args.seed))
        files = sorted(str(f.relative_to(raw)) for f in raw.rglob("*") if f.is_file())
        home = Path(tempfile.mkdtemp(prefix="scaleout-prefect-", dir=data.root))
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update({k: os.environ.get(k, v) for k, v in PREFECT_ENV.items()})
        env["PREFECT_HOME"] = str(home)
        results: dict[str, list[dict]] = {}
        plain: dict[str, list[dict]] = {}

        def result(out: str) -> dict:
            return json.loads(next(x for x in out.splitlines() if x.startswith("BENCH-RESULT ")).split(" ", 1)[1])

        try:
            for runner in args.runners.split(","):
                for i in range(args.repeat):
                    print(
                        f"measuring {runner}, per-file work without Prefect ({i + 1}/{args.repeat}) ...",
                        file=sys.stderr,
                    )
                    r = result(run("plain", raw, runner))
                    print(f"  {r['wall_s']:.2f} s", file=sys.stderr)
                    plain.setdefault(runner, []).append(r)
                for i in range(0 if args.skip_flow else args.repeat):
                    print(f"measuring {runner}, the flow ({i + 1}/{args.repeat}) ...", file=sys.stderr)
                    work = Path(tempfile.mkdtemp(prefix="scaleout-work-", dir=data.root))
                    try:
                        r = result(run("flow", raw, small, runner, work, env=env))
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                    print(f"  {r['wall_s']:.2f} s", file=sys.stderr)
                    results.setdefault(runner, []).append(r)
        finally:
            shutil.rmtree(home, ignore_errors=True)
    finally:
        data.cleanup()
        if code != _code_fingerprint():
            print("WARNING: flows/, schemas/ or sql/ changed during the run", file=sys.stderr)

    print(f"\nB1 year in {len(files)} files ({', '.join(files)}), {args.rows:,} payments, as of {AS_OF}")
    print(f"machine: {_nproc()} cores, {_mem_total()} RAM; commit {_commit()}; median of {args.repeat} runs each")
    print(f"command: python bench/bench_scaleout.py {' '.join(argv if argv is not None else sys.argv[1:])}\n")
    print("the per-file work alone: ingest of every file, results gathered, no Prefect")
    print(f"{'runner':<10} {'wall s':>8} {'range':>13} {'speed-up':>9} {'of it cluster start s':>22}")
    for line, med, _runs in _lines(plain):
        print(f"{line} {med['start_s']:>22.2f}")
    if not results:
        return
    print("\nthe nightly flow, end to end")
    head = f"{'runner':<10} {'wall s':>8} {'range':>13} {'speed-up':>9} {'ingest s':>9} {'load+rec s':>10}"
    print(head + f" {'publish s':>9} {'peak MiB (all processes)':>25}")
    for line, med, runs in _lines(results):
        print(
            f"{line} {med['ingest_s']:>9.2f} {med['load_reconcile_s']:>10.2f} {med['publish_s']:>9.2f}"
            f" {max(r['peak_tree_mib'] for r in runs):>25,.0f}"
        )


def _lines(by_runner: dict[str, list[dict]]):
    """(runner, median wall, range, speed-up against the first runner) as text, the median run, the runs."""
    base = None
    for runner, runs in by_runner.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        base = base or wall
        med = sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]
        low, high = min(r["wall_s"] for r in runs), max(r["wall_s"] for r in runs)
        yield f"{runner:<10} {wall:>8.2f} {low:>6.2f}-{high:<6.2f} {base / wall:>8.2f}x", med, runs


if __name__ == "__main__":
    main()
