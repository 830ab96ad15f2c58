"""Configuration files fuzzed (device: ``sync.config``; central with its
``[issuance]``, ``[devices.listener]`` and the rest: ``central.config``).

A full, valid file has one key replaced by a value of any TOML type (wrong
types, 64-bit extremes, ``inf``/``nan``, dates, arrays, tables) or gets an
unknown key; arbitrary text is parsed too. Whatever the input, the result is
a configuration or the package's ConfigError naming the key, never another
exception (which would crash the process instead of exiting 3 with a line a
technician can act on).
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central import config as central_config
from central.errors import CentralConfigError
from demo.config import demo_config_text
from foundation.errors import ConfigError
from sync import config as device_config

BASE = Path("/srv/kiosk")
MINIMAL = '[device]\nid = "d"\nfacility = "f"\n'

DEVICE = tomllib.loads(demo_config_text())
DEVICE["doors"].append({"id": "room-b", "relay_pin": 5, "contact_pin": 6, "unlock_seconds": 8})
DEVICE["central"] = {
    "url": "https://central.example:8443",
    "timeout_seconds": 10,
    "tls": {"ca_file": "ca.pem", "cert_file": "d.pem", "key_file": "d.key"},
}
DEVICE["enrolment"] = {"enabled": True}
DEVICE["sync"] = {"batch_size": 100, "poll_interval_seconds": 0.5}
DEVICE["policy"]["stale_cache_minutes"] = 60  # fmt: skip

CENTRAL: dict[str, Any] = {
    "database": {"url": "sqlite:///central.db", "pool_size": 5},
    "broker": {"host": "broker", "port": 8883, "reconnect_max_seconds": 30,
               "tls": {"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "c.key"}},
    "ingest": {"worker_id": "w1", "queue_size": 2000, "commit_batch": 50},
    "reservations": {"code_key_file": "code.key", "checkin_grace_minutes": 15},
    "api": {"host": "127.0.0.1", "port": 8080},
    "ops": {"evaluate_every_seconds": 15, "thresholds": {"offline_after_s": 120}},
    "notify": {"webhook": {"url": "https://hooks.example/x", "timeout_seconds": 5},
               "email": {"host": "smtp", "sender": "a@example.jp", "recipients": ["b@example.jp"]}},
    "booking_webhook": {"url": "https://booking.example/hook", "secret_file": "hook.secret"},
    "devices": {"listener": {"port": 8443, "cert_file": "s.pem", "key_file": "s.key",
                             "client_ca_file": "fleet-ca.pem", "client_crl_file": "fleet-crl.pem"}},
    "enrolment": {"enabled": True},
    "issuance": {
        "enabled": True, "timezone": "Asia/Tokyo", "challenge_seconds": 120,
        "allowed_devices": ["counter-1"], "jpki_roots": ["root.pem"],
        "hours": {"opens": "08:30", "closes": "19:00", "closed_days": ["01-01"],
                  "holidays": ["2026-05-05"]},
        "kinds": [{"id": "juminhyo", "label_ja": "住民票", "label_en": "Residence",
                   "fee_yen": 200, "options": ["household"],
                   "hours": {"opens": "09:00", "closes": "17:00"}}],
    },
}  # fmt: skip


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (tables inline), for the documents below."""
    match value:
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float() if math.isnan(value):
            return "nan"
        case float() if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        case float():
            return repr(value)
        case str():
            return toml_string(value)
        case dt.datetime() | dt.date() | dt.time():
            return value.isoformat()
        case list():
            return "[" + ", ".join(toml_value(v) for v in value) + "]"
        case dict():
            pairs = (f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items())
            return "{" + ", ".join(pairs) + "}"
    raise TypeError(value)


def toml_string(text: str) -> str:
    """A TOML basic string: control characters, quote and backslash escaped."""
    escaped = (f"\\u{ord(c):04x}" if c < " " or c in '"\\\x7f' else c for c in text)
    return '"' + "".join(escaped) + '"'


def toml_text(document: dict[str, Any]) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in document.items())


def leaves(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a document (list items by index), tables included."""
    items = document.items() if isinstance(document, dict) else enumerate(document)
    found = []
    for key, value in items:
        found.append((*path, key))
        if isinstance(value, dict | list):
            found += leaves(value, (*path, key))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[path[0]] = replaced(document[path[0]], path[1:], value)
    return copy


text_values = st.text(max_size=20) | st.sampled_from(
    ["", "Mars/Base", "../../etc/passwd", "24:00", "sqlite:///", "\x7f", "ünï"]
)
toml_scalars = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from([0, -1, 2**63 - 1, -(2**63)])
    | st.floats()
    | text_values
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.times()
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def check_mutation(parse: Any, error: type[Exception], base: dict[str, Any], data: Any) -> None:
    path = data.draw(st.sampled_from(leaves(base)))
    if data.draw(st.booleans()):  # a wrong value for a known key ...
        document = replaced(base, path, data.draw(toml_values))
    else:  # ... or an unknown key beside it
        parent = path[:-1]
        owner: Any = base
        for part in parent:
            owner = owner[part]
        if not isinstance(owner, dict):
            return
        path = (
            *parent,
            data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in owner)),
        )
        document = replaced(base, parent, {**owner, path[-1]: data.draw(toml_values)})
    try:
        parse(toml_text(document), "fuzz.toml", BASE)
    except error as exc:
        message = str(exc)
        assert "fuzz.toml" in message
        # Named by its own key, its section's (a rule across keys), or the
        # whole file's (a rule across sections says the keys in words).
        assert any(dotted(path[:n]) in message for n in range(1, len(path) + 1)) or (
            "(top level)" in message
        ), (path, message)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_config_fuzz_device_wrong_values_are_config_errors_naming_the_key(data: Any) -> None:
    check_mutation(device_config.parse_config, ConfigError, DEVICE, data)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_config_fuzz_central_wrong_values_are_config_errors_naming_the_key(data: Any) -> None:
    check_mutation(central_config.parse_config, CentralConfigError, CENTRAL, data)


def test_config_fuzz_bases_are_valid() -> None:
    # The fuzz above starts from files that load.
    device_config.parse_config(toml_text(DEVICE), "d", BASE)
    central_config.parse_config(toml_text(CENTRAL), "c", BASE)


toml_ish = st.lists(
    st.sampled_from(["[device]", "[[doors]]", "[lock]", "[issuance]", "[[issuance.kinds]]",
                     "[devices.listener]", 'id = "a"', "relay_pin = 3", "x = [", "= 1", "a.b.c = 1",
                     "seconds = inf", 'timezone = "Asia"', "[device]\n[device]"])
    | st.text(max_size=30),
    max_size=8,
).map("\n".join)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(text=toml_ish | st.integers(1, 5000).map(lambda n: "a = " + "[" * n + "]" * n))
def test_config_fuzz_any_text_is_a_config_or_a_config_error(text: str) -> None:
    for parse, error in ((device_config.parse_config, ConfigError),
                         (central_config.parse_config, CentralConfigError)):  # fmt: skip
        try:
            parse(text, "fuzz.toml", BASE)
        except error as exc:
            assert "fuzz.toml" in str(exc)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a = " + "[" * 3000 + "]" * 3000, "nested too deeply"),
        (MINIMAL + 'timezone = "Asia"\n', "device.timezone: unknown time zone"),
        (MINIMAL + 'timezone = "Mars/Base"\n', "device.timezone"),
        (MINIMAL + "[lock]\nmax_unlock_seconds = nan\n",
         "lock.max_unlock_seconds: Input should be a finite number"),
        (MINIMAL + '[[doors]]\nid = "a"\nrelay_pin = 2\nunlock_seconds = inf\n',
         "doors.0.unlock_seconds: Input should be a finite number"),
        (MINIMAL + "[policy]\nstale_cache_minutes = 9223372036854775807\n",
         "policy.stale_cache_minutes"),
    ],
)  # fmt: skip
def test_config_fuzz_found_cases_are_config_errors(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        device_config.parse_config(text, "found.toml", BASE)
    assert problem in str(caught.value)


def test_config_fuzz_deep_nesting_in_central_file_is_a_config_error() -> None:
    with pytest.raises(CentralConfigError, match="nested too deeply"):
        central_config.parse_config("a = " + "{b = " * 3000 + "1" + "}" * 3000, "c", BASE)


def test_config_fuzz_central_zone_that_is_a_folder_is_a_config_error() -> None:
    with pytest.raises(CentralConfigError, match=r"issuance\.timezone"):
        central_config.parse_config('[issuance]\ntimezone = "Asia"\n', "c", BASE)


def test_config_fuzz_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "device.toml"
    file.write_bytes(b'[device]\nid = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="cannot be read"):
        device_config.load_config(file)
    with pytest.raises(CentralConfigError, match="cannot be read"):
        central_config.load_config(file)
