"""Delivery is at-least-once, and every message says which delivery it is (flows/alerts/channels.py): a run killed
right after the receiver answered, a receiver that answers after the timeout, and a delivery that is repeated over
the same unsent outbox rows all send the message again with the same delivery id (and the same event ids); other
announcements get other ids. Real HTTP receivers and a real SMTP server on 127.0.0.1, a real DuckDB file, a real
process killed with SIGKILL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flows.alerts import evaluate
from flows.alerts.channels import EmailChannel, RobotChannel, WebhookChannel
from flows.build import build_night
from flows.config import AlertSettings, Settings
from flows.warehouse import db
from tests import ROOT

JUNE = dt.date(2025, 6, 30)
ID = r"[0-9a-f]{32}"


class Receiver(BaseHTTPRequestHandler):
    """Records every POST (path, headers, JSON body) before answering 200; ``hang`` seconds of silence first for
    the first ``hang_times`` requests; ``kill_pid``: SIGKILL that process right after answering."""

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        server.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(raw)})
        if server.hang_times > 0:
            server.hang_times -= 1
            time.sleep(server.hang)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')
            self.wfile.flush()
        except OSError:  # the sender gave up waiting
            return
        if server.kill_pid:
            os.kill(server.kill_pid, signal.SIGKILL)
            server.kill_pid = None

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.hang, server.hang_times, server.kill_pid = [], 0.0, 0, None
    server.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def run(raw: Path, wh: Path, settings: AlertSettings, as_of: dt.date = JUNE) -> dict:
    return build_night(wh, as_of, raw_dir=raw, settings=Settings(alerts=settings)).alerts


def query(wh: Path, sql: str, params=None):
    with db.read_only(wh) as con:
        return con.execute(sql, params or []).fetchall()


def ids(message: dict) -> tuple[str, list[str]]:
    """A webhook message's delivery id (the same in the body and both headers) and its events' ids."""
    body, headers = message["body"], message["headers"]
    assert headers["Idempotency-Key"] == headers["X-Recon-Delivery-Id"] == body["delivery_id"]
    return body["delivery_id"], [e["event_id"] for e in body["events"]]


CHILD = """
import datetime as dt, sys
from pathlib import Path
from flows.alerts.channels import WebhookChannel
from flows.build import build_night
from flows.config import AlertSettings, Settings
raw, wh, url = sys.argv[1:]
hook = WebhookChannel(name="hook", url=url)
build_night(Path(wh), dt.date(2025, 6, 30), raw_dir=Path(raw), settings=Settings(alerts=AlertSettings(channels=[hook])))
print("published")
"""


def test_a_run_killed_after_the_receiver_answered_resends_with_the_same_id(sample_raw, tmp_path, receiver):
    wh = tmp_path / "w.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(sample_raw), str(wh), receiver.url + "/hook"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    receiver.kill_pid = child.pid  # killed right after the receiver answers 200
    out, _ = child.communicate(timeout=240)
    assert child.returncode == -signal.SIGKILL and b"published" not in out
    assert not wh.exists()  # the killed run's private copy was never swapped in
    (first,) = receiver.received
    assert len(first["body"]["events"]) == 5

    result = run(sample_raw, wh, AlertSettings(channels=[WebhookChannel(name="hook", url=receiver.url + "/hook")]))
    assert result["delivery"] == {"hook": "sent 5"}
    _, second = receiver.received
    assert ids(second) == ids(first)
    delivery, events = ids(second)
    assert len(set(events)) == 5
    # the outbox records what the receiver was sent
    assert query(wh, "select distinct delivery_id from alert_outbox") == [(delivery,)]
    assert sorted(r[0] for r in query(wh, "select event_id from alert_outbox")) == sorted(events)


def test_a_receiver_that_answers_after_the_timeout_gets_the_same_id_again(sample_raw, tmp_path, receiver):
    receiver.hang, receiver.hang_times = 3.0, 1
    hook = WebhookChannel(name="hook", url=receiver.url + "/hook", timeout=1)
    wh = tmp_path / "w.duckdb"
    result = run(sample_raw, wh, AlertSettings(channels=[hook]))
    assert result["delivery"]["hook"].startswith("failed"), result
    (first,) = receiver.received  # it got the message, but too late for the sender
    assert query(wh, "select count(*), count(distinct delivery_id) from alert_outbox where delivered_at is null") == [
        (5, 1)
    ]
    result = run(sample_raw, wh, AlertSettings(channels=[hook]))
    assert result["delivery"] == {"hook": "sent 5"}
    _, second = receiver.received
    assert ids(second) == ids(first)
    assert query(wh, "select distinct delivery_id from alert_outbox") == [(ids(first)[0],)]
    result = run(sample_raw, wh, AlertSettings(channels=[hook]))  # delivered: not sent a third time
    assert result["delivery"] == {"hook": "nothing new"} and len(receiver.received) == 2


def test_every_channel_repeats_its_id_over_the_same_unsent_rows(sample_raw, tmp_path, receiver, smtp_server):
    """Webhook, WeCom and DingTalk robots and email: the same outbox rows delivered twice (the first delivery in a
    private copy that is thrown away, as by a killed run; the second in a real night) give the same id per channel,
    in each channel's own place; the four channels' ids differ."""

    def channels(up: bool):
        base = receiver.url if up else "http://127.0.0.1:9"
        return [
            WebhookChannel(name="hook", url=base + "/hook", timeout=2),
            RobotChannel(name="wecom", flavor="wecom", url=base + "/wecom", timeout=2),
            RobotChannel(name="ding", flavor="dingtalk", url=base + "/ding", timeout=2),
            EmailChannel(name="mail", port=smtp_server.port if up else 9, to=["finance@example.org"], timeout=2),
        ]

    wh = tmp_path / "w.duckdb"
    result = run(sample_raw, wh, AlertSettings(channels=channels(up=False)))  # every channel down: all queued
    assert all(v.startswith("failed") for v in result["delivery"].values()), result
    assert query(wh, "select channel, count(*) from alert_outbox where delivered_at is null group by 1 order by 1") == [
        ("ding", 5),
        ("hook", 5),
        ("mail", 5),
        ("wecom", 5),
    ]
    live = AlertSettings(channels=channels(up=True))
    build = db.Build(wh)
    try:
        with build.transaction() as con:
            assert evaluate.deliver(con, live, JUNE, dt.datetime.now(dt.UTC)) == dict.fromkeys(
                ("hook", "wecom", "ding", "mail"), "sent 5"
            )
    finally:
        build.abandon()  # never swapped in: the warehouse still has the 20 rows unsent
    assert query(wh, "select count(*) from alert_outbox where delivered_at is null") == [(20,)]
    result = run(sample_raw, wh, live)
    assert result["delivery"] == dict.fromkeys(("hook", "wecom", "ding", "mail"), "sent 5")

    by_path: dict[str, list[dict]] = {}
    for m in receiver.received:
        by_path.setdefault(m["path"], []).append(m)
    assert sorted(by_path) == ["/ding", "/hook", "/wecom"] and all(len(v) == 2 for v in by_path.values())
    found = {}
    hook1, hook2 = by_path["/hook"]
    assert ids(hook1) == ids(hook2)
    found["hook"] = ids(hook1)[0]
    for name, path, text in (("wecom", "/wecom", ("content",)), ("ding", "/ding", ("text",))):
        sent = []
        for m in by_path[path]:
            delivery = m["headers"]["X-Recon-Delivery-Id"]
            assert m["headers"]["Idempotency-Key"] == delivery
            assert m["body"]["markdown"][text[0]].endswith(f"\n\n> 投递编号 {delivery}")  # people read robots
            sent.append(delivery)
        assert sent[0] == sent[1]
        found[name] = sent[0]
    mail1, mail2 = smtp_server.messages
    assert mail1["Message-ID"] == mail2["Message-ID"] == f"<{mail1['X-Recon-Delivery-Id']}@localhost>"
    assert mail1["X-Recon-Delivery-Id"] == mail2["X-Recon-Delivery-Id"]
    found["mail"] = mail1["X-Recon-Delivery-Id"]
    assert len(set(found.values())) == 4
    assert query(wh, "select channel, any_value(delivery_id) from alert_outbox group by 1 order by 1") == sorted(
        found.items()
    )


def test_different_announcements_get_different_ids(sample_raw, tmp_path, receiver):
    """New alerts, a resolution, the same alert raised again, an escalation: each message has its own id; an alert
    that resolves and comes back is a new announcement (a new event id), not a repeat of the first."""
    hook = WebhookChannel(name="hook", url=receiver.url + "/hook")
    wh = tmp_path / "w.duckdb"
    run(sample_raw, wh, AlertSettings(channels=[hook]))
    run(sample_raw, wh, AlertSettings(behind_warning_pp=Decimal("12.6"), channels=[hook]))  # 250002 resolves
    run(sample_raw, wh, AlertSettings(channels=[hook]))  # and is raised again
    run(sample_raw, wh, AlertSettings(behind_critical_pp=Decimal("12.5"), channels=[hook]))  # and escalates
    messages = receiver.received
    assert [[(e["event"], e["alert_key"][-6:]) for e in m["body"]["events"]] for m in messages[1:]] == [
        [("resolved", "250002")],
        [("new", "250002")],
        [("escalated", "250002")],
    ]
    deliveries = [ids(m)[0] for m in messages]
    assert len(set(deliveries)) == 4
    first_new = {e["alert_key"]: e["event_id"] for e in messages[0]["body"]["events"]}
    (again,) = messages[2]["body"]["events"]
    assert again["event_id"] != first_new[again["alert_key"]]
    assert all(len(e) == 32 for e in [*deliveries, *first_new.values()])
