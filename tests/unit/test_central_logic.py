"""Pure logic of central: seq tracking, the shared reservation hash, the
reservation-code hash and the central configuration."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from central.config import load_config, parse_config
from central.errors import CentralConfigError
from central.ingest.seqtrack import SeqState, advance, missing_count
from contracts.mqtt import Reservation
from contracts.reservations_hash import (
    WindowHashes,
    active_hash,
    code_hash,
    parse_window,
    same_content,
    window_hash,
)

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
    now = T0.timestamp() + 1800
    assert active_hash([a, b], now) == active_hash([b, a_jst, cancelled], now)
    assert active_hash([a], now) != active_hash([a, b], now)
    assert active_hash([a], now) != active_hash([res("r1", code_hash="x")], now)
    start = int(T0.timestamp())
    assert active_hash([], now).startswith(f"v1:{start}:24:")


def test_active_hash_matches_the_documented_lines() -> None:
    r = res("r1", code_hash="ch1_x")
    start = int(T0.timestamp())
    line = f"r1\troom-a\t{start}\t{start + 3600}\tch1_x\tref-a,ref-b\n"
    expected = f"v1:{start}:24:" + hashlib.sha256(line.encode()).hexdigest()
    assert window_hash([r], start, 24) == expected


def test_active_hash_window_leaves_out_what_does_not_overlap() -> None:
    inside, later = res("r1"), res("r2", starts_at=T0 + timedelta(days=2),
                                   ends_at=T0 + timedelta(days=2, hours=1))  # fmt: skip
    start = int(T0.timestamp())
    assert window_hash([inside, later], start, 24) == window_hash([inside], start, 24)


def test_same_content_recomputes_the_devices_window() -> None:
    rs = [res("r1"), res("r2", door="room-b")]
    reported = active_hash(rs, T0.timestamp() - 7200, hours=6)  # the device's clock and window
    assert same_content(reported, rs)
    assert not same_content(reported, rs[:1])
    assert parse_window(reported) == (int(T0.timestamp()) - 7200, 6)
    for bad in ("v1:wrong", "v1:1:24:" + "0" * 64, "v2:0:24:" + "0" * 64, ""):
        assert not same_content(bad, rs)


def test_window_hashes_answer_as_same_content_and_follow_version_and_window() -> None:
    rs = [res("r1"), res("r2", door="room-b")]
    hashes = WindowHashes()
    reported = active_hash(rs, T0.timestamp(), hours=6)
    assert hashes.same_content("fac-1", 4, reported, rs)
    # Same facility and version: the memo answers, whatever list is passed.
    assert hashes.same_content("fac-1", 4, reported, [])
    assert not hashes.same_content("fac-1", 5, reported, rs[:1])  # a new version: recomputed
    later = active_hash(rs[:1], T0.timestamp() + 3600, hours=6)
    assert hashes.same_content("fac-1", 5, later, rs[:1])  # a new window: recomputed
    assert not hashes.same_content("fac-2", 5, reported, rs[:1])  # per facility
    for bad in ("v1:wrong", "v1:1:24:" + "0" * 64, ""):
        assert not hashes.same_content("fac-1", 5, bad, rs[:1])


def test_code_hash_is_keyed_per_facility_and_never_the_code() -> None:
    key = b"k" * 32
    stored = code_hash(key, "fac-1", "482913")
    digest = hmac.new(key, b"code:fac-1:482913", hashlib.sha256).hexdigest()
    assert (
        stored == "ch1_" + digest
    )  # as the kiosk computes it (contracts.reservations_hash.code_hash)
    assert code_hash(key, "fac-2", "482913") != stored
    assert code_hash(b"j" * 32, "fac-1", "482913") != stored


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


def test_central_cli_bad_config_exits_3_with_the_key_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from central.cli import main

    bad = tmp_path / "central.toml"
    bad.write_text("[api]\nport = 0\n")
    assert main(["config", "--config", str(bad)]) == 3
    assert "api.port" in capsys.readouterr().err


def test_central_cli_token_create_prints_a_token_it_can_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from central.api.tokens import TokenStore
    from central.cli import main
    from central.db.engine import Database

    config = tmp_path / "central.toml"
    config.write_text('[database]\nurl = "sqlite:///c.db"\n')
    assert main(["token", "create", "--role", "reader", "--config", str(config)]) == 0
    token = capsys.readouterr().out.strip()
    with Database(f"sqlite:///{tmp_path / 'c.db'}") as db:
        assert TokenStore(db).verify(token) == "reader"


def test_central_config_code_key_file_is_read_and_checked(tmp_path: Path) -> None:
    from central.config import code_key
    from contracts.reservations_hash import facility_code_key
    from foundation.errors import MissingKeyError

    (tmp_path / "key").write_text("ab" * 32)
    (tmp_path / "short").write_text("abcd")
    good = parse_config('[reservations]\ncode_key_file = "key"\n', "c.toml", tmp_path)
    master = bytes.fromhex("ab" * 32)
    # Each facility's key is derived from the master: never the master itself,
    # never another facility's.
    assert code_key(good)("fac-1") == facility_code_key(master, "fac-1")
    assert len({code_key(good)("fac-1"), code_key(good)("fac-2"), master}) == 3
    short = parse_config('[reservations]\ncode_key_file = "short"\n', "c.toml", tmp_path)
    with pytest.raises(CentralConfigError, match="shorter than 16 bytes"):
        code_key(short)
    with pytest.raises(
        MissingKeyError, match=r"c\.toml:\n  - reservations\.code_key_file: required"
    ):
        code_key(parse_config("", "c.toml", tmp_path))
