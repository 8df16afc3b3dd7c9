"""The Prefect flow: thin wiring of the plain steps, one task per step.

discover new files in raw/ -> ingest each file (read, parse, validate: independent tasks) -> build the warehouse
(flows/build.py: load, reconcile, alerts, run record on a private copy, swapped in at once) -> publish the outputs
(workbooks, report paragraph, mart copies). Retries only where I/O can fail transiently, and only errors that can
pass on a retry (``transient``): a full disk, a read-only folder or a file where a folder should be fail at once.
A failed build raises ``BuildFailed`` (the warehouse is as it was), failed outputs ``OutputsFailed`` (the warehouse
already holds the new run): the CLI words them as one line. A failed run's hook records and sends a run_failed
alert through the same build function.
"""

from __future__ import annotations

import datetime as dt
import errno
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

log = logging.getLogger("treasury_recon.run")

RETRY_DELAY_SECONDS = 5
# OSErrors that can pass on a retry: the file or device is busy (held by another program), the call was interrupted
# or timed out (a network share). Everything else (ENOSPC, EROFS, EACCES, ENOTDIR, EEXIST, ...) is permanent:
# waiting 5 s does not free a disk, make a folder writable or turn a file into a folder.
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETXTBSY, errno.ETIMEDOUT})
# Windows: a workbook open in Excel is a PermissionError with winerror 32 (sharing violation) or 33 (lock violation)
TRANSIENT_WINERRORS = frozenset({32, 33})


def is_transient(exc: BaseException | None) -> bool:
    """Whether ``exc`` can pass on a retry (``TRANSIENT_ERRNOS``, Windows' locked files); a PermissionError on
    Linux/macOS is the file's mode or owner, permanent."""
    if not isinstance(exc, OSError):
        return False
    if getattr(exc, "winerror", None) in TRANSIENT_WINERRORS:
        return True
    return exc.errno in TRANSIENT_ERRNOS


def transient(task, task_run, state) -> bool:
    """Prefect retry_condition_fn: retry only a transient error (``is_transient``), and say so on the console."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    if not is_transient(exc):
        return False
    log.warning("%s: %s: may pass on a retry, retrying in %d s", task.name, exc, RETRY_DELAY_SECONDS)
    return True


class RunFailed(Exception):
    """One step of the run failed on an expected condition (``cause``: disk full, memory, a path); the CLI prints
    ``cause`` as one line with where and what to do. Picklable (Prefect keeps a failed flow's exception)."""

    def __init__(self, cause: BaseException, warehouse: str, out_dir: str, run_id: str, as_of: dt.date):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause, self.warehouse, self.out_dir, self.run_id, self.as_of = cause, warehouse, out_dir, run_id, as_of

    def __reduce__(self):
        return (type(self), (self.cause, self.warehouse, self.out_dir, self.run_id, self.as_of))


class BuildFailed(RunFailed):
    """Loading, reconciling or publishing the warehouse failed: the warehouse is as it was (the private copy is
    thrown away)."""


class OutputsFailed(RunFailed):
    """The warehouse was built and swapped in (it holds run ``run_id``), then writing the outputs failed."""


@task(retries=2, retry_delay_seconds=RETRY_DELAY_SECONDS, retry_condition_fn=transient, cache_policy=NO_CACHE)
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


@task(retries=2, retry_delay_seconds=RETRY_DELAY_SECONDS, retry_condition_fn=transient, cache_policy=NO_CACHE)
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
        logging.getLogger("treasury_recon.alerts").warning(
            "the run_failed alert is not in the warehouse (%s)%s",
            (str(e).strip().splitlines() or [type(e).__name__])[0],
            "; sending it to the channels directly" if settings.alerts.channels else "",
        )
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
    where = (str(settings.warehouse), str(settings.out_dir), run_id, as_of)
    try:
        night = build_warehouse(settings, as_of, batches, skipped, run_id, started)
    except Exception as e:  # the CLI tells an expected failure (disk, memory) from a bug by the cause
        raise BuildFailed(e, *where) from e
    # nothing reconciled for the date (an empty raw/ and warehouse): nothing to publish, not an error
    try:
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
    except Exception as e:  # the warehouse is published already, whatever failed here
        raise OutputsFailed(e, *where) from e
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
