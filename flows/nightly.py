"""The Prefect flow: thin wiring of the plain steps in pipeline.py, one task per step.

discover new files in raw/ -> ingest each file (read, parse, validate: independent tasks) -> load -> reconcile
(both on a private copy of the warehouse) -> publish the warehouse (one atomic swap) -> publish the outputs
(workbooks, report paragraph, mart copies). Retries only where I/O can fail transiently.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import alerts, pipeline, warehouse
from flows.alerts import AlertSettings
from flows.channels import ChannelError
from flows.config import Settings, load_settings
from flows.ingest import FileBatch
from flows.pipeline import NewFile, Skipped


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def discover_files(raw_dir: Path, warehouse_path: Path) -> tuple[list[NewFile], list[Skipped]]:
    """Files in raw/ whose content (sha256) the warehouse has not seen."""
    return pipeline.discover(raw_dir, warehouse.known_files(warehouse_path))


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest_file(new: NewFile, fiscal_year: int | None) -> FileBatch:
    """Read, parse and validate one file; bad rows and bad files come back as rejections, not errors."""
    return pipeline.ingest(new, fiscal_year)


@task(cache_policy=NO_CACHE)
def load_warehouse(
    build: warehouse.Build, batches: list[FileBatch], run_id: str, skipped: list[Skipped]
) -> list[FileBatch]:
    """Load every batch into the private copy of the warehouse, in one transaction; record identical copies."""
    return pipeline.load(build, batches, run_id, skipped)


@task(cache_policy=NO_CACHE)
def reconcile(build: warehouse.Build, as_of: dt.date, carryover_due: str, weight: Decimal) -> dict[str, int]:
    """Evaluate the rules and materialise the marts for the as-of date."""
    return pipeline.reconcile(build, as_of, carryover_due, weight)


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def publish_outputs(
    warehouse_path: Path,
    out_dir: Path,
    as_of: dt.date,
    alert_settings: AlertSettings | None = None,
    mask_accounts: bool = True,
) -> list[Path]:
    """Write the workbooks, report paragraphs and mart copies from the published warehouse (behind-plan
    thresholds: the config's [alerts], as for the alerts; account numbers masked unless [publish] says not)."""
    from flows.publish import publish_outputs as publish

    return publish(warehouse_path, out_dir, as_of, alert_settings=alert_settings, mask=mask_accounts)


@task(cache_policy=NO_CACHE)
def raise_alerts(build: warehouse.Build, as_of: dt.date, alert_settings: AlertSettings) -> dict:
    """Evaluate the alert rules, keep them in `alerts`, announce what changed (a channel that is down only delays)."""
    with build.transaction() as con:
        return alerts.raise_and_notify(con, as_of, alert_settings)


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
        build = warehouse.Build(settings.warehouse)
        try:
            with build.transaction() as con:
                alerts.record_run_failure(con, as_of, error, settings.alerts)
            build.publish()
        finally:
            build.abandon()
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
    warehouse.set_memory_limit(settings.duckdb_memory_limit)
    as_of = as_of or settings.today()
    started = dt.datetime.now(dt.UTC)
    run_id = started.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    empty = pipeline.no_export_message(settings.raw_dir)
    if empty and not settings.warehouse.exists():
        raise FileNotFoundError(f"{empty}; there is no warehouse at {settings.warehouse} yet: nothing to reconcile")
    new, skipped = discover_files(settings.raw_dir, settings.warehouse)
    logger.info("%d new file(s), %d already loaded", len(new), len(skipped))
    futures = [ingest_file.submit(n, settings.fiscal_year) for n in new]
    batches = [f.result() for f in futures]
    build = warehouse.Build(settings.warehouse)
    try:
        loaded = load_warehouse(build, batches, run_id, skipped)
        counts = reconcile(build, as_of, settings.carryover_due, settings.weight)
        alert_result = raise_alerts(build, as_of, settings.alerts)
        with build.transaction() as con:
            warehouse.record_run(con, run_id, started, as_of, files_new=len(loaded), files_skipped=len(skipped))
        build.publish()
    finally:
        build.abandon()
    # nothing reconciled for the date (an empty raw/ and warehouse): nothing to publish, not an error
    outputs = (
        publish_outputs(settings.warehouse, settings.out_dir, as_of, settings.alerts, settings.mask_accounts)
        if counts.get("execution_by_unit")
        else []
    )
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
        "marts": counts,
        "alerts": alert_result,
        "outputs": [str(p) for p in outputs],
    }
