"""Personal-data guard for event data (defence in depth).

Events carry opaque references only. This guard refuses, before anything is
written, event data that looks like personal data:

* a key that names personal data (name, address, pin, birth date, phone,
  e-mail, My Number ...), matched on the words of the key, so ``full_name``
  and ``homeAddress`` are refused but ``door_name_ja`` is not special-cased;
* any 12-digit number (an int, or digits in a string, contiguous or grouped
  4-4-4), except as the last group of a UUID;
* raw bytes (card UIDs, certificates) -- references must be text.

Opaque credential references are base32 text, so they cannot trip the
12-digit rule by chance.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from foundation.errors import PersonalDataError
from foundation.logs import twelve_digit_spans

# Words which, as a whole word of a key, name personal data.
PERSONAL_KEY_WORDS = frozenset(
    {
        "name", "names", "address", "addr", "pin", "pincode", "passcode", "password",
        "birth", "birthday", "birthdate", "dob", "phone", "tel", "email", "mail",
        "mynumber", "kojinbango", "sex", "gender", "uid", "idm", "serial",
    }
)  # fmt: skip
# Words that make a key that contains "name" harmless: door_name is a label.
ALLOWED_KEY_WORDS = frozenset({"door", "room", "facility", "device", "file", "type", "host"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
MAX_DEPTH = 16
# Every 12-digit number the guard refuses (an int, a float, digits in text,
# grouped 4-4-4 or not) shows up in the data's JSON text as four digits in a
# row; JSON never escapes a digit. Text without such a run is clean of them.
_FOUR_DIGITS = re.compile(r"\d{4}")
# One encoder for every call: json.dumps with options builds a new one each time.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def key_words(key: str) -> list[str]:
    """Split ``homeAddress`` / ``full_name`` / ``my-number`` into lower words."""
    spaced = _CAMEL.sub("_", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


@functools.lru_cache(maxsize=4096)  # event keys repeat; this is on every append
def _personal_key(key: str) -> bool:
    words = key_words(key)
    joined = "".join(words)
    if joined in PERSONAL_KEY_WORDS:
        return True
    if any(w in ALLOWED_KEY_WORDS for w in words):
        return False
    return any(w in PERSONAL_KEY_WORDS for w in words)


def check_event_data(data: Mapping[str, Any]) -> None:
    """Raise :class:`PersonalDataError` if ``data`` looks like personal data."""
    if not isinstance(data, Mapping):
        raise PersonalDataError("data", f"must be an object, not {type(data).__name__}")
    _check(data, "data", 0)


def guarded_json(data: Mapping[str, Any]) -> str:
    """``data`` as compact JSON, after the personal-data guard.

    The same refusals as :func:`check_event_data` (raised by it, with the
    same messages), and :class:`PersonalDataError` for data JSON cannot
    represent. Cheap for the common case, a flat object without four digits
    in a row (about a microsecond on top of the encoding): its keys are
    checked as one cached tuple and its values by one search of the text;
    anything else gets the full walk. On every append, so its cost counts.
    """
    plain = type(data) is dict  # the outbox's case; isinstance of an ABC costs more
    if not plain and not isinstance(data, Mapping):
        raise PersonalDataError("data", f"must be an object, not {type(data).__name__}")
    try:
        text = _COMPACT.encode(data)
    except (TypeError, ValueError, RecursionError) as exc:
        _check(data, "data", 0)  # the guard's own reason first (bytes, depth, ...)
        raise PersonalDataError("data", f"not representable as JSON ({exc})") from None
    # One "{" and no "[": a flat object (a nested one would add either).
    flat = plain and text.count("{") == 1 and "[" not in text
    if not (flat and _plain_keys(tuple(data)) and _FOUR_DIGITS.search(text) is None):
        _check(data, "data", 0)
    return text


@functools.lru_cache(maxsize=1024)  # events of one type have the same keys
def _plain_keys(keys: tuple[object, ...]) -> bool:
    """All keys are text and none names personal data."""
    return all(isinstance(k, str) and not _personal_key(k) for k in keys)


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise PersonalDataError(where, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_key(key, where)
            _check(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
    else:
        problem = _scalar_problem(value)
        if problem:
            raise PersonalDataError(where, problem)


def _check_key(key: object, where: str) -> None:
    if not isinstance(key, str):
        raise PersonalDataError(where, f"key {key!r} is not text")
    if _personal_key(key):
        raise PersonalDataError(
            f"{where}.{key}", "key names personal data; use an opaque reference"
        )


def _scalar_problem(value: Any) -> str:
    """Why a scalar may not be in event data; empty when it may."""
    twelve = "a 12-digit number is not allowed in events"
    match value:
        case bool() | None:
            return ""
        case int():
            return twelve if len(str(abs(value))) == 12 else ""
        case float():
            return twelve if value.is_integer() and len(str(abs(int(value)))) == 12 else ""
        case str():
            return (
                "text containing a 12-digit number is not allowed"
                if twelve_digit_spans(value)
                else ""
            )
        case bytes() | bytearray() | memoryview():
            return "raw bytes are not allowed; use an opaque reference"
    return f"values of type {type(value).__name__} are not JSON"
