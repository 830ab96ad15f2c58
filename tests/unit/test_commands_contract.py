"""The signed remote-command contract (contracts.commands) and the device's
command ledger (sync.ledger)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts import commands
from contracts.commands import CommandError, key_id, sign, verify
from sync.ledger import CommandLedger
from sync.store import open_store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}
UNLOCK: dict[str, Any] = {"door": "room-a", "seconds": 20, "reason": "card reader jammed"}


def signed(name: str = "door.unlock", args: dict[str, Any] | None = None, **over: Any) -> bytes:
    kwargs: dict[str, Any] = {
        "command_id": str(uuid.uuid4()),
        "device": "d1",
        "name": name,
        "args": UNLOCK if args is None else args,
        "issued_by": "staff:ops1",
        "issued_at": T0,
        "lifetime": timedelta(minutes=5),
    }
    kwargs.update(over)
    return sign(KEY, **kwargs)


def refusal(payload: bytes, now: datetime = T0, device: str = "d1") -> str:
    with pytest.raises(CommandError) as caught:
        verify(payload, KEYS, device=device, now=now)
    return caught.value.code


def test_commands_verify_accepts_a_fresh_genuine_command() -> None:
    command = verify(signed(), KEYS, device="d1", now=T0 + timedelta(seconds=1))
    assert command.name == "door.unlock"
    assert command.parsed_args() == commands.UnlockArgs(
        door="room-a", seconds=20, reason=UNLOCK["reason"]
    )


def test_commands_verify_refuses_a_changed_byte() -> None:
    body = json.loads(signed())
    body["args"]["seconds"] = 600
    assert refusal(json.dumps(body).encode()) == "bad_signature"


def test_commands_verify_refuses_another_key() -> None:
    other = Ed25519PrivateKey.generate()
    payload = sign(other, command_id=str(uuid.uuid4()), device="d1", name="door.relock",
                   args={"door": "room-a"}, issued_by="staff:x", issued_at=T0,
                   lifetime=timedelta(minutes=1))  # fmt: skip
    assert refusal(payload) == "unknown_key"
    body = json.loads(payload)
    body["key_id"] = next(iter(KEYS))  # claims our key: the signature is still wrong
    assert refusal(json.dumps(body).encode()) == "bad_signature"


def test_commands_verify_refuses_another_device_expired_and_future() -> None:
    assert refusal(signed(), device="d2") == "wrong_device"
    assert refusal(signed(), now=T0 + timedelta(minutes=5)) == "expired"
    assert refusal(signed(), now=T0 - timedelta(minutes=6)) == "not_yet_valid"


def test_commands_sign_refuses_what_a_device_would_refuse() -> None:
    with pytest.raises(ValueError):
        signed(args={"door": "room-a", "seconds": 601, "reason": "too long"})
    with pytest.raises(CommandError):
        signed(lifetime=timedelta(hours=25))


def test_commands_verify_reports_malformed_input_by_code() -> None:
    assert refusal(b"\xff not json") == "malformed"
    assert refusal(b"[]") == "malformed"
    assert refusal(b"{}") == "unknown_key"
    assert commands.peek(b"{") == ("", "")


def test_ledger_takes_a_command_once_and_reports_it(tmp_path: Path) -> None:
    store = open_store(tmp_path / "device.db")
    ledger = CommandLedger(store)
    payload = signed()
    cid = json.loads(payload)["id"]
    assert ledger.receive(cid, "door.unlock", "lockctl", payload, expires=100.0, now=1.0)
    assert not ledger.receive(cid, "door.unlock", "lockctl", payload, expires=100.0, now=2.0)
    assert ledger.claim("kiosk", 3.0) == []
    (entry,) = ledger.claim("lockctl", 3.0)
    assert entry.body == payload and entry.state == "running"
    assert ledger.claim("lockctl", 3.0) == []
    ledger.finish(cid, "done", "ok", "door open for 20 s", 4.0, detail={"door": "room-a"})
    ledger.finish(cid, "failed", "late", "ignored: already finished", 5.0)
    (report,) = ledger.unreported()
    assert (report.state, report.detail) == ("done", {"door": "room-a"})
    ledger.mark_reported(cid)
    assert ledger.unreported() == []
    assert ledger.prune(100.0 + 24 * 3600 + 1) == 1
    store.close()


def test_ledger_expires_what_nobody_claimed_in_time(tmp_path: Path) -> None:
    store = open_store(tmp_path / "device.db")
    ledger = CommandLedger(store)
    ledger.receive("c1", "screen.capture", "kiosk", b"{}", expires=10.0, now=1.0)
    assert ledger.claim("kiosk", 11.0) == []
    assert ledger.expire_unclaimed(11.0) == 1
    assert ledger.get("c1").state == "expired"  # type: ignore[union-attr]
    assert ledger.record_refusal(
        "c2", "door.unlock", b"{}", code="bad_signature", message="no", now=12.0
    )
    assert [e.code for e in ledger.unreported()] == ["expired", "bad_signature"]
    store.close()


def test_ledger_loads_command_keys_and_refuses_other_files(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from sync.errors import ConfigError
    from sync.ledger import load_command_keys

    def pem(key: Any) -> bytes:
        return bytes(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))

    second = Ed25519PrivateKey.generate()
    both = tmp_path / "command.pub"
    both.write_bytes(pem(KEY.public_key()) + pem(second.public_key()))
    assert set(load_command_keys(both)) == {key_id(KEY.public_key()), key_id(second.public_key())}
    assert load_command_keys(None) == {}
    rsa = tmp_path / "rsa.pub"
    rsa.write_bytes(pem(generate_private_key(65537, 2048).public_key()))
    for bad in (rsa, tmp_path / "missing.pub"):
        with pytest.raises(ConfigError):
            load_command_keys(bad)
