"""Build one night's warehouse, in one place: load -> transform -> alerts -> run record.

Everything happens on a private copy of the warehouse (``db.writer``), in one transaction, and the copy is swapped
in only when every step succeeded: a failure at any step leaves the published warehouse as it was. The Prefect
flow (flows/nightly.py) and its failure hook, ``recon run``/``recon demo`` through the flow, the tests and the
benchmarks all call ``build_night``; nothing else writes the warehouse.

Ingesting (read, parse, validate) happens before, file by file and without DuckDB: the flow runs one task per
file; ``build_night(..., raw_dir=...)`` runs them here, one after the other (tests, benchmarks).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flows.alerts import evaluate
from flows.config import Settings
from flows.ingest.discover import Skipped, discover
from flows.ingest.validate import FileBatch, ingest
from flows.warehouse import db, load, transform


@dataclass(frozen=True)
class Night:
    """What one build did: what the run's summary shows."""

    run_id: str
    as_of: dt.date
    loaded: list[FileBatch] = field(default_factory=list)  # the files loaded now (not those already recorded)
    skipped: list[Skipped] = field(default_factory=list)  # content already read (identical copies among them)
    marts: dict[str, int] = field(default_factory=dict)  # rows per as-of mart for as_of
    alerts: dict = field(default_factory=dict)  # raise_and_notify's result; a failed run: delivery per channel


def new_run_id(started: dt.datetime) -> str:
    return started.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


def ingest_all(raw_dir: Path, warehouse_path: Path, fiscal_year: int | None = None):
    """The files under raw_dir the warehouse has not seen, ingested one after the other in this process (what the
    flow's tasks do in parallel): (batches, skipped)."""
    new, skipped = discover(Path(raw_dir), db.known_files(Path(warehouse_path)))
    return [ingest(n, fiscal_year) for n in new], skipped


def build_night(
    warehouse_path: Path,
    as_of: dt.date,
    *,
    batches: Sequence[FileBatch] | None = None,
    skipped: Sequence[Skipped] = (),
    raw_dir: Path | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    started: dt.datetime | None = None,
    failure: str | None = None,
) -> Night:
    """Build the warehouse at ``warehouse_path`` for ``as_of`` and publish it atomically.

    The files: ``batches`` (and the ``skipped`` ones, whose identical copies are recorded) ingested by the caller,
    or ``raw_dir`` to discover and ingest here. ``settings`` gives carryover_due, the alert thresholds and channels
    and the fiscal year of undated budget sheets (default: ``Settings()``).

    ``failure``: the run failed with this error (the flow's on_failure hook): nothing is loaded or reconciled; a
    run_failed alert is recorded and sent, and no run record is written.
    """
    settings = settings or Settings()
    started = started or dt.datetime.now(dt.UTC)
    run_id = run_id or new_run_id(started)
    if failure is not None:
        with db.writer(warehouse_path) as con:
            delivery = evaluate.record_run_failure(con, as_of, failure, settings.alerts)
        return Night(run_id=run_id, as_of=as_of, alerts={"delivery": delivery})
    if batches is None:
        batches, skipped = ingest_all(
            raw_dir if raw_dir is not None else settings.raw_dir, warehouse_path, settings.fiscal_year
        )
    skipped = list(skipped)
    with db.writer(warehouse_path) as con:
        loaded = load.load_batches(con, list(batches), run_id)
        load.record_copies(con, [(s.label, s.sha256, s.same_as, s.message) for s in skipped if s.is_copy], run_id)
        marts = transform.reconcile(con, as_of, carryover_due=settings.carryover_due, weight=settings.weight)
        alerts = evaluate.raise_and_notify(con, as_of, settings.alerts)
        load.record_run(con, run_id, started, as_of, files_new=len(loaded), files_skipped=len(skipped))
    return Night(run_id=run_id, as_of=as_of, loaded=loaded, skipped=skipped, marts=marts, alerts=alerts)
