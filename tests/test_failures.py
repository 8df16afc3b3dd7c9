"""Expected failures read as one line, not as crashes (issue 11 items 6 and 8).

Every test runs the real `recon` command in a subprocess against real faults: a config mistake, an output path
under a regular file, a folder where the outputs must go that is a regular file, a full disk (a tiny tmpfs mounted
in a private mount namespace with `unshare -rm`, which works as root and as a normal user where user namespaces are
allowed), DuckDB's real memory limit, a file busy because it is a mount point (EBUSY, the stand-in for a workbook
held open by another program), a Prefect temporary server that cannot start in time. No mocks.

Most runs use the session's real Prefect server (PREFECT_API_URL, as an operator with `prefect server start`
would); the temporary-server test starts Prefect's own.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows.build import build_night
from flows.nightly import is_transient
from tests.conftest import write_sample_raw

ROOT = Path(__file__).resolve().parents[1]
BASE_AS_OF = dt.date(2025, 6, 30)  # the warehouse every test starts from
AS_OF = "2025-12-31"  # the run that fails
UNIT_FOLDER = "990001_2025"  # the sample unit's output folder


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """raw/ with the sample exports and a warehouse built from them as of 06-30 (in-process, no Prefect)."""
    root = tmp_path_factory.mktemp("base")
    write_sample_raw(root / "raw")
    build_night(root / "wh" / "recon.duckdb", BASE_AS_OF, raw_dir=root / "raw")
    return root


@pytest.fixture
def case(base: Path, tmp_path: Path) -> Path:
    """A copy of the base raw/ and warehouse for one test: tmp_path/raw, tmp_path/wh/recon.duckdb."""
    shutil.copytree(base / "raw", tmp_path / "raw")
    (tmp_path / "wh").mkdir()
    shutil.copy(base / "wh" / "recon.duckdb", tmp_path / "wh" / "recon.duckdb")
    return tmp_path


@pytest.fixture(scope="module")
def api_url(prefect_server) -> str:
    """The session's real Prefect server, for the subprocesses (as PREFECT_API_URL)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def runs(warehouse: Path) -> list[str]:
    """The as-of dates of the runs recorded in the warehouse."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [str(r[0]) for r in con.execute("select as_of from runs order by as_of").fetchall()]
    finally:
        con.close()


def env_for(api_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "RECON_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PYTHONPATH=str(ROOT))
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


RECON = [sys.executable, "-m", "flows.cli"]


def run_args(case: Path, out: Path, *more: str) -> list[str]:
    return ["run", "--raw", str(case / "raw"), "--warehouse", str(case / "wh" / "recon.duckdb"), "--out", str(out),
            "--as-of", AS_OF, *more]  # fmt: skip


class Result:
    def __init__(self, proc: subprocess.CompletedProcess, elapsed: float):
        self.rc, self.out, self.err, self.elapsed = proc.returncode, proc.stdout, proc.stderr, elapsed
        self.lines = [line for line in self.err.splitlines() if line.strip()]
        # what the run printed besides its progress (INFO) lines
        self.failure_lines = [line for line in self.lines if not line.startswith("INFO ")]

    def __repr__(self) -> str:
        return f"exit {self.rc} after {self.elapsed:.1f} s, {len(self.lines)} stderr lines:\n{self.err}"


def recon(args: list[str], env: dict[str, str], *, namespace: str | None = None, timeout: float = 300) -> Result:
    """`recon ARGS` in a subprocess; with ``namespace`` (shell commands) first run inside `unshare -rm` (a private
    mount namespace: its mounts vanish with the process)."""
    cmd = RECON + args
    if namespace is not None:
        cmd = ["unshare", "-rm", "sh", "-c", f"{namespace}\nexec {shlex.join(cmd)}"]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return Result(proc, time.monotonic() - started)


def one_failure_line(r: Result, *expected: str) -> str:
    """The run's failure is one line, the last one, with no traceback anywhere; it says ``expected``. Besides the
    progress (INFO) lines, at most one note of ours may come before it (a second try of the temporary server,
    the failure hook's run_failed alert that the warehouse could not take)."""
    assert "Traceback" not in r.err, r
    assert 1 <= len(r.failure_lines) <= 2, r
    assert all(line.startswith("WARNING treasury_recon.") for line in r.failure_lines[:-1]), r
    last = r.lines[-1]
    assert last.startswith("recon: ") and sum(line.startswith("recon: ") for line in r.lines) == 1, r
    for text in expected:
        assert text in last, f"{text!r} not in the last line: {r!r}"
    return last


def _can_mount() -> str | None:
    if not shutil.which("unshare"):
        return "no unshare(1) here"
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"cannot mount in a user namespace: {probe.stderr.strip()}"


NO_MOUNT = _can_mount()
needs_mount = pytest.mark.skipif(NO_MOUNT is not None, reason=f"full-disk/busy-file faults need mounts: {NO_MOUNT}")


# ---------------------------------------------------------------------------------------------------------------
# Item 6: one line, a traceback only with --debug, the warehouse intact


def test_a_config_mistake_is_one_line_and_debug_shows_the_traceback(case: Path, api_url: str):
    config = case / "recon.toml"
    config.write_text('[run]\nduckdb_memory_limit = "lots"\n', encoding="utf-8")
    before = sha(case / "wh" / "recon.duckdb")
    args = run_args(case, case / "out", "--config", str(config))
    r = recon(args, env_for(api_url))
    assert r.rc == 2, r
    assert len(r.lines) == 1, r
    one_failure_line(r, str(config), "run.duckdb_memory_limit", '"3GB"')
    debug = recon(["--debug", *args], env_for(api_url))
    assert debug.rc == 2 and "Traceback" in debug.err and debug.lines[-1] == r.lines[-1], debug
    assert sha(case / "wh" / "recon.duckdb") == before


def test_an_output_folder_under_a_regular_file_is_one_line(case: Path, api_url: str):
    blocker = case / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    before = sha(case / "wh" / "recon.duckdb")
    r = recon(run_args(case, blocker / "out"), env_for(api_url))
    assert r.rc == 2 and len(r.lines) == 1, r
    one_failure_line(r, f"--out {blocker / 'out'}", "not a writable folder", "give a writable folder")
    assert sha(case / "wh" / "recon.duckdb") == before
    with pytest.raises(NotADirectoryError):  # the fault is real: nothing can be created under a file
        (blocker / "out").mkdir(parents=True)


@needs_mount
def test_a_full_output_disk_is_one_line_and_the_warehouse_has_the_run(case: Path, api_url: str):
    """The out folder is a 64 KiB tmpfs: the workbook does not fit (ENOSPC). Before: 202 stderr lines, 5
    tracebacks (Prefect's task and flow logs, ZipFile.__del__ on the full disk)."""
    out = case / "out"
    out.mkdir()
    r = recon(run_args(case, out), env_for(api_url), namespace=f"mount -t tmpfs -o size=64k tmpfs {out}")
    assert r.rc == 3, r
    one_failure_line(r, "warehouse updated", "outputs not written", "the disk is full", str(out), "free space")
    assert AS_OF in runs(case / "wh" / "recon.duckdb")  # the new run is in; its outputs are not
    assert list(out.iterdir()) == []  # the tmpfs is gone with the namespace: nothing was written here


@needs_mount
def test_a_warehouse_disk_that_fills_up_leaves_the_warehouse_as_it_was(case: Path, api_url: str):
    """The warehouse folder is a tmpfs with room for the warehouse and not much more than its private copy: the
    build fails (copying it, or writing or checkpointing it). Before: 168 stderr lines, 3 tracebacks."""
    wh_dir = case / "wh"
    size_k = (wh_dir / "recon.duckdb").stat().st_size * 2 // 1024 + 600
    keep = case / "keep.duckdb"
    shutil.copy(wh_dir / "recon.duckdb", keep)
    after = case / "after.txt"
    script = (
        f"mount -t tmpfs -o size={size_k}k tmpfs {wh_dir} && cp {keep} {wh_dir}/recon.duckdb\n"
        f"{shlex.join(RECON + run_args(case, case / 'out'))}\nrc=$?\n"
        f"sha256sum {wh_dir}/recon.duckdb > {after}; ls -A {wh_dir} >> {after}\nexit $rc"
    )
    started = time.monotonic()
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], env=env_for(api_url), cwd=ROOT, capture_output=True, text=True
    )
    r = Result(proc, time.monotonic() - started)
    assert r.rc == 2, r
    one_failure_line(r, "warehouse not updated", "nothing of this run was loaded", "the disk is full", "free space")
    digest, *listing = after.read_text().split("\n")
    assert digest.split()[0] == sha(keep), "the warehouse changed"
    assert sorted(x for x in listing if x) == ["recon.duckdb", "recon.duckdb.lock"], "a private copy was left"


def test_duckdb_out_of_memory_is_one_line_and_debug_shows_the_traceback(case: Path, api_url: str):
    """DuckDB's real memory limit, set far too low: the build fails, the warehouse is as it was. Before: 173
    stderr lines, 3 tracebacks."""
    before = sha(case / "wh" / "recon.duckdb")
    env = env_for(api_url, RECON_DUCKDB_MEMORY_LIMIT="2MB")
    r = recon(run_args(case, case / "out"), env)
    assert r.rc == 2, r
    one_failure_line(r, "warehouse not updated", "out of memory (memory limit 2MB)", "run.duckdb_memory_limit")
    assert sha(case / "wh" / "recon.duckdb") == before
    debug = recon(run_args(case, case / "out", "--debug"), env)
    assert debug.rc == 2 and debug.err.count("Traceback") >= 1 and "TransactionException" in debug.err, debug
    assert debug.lines[-1] == r.lines[-1]
    assert sha(case / "wh" / "recon.duckdb") == before


def test_a_bug_still_shows_its_traceback(case: Path, api_url: str):
    """Not an expected failure: a warehouse whose runs table has other columns (as a broken migration would leave
    it). Its traceback is printed, then 'internal error', exit 1; the warehouse is as it was."""
    wh = case / "wh" / "broken.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("create table runs (something_else integer)")
    con.close()
    args = [*run_args(case, case / "out")]
    args[args.index("--warehouse") + 1] = str(wh)
    r = recon(args, env_for(api_url))
    assert r.rc == 1, r
    assert r.err.count("Traceback") == 1 and "BinderException" in r.err, r
    assert r.lines[-1].startswith("recon: warehouse not updated") and "internal error (a bug)" in r.lines[-1], r
    assert "--debug" in r.lines[-1]
    con = duckdb.connect(str(wh), read_only=True)
    try:  # nothing of the run is in (the failure hook may have recorded its run_failed alert)
        assert con.execute("select count(*) from runs").fetchall() == [(0,)]
    finally:
        con.close()


def test_a_temporary_server_that_does_not_start_is_tried_twice_then_one_line(case: Path, tmp_path: Path):
    """run.prefect_server_timeout (here from RECON_PREFECT_SERVER_TIMEOUT) far below the server's start-up time:
    two tries, then one line saying how to use a running server."""
    before = sha(case / "wh" / "recon.duckdb")
    env = env_for(None, RECON_PREFECT_SERVER_TIMEOUT="1", PREFECT_HOME=str(tmp_path / "prefect-home"))
    r = recon(run_args(case, case / "out"), env)
    assert r.rc == 2, r
    assert "trying once more" in r.err, r  # the second try, announced
    last = one_failure_line(r, "did not start within 1 s", "tried twice", "run.prefect_server_timeout")
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in last and "recon serve" in last
    assert 2 <= r.elapsed < 60, f"two 1-second tries took {r.elapsed:.1f} s"
    assert sha(case / "wh" / "recon.duckdb") == before


def test_a_prefect_api_url_that_does_not_answer_is_one_line(case: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/api"
    r = recon(run_args(case, case / "out"), env_for(url))
    assert r.rc == 2 and len(r.lines) == 1, r
    one_failure_line(r, f"the Prefect server at {url} (PREFECT_API_URL) is not reachable", "prefect server start")


# ---------------------------------------------------------------------------------------------------------------
# Item 8: the output step retries only what can pass on a retry


def test_a_permanent_output_error_fails_fast_and_says_the_warehouse_was_updated(case: Path, api_url: str):
    """The unit's output folder is a regular file (EEXIST/ENOTDIR: permanent). Before: two retries 5 s apart
    (26 s, 145 stderr lines); now no retry. The time is compared with a good run of the same data."""
    good = recon([*run_args(case, case / "good-out")[:-1], "2025-09-30"], env_for(api_url))
    assert good.rc == 0, good
    out = case / "out"
    out.mkdir()
    (out / UNIT_FOLDER).write_text("a file where the unit's folder goes", encoding="utf-8")
    r = recon(run_args(case, out), env_for(api_url))
    assert r.rc == 3, r
    last = one_failure_line(r, "warehouse updated", "outputs not written", str(out / UNIT_FOLDER))
    assert f"recon run --as-of {AS_OF}` again" in last
    assert "may pass on a retry" not in r.err
    assert r.elapsed < good.elapsed + 8, (
        f"the failing run took {r.elapsed:.1f} s, a good run {good.elapsed:.1f} s: two 5 s retries would add 10 s"
    )
    assert AS_OF in runs(case / "wh" / "recon.duckdb"), "the warehouse should hold the new run"
    print(f"permanent output error: failed in {r.elapsed:.1f} s (good run {good.elapsed:.1f} s)")


@needs_mount
def test_a_busy_output_file_is_retried_and_the_run_completes(case: Path, api_url: str):
    """The workbook's target name is a mount point, so moving the finished file there fails with EBUSY (a stand-in
    for a file held by another program). Once the first try has failed the mount is removed: the retry 5 s later
    writes the outputs and the run completes."""
    out = case / "out"
    target = out / UNIT_FOLDER / f"预算执行_990001_2025_{AS_OF}.xlsx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    holder = case / "holder"
    holder.write_bytes(b"")
    err, rc = case / "stderr.txt", case / "rc.txt"
    script = (
        f"mount --bind {holder} {shlex.quote(str(target))} || exit 99\n"
        f"({shlex.join(RECON + run_args(case, out))} 2> {err}; echo $? > {rc}) &\n"
        "pid=$!; n=0\n"
        f'until grep -q "may pass on a retry" {err} 2>/dev/null || [ $n -ge 600 ]; do sleep 0.2; n=$((n+1)); done\n'
        f"umount {shlex.quote(str(target))}\nwait $pid\n"
    )
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env_for(api_url), cwd=ROOT, text=True)
    assert proc.returncode == 0
    text = err.read_text(encoding="utf-8")
    assert rc.read_text().strip() == "0", text
    (note,) = [line for line in text.splitlines() if "may pass on a retry" in line]
    assert "[Errno 16] Device or resource busy" in note and note.endswith("retrying in 5 s"), text
    assert target.stat().st_size > 0 and "Traceback" not in text


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OSError(errno.EBUSY, os.strerror(errno.EBUSY), "x.xlsx"), True),
        (BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN)), True),
        (TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)), True),
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), False),
        (OSError(errno.EROFS, os.strerror(errno.EROFS), "out"), False),
        (NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), "out/x"), False),
        (FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), "out/x"), False),
        (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "out/x"), False),  # mode bits: permanent here
        (RuntimeError("a workbook worker failed"), False),
        (ValueError("no marts"), False),
    ],
)
def test_only_errors_that_can_pass_on_a_retry_are_retried(exc: BaseException, transient: bool):
    assert is_transient(exc) is transient


def test_a_windows_locked_file_is_transient():
    """A workbook open in Excel: PermissionError with winerror 32 (sharing violation). Built as Windows builds it."""
    locked = PermissionError(errno.EACCES, "The process cannot access the file", "x.xlsx")
    locked.winerror = 32
    assert is_transient(locked)


def test_a_worker_s_os_error_is_recognised_from_its_traceback_text():
    """Workbook workers send their traceback as text (flows/publish/worker.py): its last line names the OSError."""
    from flows.cli import describe

    text = (
        "a workbook worker failed (exit 1): Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "OSError: [Errno 28] No space left on device: '/srv/out/990001_2025/.x.tmp.xlsx'"
    )
    assert describe(RuntimeError(text)) == (
        "the disk is full",
        "free space on that disk (or point the path at a larger one)",
        "/srv/out/990001_2025/.x.tmp.xlsx",
    )
    assert describe(RuntimeError("a workbook worker failed (exit 1): ValueError: bad")) is None


def test_the_temporary_server_timeout_comes_from_the_config_then_the_environment(tmp_path: Path, monkeypatch):
    from flows.config import DEFAULT_PREFECT_SERVER_TIMEOUT, ConfigError, load_settings

    monkeypatch.delenv("RECON_PREFECT_SERVER_TIMEOUT", raising=False)
    config = tmp_path / "recon.toml"
    config.write_text("", encoding="utf-8")
    assert load_settings(config).prefect_server_timeout == DEFAULT_PREFECT_SERVER_TIMEOUT == 90
    monkeypatch.setenv("RECON_PREFECT_SERVER_TIMEOUT", "120")
    assert load_settings(config).prefect_server_timeout == 120
    config.write_text("[run]\nprefect_server_timeout = 45\n", encoding="utf-8")
    assert load_settings(config).prefect_server_timeout == 45  # the file wins
    config.write_text("[run]\nprefect_server_timeout = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run.prefect_server_timeout: must be a whole number from 1 to 3600"):
        load_settings(config)
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("RECON_PREFECT_SERVER_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match=r"^RECON_PREFECT_SERVER_TIMEOUT \(environment, for run.prefect_server_t"):
        load_settings(config)
