"""Fuzzed requests through the real daemon's socket: every line gets one
reply, an error reply never unlocks anything, and the daemon keeps serving.
100 examples here (one process start); the many more, with streams cut at
any byte, run in-process in test_lockctl_server_fuzz.py."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.lockctl_daemon import LockDaemon
from tests.unit.test_lockctl_protocol import fields, hostile_fields

ERROR_CODES = {"bad_json", "too_large", "bad_request", "unknown_op", "unknown_door",
               "bad_seconds", "bad_reason", "bad_ref", "mock_only"}  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockDaemon]:
    d = LockDaemon(Path(tmp_path_factory.mktemp("fuzz")) / "lockctl")
    d.start()
    yield d
    d.stop()


class Line:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def ask(self, payload: bytes) -> dict[str, Any]:
        self.sock.sendall(payload + b"\n")
        reply = json.loads(self.file.readline())
        assert isinstance(reply, dict)
        return reply


def deadlines(line: Line) -> dict[str, Any]:
    status = line.ask(b'{"op": "status"}')
    return {d["door"]: d["deadline_monotonic"] for d in status["doors"]}


lines = (
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" "))
    | fields.map(lambda f: json.dumps(f).encode())
    | hostile_fields.map(lambda f: json.dumps(f).encode())  # lone surrogates, huge integers
    | st.integers(4000, 20000).map(lambda n: b'{"op": "status", "pad": "' + b"x" * n + b'"}')
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=lines)
def test_lockctl_fuzzed_requests_never_unlock_by_mistake(
    fuzz_daemon: LockDaemon, payload: bytes
) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(fuzz_daemon.socket))
        line = Line(sock)
        before = deadlines(line)
        if not payload.strip():
            return  # blank lines are skipped without a reply
        reply = line.ask(payload)
        assert isinstance(reply["ok"], bool)
        if not reply["ok"]:
            assert reply["error"]["code"] in ERROR_CODES, reply
            after = deadlines(line)
            for door, deadline in after.items():
                assert deadline is None or deadline == before[door], (payload, reply)
        assert line.ask(b'{"op": "status"}')["ok"] is True


def test_lockctl_partial_frame_then_hang_up_does_nothing(fuzz_daemon: LockDaemon) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(fuzz_daemon.socket))
        line = Line(sock)
        for door in ("room-a", "room-b"):  # whatever the fuzzing above left
            assert line.ask(json.dumps({"op": "lock", "door": door}).encode())["ok"] is True
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(fuzz_daemon.socket))
        sock.sendall(b'{"op": "unlock", "door": "room-a", "seconds": 30}')  # no newline
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(fuzz_daemon.socket))
        assert deadlines(Line(sock)) == {"room-a": None, "room-b": None}
