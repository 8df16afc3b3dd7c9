"""Alerts: evaluate the alert rules at the end of a run, keep them in `alerts`, and notify once per change.

An alert is announced when it is new, when it escalates (warning -> critical), and once when it resolves; not every
night. Each announcement is queued in `alert_outbox` per channel and delivered as one digest message per channel;
a channel that is down keeps its messages queued for the next run and never fails the run. A channel is told every
active alert once: one configured after an alert was raised gets it (event `active`, 未解除) on its first run.

A digest always fits its channel's size limit (channels.py): most severe first, then the largest amount, then by
key; lines are added while they fit, then "另有 N 条，详见 …". When the channel accepts it, every event it stands
for is delivered (the ones not listed are in the alerts table and the workbooks' 异常明细 sheet; email attaches the
full list as CSV).

Delivery is at-least-once: a run killed after a receiver answered (its warehouse is never swapped in, so the
outbox still holds the announcements) and a receiver that answers after the timeout both get the message again on
the next run. Each message and each event in it carry an id that a repeat keeps (channels.delivery_id, event_id):
receivers de-duplicate on them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from flows.alerts.channels import ChannelError, cut_to_fit, delivery_id, event_id
from flows.config import AlertSettings
from flows.formatting import mask_accounts
from flows.warehouse import sqlgraph
from flows.warehouse.db import first_row, sql_file

log = logging.getLogger("treasury_recon.alerts")

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2, "fatal": 3}
SEVERITY_ZH = sqlgraph.labels("alert_severity")  # sql/rules/labels.csv, also the warehouse table ref_labels
KIND_ZH = sqlgraph.labels("alert_kind")
EVENT_ZH = {"new": "新增", "escalated": "升级", "resolved": "已解除", "active": "未解除"}
MORE_ZH = "另有 {n} 条，详见 预算执行工作簿（异常明细）或 alerts 表"


def _rank_sql(column: str) -> str:
    return "case " + column + " " + " ".join(f"when '{k}' then {v}" for k, v in SEVERITY_RANK.items()) + " end"


def evaluate(con: duckdb.DuckDBPyConnection, as_of: dt.date, settings: AlertSettings, now: dt.datetime) -> list[dict]:
    """Update `alerts` from the candidates at as_of; queue announcements; return the events (new/escalated/resolved).

    Set-based: a county's first run can raise tens of thousands of alerts (one per fatal exception and squeezing
    voucher), and a statement per alert cost ~1 ms each (11,256 alerts: 24.6 s; now well under a second).
    """
    con.execute("set variable as_of = cast(? as date)", [as_of])
    con.execute("set variable behind_warning_pp = ?", [str(settings.behind_warning_pp)])
    con.execute("set variable behind_critical_pp = ?", [str(settings.behind_critical_pp)])
    con.execute("set variable elapsed_baseline = ?", [settings.elapsed_baseline])
    con.execute("create or replace temp table alert_candidates as " + sql_file("alerts/alert_candidates.sql"))
    # the message: the unit's name and the finding, account numbers masked (in Python: the mask keeps the length)
    rows = con.execute(
        "select c.alert_key, coalesce(u.agency_name, c.agency_code, ''), c.detail from alert_candidates as c"
        " left join (select agency_code, max(agency_name) as agency_name from execution_by_unit"
        " where agency_name is not null group by 1) as u on c.agency_code = u.agency_code"
    ).fetchall()
    messages = pa.table(
        {
            "alert_key": pa.array([r[0] for r in rows], pa.string()),
            "unit": pa.array([r[1] for r in rows], pa.string()),
            "message": pa.array([mask_accounts(f"{r[1]}：{r[2]}") for r in rows], pa.string()),
        }
    )
    con.register("alert_messages", messages)
    try:
        con.execute(
            "create or replace temp table alert_changes as select c.*, m.unit, m.message,"
            " case when a.alert_key is null or a.status = 'resolved' then 'new'"
            f" when {_rank_sql('c.severity')} > {_rank_sql('a.severity')} then 'escalated' end as event"
            " from alert_candidates as c inner join alert_messages as m on c.alert_key = m.alert_key"
            " left join alerts as a on c.alert_key = a.alert_key and a.kind <> 'run_failed'"
        )
    finally:
        con.unregister("alert_messages")
    gone = [
        r[0]
        for r in con.execute(
            "select alert_key from alerts where status = 'active' and kind <> 'run_failed'"
            " and alert_key not in (select alert_key from alert_candidates) order by alert_key"
        ).fetchall()
    ]
    con.execute("delete from alerts where alert_key in (select alert_key from alert_changes where event = 'new')")
    con.execute(
        "insert into alerts (alert_key, kind, severity, as_of, fiscal_year, agency_code, pro_code, pay_cert_no,"
        " gap_pp, amount, message, status, first_seen, last_seen)"
        " select alert_key, kind, severity, ?, fiscal_year, agency_code, pro_code, pay_cert_no, gap_pp, amount,"
        " message, 'active', ?, ? from alert_changes where event = 'new' order by alert_key",
        [as_of, now, now],
    )
    con.execute(
        "update alerts set severity = c.severity, as_of = ?, gap_pp = c.gap_pp, amount = c.amount,"
        " message = c.message, last_seen = ? from alert_changes as c"
        " where alerts.alert_key = c.alert_key and c.event is distinct from 'new'",
        [as_of, now],
    )
    cur = con.execute("select * from alert_changes where event is not null order by alert_key")
    names = [d[0] for d in cur.description]
    events = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    failed = [
        r[0]
        for r in con.execute(
            "select alert_key from alerts where kind = 'run_failed' and status = 'active' order by alert_key"
        ).fetchall()
    ]
    events += _resolve(con, gone + failed, now)  # a successful run also resolves a failed-run alert
    con.execute("drop table alert_changes")
    con.execute("drop table alert_candidates")
    con.execute("delete from alert_state")
    con.execute("insert into alert_state values (?, ?)", [max(as_of, latest_as_of(con) or as_of), now])
    queue(con, events, settings, now)
    return events


def latest_as_of(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The latest as-of date the alert state has been evaluated at (a warehouse from before alert_state: the
    latest alerts.as_of, which the resolving run used to overwrite)."""
    row = first_row(
        con,
        "select coalesce((select max(latest_as_of) from alert_state),"
        " (select max(as_of) from alerts where kind <> 'run_failed'))",
    )
    return row[0] if row else None


def _resolve(con: duckdb.DuckDBPyConnection, keys: list[str], now: dt.datetime) -> list[dict]:
    """Resolve alerts that no longer hold. `as_of` stays the date the alert last held (CONTRACT.md section 3): the
    alert never held at this run's date, and a warehouse rebuilt from scratch has no row for it there."""
    if not keys:
        return []
    con.execute(
        "update alerts set status = 'resolved', resolved_at = ? where alert_key in (select unnest(?::varchar[]))",
        [now, keys],
    )
    rows = con.execute(
        "select alert_key, kind, severity, agency_code, pro_code, message from alerts"
        " where alert_key in (select unnest(?::varchar[])) order by alert_key",
        [keys],
    ).fetchall()
    return [
        {
            "alert_key": key,
            "kind": kind,
            "severity": severity,
            "agency_code": agency,
            "pro_code": pro,
            "event": "resolved",
            "message": message,
        }
        for key, kind, severity, agency, pro, message in rows
    ]


def queue(
    con: duckdb.DuckDBPyConnection, events: list[dict], settings: AlertSettings, now: dt.datetime, channels=None
) -> None:
    """One outbox row per event and channel (all configured ones unless ``channels`` is given), in one insert."""
    rows = [
        (
            e["alert_key"],
            e["event"],
            e["severity"],
            channel.name,
            f"[{SEVERITY_ZH[e['severity']]}]{KIND_ZH.get(e['kind'], e['kind'])}{EVENT_ZH[e['event']]}",
            e["message"],
        )
        for e in events
        for channel in (settings.channels if channels is None else channels)
    ]
    if not rows:
        return
    names = ["alert_key", "event", "severity", "channel", "title", "body"]
    outbox = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})
    con.register("alert_outbox_new", outbox)
    try:
        con.execute(
            "insert into alert_outbox (alert_key, event, severity, channel, title, body, created_at)"
            " select alert_key, event, severity, channel, title, body, ? from alert_outbox_new",
            [now],
        )
    finally:
        con.unregister("alert_outbox_new")


def catch_up(con: duckdb.DuckDBPyConnection, settings: AlertSettings, now: dt.datetime) -> None:
    """Queue, per channel, the active alerts it has never been told about (no outbox row for it: raised before the
    channel was configured) as `active` (未解除), once; after that it gets only changes."""
    for channel in settings.channels:
        rows = con.execute(
            "select alert_key, kind, severity, message from alerts as a where status = 'active' and not exists"
            " (select 1 from alert_outbox as o where o.channel = ? and o.alert_key = a.alert_key) order by alert_key",
            [channel.name],
        ).fetchall()
        events = [
            {"alert_key": k, "kind": kind, "severity": sev, "event": "active", "message": m} for k, kind, sev, m in rows
        ]
        queue(con, events, settings, now, channels=[channel])


@dataclass(frozen=True)
class Digest:
    title: str
    body: str
    shown: int  # events listed in the body; the others are counted in its last line ("另有 N 条")
    total: int


def build_digest(title: str, events: list[dict], limit: int | None, measure: Callable[[str, str], int]) -> Digest:
    """The digest of ``events`` (in the order given) whose ``measure(title, body)`` is at most ``limit`` bytes: every
    event while they fit, else the first ones that fit and "另有 N 条，详见 …" (which fits too). A single event too
    long for the limit is itself cut ("…"). ``measure`` is additive over lines (bytes, JSON-escaped or not)."""
    lines = [f"- {e['title']} {e['text']}" for e in events]
    body = "\n".join(lines)
    if limit is None or measure(title, body) <= limit:
        return Digest(title, body, len(lines), len(lines))
    base = measure(title, "")

    def cost(line: str) -> int:  # the bytes a line and its newline add
        return measure(title, line + "\n") - base

    reserve = cost(MORE_ZH.format(n=len(lines)))  # the widest "另有 N 条" line
    budget = limit - base - reserve
    shown: list[str] = []
    for line in lines:
        c = cost(line)
        if c > budget:
            if not shown:  # one event alone too long: cut it, so every message lists at least one
                shown.append(cut_to_fit(line, budget, cost))
            break
        shown.append(line)
        budget -= c
    while True:
        more = [MORE_ZH.format(n=len(lines) - len(shown))] if len(shown) < len(lines) else []
        body = "\n".join([*shown, *more])
        if measure(title, body) <= limit or not shown:
            return Digest(title, body, len(shown), len(lines))
        shown.pop()  # never needed when measure is additive; a safety net, not a loop that runs


def deliver(con: duckdb.DuckDBPyConnection, settings: AlertSettings, as_of: dt.date, now: dt.datetime) -> dict:
    """Send every undelivered announcement, one digest per channel within its size limit; returns
    {channel: 'sent n' | 'sent n (k listed)' | 'failed: …' | 'nothing new'}."""
    result = {}
    for channel in settings.channels:
        # seq: the announcements of the alert this channel's outbox held before this one (rank - 1 over created_at;
        # a run queues at most one per alert and channel), for its event id
        pending = con.execute(
            "select o.rid, o.alert_key, o.event, o.severity, o.title, o.body, o.seq from"
            " (select rowid as rid, *, rank() over (partition by alert_key order by created_at) - 1 as seq"
            "  from alert_outbox where channel = ?) as o"
            " left join alerts as a on o.alert_key = a.alert_key"
            f" where o.delivered_at is null order by {_rank_sql('o.severity')} desc,"
            " a.amount desc nulls last, o.alert_key, o.created_at",
            [channel.name],
        ).fetchall()
        if not pending:
            result[channel.name] = "nothing new"
            continue
        counts: dict[str, int] = {}
        for _, _, event, *_ in pending:
            counts[event] = counts.get(event, 0) + 1
        summary = "，".join(f"{EVENT_ZH[k]} {v} 条" for k, v in counts.items())
        title = f"【预算执行预警】截至 {as_of}：{summary}"
        events = [
            {
                "event_id": event_id(channel.name, k, ev, s, seq),
                "alert_key": k,
                "event": ev,
                "severity": s,
                "title": t,
                "text": b,
            }
            for _, k, ev, s, t, b, seq in pending
        ]
        delivery = delivery_id(channel.name, [e["event_id"] for e in events])
        digest = build_digest(title, events, channel.limit, channel.measure)
        ids = [r[0] for r in pending]
        # every attempt records its ids on the outbox rows, delivered or not (what a receiver may have seen)
        attempted = pa.table(
            {"rid": pa.array(ids, pa.int64()), "event_id": pa.array([e["event_id"] for e in events], pa.string())}
        )
        try:
            channel.send(title, digest.body, events, omitted=digest.total - digest.shown, delivery=delivery)
        except ChannelError as e:
            log.warning("alert channel %s: %s (kept for the next run; delivery id %s)", channel.name, e, delivery)
            _record_attempt(con, attempted, delivery, None, str(e))
            result[channel.name] = f"failed: {e}"
            continue
        _record_attempt(con, attempted, delivery, now, None)
        keys = sorted({r[1] for r in pending})
        con.execute(
            "update alerts set notified_at = ?, notified_severity = severity where alert_key in"
            " (select unnest(?::varchar[]))",
            [now, keys],
        )
        listed = "" if digest.shown == digest.total else f" ({digest.shown} listed)"
        result[channel.name] = f"sent {len(pending)}{listed}"
    return result


def _record_attempt(
    con: duckdb.DuckDBPyConnection, attempted: pa.Table, delivery: str, delivered_at: dt.datetime | None, error
) -> None:
    con.register("alert_attempt", attempted)
    try:
        con.execute(
            "update alert_outbox set attempts = attempts + 1, delivery_id = ?, event_id = t.event_id,"
            " delivered_at = coalesce(?, alert_outbox.delivered_at), last_error = ?"
            " from alert_attempt as t where alert_outbox.rowid = t.rid",
            [delivery, delivered_at, error],
        )
    finally:
        con.unregister("alert_attempt")


def raise_and_notify(con: duckdb.DuckDBPyConnection, as_of: dt.date, settings: AlertSettings) -> dict:
    """Evaluate, queue and deliver. A run for an as-of date before the latest one evaluated is a backfill: its marts
    are recorded (reconcile did that), but it neither changes nor announces alerts (an alert that holds at 12-31 but
    not yet at 10-31 has not resolved)."""
    now = dt.datetime.now(dt.UTC)
    latest = latest_as_of(con)
    if latest is not None and as_of < latest:
        log.info("backfill as of %s: alerts unchanged (latest evaluated as of %s)", as_of, latest)
        active = first_row(con, "select count(*) from alerts where status = 'active'")[0]
        return {"events": 0, "active": active, "delivery": {}, "backfill": {"as_of": as_of, "latest": latest}}
    events = evaluate(con, as_of, settings, now)
    catch_up(con, settings, now)
    delivery = deliver(con, settings, as_of, now)
    active = first_row(con, "select count(*) from alerts where status = 'active'")[0]
    return {"events": len(events), "active": active, "delivery": delivery}


def record_run_failure(con: duckdb.DuckDBPyConnection, as_of: dt.date, error: str, settings: AlertSettings) -> dict:
    """A failed run: one run_failed alert (key per day), announced once, delivered now or on the next run."""
    now = dt.datetime.now(dt.UTC)
    key = f"run_failed|{as_of}"
    message = mask_accounts(f"treasury-recon 夜间任务失败（截至 {as_of}）：{error}"[:2000])
    row = first_row(con, "select status from alerts where alert_key = ?", [key])
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
