"""The booking site's mails: the sign-in link and code, the booking
confirmation (with its ``.ics``) and the cancellation notice (with a
``STATUS:CANCELLED`` ``.ics``), in the member's language.

Mails are sent after the change is committed; a failure is logged (the kind
of mail, the member's id, the failure's kind: never an address or a name)
and never undoes the booking or the cancellation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from central.booking.i18n import Words
from central.reservations.booking_rows import BookingView
from central.reservations.ics import booking_ics
from central.reservations.members import Member
from central.reservations.rules import Facility, Room, cancellation_deadline
from central.smtp import SmtpError, SmtpServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BookingFacts:
    """What a booking mail says about one booking."""

    booking: BookingView
    room: Room
    facility: Facility


def calendar_file(
    facts: BookingFacts, words: Words, *, code: str | None, uid_domain: str, stamp: datetime
) -> bytes:
    """The ``.ics`` of a booking (``code`` None: a cancelled one)."""
    note = words("Show this code at the door, or tap your enrolled card.")
    return booking_ics(
        facts.booking.as_rule_booking(), facts.room, facts.facility,
        reservation_code=code or words("no longer valid"), stamp=stamp, uid_domain=uid_domain,
        code_label=words("Reservation code"), note=note if code else "",
        language=words.lang, sequence=0 if code else 1,
    )  # fmt: skip


class Mailer:
    def __init__(self, server: SmtpServer, sender: str, uid_domain: str) -> None:
        self.server = server
        self.sender = sender
        self.uid_domain = uid_domain

    def _send(self, kind: str, member: Member, message: EmailMessage) -> bool:
        message["From"] = self.sender
        message["To"] = member.email
        message["Message-ID"] = make_msgid(domain=self.uid_domain)
        try:
            self.server.send(message)
        except SmtpError as exc:
            log.warning("booking mail not sent",
                        extra={"mail": kind, "member": member.id, "error": str(exc)})  # fmt: skip
            return False
        log.info("booking mail sent", extra={"mail": kind, "member": member.id})
        return True

    def sign_in(self, member: Member, link: str, code: str, minutes: int) -> bool:
        words = Words.preferred(member.language)
        message = EmailMessage()
        message["Subject"] = words("Your sign-in code: {code}", code=code)
        message.set_content("\n\n".join([
            words("Open this link to sign in to the booking site:"), link,
            words("Or type this code on the sign-in page: {code}", code=code),
            words("The link and the code work once, for {minutes} minutes.", minutes=minutes),
            words("If you did not ask to sign in, you can ignore this mail."),
        ]) + "\n")  # fmt: skip
        return self._send("sign_in", member, message)

    def confirmation(self, member: Member, facts: BookingFacts, code: str, now: datetime) -> bool:
        words = Words.preferred(member.language)
        zone = facts.facility.zone
        deadline = cancellation_deadline(facts.booking.as_rule_booking(), facts.room.rules)
        message = EmailMessage()
        message["Subject"] = words("Booking confirmed: {room}, {when}", room=facts.room.name,
                                   when=words.when(facts.booking.starts_at,
                                                   facts.booking.ends_at, zone))  # fmt: skip
        message.set_content("\n".join([
            words("Your booking is confirmed."), "",
            f"{words('Reservation code')}: {code}",
            f"{words('Facility')}: {facts.facility.name}",
            f"{words('Room')}: {facts.room.name}",
            f"{words('Time')}: {words.when(facts.booking.starts_at, facts.booking.ends_at, zone)}",
            f"{words('You can cancel until')}: {words.moment(deadline, zone)}", "",
            words("Show this code at the door, or tap your enrolled card."),
            words("The calendar file is attached."),
        ]) + "\n")  # fmt: skip
        ics = calendar_file(facts, words, code=code, uid_domain=self.uid_domain, stamp=now)
        message.add_attachment(ics, maintype="text", subtype="calendar", filename="booking.ics")
        return self._send("confirmation", member, message)

    def cancellation(self, member: Member, facts: BookingFacts, now: datetime) -> bool:
        words = Words.preferred(member.language)
        zone = facts.facility.zone
        when = words.when(facts.booking.starts_at, facts.booking.ends_at, zone)
        message = EmailMessage()
        message["Subject"] = words("Booking cancelled: {room}, {when}", room=facts.room.name,
                                   when=when)  # fmt: skip
        message.set_content("\n".join([
            words("Your booking is cancelled; its code no longer opens the door."), "",
            f"{words('Facility')}: {facts.facility.name}",
            f"{words('Room')}: {facts.room.name}",
            f"{words('Time')}: {when}", "",
            words("The attached calendar file removes it from your calendar."),
        ]) + "\n")  # fmt: skip
        ics = calendar_file(facts, words, code=None, uid_domain=self.uid_domain, stamp=now)
        message.add_attachment(ics, maintype="text", subtype="calendar", filename="booking.ics")
        return self._send("cancellation", member, message)
