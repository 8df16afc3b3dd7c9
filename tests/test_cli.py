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
