"""The one place that opens the DuckDB warehouse, writes to it and publishes it.

DuckDB allows one writer per file, and while a writer holds it nobody else may open it (read-only included). So a
run never writes the analysts' file in place: it copies it to a temporary file beside it, writes there in one
transaction, checkpoints, and swaps it in with ``os.replace``. Analysts with an open session keep reading the old
version; new sessions see the new one; a crash or kill at any point leaves the published file as it was (the
temporary file is removed on error, or on the next run if the process was killed). Two runs on the same warehouse
are serialised by a lock file.

A run never needs DuckDB's lock on the published file either. An analyst who opened it read-write (``duckdb
recon.duckdb``, a bare ``duckdb.connect(path)``) holds that lock, and then even a read-only open fails ("Could not set
lock ... (PID n)"). The Build copies the file's bytes (no DuckDB open), and ``read_only`` falls back to a private
copy of those bytes (``snapshot``), with one warning naming the holding process. The copy is taken again while the
file changes under it, so it is never half of a write. What such a session wrote and did not checkpoint is in
``<file>.wal``, not in the file: it is not part of the warehouse. After the swap that log cannot match the new file
(DuckDB refuses to open it: "WAL does not match database file"), so ``publish`` removes it; the session keeps its
old version (its own inode) until it reconnects.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from flows.warehouse import sqlgraph
from schemas.spec import load_spec

log = logging.getLogger("treasury_recon.warehouse")

SQL_DIR = sqlgraph.SQL_DIR
LAYERS = sqlgraph.LAYERS
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
    """A read-only connection to the published warehouse; when another process holds it read-write (or its stale
    log makes it unopenable), to a private copy of its bytes instead (``snapshot``), with one warning saying why."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `recon run` first")
    why = None
    try:
        con = connect(path, read_only=True)
    except duckdb.IOException as e:
        why = not_openable_in_place(e, path)
        if why is None:
            raise
    if why is not None:  # outside the except: an error of the caller's block is not chained to the lock error
        log.warning(
            "%s %s (open it read-only: duckdb -readonly, duckdb.connect(path, read_only=True), recon sql);"
            " reading a private copy of it",
            path,
            why,
        )
        with snapshot(path) as con:
            yield con
        return
    try:
        yield con
    finally:
        con.close()


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def not_openable_in_place(error: duckdb.Error, path: Path) -> str | None:
    """Why DuckDB cannot open the published file although it is whole (what a private copy gets around), from its
    error; None for any other error."""
    text = str(error)
    holder = _LOCK_HOLDER.search(text)
    if holder:
        return f"is held open read-write by {holder['program']} (PID {holder['pid']})"
    if "Could not set lock" in text:
        return "is locked by another process"
    if "WAL does not match database file" in text:
        return f"has a stale {path.name}.wal (a read-write session's log of an older version; it goes at the next run)"
    return None


SNAPSHOT_SUFFIX = ".snapshot.tmp"
COPY_ATTEMPTS = 5


def _signature(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def stable_copy(src: Path, dst: Path) -> None:
    """Copy ``src``'s bytes to ``dst`` without opening it in DuckDB; copy again while ``src`` changed during the
    copy (a read-write session writing to it), so the copy is never half of a write."""
    for attempt in range(COPY_ATTEMPTS):
        before = _signature(src)
        shutil.copyfile(src, dst)
        if _signature(src) == before:
            return
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(
        f"{src} kept changing while it was copied ({COPY_ATTEMPTS} tries): a read-write session is writing to it;"
        " close it (analysts: open the warehouse read-only) and run again"
    )


@contextmanager
def snapshot(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to a private copy of ``path``'s bytes (``.<name>.<hex>.snapshot.tmp`` beside it), for
    when DuckDB cannot open ``path`` itself. The copy is flock-ed while in use, so a Build's clean-up of stale
    temporary files leaves it alone; it is removed on close, or by the next Build if this process was killed."""
    path = Path(path)
    for _ in range(COPY_ATTEMPTS):
        snap = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{SNAPSHOT_SUFFIX}")
        guard = os.open(snap, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(guard, fcntl.LOCK_EX)
        if os.fstat(guard).st_ino == os.stat(snap).st_ino:  # not removed between create and lock
            break
        os.close(guard)
    else:
        raise RuntimeError(f"cannot make a private copy of {path} beside it")
    con = None
    try:
        stable_copy(path, snap)
        if os.fstat(guard).st_ino != os.stat(snap).st_ino:
            raise RuntimeError(f"the private copy {snap} was replaced while it was written")
        con = connect(snap, read_only=True)
        yield con
    finally:
        if con is not None:
            con.close()
        for leftover in (snap, snap.with_name(snap.name + ".tmp")):  # and DuckDB's spill folder, if it spilled
            _remove(leftover)
        os.close(guard)


def _in_use(path: Path) -> bool:
    """Whether another process holds ``path``'s flock (a snapshot being read)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


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
            in_use = [s.name for s in self.path.parent.glob(f".{self.path.name}.*{SNAPSHOT_SUFFIX}") if _in_use(s)]
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp*"):
                if any(stale.name.startswith(name) for name in in_use):
                    continue  # a snapshot another process is reading (and its spill folder)
                log.warning("removing %s left by an interrupted run", stale)
                _remove(stale)
            self.tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
            if self.path.exists():
                stable_copy(self.path, self.tmp)  # bytes only: needs no DuckDB lock on the published file
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
        # Our copy is checkpointed and closed: it has no log. A <file>.wal here is a read-write session's on the
        # version just replaced (it keeps that inode open and reads it on); it cannot match the new file and would
        # make every new connection fail, so it goes. That session's own file handle is unaffected.
        wal = self.path.with_name(self.path.name + ".wal")
        if wal.exists():
            log.warning(
                "removing %s: a read-write session's log of the replaced version, not part of the warehouse", wal
            )
            wal.unlink(missing_ok=True)
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
    """The relations declared ``Kind: view``, in build order (flows/warehouse/sqlgraph.py)."""
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
