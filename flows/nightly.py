"""The Prefect flow: thin wiring of the plain steps in pipeline.py, one task per step.

discover new files in raw/ -> ingest each file (read, parse, validate: independent tasks) -> load -> reconcile
(both on a private copy of the warehouse) -> publish the warehouse (one atomic swap) -> publish the outputs
(workbooks, report paragraph, mart copies). Retries only where I/O can fail transiently.
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


@task(cache_policy=NO_CACHE)
def load_warehouse(build: warehouse.Build, batches: list[FileBatch], run_id: str) -> list[FileBatch]:
    """Load every batch into the private copy of the warehouse, in one transaction."""
    return pipeline.load(build, batches, run_id)


@task(cache_policy=NO_CACHE)
def reconcile(build: warehouse.Build, as_of: dt.date, carryover_due: str) -> dict[str, int]:
    """Evaluate the rules and materialise the marts for the as-of date."""
    return pipeline.reconcile(build, as_of, carryover_due)


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def publish_outputs(warehouse_path: Path, out_dir: Path, as_of: dt.date) -> list[Path]:
    """Write the workbooks, report paragraphs and mart copies from the published warehouse."""
    from flows.publish import publish_outputs as publish

    return publish(warehouse_path, out_dir, as_of)


@flow(name="treasury-recon", log_prints=True)
def recon_flow(
    raw_dir: Path,
    warehouse_path: Path,
    out_dir: Path | None = None,
    as_of: dt.date | None = None,
    fiscal_year: int | None = None,
    carryover_due: str = "06-30",
) -> dict:
    """One full run; returns a summary. as_of defaults to today in Asia/Shanghai."""
    logger = get_run_logger()
    as_of = as_of or pipeline.today()
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    new, skipped = discover_files(raw_dir, warehouse_path)
    logger.info("%d new file(s), %d already loaded", len(new), skipped)
    futures = [ingest_file.submit(n, fiscal_year) for n in new]
    batches = [f.result() for f in futures]
    build = warehouse.Build(warehouse_path)
    try:
        loaded = load_warehouse(build, batches, run_id)
        counts = reconcile(build, as_of, carryover_due)
        build.publish()
    finally:
        build.abandon()
    outputs = publish_outputs(warehouse_path, out_dir, as_of) if out_dir is not None else []
    return {
        "run_id": run_id,
        "as_of": as_of,
        "files_new": len(loaded),
        "files_skipped": skipped,
        "files_rejected": sum(b.status == "rejected" for b in loaded),
        "rows_rejected": sum(b.rows_rejected for b in loaded),
        "marts": counts,
        "outputs": [str(p) for p in outputs],
    }
