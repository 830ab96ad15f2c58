"""Device configuration: typed, validated, clear errors; the demo's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.config import demo_config_text, write_demo_config
from sync.config import load_config, parse_config
from sync.errors import ConfigError

MINIMAL = '[device]\nid = "gym-door-01"\nfacility = "gym"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_demo_file_names_the_key_it_writes(tmp_path: Path) -> None:
    config = load_config(write_demo_config(tmp_path))
    assert config.device.id == "demo-door-01"
    assert config.lock.pin_factory == "mock"
    assert config.store.path == tmp_path / "device.db"
    assert [d.id for d in config.doors] == ["room-a"]
    assert config.reader.credential_key_file == tmp_path / "credential.key"
    assert len(bytes.fromhex(config.reader.credential_key_file.read_text())) == 32


COUNTER = MINIMAL.replace("\n", '\nrole = "counter"\n', 1)


def test_config_counter_names_payment_and_printer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, COUNTER))
    assert "issuance.payment_backend is required on a counter kiosk" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, COUNTER + '[issuance]\npayment_backend = "sim"\n'))
    assert "issuance.printer_backend is required on a counter kiosk" in str(err.value)
    ok = COUNTER + '[issuance]\npayment_backend = "sim"\nprinter_backend = "file"\n'
    assert load_config(write(tmp_path, ok)).issuance.payment_backend == "sim"
    assert load_config(write(tmp_path, MINIMAL)).issuance.payment_backend is None  # a door


@pytest.mark.parametrize(
    ("issuance", "expected"),
    [
        ('payment_backend = "acme-pay"\nprinter_backend = "file"', "issuance.payment_backend"),
        ('payment_backend = "sim"\nprinter_backend = "laser"', "issuance.printer_backend"),
        ('payment_backend = "sim"\nprinter_backend = "cups"', "cups_queue is required"),
    ],
)
def test_config_unknown_backend_is_a_config_error(
    tmp_path: Path, issuance: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f"{COUNTER}[issuance]\n{issuance}\n"))
    assert expected in str(err.value)
    assert str(tmp_path / "device.toml") in str(err.value)


def test_config_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.device.role == "door"
    assert config.store.path == tmp_path / "device.db"  # relative to the file
    assert config.policy.on_untrusted_clock == "deny"
    assert config.source == str(tmp_path / "device.toml")


def test_config_missing_file_names_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(err.value)
    assert "not found" in str(err.value)


def test_config_bad_toml_reports_location(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL + "broken = 1 2\n"))
    assert "not valid TOML" in str(err.value)
    assert "line" in str(err.value)


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ('[store]\npaht = "x.db"\n', "store.paht", "unknown key"),
        ("[lock]\nmax_unlock_seconds = -3\n", "lock.max_unlock_seconds", "greater than 0"),
        ('[[doors]]\nid = "a"\nrelay_pin = 99\n', "doors.0.relay_pin", "less than or equal to 27"),
        ('[[doors]]\nid = "a"\n', "doors.0.relay_pin", "required key is missing"),
        ('[policy]\non_stale_cache = "maybe"\n', "policy.on_stale_cache", "'allow' or 'deny'"),
        ("[broker]\nport = 0\n", "broker.port", "greater than or equal to 1"),
    ],
)
def test_config_invalid_value_names_key_and_expectation(
    tmp_path: Path, extra: str, key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL + extra))
    message = str(err.value)
    assert key in message
    assert expected in message
    assert "device.toml" in message


def test_config_duplicate_gpio_rejected(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + '[[doors]]\nid = "a"\nrelay_pin = 17\n'
        + '[[doors]]\nid = "b"\nrelay_pin = 18\ncontact_pin = 17\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert "GPIO17 is already used by doors[0].relay_pin" in str(err.value)


def test_config_default_unlock_above_max_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            write(
                tmp_path, MINIMAL + "[lock]\ndefault_unlock_seconds = 60\nmax_unlock_seconds = 30\n"
            )
        )
    assert "must not exceed max_unlock_seconds" in str(err.value)


def test_config_missing_device_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[logging]\nlevel = 'INFO'\n"))
    assert "device: required key is missing" in str(err.value)


def test_config_demo_text_is_valid_and_documented() -> None:
    config = parse_config(demo_config_text(), "demo", Path("/state"))
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for section, model in config:
        if section == "source":
            continue
        assert f"[{section}]" in docs or f"[[{section}]]" in docs, f"section {section} undocumented"
        fields = model[0] if isinstance(model, list) else model
        for key in type(fields).model_fields:
            assert f"`{key}`" in docs, f"{section}.{key} is not documented in docs/configuration.md"
