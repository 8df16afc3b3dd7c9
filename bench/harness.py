"""The one benchmark harness: every measurement in a fresh process, one table, one JSON file.

``measure("bench.night:b1", kwargs, stages=..., imports=...)`` starts ``python -m bench.harness`` in a new
process, which imports ``imports`` and the stage modules (before the clock), wraps each stage (label, module,
attribute: ``"Build.publish"`` reaches a class attribute) with a timer -- a name that no longer exists is an error,
so a rename in flows/ fails the benchmark loudly -- then calls the function with the keyword arguments (a
generator function: what runs before its one ``yield`` is setup, outside the clock) and writes what it returns
plus wall time, CPU time (the process and its reaped children) and peak RSS to a JSON file.
Peak RSS is the process tree's: the process's own VmHWM, or the summed VmRSS of it and every descendant (the
publish workers, Dask workers, Prefect's server) sampled every 0.1 s, whichever is larger. MiB = 2**20 bytes.

The measuring script's own process imports nothing of flows/ (its memory would be inherited by no one, but it
stays small and its clock starts nothing). Generated data lives under ``--dir`` (default bench/data, git-ignored),
one folder per set of ``generate`` arguments, reused by later runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO / "bench" / "data"


class StageMissing(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------------------------
# inside the measured process
# ----------------------------------------------------------------------------------------------------------------


def _status_mib(pid: int | str, field: str) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(x.split()[1]) / 1024 for x in text.splitlines() if x.startswith(f"{field}:")), 0.0)


def _tree_rss_mib() -> float:
    pids, todo = [os.getpid()], [os.getpid()]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            pids += kids
            todo += kids
    return sum(_status_mib(p, "VmRSS") for p in pids)


class _Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = 0.0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, _tree_rss_mib())
            self.done.wait(0.1)


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def install_stages(stages, record: dict) -> None:
    """Wrap each (label, module, attribute) with a timer adding to record[label]; a missing name raises."""
    for label, module, attr in stages:
        owner = importlib.import_module(module)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        original = getattr(owner, name, None) if owner is not None else None
        if not callable(original):
            raise StageMissing(f"stage {label!r}: {module}.{attr} does not exist (renamed in flows/?)")

        def timed(*a, _fn=original, _label=label, **k):
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                r = record.setdefault(_label, {"calls": 0, "seconds": 0.0})
                r["calls"] += 1
                r["seconds"] += time.perf_counter() - t

        setattr(owner, name, functools.wraps(original)(timed))


def _child(spec: str, out: str) -> None:
    job = json.loads(Path(spec).read_text())
    for module in job["imports"]:
        importlib.import_module(module)
    stages: dict = {}
    install_stages(job["stages"], stages)
    module, name = job["target"].split(":")
    fn = getattr(importlib.import_module(module), name)
    steps = fn(**job["kwargs"]) if inspect.isgeneratorfunction(fn) else None
    if steps is not None:
        next(steps)  # a generator function: the part before its one `yield` is setup, not measured
    sampler = _Sampler()
    sampler.start()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    if steps is None:
        facts = fn(**job["kwargs"])
    else:
        try:
            next(steps)
            raise RuntimeError(f"{job['target']}: a measured generator yields once")
        except StopIteration as stop:
            facts = stop.value
    wall = time.perf_counter() - t0
    facts = facts or {}
    cpu = _cpu_s() - cpu0
    sampler.done.set()
    sampler.join()
    peak = max(sampler.peak, _status_mib("self", "VmHWM"))
    result = {"wall_s": wall, "cpu_s": cpu, "peak_mib": peak, "stages": stages, "facts": facts}
    Path(out).write_text(json.dumps(result, ensure_ascii=False, default=str))


# ----------------------------------------------------------------------------------------------------------------
# in the script's process
# ----------------------------------------------------------------------------------------------------------------


def run_child(target: str, kwargs: dict, *, stages=(), imports=(), env: dict | None = None) -> dict:
    """One fresh process running ``target`` (``module:function``); its result dict (raises if it failed)."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        spec, out = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job = {"target": target, "kwargs": kwargs, "stages": [list(s) for s in stages], "imports": list(imports)}
        spec.write_text(json.dumps(job, default=str))
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH")) if p)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.harness", str(spec), str(out)], cwd=REPO, env=full_env, capture_output=True
        )
        if proc.returncode or not out.exists():
            err = proc.stderr.decode(errors="replace")[-3000:]
            raise RuntimeError(f"{target} failed (exit {proc.returncode}):\n{err}")
        return json.loads(out.read_text())


def measure(target: str, kwargs: dict, *, repeat: int = 1, **options) -> dict:
    """``repeat`` fresh processes; the median run (by wall time) with min/max wall and the largest peak."""
    runs = sorted((run_child(target, kwargs, **options) for _ in range(repeat)), key=lambda r: r["wall_s"])
    med = dict(runs[len(runs) // 2])
    walls = [r["wall_s"] for r in runs]
    med.update(n=repeat, min_s=min(walls), max_s=max(walls), peak_mib=max(r["peak_mib"] for r in runs))
    return med


def dataset(root: Path, name: str, **generate_kwargs) -> Path:
    """``root/name``: ``flows.demo.generate.generate(root/name, **generate_kwargs)`` run once (in a fresh process);
    reused while the arguments are the same."""
    folder = Path(root) / name
    stamp = folder / ".generated.json"
    wanted = json.dumps(generate_kwargs, sort_keys=True, default=str)
    if stamp.exists() and stamp.read_text() == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    run_child("bench.harness:generate_into", {"out": str(folder), "options": json.loads(wanted)})
    stamp.write_text(wanted)
    return folder


def generate_into(out: str, options: dict) -> dict:
    import datetime as dt

    from flows.demo.generate import generate

    if options.get("day"):
        options["day"] = dt.date.fromisoformat(options["day"])
    if "formats" in options:
        options["formats"] = tuple(options["formats"])
    g = generate(Path(out), **options)
    return {"rows": g.rows}


def machine() -> dict:
    def version(pkg):
        try:
            from importlib.metadata import version as v

            return v(pkg)
        except Exception:
            return "-"

    commit = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "flows", "sql", "schemas", "bench"], cwd=REPO, capture_output=True, text=True
    )
    pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    pkgs = ("duckdb", "pyarrow", "pandas", "pandera", "prefect", "openpyxl", "python-calamine", "dask")
    return {
        "command": " ".join(
            [Path(sys.executable).name, "-m", getattr(sys.modules["__main__"].__spec__, "name", "?"), *sys.argv[1:]]
        ),
        "commit": commit.stdout.strip() + (" (+ uncommitted changes)" if dirty.stdout.strip() else ""),
        "nproc": os.cpu_count(),
        "ram_gib": round(pages / 2**30, 1),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "platform": platform.platform(),
        "versions": f"python {platform.python_version()}, " + ", ".join(f"{p} {version(p)}" for p in pkgs),
    }


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="generated data, kept between runs")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per figure (median)")
    ap.add_argument("--quick", action="store_true", help="smallest settings: a smoke run")
    return ap


def report(title: str, rows: list[dict], json_path: Path | None = None, notes: list[str] = ()) -> None:
    """Print the header and a plain table of rows (case, what, rows, result[, base], target); JSON to json_path."""
    facts = machine()
    print(title)
    for k, v in facts.items():
        print(f"{k:9}: {v}")
    print(
        f"{'case':5} {'measurement':46} {'rows':>10} {'N':>2} {'wall s':>8} {'min-max':>13} {'x base':>7}"
        f" {'cpu s':>7} {'peak MiB':>9}  target"
    )
    for row in rows:
        r, base = row["result"], row.get("base")
        ratio = f"{r['wall_s'] / base['wall_s']:.2f}x" if base else "base"
        n_rows = format(row["rows"], ",") if row.get("rows") else "-"
        print(
            f"{row['case']:5} {row['what'][:46]:46} {n_rows:>10} {r['n']:>2} {r['wall_s']:>8.2f}"
            f" {r['min_s']:>6.2f}-{r['max_s']:<6.2f} {ratio:>7} {r['cpu_s']:>7.1f} {r['peak_mib']:>9,.0f}"
            f"  {row.get('target', '')}"
        )
    for row in rows:
        for label, s in row["result"]["stages"].items():
            print(f"  {row['case']:5} {row['what'][:30]:30} {label:44} {s['seconds']:>8.2f} s  x{s['calls']}")
    for note in notes:
        print(note)
    if json_path:
        clean = [{k: v for k, v in row.items() if k != "base"} for row in rows]
        json_path.write_text(json.dumps({"title": title, "machine": facts, "rows": clean}, indent=1, default=str))


def median(values) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
