"""The Prefect flow: thin wiring of the plain steps, one task per step.

discover new files in raw/ -> ingest each file (read, parse, validate: independent tasks) -> build the warehouse
(flows/build.py: load, reconcile, alerts, run record on a private copy, swapped in at once) -> publish the outputs
(workbooks, report paragraph, mart copies). Retries only where I/O can fail transiently. A failed run's hook
records and sends a run_failed alert through the same build function.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.alerts.channels import ChannelError
from flows.build import Night, build_night, new_run_id
from flows.config import AlertSettings, Settings, load_settings
from flows.ingest.discover import NewFile, Skipped, discover, no_export_message
from flows.ingest.validate import FileBatch, ingest
from flows.warehouse import db


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def discover_files(raw_dir: Path, warehouse_path: Path) -> tuple[list[NewFile], list[Skipped]]:
    """Files in raw/ whose content (sha256) the warehouse has not seen."""
    return discover(raw_dir, db.known_files(warehouse_path))


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest_file(new: NewFile, fiscal_year: int | None) -> FileBatch:
    """Read, parse and validate one file; bad rows and bad files come back as rejections, not errors."""
    return ingest(new, fiscal_year)


@task(cache_policy=NO_CACHE)
def build_warehouse(
    settings: Settings,
    as_of: dt.date,
    batches: list[FileBatch],
    skipped: list[Skipped],
    run_id: str,
    started: dt.datetime,
) -> Night:
    """Load, reconcile, raise the alerts and record the run on a private copy of the warehouse; swap it in."""
    return build_night(
        settings.warehouse, as_of, batches=batches, skipped=skipped, settings=settings, run_id=run_id, started=started
    )


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def publish_outputs(
    warehouse_path: Path,
    out_dir: Path,
    as_of: dt.date,
    alert_settings: AlertSettings | None = None,
    mask_accounts: bool = True,
    workers: int | None = None,
) -> list[Path]:
    """Write the workbooks, report paragraphs and mart copies from the published warehouse (behind-plan
    thresholds: the config's [alerts], as for the alerts; account numbers masked unless [publish] says not;
    ``workers`` workbook processes: run.publish_workers, None to choose by cores and units)."""
    from flows.publish.outputs import publish_outputs as publish

    return publish(warehouse_path, out_dir, as_of, alert_settings=alert_settings, mask=mask_accounts, workers=workers)


def with_task_runner(runner: str = "threads", workers: int = 2):
    """The flow with the task runner for the per-file work: ``threads`` (default), ``dask`` (a local cluster of
    ``workers`` processes) or the address of an existing Dask scheduler (``tcp://host:8786``). Loading and
    reconciling stay one DuckDB step in the flow's process."""
    if runner in ("threads", "", None):
        return recon_flow
    from prefect_dask import DaskTaskRunner

    if runner == "dask":
        task_runner = DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "dashboard_address": ":0"}
        )
    elif "://" in runner:
        task_runner = DaskTaskRunner(address=runner)
    else:
        raise ValueError(f"task runner must be threads, dask or a Dask scheduler address, got {runner!r}")
    return recon_flow.with_options(task_runner=task_runner)


def _settings(config: str | None, **overrides) -> Settings:
    return load_settings(Path(config) if config else None, **overrides)


def notify_failure(flow, flow_run, state) -> None:
    """on_failure hook: a failed run raises a run_failed alert, recorded in the warehouse and sent to the channels."""
    params = flow_run.parameters or {}
    try:
        settings = _settings(
            params.get("config"), raw_dir=params.get("raw_dir"), warehouse=params.get("warehouse_path")
        )
    except Exception as e:  # a broken config is why the run failed: nothing to send with
        logging.getLogger("treasury_recon.alerts").error("run failed and the config cannot be read: %s", e)
        return
    as_of = params.get("as_of") or settings.today()
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    error = state.message or "unknown error"
    try:
        build_night(settings.warehouse, as_of, settings=settings, failure=error)
    except Exception as e:  # the warehouse itself may be what failed: still tell people
        logging.getLogger("treasury_recon.alerts").error("cannot record the failed run (%s); sending directly", e)
        for channel in settings.alerts.channels:
            try:
                channel.send(f"【严重】treasury-recon 夜间任务失败（{as_of}）", error, [])
            except ChannelError as ce:
                logging.getLogger("treasury_recon.alerts").error("channel %s: %s", channel.name, ce)


@flow(name="treasury-recon", log_prints=True, on_failure=[notify_failure])
def recon_flow(
    config: str | None = None,
    raw_dir: str | None = None,
    warehouse_path: str | None = None,
    out_dir: str | None = None,
    as_of: dt.date | None = None,
    fiscal_year: int | None = None,
) -> dict:
    """One full run: ingest -> validate -> load -> reconcile -> alerts -> publish. Settings come from the config
    file (defaults without one); the other parameters override it. as_of defaults to today in the unit's timezone."""
    logger = get_run_logger()
    settings = _settings(config, raw_dir=raw_dir, warehouse=warehouse_path, out_dir=out_dir, fiscal_year=fiscal_year)
    db.set_memory_limit(settings.duckdb_memory_limit)
    as_of = as_of or settings.today()
    started = dt.datetime.now(dt.UTC)
    run_id = new_run_id(started)
    empty = no_export_message(settings.raw_dir)
    if empty and not settings.warehouse.exists():
        raise FileNotFoundError(f"{empty}; there is no warehouse at {settings.warehouse} yet: nothing to reconcile")
    new, skipped = discover_files(settings.raw_dir, settings.warehouse)
    logger.info("%d new file(s), %d already loaded", len(new), len(skipped))
    futures = [ingest_file.submit(n, settings.fiscal_year) for n in new]
    batches = [f.result() for f in futures]
    night = build_warehouse(settings, as_of, batches, skipped, run_id, started)
    # nothing reconciled for the date (an empty raw/ and warehouse): nothing to publish, not an error
    outputs = (
        publish_outputs(
            settings.warehouse,
            settings.out_dir,
            as_of,
            settings.alerts,
            settings.mask_accounts,
            settings.publish_workers,
        )
        if night.marts.get("execution_by_unit")
        else []
    )
    loaded = night.loaded
    return {
        "run_id": run_id,
        "as_of": as_of,
        "warehouse": str(settings.warehouse),
        "out_dir": str(settings.out_dir),
        "files_new": len(loaded),
        "files_skipped": len(skipped),
        "copies": [s.message for s in skipped if s.is_copy],
        "files_rejected": sum(b.status == "rejected" for b in loaded),
        "rows_rejected": sum(b.rows_rejected for b in loaded),
        "rejected_files": [(b.file_name, b.error) for b in loaded if b.status == "rejected"],
        "marts": night.marts,
        "alerts": night.alerts,
        "outputs": [str(p) for p in outputs],
    }
