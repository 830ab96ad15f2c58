"""Writing the audit log: one row per action, inside the action's own
transaction where there is one (:func:`record`), else in a transaction of its
own (:func:`record_now`).

Action names are ``<area>.<verb>`` and may nest (``staff.sign_in``,
``token.revoke``, ``api.write``, ``audit.export``, ``opendata.publish``, a
device command as ``device.command.unlock``). ``actor`` is ``staff:<user>``,
``token:<id>``, ``device:<id>``, ``cli:<os user>`` or ``anonymous``; ``source``
the client address (behind trusted proxies, :func:`central.websec.client_address`),
``cli`` or ``device:<id>``.

What is written passes the personal-data guard of the event path
(:func:`foundation.privacy.check_event_data`: keys such as ``name``, ``email``,
``pin``, ``password``; 12-digit numbers; raw bytes) plus two checks of its own
(an e-mail address in any value, keys naming a secret: token, TOTP code,
secret). Whatever fails is not written: the entry is kept -- the action
still happened and must be on record -- with ``detail`` replaced by
``{"redacted": "<where>"}`` and a warning in the log naming the place, never
the value.
"""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Connection

from central.db.engine import Database, now_utc, utc
from central.db.tables import audit_log
from foundation.errors import PersonalDataError
from foundation.privacy import check_event_data, key_words

log = logging.getLogger(__name__)

CLI_SOURCE = "cli"
# Where the current request or command comes from: set per HTTP request by
# central.audit.web.AuditSource, to "cli" by the command line.
SOURCE: ContextVar[str] = ContextVar("audit_source", default="")
REDACTED = "redacted"
# Column widths of audit_log (central/db/tables.py).
WIDTHS = {"actor": 80, "action": 48, "subject": 80, "source": 64, "reason": 48}
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
# Words of a key that name a secret (beyond the guard's personal-data words).
_SECRET_KEY_WORDS = frozenset({"token", "secret", "totp", "otp", "code", "passkey", "credential"})
# A key ending in one of these names an id or a kind, not the secret itself
# (``token_id``, ``code_id``, ``code_kind``).
_HARMLESS_LAST_WORDS = frozenset({"id", "ids", "kind", "count", "hash", "status"})


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"  # the request was not allowed or not valid
    FAILED = "failed"  # allowed and valid, but it did not work


@dataclass(frozen=True)
class AuditEntry:
    pk: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    source: str = ""
    outcome: str = Outcome.OK.value
    reason: str = ""


def cli_actor() -> str:
    """The command line's actor: the operating-system account that ran it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container's numeric user)
        return "cli"


def _check_secret_keys(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            words = key_words(str(key))
            if words and words[-1] not in _HARMLESS_LAST_WORDS and set(words) & _SECRET_KEY_WORDS:
                raise PersonalDataError(f"{where}.{key}", "key names a secret")
            _check_secret_keys(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_secret_keys(item, f"{where}[{index}]")
    elif isinstance(value, str) and _EMAIL.search(value):
        raise PersonalDataError(where, "an e-mail address is not allowed")


def check_detail(detail: Mapping[str, Any]) -> None:
    """Raise :class:`PersonalDataError` if ``detail`` may not be written."""
    check_event_data(detail)
    _check_secret_keys(detail, "detail")


def safe_detail(action: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` itself, or ``{"redacted": where}`` when the guard refuses it."""
    try:
        check_detail(detail)
    except PersonalDataError as exc:
        log.warning("audit detail refused by the personal-data guard",
                    extra={"action": action, "where": exc.where, "why": exc.reason})  # fmt: skip
        return {REDACTED: exc.where}
    return dict(detail)


def safe_text(column: str, value: str) -> str:
    """A short identifier column: cut to its width; ``redacted`` if it holds
    what the guard refuses (an e-mail address, a 12-digit number)."""
    try:
        check_event_data({column: value} if column != "actor" else {"who": value})
        _check_secret_keys([value], column)
    except PersonalDataError:
        log.warning("audit field refused by the personal-data guard", extra={"field": column})
        return REDACTED
    return value[: WIDTHS[column]]


def record(
    conn: Connection, actor: str, action: str, subject: str = "", *,
    detail: Mapping[str, Any] | None = None, source: str | None = None,
    outcome: Outcome | str = Outcome.OK, reason: str = "", at: datetime | None = None,
) -> None:  # fmt: skip
    """Append one entry on ``conn`` (the action's own transaction: the entry
    exists exactly when the change does). ``detail``: ids, times and codes;
    ``source`` defaults to the request's or command's (:data:`SOURCE`), or the
    device for a device's action."""
    if source is None:
        source = SOURCE.get() or (actor if actor.startswith("device:") else "")
    conn.execute(audit_log.insert().values(
        at=utc(at) if at is not None else now_utc(),
        actor=safe_text("actor", actor), action=action[: WIDTHS["action"]],
        subject=safe_text("subject", subject), source=safe_text("source", source),
        outcome=Outcome(outcome).value, reason=reason[: WIDTHS["reason"]],
        detail=safe_detail(action, detail or {})))  # fmt: skip


def record_now(
    db: Database, actor: str, action: str, subject: str = "", *,
    detail: Mapping[str, Any] | None = None, source: str | None = None,
    outcome: Outcome | str = Outcome.OK, reason: str = "", at: datetime | None = None,
) -> None:  # fmt: skip
    """Append one entry in a transaction of its own: for what is not a
    database change (a sign-in, a refusal, an export) or whose change was
    committed already."""
    with db.write() as conn:
        record(conn, actor, action, subject, detail=detail, source=source, outcome=outcome,
               reason=reason, at=at)  # fmt: skip
