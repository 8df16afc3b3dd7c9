"""Shared fixtures: the sample exports, a raw/ landing folder, and one real local Prefect server per session.

The sample exports are written by the project's own code (flows/samples.py): users clone the repository alone, so
no test reads anything outside it.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_TASKS_DEFAULT_NO_CACHE", "true")


@pytest.fixture
def sample_raw(tmp_path: Path) -> Path:
    """A raw/ folder holding the sample exports (flows/samples.py: the hand-worked numbers of the README)."""
    return write_sample_raw(tmp_path / "raw")


def write_sample_raw(raw: Path) -> Path:
    """Write the four sample exports under raw/{payments,refunds,budget}; returns raw."""
    from flows.samples import write_samples

    write_samples(raw)
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
