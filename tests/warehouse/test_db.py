"""Loading into the warehouse: idempotence, overlapping exports, conflicts, orphans, atomicity, concurrent readers."""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from flows.build import build_night, ingest_all
from flows.config import Settings
from flows.warehouse import db, load
from schemas.spec import export_header
from tests import ROOT
from tests.builders import write_export

HEADER = export_header(
    "payments",
    "pay_cert_no pay_date agency_code pro_code bgt_doc_no payee_acct_name payee_acct_no pay_amt use_des status"
    " ori_pay_cert_no",
)


def write_payments(path: Path, rows: list[list]) -> Path:
    return write_export(path, ["国库集中支付明细查询"], HEADER, rows, encoding="gb18030")


def pay(no: str, date: str, amount: str, pro: str = "P001", status: str = "已支付", ori: str = "") -> list:
    return [
        no,
        date,
        "990001",
        pro,
        "示财预〔2025〕3号",
        "示例公司",
        "6222020200112233445",
        amount,
        "进度款",
        status,
        ori,
    ]


AS_OF = dt.date(2025, 12, 31)


def run_once(raw: Path, wh: Path) -> list:
    return build_night(wh, AS_OF, raw_dir=raw).loaded


# a run's own bookkeeping: when things happened, and the record of each run (`runs` gains a row per run)
CLOCK_COLUMNS = ("loaded_at", "last_seen", "evaluated_at")


def snapshot(wh: Path) -> dict:
    """Every relation's rows (but `runs` and the clock columns), for comparing two warehouses."""
    with db.read_only(wh) as con:
        names = [r[0] for r in con.execute("select table_name from information_schema.tables order by 1").fetchall()]
        out = {}
        for name in names:
            if name == "runs":
                continue
            cols = [c[0] for c in con.execute(f'select * from "{name}" limit 0').description]
            cols = [c for c in cols if c not in CLOCK_COLUMNS]
            sel = ", ".join(f'"{c}"' for c in cols)
            out[name] = sorted(map(repr, con.execute(f'select {sel} from "{name}"').fetchall()))
        return out


def query(wh: Path, sql: str, params=None):
    with db.read_only(wh) as con:
        return con.execute(sql, params or []).fetchall()


def test_same_files_twice_change_nothing(sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "w.duckdb"
    assert len(run_once(sample_raw, wh)) == 4
    before = snapshot(wh)
    assert run_once(sample_raw, wh) == []
    assert snapshot(wh) == before


def test_row_accounting_holds_for_every_file(sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "w.duckdb"
    run_once(sample_raw, wh)
    rows = query(
        wh,
        "select file_name, rows_read, rows_loaded, rows_duplicate, rows_rejected, rows_skipped from source_files"
        " order by file_name",
    )
    assert rows == [
        ("budget/budget_2025.xlsx", 5, 3, 0, 0, 2),
        ("payments/payments_2025_01-06.xlsx", 10, 6, 0, 0, 4),
        ("payments/payments_2025_06-07.csv", 4, 3, 0, 0, 1),
        ("refunds/refunds_2025.xlsx", 2, 1, 0, 0, 1),
    ]


def test_overlapping_export_adds_only_new_vouchers(tmp_path: Path):
    raw, wh = tmp_path / "raw", tmp_path / "w.duckdb"
    write_payments(raw / "payments" / "a.csv", [pay("PV1", "2025-01-05", "100.00"), pay("PV2", "2025-01-06", "200.00")])
    run_once(raw, wh)
    write_payments(
        raw / "payments" / "b.csv", [pay("PV2", "2025-01-06", "200.00"), pay("PV3", "2025-01-09", "1,300.00")]
    )
    run_once(raw, wh)
    assert query(wh, "select pay_cert_no, pay_amt from payments order by 1") == [
        ("PV1", Decimal("100.00")),
        ("PV2", Decimal("200.00")),
        ("PV3", Decimal("1300.00")),
    ]
    assert query(wh, "select file_name, rows_loaded, rows_duplicate from source_files order by 1") == [
        ("payments/a.csv", 2, 0),
        ("payments/b.csv", 1, 1),
    ]
    assert query(wh, "select count(*) from exceptions where kind = 'duplicate_conflict'") == [(0,)]


def test_conflicting_voucher_later_export_wins_and_is_reported(tmp_path: Path):
    raw, wh = tmp_path / "raw", tmp_path / "w.duckdb"
    write_payments(raw / "payments" / "a.csv", [pay("PV1", "2025-01-05", "100.00")])
    write_payments(raw / "payments" / "b.csv", [pay("PV1", "2025-01-05", "150.00"), pay("PV9", "2025-02-01", "1.00")])
    run_once(raw, wh)
    assert query(wh, "select pay_amt, source_file from payments where pay_cert_no = 'PV1'") == [
        (Decimal("150.00"), "payments/b.csv")
    ]
    conflicts = query(
        wh, "select severity, amount, source_file, source_row, detail from exceptions where kind = 'duplicate_conflict'"
    )
    assert len(conflicts) == 1
    severity, amount, source_file, source_row, detail = conflicts[0]
    assert (severity, amount, source_file, source_row) == ("fatal", Decimal("100.00"), "payments/a.csv", 3)
    assert "PV1" in detail and "b.csv" in detail
    assert query(wh, "select file_name, rows_loaded, rows_duplicate from source_files order by 1") == [
        ("payments/a.csv", 0, 1),
        ("payments/b.csv", 2, 0),
    ]


def test_voided_later_export_voids_the_voucher(tmp_path: Path):
    raw, wh = tmp_path / "raw", tmp_path / "w.duckdb"
    write_payments(raw / "payments" / "a.csv", [pay("PV1", "2025-01-05", "100.00")])
    run_once(raw, wh)
    write_payments(
        raw / "payments" / "b.csv",
        [pay("PV1", "2025-01-05", "100.00", status="已作废"), pay("PV2", "2025-01-07", "5.00")],
    )
    run_once(raw, wh)
    assert query(wh, "select pay_cert_no from payments") == [("PV2",)]
    assert query(wh, "select pay_cert_no from exceptions where kind = 'voided'") == [("PV1",)]


def test_refund_with_unknown_original_is_an_exception_not_dropped(tmp_path: Path):
    raw, wh = tmp_path / "raw", tmp_path / "w.duckdb"
    write_payments(
        raw / "payments" / "a.csv",
        [pay("PV1", "2025-01-05", "100.00"), pay("PV7", "2025-01-08", "-30.00", ori="PV404")],
    )
    (raw / "refunds").mkdir(parents=True)
    with (raw / "refunds" / "r.csv").open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(
            [
                ["退回凭证号", "原支付凭证号", "退回日期", "退回金额", "退回原因"],
                ["RF1", "PV405", "2025-02-01", "12.50", "多付"],
                ["RF2", "PV1", "2025-02-02", "-10.00", "结算"],
            ]
        )
    run_once(raw, wh)
    orphans = query(
        wh,
        "select pay_cert_no, amount, source_file, source_row from exceptions where kind = 'refund_orphan' order by 1",
    )
    assert orphans == [
        ("PV404", Decimal("30.00"), "payments/a.csv", 4),
        ("PV405", Decimal("12.50"), "refunds/r.csv", 2),
    ]
    assert query(wh, "select refunded_amt, net_amt from payments where pay_cert_no = 'PV1'") == [
        (Decimal("10.00"), Decimal("90.00"))
    ]
    assert query(wh, "select count(*) from raw_refunds") == [(2,)]


def test_error_inside_a_load_leaves_the_warehouse_as_it_was(sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "w.duckdb"
    run_once(sample_raw, wh)
    before = snapshot(wh)
    write_payments(sample_raw / "payments" / "late.csv", [pay("PV77", "2025-09-01", "9.00")])
    batches, _ = ingest_all(sample_raw, wh)
    with pytest.raises(RuntimeError, match="disk full"), db.writer(wh) as con:
        load.load_batches(con, batches, "crash")
        raise RuntimeError("disk full")
    assert snapshot(wh) == before
    assert [p.name for p in wh.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_killed_load_leaves_the_warehouse_as_it_was(sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "w.duckdb"
    run_once(sample_raw, wh)
    before = snapshot(wh)
    write_payments(sample_raw / "payments" / "late.csv", [pay("PV77", "2025-09-01", "9.00")])
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from flows.build import ingest_all
        from flows.warehouse import db, load
        raw, wh = Path({str(sample_raw)!r}), Path({str(wh)!r})
        batches, _ = ingest_all(raw, wh)
        with db.writer(wh) as con:
            load.load_batches(con, batches, "killed")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(wh) == before
    # the next run cleans up the leftover and loads the new file
    assert [b.file_name for b in run_once(sample_raw, wh)] == ["payments/late.csv"]
    assert not [p for p in wh.parent.iterdir() if ".tmp" in p.name]
    assert query(wh, "select count(*) from payments where pay_cert_no = 'PV77'") == [(1,)]


ANALYST = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for line in sys.stdin:
    print(con.execute("select count(*) from payments").fetchone()[0], flush=True)
"""


def test_open_reader_never_blocks_a_load_nor_sees_half_of_it(sample_raw: Path, tmp_path: Path):
    """An analyst's session (another process) stays open across a load: the load succeeds, the session keeps
    its consistent old view, and a new session sees the new data."""
    wh = tmp_path / "w.duckdb"
    run_once(sample_raw, wh)
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(wh)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        analyst.stdin.write("?\n")
        analyst.stdin.flush()
        n_before = int(analyst.stdout.readline())
        write_payments(sample_raw / "payments" / "late.csv", [pay("PV77", "2025-09-01", "9.00")])
        assert len(run_once(sample_raw, wh)) == 1
        analyst.stdin.write("?\n")
        analyst.stdin.flush()
        assert int(analyst.stdout.readline()) == n_before
    finally:
        analyst.stdin.close()
        analyst.wait(timeout=30)
    assert query(wh, "select count(*) from payments")[0][0] == n_before + 1


def test_rejected_file_is_recorded_and_others_load(sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "w.duckdb"
    (sample_raw / "payments" / "notes.pdf").write_bytes(b"%PDF-1.4 not an export")
    (sample_raw / "payments" / "empty.csv").write_bytes(b"")
    run_once(sample_raw, wh)
    rows = query(
        wh, "select file_name, status, rows_read, rows_rejected from source_files where status = 'rejected' order by 1"
    )
    assert rows == [("payments/empty.csv", "rejected", 0, 0), ("payments/notes.pdf", "rejected", 0, 0)]
    msgs = query(wh, 'select source_file, "check", message from rejected_rows order by 1')
    assert msgs[0][0] == "payments/empty.csv" and "empty" in msgs[0][2]
    assert msgs[1][0] == "payments/notes.pdf" and "not a spreadsheet" in msgs[1][2]
    assert query(wh, "select count(*) from payments") == [(7,)]
    os.utime(sample_raw / "payments" / "notes.pdf")
    assert run_once(sample_raw, wh) == []  # reported once, not every night


def test_memory_limit_from_config_env_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def limit() -> str:
        con = db.connect(tmp_path / "m.duckdb")
        try:
            return con.execute("select current_setting('memory_limit')").fetchone()[0]
        finally:
            con.close()

    monkeypatch.delenv("RECON_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(db, "DUCKDB_CONFIG", dict(db.DUCKDB_CONFIG))
    assert db.default_memory_limit().endswith("MiB")
    assert int(db.default_memory_limit()[:-3]) <= 3 * 1024
    monkeypatch.setenv("RECON_DUCKDB_MEMORY_LIMIT", "1GiB")  # read by the settings (flows/config.py), not here
    db.set_memory_limit(Settings().duckdb_memory_limit)
    assert limit() == "1.0 GiB"
    db.set_memory_limit("512MiB")  # recon.toml's run.duckdb_memory_limit wins over the environment
    assert limit() == "512.0 MiB"
    db.set_memory_limit("plenty")
    with pytest.raises(ValueError, match="memory limit 'plenty' is not a size"):
        limit()


def test_spill_folder_of_a_build_is_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Past the memory limit DuckDB spills to <private copy>.tmp/; the run's end, or the next run after a crash,
    removes it with the copy."""
    monkeypatch.setattr(db, "DUCKDB_CONFIG", {**db.DUCKDB_CONFIG, "memory_limit": "40MB"})
    wh = tmp_path / "w.duckdb"
    build = db.Build(wh)
    try:
        with build.transaction() as con:
            con.execute("set preserve_insertion_order = false")
            con.execute(
                "create temp table big as select range as i, md5(range::varchar) || md5((range + 1)::varchar) as t"
                " from range(3000000)"
            )
            spilled = con.execute("select count(*) from duckdb_temporary_files()").fetchone()[0]
            assert spilled > 0, "the test needs DuckDB to spill"
        spill_dir = build.tmp.with_name(build.tmp.name + ".tmp")
        assert spill_dir.is_dir()
    finally:
        build.abandon()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]
    # a crash leaves a spill folder behind: the next Build removes it
    leftover = tmp_path / ".w.duckdb.deadbeef.tmp.tmp"
    leftover.mkdir()
    (leftover / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 10)
    db.Build(wh).abandon()
    assert not leftover.exists()
