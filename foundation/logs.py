"""Structured JSON-lines logging for every device process, with redaction.

One JSON object per line on stderr (journald keeps it as the message), with
``ts``, ``level``, ``logger``, ``msg`` and any ``extra={...}`` fields.

Redaction is defence in depth: code must never log a PIN or a My Number in
the first place, but if a message, an argument, an extra field or a traceback
carries one anyway, the filter masks:

* the data of a VERIFY APDU (``00 20 00 xx Lc <data>``) in hex, spaced or not,
  and in pyscard's list-of-ints form;
* values after a PIN-like key (``pin=1234``, ``"pin": "1234"``, ``暗証番号: 1234``);
* any 12-digit number, also written ``1234 5678 9012`` or ``1234-5678-9012``;
* whole values of extra fields whose key names a secret (pin, my_number, ...).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

MASK = "*"

# CLA (00, 80 or 0C) INS=20 P1=00 P2 Lc data...; bytes may be separated by one
# space or colon. The data bytes are masked, the header is kept for debugging.
_VERIFY_HEX = re.compile(
    r"(?i)(?<![0-9a-f])((?:[08]0|0c)[ :]?20[ :]?00[ :]?[0-9a-f]{2}[ :]?[0-9a-f]{2})"
    r"((?:[ :]?[0-9a-f]{2})+)"
)
_VERIFY_INTS = re.compile(
    r"(\[\s*(?:0|128|12)\s*,\s*32\s*,\s*0\s*,\s*\d{1,3}\s*,\s*\d{1,3})((?:\s*,\s*\d{1,3})+)(\s*\])"
)
# A PIN-like key followed by digits or a quoted value. Bare non-digit values
# are left alone so "relay_pin: must be <= 27" stays readable.
_PIN_VALUE = re.compile(
    r"(?i)((?<![a-z])(?:pin|pin[_ -]?code|passcode|暗証番号)['\"]?\s*[:=]\s*)"
    r"(\d{4,16}(?!\d)|'[^']*'|\"[^\"]*\")"
)
# A 12-digit number, contiguous or in groups of four. Spans inside a UUID
# (event ids: hex that may happen to be digits, "-" separated) or inside a
# UUID's 32 hex digits written without separators (booking and member ids:
# about one in fifteen holds a run of 12 decimal digits) do not count.
# Digits are those a number is written with here, ASCII and full-width: a
# digit of another script (Python's \d takes them all) next to the number
# must not hide it.
DIGIT = "[0-9\uff10-\uff19]"
TWELVE_DIGITS = re.compile(rf"(?<!{DIGIT}){DIGIT}{{4}}([ -]?){DIGIT}{{4}}\1{DIGIT}{{4}}(?!{DIGIT})")
UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])"
)


def twelve_digit_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds a 12-digit number (outside UUIDs, hyphenated or not)."""
    found = [m.span() for m in TWELVE_DIGITS.finditer(text)]
    if not found:
        return []
    uuids = [m.span() for m in UUID.finditer(text)]
    return [(a, b) for a, b in found if not any(u0 <= a and b <= u1 for u0, u1 in uuids)]


SECRET_KEY_WORDS = frozenset(
    {"pin", "pincode", "passcode", "password", "mynumber", "my_number", "kojin_bango"}
)

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


def _mask_pin_value(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match.group(1)}{quote}{MASK * 4}{quote}"


def redact_text(text: str) -> str:
    """Mask PIN data, VERIFY APDU data and 12-digit numbers in free text."""
    text = _VERIFY_HEX.sub(lambda m: m.group(1) + re.sub(r"[0-9a-fA-F]", MASK, m.group(2)), text)
    text = _VERIFY_INTS.sub(
        lambda m: m.group(1) + re.sub(r"\d", MASK, m.group(2)) + m.group(3), text
    )
    text = _PIN_VALUE.sub(_mask_pin_value, text)
    for start, end in reversed(twelve_digit_spans(text)):
        text = text[:start] + re.sub(r"\d", MASK, text[start:end]) + text[end:]
    return text


def is_secret_key(key: str) -> bool:
    """True for keys such as ``pin``, ``PIN_code``, ``myNumber``."""
    lowered = key.lower().replace("-", "_")
    compact = lowered.replace("_", "")
    return lowered in SECRET_KEY_WORDS or compact in SECRET_KEY_WORDS


def redact_value(value: Any, key: str = "") -> Any:
    """Redact a structured value (extra fields), recursing into containers."""
    if key and is_secret_key(key):
        return MASK * 4
    match value:
        case bool() | float() | None:
            return value
        case int():
            return redact_text(str(value)) if len(str(abs(value))) == 12 else value
        case str():
            return redact_text(value)
        case dict():
            return {str(k): redact_value(v, str(k)) for k, v in value.items()}
        case list() | tuple() | set() | frozenset():
            return [redact_value(v) for v in value]
        case bytes() | bytearray():
            return redact_text(bytes(value).hex(" "))
    return redact_text(repr(value))


class RedactionFilter(logging.Filter):
    """Rewrites each record in place so no handler can see the raw values."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for key in list(vars(record)):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, redact_value(getattr(record, key), key))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send every logger's records, redacted, as JSON lines to ``stream``.

    Replaces handlers this function installed before, so calling it twice (a
    CLI that re-reads its config) does not duplicate lines.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_kiosk_json", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter())
    handler._kiosk_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
