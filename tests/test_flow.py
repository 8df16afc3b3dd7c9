"""End to end: the real Prefect flow on the sample exports into a real DuckDB file, and the `recon` command."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from flows import cli, warehouse
from flows.nightly import recon_flow


def test_flow_loads_the_samples_with_exact_accounting_and_totals(prefect_server, sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "warehouse" / "recon.duckdb"
    summary = recon_flow(
        raw_dir=str(sample_raw), warehouse_path=str(wh), out_dir=str(tmp_path / "out"), as_of=dt.date(2025, 12, 31)
    )
    assert summary["files_new"] == 4 and summary["files_rejected"] == 0 and summary["rows_rejected"] == 0
    with warehouse.read_only(wh) as con:
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
