"""Start-up of the two light entry points (tests/test_architecture.py checks what they import).

- ``import flows.config``: what the CLI, the flow and every stage read their settings from; target under 0.1 s.
- a workbook worker's whole start: ``python -m flows.publish.worker`` given no job (EOF at once), timed around
  ``subprocess.run`` (interpreter start included: what the publishing process waits); target under 0.5 s.

Each figure: ``--repeat`` fresh processes (default 5), median. Then the heavy packages a worker has loaded (none).

    .venv/bin/python -m bench.startup [--repeat 5] [--json FILE]
"""

from __future__ import annotations

import subprocess
import sys

from bench import harness

CONFIG_TARGET_S, WORKER_TARGET_S = 0.1, 0.5
HEAVY = ("duckdb", "pandera", "pandas", "prefect")


def import_config() -> dict:
    import flows.config  # noqa: F401  (the import is what is timed)

    return {}


def worker_start() -> dict:
    proc = subprocess.run([sys.executable, "-m", "flows.publish.worker"], input=b"", capture_output=True, check=True)
    if proc.stdout[:1] != b"\x80":  # a pickle: the worker answered (an empty list of documents)
        raise RuntimeError(f"the worker did not answer: {proc.stdout[:200]!r} {proc.stderr[-2000:]!r}")
    return {}


def worker_modules() -> dict:
    import flows.publish.worker  # noqa: F401
    from flows.publish.documents import write_documents  # noqa: F401

    return {"heavy": sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))}


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    ap.set_defaults(repeat=5)
    args = ap.parse_args(argv)
    repeat = 2 if args.quick else args.repeat
    config = harness.measure("bench.startup:import_config", {}, repeat=repeat)
    worker = harness.measure("bench.startup:worker_start", {}, repeat=repeat)
    heavy = harness.run_child("bench.startup:worker_modules", {})["facts"]["heavy"]
    rows = [
        {"case": "S1", "what": "import flows.config", "result": config, "target": f"< {CONFIG_TARGET_S} s"},
        {
            "case": "S2",
            "what": "workbook worker start (interpreter included)",
            "result": worker,
            "target": f"< {WORKER_TARGET_S} s",
        },
    ]
    harness.report(
        "Start-up of the light entry points",
        rows,
        args.json,
        [f"heavy packages in a worker: {', '.join(heavy) or 'none'}"],
    )
    ok = config["wall_s"] < CONFIG_TARGET_S and worker["wall_s"] < WORKER_TARGET_S and not heavy
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
