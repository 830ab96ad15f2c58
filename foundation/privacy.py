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
