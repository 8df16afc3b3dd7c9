"""`recon sql` on a warehouse: the three formats, and clear errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from flows import cli, pipeline


@pytest.fixture
def wh(sample_raw: Path, tmp_path: Path) -> Path:
    path = tmp_path / "recon.duckdb"
    pipeline.run_plain(sample_raw, path, dt.date(2025, 12, 31))
    return path


QUERY = "select pro_code, execution_rate_pct from execution_by_project order by pro_code"


def test_sql_csv(wh: Path, capsys):
    assert cli.main(["sql", "--warehouse", str(wh), "--format", "csv", QUERY]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [
        ["pro_code", "execution_rate_pct"],
        ["990001250001", "34.8"],
        ["990001250002", "35.0"],
        ["990001250003", "31.7"],
    ]


def test_sql_table(wh: Path, capsys):
    assert cli.main(["sql", "--warehouse", str(wh), QUERY]) == 0
    out = capsys.readouterr().out
    assert "990001250002" in out and "35.0" in out and "execution_rate_pct" in out


def test_sql_errors_are_messages(wh: Path, tmp_path: Path, capsys):
    assert cli.main(["sql", "--warehouse", str(wh), "select * from no_such_relation"]) == 1
    assert "no_such_relation" in capsys.readouterr().err
    assert cli.main(["sql", "--warehouse", str(tmp_path / "missing.duckdb"), "select 1"]) == 2
    assert "run `recon run` first" in capsys.readouterr().err


def test_run_rejects_a_bad_as_of(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--as-of", "2025-13-01"])
    assert e.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", ["run", "sql", "serve"])
def test_a_warehouse_that_is_a_folder_is_one_line(tmp_path: Path, capsys, command: str):
    """Issue 9 item 9: --warehouse pointing at a folder gave 153 lines of traceback."""
    (tmp_path / "raw").mkdir()
    argv = [command, "--warehouse", str(tmp_path)] + (
        ["select 1"] if command == "sql" else ["--raw", str(tmp_path / "raw")]
    )
    assert cli.main(argv) == 2
    assert f"--warehouse {tmp_path} is a folder: give the DuckDB file" in one_line_error(capsys)


def test_a_warehouse_that_is_not_duckdb_and_an_unwritable_out_are_one_line(tmp_path: Path, capsys):
    (tmp_path / "raw").mkdir()
    fake = tmp_path / "recon.duckdb"
    fake.write_text("not a database", encoding="utf-8")
    assert cli.main(["sql", "--warehouse", str(fake), "select 1"]) == 2
    assert "is not a DuckDB database file" in one_line_error(capsys)
    blocker = tmp_path / "out-is-a-file"
    blocker.write_text("x", encoding="utf-8")
    argv = [
        "run",
        "--raw",
        str(tmp_path / "raw"),
        "--warehouse",
        str(tmp_path / "w.duckdb"),
        "--out",
        str(blocker / "o"),
    ]
    assert cli.main(argv) == 2
    assert "cannot write there" in one_line_error(capsys)


def test_serve_with_a_dead_prefect_server_is_one_line(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    """Issue 9 item 9: a PREFECT_API_URL where nothing listens gave a 98-line traceback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    assert cli.main(["serve", "--raw", str(tmp_path), "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    err = one_line_error(capsys)
    assert f"Prefect server at {url} is not reachable" in err and "prefect server start" in err
