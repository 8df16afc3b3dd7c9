"""Shared fixtures: the sample exports, a raw/ landing folder, and one real local Prefect server per session."""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SHARED_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
SAMPLE_FILES = {
    "payments": ["payments_2025_01-06.xlsx", "payments_2025_06-07.csv"],
    "refunds": ["refunds_2025.xlsx"],
    "budget": ["budget_2025.xlsx"],
}

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_TASKS_DEFAULT_NO_CACHE", "true")


@pytest.fixture
def sample_raw(tmp_path: Path) -> Path:
    """A raw/ folder holding the hand-worked sample exports of ../shared/samples."""
    if not SHARED_SAMPLES.is_dir():
        pytest.fail(f"the shared samples are missing: {SHARED_SAMPLES}")
    raw = tmp_path / "raw"
    for kind, names in SAMPLE_FILES.items():
        (raw / kind).mkdir(parents=True)
        for name in names:
            shutil.copy(SHARED_SAMPLES / name, raw / kind / name)
    return raw


@pytest.fixture(scope="session")
def prefect_server():
    """A real local Prefect server (temporary database) for every flow run of the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


class Recorder(BaseHTTPRequestHandler):
    received: list  # set per server

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it (webhooks, group robots)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
