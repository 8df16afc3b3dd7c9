"""The steps of a run as plain functions: discover new files, ingest each, load them. Prefect wires them in
nightly.py; tests call them directly."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from flows import warehouse
from flows.ingest import FileBatch, guess_kind, ingest_file, kind_of, reject_file, sha256_of
from flows.readers import SPREADSHEET_SUFFIXES, TEXT_SUFFIXES
from flows.reconcile import reconcile as reconcile_marts

log = logging.getLogger("treasury_recon.pipeline")


@dataclass(frozen=True)
class NewFile:
    path: Path
    label: str  # the path relative to raw/, as recorded in source_files.file_name
    kind: str | None  # None: not a recognisable export (reported, never loaded)
    sha256: str


@dataclass(frozen=True)
class Skipped:
    """A file whose content (sha256) was already read: the same file again, or a copy under another name."""

    label: str
    sha256: str
    same_as: str  # the name under which this content was first read
    empty: bool = False

    @property
    def is_copy(self) -> bool:
        return self.label != self.same_as

    @property
    def message(self) -> str:
        if self.empty:
            return f"{self.label}: 文件为空（0 字节），已跳过 — the file is empty (0 bytes)"
        return (
            f"{self.label}: 与 {self.same_as} 内容完全相同，已载入过，不再重复载入 — "
            f"identical to {self.same_as}, already loaded"
        )


def today(timezone: str = "Asia/Shanghai") -> dt.date:
    """The default as-of date: today where the budget unit is."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(timezone)).date()


def discover(raw_dir: Path, known: dict[str, str]) -> tuple[list[NewFile], list[Skipped]]:
    """Files under raw_dir not yet in the warehouse (by sha256), in a stable order, and the files skipped because
    their content was already read (a copy under another name among them: ``Skipped.is_copy``).

    The kind comes from the folder (raw/payments, raw/refunds, raw/budget) or, for files elsewhere, from the
    header their first rows contain. Hidden files and Excel lock files (~$…) are ignored.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw folder {raw_dir} does not exist")
    found: list[NewFile] = []
    skipped: list[Skipped] = []
    for path in sorted(p for p in raw_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(raw_dir)
        if any(part.startswith(".") for part in rel.parts) or path.name.startswith("~$"):
            continue
        sha = sha256_of(path)
        if sha in known:
            skipped.append(Skipped(rel.as_posix(), sha, known[sha], empty=path.stat().st_size == 0))
            continue
        kind = kind_of(path, raw_dir)
        if kind is None and path.suffix.lower() in SPREADSHEET_SUFFIXES | TEXT_SUFFIXES:
            kind = guess_kind(path)
        found.append(NewFile(path, rel.as_posix(), kind, sha))
        known = {**known, sha: rel.as_posix()}  # the same content twice in one run is loaded once
    return found, skipped


def no_export_message(raw_dir: Path) -> str | None:
    """The one line saying raw_dir holds no file at all (hidden files aside), or None when it holds some."""
    raw_dir = Path(raw_dir)
    for path in raw_dir.rglob("*"):
        rel = path.relative_to(raw_dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            return None
    return (
        f"no export found under {raw_dir}: put the treasury and budget exports (xlsx, xls, csv, txt) in "
        f"{raw_dir / 'payments'}, {raw_dir / 'refunds'} and {raw_dir / 'budget'}"
    )


def ingest(new: NewFile, fiscal_year: int | None = None) -> FileBatch:
    """Read and validate one new file (never raises for bad input)."""
    if new.kind is None:
        batch = FileBatch(path=new.path, file_name=new.label, sha256=new.sha256, kind="unknown")
        return reject_file(
            batch,
            f"{new.label}: 不是可识别的导出文件 — not a recognisable export; put exports in raw/payments, "
            "raw/refunds or raw/budget as xlsx, xls, csv or txt",
            "unknown_file",
            None,
        )
    batch = ingest_file(new.path, new.kind, sha256=new.sha256, fiscal_year=fiscal_year, label=new.label)
    log.info(
        "%s (%s): read %d rows, %d valid, %d rejected, %d skipped%s",
        new.label,
        new.kind,
        batch.rows_read,
        batch.rows_valid,
        batch.rows_rejected,
        batch.rows_skipped,
        f" — {batch.error}" if batch.error else "",
    )
    return batch


def load(build: warehouse.Build, batches: list[FileBatch], run_id: str, skipped: list[Skipped] = ()) -> list[FileBatch]:
    """Load the batches into the build (the private copy of the warehouse), in one transaction, and record the
    identical copies among the skipped files (once each: the same copy every night changes nothing)."""
    with build.transaction() as con:
        loaded = warehouse.load_batches(con, batches, run_id)
        warehouse.record_copies(con, [(s.label, s.sha256, s.same_as, s.message) for s in skipped if s.is_copy], run_id)
        return loaded


def reconcile(
    build: warehouse.Build, as_of: dt.date, carryover_due: str = "06-30", weight: Decimal = Decimal("10")
) -> dict[str, int]:
    """Evaluate the rules and materialise the marts for as_of, in one transaction."""
    with build.transaction() as con:
        return reconcile_marts(con, as_of, carryover_due=carryover_due, weight=weight)


def run_plain(
    raw_dir: Path, warehouse_path: Path, as_of: dt.date, *, fiscal_year: int | None = None, run_id: str = "plain"
) -> list[FileBatch]:
    """The whole ingest -> load -> reconcile without Prefect (tests, benchmarks): one atomic publish."""
    new, skipped = discover(raw_dir, warehouse.known_files(warehouse_path))
    batches = [ingest(n, fiscal_year) for n in new]
    build = warehouse.Build(warehouse_path)
    try:
        loaded = load(build, batches, run_id, skipped)
        reconcile(build, as_of)
        build.publish()
    finally:
        build.abandon()
    return loaded
