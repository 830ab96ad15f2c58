"""Pushed configuration, pure logic (contracts.configpush): the allowlist,
merging a facility's and a device's settings, laying settings over a
device file, the editor's TOML, and verifying a kept push."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.commands import CommandError
from contracts.configpush import (
    ConfigPushError,
    apply_settings,
    check_pushable,
    merge_settings,
    services_for,
    settings_from_toml,
    settings_to_toml,
    verify_pushed,
)
from tests.harness.configpush import CommandKey

RAW: dict[str, Any] = {
    "device": {"id": "d1", "facility": "gym"},
    "lock": {"default_unlock_seconds": 5, "pin_factory": "mock"},
    "doors": [{"id": "front", "relay_pin": 17}, {"id": "back", "relay_pin": 18}],
}


def refused(settings: dict[str, Any]) -> ConfigPushError:
    with pytest.raises(ConfigPushError) as caught:
        check_pushable(settings)
    return caught.value


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"device": {"id": "other"}}, "[device]"),
        ({"broker": {"host": "evil.example"}}, "[broker]"),
        ({"central": {"url": "https://evil.example"}}, "[central]"),
        ({"commands": {"public_key_file": "/tmp/k.pem"}}, "[commands]"),
        ({"store": {"path": "/tmp/x.db"}}, "[store]"),
        ({"reader": {"credential_key_file": "/tmp/k"}}, "[reader]"),
        ({"lock": {"socket": "/tmp/s"}}, "lock.socket"),
        ({"lock": {"pin_factory": "mock"}}, "lock.pin_factory"),
        ({"doors": {"front": {"relay_pin": 4}}}, "doors.front.relay_pin"),
        ({"voice": {"cache_dir": "/tmp"}}, "voice.cache_dir"),
    ],
)
def test_configpush_allowlist_refuses_keys_never_pushable(
    settings: dict[str, Any], named: str
) -> None:
    error = refused(settings)
    assert error.code == "not_pushable"
    assert named in error.message


def test_configpush_allowlist_takes_timings_texts_and_tuning() -> None:
    check_pushable({
        "logging": {"level": "DEBUG"},
        "lock": {"default_unlock_seconds": 8, "max_unlock_seconds": 40},
        "doors": {"*": {"held_open_seconds": 60}, "front": {"unlock_seconds": 9,
                                                             "relock_on_close": False}},
        "sync": {"batch_size": 50}, "policy": {"on_stale_cache": "deny"},
        "staff_call": {"where": "1F 総合案内"}, "voice": {"volume": 40},
        "keypad": {"enabled": False, "check_seconds": 10},
    })  # fmt: skip


@pytest.mark.parametrize(
    "settings",
    [
        {"lock": 5},
        {"lock": {"default_unlock_seconds": [1, 2]}},
        {"lock": {"default_unlock_seconds": {"x": 1}}},
        {"doors": {"Front Door": {"unlock_seconds": 3}}},
        {"doors": {"front": 3}},
        {"staff_call": {"where": "x" * 20000}},
    ],
)
def test_configpush_allowlist_refuses_shapes_that_are_no_setting(settings: dict[str, Any]) -> None:
    assert refused(settings).code == "bad_settings"


def test_configpush_merge_device_over_facility_key_by_key() -> None:
    facility: dict[str, Any] = {
        "lock": {"default_unlock_seconds": 8, "max_unlock_seconds": 40},
        "doors": {"*": {"held_open_seconds": 60}, "front": {"unlock_seconds": 5}},
    }
    device = {"lock": {"default_unlock_seconds": 10}, "doors": {"front": {"name": "正面"}},
              "voice": {"volume": 30}}  # fmt: skip
    assert merge_settings(facility, device) == {
        "lock": {"default_unlock_seconds": 10, "max_unlock_seconds": 40},
        "doors": {"*": {"held_open_seconds": 60}, "front": {"unlock_seconds": 5, "name": "正面"}},
        "voice": {"volume": 30},
    }
    assert facility["lock"]["default_unlock_seconds"] == 8  # inputs untouched


def test_configpush_apply_settings_over_the_device_file() -> None:
    settings = {
        "lock": {"default_unlock_seconds": 8},
        "doors": {"*": {"held_open_seconds": 60}, "back": {"held_open_seconds": 90}},
    }
    merged = apply_settings(RAW, settings)
    assert merged["lock"] == {"default_unlock_seconds": 8, "pin_factory": "mock"}
    assert merged["doors"] == [
        {"id": "front", "relay_pin": 17, "held_open_seconds": 60},
        {"id": "back", "relay_pin": 18, "held_open_seconds": 90},
    ]
    assert merged["device"] == RAW["device"]
    assert RAW["lock"] == {"default_unlock_seconds": 5, "pin_factory": "mock"}


def test_configpush_apply_settings_refuses_a_door_the_device_lacks() -> None:
    with pytest.raises(ConfigPushError) as caught:
        apply_settings(RAW, {"doors": {"side": {"unlock_seconds": 3}}})
    assert caught.value.code == "unknown_door"
    assert "doors.side" in caught.value.message


def test_configpush_services_for_changed_sections_with_sync_last() -> None:
    assert services_for({"policy": {}}, {"doors": {}}) == ["kiosk", "lockctl", "sync"]
    assert services_for({"sync": {"batch_size": 5}}) == ["sync"]
    assert services_for({"logging": {"level": "DEBUG"}}) == ["kiosk", "lockctl", "sync"]
    assert services_for({}) == []


def test_configpush_editor_toml_round_trip_and_refusals() -> None:
    settings = {"lock": {"default_unlock_seconds": 8.5}, "doors": {"*": {"relock_on_close": False}},
                "staff_call": {"where": 'Desk "A"\n1F'}, "sync": {"batch_size": 50}}  # fmt: skip
    assert settings_from_toml(settings_to_toml(settings)) == settings
    assert settings_to_toml({}) == ""
    with pytest.raises(ConfigPushError) as caught:
        settings_from_toml("[lock\n")
    assert caught.value.code == "bad_toml"
    with pytest.raises(ConfigPushError) as caught:
        settings_from_toml('[broker]\nhost = "x"\n')
    assert caught.value.code == "not_pushable"


def test_configpush_verify_pushed_long_after_expiry() -> None:
    key = CommandKey()
    long_ago = datetime.now(UTC) - timedelta(days=400)
    payload = key.push("d1", 7, {"voice": {"volume": 10}}, issued_at=long_ago)
    command, args = verify_pushed(payload, key.keys, device="d1")
    assert (command.name, args.version, args.settings) == (
        "config.apply",
        7,
        {"voice": {"volume": 10}},
    )


@pytest.mark.parametrize("case", ["other_device", "other_key", "changed", "not_config", "not_json"])
def test_configpush_verify_pushed_refuses(case: str) -> None:
    key = CommandKey()
    payload = key.push("d1", 7, {"voice": {"volume": 10}})
    device, keys = "d1", key.keys
    if case == "other_device":
        device = "d2"
    elif case == "other_key":
        keys = CommandKey().keys
    elif case == "changed":
        body = json.loads(payload)
        body["args"]["settings"] = {"voice": {"volume": 100}}
        payload = json.dumps(body).encode()
    elif case == "not_config":
        payload = key.sign("d1", "config.reload", {})
    else:
        payload = b"\x00garbage"
    with pytest.raises(CommandError) as caught:
        verify_pushed(payload, keys, device=device)
    expected = {"other_device": "wrong_device", "other_key": "unknown_key",
                "changed": "bad_signature", "not_config": "not_config",
                "not_json": "malformed"}  # fmt: skip
    assert caught.value.code == expected[case]
