"""Alerts: evaluate the alert rules at the end of a run, keep them in `alerts`, and notify once per change.

An alert is announced when it is new, when it escalates (warning -> critical), and once when it resolves; not every
night. Each announcement is queued in `alert_outbox` per channel and delivered as one digest message per channel;
a channel that is down keeps its messages queued for the next run and never fails the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

from flows.channels import ChannelError
from flows.warehouse import sql_file

log = logging.getLogger("treasury_recon.alerts")

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2, "fatal": 3}
SEVERITY_ZH = {"info": "提示", "warning": "预警", "critical": "严重", "fatal": "严重"}
KIND_ZH = {
    "behind_plan": "落后季度用款计划",
    "carryover_lag": "结转资金支付滞后",
    "carryover_squeeze": "结转挤占",
    "exception": "数据异常",
    "run_failed": "夜间任务失败",
}
EVENT_ZH = {"new": "新增", "escalated": "升级", "resolved": "已解除"}
_ACCOUNT = re.compile(r"(?<!\d)(\d{4})\d{7,22}(\d{4})(?!\d)")


def mask_accounts(text: str) -> str:
    """Never show a full account number: 6222020200112233445 -> 6222***********3445 (15+ digit runs)."""
    return _ACCOUNT.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 8) + m.group(2), text)


@dataclass
class AlertSettings:
    behind_warning_pp: Decimal = Decimal("5")
    behind_critical_pp: Decimal = Decimal("15")
    elapsed_baseline: bool = False
    channels: list = field(default_factory=list)


def evaluate(con: duckdb.DuckDBPyConnection, as_of: dt.date, settings: AlertSettings, now: dt.datetime) -> list[dict]:
    """Update `alerts` from the candidates at as_of; queue announcements; return the events (new/escalated/resolved)."""
    con.execute("set variable as_of = cast(? as date)", [as_of])
    con.execute("set variable behind_warning_pp = ?", [str(settings.behind_warning_pp)])
    con.execute("set variable behind_critical_pp = ?", [str(settings.behind_critical_pp)])
    con.execute("set variable elapsed_baseline = ?", [settings.elapsed_baseline])
    cur = con.execute(sql_file("alerts/alert_candidates.sql"))
    names = [d[0] for d in cur.description]
    candidates = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    agencies = dict(
        con.execute(
            "select agency_code, max(agency_name) from execution_by_unit where agency_name is not null group by 1"
        ).fetchall()
    )
    existing = {
        r[0]: {"status": r[1], "severity": r[2]}
        for r in con.execute("select alert_key, status, severity from alerts where kind <> 'run_failed'").fetchall()
    }
    events = []
    seen = set()
    for c in candidates:
        key = c["alert_key"]
        seen.add(key)
        unit = agencies.get(c["agency_code"]) or c["agency_code"] or ""
        message = mask_accounts(f"{unit}：{c['detail']}")
        old = existing.get(key)
        if old is None or old["status"] == "resolved":
            con.execute("delete from alerts where alert_key = ?", [key])
            con.execute(
                "insert into alerts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, null, null, null)",
                [
                    key,
                    c["kind"],
                    c["severity"],
                    as_of,
                    c["fiscal_year"],
                    c["agency_code"],
                    c["pro_code"],
                    c["pay_cert_no"],
                    c["gap_pp"],
                    c["amount"],
                    message,
                    now,
                    now,
                ],
            )
            events.append({**c, "event": "new", "message": message, "unit": unit})
            continue
        escalated = SEVERITY_RANK[c["severity"]] > SEVERITY_RANK[old["severity"]]
        con.execute(
            "update alerts set severity = ?, as_of = ?, gap_pp = ?, amount = ?, message = ?, last_seen = ?"
            " where alert_key = ?",
            [c["severity"], as_of, c["gap_pp"], c["amount"], message, now, key],
        )
        if escalated:
            events.append({**c, "event": "escalated", "message": message, "unit": unit})
    for key, old in existing.items():
        if old["status"] == "active" and key not in seen:
            events.append(_resolve(con, key, now, as_of))
    # a successful run resolves a failed-run alert
    for (key,) in con.execute(
        "select alert_key from alerts where kind = 'run_failed' and status = 'active'"
    ).fetchall():
        events.append(_resolve(con, key, now, as_of))
    queue(con, events, settings, now)
    return events


def _resolve(con: duckdb.DuckDBPyConnection, key: str, now: dt.datetime, as_of: dt.date) -> dict:
    con.execute(
        "update alerts set status = 'resolved', resolved_at = ?, as_of = ? where alert_key = ?", [now, as_of, key]
    )
    row = con.execute(
        "select kind, severity, agency_code, pro_code, message from alerts where alert_key = ?", [key]
    ).fetchone()
    kind, severity, agency, pro, message = row
    return {
        "alert_key": key,
        "kind": kind,
        "severity": severity,
        "agency_code": agency,
        "pro_code": pro,
        "event": "resolved",
        "message": message,
    }


def queue(con: duckdb.DuckDBPyConnection, events: list[dict], settings: AlertSettings, now: dt.datetime) -> None:
    for e in events:
        title = f"[{SEVERITY_ZH[e['severity']]}]{KIND_ZH.get(e['kind'], e['kind'])}{EVENT_ZH[e['event']]}"
        for channel in settings.channels:
            con.execute(
                "insert into alert_outbox (alert_key, event, severity, channel, title, body, created_at)"
                " values (?, ?, ?, ?, ?, ?, ?)",
                [e["alert_key"], e["event"], e["severity"], channel.name, title, e["message"], now],
            )


def deliver(con: duckdb.DuckDBPyConnection, settings: AlertSettings, as_of: dt.date, now: dt.datetime) -> dict:
    """Send every undelivered announcement, one digest per channel; returns {channel: 'sent n' | error}."""
    result = {}
    for channel in settings.channels:
        pending = con.execute(
            "select rowid, alert_key, event, severity, title, body from alert_outbox"
            " where channel = ? and delivered_at is null order by created_at, alert_key",
            [channel.name],
        ).fetchall()
        if not pending:
            continue
        counts: dict[str, int] = {}
        for _, _, event, *_ in pending:
            counts[event] = counts.get(event, 0) + 1
        summary = "，".join(f"{EVENT_ZH[k]} {v} 条" for k, v in counts.items())
        title = f"【预算执行预警】截至 {as_of}：{summary}"
        body = "\n".join(f"- {t} {b}" for _, _, _, _, t, b in pending)
        events = [{"alert_key": k, "event": ev, "severity": s, "title": t, "text": b} for _, k, ev, s, t, b in pending]
        ids = [r[0] for r in pending]
        try:
            channel.send(title, body, events)
        except ChannelError as e:
            log.warning("alert channel %s: %s (kept for the next run)", channel.name, e)
            con.execute(
                "update alert_outbox set attempts = attempts + 1, last_error = ? where rowid in"
                " (select unnest(?::bigint[]))",
                [str(e), ids],
            )
            result[channel.name] = f"failed: {e}"
            continue
        con.execute(
            "update alert_outbox set attempts = attempts + 1, delivered_at = ?, last_error = null where rowid in"
            " (select unnest(?::bigint[]))",
            [now, ids],
        )
        keys = sorted({r[1] for r in pending})
        con.execute(
            "update alerts set notified_at = ?, notified_severity = severity where alert_key in"
            " (select unnest(?::varchar[]))",
            [now, keys],
        )
        result[channel.name] = f"sent {len(pending)}"
    return result


def raise_and_notify(con: duckdb.DuckDBPyConnection, as_of: dt.date, settings: AlertSettings) -> dict:
    now = dt.datetime.now(dt.UTC)
    events = evaluate(con, as_of, settings, now)
    delivery = deliver(con, settings, as_of, now)
    active = con.execute("select count(*) from alerts where status = 'active'").fetchone()[0]
    return {"events": len(events), "active": active, "delivery": delivery}


def record_run_failure(con: duckdb.DuckDBPyConnection, as_of: dt.date, error: str, settings: AlertSettings) -> dict:
    """A failed run: one run_failed alert (key per day), announced once, delivered now or on the next run."""
    now = dt.datetime.now(dt.UTC)
    key = f"run_failed|{as_of}"
    message = mask_accounts(f"treasury-recon 夜间任务失败（截至 {as_of}）：{error}"[:2000])
    row = con.execute("select status from alerts where alert_key = ?", [key]).fetchone()
    if row is None or row[0] == "resolved":
        con.execute("delete from alerts where alert_key = ?", [key])
        con.execute(
            "insert into alerts values (?, 'run_failed', 'critical', ?, ?, null, null, null, null, null, ?, 'active',"
            " ?, ?, null, null, null)",
            [key, as_of, as_of.year, message, now, now],
        )
        queue(
            con,
            [{"alert_key": key, "kind": "run_failed", "severity": "critical", "event": "new", "message": message}],
            settings,
            now,
        )
    else:
        con.execute("update alerts set last_seen = ?, message = ? where alert_key = ?", [now, message, key])
    return deliver(con, settings, as_of, now)
