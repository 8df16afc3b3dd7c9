"""The steps of a run as plain functions: discover new files, ingest each, load them. Prefect wires them in
nightly.py; tests call them directly."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flows import warehouse
from flows.ingest import FileBatch, guess_kind, ingest_file, kind_of, reject_file, sha256_of
from flows.readers import SPREADSHEET_SUFFIXES, TEXT_SUFFIXES

log = logging.getLogger("treasury_recon.pipeline")


@dataclass(frozen=True)
class NewFile:
    path: Path
    label: str  # the path relative to raw/, as recorded in source_files.file_name
    kind: str | None  # None: not a recognisable export (reported, never loaded)
    sha256: str


def discover(raw_dir: Path, known: dict[str, str]) -> tuple[list[NewFile], int]:
    """Files under raw_dir not yet in the warehouse (by sha256), in a stable order, and how many were skipped.

    The kind comes from the folder (raw/payments, raw/refunds, raw/budget) or, for files elsewhere, from the
    header their first rows contain. Hidden files and Excel lock files (~$…) are ignored.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw folder {raw_dir} does not exist")
    found: list[NewFile] = []
    skipped = 0
    for path in sorted(p for p in raw_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(raw_dir)
        if any(part.startswith(".") for part in rel.parts) or path.name.startswith("~$"):
            continue
        sha = sha256_of(path)
        if sha in known:
            skipped += 1
            continue
        kind = kind_of(path, raw_dir)
        if kind is None and path.suffix.lower() in SPREADSHEET_SUFFIXES | TEXT_SUFFIXES:
            kind = guess_kind(path)
        found.append(NewFile(path, rel.as_posix(), kind, sha))
        known = {**known, sha: rel.as_posix()}  # the same content twice in one run is loaded once
    return found, skipped


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


def load(warehouse_path: Path, batches: list[FileBatch], run_id: str) -> list[FileBatch]:
    """Load all batches in one atomic publish of the warehouse."""
    with warehouse.writer(warehouse_path) as con:
        return warehouse.load_batches(con, batches, run_id)
