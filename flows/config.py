"""One settings object, read from one TOML config file; secrets come from the environment by name, at use time.

Defaults run the bundled sample out of the box. Relative paths are relative to the config file's folder (or the
current folder when there is no config file). Three run settings may come from the environment instead
(``ENV_FALLBACKS``: read here, when a Settings is made, and nowhere else); the config file wins.

Light on purpose (no DuckDB, pandera or pandas; tests/test_architecture.py): every stage reads it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_CONFIG = Path("recon.toml")


@dataclass
class AlertSettings:
    """[alerts]: the behind-plan thresholds (percentage points; the alerts, the sheets and the paragraph judge by the
    same ones) and the channels (objects of flows/alerts/channels.py)."""

    behind_warning_pp: Decimal = Decimal("5")
    behind_critical_pp: Decimal = Decimal("15")
    elapsed_baseline: bool = False
    channels: list = field(default_factory=list)


class ConfigError(ValueError):
    """The config file (or a setting) is wrong: the message names the file, the key (and line) and what is
    accepted. The CLI prints it as one line and exits 2."""


# Every section and key a config file may hold (docs/config.md). Anything else is an error: a typo such as
# `[alert]` or `raww =` must not be ignored silently. [[alerts.channels]] keys are checked by channel_from_config.
KNOWN_KEYS = {
    "paths": {"raw", "warehouse", "out"},
    "run": {
        "fiscal_year",
        "timezone",
        "carryover_due",
        "task_runner",
        "dask_workers",
        "duckdb_memory_limit",
        "publish_workers",
        "prefect_server_timeout",
    },
    "schedule": {"cron", "timezone"},
    "alerts": {"behind_warning_pp", "behind_critical_pp", "elapsed_baseline", "channels"},
    "publish": {"mask_accounts", "weight"},
}
# run settings the environment gives when the config leaves them out (the config file wins)
ENV_FALLBACKS = {
    "duckdb_memory_limit": "RECON_DUCKDB_MEMORY_LIMIT",  # run.duckdb_memory_limit
    "publish_workers": "RECON_PUBLISH_WORKERS",  # run.publish_workers
    "prefect_server_timeout": "RECON_PREFECT_SERVER_TIMEOUT",  # run.prefect_server_timeout
}
MAX_PUBLISH_WORKERS = 64
# Seconds `recon run` waits for Prefect's temporary server (it tries twice). Prefect's own default is 20 s; a fresh
# server database takes ~14 s on an idle 2-core machine, and a loaded one missed 20 s (issue 11).
DEFAULT_PREFECT_SERVER_TIMEOUT = 90
MAX_PREFECT_SERVER_TIMEOUT = 3600
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B|bytes)?\s*$", re.IGNORECASE)
_MM_DD = re.compile(r"^(\d{2})-(\d{2})$")


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
    duckdb_memory_limit: str | None = None  # e.g. "3GB"; else $RECON_DUCKDB_MEMORY_LIMIT; else min(3 GiB, RAM / 2)
    publish_workers: int | None = None  # workbook processes; else $RECON_PUBLISH_WORKERS; else by cores and units
    prefect_server_timeout: int | None = None  # seconds; else $RECON_PREFECT_SERVER_TIMEOUT; else 90
    schedule_cron: str = "0 2 * * *"
    schedule_timezone: str = "Asia/Shanghai"
    alerts: AlertSettings = field(default_factory=AlertSettings)
    mask_accounts: bool = True  # [publish] mask_accounts: outputs show account numbers as 6222***********3445
    weight: Decimal = Decimal("10")  # [publish] weight: 分值 of the 自评表 money block (self_assessment_funds)
    config_path: Path | None = None

    def __post_init__(self) -> None:
        for name, env in ENV_FALLBACKS.items():
            value = os.environ.get(env, "").strip() if getattr(self, name) is None else ""
            if value:
                object.__setattr__(self, name, _from_environment(name, env, value))
        if self.prefect_server_timeout is None:
            object.__setattr__(self, "prefect_server_timeout", DEFAULT_PREFECT_SERVER_TIMEOUT)

    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.timezone)).date()


def load_settings(path: Path | None = None, **overrides) -> Settings:
    """Settings from ``path`` (or ./recon.toml when it exists), then explicit overrides (CLI flags).

    The whole file is validated here: TOML syntax, every section and key, and each value's type and range. Any
    mistake raises ConfigError naming the file, the key and what is accepted."""
    data: dict = {}
    base = Path.cwd()
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        except (UnicodeDecodeError, IsADirectoryError, PermissionError) as e:
            raise ConfigError(f"{path}: cannot be read as a UTF-8 TOML file ({e})") from None
        base = path.resolve().parent
    v = _Validator(path, data)
    paths, run, schedule, al, publish = (v.section(name) for name in KNOWN_KEYS)
    warning = v.positive_number(al, "alerts", "behind_warning_pp", 5)
    critical = v.positive_number(al, "alerts", "behind_critical_pp", 15)
    if critical < warning:
        v.fail("alerts.behind_critical_pp", f"must be at least behind_warning_pp ({warning}), got {critical}")
    alert_settings = AlertSettings(
        behind_warning_pp=warning,
        behind_critical_pp=critical,
        elapsed_baseline=v.boolean(al, "alerts", "elapsed_baseline", False),
        channels=v.channels(al.get("channels", [])),
    )
    timezone = v.timezone(run, "run", "timezone", "Asia/Shanghai")
    settings = Settings(
        raw_dir=_resolve(base, v.text(paths, "paths", "raw", "raw")),
        warehouse=_resolve(base, v.text(paths, "paths", "warehouse", "warehouse/recon.duckdb")),
        out_dir=_resolve(base, v.text(paths, "paths", "out", "warehouse/out")),
        fiscal_year=v.integer(run, "run", "fiscal_year", None, 2000, 2100),
        timezone=timezone,
        carryover_due=v.month_day(run, "run", "carryover_due", "06-30"),
        task_runner=v.task_runner(run, "run", "task_runner", "threads"),
        dask_workers=v.integer(run, "run", "dask_workers", 2, 1, 256),
        duckdb_memory_limit=v.memory(run, "run", "duckdb_memory_limit"),
        publish_workers=v.integer(run, "run", "publish_workers", None, 1, MAX_PUBLISH_WORKERS),
        prefect_server_timeout=v.integer(run, "run", "prefect_server_timeout", None, 1, MAX_PREFECT_SERVER_TIMEOUT),
        schedule_cron=v.cron(schedule, "schedule", "cron", "0 2 * * *"),
        schedule_timezone=v.timezone(schedule, "schedule", "timezone", timezone),
        alerts=alert_settings,
        mask_accounts=v.boolean(publish, "publish", "mask_accounts", True),
        weight=v.positive_number(publish, "publish", "weight", 10),
        config_path=path.resolve() if path is not None else None,
    )
    clean = {k: val for k, val in overrides.items() if val is not None}
    for key in ("raw_dir", "warehouse", "out_dir"):
        if key in clean:
            clean[key] = Path(clean[key]).resolve()
    if "task_runner" in clean:
        clean["task_runner"] = _Validator(None, {}).task_runner(clean, "", "task_runner", "threads")
    return replace(settings, **clean)


class _Validator:
    """Reads typed values out of the parsed TOML; every mistake is a ConfigError naming file and key."""

    def __init__(self, path: Path | None, data: dict):
        self.where = f"{path}: " if path is not None else ""  # none: a command-line value
        self.data = data
        unknown = sorted(set(data) - set(KNOWN_KEYS))
        if unknown:
            self.fail(unknown[0], f"unknown section; accepted sections: {', '.join(f'[{k}]' for k in KNOWN_KEYS)}")

    def fail(self, key: str, what: str):
        raise ConfigError(f"{self.where}{key}: {what}")

    def section(self, name: str) -> dict:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"must be a table [{name}], got {type(value).__name__}")
        unknown = sorted(set(value) - KNOWN_KEYS[name])
        if unknown:
            self.fail(
                f"{name}.{unknown[0]}", f"unknown key; accepted in [{name}]: {', '.join(sorted(KNOWN_KEYS[name]))}"
            )
        return value

    def text(self, table: dict, section: str, key: str, default: str | None) -> str | None:
        value = table.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.fail(f"{section}.{key}", f"must be a non-empty string in quotes, got {value!r}")
        return value

    def boolean(self, table: dict, section: str, key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{section}.{key}", f"must be true or false (no quotes), got {value!r}")
        return value

    def integer(self, table: dict, section: str, key: str, default, low: int, high: int):
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(f"{section}.{key}", f"must be a whole number from {low} to {high}, got {value!r}")
        return value

    def positive_number(self, table: dict, section: str, key: str, default) -> Decimal:
        value = table.get(key, default)
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            number = Decimal(str(value))
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number <= 0:
            self.fail(f"{section}.{key}", f"must be a positive number of percentage points (e.g. 5), got {value!r}")
        return number

    def month_day(self, table: dict, section: str, key: str, default: str) -> str:
        value = self.text(table, section, key, default)
        m = _MM_DD.match(value)
        try:
            dt.date(2024, int(m.group(1)), int(m.group(2))) if m else None
        except ValueError:
            m = None
        if not m:
            self.fail(f"{section}.{key}", f'must be a day of the year as "MM-DD" (e.g. "06-30"), got {value!r}')
        return value

    def timezone(self, table: dict, section: str, key: str, default: str) -> str:
        value = self.text(table, section, key, default)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f"{section}.{key}", f'must be a time zone name such as "Asia/Shanghai", got {value!r}')
        return value

    def task_runner(self, table: dict, section: str, key: str, default: str) -> str:
        value = self.text(table, section, key, default)
        if value not in ("threads", "dask") and not re.match(r"^tcp://[^\s/:]+:\d+$", value):
            name = f"{section}.{key}" if section else "--task-runner"
            self.fail(name, f'must be "threads", "dask" or a Dask scheduler address "tcp://host:8786", got {value!r}')
        return value

    def memory(self, table: dict, section: str, key: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not _MEMORY.match(value):
            self.fail(f"{section}.{key}", f'must be a size in quotes such as "3GB" or "512MiB", got {value!r}')
        return value

    def cron(self, table: dict, section: str, key: str, default: str) -> str:
        value = self.text(table, section, key, default)
        self.check_cron(value, f"{section}.{key}")
        return value

    def check_cron(self, value: str, name: str) -> None:
        from cronsim import CronSim, CronSimError

        try:
            CronSim(value, dt.datetime(2025, 1, 1))
        except (CronSimError, ValueError, KeyError, IndexError) as e:
            self.fail(
                name,
                f'must be a cron expression "minute hour day month weekday" such as "0 2 * * *", got {value!r} ({e})',
            )

    def channels(self, entries) -> list:
        from flows.alerts.channels import channel_from_config  # only when a config names channels

        if not isinstance(entries, list):
            self.fail("alerts.channels", "must be a list of [[alerts.channels]] tables")
        out = []
        for i, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict):
                self.fail(f"alerts.channels[{i}]", "must be a [[alerts.channels]] table")
            try:
                out.append(channel_from_config(entry))
            except ValueError as e:
                self.fail(f"[[alerts.channels]] #{i}", str(e))
        return out


def check_cron(expression: str, where: str = "--cron") -> str:
    """A cron expression from the command line, checked like the config's schedule.cron."""
    _Validator(None, {}).check_cron(expression, where)
    return expression


def _from_environment(name: str, env: str, value: str):
    """A setting's value from the environment variable ``env``, checked like its config key run.<name>."""
    where = f"{env} (environment, for run.{name})"
    if name == "publish_workers":
        if not value.isdigit() or not 1 <= int(value) <= MAX_PUBLISH_WORKERS:
            raise ConfigError(
                f"{where}: must be a whole number of processes from 1 to {MAX_PUBLISH_WORKERS}, got {value!r}"
            )
        return int(value)
    if name == "prefect_server_timeout":
        if not value.isdigit() or not 1 <= int(value) <= MAX_PREFECT_SERVER_TIMEOUT:
            raise ConfigError(
                f"{where}: must be a whole number of seconds from 1 to {MAX_PREFECT_SERVER_TIMEOUT}, got {value!r}"
            )
        return int(value)
    if not _MEMORY.match(value):
        raise ConfigError(f"{where}: must be a size such as 3GB or 512MiB, got {value!r}")
    return value


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (base / p).resolve()
