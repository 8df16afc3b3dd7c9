"""Shared by the alert tests: a real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import socket
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller


class Mailbox:
    """`envelopes`: what the server received; `messages`: the same, parsed as email messages."""

    def __init__(self):
        self.envelopes = []
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
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
