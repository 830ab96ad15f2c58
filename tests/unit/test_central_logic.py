"""Pure logic of central: seq tracking, the shared reservation hash, the
reservation-code hash and the central configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from central.config import load_config, parse_config
from central.errors import CentralConfigError
from central.seqtrack import SeqState, advance, missing_count
from sync.protocol import Reservation
from sync.reservations_hash import active_hash, hash_code, verify_code

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def res(rid: str, **kw: object) -> Reservation:
    base: dict[str, object] = {
        "id": rid, "facility": "fac-1", "door": "room-a", "starts_at": T0,
        "ends_at": T0 + timedelta(hours=1), "credential_refs": ["ref-b", "ref-a"],
    }  # fmt: skip
    return Reservation.model_validate({**base, **kw})


def test_seqtrack_in_order_has_no_gap() -> None:
    update = advance(SeqState(), [1, 2, 3])
    assert update.state == SeqState(contiguous=3, max_seq=3, gaps=(), total=3)
    assert update.opened == []


def test_seqtrack_gap_opens_and_closes_out_of_order() -> None:
    first = advance(SeqState(), [1, 2, 5, 6])
    assert first.state.gaps == ((3, 4),) and first.state.contiguous == 2
    assert first.opened == [(3, 4)]
    second = advance(first.state, [4])
    assert second.state.gaps == ((3, 3),) and second.closed == 1
    third = advance(second.state, [3])
    assert third.state == SeqState(contiguous=6, max_seq=6, gaps=(), total=6)


def test_seqtrack_first_batch_not_starting_at_one_is_a_gap() -> None:
    update = advance(SeqState(), [10])
    assert update.state.gaps == ((1, 9),) and missing_count(update.state) == 9


def test_seqtrack_caps_ranges_without_hiding_missing_seqs() -> None:
    update = advance(SeqState(), range(2, 40, 2), max_ranges=5)
    assert len(update.state.gaps) == 5
    # Every really-missing odd seq is still reported as missing.
    for odd in range(1, 38, 2):
        assert any(a <= odd <= b for a, b in update.state.gaps)


def test_active_hash_ignores_order_cancelled_and_offsets() -> None:
    a, b = res("r1"), res("r2", door="room-b")
    jst = timezone(timedelta(hours=9))
    end = T0 + timedelta(hours=1)
    a_jst = res("r1", starts_at=T0.astimezone(jst), ends_at=end.astimezone(jst),
                credential_refs=["ref-a", "ref-b"])  # fmt: skip
    cancelled = res("r3", status="cancelled")
    assert active_hash([a, b]) == active_hash([b, a_jst, cancelled])
    assert active_hash([a]) != active_hash([a, b])
    assert active_hash([a]) != active_hash([res("r1", code_hash="x")])
    assert active_hash([]).startswith("v1:")


def test_code_hash_verifies_only_the_right_code() -> None:
    stored = hash_code("482913")
    assert stored.startswith("pbkdf2_sha256$") and "482913" not in stored
    assert verify_code("482913", stored)
    assert not verify_code("482914", stored)
    assert not verify_code("482913", "garbage")
    assert hash_code("482913") != stored  # salted


def test_central_config_demo_loads_with_sqlite_under_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CENTRAL_STATE_DIR", str(tmp_path))
    config = load_config(None)
    assert config.database.url == f"sqlite:///{tmp_path}/central.db"


def test_central_config_unknown_key_and_bad_values_are_named() -> None:
    text = '[database]\nurl = "mysql://x"\n[broker]\nprot = 1\n[ingest]\ncommit_batch = 0\n'
    with pytest.raises(CentralConfigError) as err:
        parse_config(text, "central.toml", Path("/etc/kiosk"))
    message = str(err.value)
    assert "central.toml" in message
    assert "database.url: must start with sqlite:///" in message
    assert "broker.prot: unknown key" in message
    assert "ingest.commit_batch" in message


def test_central_config_relative_paths_follow_the_file(tmp_path: Path) -> None:
    file = tmp_path / "central.toml"
    file.write_text(
        '[database]\nurl = "sqlite:///db/c.db"\n'
        '[broker.tls]\nca_file = "ca.pem"\ncert_file = "c.pem"\nkey_file = "c.key"\n'
    )
    config = load_config(file)
    assert config.database.url == f"sqlite:///{tmp_path}/db/c.db"
    assert config.broker.tls is not None and config.broker.tls.ca_file == tmp_path / "ca.pem"


def test_central_config_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CentralConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
