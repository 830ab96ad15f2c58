"""Staff passkeys' relying-party checks (py_webauthn) on a real database
(SQLite and PostgreSQL), with a software authenticator that can lie: another
site's passkey, a phishing origin, a cloned authenticator's counter, no user
verification, a replayed challenge, a forged signature."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from central.db.engine import Database
from central.db.tables import audit_log, staff_passkeys, staff_users
from central.ops.passkeys import (
    CHALLENGE_TTL,
    ClonedAuthenticator,
    PasskeyError,
    PasskeyRefused,
    PasskeyStore,
    RelyingParty,
)
from central.ops.staff import StaffStore
from tests.harness.soft_authenticator import UP, SoftAuthenticator

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
RP = RelyingParty("ops.example.jp", "https://ops.example.jp")


def actions(db: Database) -> list[tuple[str, str, dict[str, object]]]:
    """(action, reason, detail); the store writes only changes -- a refused
    answer is the caller's entry, with the exception's ``reason``."""
    with db.read() as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.reason, audit_log.c.detail)
                            .order_by(audit_log.c.pk)).all()  # fmt: skip
    return [(r.action, r.reason, dict(r.detail)) for r in rows]


def registered(db: Database) -> tuple[PasskeyStore, SoftAuthenticator]:
    StaffStore(db).create("tanaka", "correct horse battery", "operator")
    store, device = PasskeyStore(db, RP), SoftAuthenticator(RP.rp_id, RP.origin)
    token, options = store.registration_options("tanaka", NOW)
    store.register("tanaka", token, device.create(json.loads(options)), "office key", NOW)
    return store, device


def sign_in(store: PasskeyStore, device: SoftAuthenticator, **lie: object) -> str:
    token, options = store.authentication_options("tanaka", NOW)
    return store.authenticate(token, device.get(json.loads(options), **lie), NOW)  # type: ignore[arg-type]


def test_relying_party_from_public_url() -> None:
    rp = RelyingParty.from_public_url("https://ops.example.jp:8443/")
    assert rp == RelyingParty("ops.example.jp", "https://ops.example.jp:8443")
    assert RelyingParty.from_public_url("http://localhost:8080") == RelyingParty(
        "localhost", "http://localhost:8080"
    )
    assert RelyingParty.from_public_url("") is None
    assert RelyingParty.from_public_url("http://127.0.0.1:8080") is None  # not a domain


def test_passkey_registers_and_signs_in(central_db: Database) -> None:
    store, device = registered(central_db)
    assert sign_in(store, device) == "tanaka"
    assert sign_in(store, device) == "tanaka"
    [passkey] = store.passkeys("tanaka")
    assert passkey.label == "office key" and passkey.last_used_at is not None
    assert [a for a, _, _ in actions(central_db)] == ["staff.passkey.register"]


def test_passkey_of_another_site_is_refused(central_db: Database) -> None:
    store, device = registered(central_db)
    with pytest.raises(PasskeyRefused) as site:  # a passkey made for evil.example (RP id hash)
        sign_in(store, device, rp_id="evil.example")
    with pytest.raises(PasskeyRefused) as phishing:  # a phishing page relaying our challenge
        sign_in(store, device, origin="https://ops-example.jp.evil.example")
    other = SoftAuthenticator("evil.example", "https://evil.example")
    token, options = store.registration_options("tanaka", NOW)
    with pytest.raises(PasskeyRefused) as registering:
        store.register("tanaka", token, other.create(json.loads(options)), "evil", NOW)
    got = [(e.value.reason, e.value.username) for e in (site, phishing, registering)]
    assert got == [("other_site", "tanaka"), ("other_origin", "tanaka"), ("other_origin", "tanaka")]
    assert sign_in(store, device) == "tanaka"  # the real one still works


def test_passkey_cloned_counter_disables_the_credential(central_db: Database) -> None:
    store, device = registered(central_db)
    sign_in(store, device)
    sign_in(store, device)  # counter now 2
    with pytest.raises(ClonedAuthenticator, match="copied"):
        sign_in(store, device, count=2)  # a clone that was copied at 2
    [passkey] = store.passkeys("tanaka")
    assert passkey.disabled
    assert ("staff.passkey.disable", "cloned", {"credential_id": passkey.credential_id[:16],
            "sign_count": 2}) in actions(central_db)  # fmt: skip
    with pytest.raises(PasskeyRefused, match="disabled"):  # even a higher count now
        sign_in(store, device, count=50)


def test_passkey_forged_signature_with_low_counter_does_not_disable(central_db: Database) -> None:
    # Someone without the key cannot get a staff member's passkey disabled.
    store, device = registered(central_db)
    sign_in(store, device)
    with pytest.raises(PasskeyRefused):
        sign_in(store, device, count=0, forge=True)
    assert not store.passkeys("tanaka")[0].disabled
    assert sign_in(store, device) == "tanaka"


def test_passkey_without_user_verification_is_refused(central_db: Database) -> None:
    store, device = registered(central_db)
    with pytest.raises(PasskeyRefused) as refused:  # touched, but no PIN or biometrics
        sign_in(store, device, flags=UP)
    assert refused.value.reason == "no_user_verification"


def test_passkey_challenge_is_single_use_and_expires(central_db: Database) -> None:
    store, device = registered(central_db)
    token, options = store.authentication_options("tanaka", NOW)
    answer = device.get(json.loads(options))
    assert store.authenticate(token, answer, NOW) == "tanaka"
    with pytest.raises(PasskeyRefused, match="expired") as replayed:
        store.authenticate(token, answer, NOW)
    assert replayed.value.reason == "expired"
    token, options = store.authentication_options("tanaka", NOW)
    late = NOW + CHALLENGE_TTL + timedelta(seconds=1)
    with pytest.raises(PasskeyRefused, match="expired"):
        store.authenticate(token, device.get(json.loads(options)), late)


def test_passkey_last_second_factor_cannot_be_removed(central_db: Database) -> None:
    store, _device = registered(central_db)
    [passkey] = store.passkeys("tanaka")
    with central_db.write() as conn:  # an account with only the passkey
        conn.execute(update(staff_passkeys).values(label="only"))
        conn.execute(update(staff_users).values(totp_secret=""))
    with pytest.raises(PasskeyError, match="last second factor"):
        store.remove("tanaka", passkey.credential_id, "staff:tanaka")
    assert len(store.passkeys("tanaka")) == 1


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_passkey_malformed_answers_are_refused_not_crashing(central_db: Database) -> None:
    store, device = registered(central_db)
    token, options = store.authentication_options("tanaka", NOW)
    good = json.loads(device.get(json.loads(options)))
    garbage = [
        "not json", "[]", '{"id": 5}', "{}", json.dumps({**good, "response": {}}),
        json.dumps({**good, "response": {**good["response"], "signature": "!!"}}),
        json.dumps({**good, "response": {**good["response"], "authenticatorData": "AA"}}),
        json.dumps({**good, "rawId": "other"}),
    ]  # fmt: skip
    for answer in garbage:
        token, _ = store.authentication_options("tanaka", NOW)
        with pytest.raises(PasskeyRefused):
            store.authenticate(token, answer, NOW)
    for answer in ("not json", "{}", json.dumps({"id": "x", "response": {"attestationObject": 1}})):
        token, _ = store.registration_options("tanaka", NOW)
        with pytest.raises(PasskeyRefused):
            store.register("tanaka", token, answer, "x", NOW)
    assert not store.passkeys("tanaka")[0].disabled
