"""Start-up cost of the two light entry points (not a test; tests/test_architecture.py checks what they import).

- ``import flows.config``: what the CLI, the flow and every stage read their settings from; target under 0.1 s.
- a workbook worker's start: ``python -m flows.publish.worker`` given no job (EOF at once), which imports what it
  needs to write a unit's documents (openpyxl, the workbook and paragraph writers) and answers; target under 0.5 s.

Each is timed in a fresh process, ``--repeat`` times (default 5), and the median printed: the config import inside
that process (the import alone), the worker by the wall clock around ``subprocess.run`` (interpreter start
included: what the publishing process waits). Then the heavy packages a worker has loaded (none expected).

    .venv/bin/python bench/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG_TARGET_S, WORKER_TARGET_S = 0.1, 0.5
HEAVY = ("duckdb", "pandera", "pandas", "prefect")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def time_import_config() -> float:
    """Seconds ``import flows.config`` takes in a fresh interpreter (timed inside it: the import alone)."""
    code = "import time; t = time.perf_counter(); import flows.config; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def time_worker_start() -> float:
    """Seconds from starting ``python -m flows.publish.worker`` (no job) to its answer: a worker's whole start-up."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flows.publish.worker"], cwd=REPO, env=_env(), input=b"", capture_output=True, check=True
    )
    elapsed = time.perf_counter() - t
    if proc.stdout[:1] != b"\x80":  # a pickle: the worker answered (an empty list of documents)
        raise RuntimeError(f"the worker did not answer: {proc.stdout[:200]!r} {proc.stderr[-2000:]!r}")
    return elapsed


def worker_modules() -> list[str]:
    """The heavy packages a worker has loaded once it could write documents (none is expected)."""
    code = (
        "import json, sys, runpy\n"
        "import flows.publish.worker\n"
        "from flows.publish.documents import write_documents\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    config = [time_import_config() for _ in range(args.repeat)]
    worker = [time_worker_start() for _ in range(args.repeat)]
    c, w = statistics.median(config), statistics.median(worker)
    print(f"import flows.config: {c:.3f} s (median of {args.repeat}; target < {CONFIG_TARGET_S} s)")
    print(
        f"workbook worker start: {w:.3f} s (median of {args.repeat}, interpreter start included; "
        f"target < {WORKER_TARGET_S} s)"
    )
    heavy = worker_modules()
    print(f"heavy packages in a worker: {', '.join(heavy) or 'none'}")
    return 0 if c < CONFIG_TARGET_S and w < WORKER_TARGET_S and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
