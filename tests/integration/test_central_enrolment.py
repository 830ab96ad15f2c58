"""Card enrolment: the service's refusals on a real database, then the whole
flow through the real mutual-TLS device listener with fleet certificates --
the enrolled card's reference reaches the next reservation delta of the
member's booking, and a revoked one leaves it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from cardreader.sim.testpki import write_test_pki
from central.cli import start_device_listener
from central.cli_common import open_db
from central.config import load_config
from central.db.engine import Database
from central.errors import ConflictError, EnrolmentRefused
from contracts.enrolment import BASE_PATH, CardIn
from demo.central_issuance import listener_config_text, prepare
from deploy.fleet import add_device, init_fleet
from tests.harness.booking import CARD_A, CARD_B, FACILITY, ROOM, booking_world, today_plus
from tests.harness.issuance import issuance_pki
from tests.harness.services import free_port, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Any]:
    with Database(f"sqlite:///{tmp_path / 'central.db'}") as db:
        yield booking_world(db)


def refused(call: Any) -> str:
    with pytest.raises(EnrolmentRefused) as caught:
        call()
    return caught.value.code


def test_enrolment_code_is_single_use_expires_and_is_hashed(world: Any) -> None:
    member = world.member()
    issued = world.members.issue_code(member, "staff:x", world.clock())
    assert len(issued.code) == 8 and issued.code.isdigit()
    from sqlalchemy import select

    from central.db.tables import enrolment_codes

    with world.db.read() as conn:
        stored = conn.execute(select(enrolment_codes.c.code_hash)).scalars().all()
    assert issued.code not in "".join(stored)
    ticket = world.enrolment.redeem("door-1", issued.code)
    assert ticket.language == "ja" and ticket.cards_enrolled == 0
    assert refused(lambda: world.enrolment.redeem("door-1", issued.code)) == "code_used"
    late = world.members.issue_code(member, "staff:x", world.clock())
    world.clock.moment += timedelta(hours=1)
    assert refused(lambda: world.enrolment.redeem("door-1", late.code)) == "code_expired"


def test_enrolment_refuses_unknown_devices_and_limits_wrong_codes(world: Any) -> None:
    assert refused(lambda: world.enrolment.check_device("stranger")) == "device_unknown"
    assert world.enrolment.check_device("door-1") == "door-1"
    code = world.members.issue_code(world.member(), "staff:x", world.clock()).code
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(5):
        assert refused(lambda: world.enrolment.redeem("door-1", wrong)) == "code_invalid"
    with pytest.raises(EnrolmentRefused) as locked:
        world.enrolment.redeem("door-1", code)
    assert locked.value.code == "too_many_attempts" and locked.value.retry_after
    world.clock.moment += timedelta(minutes=16)  # the wrong codes leave the window
    assert world.enrolment.redeem("door-1", code).cards_enrolled == 0


def test_enrolment_card_twice_and_bound_elsewhere(world: Any) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    world.enrol(alice, CARD_A)
    ticket = world.enrolment.redeem(
        "door-1", world.members.issue_code(alice, "staff:x", world.clock()).code
    ).ticket
    again = world.enrolment.enrol("door-1", CardIn(ticket=ticket, credential_ref=CARD_A,
                                                   kind="member_card"))  # fmt: skip
    assert again.status == "already_enrolled"
    bobs = world.enrolment.redeem(
        "door-1", world.members.issue_code(bob, "staff:x", world.clock()).code
    ).ticket
    card = CardIn(ticket=bobs, credential_ref=CARD_A, kind="member_card")
    assert refused(lambda: world.enrolment.enrol("door-1", card)) == "card_bound_elsewhere"
    assert refused(lambda: world.enrolment.enrol("door-2", card)) == "ticket_invalid"
    world.enrolment.close("door-1", bobs)
    assert refused(lambda: world.enrolment.enrol("door-1", card)) == "ticket_invalid"


def test_enrolment_refuses_a_suspended_member(world: Any) -> None:
    member = world.member()
    code = world.members.issue_code(member, "staff:x", world.clock()).code
    world.members.set_status(member, "suspended", "staff:x")
    assert refused(lambda: world.enrolment.redeem("door-1", code)) == "member_suspended"
    with pytest.raises(ConflictError):
        world.members.issue_code(member, "staff:x", world.clock())


J1 = "j1-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd"
J2 = "j2-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd"


@dataclass
class Listener:
    url: str
    ca: str
    door: tuple[str, str]
    unregistered: tuple[str, str]
    counter: tuple[str, str]
    world: Any

    def call(self, method: str, path: str, cert: tuple[str, str] | None = None,
             json: Any = None) -> requests.Response:  # fmt: skip
        return requests.request(method, self.url + BASE_PATH + path, cert=cert or self.door,
                                verify=self.ca, timeout=10, json=json)  # fmt: skip


def _pair(folder: Path) -> tuple[str, str]:
    return str(folder / "device.pem"), str(folder / "device.key")


def _listener(tmp_path: Path, issuance: bool) -> Iterator[Listener]:
    """``serve``'s device listener (:func:`central.cli.start_device_listener`)
    with card enrolment, and certificate issuance for ``counter-1`` alone when
    ``issuance``; without it the configuration has no ``[issuance]`` at all."""
    init_fleet(tmp_path / "fleet", broker_host="localhost")
    door = add_device(tmp_path / "fleet", "door-1", FACILITY)
    stray = add_device(tmp_path / "fleet", "door-9", FACILITY)
    counter = add_device(tmp_path / "fleet", "counter-1", "city-hall", role="counter")
    write_test_pki(tmp_path / "jpki", issuance_pki().pki)
    paths = prepare(tmp_path / "state", tmp_path / "fleet", tmp_path / "jpki", port=free_port())
    if not issuance:  # a city with facility bookings only
        paths.config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path / "state" / "central.db"}"\n'
            "[enrolment]\nenabled = true\n" + listener_config_text(paths.issuance_dir, paths.port)
        )
    config = load_config(paths.config)
    assert config.issuance.enabled is issuance and config.enrolment.enabled
    settings = config.issuance.model_copy(update={"allowed_devices": ["counter-1"]})
    config = config.model_copy(update={"issuance": settings})
    db = open_db(config)
    world = booking_world(db)
    running = start_device_listener(config, db, world.enrolment, lambda: None)
    assert running is not None
    wait_until(lambda: running.server.started, 10, "the device listener")
    yield Listener(f"https://localhost:{paths.port}", str(paths.fleet_ca), _pair(door),
                   _pair(stray), _pair(counter), world)  # fmt: skip
    running.close()
    db.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    """Enrolment enabled, issuance not configured."""
    yield from _listener(tmp_path, issuance=False)


@pytest.fixture
def shared_listener(tmp_path: Path) -> Iterator[Listener]:
    """Enrolment and issuance on the same listener."""
    yield from _listener(tmp_path, issuance=True)


def test_enrolment_over_mutual_tls_reaches_the_next_delta(listener: Listener) -> None:
    world = listener.world
    member = world.member()
    booking = world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 11),
                                    member_id=member, actor="t").booking  # fmt: skip
    code = world.members.issue_code(member, "staff:x", world.clock()).code
    stray = listener.call("POST", "/tickets", cert=listener.unregistered, json={"code": code})
    assert (stray.status_code, stray.json()["error"]) == (403, "device_unknown"), stray.text
    bad = listener.call("POST", "/tickets", json={"code": "12"})
    assert (bad.status_code, bad.json()["error"]) == (422, "request_invalid")
    ticket = listener.call("POST", "/tickets", json={"code": code})
    assert ticket.status_code == 200, ticket.text
    before = world.store.version(FACILITY)
    card = {"ticket": ticket.json()["ticket"], "credential_ref": CARD_A, "kind": "member_card"}
    enrolled = listener.call("POST", "/cards", json=card)
    assert enrolled.status_code == 200 and enrolled.json()["status"] == "enrolled"
    delta = world.store.deltas_since(FACILITY, before)
    assert delta is not None
    [change] = delta[0].changes
    assert change.reservation.id == booking.reservation_id
    assert change.reservation.credential_refs == [CARD_A]
    second = listener.call("POST", "/cards", json={**card, "credential_ref": CARD_B})
    assert second.json()["status"] == "enrolled"
    closed = listener.call("DELETE", f"/tickets/{card['ticket']}")
    assert closed.status_code == 204
    after = listener.call("POST", "/cards", json=card)
    assert (after.status_code, after.json()["error"]) == (409, "ticket_invalid")
    # Revocation: the next delta carries the booking without the card.
    before = world.store.version(FACILITY)
    world.members.revoke_card(member, enrolled.json()["card_id"], "staff:x")
    delta = world.store.deltas_since(FACILITY, before)
    assert delta is not None
    assert delta[0].changes[0].reservation.credential_refs == [CARD_B]


def test_enrolment_device_cannot_add_a_card_to_a_member_without_a_ticket(
    listener: Listener,
) -> None:
    # A member whose My Number Card is enrolled under its legacy j1 reference
    # only: a device (here with a valid fleet certificate) that claims the
    # card's j2 reference must not get it attached to the member. There is
    # no alias route; a card is only added through a ticket from the
    # member's code (docs/cardreader.md, "Card references and migration").
    world = listener.world
    member = world.member()
    world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 11),
                          member_id=member, actor="t")  # fmt: skip
    world.enrol(member, J1)
    before = world.store.version(FACILITY)
    alias = listener.call("POST", "/aliases", json={"legacy_ref": J1, "credential_ref": J2})
    assert alias.status_code == 404, alias.text
    forged = {"ticket": "x" * 32, "credential_ref": J2, "kind": "mynumber_card"}
    guessed = listener.call("POST", "/cards", json=forged)
    assert (guessed.status_code, guessed.json()["error"]) == (409, "ticket_invalid")
    no_ticket = listener.call(
        "POST", "/cards", json={"credential_ref": J2, "kind": "mynumber_card"}
    )
    assert (no_ticket.status_code, no_ticket.json()["error"]) == (422, "request_invalid")
    # Nothing was published: the member's booking still carries j1 alone.
    assert world.store.version(FACILITY) == before


def _issuance(listener: Listener, cert: tuple[str, str]) -> requests.Response:
    return requests.get(listener.url + "/api/issuance/catalogue", cert=cert,
                        verify=listener.ca, timeout=10)  # fmt: skip


def test_device_listener_without_issuance_does_not_serve_issuance(listener: Listener) -> None:
    assert _issuance(listener, listener.counter).status_code == 404
    assert _issuance(listener, listener.door).status_code == 404
    # ... while enrolment answers the door (a wrong code, not a missing route).
    bad = listener.call("POST", "/tickets", json={"code": "12345678"})
    assert (bad.status_code, bad.json()["error"]) == (404, "code_invalid"), bad.text


def test_device_listener_with_issuance_keeps_issuance_for_counters(
    shared_listener: Listener,
) -> None:
    listener = shared_listener
    assert _issuance(listener, listener.counter).status_code == 200
    response = _issuance(listener, listener.door)
    # door-1 is a registered device (it enrols) but not an issuance counter.
    assert response.status_code == 403 and response.json()["error"] == "device_unknown"
    world = listener.world
    code = world.members.issue_code(world.member(), "staff:x", world.clock()).code
    ticket = listener.call("POST", "/tickets", json={"code": code})
    assert ticket.status_code == 200, ticket.text
