"""``python -m deploy listener-cert``: the TLS files of central's device
listener (card enrolment, certificate issuance) from the fleet folder.

The fleet CA signs the listener's server certificate (the devices already
trust that CA for the broker), and the listener checks device certificates
against the same CA and the fleet CRL. Written into one folder:

* ``server.pem`` / ``server.key``: ``devices.listener.cert_file`` / ``key_file``
* ``fleet-ca.pem``: a copy of ``FLEET/ca/ca.pem``, ``devices.listener.client_ca_file``
* ``fleet-crl.pem``: a copy of ``FLEET/broker/crl.pem`` (the fleet CRL that
  ``provision --rotate`` extends), ``devices.listener.client_crl_file``

``--crl-only`` copies the CRL again after a revocation; the listener reads a
changed CRL at its next connection, without a restart.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy import pki
from deploy.errors import FleetUsageError
from deploy.fleet import load_fleet

LISTENER_CN = "central-devices"


@dataclass(frozen=True)
class ListenerFiles:
    cert_file: Path
    key_file: Path
    client_ca_file: Path
    client_crl_file: Path

    def config_text(self, host: str, port: int = 8443) -> str:
        """The ``[devices.listener]`` section naming these files."""
        return (
            f'[devices.listener]\nhost = "{host}"\nport = {port}\n'
            f'cert_file = "{self.cert_file}"\nkey_file = "{self.key_file}"\n'
            f'client_ca_file = "{self.client_ca_file}"\n'
            f'client_crl_file = "{self.client_crl_file}"\n'
        )


def listener_files(out_dir: Path) -> ListenerFiles:
    return ListenerFiles(
        out_dir / "server.pem",
        out_dir / "server.key",
        out_dir / "fleet-ca.pem",
        out_dir / "fleet-crl.pem",
    )


def copy_fleet_crl(fleet_dir: Path, out_dir: Path) -> Path:
    """Copy the fleet CRL to ``out_dir/fleet-crl.pem`` in one rename, so the
    listener never reads half a file."""
    fleet = load_fleet(fleet_dir)
    fleet.ensure_crl()
    target = listener_files(out_dir).client_crl_file
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=out_dir, prefix=".fleet-crl.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(fleet.crl.read_bytes())
    Path(temporary).replace(target)
    return target


def write_listener_files(
    fleet_dir: Path, out_dir: Path, server_names: list[str], *, common_name: str = LISTENER_CN
) -> ListenerFiles:
    """Issue the listener's server certificate for ``server_names`` (DNS names
    or IP addresses the devices use in ``[central] url``) and copy the fleet
    CA and CRL beside it."""
    if not server_names:
        raise FleetUsageError("name at least one --name: the host name devices use for central")
    fleet = load_fleet(fleet_dir)
    files = listener_files(out_dir)
    ca = fleet.ca()
    pki.issue(ca, common_name, server_names=server_names, client=False).write(
        files.cert_file, files.key_file
    )
    pki.write_cert(ca.cert, files.client_ca_file)
    copy_fleet_crl(fleet_dir, out_dir)
    return files
