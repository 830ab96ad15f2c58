"""The lock socket's server fuzzed in-process: the real daemon (``Daemon`` on
gpiozero's MockFactory, its socket in a temp folder) on a thread, fed
hypothesis-made byte streams cut at arbitrary points (partial frames,
oversized lines, binary noise, hostile JSON). Fast enough for many examples;
``test_lockctl_fuzz.py`` sends a few through ``python -m lockctl serve``.

What must hold for every stream: each complete line gets exactly one reply,
in order, with the error the pure parser gives it; a line cut off by the
client going away is never acted on; nothing but an accepted ``unlock``
unlocks a door; and the daemon answers the next client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockctl.daemon import Daemon
from lockctl.errors import RequestError
from lockctl.hardware import Hardware, lock_relays, make_factory
from lockctl.protocol import MAX_REQUEST_BYTES, Unlock, parse_request
from lockctl.server import MAX_CONNECTIONS
from sync.config import parse_config
from tests.harness.services import wait_until
from tests.integration.lockctl_daemon import CONFIG
from tests.unit.test_lockctl_protocol import fields, hostile_fields

DOORS = ("room-a", "room-b")


@dataclass
class InProcessDaemon:
    path: Path
    daemon: Daemon
    hardware: Hardware
    thread: threading.Thread
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(str(self.path))
        return sock

    def relay_on(self) -> dict[str, bool]:
        assert self.daemon.controller is not None
        return {d: m.relay_on for d, m in self.daemon.controller.machines.items()}

    def reset(self) -> None:
        """Every door locked and every mock input at rest, as before an example."""
        resting = [("contact", "closed"), ("exit_button", "released"), ("relay", "low")]
        frames = [{"op": "lock", "door": d} for d in DOORS] + [
            {"op": "mock", "door": "room-a", "input": i, "state": s} for i, s in resting
        ]
        with self.connect() as sock:
            replies = exchange(sock, b"".join(json.dumps(f).encode() + b"\n" for f in frames))
        assert [r["ok"] for r in replies] == [True] * len(frames), replies
        self.events.clear()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDaemon]:
    folder = tmp_path_factory.mktemp("lockctl-fuzz")
    config = parse_config(CONFIG.format(group="", held_open=30), "fuzz", folder)
    factory = make_factory("mock")
    hardware = Hardware(config, factory, lock_relays(config, factory))
    daemon = Daemon(config, hardware, relays_locked_at=0.0, install_signals=False)
    thread = threading.Thread(target=lambda: asyncio.run(daemon.run()))
    handle = InProcessDaemon(config.lock.socket, daemon, hardware, thread)
    real_put = daemon.events.put

    def recording_put(type_: str, data: dict[str, Any]) -> None:
        handle.events.append((type_, dict(data)))
        real_put(type_, data)

    daemon.events.put = recording_put  # type: ignore[method-assign]  # observe, then write
    handle.thread.start()

    def listening() -> bool:
        return daemon.controller is not None and "listening" in daemon.controller.startup

    wait_until(listening, 10, "the daemon to listen")
    yield handle
    assert daemon._loop is not None
    daemon._loop.call_soon_threadsafe(daemon.request_stop, "test over")
    handle.thread.join(20)
    assert not handle.thread.is_alive()
    assert not any(handle.relay_on().values())
    hardware.close()


def exchange(sock: socket.socket, stream: bytes, cuts: list[int] | None = None) -> list[Any]:
    """Send ``stream`` in pieces cut at ``cuts``, half-close, read every reply line."""
    edges = sorted({0, len(stream), *(c for c in cuts or [] if 0 < c < len(stream))})
    for start, end in itertools.pairwise(edges):
        sock.sendall(stream[start:end])
    sock.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return [json.loads(line) for line in received.splitlines()]


def expected_code(frame: bytes) -> str | None:
    """The error code the pure parser gives ``frame`` (None: it parses)."""
    try:
        parse_request(frame)
    except RequestError as exc:
        return exc.code
    return None


oversized = st.integers(MAX_REQUEST_BYTES - 40, MAX_REQUEST_BYTES + 3000).map(
    lambda n: b'{"op": "unlock", "door": "room-a", "pad": "' + b"x" * n + b'"}'
)
frames = st.lists(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"~"))
    | fields.map(lambda f: json.dumps(f).encode())
    | hostile_fields.map(lambda f: json.dumps(f).encode())
    | oversized,
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    frames=frames,
    tail=st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"~")),
    cuts=st.lists(st.integers(0, 8000), max_size=6),
)
def test_lockctl_server_fuzzed_streams_answer_each_line_and_never_unlock_by_mistake(
    in_process: InProcessDaemon, frames: list[bytes], tail: bytes, cuts: list[int]
) -> None:
    in_process.reset()
    stream = b"".join(f + b"\n" for f in frames) + tail  # the tail: a frame cut off
    with in_process.connect() as sock:
        replies = [r for r in exchange(sock, stream, cuts) if "event" not in r]
    answered = [f for f in frames if f.strip()]
    if len(tail) > MAX_REQUEST_BYTES:
        answered.append(tail)
    assert len(replies) == len(answered), (replies, stream)
    accepted_unlocks = 0
    for frame, reply in zip(answered, replies, strict=True):
        code = "too_large" if len(frame) > MAX_REQUEST_BYTES else expected_code(frame)
        if code is not None:
            assert reply["ok"] is False and reply["error"]["code"] == code, (frame, reply)
            assert reply["error"]["message"]
        elif reply["ok"] and isinstance(parse_request(frame)[1], Unlock):
            accepted_unlocks += 1
    unlocked = [d for t, d in in_process.events if t == "door.unlocked"]
    requested = [d for d in unlocked if d["reason"] != "exit_button"]  # the mock button may
    assert len(requested) <= accepted_unlocks, (unlocked, replies)
    if accepted_unlocks == 0 and not unlocked:
        assert not any(in_process.relay_on().values())
    with in_process.connect() as sock:  # and the next client is served
        assert exchange(sock, b'{"op": "status"}\n')[0]["ok"] is True


def test_lockctl_server_refuses_connections_over_the_limit(in_process: InProcessDaemon) -> None:
    in_process.reset()
    held = [in_process.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        # Each held connection is being served: a status on the last one answers.
        held[-1].sendall(b'{"op": "status"}\n')
        assert json.loads(held[-1].makefile("rb").readline())["ok"] is True
        with in_process.connect() as extra:
            # Refused on arrival: the reply needs no request, and a request
            # sent anyway is never read, let alone carried out.
            refused = json.loads(extra.makefile("rb").readline())
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                extra.sendall(b'{"op": "unlock", "door": "room-a"}\n')
        assert refused["error"]["code"] == "busy", refused
        assert not any(in_process.relay_on().values())
    finally:
        for sock in held:
            sock.close()
    # Closed connections are counted down when the server sees them go.
    wait_until(lambda: _status_ok(in_process), 10, "a new client to be served again")


def _status_ok(in_process: InProcessDaemon) -> bool:
    with in_process.connect() as sock:
        reply = exchange(sock, b'{"op": "status"}\n')[0]
    return reply.get("ok") is True
