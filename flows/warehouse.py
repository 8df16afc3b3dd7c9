"""The one place that opens the DuckDB warehouse, writes to it and publishes it.

DuckDB allows one writer per file, and while a writer holds it nobody else may open it (read-only included). So a
run never writes the analysts' file in place: it copies it to a temporary file beside it, writes there in one
transaction, checkpoints, and swaps it in with ``os.replace``. Analysts with an open session keep reading the old
version; new sessions see the new one; a crash or kill at any point leaves the published file as it was (the
temporary file is removed on error, or on the next run if the process was killed). Two runs on the same warehouse
are serialised by a lock file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from flows import sqlgraph
from flows.ingest import FileBatch
from schemas.spec import load_spec

log = logging.getLogger("treasury_recon.warehouse")

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
LAYERS = sqlgraph.LAYERS
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": True}
MEMORY_LIMIT_ENV = "RECON_DUCKDB_MEMORY_LIMIT"


def default_memory_limit() -> str:
    """DuckDB's memory limit for this process: $RECON_DUCKDB_MEMORY_LIMIT (e.g. "2GB"), else 3 GiB or half the
    RAM, whichever is less. DuckDB's own default is 80 % of RAM, and reconcile keeps its snapshots in temp tables:
    at 10M payments that reached 7 GB; with a limit DuckDB spills them to the database's ``.tmp`` folder instead."""
    configured = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if configured:
        return configured
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "3GiB"
    return f"{min(3 * 1024, ram // 2**21)}MiB"


def set_memory_limit(limit: str | None) -> None:
    """Use ``limit`` (a DuckDB size such as "3GB") for the connections opened from now on; None: the default."""
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
        " message varchar, kind_zh varchar)"
    )
    con.executemany("insert into rule_registry values (?, ?, ?, ?, ?)", rule_registry())
    con.execute("create or replace table ref_labels (domain varchar, code varchar, label_zh varchar)")
    con.executemany(
        "insert into ref_labels values (?, ?, ?)",
        [(domain, code, label) for domain in LABEL_DOMAINS for code, label in sqlgraph.labels(domain).items()],
    )
    build_views(con)


LABEL_DOMAINS = ("severity", "alert_severity", "alert_kind", "squeeze_rule")


def rule_registry() -> list[tuple[str, str, str, str, str]]:
    """sql/rules/registry.csv as (kind, severity, category, message, kind_zh)."""
    return [(r["kind"], r["severity"], r["category"], r["message"], r["kind_zh"]) for r in sqlgraph.registry()]


def sql_definitions(layer: str) -> list[tuple[str, str]]:
    """(relation name, select) for the SQL files of a layer, in file-name order."""
    return [(f.stem, f.read_text(encoding="utf-8")) for f in sorted((SQL_DIR / layer).glob("*.sql"))]


def view_definitions() -> list[tuple[str, str]]:
    """The relations declared ``Kind: view``, in build order (flows/sqlgraph.py)."""
    return [(r.name, r.body) for r in sqlgraph.relations() if r.kind == "view"]


def as_of_definitions() -> list[tuple[str, str]]:
    """The relations declared ``Kind: per_as_of`` (tables keeping one set of rows per as-of date), in build order:
    reconcile fills them in this order, each after the ones it reads."""
    return [(r.name, r.body) for r in sqlgraph.relations() if r.kind == "per_as_of"]


def build_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create every view, and every per-as-of table not there yet, in the order the ``Reads:`` headers give (a view
    may read a per-as-of table: it is created, empty, first). A per-as-of table gains the columns added to its
    query; a view no SQL file defines any more (a renamed relation) is dropped."""
    con.execute(sql_file("schema/macros.sql"))
    graph = sqlgraph.relations()
    defined = {r.name for r in graph}
    missing = [k for k, *_ in rule_registry() if f"rule_{k}" not in defined]
    if missing:
        raise RuntimeError(f"rule registry names rules without a sql/rules file: {missing}")
    existing = dict(
        con.execute(
            "select table_name, table_type from information_schema.tables"
            " where table_schema = 'main' and table_catalog = current_database()"
        ).fetchall()
    )
    for name, table_type in existing.items():
        if table_type == "VIEW" and name not in defined:
            con.execute(f'drop view "{name}"')
    for r in graph:
        if r.kind == "view":
            con.execute(f'create or replace view "{r.name}" as\n{r.body}')
        elif r.kind == "per_as_of":
            if existing.get(r.name) == "VIEW":  # a warehouse from before this mart was kept per as-of date
                con.execute(f'drop view "{r.name}"')
            if existing.get(r.name) != "BASE TABLE":
                con.execute(f'create table "{r.name}" as select * from (\n{r.body}\n) limit 0')
                continue
            have = {c for c, *_ in con.execute(f'describe "{r.name}"').fetchall()}
            for column, dtype, *_ in con.execute(f"describe select * from (\n{r.body}\n)").fetchall():
                if column not in have:
                    con.execute(f'alter table "{r.name}" add column "{column}" {dtype}')


def known_files(path: Path) -> dict[str, str]:
    """sha256 -> file name of every file already recorded in the warehouse."""
    if not Path(path).exists():
        return {}
    with read_only(path) as con:
        try:
            return dict(con.execute("select sha256, file_name from source_file_log").fetchall())
        except duckdb.CatalogException:
            return {}


_RAW_COLUMNS = {
    "payments": "raw_payments",
    "refunds": "raw_refunds",
    "budget": "raw_budget_lines",
}


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns where table_name = ? order by ordinal_position",
        [table],
    ).fetchall()


def load_batches(con: duckdb.DuckDBPyConnection, batches: list[FileBatch], run_id: str) -> list[FileBatch]:
    """Insert the batches' rows, rejects and accounting. Files already recorded (same sha256) are skipped and
    returned unchanged; the list of files actually loaded is returned."""
    known = {r[0] for r in con.execute("select sha256 from source_file_log").fetchall()}
    next_id = first_row(con, "select coalesce(max(file_id), 0) + 1 from source_file_log")[0]
    loaded = []
    for batch in batches:
        if batch.sha256 in known:
            log.info("%s: already loaded (same sha256), skipped", batch.file_name)
            continue
        known.add(batch.sha256)
        file_id = next_id
        next_id += 1
        _insert_rows(con, batch, file_id)
        _insert_rejects(con, batch, file_id)
        latest = None
        if batch.rows is not None and len(batch.rows):
            date_col = {"payments": "pay_date", "refunds": "refund_date"}.get(batch.kind)
            if date_col:
                latest = batch.rows[date_col].max().date()
        con.execute(
            "insert into source_file_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?::decimal(18, 0) * 0.01, ?::decimal(18, 0) * 0.01, ?, ?, ?)",
            [
                file_id,
                batch.file_name,
                str(batch.path),
                batch.sha256,
                batch.kind,
                batch.status,
                batch.error,
                batch.sheet,
                batch.encoding,
                ", ".join(f"{k}={v}" for k, v in sorted(batch.units.items())) or None,
                batch.fiscal_year,
                batch.rows_read,
                batch.rows_valid,
                batch.rows_rejected,
                batch.rows_skipped,
                batch.control_total,
                batch.parsed_total if batch.status == "loaded" else None,
                latest,
                run_id,
                datetime.now(UTC),
            ],
        )
        loaded.append(batch)
    con.execute(sql_file("schema/rejected_units.sql"))  # also ties earlier rejects to vouchers loaded now
    return loaded


_DECIMAL = re.compile(r"decimal", re.IGNORECASE)


def _insert_rows(con: duckdb.DuckDBPyConnection, batch: FileBatch, file_id: int) -> None:
    if batch.rows is None or not len(batch.rows):
        return
    table = _RAW_COLUMNS[batch.kind]
    df = batch.rows
    select = []
    for name, dtype in _table_columns(con, table):
        if name == "file_id":
            select.append("$file_id")
        elif name == "source_file":
            select.append("$source_file")
        elif _DECIMAL.match(dtype):
            # integer fen -> exact DECIMAL(18,2); no float on the way
            select.append(f'(cast("{name}" as decimal(18, 0)) * 0.01)::decimal(18, 2)')
        elif dtype == "DATE":
            select.append(f'cast("{name}" as date)')
        else:
            select.append(f'"{name}"')
    con.register("batch_rows", pa.Table.from_pandas(df, preserve_index=False))  # arrow scans 2.5x faster
    try:
        con.execute(
            f"insert into {table} select {', '.join(select)} from batch_rows",
            {"file_id": file_id, "source_file": batch.file_name},
        )
    finally:
        con.unregister("batch_rows")
    if batch.extras is not None and len(batch.extras):
        con.register("batch_extras", batch.extras)
        try:
            con.execute(
                "insert into raw_extra_columns select $file_id, $source_file, source_row, header, value"
                " from batch_extras",
                {"file_id": file_id, "source_file": batch.file_name},
            )
        finally:
            con.unregister("batch_extras")


def _insert_rejects(con: duckdb.DuckDBPyConnection, batch: FileBatch, file_id: int) -> None:
    if not len(batch.rejects):
        return
    df = batch.rejects.astype({c: "Int64" if c == "source_row" else "str" for c in batch.rejects.columns})
    df = df.astype(object).where(pd.notna(df), None)
    con.register("batch_rejects", df)
    try:
        con.execute(
            'insert into rejected_rows (file_id, source_file, source_row, "column", value, "check", message,'
            " row_text, agency_code, agency_name, ori_pay_cert_no)"
            ' select $file_id, $source_file, source_row, "column", value, "check", message, row_text, agency_code,'
            " agency_name, ori_pay_cert_no from batch_rejects",
            {"file_id": file_id, "source_file": batch.file_name},
        )
    finally:
        con.unregister("batch_rejects")


def record_copies(con: duckdb.DuckDBPyConnection, copies: list[tuple[str, str, str, str]], run_id: str) -> None:
    """Record (file name, sha256, name of the file already read with these bytes, message) of identical copies in
    `duplicate_files` (shown in source_files); a copy already recorded is left as it was."""
    if copies:
        con.executemany(
            "insert or ignore into duplicate_files values (?, ?, ?, ?, ?, ?)",
            [[*c, run_id, datetime.now(UTC)] for c in copies],
        )


def record_run(
    con: duckdb.DuckDBPyConnection, run_id: str, started: datetime, as_of, *, files_new: int, files_skipped: int
) -> None:
    """One row per completed run in `runs` (a failed run leaves its trace in `alerts` as run_failed)."""
    con.execute(
        "insert into runs values (?, ?, ?, ?, ?, ?, 'completed')",
        [run_id, started, datetime.now(UTC), as_of, files_new, files_skipped],
    )
