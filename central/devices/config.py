"""``[devices.listener]`` and ``[enrolment]`` of the central configuration.

The listener runs when card enrolment or certificate issuance is enabled.
``[issuance.listener]`` is its old name, still accepted (not both); see
``docs/central.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from foundation.config import Section

# Where an old configuration with issuance enabled and no listener section
# found the TLS files (relative to its folder): kept so it still starts.
LEGACY_ISSUANCE_LISTENER: dict[str, Any] = {
    "cert_file": "issuance/server.pem",
    "key_file": "issuance/server.key",
    "client_ca_file": "issuance/fleet-ca.pem",
    "client_crl_file": "issuance/fleet-crl.pem",
}


class DeviceListenerSection(Section):
    """The mutual-TLS HTTPS listener the devices talk to."""

    host: str = "127.0.0.1"  # production: the address the devices reach
    port: int = Field(default=8443, ge=1, le=65535)
    # Central's server certificate and key (PEM); the devices trust its CA.
    cert_file: Path
    key_file: Path
    # The fleet CA: only its device certificates are accepted (CN = device id).
    client_ca_file: Path
    # The fleet CRL (revoked device certificates), required; read again when
    # the file changes (python -m deploy listener-cert --crl-only).
    client_crl_file: Path

    def resolved(self, base_dir: Path) -> DeviceListenerSection:
        """Relative paths made absolute against the configuration's folder."""

        def absolute(p: Path) -> Path:
            return p if p.is_absolute() else base_dir / p

        return self.model_copy(update={
            "cert_file": absolute(self.cert_file),
            "key_file": absolute(self.key_file),
            "client_ca_file": absolute(self.client_ca_file),
            "client_crl_file": absolute(self.client_crl_file),
        })  # fmt: skip


class DevicesSection(Section):
    # None: no listener (then neither enrolment nor issuance may be enabled).
    listener: DeviceListenerSection | None = None


class EnrolmentSection(Section):
    """Card enrolment by devices (``/api/enrolment`` on the device listener)."""

    enabled: bool = False


def _enabled(section: Any) -> bool:
    if isinstance(section, dict):
        return bool(section.get("enabled", False))
    return bool(getattr(section, "enabled", False))


def move_legacy_listener(data: Any) -> Any:
    """Raw configuration with ``[issuance.listener]`` moved to
    ``[devices.listener]``; both given is an error. An issuance-enabled
    configuration with neither gets the old default file names."""
    if not isinstance(data, dict):
        return data
    issuance, devices = data.get("issuance"), data.get("devices")
    legacy = issuance.get("listener") if isinstance(issuance, dict) else None
    current = (
        devices.get("listener") if isinstance(devices, dict) else getattr(devices, "listener", None)
    )
    if legacy is not None and current is not None:
        raise ValueError(
            "[issuance.listener] and [devices.listener] are both given: "
            "[issuance.listener] is the old name of [devices.listener], keep only that"
        )
    if legacy is not None and isinstance(issuance, dict):
        issuance = {k: v for k, v in issuance.items() if k != "listener"}
        devices = {**(devices if isinstance(devices, dict) else {}), "listener": legacy}
        return {**data, "issuance": issuance, "devices": devices}
    if current is None and _enabled(issuance):
        devices = {**(devices if isinstance(devices, dict) else {}),
                   "listener": dict(LEGACY_ISSUANCE_LISTENER)}  # fmt: skip
        return {**data, "devices": devices}
    return data
