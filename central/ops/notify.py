"""Alert notifications: a JSON webhook and e-mail over SMTP.

Each notifier takes an alert transition and delivers it once, with a
timeout; a failure raises :class:`NotifyError` (the caller logs it, counts
it and retries on the next evaluation). Messages carry device ids, rule
names and figures only, never personal data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from central.http_post import PostFailed, post_json
from central.ops.alerts import Transition
from central.smtp import SmtpError, SmtpServer


class NotifyError(RuntimeError):
    """A notification could not be delivered."""


class Notifier(Protocol):
    def send(self, transition: Transition) -> None: ...


def payload(transition: Transition) -> dict[str, object]:
    return {
        "kind": "alert.opened" if transition.opened else "alert.resolved",
        "device": transition.device,
        "rule": transition.rule,
        "detail": transition.detail,
        "at": transition.at.isoformat(),
    }


@dataclass(frozen=True)
class WebhookNotifier:
    url: str
    timeout_s: float = 5.0
    bearer_token: str = ""

    def send(self, transition: Transition) -> None:
        headers = {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {}
        try:
            post_json(self.url, json.dumps(payload(transition)).encode(), headers, self.timeout_s)
        except PostFailed as exc:
            raise NotifyError(str(exc)) from exc


@dataclass(frozen=True)
class EmailNotifier:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_s: float = 10.0

    def send(self, transition: Transition) -> None:
        message = EmailMessage()
        state = "OPEN" if transition.opened else "resolved"
        message["Subject"] = f"[kiosk alert {state}] {transition.device}: {transition.rule}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(
            f"Device: {transition.device}\nRule: {transition.rule}\n"
            f"Detail: {transition.detail}\nAt: {transition.at.isoformat()}\n"
        )
        server = SmtpServer(self.host, self.port, self.starttls, self.username, self.password,
                            self.timeout_s)  # fmt: skip
        try:
            server.send(message)
        except SmtpError as exc:
            raise NotifyError(str(exc)) from exc
