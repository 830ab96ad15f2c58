"""The personal-data guard refuses what looks like personal data."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundation.privacy import check_event_data, guarded_json
from sync.errors import PersonalDataError

twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)
separators = st.sampled_from(["", " ", "-"])


@given(
    number=twelve_digits, before=st.text(max_size=20), after=st.text(max_size=20), sep=separators
)
def test_privacy_rejects_any_twelve_digit_number_in_text(
    number: str, before: str, after: str, sep: str
) -> None:
    written = sep.join([number[:4], number[4:8], number[8:]])
    # Keep the number whole: no digits glued to either side.
    text = f"{before.rstrip('0123456789')} {written} {after.lstrip('0123456789')}"
    with pytest.raises(PersonalDataError):
        check_event_data({"note": text})


@given(st.integers(min_value=10**11, max_value=10**12 - 1))
def test_privacy_rejects_twelve_digit_integers(value: int) -> None:
    with pytest.raises(PersonalDataError):
        check_event_data({"nested": [{"value": value}]})
    with pytest.raises(PersonalDataError):
        check_event_data({"value": -value})


@pytest.mark.parametrize(
    "key",
    ["name", "full_name", "homeAddress", "address", "pin", "PIN", "pin_code", "birth_date",
     "phone", "email", "my_number", "myNumber", "card_uid", "idm", "cert_serial"],
)  # fmt: skip
def test_privacy_rejects_personal_keys(key: str) -> None:
    with pytest.raises(PersonalDataError) as err:
        check_event_data({"outer": {key: "x"}})
    assert key in str(err.value)


def test_privacy_rejects_bytes_and_non_json() -> None:
    with pytest.raises(PersonalDataError):
        check_event_data({"ref": b"\x01\x02"})
    with pytest.raises(PersonalDataError):
        check_event_data({"when": object()})
    with pytest.raises(PersonalDataError):
        check_event_data({1: "x"})  # type: ignore[dict-item]


@given(st.uuids())
def test_privacy_allows_event_ids_and_ordinary_data(event_id: uuid.UUID) -> None:
    check_event_data(
        {
            "door": "room-a",
            "door_name": "Room A",
            "reason": "check-in",
            "ref": "cr1_mfrggzdfmztwq2lknnwg23tpobyxe43u",
            "reservation": str(event_id),
            "seconds": 5,
            "opened_at": "2026-11-28T10:00:00+09:00",
            "count": 123456789,  # 9 digits
            "big": 1234567890123,  # 13 digits: not a My Number
        }
    )


def test_privacy_rejects_too_deep_nesting() -> None:
    data: dict[str, object] = {}
    inner = data
    for _ in range(20):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    with pytest.raises(PersonalDataError):
        check_event_data(data)


@given(st.uuids())
def test_privacy_allows_ids_written_as_32_hex_digits(event_id: uuid.UUID) -> None:
    # Booking and member ids are uuid4().hex; about one in fifteen holds a
    # run of 12 decimal digits, which must not make its events unsendable.
    check_event_data({"reservation": event_id.hex, "path": f"/bookings/{event_id.hex}/cancel"})


def test_privacy_hex_id_with_a_twelve_digit_run_is_allowed_but_a_tagged_number_is_not() -> None:
    check_event_data({"reservation": "48733d26d7364e0a162902463233de4f"})
    for text in ("MN123456789012", "id 123456789012", "0a123456789012"):
        with pytest.raises(PersonalDataError):
            check_event_data({"note": text})


# JSON-like event data: what callers hand the outbox, including what the guard refuses.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**13), max_value=10**13)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.sampled_from('0123456789０１２ -abcnx{[\n"'), max_size=30)
    | st.binary(max_size=3)
)
_keys = st.sampled_from(["door", "name", "door_name", "ref", "pin", "n", "homeAddress", "x"])
_data = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_keys | st.integers(0, 3), _data, max_size=5))
def test_privacy_guarded_json_refuses_exactly_what_the_guard_refuses(data: dict[str, Any]) -> None:
    # guarded_json (the outbox's path) skips the walk for flat data without
    # four digits in a row: it must still refuse the same data, the same way.
    try:
        check_event_data(data)
        json.dumps(data, allow_nan=False)
        expected: str | None = None
    except (PersonalDataError, TypeError, ValueError) as exc:
        expected = str(exc) if isinstance(exc, PersonalDataError) else "not representable"
    try:
        text = guarded_json(data)
    except PersonalDataError as exc:
        assert expected is not None
        assert expected in str(exc)
    else:
        assert expected is None
        assert json.loads(text) == json.loads(json.dumps(data))
