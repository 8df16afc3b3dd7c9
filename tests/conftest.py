"""Shared fixtures: the sample exports, a raw/ landing folder, and one real local Prefect server per session.

The sample exports are written by the project's own code (flows/samples.py): users clone the repository alone, so
no test reads anything outside it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_TASKS_DEFAULT_NO_CACHE", "true")


class _CurrentStderr:
    """Whatever sys.stderr is when written to (pytest swaps it per test and per capsys)."""

    def __getattr__(self, name: str):
        return getattr(sys.stderr, name)


@pytest.fixture(autouse=True)
def _prefect_logs_to_the_current_stderr():
    """Prefect's console handlers keep the sys.stderr of the test that first configured them: a pytest capture
    stream, closed when that test ends. A later flow run then logs to a closed file, and Prefect's print patching
    turns the handler's error report into a RecursionError. Make them write to whatever stderr is current."""
    current = _CurrentStderr()
    for name, logger in [("", logging.getLogger()), *logging.Logger.manager.loggerDict.items()]:
        if (name == "" or name.startswith("prefect")) and isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                if type(handler) is logging.StreamHandler or type(handler).__name__ == "PrefectConsoleHandler":
                    handler.stream = current  # not setStream(): it flushes the old, perhaps closed, stream
                    if hasattr(handler, "console"):  # PrefectConsoleHandler writes through a rich Console
                        handler.console.file = current
    yield


@pytest.fixture
def sample_raw(tmp_path: Path) -> Path:
    """A raw/ folder holding the sample exports (flows/samples.py: the hand-worked numbers of the README)."""
    return write_sample_raw(tmp_path / "raw")


def write_sample_raw(raw: Path) -> Path:
    """Write the four sample exports under raw/{payments,refunds,budget}; returns raw."""
    from flows.demo.samples import write_samples

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
    """Records each JSON body POSTed; when the server has a ``refuse(raw, body)`` check, answers its refusal instead
    (and records the body in ``refused``), as a group robot refuses an oversized message."""

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.loads(raw)
        refusal = self.server.refuse(raw, body) if self.server.refuse else None
        (self.server.refused if refusal else self.server.received).append(body)
        self.server.raw_bodies.append(raw)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(refusal or {"errcode": 0, "errmsg": "ok"}).encode())

    def log_message(self, *args):
        pass


def _serve(refuse=None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.received, server.refused, server.raw_bodies, server.refuse = [], [], [], refuse
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def _stop(server) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_server():
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it (webhooks, group robots)."""
    server = _serve()
    yield server
    _stop(server)


def wecom_refusal(raw: bytes, body: dict) -> dict | None:
    """What the WeCom robot answers (HTTP 200) to markdown content over 4096 UTF-8 bytes, as reported from the real
    service (github.com/dromara/domain-admin/issues/82, github.com/RayWangQvQ/BiliBiliToolPro/issues/702)."""
    content = body.get("markdown", {}).get("content", "")
    if len(content.encode("utf-8")) > 4096:
        return {
            "errcode": 40058,
            "errmsg": "markdown.content exceed max length 4096. invalid Request Parameter, hint: [test], more info at"
            " https://open.work.weixin.qq.com/devtool/query?e=40058",
        }
    return None


def dingtalk_refusal(raw: bytes, body: dict) -> dict | None:
    """What the DingTalk robot answers (HTTP 200) to a request body over 20000 bytes, as reported from the real
    service (github.com/Le0nsec/SecCrawler/issues/12, github.com/timonwong/prometheus-webhook-dingtalk/issues/30)."""
    if len(raw) > 20000:
        return {"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"}
    return None


@pytest.fixture
def wecom_robot():
    """A real HTTP server on 127.0.0.1 that answers like a WeCom group robot, refusing oversized markdown."""
    server = _serve(wecom_refusal)
    yield server
    _stop(server)


@pytest.fixture
def dingtalk_robot():
    """A real HTTP server on 127.0.0.1 that answers like a DingTalk group robot, refusing oversized bodies."""
    server = _serve(dingtalk_refusal)
    yield server
    _stop(server)
