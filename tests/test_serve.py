"""The nightly deployment against a real local Prefect server: schedule (cron and timezone), one triggered run that
completes and updates the warehouse."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows.warehouse import db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def prefect_api(tmp_path: Path):
    """`prefect server start` on a free loopback port with its own database; yields its API URL."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"

    def healthy():
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return server.poll() is not None and pytest.fail((tmp_path / "server.log").read_text())

    try:
        wait_for(healthy, 90, "the Prefect server")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_registers_the_nightly_schedule_and_runs_it(prefect_api: str, sample_raw: Path, tmp_path: Path):
    wh = tmp_path / "wh" / "recon.duckdb"
    config = tmp_path / "recon.toml"
    config.write_text(
        f'[paths]\nraw = "{sample_raw}"\nwarehouse = "{wh}"\nout = "{tmp_path / "out"}"\n\n'
        '[schedule]\ncron = "0 2 * * *"\ntimezone = "Asia/Shanghai"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path / "client-home")}
    serve_log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)],
        env=env,
        stdout=serve_log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parents[1],
    )
    try:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def deployment():
            async with get_client() as client:
                try:
                    return await client.read_deployment_by_name("treasury-recon/nightly")
                except Exception:
                    return None

        with temporary_settings({PREFECT_API_URL: prefect_api}):
            dep = wait_for(lambda: asyncio.run(deployment()), 90, "the nightly deployment")
            (schedule,) = dep.schedules
            assert schedule.schedule.cron == "0 2 * * *"
            assert schedule.schedule.timezone == "Asia/Shanghai"
            assert schedule.active

            from prefect.deployments import run_deployment

            flow_run = run_deployment("treasury-recon/nightly", parameters={"as_of": "2025-06-30"}, timeout=180)
            assert flow_run.state.is_completed(), (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        serving.terminate()
        serving.wait(timeout=30)
    with db.read_only(wh) as con:
        assert con.execute("select count(*) from source_files").fetchone() == (4,)
        assert (
            con.execute("select execution_rate_pct from execution_by_unit where as_of = '2025-06-30'").fetchone()[0]
            is not None
        )
        assert con.execute("select count(*) from alerts where status = 'active'").fetchone() == (5,)
