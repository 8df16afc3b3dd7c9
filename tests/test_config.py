"""recon.toml is validated whole at load: syntax, sections, keys, types. Each mistake is one line naming the file,
the key (and line) and what is accepted; `recon` prints it and exits 2 (issue 9 item 8)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from flows import cli
from flows.config import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "recon.toml.example"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recon.toml"
    path.write_text(text, encoding="utf-8")
    return path


CASES = [
    # (config text, what the message must contain)
    ("[paths]\nraw = \n", ["not valid TOML", "line 2"]),
    ('[alerts]\nbehind_warning_pp = "five"\n', ["alerts.behind_warning_pp", "positive number", "'five'"]),
    ("[alerts]\nbehind_warning_pp = -1\n", ["alerts.behind_warning_pp", "positive number"]),
    ("[alerts]\nbehind_warning_pp = 20\nbehind_critical_pp = 10\n", ["alerts.behind_critical_pp", "at least"]),
    ("[alert]\nbehind_warning_pp = 5\n", ["alert:", "unknown section", "[alerts]"]),
    ('[paths]\nraww = "raw"\n', ["paths.raww", "unknown key", "raw, warehouse"]),
    ('[schedule]\ncron = "0 25 * * *"\n', ["schedule.cron", "cron expression", "0 2 * * *"]),
    ('[schedule]\ntimezone = "Beijing"\n', ["schedule.timezone", "Asia/Shanghai"]),
    ('[run]\ncarryover_due = "6/30"\n', ["run.carryover_due", "MM-DD"]),
    ('[run]\ncarryover_due = "02-30"\n', ["run.carryover_due", "MM-DD"]),
    ('[run]\ntask_runner = "process"\n', ["run.task_runner", "threads", "dask"]),
    ('[run]\nduckdb_memory_limit = "plenty"\n', ["run.duckdb_memory_limit", "3GB"]),
    ('[run]\nfiscal_year = "2025"\n', ["run.fiscal_year", "whole number"]),
    ("[run]\npublish_workers = 0\n", ["run.publish_workers", "whole number from 1 to 64", "0"]),
    ('[run]\npublish_workers = "4"\n', ["run.publish_workers", "whole number"]),
    ('[alerts]\nelapsed_baseline = "yes"\n', ["alerts.elapsed_baseline", "true or false"]),
    ('[publish]\nmask_accounts = "no"\n', ["publish.mask_accounts", "true or false"]),
    ("[publish]\nmask_account = false\n", ["publish.mask_account", "unknown key", "mask_accounts"]),
    (
        '[[alerts.channels]]\ntype = "robot"\nname = "finance"\nflavor = "weixin"\nurl_env = "X"\n',
        ["[[alerts.channels]] #1", "'finance'", "flavor", "'wecom'", "'dingtalk'", "'weixin'"],
    ),
    (
        '[[alerts.channels]]\ntype = "webhook"\nurll = "http://x"\n',
        ["[[alerts.channels]] #1", "unknown key 'urll'", "url_env"],
    ),
    ('[[alerts.channels]]\ntype = "sms"\n', ["[[alerts.channels]] #1", "webhook"]),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[1][0] for c in CASES])
def test_a_config_mistake_names_the_file_the_key_and_what_is_accepted(tmp_path: Path, text: str, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for part in expected:
        assert part in message, (part, message)


@pytest.mark.parametrize("command", ["run", "sql", "serve"])
def test_recon_prints_a_config_mistake_as_one_line_and_exits_2(tmp_path: Path, capsys, command: str):
    path = write(tmp_path, '[alerts]\nbehind_warning_pp = "five"\n')
    argv = [command, "--config", str(path)] + (["select 1"] if command == "sql" else [])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"recon: {path}: alerts.behind_warning_pp"), err
    assert "Traceback" not in err and "InvalidOperation" not in err


def test_a_bad_cron_on_the_command_line_fails_before_serving(tmp_path: Path, capsys):
    assert cli.main(["serve", "--config", str(write(tmp_path, "")), "--cron", "every night"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recon: --cron: must be a cron expression") and err.count("\n") == 1


def test_the_example_config_is_valid_and_thresholds_accept_numbers_written_as_text(tmp_path: Path):
    settings = load_settings(EXAMPLE)
    assert settings.schedule_cron == "0 2 * * *" and settings.mask_accounts is True
    path = write(
        tmp_path,
        '[alerts]\nbehind_warning_pp = "5.5"\nbehind_critical_pp = 15\n[publish]\nmask_accounts = false\n'
        '[[alerts.channels]]\ntype = "robot"\nflavor = "dingtalk"\nurl_env = "X"\n',
    )
    settings = load_settings(path)
    assert settings.alerts.behind_warning_pp == Decimal("5.5") and settings.alerts.behind_critical_pp == 15
    assert settings.mask_accounts is False and settings.alerts.channels[0].flavor == "dingtalk"


def test_run_settings_the_environment_gives_when_the_config_does_not(tmp_path: Path, monkeypatch):
    """run.duckdb_memory_limit and run.publish_workers: the config file, else RECON_DUCKDB_MEMORY_LIMIT and
    RECON_PUBLISH_WORKERS, else None (chosen at run time); read in one place, flows/config.py."""
    monkeypatch.delenv("RECON_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("RECON_PUBLISH_WORKERS", raising=False)
    assert (Settings().duckdb_memory_limit, Settings().publish_workers) == (None, None)
    monkeypatch.setenv("RECON_DUCKDB_MEMORY_LIMIT", "1GiB")
    monkeypatch.setenv("RECON_PUBLISH_WORKERS", "3")
    assert (Settings().duckdb_memory_limit, Settings().publish_workers) == ("1GiB", 3)
    assert load_settings(write(tmp_path, "")).publish_workers == 3
    path = write(tmp_path, '[run]\nduckdb_memory_limit = "512MiB"\npublish_workers = 2\n')
    settings = load_settings(path)  # the config file wins
    assert (settings.duckdb_memory_limit, settings.publish_workers) == ("512MiB", 2)
    monkeypatch.setenv("RECON_PUBLISH_WORKERS", "two")
    with pytest.raises(ConfigError, match=r"^RECON_PUBLISH_WORKERS \(environment, for run.publish_workers\): must"):
        Settings()
    monkeypatch.setenv("RECON_PUBLISH_WORKERS", "2")
    monkeypatch.setenv("RECON_DUCKDB_MEMORY_LIMIT", "plenty")
    with pytest.raises(ConfigError, match=r"^RECON_DUCKDB_MEMORY_LIMIT \(environment, .*3GB"):
        load_settings(write(tmp_path, ""))
