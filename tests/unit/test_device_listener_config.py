"""The device listener's configuration: ``[devices.listener]``, the card
enrolment switch, the old ``[issuance.listener]`` name, and the errors."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest

from central.cli import main
from central.cli_common import EXIT_CONFIG
from central.config import parse_config
from central.devices.config import DeviceListenerSection, EnrolmentSection
from central.devices.listener import tls_context
from central.errors import CentralConfigError
from deploy import pki
from foundation import x509 as x509_builder
from tests.harness.keys import write_test_key

LISTENER = (
    '[devices.listener]\nport = 9443\ncert_file = "tls/server.pem"\n'
    'key_file = "tls/server.key"\nclient_ca_file = "tls/fleet-ca.pem"\n'
    'client_crl_file = "tls/fleet-crl.pem"\n'
)
DAY = dt.timedelta(days=1)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "central.md"


def problems(text: str, tmp_path: Path) -> str:
    with pytest.raises(CentralConfigError) as caught:
        parse_config(text, "central.toml", tmp_path)
    return "\n".join(caught.value.problems)


def test_device_listener_config_enrolment_without_issuance(tmp_path: Path) -> None:
    config = parse_config("[enrolment]\nenabled = true\n" + LISTENER, "t", tmp_path)
    assert config.enrolment.enabled and not config.issuance.enabled
    assert config.device_listener_enabled
    listener = config.devices.listener
    assert listener is not None and listener.port == 9443
    assert listener.cert_file == tmp_path / "tls" / "server.pem"
    assert listener.client_crl_file == tmp_path / "tls" / "fleet-crl.pem"


def test_device_listener_config_off_by_default(tmp_path: Path) -> None:
    config = parse_config("", "t", tmp_path)
    assert config.devices.listener is None and not config.device_listener_enabled


def test_device_listener_config_enrolment_needs_the_listener(tmp_path: Path) -> None:
    found = problems("[enrolment]\nenabled = true\n", tmp_path)
    assert "enrolment.enabled needs the device listener: [devices.listener]" in found


def test_device_listener_config_tls_files_are_required(tmp_path: Path) -> None:
    found = problems("[enrolment]\nenabled = true\n[devices.listener]\nport = 9443\n", tmp_path)
    for key in ("cert_file", "key_file", "client_ca_file", "client_crl_file"):
        assert f"devices.listener.{key}: required key is missing" in found


def test_device_listener_config_old_issuance_listener_is_accepted(tmp_path: Path) -> None:
    old = LISTENER.replace("[devices.listener]", "[issuance.listener]")
    config = parse_config("[issuance]\nenabled = true\n" + old, "t", tmp_path)
    listener = config.devices.listener
    assert listener is not None and listener.port == 9443
    assert listener.client_ca_file == tmp_path / "tls" / "fleet-ca.pem"
    assert not config.enrolment.enabled  # enrolment has its own switch now


def test_device_listener_config_both_names_is_an_error(tmp_path: Path) -> None:
    old = LISTENER.replace("[devices.listener]", "[issuance.listener]")
    found = problems(LISTENER + old, tmp_path)
    assert "[issuance.listener] and [devices.listener] are both given" in found


def test_device_listener_config_keys_are_documented() -> None:
    text = DOCS.read_text()
    for model, prefix in ((DeviceListenerSection, "devices.listener"),
                          (EnrolmentSection, "enrolment")):  # fmt: skip
        for key in model.model_fields:
            assert f"`{prefix}.{key}`" in text, f"{prefix}.{key} is not in docs/central.md"


def test_device_listener_config_errors_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = write_test_key(tmp_path / "credential.key")
    base = f'[database]\nurl = "sqlite:///{tmp_path / "c.db"}"\n'
    base += f'[reservations]\ncode_key_file = "{key}"\n[broker]\nport = 1\n'
    no_listener = tmp_path / "no-listener.toml"
    no_listener.write_text(base + "[enrolment]\nenabled = true\n")
    assert main(["serve", "--config", str(no_listener)]) == EXIT_CONFIG
    assert "enrolment.enabled needs the device listener" in capsys.readouterr().err
    # The keys are there but the files are not: refused before serving anything.
    no_files = tmp_path / "no-files.toml"
    no_files.write_text(base + "[enrolment]\nenabled = true\n" + LISTENER)
    assert main(["serve", "--config", str(no_files)]) == EXIT_CONFIG
    assert "devices.listener: TLS files unusable" in capsys.readouterr().err


def _listener_files(tmp_path: Path) -> DeviceListenerSection:
    ca = pki.create_ca("fleet")
    pki.issue(ca, "central-devices", server_names=["localhost"], client=False).write(
        tmp_path / "server.pem", tmp_path / "server.key"
    )
    pki.write_cert(ca.cert, tmp_path / "ca.pem")
    pki.write_crl(pki.build_crl(ca, {}), tmp_path / "crl.pem")
    return DeviceListenerSection(cert_file=tmp_path / "server.pem",
                                 key_file=tmp_path / "server.key",
                                 client_ca_file=tmp_path / "ca.pem",
                                 client_crl_file=tmp_path / "crl.pem")  # fmt: skip


def test_device_listener_crl_of_another_ca_or_expired_is_refused(tmp_path: Path) -> None:
    listener = _listener_files(tmp_path)
    assert tls_context(listener).verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    other = pki.create_ca("someone else")
    pki.write_crl(pki.build_crl(other, {}), tmp_path / "crl.pem")
    with pytest.raises(CentralConfigError, match="not signed by the client CA"):
        tls_context(listener)
    fleet = pki.create_ca("fleet")  # a client CA whose CRL has expired
    pki.write_cert(fleet.cert, tmp_path / "ca.pem")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    expired = x509_builder.build_crl(fleet, [], next_update=past, last_update=past - DAY)
    pki.write_crl(expired, tmp_path / "crl.pem")
    with pytest.raises(CentralConfigError, match="expired"):
        tls_context(listener)
