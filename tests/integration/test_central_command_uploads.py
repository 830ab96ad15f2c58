"""What commands collect, uploaded through the real mutual-TLS device
listener: accepted only from the command's own device, for a command that
collects something, with its content type, within its size limit, once;
diagnostics pass the personal-data guard at central (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from central.commands import CommandService
from central.commands.attachments import mount_attachments
from central.db.engine import Database
from central.db.tables import audit_log
from central.devices.config import DeviceListenerSection
from central.devices.listener import DeviceListener, device_app, make_server
from contracts.commands import ATTACHMENT_PATH, MAX_ATTACHMENT_BYTES
from deploy import pki
from tests.harness.central_commands import register
from tests.harness.services import free_port, wait_until

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
DIAGNOSTICS = json.dumps({"versions": {"kiosk": "1.4.0"}, "log": ["sync up", "door ok"]})


@dataclass
class Uploads:
    url: str
    ca: str
    certs: dict[str, tuple[str, str]]
    service: CommandService
    db: Database

    def post(self, command_id: str, body: bytes, content_type: str,
             device: str = "door-1") -> requests.Response:  # fmt: skip
        return requests.post(self.url + ATTACHMENT_PATH.format(command_id=command_id), data=body,
                             headers={"Content-Type": content_type}, cert=self.certs[device],
                             verify=self.ca, timeout=10)  # fmt: skip

    def command(self, name: str, device: str = "door-1") -> str:
        return self.service.issue(device, name, {}, issuer="staff:sato", source="x")


@pytest.fixture
def uploads(central_db: Database, tmp_path: Path) -> Iterator[Uploads]:
    ca = pki.create_ca("fleet")
    pki.issue(ca, "central-devices", server_names=["localhost"], client=False).write(
        tmp_path / "server.pem", tmp_path / "server.key")  # fmt: skip
    pki.write_cert(ca.cert, tmp_path / "ca.pem")
    pki.write_crl(pki.build_crl(ca, {}), tmp_path / "crl.pem")
    certs = {}
    for device in ("door-1", "door-2"):
        pair = (str(tmp_path / f"{device}.pem"), str(tmp_path / f"{device}.key"))
        pki.issue(ca, device, role="door").write(Path(pair[0]), Path(pair[1]))
        certs[device] = pair
        register(central_db, device, "hall")
    section = DeviceListenerSection(cert_file=tmp_path / "server.pem",
                                    key_file=tmp_path / "server.key",
                                    client_ca_file=tmp_path / "ca.pem",
                                    client_crl_file=tmp_path / "crl.pem")  # fmt: skip
    service = CommandService(central_db, Ed25519PrivateKey.generate())
    app = device_app()
    mount_attachments(app, service)
    port = free_port()
    server = make_server(section, app, host="127.0.0.1", port=port)
    running = DeviceListener(server).start()
    wait_until(lambda: server.started, 10, "the device listener")
    yield Uploads(f"https://localhost:{port}", str(tmp_path / "ca.pem"), certs, service,
                  central_db)  # fmt: skip
    running.close()


def test_command_upload_accepted_once_from_its_own_device(uploads: Uploads) -> None:
    shot = uploads.command("screen.capture")
    answer = uploads.post(shot, PNG, "image/png")
    assert answer.status_code == 201 and answer.json() == {
        "sha256": hashlib.sha256(PNG).hexdigest()
    }
    again = uploads.post(shot, PNG, "image/png")
    assert again.status_code == 409 and again.json()["error"] == "already_uploaded"
    diag = uploads.command("diagnostics.collect")
    assert uploads.post(diag, DIAGNOSTICS.encode(), "application/json").status_code == 201
    assert uploads.service.file(diag) == ("application/json", DIAGNOSTICS.encode())
    row = uploads.service.get(shot)
    assert row is not None and row["file_type"] == "image/png"


def test_command_upload_refused_for_others_and_wrong_content(uploads: Uploads) -> None:
    shot = uploads.command("screen.capture")
    relock = uploads.service.issue("door-1", "door.relock", {"door": "main"},
                                   issuer="staff:sato", source="x")  # fmt: skip
    diag = uploads.command("diagnostics.collect")
    cases = [
        (uploads.post(shot, PNG, "image/png", device="door-2"), 403, "wrong_device"),
        (uploads.post(relock, PNG, "image/png"), 409, "no_attachment"),
        (uploads.post("00000000-0000-4000-8000-000000000000", PNG, "image/png"), 404,
         "unknown_command"),
        (uploads.post(shot, DIAGNOSTICS.encode(), "application/json"), 415, "wrong_type"),
        (uploads.post(shot, b"GIF89a...", "image/png"), 415, "wrong_type"),
        (uploads.post(diag, b"[1, 2]", "application/json"), 415, "wrong_type"),
        (uploads.post(diag, json.dumps({"name": "Yamada Taro"}).encode(), "application/json"),
         422, "personal_data"),
        (uploads.post(diag, json.dumps({"log": ["card 123456789012"]}).encode(),
                      "application/json"), 422, "personal_data"),
        (uploads.post(diag, b"{" + b" " * MAX_ATTACHMENT_BYTES["diagnostics.collect"] + b"}",
                      "application/json"), 413, "too_large"),
    ]  # fmt: skip
    for answer, status, code in cases:
        assert (answer.status_code, answer.json()["error"]) == (status, code)
    assert uploads.service.file(shot) is None and uploads.service.file(diag) is None
    # Still uploadable by the right device after all that.
    assert uploads.post(shot, PNG, "image/png").status_code == 201
    a = audit_log.c
    with uploads.db.read() as conn:
        rows = conn.execute(select(a.actor, a.outcome, a.reason).where(
            a.action == "command.attachment").order_by(a.pk)).all()  # fmt: skip
    assert [r.reason for r in rows] == [c for *_, c in cases] + [""]
    assert rows[0].actor == "device:door-2"
    assert "Yamada" not in str([tuple(r) for r in rows])
