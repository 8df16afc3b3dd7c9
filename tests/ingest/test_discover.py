"""What people drop in raw/ besides exports, end to end: the real `recon run` on real files in a real raw/ folder
into a real DuckDB file. Stray files are reported by name and skipped, identical copies are reported once, and an
empty raw/ is a clear message, never a traceback."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from flows import cli
from flows.build import build_night
from flows.warehouse import db
from tests import ROOT

AS_OF = "2025-12-31"
CHINESE = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"[a-z]{4,} [a-z]{2,}")


def recon_run(raw: Path, wh: Path, out: Path, as_of: str = AS_OF) -> int:
    return cli.main(["run", "--raw", str(raw), "--warehouse", str(wh), "--out", str(out), "--as-of", as_of])


def source_files(wh: Path) -> list[tuple]:
    with db.read_only(wh) as con:
        return con.execute("select file_name, status, error from source_files order by file_name").fetchall()


def test_stray_files_anywhere_under_raw_are_reported_and_the_rest_loads(
    prefect_server, sample_raw: Path, tmp_path: Path, capsys
):
    """Issue 9 item 5: a README.md at the top of raw/ made the whole run fail (an unfinished DuckDB result left on
    the connection before the rejects were registered). Every stray file is now reported by name, the rest loads."""
    (sample_raw / "README.md").write_text("# 说明\n导出文件放在 payments/、refunds/、budget/\n", encoding="utf-8")
    (sample_raw / "payments" / "会议纪要.docx").write_bytes(b"PK\x03\x04" + b"\0" * 60)
    (sample_raw / "budget" / "批复文件.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    (sample_raw / "空文件.csv").write_bytes(b"")
    (sample_raw / "refunds" / "损坏.xlsx").write_bytes(b"PK\x03\x04 truncated workbook")
    (sample_raw / "归档.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (sample_raw / "扫描件" / "2025").mkdir(parents=True)
    (sample_raw / "扫描件" / "2025" / "回单.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    (sample_raw / "空文件夹").mkdir()
    shutil.copyfile(sample_raw / "refunds" / "refunds_2025.xlsx", sample_raw / "退回 - 副本.xlsx")
    stray = {
        "README.md",
        "payments/会议纪要.docx",
        "budget/批复文件.pdf",
        "空文件.csv",
        "refunds/损坏.xlsx",
        "归档.zip",
        "扫描件/2025/回单.jpg",
    }
    wh = tmp_path / "w.duckdb"
    assert recon_run(sample_raw, wh, tmp_path / "out") == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    rows = source_files(wh)
    assert {name for name, status, _ in rows if status == "loaded"} == {
        "budget/budget_2025.xlsx",
        "payments/payments_2025_01-06.xlsx",
        "payments/payments_2025_06-07.csv",
        "refunds/refunds_2025.xlsx",
    }
    rejected = {name: error for name, status, error in rows if status == "rejected"}
    assert set(rejected) == stray
    for name, error in rejected.items():
        assert name in error and CHINESE.search(error) and ENGLISH.search(error), error
        assert name in captured.out, f"{name} is not named in the run summary"
    assert "7 rejected" in captured.out
    assert "退回 - 副本.xlsx: 与 refunds/refunds_2025.xlsx 内容完全相同" in captured.out
    assert "identical to refunds/refunds_2025.xlsx, already loaded" in captured.out
    with db.read_only(wh) as con:
        assert con.execute("select count(*), sum(net_amt) from payments").fetchall()[0][0] == 7
    # reported once: the next night skips them like any file already seen
    assert recon_run(sample_raw, wh, tmp_path / "out") == 0
    assert "0 new" in capsys.readouterr().out


def test_a_rejected_file_first_in_a_load_does_not_break_the_connection(tmp_path: Path):
    """The root cause of item 5 at its depth: load_batches read the next file id with fetchone(), which in
    DuckDB 2.0 leaves the result open, so registering the rejects of a first file that has no rows failed."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "A-readme.txt").write_text("not an export\n", encoding="utf-8")
    (raw / "payments").mkdir()
    (raw / "payments" / "b.pdf").write_bytes(b"%PDF-1.4")
    wh = tmp_path / "w.duckdb"
    loaded = build_night(wh, dt.date(2025, 12, 31), raw_dir=raw).loaded
    assert [b.file_name for b in loaded] == ["A-readme.txt", "payments/b.pdf"]
    with db.read_only(wh) as con:
        assert con.execute("select count(*) from rejected_rows").fetchall() == [(2,)]


def test_warehouse_and_marts_never_leave_a_result_half_fetched():
    """fetchone() leaves the rest of a DuckDB 2.0 result open on the connection: the modules that write the
    warehouse use db.first_row instead."""
    root = ROOT / "flows"
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if ".fetchone()" in line and "Never" not in line
    ]
    assert not offenders, offenders


def test_an_identical_copy_under_another_name_is_reported_once(sample_raw: Path, tmp_path: Path):
    """Issue 9 item 6: a byte-identical copy was skipped silently. It is recorded in source_files (which the
    数据来源 sheet shows) naming the file it duplicates; the same copy every night changes nothing."""
    from tests.warehouse.test_db import pay, snapshot, write_payments

    wh = tmp_path / "w.duckdb"
    as_of = dt.date(2025, 12, 31)
    build_night(wh, as_of, raw_dir=sample_raw)
    shutil.copyfile(sample_raw / "payments" / "payments_2025_01-06.xlsx", sample_raw / "副本.xlsx")
    # two new files with the same bytes in one run: the first (by name) is read, the second is its copy
    write_payments(sample_raw / "payments" / "late.csv", [pay("PV77", "2025-09-01", "9.00")])
    shutil.copyfile(sample_raw / "payments" / "late.csv", sample_raw / "payments" / "late (1).csv")
    build_night(wh, as_of, raw_dir=sample_raw)
    copies = [r for r in source_files(wh) if r[1] == "duplicate_file"]
    assert [r[0] for r in copies] == ["payments/late.csv", "副本.xlsx"]
    message = copies[1][2]
    assert "payments/payments_2025_01-06.xlsx" in message and "identical to" in message and CHINESE.search(message)
    assert "identical to payments/late (1).csv" in copies[0][2]
    with db.read_only(wh) as con:
        assert con.execute("select count(*) from payments").fetchall() == [(8,)]
        assert (
            con.execute(
                "select rows_read, rows_loaded + rows_duplicate + rows_rejected + rows_skipped from source_files"
                " where status = 'duplicate_file'"
            ).fetchall()
            == [(0, 0)] * 2
        )
    before = snapshot(wh)
    build_night(wh, as_of, raw_dir=sample_raw)
    assert snapshot(wh) == before


def test_an_empty_raw_folder_without_a_warehouse_is_one_clear_error(tmp_path: Path, capsys):
    """Issue 9 item 7: an empty raw/ gave three tracebacks and "reconcile that date first"."""
    raw = tmp_path / "raw"
    raw.mkdir()
    wh = tmp_path / "w.duckdb"
    assert recon_run(raw, wh, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"no export found under {raw}" in err and str(raw / "payments") in err and "no warehouse" in err
    assert not wh.exists()


def test_an_empty_raw_folder_with_a_warehouse_is_an_empty_run(prefect_server, tmp_path: Path, capsys):
    raw = tmp_path / "raw"
    (raw / "payments").mkdir(parents=True)
    wh = tmp_path / "w.duckdb"
    with db.writer(wh):
        pass  # an existing warehouse that holds nothing yet
    assert recon_run(raw, wh, tmp_path / "out", as_of="2025-06-30") == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "reconcile that date first" not in captured.err, captured.err
    assert f"no export found under {raw}" in captured.err
    assert "files: 0 new, 0 already loaded, 0 rejected" in captured.out
    assert "no budget units yet" in captured.out
