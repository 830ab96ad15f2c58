"""JSON logging and redaction: no PIN, VERIFY data or 12-digit number gets out."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundation.logs import configure_logging, redact_text, redact_value

pins = st.text(alphabet="0123456789", min_size=4, max_size=4)
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)


def verify_apdu_hex(pin: str, sep: str, upper: bool) -> str:
    apdu = bytes([0x00, 0x20, 0x00, 0x80, len(pin)]) + pin.encode()
    text = apdu.hex(sep) if sep else apdu.hex()
    return text.upper() if upper else text


def no_digits_at_edges(before: str, after: str) -> tuple[str, str]:
    return before.rstrip("0123456789abcdefABCDEF"), after.lstrip("0123456789abcdefABCDEF")


@given(
    pin=pins, sep=st.sampled_from(["", " ", ":"]), upper=st.booleans(), before=texts, after=texts
)
def test_logs_redact_verify_apdu_data(
    pin: str, sep: str, upper: bool, before: str, after: str
) -> None:
    before, after = no_digits_at_edges(before, after)
    apdu = verify_apdu_hex(pin, sep, upper)
    out = redact_text(f"{before} {apdu} {after}")
    data_hex = pin.encode().hex(sep) if sep else pin.encode().hex()
    assert data_hex.lower() not in out.lower()
    assert verify_apdu_hex(pin, sep, upper)[: 4 * (2 + len(sep))] in out  # header kept


@given(pin=pins)
def test_logs_redact_verify_apdu_as_int_list(pin: str) -> None:
    apdu = [0x00, 0x20, 0x00, 0x81, 4, *pin.encode()]
    out = redact_text(f"transmit {apdu}")
    assert str(list(pin.encode()))[1:-1] not in out


@given(pin=pins, key=st.sampled_from(["pin", "PIN", "Pin_Code", "暗証番号", "passcode"]),
       sep=st.sampled_from(["=", ": ", " = ", '": "']))  # fmt: skip
def test_logs_redact_pin_after_key(pin: str, key: str, sep: str) -> None:
    quote = '"' if '"' in sep else ""
    out = redact_text(f"got {quote}{key}{sep}{pin}{quote} from keypad")
    assert pin not in out


@given(number=st.text(alphabet="0123456789", min_size=12, max_size=12),
       sep=st.sampled_from(["", " ", "-"]), before=texts, after=texts)  # fmt: skip
def test_logs_redact_twelve_digit_numbers(number: str, sep: str, before: str, after: str) -> None:
    digits = "0123456789０１２３４５６７８９"  # a digit next to the number makes it longer
    before, after = before.rstrip(digits), after.lstrip(digits)
    written = sep.join([number[:4], number[4:8], number[8:]])
    out = redact_text(f"{before}{written}{after}")
    assert written not in out
    assert number not in out.replace(sep, "") if sep else number not in out


def test_logs_redact_twelve_digits_beside_another_scripts_digit() -> None:
    # Hypothesis found it: U+AA50 (CHAM DIGIT ZERO) is a digit to Python's \d.
    assert "000000000000" not in redact_text("000000000000\uaa50")
    assert "１２３４５６７８９０１２" not in redact_text("番号１２３４５６７８９０１２です")


@given(st.uuids())
def test_logs_keep_gpio_pin_numbers_and_uuids_readable(event_id: object) -> None:
    known = "2c12a79d-7140-9428-2741-a89ab94ba047"  # middle groups look like 4-4-4 digits
    text = f"relay_pin: must be <= 27 (got 40) event {event_id} and {known}"
    assert redact_text(text) == text


def test_logs_redact_structured_values() -> None:
    value = {"pin": "1234", "nested": {"myNumber": "x"}, "ids": [123456789012, 5], "ok": True}
    assert redact_value(value) == {
        "pin": "****", "nested": {"myNumber": "****"}, "ids": ["************", 5], "ok": True,
    }  # fmt: skip


def test_logs_json_lines_with_extras_and_redaction() -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream)
    try:
        log = logging.getLogger("test.logs")
        log.info("verify %s", "00 20 00 80 04 31 32 33 34", extra={"door": "a", "pin": "9999"})
        try:
            raise ValueError("number 123456789012 in trouble")
        except ValueError:
            log.exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["level"] == "INFO"
    assert lines[0]["logger"] == "test.logs"
    assert lines[0]["door"] == "a"
    assert lines[0]["pin"] == "****"
    assert "31 32 33 34" not in lines[0]["msg"]
    assert "123456789012" not in lines[1]["exc"]
    assert "ValueError" in lines[1]["exc"]
    assert "9999" not in stream.getvalue()


def test_logs_configure_twice_does_not_duplicate(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream)
    handler = configure_logging("INFO", stream)
    try:
        logging.getLogger("x").warning("once")
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue().count("once") == 1
