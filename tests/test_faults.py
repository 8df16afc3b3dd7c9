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
from decimal import Decimal
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


# --------------------------------------------------------------------------------------------------------------
# A read-write analyst session on the published warehouse

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # what `duckdb recon.duckdb` and a bare connect do: read-write, the file's lock
if sys.argv[2] == "writes":
    con.execute("create table analyst_scratch as select 42 as x")  # committed, in recon.duckdb.wal, not checkpointed
for line in sys.stdin:
    print(con.execute("select count(*), coalesce(sum(net_amt), 0) from payments").fetchone(), flush=True)
con.close()
"""


class Holder:
    """A real second process holding a read-write DuckDB connection on ``path``; ``ask()`` makes it query."""

    def __init__(self, path: Path, mode: str = "idle"):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self) -> str:
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self.proc.wait(timeout=60)


def assert_lock_held_by(path: Path, holder: Holder) -> None:
    """Without the private copy, every read of the published file fails: this is what the run has to get around."""
    with pytest.raises(duckdb.IOException, match=rf"Could not set lock.*\(PID {holder.proc.pid}\)"):
        duckdb.connect(str(path), read_only=True)


def run_cli(sample_raw: Path, wh: Path, out: Path, as_of: str) -> subprocess.CompletedProcess:
    """`recon run` as the nightly runs it: a real process, against the session's Prefect server."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(wh.parent / "prefect-home")}
    env.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    argv = ["run", "--raw", str(sample_raw), "--warehouse", str(wh), "--out", str(out), "--as-of", as_of]
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("mode", ["idle", "writes"])
def test_a_read_write_session_never_breaks_the_nightly(prefect_server, sample_raw: Path, tmp_path: Path, mode: str):
    """An analyst forgot -readonly: a real process holds the published warehouse read-write (idle, or having written
    a table of its own) across a full `recon run`. The run exits 0 and says once who holds the file; the session
    still reads its old, consistent version; a new connection sees the new data; no stale log is left to make new
    connections fail; the session then closes cleanly and the warehouse stays the run's."""
    wh, out = tmp_path / "recon.duckdb", tmp_path / "out"
    later = sample_raw / "payments" / "payments_2025_06-07.csv"
    held = later.read_bytes()
    later.unlink()
    first = run_cli(sample_raw, wh, out, "2025-06-30")
    assert first.returncode == 0, first.stderr
    holder = Holder(wh, mode)
    try:
        before = holder.ask()
        assert before == "(5, Decimal('497000.00'))"
        assert_lock_held_by(wh, holder)
        assert wh.with_name("recon.duckdb.wal").exists() == (mode == "writes")
        later.write_bytes(held)
        captured = run_cli(sample_raw, wh, out, "2025-12-31")
        assert captured.returncode == 0, captured.stderr
        summary = captured.stdout
        assert "files: 1 new, 3 already loaded" in summary
        named = [line for line in captured.stderr.splitlines() if f"(PID {holder.proc.pid})" in line]
        assert len(named) == 1 and "held open read-write" in named[0] and "duckdb -readonly" in named[0]
        assert holder.ask() == before  # the session's old version, whole
        assert not wh.with_name("recon.duckdb.wal").exists()
        with duckdb.connect(str(wh), read_only=True) as con:  # a new analyst connection: the new data
            assert con.execute("select count(*), sum(net_amt) from payments").fetchone() == (7, Decimal("742000.00"))
            tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
            assert "analyst_scratch" not in tables
        workbook = out / "990001_2025" / "预算执行_990001_2025_2025-12-31.xlsx"
        openpyxl.load_workbook(workbook, read_only=True).close()
        assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]
    finally:
        assert holder.close() == 0  # its close (a checkpoint into its own, replaced file) does not fail...
    with duckdb.connect(str(wh), read_only=True) as con:  # ...and does not touch the published one
        assert con.execute("select count(*), sum(net_amt) from payments").fetchone() == (7, Decimal("742000.00"))


def test_the_failure_hook_under_a_read_write_session_swaps_a_whole_state(sample_raw: Path, tmp_path: Path):
    """The failed-run path (what the flow's on_failure hook calls) with a session holding the file read-write: it
    builds on a whole copy of the published version, so what it swaps in is that version plus the run_failed
    alert, never half of anything; the session keeps its old version."""
    wh = tmp_path / "recon.duckdb"
    build_night(wh, DEC31, raw_dir=sample_raw)
    holder = Holder(wh, "writes")
    try:
        before = holder.ask()
        assert_lock_held_by(wh, holder)
        build_night(wh, DEC31, failure="reconcile: disk full")
        assert holder.ask() == before
        with duckdb.connect(str(wh), read_only=True) as con:
            assert str(con.execute("select count(*), sum(net_amt) from payments").fetchone()) == before
            assert con.execute("select count(*) from alerts where kind = 'run_failed'").fetchone() == (1,)
            assert con.execute("select count(*) from runs").fetchone() == (1,)  # the failed run records none
    finally:
        assert holder.close() == 0
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name or p.name.endswith(".wal")]


READER = """
import sys
from pathlib import Path
from flows.warehouse import db
with db.snapshot(Path(sys.argv[1])) as con:
    print(con.execute("select count(*) from payments").fetchone()[0], flush=True)
    sys.stdin.readline()
    print(con.execute("select count(*) from payments").fetchone()[0], flush=True)
"""


def test_a_snapshot_in_use_survives_a_build_and_a_killed_ones_does_not(sample_raw: Path, tmp_path: Path):
    """A private copy another process is reading (flock-ed) is left alone by a Build's clean-up; once its reader is
    killed, the next Build removes it like any other leftover."""
    wh = tmp_path / "recon.duckdb"
    build_night(wh, DEC31, raw_dir=sample_raw)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(wh)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        n = reader.stdout.readline().strip()
        snaps = list(tmp_path.glob(".recon.duckdb.*.snapshot.tmp"))
        assert len(snaps) == 1
        build_night(wh, DEC31, raw_dir=sample_raw)  # a whole run: its Build cleans stale temporary files first
        assert snaps[0].exists()
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == n
        assert reader.wait(timeout=30) == 0
        assert not snaps[0].exists()  # removed on close
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    killed = subprocess.Popen(
        [sys.executable, "-c", READER, str(wh)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert killed.stdout.readline().strip() == n
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    (leftover,) = tmp_path.glob(".recon.duckdb.*.snapshot.tmp")
    build_night(wh, DEC31, raw_dir=sample_raw)
    assert not leftover.exists()


APPENDER = """
import sys, time
with open(sys.argv[1], "ab", buffering=0) as f:
    print("writing", flush=True)
    while True:
        f.write(b"x" * 4096)
        time.sleep(0.0005)
"""


def test_a_copy_is_never_taken_of_a_file_being_written(tmp_path: Path):
    """The Build's and the snapshot's byte copy is taken again while the file changes under it, and after a few
    tries fails with one line saying why and what to do; once the writer stops, it succeeds."""
    from flows.warehouse import db

    src, dst = tmp_path / "recon.duckdb", tmp_path / "copy"
    src.write_bytes(b"\0" * (8 << 20))
    writer = subprocess.Popen([sys.executable, "-c", APPENDER, str(src)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        with pytest.raises(RuntimeError, match=r"kept changing while it was copied.*read-write session") as e:
            db.stable_copy(src, dst)
        assert "\n" not in str(e.value)
    finally:
        writer.kill()
        writer.wait()
    db.stable_copy(src, dst)
    assert dst.read_bytes() == src.read_bytes()
