"""Alert channels. Each has a name and ``send(title, body, events)``; a failure raises ChannelError.

Secrets (webhook URLs with tokens, SMTP passwords) are read from environment variables named in the config, at send
time, never stored in the config file or the warehouse.
"""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from email.message import EmailMessage
from email.utils import formataddr


class ChannelError(Exception):
    """The channel did not take the message (down, refused, misconfigured); it will be retried next run."""


def _secret(value: str | None, env: str | None, what: str) -> str | None:
    if env:
        found = os.environ.get(env)
        if not found:
            raise ChannelError(f"{what}: environment variable {env} is not set")
        return found
    return value


def _post_json(url: str, payload: dict, timeout: float) -> bytes:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise ChannelError(f"POST failed: {e}") from e


@dataclass
class WebhookChannel:
    """A generic JSON webhook: {"title", "text", "events": [...]}."""

    name: str
    url: str | None = None
    url_env: str | None = None
    timeout: float = 10.0

    def send(self, title: str, body: str, events: list[dict]) -> None:
        url = _secret(self.url, self.url_env, self.name)
        _post_json(url, {"title": title, "text": body, "events": events}, self.timeout)


@dataclass
class RobotChannel:
    """A WeCom (企业微信) or DingTalk (钉钉) group robot: markdown text."""

    name: str
    flavor: str = "wecom"  # wecom | dingtalk
    url: str | None = None
    url_env: str | None = None
    timeout: float = 10.0

    def send(self, title: str, body: str, events: list[dict]) -> None:
        url = _secret(self.url, self.url_env, self.name)
        text = f"### {title}\n{body}"
        if self.flavor == "dingtalk":
            payload = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        else:
            payload = {"msgtype": "markdown", "markdown": {"content": text}}
        raw = _post_json(url, payload, self.timeout)
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
            raise ChannelError(f"robot refused the message: {answer}")


@dataclass
class EmailChannel:
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

    def send(self, title: str, body: str, events: list[dict]) -> None:
        if not self.to:
            raise ChannelError(f"{self.name}: no recipients (to = [...])")
        msg = EmailMessage()
        msg["Subject"] = title
        msg["From"] = formataddr(("预算执行监测", self.sender))
        msg["To"] = ", ".join(self.to)
        msg.set_content(body, charset="utf-8")
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
