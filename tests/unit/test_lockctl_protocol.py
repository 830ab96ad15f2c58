"""The socket API's request parsing: every bad request is a RequestError with a
code, never another exception (fuzzed with hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockctl.errors import RequestError
from lockctl.machine import Reason
from lockctl.protocol import (
    MAX_REQUEST_BYTES,
    Lock,
    MockDrive,
    Status,
    Subscribe,
    Unlock,
    encode,
    error_reply,
    ok_reply,
    parse_request,
)


def req(**body: object) -> bytes:
    return json.dumps(body).encode()


def test_protocol_parses_every_op() -> None:
    line = req(op="unlock", door="a", seconds=5, reason="check-in", ref="r-1", id=7)
    assert parse_request(line) == (7, Unlock("a", 5.0, Reason.CHECK_IN, "r-1"))
    assert parse_request(req(op="unlock", door="a")) == (
        None,
        Unlock("a", None, Reason.REMOTE, None),
    )
    assert parse_request(req(op="lock", door="a", id="x")) == ("x", Lock("a"))
    assert parse_request(req(op="status")) == (None, Status())
    assert parse_request(req(op="subscribe")) == (None, Subscribe())
    assert parse_request(req(op="mock", door="a", input="contact", state="open")) == (
        None, MockDrive("a", "contact", "open"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b"[" * 5000, "too_large"),
        (b"[" * 4000, "bad_json"),
        (req(op="open-sesame"), "unknown_op"),
        (req(door="a"), "unknown_op"),
        (req(op="unlock"), "bad_request"),
        (req(op="unlock", door=3), "bad_request"),
        (req(op="unlock", door="a", seconds=-1), "bad_seconds"),
        (req(op="unlock", door="a", seconds=0), "bad_seconds"),
        (b'{"op": "unlock", "door": "a", "seconds": NaN}', "bad_seconds"),
        (b'{"op": "unlock", "door": "a", "seconds": Infinity}', "bad_seconds"),
        (req(op="unlock", door="a", seconds=10**9), "bad_seconds"),
        (req(op="unlock", door="a", seconds=10**400), "bad_seconds"),  # too big for a float
        (req(op="unlock", door="a", seconds=-(10**400)), "bad_seconds"),
        (req(op="unlock", door="a", seconds="5"), "bad_seconds"),
        (req(op="unlock", door="a", seconds=True), "bad_seconds"),
        (req(op="unlock", door="a", reason="exit_button"), "bad_reason"),
        (req(op="unlock", door="a", reason="because"), "bad_reason"),
        (req(op="unlock", door="a", ref="123456789012"), "bad_ref"),
        (req(op="unlock", door="a", ref="Taro Yamada"), "bad_ref"),
        (req(op="unlock", door="a", ref=""), "bad_ref"),
        (req(op="unlock", door="a", colour="red"), "bad_request"),
        (req(op="status", id=True), "bad_request"),
        (req(op="status", id=[1]), "bad_request"),
        (b'{"op": "unlock", "door": "\\ud800"}', "bad_json"),  # a lone surrogate
        (b'{"op": "status", "id": "\\udfff"}', "bad_json"),
        (req(op="mock", door="a", input="relay", state="open"), "bad_request"),
        (req(op="mock", door="a", input="fire-alarm", state="on"), "bad_request"),
    ],
)
def test_protocol_bad_request_has_code(line: bytes, code: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(line)
    assert info.value.code == code
    assert info.value.message


def test_protocol_oversized_request_refused() -> None:
    line = req(op="unlock", door="a", ref="x" * MAX_REQUEST_BYTES)
    with pytest.raises(RequestError, match="too_large"):
        parse_request(line)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from(["unlock", "lock", "status", "subscribe", "mock"])
        | st.text(max_size=8),
        "door": st.sampled_from(["room-a", ""]) | json_values,
        "seconds": st.floats(allow_nan=True, allow_infinity=True) | st.integers() | json_values,
        "reason": st.sampled_from(["check-in", "staff", "remote", "exit_button"]) | json_values,
        "ref": st.text(max_size=140) | json_values,
        "id": json_values,
        "input": st.sampled_from(["contact", "exit_button", "relay"]) | json_values,
        "state": st.sampled_from(["open", "closed", "pressed", "high"]) | json_values,
    },
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300) | fields.map(lambda f: json.dumps(f).encode()))
def test_protocol_fuzzed_lines_parse_or_raise_request_error(line: bytes) -> None:
    try:
        _, request = parse_request(line)
    except RequestError as exc:
        assert exc.code in {"bad_json", "too_large", "bad_request", "unknown_op", "bad_seconds",
                            "bad_reason", "bad_ref"}  # fmt: skip
        return
    if isinstance(request, Unlock) and request.seconds is not None:
        assert 0 < request.seconds <= 86400


def test_protocol_encode_carries_any_text() -> None:
    # A reply never raises on the way out (that would drop the connection).
    line = encode(error_reply("\ud800", "x", "door '\udfff'"))
    assert json.loads(line) == {"ok": False, "id": "\ud800",
                                "error": {"code": "x", "message": "door '\udfff'"}}  # fmt: skip
    assert parse_request(req(op="status", id="\U0001f600")) == ("\U0001f600", Status())


# JSON text a careless or hostile client could send: lone surrogate escapes,
# integers beyond any float, deep nesting; each must be a RequestError too.
hostile_values = (
    st.integers(min_value=-(10**500), max_value=10**500)
    | st.sampled_from(["\ud800", "a\udfffb", "\U0001f600"])
    | st.text(st.characters(codec="utf-8"), max_size=10)
)
hostile_fields = st.fixed_dictionaries(
    {"op": st.sampled_from(["unlock", "lock", "signal", "mock", "status"])},
    optional={"door": hostile_values, "seconds": hostile_values, "id": hostile_values,
              "ref": hostile_values, "pattern": hostile_values},
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    hostile_fields.map(lambda f: json.dumps(f).encode())
    | st.integers(1, 3000).map(lambda n: b'{"op": "status", "id": ' + b"[" * n + b"]" * n + b"}")
)
def test_protocol_hostile_json_parses_or_raises_request_error(line: bytes) -> None:
    try:
        req_id, request = parse_request(line)
    except RequestError as exc:
        assert exc.code in {"bad_json", "too_large", "bad_request", "unknown_op",
                            "bad_seconds", "bad_reason", "bad_ref"}  # fmt: skip
        return
    encode(ok_reply(req_id, request=repr(request))).decode()  # always a valid UTF-8 line
    if isinstance(request, Unlock) and request.seconds is not None:
        assert 0 < request.seconds <= 86400
