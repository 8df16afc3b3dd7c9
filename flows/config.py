"""One settings object, read from one TOML config file; secrets come from the environment by name, at use time.

Defaults run the bundled sample out of the box. Relative paths are relative to the config file's folder (or the
current folder when there is no config file).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from flows.alerts import AlertSettings
from flows.channels import channel_from_config

DEFAULT_CONFIG = Path("recon.toml")


@dataclass(frozen=True)
class Settings:
    raw_dir: Path = Path("raw")
    warehouse: Path = Path("warehouse/recon.duckdb")
    out_dir: Path = Path("warehouse/out")
    fiscal_year: int | None = None  # for budget sheets whose title names no year
    timezone: str = "Asia/Shanghai"
    carryover_due: str = "06-30"  # MM-DD: carry-over money should be paid by then (carryover_lag)
    task_runner: str = "threads"  # threads | dask | tcp://scheduler:8786 (per-file work)
    dask_workers: int = 2
    duckdb_memory_limit: str | None = None  # e.g. "3GB"; None: $RECON_DUCKDB_MEMORY_LIMIT or min(3 GiB, RAM / 2)
    schedule_cron: str = "0 2 * * *"
    schedule_timezone: str = "Asia/Shanghai"
    alerts: AlertSettings = field(default_factory=AlertSettings)
    mask_accounts: bool = True  # [publish]: account numbers in workbooks, paragraphs, mart copies masked (6222…3445)
    config_path: Path | None = None

    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.timezone)).date()


def load_settings(path: Path | None = None, **overrides) -> Settings:
    """Settings from ``path`` (or ./recon.toml when it exists), then explicit overrides (CLI flags)."""
    data: dict = {}
    base = Path.cwd()
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        base = path.resolve().parent
    paths = data.get("paths", {})
    run = data.get("run", {})
    schedule = data.get("schedule", {})
    al = data.get("alerts", {})
    alert_settings = AlertSettings(
        behind_warning_pp=Decimal(str(al.get("behind_warning_pp", 5))),
        behind_critical_pp=Decimal(str(al.get("behind_critical_pp", 15))),
        elapsed_baseline=bool(al.get("elapsed_baseline", False)),
        channels=[channel_from_config(c) for c in al.get("channels", [])],
    )
    settings = Settings(
        raw_dir=_resolve(base, paths.get("raw", "raw")),
        warehouse=_resolve(base, paths.get("warehouse", "warehouse/recon.duckdb")),
        out_dir=_resolve(base, paths.get("out", "warehouse/out")),
        fiscal_year=run.get("fiscal_year"),
        timezone=run.get("timezone", "Asia/Shanghai"),
        carryover_due=run.get("carryover_due", "06-30"),
        task_runner=run.get("task_runner", "threads"),
        dask_workers=int(run.get("dask_workers", 2)),
        duckdb_memory_limit=run.get("duckdb_memory_limit"),
        schedule_cron=schedule.get("cron", "0 2 * * *"),
        schedule_timezone=schedule.get("timezone", run.get("timezone", "Asia/Shanghai")),
        alerts=alert_settings,
        mask_accounts=bool(data.get("publish", {}).get("mask_accounts", True)),
        config_path=path.resolve() if path is not None else None,
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    for key in ("raw_dir", "warehouse", "out_dir"):
        if key in clean:
            clean[key] = Path(clean[key]).resolve()
    return replace(settings, **clean)


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (base / p).resolve()
