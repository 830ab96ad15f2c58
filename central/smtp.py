"""Sending one e-mail through an SMTP server: shared by the alert e-mails
(:mod:`central.ops.notify`) and the booking site's mails
(:mod:`central.booking.mail`), so both speak to the relay the same way
(optional STARTTLS with certificate checks, optional login, a timeout).

A failure raises :class:`SmtpError` whose text names the server and the
failure's kind only: smtplib's own messages can quote recipient addresses,
which must not reach the logs.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage


class SmtpError(RuntimeError):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_s: float = 10.0

    def send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise SmtpError(
                f"e-mail via {self.host}:{self.port}: {type(exc).__name__} {exc.smtp_code}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpError(f"e-mail via {self.host}:{self.port}: {type(exc).__name__}") from None
