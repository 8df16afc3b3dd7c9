"""Alerts end to end: the samples as of 2025-06-30 raise exactly the README's alerts, delivered to a real SMTP
server and real HTTP servers on 127.0.0.1; a second run sends nothing; an escalation sends one message; a channel
that is down keeps its alerts for the next run."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from flows.alerts import evaluate
from flows.alerts.channels import EmailChannel, RobotChannel, WebhookChannel
from flows.alerts.evaluate import mask_accounts
from flows.build import build_night
from flows.cli import format_summary
from flows.config import AlertSettings, Settings
from flows.demo.generate import generate
from flows.warehouse import db
from tests.builders import PAYMENT_HEADER, payment_row, write_csv

JUNE = dt.date(2025, 6, 30)


def run(raw: Path, wh: Path, as_of: dt.date, settings: AlertSettings) -> dict:
    """A night's build with these alert settings; returns what raise_and_notify reported."""
    return build_night(wh, as_of, raw_dir=raw, settings=Settings(alerts=settings)).alerts


def query(wh: Path, sql: str):
    with db.read_only(wh) as con:
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
    (email,) = smtp_server.envelopes
    assert email.rcpt_tos == ["finance@example.org"]
    parsed = message_from_bytes(email.content, policy=default_policy)
    assert "预算执行预警" in parsed["Subject"] and "treasury-recon@localhost" in parsed["From"]
    body = parsed.get_content()
    assert "养护道班运行经费" in body and "18.33 个百分点" in body

    # the same data again: nothing new is sent
    http_server.received.clear()
    result = run(sample_raw, wh, JUNE, settings)
    assert result["events"] == 0
    assert result["delivery"] == {"hook": "nothing new", "wecom": "nothing new", "mail": "nothing new"}
    assert http_server.received == [] and len(smtp_server.envelopes) == 1


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
    build = db.Build(wh)
    with build.transaction() as con:
        evaluate.record_run_failure(con, JUNE, "disk full at 6222020200112233445", settings)
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


DEC = dt.date(2025, 12, 31)
OCT = dt.date(2025, 10, 31)
FULL_ACCOUNT = re.compile(r"\d{15,}")


def test_robot_digests_fit_the_robots_limits_end_to_end(tmp_path, wecom_robot, dingtalk_robot, smtp_server):
    """Hundreds of alerts (generated exports, a real DuckDB file): each robot gets one message within its limit, the
    most severe and largest first, then "另有 N 条"; the robots accept them and nothing stays queued. Email carries
    the full list as a CSV attachment."""
    raw = tmp_path / "raw"
    generate(raw, payments=20_000, units=10, projects_per_unit=5, split="none", bad_rows=0)
    wecom = RobotChannel(name="wecom", flavor="wecom", url=f"http://127.0.0.1:{wecom_robot.server_port}/")
    ding = RobotChannel(name="ding", flavor="dingtalk", url=f"http://127.0.0.1:{dingtalk_robot.server_port}/")
    mail = EmailChannel(name="mail", host="127.0.0.1", port=smtp_server.port, to=["finance@example.org"])
    wh = tmp_path / "w.duckdb"
    result = run(raw, wh, DEC, AlertSettings(channels=[wecom, ding, mail]))
    n = result["active"]
    assert n > 150
    assert wecom_robot.refused == [] and dingtalk_robot.refused == []
    assert all(result["delivery"][c].startswith(f"sent {n}") for c in ("wecom", "ding", "mail")), result
    assert query(wh, "select count(*) from alert_outbox where delivered_at is null") == [(0,)]
    assert query(wh, "select count(*) from alerts where notified_at is null") == [(0,)]
    (w,) = wecom_robot.received
    content = w["markdown"]["content"]
    assert len(content.encode("utf-8")) <= 4096
    (d,) = dingtalk_robot.received
    assert len(dingtalk_robot.raw_bodies[0]) <= 20000 and len(d["markdown"]["text"]) > len(content)
    for text in (content, d["markdown"]["text"]):
        assert not FULL_ACCOUNT.search(text)
        shown = [line for line in text.splitlines() if line.startswith("- ")]
        assert 5 < len(shown) < n
        *_, more, blank, delivery = text.splitlines()  # the robots' last line is the delivery id
        assert more == f"另有 {n - len(shown)} 条，详见 预算执行工作簿（异常明细）或 alerts 表"
        assert blank == "" and re.fullmatch(r"> 投递编号 [0-9a-f]{32}", delivery)
        assert all("[严重]数据异常" in line for line in shown[:3])  # fatal exceptions first
    # most severe first, then the largest amount
    ranked = query(
        wh,
        "select message from alerts order by case severity when 'fatal' then 3 when 'critical' then 2"
        " when 'warning' then 1 else 0 end desc, amount desc nulls last, alert_key limit 3",
    )
    assert [m for (m,) in ranked] == [line.split(" ", 2)[2] for line in content.splitlines()[1:4]]
    (email,) = smtp_server.envelopes
    parsed = message_from_bytes(email.content, policy=default_policy)
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "预警明细.csv"
    data = attachment.get_payload(decode=True)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == n + 1 and not FULL_ACCOUNT.search(data.decode("utf-8-sig"))


def test_a_single_event_longer_than_the_limit_is_itself_cut():
    events = [{"alert_key": "k", "severity": "fatal", "title": "[严重]数据异常新增", "text": "长" * 5000}]
    digest = evaluate.build_digest(
        "【预算执行预警】", events, 4096, lambda title, body: len(f"### {title}\n{body}".encode())
    )
    assert len(f"### {digest.title}\n{digest.body}".encode()) <= 4096
    assert digest.body.startswith("- [严重]数据异常新增 长") and digest.body.endswith("…")
    assert digest.shown == 1 and "另有" not in digest.body


def test_a_backfill_leaves_the_alerts_alone(sample_raw, tmp_path, http_server):
    hook = WebhookChannel(name="hook", url=f"http://127.0.0.1:{http_server.server_port}/")
    settings = AlertSettings(channels=[hook])
    # a November payment to a project without a budget: an alert as of 12-31 that does not hold as of 10-31
    november = payment_row("PV2025009001", "2025-11-15", "500.00", agency="990001", pro="990001259999")
    write_csv(sample_raw / "payments" / "payments_2025_11.csv", [PAYMENT_HEADER, november])
    wh = tmp_path / "w.duckdb"
    run(sample_raw, wh, DEC, settings)
    assert query(wh, "select count(*) from alerts where pay_cert_no = 'unbudgeted:PV2025009001'") == [(1,)]
    before = query(wh, "select * from alerts order by alert_key")
    http_server.received.clear()
    result = run(sample_raw, wh, OCT, settings)  # an older as-of date: marts only
    assert result.get("backfill") == {"as_of": OCT, "latest": DEC}, result
    assert result["events"] == 0 and result["delivery"] == {}
    assert query(wh, "select * from alerts order by alert_key") == before
    assert http_server.received == []
    assert query(wh, "select count(*) from execution_by_unit where as_of = '2025-10-31'") == [(1,)]
    summary = {"run_id": "r", "files_new": 0, "files_skipped": 4, "files_rejected": 0, "rows_rejected": 0}
    text = format_summary(Settings(warehouse=wh), {**summary, "alerts": result}, OCT)
    assert "alerts: backfill as of 2025-10-31: alerts unchanged, latest is 2025-12-31" in text
    # the latest date again: nothing spurious
    result = run(sample_raw, wh, DEC, settings)
    assert result["events"] == 0 and http_server.received == []
    assert query(wh, "select * exclude (last_seen) from alerts order by alert_key") == [r[:13] + r[14:] for r in before]


def test_a_channel_added_later_gets_the_active_alerts_once(sample_raw, tmp_path, http_server):
    wh = tmp_path / "w.duckdb"
    summary = {"run_id": "r", "files_new": 0, "files_skipped": 4, "files_rejected": 0, "rows_rejected": 0}
    result = run(sample_raw, wh, JUNE, AlertSettings())
    assert result["delivery"] == {}
    assert "(no channel configured)" in format_summary(Settings(warehouse=wh), {**summary, "alerts": result}, JUNE)
    hook = WebhookChannel(name="hook", url=f"http://127.0.0.1:{http_server.server_port}/")
    result = run(sample_raw, wh, JUNE, AlertSettings(channels=[hook]))
    assert result["delivery"] == {"hook": "sent 5"}
    (message,) = http_server.received
    assert len(message["events"]) == 5 and {e["event"] for e in message["events"]} == {"active"}
    assert "未解除 5 条" in message["title"]
    http_server.received.clear()
    result = run(sample_raw, wh, JUNE, AlertSettings(channels=[hook]))
    assert result["delivery"] == {"hook": "nothing new"} and http_server.received == []
    text = format_summary(Settings(warehouse=wh), {**summary, "alerts": result}, JUNE)
    assert "(hook: nothing new)" in text and "no channel configured" not in text


def test_a_resolved_alert_keeps_the_date_it_last_held(sample_raw, tmp_path):
    """A refund notice loaded the night before its voucher's payment export: refund_orphan on night 1, resolved on
    night 2 with as_of still night 1; a warehouse rebuilt from scratch at night 2 agrees on what held then."""
    night1, night2 = dt.date(2025, 8, 2), dt.date(2025, 8, 3)
    late = sample_raw / "payments" / "payments_2025_01-06.xlsx"
    aside = tmp_path / "aside.xlsx"
    late.rename(aside)
    wh = tmp_path / "w.duckdb"
    run(sample_raw, wh, night1, AlertSettings())
    orphan = (
        "select alert_key, status, as_of, resolved_at is not null from alerts"
        " where pay_cert_no = 'refund_orphan:PV2025000104'"
    )
    ((key, status, as_of, resolved),) = query(wh, orphan)
    assert (status, as_of, resolved) == ("active", night1, False)
    aside.rename(late)
    run(sample_raw, wh, night2, AlertSettings())
    assert query(wh, orphan) == [(key, "resolved", night1, True)]
    scratch = tmp_path / "scratch.duckdb"
    run(sample_raw, scratch, night2, AlertSettings())
    assert query(scratch, orphan) == []
    held = "select alert_key, kind, severity from alerts where as_of = '2025-08-03' order by 1"
    assert query(wh, held) == query(scratch, held)


def test_findings_that_share_an_alert_key_are_one_alert(tmp_path):
    """Two refunds of one unknown voucher are two refund_orphan findings with one alert key: one alert (amounts
    summed, both details), not a primary-key violation that fails the night."""
    raw = tmp_path / "raw"
    write_csv(raw / "payments" / "p.csv", [PAYMENT_HEADER, payment_row("PV1", "2025-01-05", "10.00")])
    write_csv(
        raw / "refunds" / "r.csv",
        [
            ["退回凭证号", "原支付凭证号", "退回日期", "退回金额", "退回原因"],
            ["RF1", "PV9", "2025-02-01", "1.00", "多付"],
            ["RF2", "PV9", "2025-02-02", "2.00", "多付"],
        ],
    )
    wh = tmp_path / "w.duckdb"
    run(raw, wh, JUNE, AlertSettings())
    assert query(wh, "select count(*) from exceptions where kind = 'refund_orphan'") == [(2,)]
    ((key, amount, message),) = query(
        wh, "select alert_key, amount, message from alerts where pay_cert_no like 'refund_orphan:%'"
    )
    assert (key, amount) == ("exception|2025|refund_orphan:PV9", Decimal("3.00"))
    assert "RF1" in message and "RF2" in message
