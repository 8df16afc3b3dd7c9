"""Alerts end to end: the samples as of 2025-06-30 raise exactly the README's alerts, delivered to a real SMTP
server and real HTTP servers on 127.0.0.1; a second run sends nothing; an escalation sends one message; a channel
that is down keeps its alerts for the next run."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from flows import alerts, pipeline, warehouse
from flows.alerts import AlertSettings, mask_accounts
from flows.channels import EmailChannel, RobotChannel, WebhookChannel

JUNE = dt.date(2025, 6, 30)


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    box = Mailbox()
    with socket.socket() as s:  # a free port on loopback (aiosmtpd checks readiness on the port it is given)
        s.bind(("127.0.0.1", 0))
        box.port = s.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


def run(raw: Path, wh: Path, as_of: dt.date, settings: AlertSettings) -> dict:
    pipeline.run_plain(raw, wh, as_of)
    build = warehouse.Build(wh)
    try:
        with build.transaction() as con:
            result = alerts.raise_and_notify(con, as_of, settings)
        build.publish()
    finally:
        build.abandon()
    return result


def query(wh: Path, sql: str):
    with warehouse.read_only(wh) as con:
        return con.execute(sql).fetchall()


def test_sample_alerts_as_of_june_are_exactly_the_readme_ones(sample_raw, tmp_path, http_server, smtp_server):
    hook = WebhookChannel(name="hook", url=f"http://127.0.0.1:{http_server.server_port}/alerts")
    robot = RobotChannel(name="wecom", flavor="wecom", url=f"http://127.0.0.1:{http_server.server_port}/robot")
    mail = EmailChannel(name="mail", host="127.0.0.1", port=smtp_server.port, to=["finance@example.org"])
    settings = AlertSettings(channels=[hook, robot, mail])
    wh = tmp_path / "w.duckdb"
    result = run(sample_raw, wh, JUNE, settings)
    assert result["delivery"] == {"hook": "sent 5", "wecom": "sent 5", "mail": "sent 5"}
    rows = query(wh, "select kind, pro_code, severity, gap_pp, amount, pay_cert_no from alerts order by 1, 2")
    assert rows == [
        ("behind_plan", "990001250001", "critical", Decimal("15.25"), Decimal("183000.00"), None),
        ("behind_plan", "990001250002", "warning", Decimal("12.50"), Decimal("50000.00"), None),
        ("behind_plan", "990001250003", "critical", Decimal("18.33"), Decimal("33000.00"), None),
        ("carryover_lag", "990001250001", "warning", None, Decimal("180000.00"), None),
        ("carryover_squeeze", "990001250001", "warning", None, Decimal("240000.00"), "PV2025000107"),
    ]
    assert query(wh, "select count(*) from alerts where notified_at is null") == [(0,)]
    # one digest per channel, in Chinese, naming unit, project, gap, plan and paid
    webhook, robot_msg = http_server.received
    assert len(webhook["events"]) == 5
    text = webhook["text"]
    assert "示例县公路事务中心" in text and "农村公路安保工程" in text and "15.25 个百分点" in text
    assert "累计计划 600000.00 元" in text and "实际支出 417000.00 元" in text
    assert robot_msg["msgtype"] == "markdown" and "落后季度用款计划" in robot_msg["markdown"]["content"]
    (email,) = smtp_server.messages
    assert email.rcpt_tos == ["finance@example.org"]
    parsed = message_from_bytes(email.content, policy=default_policy)
    assert "预算执行预警" in parsed["Subject"] and "treasury-recon@localhost" in parsed["From"]
    body = parsed.get_content()
    assert "养护道班运行经费" in body and "18.33 个百分点" in body

    # the same data again: nothing new is sent
    http_server.received.clear()
    result = run(sample_raw, wh, JUNE, settings)
    assert result["events"] == 0 and result["delivery"] == {}
    assert http_server.received == [] and len(smtp_server.messages) == 1


def test_escalation_sends_one_message_and_resolution_one_more(sample_raw, tmp_path, http_server):
    hook = WebhookChannel(name="hook", url=f"http://127.0.0.1:{http_server.server_port}/")
    wh = tmp_path / "w.duckdb"
    run(sample_raw, wh, JUNE, AlertSettings(channels=[hook]))
    http_server.received.clear()
    # a stricter critical threshold: 990001250002 (12.50 pp) escalates from warning to critical
    stricter = AlertSettings(behind_critical_pp=Decimal("12.5"), channels=[hook])
    result = run(sample_raw, wh, JUNE, stricter)
    assert result["events"] == 1
    (message,) = http_server.received
    assert [e["event"] for e in message["events"]] == ["escalated"]
    assert "990001250002" in message["text"]
    # a threshold at exactly 12.50 is crossed (judged on the exact value, >=); a looser one resolves nothing else
    http_server.received.clear()
    looser = AlertSettings(behind_warning_pp=Decimal("12.6"), channels=[hook])
    result = run(sample_raw, wh, JUNE, looser)
    (message,) = http_server.received
    assert [(e["event"], e["alert_key"]) for e in message["events"]] == [
        ("resolved", "behind_plan|2025|990001|990001250002")
    ]


def test_a_channel_that_is_down_keeps_the_alerts_for_the_next_run(sample_raw, tmp_path, http_server):
    wh = tmp_path / "w.duckdb"
    down = WebhookChannel(name="hook", url="http://127.0.0.1:9/closed", timeout=2)
    result = run(sample_raw, wh, JUNE, AlertSettings(channels=[down]))
    assert result["delivery"]["hook"].startswith("failed")
    assert query(wh, "select count(*) from alert_outbox where delivered_at is null") == [(5,)]
    up = WebhookChannel(name="hook", url=f"http://127.0.0.1:{http_server.server_port}/")
    result = run(sample_raw, wh, JUNE, AlertSettings(channels=[up]))
    assert result == {"events": 0, "active": 5, "delivery": {"hook": "sent 5"}}
    assert len(http_server.received[0]["events"]) == 5


def test_failed_run_alert_is_sent_and_resolved_by_the_next_good_run(sample_raw, tmp_path, http_server):
    hook = WebhookChannel(name="hook", url=f"http://127.0.0.1:{http_server.server_port}/")
    settings = AlertSettings(channels=[hook])
    wh = tmp_path / "w.duckdb"
    run(sample_raw, wh, JUNE, settings)
    http_server.received.clear()
    build = warehouse.Build(wh)
    with build.transaction() as con:
        alerts.record_run_failure(con, JUNE, "disk full at 6222020200112233445", settings)
    build.publish()
    (message,) = http_server.received
    assert "夜间任务失败" in message["text"] and "6222020200112233445" not in message["text"]
    http_server.received.clear()
    run(sample_raw, wh, JUNE, settings)
    (message,) = http_server.received
    assert [e["event"] for e in message["events"]] == ["resolved"]


def test_account_numbers_are_masked():
    assert mask_accounts("付 6222020200112233445 款") == "付 6222***********3445 款"
    assert mask_accounts("项目 990001250001 凭证 PV2025000107") == "项目 990001250001 凭证 PV2025000107"


def test_samples_as_of_year_end_raise_the_unbudgeted_exception(sample_raw, tmp_path):
    wh = tmp_path / "w.duckdb"
    run(sample_raw, wh, dt.date(2025, 12, 31), AlertSettings())
    keys = [r[0] for r in query(wh, "select alert_key from alerts where kind = 'exception'")]
    assert keys == ["exception|2025|990001|990001250009|unbudgeted:PV2025000109"]
