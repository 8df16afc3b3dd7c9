"""The Prefect flow: thin wiring of the plain steps in pipeline.py, one task per step.

discover new files in raw/ -> ingest each file (read, parse, validate; independent tasks) -> load (one atomic
DuckDB publish). Retries only where I/O can fail transiently (the file system, the warehouse lock).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import pipeline, warehouse
from flows.ingest import FileBatch
from flows.pipeline import NewFile


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def discover_files(raw_dir: Path, warehouse_path: Path) -> tuple[list[NewFile], int]:
    """Files in raw/ whose content (sha256) the warehouse has not seen."""
    return pipeline.discover(raw_dir, warehouse.known_files(warehouse_path))


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest_file(new: NewFile, fiscal_year: int | None) -> FileBatch:
    """Read, parse and validate one file; bad rows and bad files come back as rejections, not errors."""
    return pipeline.ingest(new, fiscal_year)


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def load_warehouse(warehouse_path: Path, batches: list[FileBatch], run_id: str) -> list[FileBatch]:
    """Load every batch in one atomic publish of the warehouse."""
    return pipeline.load(warehouse_path, batches, run_id)


@flow(name="treasury-recon", log_prints=True)
def recon_flow(
    raw_dir: Path,
    warehouse_path: Path,
    out_dir: Path | None = None,
    as_of: dt.date | None = None,
    fiscal_year: int | None = None,
) -> dict:
    """Ingest new exports from raw_dir into the warehouse; returns a summary of the run."""
    logger = get_run_logger()
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    new, skipped = discover_files(raw_dir, warehouse_path)
    logger.info("%d new file(s), %d already loaded", len(new), skipped)
    futures = [ingest_file.submit(n, fiscal_year) for n in new]
    batches = [f.result() for f in futures]
    loaded = load_warehouse(warehouse_path, batches, run_id)
    return {
        "run_id": run_id,
        "files_new": len(loaded),
        "files_skipped": skipped,
        "files_rejected": sum(b.status == "rejected" for b in loaded),
        "rows_rejected": sum(b.rows_rejected for b in loaded),
    }
