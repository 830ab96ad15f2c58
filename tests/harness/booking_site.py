"""The residents' booking site for tests: central's app with the site mounted
on a booking world (tests/harness/booking.py), mails going to a local SMTP
server (aiosmtpd) that the fixture starts on a free port and stops."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller

from central.api.app import create_app
from central.booking.settings import BookingSection, SmtpSection
from central.db.engine import Database
from central.smtp import SmtpServer
from tests.harness.booking import BookingWorld, booking_world
from tests.harness.keys import fixed_code_key
from tests.harness.services import free_port, wait_until

SENDER = "yoyaku@city.example.jp"


class Mailbox:
    """What the local SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(parsed)
        return "250 OK"

    def wait(self, count: int, timeout: float = 10) -> EmailMessage:
        """The ``count``-th message (1-based), once it has arrived."""
        wait_until(lambda: len(self.messages) >= count, timeout, f"mail number {count}")
        return self.messages[count - 1]

    @staticmethod
    def text(message: EmailMessage) -> str:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        return cast(str, body.get_content())

    @classmethod
    def sign_in(cls, message: EmailMessage) -> tuple[str, str]:
        """(link path, code) of a sign-in mail."""
        text = cls.text(message)
        link = re.search(r"https?://[^/\s]+(/booking/sign-in/link/\S+)", text)
        code = re.search(r"(\d{6})$", str(message["Subject"]))
        assert link and code, text
        return link.group(1), code.group(1)


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield mailbox, controller.port
    finally:
        controller.stop()


def site_settings(
    port: int, public_url: str = "http://testserver", **fields: Any
) -> BookingSection:
    smtp = SmtpSection(host="127.0.0.1", port=port, sender=SENDER)
    return BookingSection(enabled=True, public_url=public_url, smtp=smtp, **fields)


def site_app(db: Database, settings: BookingSection) -> tuple[Any, BookingWorld]:
    """The app and the world it books in (its clock drives the site)."""
    world = booking_world(db)
    app = create_app(db, code_key=fixed_code_key, now=world.clock, booking_site=settings,
                     booking_smtp=None if settings.smtp else SmtpServer("127.0.0.1"))  # fmt: skip
    return app, world


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def form_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form token"
    return found.group(1)


def sign_in(client: Any, mailbox: Mailbox, email: str) -> None:
    """Sign ``client`` in through the mailed code."""
    page = client.get("/booking/sign-in")
    before = len(mailbox.messages)
    answer = client.post("/booking/sign-in", data={"email": email, "csrf": form_token(page.text)})
    request_id = re.search(r'name="request_id" value="([^"]+)"', answer.text)
    assert request_id, answer.text
    _link, code = Mailbox.sign_in(mailbox.wait(before + 1))
    fields = {"request_id": request_id.group(1), "code": code, "csrf": form_token(answer.text)}
    done = client.post("/booking/sign-in/code", data=fields)
    assert done.url.path == "/booking/facilities", done.text
