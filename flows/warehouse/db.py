"""The one place that opens the DuckDB warehouse, writes to it and publishes it.

DuckDB allows one writer per file, and while a writer holds it nobody else may open it (read-only included). So a
run never writes the analysts' file in place: it copies it to a temporary file beside it, writes there in one
transaction, checkpoints, and swaps it in with ``os.replace``. Analysts with an open session keep reading the old
version; new sessions see the new one; a crash or kill at any point leaves the published file as it was (the
temporary file is removed on error, or on the next run if the process was killed). Two runs on the same warehouse
are serialised by a lock file.
"""

from __future__ import annotations

import csv
import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from schemas.spec import load_spec

log = logging.getLogger("treasury_recon.warehouse")

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
LAYERS = ("staging", "rules", "marts")
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": True}


def default_memory_limit() -> str:
    """DuckDB's memory limit when the settings give none (run.duckdb_memory_limit, $RECON_DUCKDB_MEMORY_LIMIT: read
    by flows/config.py, applied with ``set_memory_limit``): 3 GiB or half the RAM, whichever is less. DuckDB's own
    default is 80 % of RAM, and reconcile keeps its snapshots in temp tables: at 10M payments that reached 7 GB;
    with a limit DuckDB spills them to the database's ``.tmp`` folder instead."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "3GiB"
    return f"{min(3 * 1024, ram // 2**21)}MiB"


def set_memory_limit(limit: str | None) -> None:
    """Use ``limit`` (a DuckDB size such as "3GB"; ``Settings.duckdb_memory_limit``) for the connections opened
    from now on; None: ``default_memory_limit()``."""
    if limit:
        DUCKDB_CONFIG["memory_limit"] = str(limit)
    else:
        DUCKDB_CONFIG.pop("memory_limit", None)


def first_row(con: duckdb.DuckDBPyConnection, query: str, params=None) -> tuple | None:
    """The first row of ``query`` (None when it has none), with the result finished.

    Never ``con.execute(...).fetchone()``: in DuckDB 2.0 the rest of the result stays open on the connection, and
    the next ``register``, ``append`` or ``sql`` on it fails with "connection has an unfinished result"."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0] if rows else None


def sql_file(relative: str) -> str:
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    config = {"memory_limit": default_memory_limit(), **DUCKDB_CONFIG}
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except (duckdb.ParserException, duckdb.InvalidInputException) as e:
        if "memory" in str(e).lower():
            raise ValueError(f"DuckDB memory limit {config['memory_limit']!r} is not a size like 3GB: {e}") from None
        raise


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if not Path(path).exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `recon run` first")
    con = connect(path, read_only=True)
    try:
        yield con
    finally:
        con.close()


class Build:
    """A private copy of the warehouse being written; ``publish`` swaps it in, ``abandon`` throws it away.

    Holding a Build holds the warehouse's writer lock. Each ``transaction`` commits to the private copy only.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = self.path.with_name(self.path.name + ".lock").open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.done = False
        try:
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp*"):
                log.warning("removing %s left by an interrupted run", stale)
                _remove(stale)
            self.tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
            if self.path.exists():
                shutil.copyfile(self.path, self.tmp)
            self.con = connect(self.tmp)
            ensure_schema(self.con)
        except BaseException:
            self.abandon()
            raise

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.con.execute("begin transaction")
        try:
            yield self.con
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def publish(self) -> None:
        """Make the private copy the warehouse, atomically."""
        self.con.execute("checkpoint")
        self.con.close()
        os.replace(self.tmp, self.path)
        fsync_path(self.path.parent)
        self._release()

    def abandon(self) -> None:
        """Throw the private copy away; the warehouse stays as it was. Safe to call twice."""
        if self.done:
            return
        con = getattr(self, "con", None)
        if con is not None:
            con.close()
        tmp = getattr(self, "tmp", None)
        if tmp is not None:
            # the copy, its WAL and DuckDB's spill folder (<database>.tmp) when the memory limit was reached
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal"), tmp.with_name(tmp.name + ".tmp")):
                _remove(leftover)
        self._release()

    def _release(self) -> None:
        self.done = True
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def writer(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a private copy of the warehouse, published atomically when the block ends without error."""
    build = Build(path)
    try:
        with build.transaction() as con:
            yield con
        build.publish()
    finally:
        build.abandon()


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries (after os.replace), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables if missing, refresh the reference data and (re)build every view."""
    con.execute(sql_file("schema/tables.sql"))
    spec = load_spec()
    words = [(w, "counted") for w in sorted(spec.status_counted)] + [(w, "voided") for w in sorted(spec.status_voided)]
    con.execute("delete from ref_status_words")
    con.executemany("insert into ref_status_words values (?, ?)", words)
    con.execute(
        "create or replace table rule_registry (kind varchar primary key, severity varchar, category varchar,"
        " message varchar)"
    )
    con.executemany("insert into rule_registry values (?, ?, ?, ?)", rule_registry())
    build_views(con)


def rule_registry() -> list[tuple[str, str, str, str]]:
    with (SQL_DIR / "rules" / "registry.csv").open(encoding="utf-8") as f:
        return [(r["kind"], r["severity"], r["category"], r["message"]) for r in csv.DictReader(f)]


AS_OF_MARKER = "Materialized: per as_of"


def sql_definitions(layer: str) -> list[tuple[str, str]]:
    """(relation name, select) for the SQL files of a layer, in file-name order."""
    return [(f.stem, f.read_text(encoding="utf-8")) for f in sorted((SQL_DIR / layer).glob("*.sql"))]


def view_definitions() -> list[tuple[str, str]]:
    """The relations that are views: every SQL file except the marts materialized per as-of date."""
    return [(name, body) for layer in LAYERS for name, body in sql_definitions(layer) if AS_OF_MARKER not in body]


def as_of_definitions() -> list[tuple[str, str]]:
    """The marts kept per as-of date (tables), plus exceptions: the union of the rule relations."""
    marts = [(name, body) for name, body in sql_definitions("marts") if AS_OF_MARKER in body]
    return [*marts, ("exceptions", exceptions_sql([k for k, *_ in rule_registry()]))]


def exceptions_sql(kinds: list[str]) -> str:
    parts = [
        f"select '{kind}' as kind, fiscal_year, agency_code, pro_code, pay_cert_no, amount, detail, source_file,"
        f" source_row from rule_{kind}"
        for kind in kinds
    ]
    return (
        "-- exceptions: the union of the rule relations, with severity from rule_registry, as of the as-of date.\n"
        "select f.kind, g.severity, g.category, f.fiscal_year, p.as_of, f.agency_code, f.pro_code, f.pay_cert_no,"
        " cast(f.amount as decimal(18, 2)) as amount, f.detail, f.source_file, cast(f.source_row as integer)"
        " as source_row, g.message\n"
        "from (" + "\nunion all\n".join(parts) + ") as f\ninner join rule_registry as g on f.kind = g.kind\n"
        "cross join stg_params as p"
    )


def build_views(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(sql_file("schema/macros.sql"))
    pending = view_definitions()
    defined = {name for name, _ in pending}
    missing = [k for k, *_ in rule_registry() if f"rule_{k}" not in defined]
    if missing:
        raise RuntimeError(f"rule registry names rules without a sql/rules file: {missing}")
    # Views may read views of the same layer: create in dependency order by retrying what failed.
    while pending:
        failed = []
        for name, body in pending:
            try:
                con.execute(f'create or replace view "{name}" as\n{body}')
            except duckdb.CatalogException:
                failed.append((name, body))
        if len(failed) == len(pending):
            name, body = failed[0]
            con.execute(f'create or replace view "{name}" as\n{body}')  # raises the real error
        pending = failed


def known_files(path: Path) -> dict[str, str]:
    """sha256 -> file name of every file already recorded in the warehouse."""
    if not Path(path).exists():
        return {}
    with read_only(path) as con:
        try:
            return dict(con.execute("select sha256, file_name from source_file_log").fetchall())
        except duckdb.CatalogException:
            return {}
