"""The `recon` command (CONTRACT.md section 4).

Failures (docs/nightly.md, "When a run fails"): an expected one (a config or path mistake, a full disk, a read-only
folder, DuckDB out of memory, no Prefect server) ends in one line `recon: ...` (what failed, where, what to do; the
state the warehouse and outputs are in) and exit 2, or 3 when the warehouse was updated and the outputs were not.
Neither our loggers nor Prefect's print a traceback for it; `--debug` shows them. Anything else is a bug: its
traceback, then a line `recon: internal error ...`, exit 1.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import errno
import json
import logging
import os
import re
import sys
import time
import traceback
from decimal import Decimal
from pathlib import Path

EXIT_FAILED = 2  # an expected failure; the warehouse is as it was (or a config/usage mistake)
EXIT_OUTPUTS_FAILED = 3  # the warehouse holds the new run; its outputs were not (all) written
EXIT_INTERNAL = 1  # a bug: the traceback is printed

# Offline and quiet by default; an operator's own environment wins.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def _prefect_env() -> None:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


DEBUG_HELP = "on a failure, show the tracebacks (ours and Prefect's) instead of one line"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recon", description="Reconcile treasury payments against project budgets.")
    p.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    # --debug before or after the command: `recon --debug run` and `recon run --debug`
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    run = add("run", help="one full run now: ingest, validate, load (and the steps after it)")
    run.add_argument("--config", type=Path, help="TOML config file (default ./recon.toml when present)")
    run.add_argument("--raw", type=Path, help="landing folder with payments/, refunds/, budget/")
    run.add_argument("--warehouse", type=Path, help="the DuckDB file analysts open")
    run.add_argument("--out", type=Path, help="folder for workbooks and mart copies")
    run.add_argument("--as-of", type=_date, help="count payments dated on or before this day (default: today)")
    run.add_argument("--fiscal-year", type=int, help="fiscal year of budget sheets whose title names none")
    run.add_argument("--task-runner", help="threads (default), dask (a local cluster) or tcp://scheduler:8786")
    run.add_argument("--workers", type=int, help="Dask workers of a local cluster (default 2)")

    q = add("sql", help="a read-only SQL query on the warehouse")
    q.add_argument("query")
    q.add_argument("--config", type=Path)
    q.add_argument("--warehouse", type=Path)
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")

    serve = add("serve", help="serve the nightly deployment on its schedule (needs a Prefect server)")
    serve.add_argument("--config", type=Path)
    serve.add_argument("--raw", type=Path)
    serve.add_argument("--warehouse", type=Path)
    serve.add_argument("--out", type=Path)
    serve.add_argument("--cron", help="override the config's schedule, e.g. '0 2 * * *'")

    gen = add("generate", help="write synthetic exports at any scale (benchmarks, load tests)")
    gen.add_argument("--out", type=Path, required=True, help="a raw/ folder to write payments/, refunds/, budget/ into")
    gen.add_argument("--payments", type=int, default=100_000)
    gen.add_argument("--units", type=int, default=20)
    gen.add_argument("--projects-per-unit", type=int, default=10)
    gen.add_argument("--fiscal-year", type=int, default=2025)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--format", choices=["csv", "xlsx", "both"], default="csv")
    gen.add_argument(
        "--split",
        choices=["quarterly", "none"],
        default="quarterly",
        help="quarterly exports with overlapping windows, or one file",
    )
    gen.add_argument("--bad-rows", type=int, default=5)

    demo = add("demo", help="write sample exports made by this project's code, then run on them")
    demo.add_argument(
        "--dir", type=Path, default=Path("warehouse/demo"), help="where the demo raw/, warehouse and out/ go"
    )
    demo.add_argument("--as-of", type=_date, default=dt.date(2025, 12, 31))
    return p


class ConsoleFormatter(logging.Formatter):
    """``levelname name: message``; without --debug no traceback (exc_info, stack) is printed with a record."""

    def __init__(self, debug: bool):
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        if self.debug:
            return super().format(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def quiet_prefect_failures(record: logging.LogRecord) -> bool:
    """Without --debug, Prefect's own reports of a failed task or flow run stay off the console: the run's last
    line says what failed (they still go to the Prefect server's UI when there is one)."""
    return not (record.levelno >= logging.ERROR and record.name.startswith(("prefect.task_runs", "prefect.flow_runs")))


def configure_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsoleFormatter(debug))
    if not debug:
        handler.addFilter(quiet_prefect_failures)
        sys.unraisablehook = _unraisable
    logging.basicConfig(level=logging.WARNING, handlers=[handler])  # no-op when the root has handlers (pytest)
    logging.getLogger("treasury_recon").setLevel(logging.INFO)


def _unraisable(unraisable) -> None:
    """An OSError raised while an object is garbage-collected (openpyxl's half-written zip on a full disk, closed
    again by ZipFile.__del__) is the failure the run's last line reports: not a second traceback. Others: Python's
    default report."""
    if isinstance(unraisable.exc_value, OSError):
        logging.getLogger("treasury_recon").debug("ignored in %r: %s", unraisable.object, unraisable.exc_value)
        return
    sys.__unraisablehook__(unraisable)


def main(argv: list[str] | None = None) -> int:
    from flows.config import ConfigError

    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    configure_logging(debug)
    settings = None
    try:
        if args.command == "run":
            from flows.config import load_settings

            overrides = dict(
                raw_dir=args.raw,
                warehouse=args.warehouse,
                out_dir=args.out,
                fiscal_year=args.fiscal_year,
                task_runner=args.task_runner,
                dask_workers=args.workers,
            )
            settings = load_settings(args.config, **overrides)
            check_paths(settings, out=True)
            if not settings.raw_dir.is_dir():
                raise FileNotFoundError(f"raw folder {settings.raw_dir} does not exist: create it or pass --raw DIR")
            from flows.ingest.discover import no_export_message

            empty = no_export_message(settings.raw_dir)
            if empty and not settings.warehouse.exists():
                raise FileNotFoundError(f"{empty}; no warehouse at {settings.warehouse} yet: nothing to reconcile")
            if empty:
                print(f"recon: {empty}", file=sys.stderr)
            return run(settings, args.as_of)
        if args.command == "sql":
            from flows.config import load_settings
            from flows.warehouse import db

            settings = load_settings(args.config, warehouse=args.warehouse)
            check_paths(settings)
            db.set_memory_limit(settings.duckdb_memory_limit)
            return sql(settings.warehouse, args.query, args.format)
        if args.command == "serve":
            from flows.config import check_cron, load_settings

            settings = load_settings(args.config, raw_dir=args.raw, warehouse=args.warehouse, out_dir=args.out)
            if args.cron:
                check_cron(args.cron)
            check_paths(settings, out=True)
            return serve(settings, args.cron)
        if args.command == "generate":
            from flows.demo.generate import generate

            formats = ("csv", "xlsx") if args.format == "both" else (args.format,)
            g = generate(
                args.out,
                payments=args.payments,
                units=args.units,
                projects_per_unit=args.projects_per_unit,
                fiscal_year=args.fiscal_year,
                seed=args.seed,
                formats=formats,
                split=args.split,
                bad_rows=args.bad_rows,
            )
            print(
                f"{g.vouchers} vouchers in {len(g.payments)} payment export(s) ({g.rows} rows), "
                f"{len(g.refunds)} refund notice(s), {len(g.budget)} budget sheet(s) under {args.out}"
            )
            return 0
        if args.command == "demo":
            from flows.config import Settings
            from flows.demo.samples import write_samples

            base = args.dir.resolve()
            write_samples(base / "raw")
            settings = Settings(raw_dir=base / "raw", warehouse=base / "recon.duckdb", out_dir=base / "out")
            return run(settings, args.as_of)
    except (FileNotFoundError, ConfigError, PrefectServerError) as e:
        if debug:
            traceback.print_exc()
        print(f"recon: {e}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:
        return report_failure(e, settings, debug)
    return 1


# --------------------------------------------------------------------------------------------------------------
# Failures: one line for what was expected, the traceback for a bug


# OSError numbers -> (what, what to do); {path} is the file or folder concerned
OS_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free space on that disk (or point the path at a larger one)"),
    errno.EDQUOT: ("the disk quota is used up", "free space or raise the quota"),
    errno.EROFS: ("the file system is read-only", "give a folder on a writable disk"),
    errno.EACCES: ("permission denied", "let this user write there, or give another folder"),
    errno.EPERM: ("operation not permitted", "let this user write there, or give another folder"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "move that file away or give another folder"),
    errno.EEXIST: ("a file is where a folder should be", "move that file away or give another folder"),
    errno.EISDIR: ("a folder is where a file should be", "move that folder away or give another path"),
    errno.ENOENT: ("no such file or folder", "create it or give the right path"),
    errno.EBUSY: ("the file is busy (held by another program)", "close the program that holds it"),
    errno.EAGAIN: ("the file is temporarily unavailable", "close the program that holds it"),
    errno.ETXTBSY: ("the file is busy (held by another program)", "close the program that holds it"),
    errno.ETIMEDOUT: ("the disk or share timed out", "check the network share"),
    errno.ENOMEM: ("out of memory", "free memory on this machine"),
}
WORKER_OS_ERROR = re.compile(r"^\w*Error: \[Errno (\d+)\] [^:\n]*(?:: '(.*)')?\s*$")  # a worker's last line


def _memory_limit(settings) -> str:
    from flows.warehouse import db

    return (settings and settings.duckdb_memory_limit) or db.default_memory_limit()


def describe(exc: BaseException, settings=None) -> tuple[str, str, str | None] | None:
    """(what failed, what to do, the path concerned) for an expected failure; None for a bug."""
    if isinstance(exc, OSError) and exc.errno in OS_ERRORS:
        what, fix = OS_ERRORS[exc.errno]
        return what, fix, exc.filename
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.strerror or str(exc), "fix that, then run again", exc.filename
    if isinstance(exc, MemoryError):
        return "out of memory", "free memory on this machine", None
    if isinstance(exc, RuntimeError) and str(exc).startswith("a workbook worker failed"):
        # the worker sends its traceback as text (flows/publish/worker.py): its last line names the OSError
        m = WORKER_OS_ERROR.match(str(exc).strip().splitlines()[-1])
        if m and int(m.group(1)) in OS_ERRORS:
            what, fix = OS_ERRORS[int(m.group(1))]
            return what, fix, m.group(2)
        return None
    try:
        import duckdb
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        low = text.lower()
        if isinstance(exc, duckdb.OutOfMemoryException) or "could not allocate" in low or "out of memory" in low:
            return (
                f"DuckDB ran out of memory (memory limit {_memory_limit(settings)})",
                "raise run.duckdb_memory_limit in the config (or RECON_DUCKDB_MEMORY_LIMIT), or free memory",
                None,
            )
        for message, number in (
            ("no space left on device", errno.ENOSPC),
            ("read-only file system", errno.EROFS),
            ("permission denied", errno.EACCES),
            ("disk quota exceeded", errno.EDQUOT),
        ):
            if message in low:
                what, fix = OS_ERRORS[number]
                path = re.search(r'"([^"]+)"', text) or re.search(r"'([^']+)'", text)
                return what, fix, path.group(1) if path else None
    return None


def report_failure(e: Exception, settings, debug: bool) -> int:
    """Print the one line of a failed run (after the traceback when it is a bug, or with --debug); the exit status.

    The line says the state things are in first: the warehouse updated and the outputs not written (exit 3), or
    the warehouse as it was (exit 2); then what failed, where, and what to do."""
    nightly = sys.modules.get("flows.nightly")
    run_failed = nightly is not None and isinstance(e, nightly.RunFailed)
    cause = e.cause if run_failed else e
    found = describe(cause, settings)
    if debug:
        traceback.print_exception(e)  # the whole chain: the cause, then the step that failed
    elif found is None:
        traceback.print_exception(cause)  # a bug: where it happened
    outputs_failed = run_failed and isinstance(e, nightly.OutputsFailed)
    if outputs_failed:
        state = f"warehouse updated ({e.warehouse}: run {e.run_id}, as of {e.as_of}), outputs not written"
        where = e.out_dir
        again = f"then run `recon run --as-of {e.as_of}` again to write them (nothing is loaded twice)"
    else:
        wh = e.warehouse if run_failed else (settings.warehouse if settings is not None else None)
        # nothing of the run is in it; the failure hook records a run_failed alert when the warehouse takes it
        state = f"warehouse not updated ({wh}: nothing of this run was loaded)" if wh else "the run failed"
        where, again = None, "then run again"  # the warehouse is named already
    if found is None:
        first = (str(cause).strip().splitlines() or [""])[0][:300]
        print(
            f"recon: {state}: internal error (a bug): {type(cause).__name__}: {first}; the traceback above is for"
            " the bug report (`recon --debug ...` also shows Prefect's logs)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    what, fix, path = found
    if run_failed and path and Path(path).name.startswith(f".{Path(e.warehouse).name}."):
        path = str(Path(path).parent)  # the warehouse's private copy (flows/warehouse/db.py), removed by now
    place = f" ({path or where})" if path or where else ""
    print(f"recon: {state}: {what}{place}; {fix}, {again}", file=sys.stderr)
    return EXIT_OUTPUTS_FAILED if outputs_failed else EXIT_FAILED


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


def check_paths(settings, *, out: bool = False) -> None:
    """Expected mistakes in the paths, as one line each before anything starts (ConfigError)."""
    from flows.config import ConfigError

    wh = settings.warehouse
    if wh.is_dir():
        raise ConfigError(f"--warehouse {wh} is a folder: give the DuckDB file, e.g. {wh / 'recon.duckdb'}")
    if wh.is_file() and wh.stat().st_size:
        with wh.open("rb") as f:
            head = f.read(12)
        if head[8:12] != DUCKDB_MAGIC:
            raise ConfigError(f"--warehouse {wh} is not a DuckDB database file: give the warehouse file (recon.duckdb)")
    if out:
        existing = settings.out_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(
                f"--out {settings.out_dir}: cannot write there ({existing} is not a writable folder):"
                " give a writable folder (--out or paths.out)"
            )


def prefect_server_reachable(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=5):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


class PrefectServerError(Exception):
    """No Prefect API to run the flow against: the temporary server did not start, or PREFECT_API_URL does not
    answer. The CLI prints it as one line."""


USE_A_SERVER = (
    "or use a running server: `prefect server start --host 127.0.0.1 --port 4200` (as for `recon serve`, "
    "docs/nightly.md) and export PREFECT_API_URL=http://127.0.0.1:4200/api"
)


def ensure_prefect_api(timeout: int) -> None:
    """Make sure the flow has a Prefect API before it starts: the server at PREFECT_API_URL must answer; without
    one, start Prefect's temporary server here, waiting ``timeout`` seconds (run.prefect_server_timeout), and try
    once more if it did not come up. The flow then uses that server (Prefect keeps one per process)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    url = PREFECT_API_URL.value()
    if url:
        if not prefect_server_reachable(url):
            raise PrefectServerError(
                f"the Prefect server at {url} (PREFECT_API_URL) is not reachable: start it with `prefect server "
                "start --host 127.0.0.1 --port 4200`, fix PREFECT_API_URL, or unset it to use a temporary server"
            )
        return
    if not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        raise PrefectServerError(f"no Prefect server: this Prefect profile disables temporary servers; {USE_A_SERVER}")
    from prefect.server.api.server import SubprocessASGIServer

    log = logging.getLogger("treasury_recon.run")
    for attempt in (1, 2):
        server = SubprocessASGIServer()
        started = time.monotonic()
        try:
            server.start(timeout=timeout)
            return
        except Exception as e:  # Prefect raises RuntimeError("Timed out while attempting to connect ...")
            server.stop()  # the half-started server process: never left behind
            log.debug("temporary Prefect server, attempt %d: %s", attempt, e)
            if attempt == 1:
                log.warning(
                    "Prefect's temporary server did not start within %d s (%.0f s waited): trying once more",
                    timeout,
                    time.monotonic() - started,
                )
    raise PrefectServerError(
        f"Prefect's temporary server did not start within {timeout} s (tried twice; the machine may be busy): "
        f"raise run.prefect_server_timeout in the config (or RECON_PREFECT_SERVER_TIMEOUT), {USE_A_SERVER}"
    )


def run(settings, as_of: dt.date | None) -> int:
    _prefect_env()
    ensure_prefect_api(settings.prefect_server_timeout)
    from flows.nightly import with_task_runner

    as_of = as_of or settings.today()
    summary = with_task_runner(settings.task_runner, settings.dask_workers)(
        config=str(settings.config_path) if settings.config_path else None,
        raw_dir=str(settings.raw_dir),
        warehouse_path=str(settings.warehouse),
        out_dir=str(settings.out_dir),
        as_of=as_of,
        fiscal_year=settings.fiscal_year,
    )
    print(format_summary(settings, summary, as_of))
    return 0


def serve(settings, cron: str | None = None) -> int:
    """Register the nightly deployment on the Prefect server at PREFECT_API_URL and run it on schedule."""
    _prefect_env()
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "recon serve: no Prefect server configured. Schedules only run against a real server:\n"
            "  prefect server start --host 127.0.0.1 --port 4200   (in another shell, or as a service)\n"
            "  export PREFECT_API_URL=http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    url = os.environ["PREFECT_API_URL"]
    if not prefect_server_reachable(url):
        print(
            f"recon serve: the Prefect server at {url} is not reachable: start it with "
            "`prefect server start --host 127.0.0.1 --port 4200` (or fix PREFECT_API_URL)",
            file=sys.stderr,
        )
        return 2
    from prefect import serve as prefect_serve
    from prefect.schedules import Cron

    from flows.nightly import with_task_runner

    deployment = with_task_runner(settings.task_runner, settings.dask_workers).to_deployment(
        name="nightly",
        schedule=Cron(cron or settings.schedule_cron, timezone=settings.schedule_timezone),
        parameters={
            "config": str(settings.config_path) if settings.config_path else None,
            "raw_dir": str(settings.raw_dir),
            "warehouse_path": str(settings.warehouse),
            "out_dir": str(settings.out_dir),
        },
        description="treasury-recon nightly: ingest, reconcile, alert, publish",
    )
    print(
        f"serving treasury-recon/nightly: '{cron or settings.schedule_cron}' {settings.schedule_timezone}; "
        f"raw {settings.raw_dir} -> {settings.warehouse}",
        flush=True,
    )
    prefect_serve(deployment)
    return 0


def format_summary(settings, summary: dict, as_of: dt.date) -> str:
    from flows.formatting import fmt_wan
    from flows.warehouse import db

    lines = [
        f"run {summary['run_id']} as of {as_of}",
        f"files: {summary['files_new']} new, {summary['files_skipped']} already loaded, "
        f"{summary['files_rejected']} rejected; {summary['rows_rejected']} rows rejected",
    ]
    for name, error in summary.get("rejected_files", []):
        lines.append(f"rejected {error}" if (error or "").startswith(name) else f"rejected {name}: {error}")
    lines.extend(f"skipped {message}" for message in summary.get("copies", []))
    with db.read_only(settings.warehouse) as con:
        units = con.execute(
            "select fiscal_year, agency_code, coalesce(agency_name, ''), cur_amt, paid_current, execution_rate_pct,"
            " carryover_amt, paid_carryover, unbudgeted_amt from execution_by_unit where as_of = ?"
            " order by fiscal_year, agency_code",
            [as_of],
        ).fetchall()
        for fy, code, name, cur, paid, pct, co, paid_co, unb in units:
            rate = f"{pct}%" if pct is not None else "n/a"
            lines.append(
                f"unit {code} {name} {fy}: budget {fmt_wan(cur)} 万元, paid {fmt_wan(paid)} 万元, "
                f"rate {rate}; carry-over {fmt_wan(paid_co)}/{fmt_wan(co)} 万元; "
                f"unbudgeted {fmt_wan(unb)} 万元"
            )
        if not units:
            lines.append("no budget units yet: put exports in raw/payments, raw/refunds and raw/budget")
        exc = con.execute(
            "select severity, count(*) from exceptions where as_of = ? group by 1 order by 1", [as_of]
        ).fetchall()
        lines.append("exceptions: " + (", ".join(f"{c} {s}" for s, c in exc) or "none"))
    al = summary.get("alerts")
    if al is not None and al.get("backfill"):
        b = al["backfill"]
        lines.append(f"alerts: backfill as of {b['as_of']}: alerts unchanged, latest is {b['latest']}")
    elif al is not None:
        sent = "; ".join(f"{k}: {v}" for k, v in al["delivery"].items()) or "no channel configured"
        lines.append(f"alerts: {al['active']} active, {al['events']} new or changed ({sent})")
    lines.append(f"warehouse: {settings.warehouse}")
    if summary.get("outputs"):
        lines.append(f"outputs: {settings.out_dir} ({len(summary['outputs'])} files)")
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def sql(warehouse_path: Path, query: str, fmt: str) -> int:
    import duckdb

    from flows.warehouse import db

    try:
        with db.read_only(warehouse_path) as con:
            if fmt == "table":
                rel = con.sql(query)
                if rel is not None:
                    rel.show(max_width=200, max_rows=1000)
                return 0
            cur = con.execute(query)
            names = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
    except duckdb.Error as e:
        print(f"recon sql: {e}", file=sys.stderr)
        return 1
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(names)
        w.writerows([[_plain(v) for v in r] for r in rows])
    else:
        json.dump(
            [{k: _plain(v) for k, v in zip(names, r, strict=True)} for r in rows],
            sys.stdout,
            ensure_ascii=False,
            indent=1,
        )
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
