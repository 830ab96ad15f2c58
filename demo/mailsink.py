"""The demo's SMTP sink: the booking site's mails stay on this machine.

Central sends its booking mails (sign-in, confirmation, cancellation) to
this local SMTP server, which writes each message as an ``.eml`` file into
``<state>/mail/`` and prints one line on the demo's console, with the
sign-in code when there is one, so that a person trying the demo can sign in
without a mail server. Mail content is printed here only: the product logs
no address and no code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

from aiosmtpd.controller import Controller

# aiosmtpd narrates every SMTP command at INFO; the console line per mail is enough.
logging.getLogger("mail.log").setLevel(logging.WARNING)

SIGN_IN_LINK = "/booking/sign-in/link/"
CODE = re.compile(r"\b(\d{6})\b")


def mail_line(message: EmailMessage, path: Path) -> str:
    """What the console shows of one mail: recipient, subject, the sign-in
    code of a sign-in mail, and the file it was saved as."""
    line = f"mail to {message['To']}: {message['Subject']}"
    body = message.get_body(preferencelist=("plain",))
    text = cast(str, body.get_content()) if body is not None else ""
    if SIGN_IN_LINK in text:
        code = CODE.search(str(message["Subject"])) or CODE.search(text)
        if code is not None:
            line += f" — sign-in code {code.group(1)}"
    return f"{line} ({path})"


class MailFolder:
    """The aiosmtpd handler: each message into ``folder``, one line to ``say``."""

    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.say = say

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        content = bytes(envelope.content)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Time first so that a listing sorts by arrival; the suffix keeps two
        # mails of one second apart.
        path = self.folder / f"{datetime.now():%Y%m%d-%H%M%S}-{uuid4().hex[:6]}.eml"
        path.write_bytes(content)
        message = message_from_bytes(content, policy=policy.default)
        self.say(mail_line(message, path))
        return "250 OK"


class MailSink:
    """A local SMTP server on ``port`` (loopback), in a thread of the demo."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.controller = Controller(
            MailFolder(folder, lambda line: print(f"  @ {line}", flush=True)),
            hostname="127.0.0.1", port=port,
        )  # fmt: skip

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> MailSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
