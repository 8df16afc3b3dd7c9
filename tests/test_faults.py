"""Faults with real parts: a publish killed by SIGKILL while it writes, a real second process holding the published
warehouse read-write across a full nightly. No mocks: real DuckDB files, real processes, real signals."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import openpyxl
import pytest

from flows.build import build_night
from flows.demo.generate import generate
from flows.publish import outputs
from tests import ROOT

DEC31 = dt.date(2025, 12, 31)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict:
    """Synthetic exports of 4 units (recon generate), reconciled as of 12-31 into a real DuckDB file."""
    base = tmp_path_factory.mktemp("faults")
    raw = base / "raw"
    generate(raw, payments=20_000, units=4, seed=11, bad_rows=3)
    wh = base / "recon.duckdb"
    build_night(wh, DEC31, raw_dir=raw)
    return {"raw": raw, "warehouse": wh}


def our_temp_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and outputs.is_output_temp(p.name))


PUBLISH = "import datetime as dt, sys; from pathlib import Path; from flows.publish.outputs import publish_outputs\n"
PUBLISH += "publish_outputs(Path(sys.argv[1]), Path(sys.argv[2]), dt.date(2025, 12, 31), workers=int(sys.argv[3]))"


def kill_publish_mid_write(wh: Path, out: Path, workers: int, timeout: float = 120) -> Path:
    """Start a publish in its own process group and SIGKILL the group (the workbook workers with it) as soon as a
    temporary workbook appears in ``out``: the kill lands while that workbook is being written."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISH, str(wh), str(out), str(workers)], cwd=ROOT, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            found = next(out.glob("*/.预算执行_*.tmp.xlsx"), None) if out.is_dir() else None
            if found is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                assert proc.wait(timeout=30) == -signal.SIGKILL
                return found
            if proc.poll() is not None:
                pytest.fail(f"the publish ended (exit {proc.returncode}) before a temporary workbook was seen")
            time.sleep(0.001)
        pytest.fail("no temporary workbook appeared")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_publish_killed_mid_write_is_cleaned_by_the_next(generated, tmp_path: Path, workers: int):
    """A publish SIGKILLed while it writes a workbook leaves its temporary file; the next publish removes it first,
    and its outputs are complete: every file it names exists, no temporary file is left, every workbook opens."""
    out = tmp_path / "out"
    leftover = kill_publish_mid_write(generated["warehouse"], out, workers)
    assert leftover.exists(), "the killed publish must leave its temporary workbook (else this test proves nothing)"
    assert our_temp_files(out)
    written = outputs.publish_outputs(generated["warehouse"], out, DEC31, workers=workers)
    assert our_temp_files(out) == []
    assert not leftover.exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(written)
    workbooks = [p for p in written if p.suffix == ".xlsx"]
    assert len(workbooks) == 4 + 1  # 4 units and the operator report
    for path in workbooks:
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            assert wb.sheetnames
            if path.name.startswith("预算执行_"):
                assert "绩效自评表（资金）" in wb.sheetnames
        finally:
            wb.close()
    with duckdb.connect() as con:
        for path in written:
            if path.suffix == ".parquet":
                con.execute("select count(*) from read_parquet(?)", [str(path)]).fetchall()
            elif path.suffix == ".csv":
                assert path.read_bytes().startswith("\ufeff".encode())


def test_a_publish_removes_only_its_own_temporary_names(generated, tmp_path: Path):
    """What the cleaning removes is exactly tmp_for's pattern for our outputs: a user's files stay, whatever they
    look like."""
    out = tmp_path / "out"
    outputs.publish_outputs(generated["warehouse"], out, DEC31)
    unit = next(p for p in out.iterdir() if p.name != "operator")
    ours = [
        unit / ".预算执行_900001_2025_2025-12-31.0a1b2c3d.tmp.xlsx",
        unit / ".资金情况说明_900001_2025_2025-12-31.0a1b2c3d.tmp.md",
        unit / "marts" / ".exceptions_2025-12-31.0a1b2c3d.tmp.parquet",
        unit / "marts" / "..exceptions_2025-12-31.0a1b2c3d.tmp.4e5f6a7b.tmp.csv",
        out / "operator" / ".运维报告_2025-12-31.0a1b2c3d.tmp.xlsx",
    ]
    users = [
        unit / ".预算执行_草稿.xlsx",
        unit / "预算执行_900001.0a1b2c3d.tmp.xlsx",
        unit / ".我的笔记.0a1b2c3d.tmp.xlsx",
        unit / ".预算执行_x.0a1b2c3d.tmp.docx",
        unit / "备注.tmp.md",
        out / ".预算执行_x.0a1b2c3d.tmp.xlsx",  # not in a folder a publish writes
        unit / "marts" / "mine" / ".exceptions_x.0a1b2c3d.tmp.csv",
    ]
    for path in ours + users:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    outputs.publish_outputs(generated["warehouse"], out, DEC31)
    assert [p for p in ours if p.exists()] == []
    assert [p for p in users if not p.exists()] == []


def test_a_second_publish_waits_for_the_first_and_never_removes_its_files(generated, tmp_path: Path):
    """Publishes into one folder run one after the other (an flock on the folder, held here by a real second
    process): a publish that starts meanwhile neither removes the other's temporary files nor writes."""
    out = tmp_path / "out"
    out.mkdir()
    in_flight = out / "900001_2025" / ".预算执行_900001_2025_2025-12-31.0a1b2c3d.tmp.xlsx"
    in_flight.parent.mkdir()
    in_flight.write_bytes(b"being written")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
                import fcntl, os, sys
                fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
                fcntl.flock(fd, fcntl.LOCK_EX)
                print("locked", flush=True)
                sys.stdin.readline()
            """),
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: list = []
    try:
        assert holder.stdout.readline().strip() == "locked"
        publish = threading.Thread(
            target=lambda: result.append(outputs.publish_outputs(generated["warehouse"], out, DEC31))
        )
        publish.start()
        publish.join(timeout=2)
        assert publish.is_alive() and in_flight.exists() and not (out / "operator").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    publish.join(timeout=120)
    assert result and not in_flight.exists()  # once the first is gone, its leftovers are stale: removed
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and the lock is released after a publish
    finally:
        os.close(fd)
