"""The issuance API through a real uvicorn HTTPS listener with mutual TLS:
counter-role fleet device certificates in, anything else out (revoked, a
door terminal, central's own identity, a certificate from before roles,
another CA); the fleet CRL replaced while it runs; the whole contract walked
with ``requests`` as the kiosk does."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from pypdf import PdfReader

from cardreader.sim.testpki import write_test_pki
from central.cli_common import open_db
from central.config import load_config
from central.devices.listener import DeviceListener
from central.issuance.server import build_stack, issuance_server
from contracts.issuance import BASE_PATH, CatalogueOut, ChallengeOut, ConfirmOut, SessionOut
from demo.central_issuance import prepare
from deploy import pki
from deploy.fleet import add_device, init_fleet, load_fleet
from deploy.listener_cert import copy_fleet_crl
from tests.harness.issuance import issuance_pki, session_in
from tests.harness.services import free_port, wait_until


@dataclass(frozen=True)
class Listener:
    url: str
    ca: str
    device: tuple[str, str]
    other_device: tuple[str, str]  # fleet certificate, not in allowed_devices
    revoked_device: tuple[str, str]
    late_device: tuple[str, str]  # revoked while the listener runs
    foreign: tuple[str, str]  # same CN, another CA
    door: tuple[str, str]  # a door terminal's certificate (role door)
    central: tuple[str, str]  # central's own fleet identity (no role)
    no_role: tuple[str, str]  # a counter provisioned before roles existed
    fleet: Path
    issuance_dir: Path

    def call(
        self, method: str, path: str, cert: tuple[str, str] | None = None, json: Any = None
    ) -> requests.Response:
        url = self.url + BASE_PATH + path
        return requests.request(
            method, url, cert=cert or self.device, verify=self.ca, timeout=10, json=json
        )


def _pair(folder: Path) -> tuple[str, str]:
    return str(folder / "device.pem"), str(folder / "device.key")


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    root = tmp_path_factory.mktemp("issuance-https")
    init_fleet(root / "fleet", broker_host="localhost")
    names = ("kiosk-1", "kiosk-2", "kiosk-gone", "kiosk-late")
    devices = {d: add_device(root / "fleet", d, "city-hall", role="counter") for d in names}
    devices["door-1"] = add_device(root / "fleet", "door-1", "room-a", role="door")
    devices["kiosk-old"] = add_device(root / "fleet", "kiosk-old", "city-hall")
    fleet = load_fleet(root / "fleet")
    fleet.revoke(
        x509.load_pem_x509_certificate((devices["kiosk-gone"] / "device.pem").read_bytes())
    )
    other_ca = pki.create_ca("Someone else's CA")
    pki.issue(other_ca, "kiosk-1").write(
        root / "foreign" / "device.pem", root / "foreign" / "device.key"
    )
    pki_dir = root / "jpki"
    write_test_pki(pki_dir, issuance_pki().pki)
    paths = prepare(root / "state", root / "fleet", pki_dir, port=free_port())
    config = load_config(paths.config)
    allowed = ["kiosk-1", "kiosk-gone", "kiosk-late", "door-1", "kiosk-old", "central"]
    issuance = config.issuance.model_copy(update={"allowed_devices": allowed})
    config = config.model_copy(update={"issuance": issuance})
    db = open_db(config)
    stack = build_stack(config.issuance, db)
    server = issuance_server(config, stack)
    running = DeviceListener(server, stack.close).start()
    wait_until(lambda: server.started, 10, "the issuance listener")
    central = (str(root / "fleet" / "central" / "central.pem"),
               str(root / "fleet" / "central" / "central.key"))  # fmt: skip
    yield Listener(
        url=f"https://localhost:{paths.port}", ca=str(paths.fleet_ca),
        device=_pair(devices["kiosk-1"]), other_device=_pair(devices["kiosk-2"]),
        revoked_device=_pair(devices["kiosk-gone"]), late_device=_pair(devices["kiosk-late"]),
        foreign=_pair(root / "foreign"), door=_pair(devices["door-1"]), central=central,
        no_role=_pair(devices["kiosk-old"]), fleet=root / "fleet",
        issuance_dir=paths.issuance_dir,
    )  # fmt: skip
    running.close()
    db.close()


def test_https_whole_flow_issues_a_certificate(listener: Listener) -> None:
    catalogue = CatalogueOut.model_validate(listener.call("GET", "/catalogue").json())
    assert catalogue.hours.open_now and catalogue.municipality_ja == "みどり市"
    challenge = ChallengeOut.model_validate(listener.call("POST", "/challenges").json())
    body = session_in(issuance_pki().user("valid"), challenge, "kiosk-1")
    answer = listener.call("POST", "/sessions", json=body.model_dump())
    assert answer.status_code == 200, answer.text
    session = SessionOut.model_validate(answer.json())
    order = listener.call("POST", "/orders", json={
        "session_id": session.session_id, "idempotency_key": "1" * 32,
        "items": [{"kind": "shotoku_kazei", "copies": 1}]}).json()  # fmt: skip
    assert order["total_fee_yen"] == 200
    confirm_path = f"/orders/{order['order_id']}/confirm"
    confirmed = ConfirmOut.model_validate(
        listener.call("POST", confirm_path, json={"payment_ref": "sim-1"}).json())  # fmt: skip
    document = confirmed.documents[0]
    text = PdfReader(io.BytesIO(base64.b64decode(document.pdf))).pages[0].extract_text()
    assert "所得・課税証明書" in text and document.issue_number in text
    retried = listener.call("POST", confirm_path, json={"payment_ref": "sim-1"})
    assert retried.json()["documents"][0]["sha256"] == document.sha256  # a retry, same session
    assert listener.call("DELETE", f"/sessions/{session.session_id}").status_code == 204
    # The attack: fetch the certificates again once the session is closed.
    again = listener.call("POST", confirm_path, json={"payment_ref": "sim-1"})
    assert (again.status_code, again.json()["error"]) == (409, "session_invalid")
    assert "pdf" not in again.text
    outcome = listener.call(
        "POST", f"/orders/{order['order_id']}/outcome", json={"status": "printed"}
    )
    assert outcome.json()["status"] == "printed"


def test_https_refusals_carry_contract_codes(listener: Listener) -> None:
    challenge = ChallengeOut.model_validate(listener.call("POST", "/challenges").json())
    forged = session_in(issuance_pki().user("valid"), challenge, "kiosk-2")
    answer = listener.call("POST", "/sessions", json=forged.model_dump())
    assert (answer.status_code, answer.json()["error"]) == (401, "signature_invalid")
    malformed = listener.call("POST", "/sessions", json={"challenge_id": "x"})
    assert (malformed.status_code, malformed.json()["error"]) == (422, "request_invalid")
    gone = listener.call("POST", "/orders/nope/confirm", json={"payment_ref": "p"})
    assert gone.json()["error"] == "order_invalid"


def test_https_device_not_allowed_is_device_unknown(listener: Listener) -> None:
    answer = listener.call("GET", "/catalogue", cert=listener.other_device)
    assert (answer.status_code, answer.json()["error"]) == (403, "device_unknown")


@pytest.mark.parametrize("which", ["door", "central", "no_role"])
def test_https_only_counter_role_certificates_may_issue(listener: Listener, which: str) -> None:
    """Valid fleet certificates of a door terminal, of central itself and of a
    counter provisioned before roles, all in allowed_devices: refused."""
    cert = {"door": listener.door, "central": listener.central, "no_role": listener.no_role}[which]
    for method, path in (("GET", "/catalogue"), ("POST", "/challenges")):
        answer = listener.call(method, path, cert=cert)
        assert (answer.status_code, answer.json()["error"]) == (403, "device_unknown")


def test_https_crl_replaced_while_running_refuses_without_restart(listener: Listener) -> None:
    assert listener.call("GET", "/catalogue", cert=listener.late_device).status_code == 200
    fleet = load_fleet(listener.fleet)
    fleet.revoke(x509.load_pem_x509_certificate(Path(listener.late_device[0]).read_bytes()))
    copy_fleet_crl(
        listener.fleet, listener.issuance_dir
    )  # python -m deploy listener-cert --crl-only
    with pytest.raises(requests.exceptions.ConnectionError):
        listener.call("GET", "/catalogue", cert=listener.late_device)
    assert listener.call("GET", "/catalogue").status_code == 200  # the others still served


def test_https_unusable_crl_refuses_every_device_until_fixed(listener: Listener) -> None:
    crl = listener.issuance_dir / "fleet-crl.pem"
    good = crl.read_bytes()
    try:
        crl.write_bytes(b"not a CRL")
        with pytest.raises(requests.exceptions.ConnectionError):
            listener.call("GET", "/catalogue")
    finally:
        crl.write_bytes(good)
    assert listener.call("GET", "/catalogue").status_code == 200


@pytest.mark.parametrize("which", ["none", "foreign", "revoked"])
def test_https_refuses_clients_without_a_valid_fleet_certificate(
    listener: Listener, which: str
) -> None:
    cert = {"foreign": listener.foreign, "revoked": listener.revoked_device}.get(which)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(
            listener.url + BASE_PATH + "/catalogue", cert=cert, verify=listener.ca, timeout=10
        )
