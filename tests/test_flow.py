"""End to end: the real Prefect flow on the sample exports into a real DuckDB file, and the `recon` command."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from flows import cli
from flows.nightly import recon_flow
from flows.warehouse import db


def test_flow_loads_the_samples_with_exact_accounting_and_totals(prefect_server, sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "warehouse" / "recon.duckdb"
    summary = recon_flow(
        raw_dir=str(sample_raw), warehouse_path=str(wh), out_dir=str(tmp_path / "out"), as_of=dt.date(2025, 12, 31)
    )
    assert summary["files_new"] == 4 and summary["files_rejected"] == 0 and summary["rows_rejected"] == 0
    with db.read_only(wh) as con:
        accounting = con.execute(
            "select count(*), sum(rows_read), sum(rows_loaded + rows_duplicate + rows_rejected + rows_skipped)"
            " from source_files"
        ).fetchone()
        assert accounting == (4, 21, 21)
        # control total of the xlsx export: its 合计 row equals all its parsed rows, the voided one included
        assert con.execute(
            "select control_total, parsed_total from source_files where file_name like '%01-06.xlsx'"
        ).fetchone() == (Decimal("519000.00"), Decimal("519000.00"))
        by_money = dict(con.execute("select money, sum(net_amt) from payments group by 1").fetchall())
        # README: current-year 614,000 + unbudgeted 8,000; carry-over 120,000
        assert by_money == {"current": Decimal("622000.00"), "carryover": Decimal("120000.00")}
        assert con.execute(
            "select pay_amt, refunded_amt, net_amt from payments where pay_cert_no = 'PV2025000103'"
        ).fetchone() == (Decimal("180000.00"), Decimal("3000.00"), Decimal("177000.00"))
        assert con.execute("select refunded_amt from payments where pay_cert_no = 'PV2025000104'").fetchone() == (
            Decimal("10000.00"),
        )
        assert con.execute(
            "select count(*) from payments where pay_cert_no in ('PV2025000105', 'PV2025000108')"
        ).fetchone() == (0,)
        assert con.execute("select sum(cur_amt), sum(carryover_amt) from budget_lines").fetchone() == (
            Decimal("1780000.00"),
            Decimal("300000.00"),
        )
        assert con.execute("select typeof(pay_amt), typeof(net_amt) from payments limit 1").fetchone() == (
            "DECIMAL(18,2)",
            "DECIMAL(18,2)",
        )
    again = recon_flow(
        raw_dir=str(sample_raw), warehouse_path=str(wh), out_dir=str(tmp_path / "out"), as_of=dt.date(2025, 12, 31)
    )
    assert again["files_new"] == 0 and again["files_skipped"] == 4
    with db.read_only(wh) as con:
        assert con.execute("select files_new, files_skipped, status from runs order by started_at").fetchall() == [
            (4, 0, "completed"),
            (0, 4, "completed"),
        ]


def test_recon_demo_then_sql(prefect_server, tmp_path: Path, capsys):
    assert cli.main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "4 new" in out and "budget 178.00 万元, paid 61.40 万元, rate 34.5%" in out and "unbudgeted 0.80 万元" in out
    wh = tmp_path / "demo" / "recon.duckdb"
    assert (
        cli.main(
            [
                "sql",
                "--warehouse",
                str(wh),
                "--format",
                "json",
                "select pro_code, sum(net_amt) as paid from payments group by 1 order by 1",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"pro_code": "990001250001", "paid": "537000.00"}
    # read-only: a write is refused with a message, not a crash
    assert cli.main(["sql", "--warehouse", str(wh), "delete from raw_payments"]) == 1
    assert "read-only" in capsys.readouterr().err.lower()


def test_recon_run_reports_a_missing_raw_folder(tmp_path: Path, capsys):
    code = cli.main(["run", "--raw", str(tmp_path / "nowhere"), "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


ANALYST = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for line in sys.stdin:
    print(con.execute("select count(*), coalesce(sum(net_amt), 0) from payments").fetchone(), flush=True)
"""


def test_an_open_analyst_session_across_a_full_nightly(prefect_server, sample_raw: Path, tmp_path: Path):
    """A read-only session held open (another process, as an analyst's would be) across a full run: the run
    completes, the session keeps its whole, consistent view, a new session sees the run's result."""
    wh = tmp_path / "recon.duckdb"
    later = sample_raw / "payments" / "payments_2025_06-07.csv"
    held = later.read_bytes()
    later.unlink()
    recon_flow(
        raw_dir=str(sample_raw), warehouse_path=str(wh), out_dir=str(tmp_path / "out"), as_of=dt.date(2025, 6, 30)
    )
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(wh)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        analyst.stdin.write("?\n")
        analyst.stdin.flush()
        before = analyst.stdout.readline().strip()
        assert before == "(5, Decimal('497000.00'))"  # 519,000 - voided 12,000 - refund 10,000
        later.write_bytes(held)
        summary = recon_flow(
            raw_dir=str(sample_raw), warehouse_path=str(wh), out_dir=str(tmp_path / "out"), as_of=dt.date(2025, 12, 31)
        )
        assert summary["files_new"] == 1
        analyst.stdin.write("?\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == before
    finally:
        analyst.stdin.close()
        analyst.wait(timeout=30)
    with db.read_only(wh) as con:
        assert con.execute("select count(*), sum(net_amt) from payments").fetchone() == (7, Decimal("742000.00"))


def test_a_failed_run_fails_in_prefect_and_sends_an_alert(
    prefect_server, sample_raw, tmp_path, http_server, monkeypatch
):
    # a config mistake now stops the run at load (tests/test_config.py); fail the run inside reconcile instead
    from flows.warehouse import transform

    def disk_full(*args, **kwargs):
        raise OSError("carryover_due: disk full while reconciling")

    monkeypatch.setattr(transform, "reconcile", disk_full)
    config = tmp_path / "recon.toml"
    config.write_text(
        f'[paths]\nraw = "{sample_raw}"\nwarehouse = "{tmp_path / "recon.duckdb"}"\nout = "{tmp_path / "out"}"\n'
        f'[[alerts.channels]]\ntype = "webhook"\nname = "ops"\nurl = "http://127.0.0.1:{http_server.server_port}/"\n',
        encoding="utf-8",
    )
    state = recon_flow(config=str(config), as_of=dt.date(2025, 6, 30), return_state=True)
    assert state.is_failed()
    (message,) = http_server.received
    assert message["events"][0]["event"] == "new" and "夜间任务失败" in message["text"]
    assert "carryover_due" in message["text"]
    with db.read_only(tmp_path / "recon.duckdb") as con:
        assert con.execute("select kind, status from alerts").fetchall() == [("run_failed", "active")]
        # the failed run loaded nothing: the warehouse holds only the alert
        assert con.execute("select count(*) from source_file_log").fetchone() == (0,)


def test_the_paragraph_uses_the_configured_behind_plan_thresholds(prefect_server, sample_raw, tmp_path):
    """[alerts] behind_warning_pp / behind_critical_pp are the one source: the alerts and the paragraph agree."""
    out = tmp_path / "out"
    config = tmp_path / "recon.toml"
    config.write_text(
        f'[paths]\nraw = "{sample_raw}"\nwarehouse = "{tmp_path / "recon.duckdb"}"\nout = "{out}"\n'
        "[alerts]\nbehind_warning_pp = 13\nbehind_critical_pp = 18\n",
        encoding="utf-8",
    )
    recon_flow(config=str(config), as_of=dt.date(2025, 6, 30))
    text = (out / "990001_2025" / "资金情况说明_990001_2025_2025-06-30.md").read_text(encoding="utf-8")
    assert "2 个项目落后计划 13 个百分点以上" in text
    assert "落后 15.25 个百分点；" in text and "落后 18.33 个百分点（严重）" in text
    assert "12.50" not in text  # 990001250002 is 12.50 points behind: under the configured 13
    with db.read_only(tmp_path / "recon.duckdb") as con:
        alerted = con.execute(
            "select pro_code, severity from alerts where kind = 'behind_plan' order by pro_code"
        ).fetchall()
    assert alerted == [("990001250001", "warning"), ("990001250003", "critical")]
