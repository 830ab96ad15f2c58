"""The booking site's mails, received by a local SMTP server: the sign-in
mail, the confirmation with the code and an .ics that icalendar parses, the
cancellation with a STATUS:CANCELLED .ics; a mail failure keeps the booking
and logs no address."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from central.db.engine import Database
from tests.harness.booking import ROOM, BookingWorld, today_plus
from tests.harness.booking_site import (
    SENDER,
    Mailbox,
    form_token,
    sign_in,
    site_app,
    site_settings,
    smtp_server,
)

pytestmark = pytest.mark.integration
EMAIL = "aki@example.jp"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, BookingWorld, Mailbox, str]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    with smtp_server() as (mailbox, port):
        app, world = site_app(db, site_settings(port, public_url="https://yoyaku.city.example"))
        member = world.member("aki")
        # An https public address makes the cookies Secure: the client must use https.
        with TestClient(app, base_url="https://testserver") as client:
            yield client, world, mailbox, member
    db.close()


def _event(message: EmailMessage) -> Any:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "booking.ics"
    calendar = Calendar.from_ical(attachment.get_content())
    [event] = calendar.walk("VEVENT")
    return event


def _book(client: TestClient, start: str) -> str:
    page = client.get("/booking/facilities")
    done = client.post(
        f"/booking/rooms/{ROOM}/book",
        data={"start": start, "minutes": "60", "csrf": form_token(page.text)},
    )
    assert done.status_code == 200, done.text
    return str(done.text)


def test_mail_sign_in_has_link_and_code(
    site: tuple[TestClient, BookingWorld, Mailbox, str],
) -> None:
    client, _world, mailbox, _member = site
    page = client.get("/booking/sign-in")
    client.post(
        "/booking/sign-in", data={"email": "AKI@example.jp ", "csrf": form_token(page.text)}
    )
    message = mailbox.wait(1)
    assert message["To"] == EMAIL and message["From"] == SENDER
    text = Mailbox.text(message)
    assert "https://yoyaku.city.example/booking/sign-in/link/" in text  # never the Host header
    link, code = Mailbox.sign_in(message)
    assert code in text and "15分間" in text and link.startswith("/booking/sign-in/link/")


def test_mail_confirmation_has_code_and_ics(
    site: tuple[TestClient, BookingWorld, Mailbox, str],
) -> None:
    client, world, mailbox, _member = site
    sign_in(client, mailbox, EMAIL)
    start = today_plus(4, 10)
    page = _book(client, start.isoformat())
    [booking] = world.bookings.member_bookings(_member)
    message = mailbox.wait(2)
    text = Mailbox.text(message)
    code = page.split('id="reservation-code">')[1][:6]
    assert f"予約コード: {code}" in text and "Gym A" in text and "Sports centre" in text
    assert "10:00–11:00" in text  # the facility's time zone
    assert "キャンセル期限" in text and (start - timedelta(hours=24)).strftime("%-d日") in text
    event = _event(message)
    assert str(event["UID"]) == f"booking-{booking.id}@yoyaku.city.example"
    assert event.decoded("DTSTART") == start and event.decoded("DTEND") == start + timedelta(
        hours=1
    )
    assert str(event["SUMMARY"]) == "Gym A (Sports centre)"
    assert code in str(event["DESCRIPTION"]) and str(event["STATUS"]) == "CONFIRMED"


def test_mail_cancellation_has_cancelled_ics(
    site: tuple[TestClient, BookingWorld, Mailbox, str],
) -> None:
    client, world, mailbox, member = site
    sign_in(client, mailbox, EMAIL)
    _book(client, today_plus(4, 10).isoformat())
    [booking] = world.bookings.member_bookings(member)
    mine = client.get("/booking/my")
    client.post(f"/booking/my/{booking.id}/cancel", data={"csrf": form_token(mine.text)})
    message = mailbox.wait(3)
    assert "予約キャンセル" in str(message["Subject"])
    event = _event(message)
    assert str(event["STATUS"]) == "CANCELLED" and int(str(event["SEQUENCE"])) == 1
    assert str(event["UID"]) == f"booking-{booking.id}@yoyaku.city.example"


def test_mail_failure_keeps_the_booking_and_logs_no_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    with smtp_server() as (mailbox, port):
        app, world = site_app(db, site_settings(port))
        member = world.member("aki")
        client = TestClient(app)
        sign_in(client, mailbox, EMAIL)
    # The relay is gone now: the confirmation cannot be sent.
    with caplog.at_level(logging.INFO):
        page = _book(client, today_plus(4, 10).isoformat())
    client.close()
    assert 'id="reservation-code"' in page
    assert len(world.bookings.member_bookings(member)) == 1
    db.close()
    failures = [r for r in caplog.records if r.getMessage() == "booking mail not sent"]
    assert failures and failures[0].__dict__["mail"] == "confirmation"
    # Central's records (the test's SMTP server, aiosmtpd, logs recipients itself).
    ours = [r for r in caplog.records if r.name.startswith("central")]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert EMAIL not in logged and "Member aki" not in logged
