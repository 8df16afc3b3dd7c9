"""Alert channels. Each has a name, ``send(title, body, events, omitted=0, delivery=None)`` (a failure raises
ChannelError; ``delivery`` is the message's delivery id, see below), a size limit ``limit`` (bytes, or None) and
``measure(title, body)``: the bytes of what the receiving end limits.

Delivery is at-least-once: a message the receiver took may be sent again (the run was killed after the receiver
answered and before the warehouse recorded it, or the receiver answered after the timeout). Every message carries a
delivery id, the same for the same announcements (``delivery_id``): webhooks in the JSON body (``delivery_id``) and
the ``Idempotency-Key`` / ``X-Recon-Delivery-Id`` headers, each event with its own ``event_id``; robots in the same
headers and on the message's last line (``> 投递编号 …``: people read robots); email as ``Message-ID`` and
``X-Recon-Delivery-Id``. Receivers de-duplicate on it.

Secrets (webhook URLs with tokens, SMTP passwords) are read from environment variables named in the config, at send
time, never stored in the config file or the warehouse.

Size limits of the group robots (UTF-8 bytes), as their answers from the real services show:
- WeCom (企业微信) markdown ``content``: at most 4096 bytes (developer.work.weixin.qq.com/document/path/91770,
  "markdown内容，最长不超过4096个字节，必须是utf8编码"); over it the robot answers HTTP 200 with
  ``{"errcode": 40058, "errmsg": "markdown.content exceed max length 4096. invalid Request Parameter, ..."}``
  (reported in github.com/dromara/domain-admin/issues/82 and github.com/RayWangQvQ/BiliBiliToolPro/issues/702).
- DingTalk (钉钉) custom robot: the request body at most 20000 bytes; over it the answer is
  ``{"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"}`` (github.com/Le0nsec/SecCrawler/issues/12,
  github.com/timonwong/prometheus-webhook-dingtalk/issues/30; elsewhere "body 大小不合法;请保持大小在 20000bytes 以内",
  github.com/ZhuLinsen/daily_stock_analysis/issues/61). So for DingTalk the whole JSON body is measured.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from email.message import EmailMessage
from email.utils import formataddr

WECOM_MARKDOWN_MAX_BYTES = 4096
DINGTALK_BODY_MAX_BYTES = 20000
EMAIL_BODY_MAX_BYTES = 20000  # a readable mail; the full list goes along as a CSV attachment
ELLIPSIS = "…"


class ChannelError(Exception):
    """The channel did not take the message (down, refused, misconfigured); it will be retried next run."""


def _secret(value: str | None, env: str | None, what: str) -> str | None:
    if env:
        found = os.environ.get(env)
        if not found:
            raise ChannelError(f"{what}: environment variable {env} is not set")
        return found
    return value


DELIVERY_ID_LEN = 32  # hex digits of a SHA-256: 128 bits
DELIVERY_ID_HEADERS = ("Idempotency-Key", "X-Recon-Delivery-Id")
ROBOT_ID_LINE = "\n\n> 投递编号 {id}"  # the robots' last line: a fixed length, so measure() counts it exactly


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:DELIVERY_ID_LEN]


def event_id(channel: str, alert_key: str, event: str, severity: str, seq: int) -> str:
    """One announcement of one alert to one channel: ``seq`` is how many announcements of that alert the channel's
    outbox held before it, so an alert that resolves and comes back is a new announcement with a new id, while
    the same announcement sent again (an unrecorded or timed-out delivery, or a killed run evaluated again) keeps
    its id."""
    return _digest("event", channel, alert_key, event, severity, str(seq))


def delivery_id(channel: str, event_ids: list[str]) -> str:
    """The id of one message: its channel and the set of announcements it delivers (order does not matter)."""
    return _digest("delivery", channel, *sorted(event_ids))


def _message_id(channel: str, title: str, body: str) -> str:
    """A message sent without announcements (a failed run's direct message): its channel, title and text."""
    return _digest("message", channel, title, body)


def _encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def cut_to_fit(text: str, budget: int, measure: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` (plus "…") whose ``measure`` is at most ``budget``; text itself when it fits.
    ``measure`` grows with the text (bytes), so a binary search over the length finds it."""
    if measure(text) <= budget:
        return text
    lo, hi = 0, len(text)  # measure(text[:lo] + ELLIPSIS) <= budget is kept true for lo (or lo == 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid] + ELLIPSIS) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + ELLIPSIS


def _post_json(url: str, payload: dict, timeout: float, delivery: str) -> bytes:
    data = _encode(payload)
    headers = {"Content-Type": "application/json; charset=utf-8", **dict.fromkeys(DELIVERY_ID_HEADERS, delivery)}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise ChannelError(f"POST failed: {e}") from e


class _BodyLimit:
    """A channel whose size limit is ``max_bytes`` UTF-8 bytes of the body text (None: no limit)."""

    max_bytes: int | None

    @property
    def limit(self) -> int | None:
        return self.max_bytes

    def measure(self, title: str, body: str) -> int:
        return len(body.encode("utf-8"))


@dataclass
class WebhookChannel(_BodyLimit):
    """A generic JSON webhook: {"delivery_id", "title", "text", "events": [...]} (each event with its event_id)."""

    name: str
    url: str | None = None
    url_env: str | None = None
    timeout: float = 10.0
    max_bytes: int | None = None  # limit on "text" (UTF-8 bytes); "events" always lists every event

    def send(self, title: str, body: str, events: list[dict], omitted: int = 0, delivery: str | None = None) -> None:
        url = _secret(self.url, self.url_env, self.name)
        delivery = delivery or _message_id(self.name, title, body)
        payload = {"delivery_id": delivery, "title": title, "text": body, "events": events}
        _post_json(url, payload, self.timeout, delivery)


@dataclass
class RobotChannel:
    """A WeCom (企业微信) or DingTalk (钉钉) group robot: markdown text."""

    name: str
    flavor: str = "wecom"  # wecom | dingtalk
    url: str | None = None
    url_env: str | None = None
    timeout: float = 10.0
    max_bytes: int | None = None  # None: the robot's own limit (wecom 4096 bytes of markdown, dingtalk 20000 of body)

    @property
    def limit(self) -> int:
        if self.max_bytes is not None:
            return self.max_bytes
        return DINGTALK_BODY_MAX_BYTES if self.flavor == "dingtalk" else WECOM_MARKDOWN_MAX_BYTES

    def _payload(self, title: str, body: str, delivery: str) -> dict:
        text = f"### {title}\n{body}" + ROBOT_ID_LINE.format(id=delivery)
        if self.flavor == "dingtalk":
            return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        return {"msgtype": "markdown", "markdown": {"content": text}}

    def measure(self, title: str, body: str) -> int:
        """What the robot counts: WeCom the markdown content, DingTalk the whole request body (UTF-8 bytes); both
        with the delivery-id line (fixed length, ASCII)."""
        payload = self._payload(title, body, "0" * DELIVERY_ID_LEN)
        if self.flavor == "dingtalk":
            return len(_encode(payload))
        return len(payload["markdown"]["content"].encode())

    def send(self, title: str, body: str, events: list[dict], omitted: int = 0, delivery: str | None = None) -> None:
        url = _secret(self.url, self.url_env, self.name)
        # the digest already fits (alerts.build_digest); this guards any other caller (a failed run's direct message)
        body = cut_to_fit(body, self.limit, lambda b: self.measure(title, b))
        delivery = delivery or _message_id(self.name, title, body)
        raw = _post_json(url, self._payload(title, body, delivery), self.timeout, delivery)
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
            raise ChannelError(f"robot refused the message: {answer}")


@dataclass
class EmailChannel(_BodyLimit):
    """Email over SMTP (plain, or STARTTLS when starttls = true)."""

    name: str
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "treasury-recon@localhost"
    to: list[str] = field(default_factory=list)
    starttls: bool = False
    username: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 10.0
    max_bytes: int | None = EMAIL_BODY_MAX_BYTES  # body text; when it cannot list everything, a CSV has the full list

    def send(self, title: str, body: str, events: list[dict], omitted: int = 0, delivery: str | None = None) -> None:
        if not self.to:
            raise ChannelError(f"{self.name}: no recipients (to = [...])")
        delivery = delivery or _message_id(self.name, title, body)
        msg = EmailMessage()
        # the same announcements sent again are the same message: the same Message-ID (RFC 5322 3.6.4)
        msg["Message-ID"] = f"<{delivery}@{self.sender.rpartition('@')[2] or 'treasury-recon'}>"
        msg["X-Recon-Delivery-Id"] = delivery
        msg["Subject"] = title
        msg["From"] = formataddr(("预算执行监测", self.sender))
        msg["To"] = ", ".join(self.to)
        msg.set_content(body + ("\n\n完整清单见附件 预警明细.csv" if omitted else ""), charset="utf-8")
        if omitted:
            msg.add_attachment(
                events_csv(events), maintype="text", subtype="csv", filename="预警明细.csv", params={"charset": "utf-8"}
            )
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                user = _secret(self.username, self.username_env, self.name)
                if user:
                    smtp.login(user, _secret(None, self.password_env, self.name) or "")
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as e:
            raise ChannelError(f"SMTP {self.host}:{self.port}: {e}") from e


def events_csv(events: list[dict]) -> bytes:
    """Every event of a digest as CSV, UTF-8 with BOM (Excel opens it with the Chinese intact)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["标题", "内容", "告警键"])
    w.writerows([e["title"], e["text"], e["alert_key"]] for e in events)
    return buf.getvalue().encode("utf-8-sig")


ROBOT_FLAVORS = ("wecom", "dingtalk")
CHANNEL_TYPES = {"webhook": WebhookChannel, "robot": RobotChannel, "email": EmailChannel}


def channel_from_config(entry: dict):
    """One [[alerts.channels]] table -> a channel object; unknown keys are an error (typos must not go silent)."""
    entry = dict(entry)
    kind = entry.pop("type", None)
    if kind not in CHANNEL_TYPES:
        raise ValueError(f"alert channel type must be one of {sorted(CHANNEL_TYPES)}, got {kind!r}")
    if "from" in entry:
        entry["sender"] = entry.pop("from")
    entry.setdefault("name", kind)
    cls = CHANNEL_TYPES[kind]
    accepted = {"type", *("from" if f.name == "sender" else f.name for f in fields(cls))}
    unknown = sorted(set(entry) - {"sender"} - accepted)
    if unknown:
        raise ValueError(
            f"alert channel {entry['name']!r}: unknown key {unknown[0]!r}; a {kind} channel accepts "
            + ", ".join(sorted(accepted))
        )
    if kind == "robot" and entry.get("flavor", "wecom") not in ROBOT_FLAVORS:
        raise ValueError(
            f"alert channel {entry['name']!r}: flavor must be one of {', '.join(repr(f) for f in ROBOT_FLAVORS)}"
            f" (企业微信 / 钉钉), got {entry['flavor']!r}"
        )
    try:
        return cls(**entry)
    except TypeError as e:
        raise ValueError(f"alert channel {entry['name']!r}: {e}") from e
