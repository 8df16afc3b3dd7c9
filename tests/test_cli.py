"""`recon sql` on a warehouse: the three formats, and clear errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest

from flows import cli
from flows.build import build_night


@pytest.fixture
def wh(sample_raw: Path, tmp_path: Path) -> Path:
    path = tmp_path / "recon.duckdb"
    build_night(path, dt.date(2025, 12, 31), raw_dir=sample_raw)
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


# ---------------------------------------------------------------------------------------------------------------
# The run summary: the same half-up 万元 as the workbook


def summary_for(wh: Path, as_of: dt.date) -> str:
    from flows.config import Settings

    settings = Settings(warehouse=wh, out_dir=wh.parent / "out")
    counts = {"run_id": "test", "files_new": 0, "files_skipped": 0, "files_rejected": 0, "rows_rejected": 0}
    return cli.format_summary(settings, counts, as_of)


UNIT_LINE = re.compile(
    r"unit (?P<code>\S+) .* (?P<fy>\d{4}): budget (?P<budget>[\d,.]+) 万元, paid (?P<paid>[\d,.]+) 万元, "
    r"rate (?P<rate>[\d.]+)%; carry-over (?P<paid_co>[\d,.]+)/(?P<co>[\d,.]+) 万元; "
    r"unbudgeted (?P<unbudgeted>[\d,.]+) 万元"
)


def test_summary_rounds_half_up(tmp_path: Path):
    """1,250.00 yuan is 0.125 万元: 0.13 (四舍五入) as in the workbook, never 0.12 (Python's half-even)."""
    from tests.builders import PAYMENT_HEADER, payment_row, write_csv, write_xlsx

    raw = tmp_path / "raw"
    write_xlsx(
        raw / "budget" / "budget.xlsx",
        [
            ["舍入测试单位2025年项目预算表"],
            ["项目编码", "项目名称", "预算单位编码", "年初预算数（元）", "全年预算数（元）", "上年结转数（元）"],
            ["A01", "甲项目", "880001", "11250.00", "11250.00", "1250.00"],
        ],
    )
    common = {"agency": "880001", "agency_name": "舍入测试单位", "doc": "示财预〔2025〕1号"}
    write_csv(
        raw / "payments" / "payments.csv",
        [
            PAYMENT_HEADER,
            payment_row("PV1", "2025-03-10", "1,250.00", pro="A01", **common),
            payment_row("PV2", "2025-03-11", "1,250.00", pro="A01", **{**common, "doc": "示财预〔2024〕9号"}),
            payment_row("PV3", "2025-03-12", "1,250.00", pro="B99", **common),  # no budget line: unbudgeted
        ],
    )
    wh = tmp_path / "w.duckdb"
    build_night(wh, dt.date(2025, 12, 31), raw_dir=raw)
    text = summary_for(wh, dt.date(2025, 12, 31))
    assert (
        "unit 880001 舍入测试单位 2025: budget 1.13 万元, paid 0.13 万元, rate 11.1%;"
        " carry-over 0.13/0.13 万元; unbudgeted 0.13 万元"
    ) in text, text


def test_summary_agrees_with_the_workbook(sample_raw: Path, tmp_path: Path):
    """What `make demo` prints (the samples, as of 12-31) is what the unit's workbook shows, cell by cell."""
    import openpyxl

    from flows.publish import outputs

    as_of = dt.date(2025, 12, 31)
    wh = tmp_path / "recon.duckdb"
    build_night(wh, as_of, raw_dir=sample_raw)
    paths = outputs.publish_outputs(wh, tmp_path / "out", as_of)
    (m,) = [m for line in summary_for(wh, as_of).splitlines() if (m := UNIT_LINE.fullmatch(line))]
    xlsx = next(p for p in paths if p.suffix == ".xlsx" and m["code"] in p.name)
    ws = openpyxl.load_workbook(xlsx)["总体执行"]
    cell = {c.value: ws.cell(row=2, column=c.column) for c in ws[1]}

    def wan(header: str) -> str:
        return f"{Decimal(str(cell[header].value)):,.2f}"

    assert m["budget"] == wan("全年预算数（万元）") == "178.00"
    assert m["paid"] == wan("当年支出（万元）") == "61.40"
    assert Decimal(m["rate"]) == Decimal(str(cell["执行率"].value)) * 100 == Decimal("34.5")
    assert m["paid_co"] == wan("结转支出（万元）") and m["co"] == wan("上年结转（万元）")
    assert m["unbudgeted"] == wan("无预算支出（万元）") == "0.80"


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


@pytest.mark.parametrize("argv", [["--debug", "sql", "select 1"], ["sql", "--debug", "select 1"], ["sql", "select 1"]])
def test_debug_is_a_flag_of_every_command_before_or_after_it(argv: list[str]):
    """Issue 11 item 6: `recon --debug <command>` and `recon <command> --debug` both show tracebacks."""
    args = cli.build_parser().parse_args(argv)
    assert bool(getattr(args, "debug", False)) is ("--debug" in argv)
    for command in ("run", "sql", "serve", "generate", "demo"):
        assert "--debug" in cli.build_parser()._subparsers._group_actions[0].choices[command].format_help()
