"""Remote screenshots (kiosk.touch.capture): which screens may be captured,
the PNG header read, and the inbox's pass with the UI calls faked (a real
store and ledger, real signatures)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from kiosk.touch.capture import CAPTURE_SCREENS, ScreenCommands, busy_screen, png_size
from sync.ledger import CommandLedger, load_command_keys
from sync.store import open_store
from tests.harness.door_commands import CommandSigner, entry, forged, receive

SIGNER = CommandSigner("d1")


def png(width: int = 64, height: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("screen", "mode_open", "countdown", "busy"),
    [
        ("attract", False, False, None),
        ("attract", True, False, "card enrolment"),
        ("attract", False, True, "idle countdown"),
        ("keypad", False, False, "keypad"),
        ("pin", False, False, "pin"),
        ("language", False, False, "language"),
        ("result", False, False, "result"),
    ],
)
def test_capture_only_on_the_attract_screen(
    screen: str, mode_open: bool, countdown: bool, busy: str | None
) -> None:
    assert busy_screen(screen, mode_open, countdown) == busy
    assert {"attract"} == CAPTURE_SCREENS


def test_capture_png_size_read_from_its_header() -> None:
    assert png_size(png(300, 200)) == (300, 200)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


class Screen:
    """The app's side: what is shown, and a capture that answers at once."""

    def __init__(self, name: str = "attract", image: bytes | None = None) -> None:
        self.name, self.image, self.captures = name, image or png(), 0

    def state(self) -> tuple[str, bool, bool]:
        return self.name, False, False

    def capture(self, done: Callable[[bytes], None]) -> None:
        self.captures += 1
        done(self.image)


def one_pass(inbox: ScreenCommands, screen: Screen) -> None:
    inbox.tick(screen.state, screen.capture, lambda call: call())
    deadline = time.monotonic() + 5
    while inbox._busy.is_set():  # the worker thread's pass
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[ScreenCommands]:
    keys = load_command_keys(SIGNER.write_public_key(tmp_path / "k.pem"))
    commands = ScreenCommands(tmp_path / "d.db", "d1", keys)
    yield commands
    commands.close()


def test_capture_inbox_attract_done_with_png_keypad_refused(inbox: ScreenCommands) -> None:
    db = inbox.store_path
    shot = receive(db, SIGNER.sign("screen.capture", {}))
    one_pass(inbox, Screen("attract", png(320, 240)))
    done = entry(db, shot)
    assert done is not None and (done.state, done.code) == ("done", "ok")
    assert done.detail == {"screen": "attract", "width": 320, "height": 240,
                           "bytes": len(done.attachment or b"")}  # fmt: skip
    busy = receive(db, SIGNER.sign("screen.capture", {}))
    screen = Screen("keypad")
    one_pass(inbox, screen)
    refused = entry(db, busy)
    assert refused is not None and (refused.state, refused.code) == ("refused", "screen_busy")
    assert "keypad" in refused.message and refused.attachment is None
    assert screen.captures == 0


def test_capture_inbox_forged_or_foreign_refused_never_captured(inbox: ScreenCommands) -> None:
    db = inbox.store_path
    bad = receive(db, forged(SIGNER.sign("screen.capture", {}), extra=1))
    theirs = receive(db, SIGNER.sign("door.unlock", {"door": "a", "seconds": 5, "reason": "jam"}))
    with open_store(db) as store:  # a door command put in the touchscreen's queue
        body = SIGNER.sign("door.relock", {"door": "a"})
        wrong = json.loads(body)["id"]
        CommandLedger(store).receive(wrong, "door.relock", "kiosk", body,
                                     expires=time.time() + 60, now=time.time())  # fmt: skip
    screen = Screen()
    one_pass(inbox, screen)
    codes = {c: (e.state, e.code) for c in (bad, wrong, theirs) if (e := entry(db, c))}
    assert codes == {
        bad: ("refused", "bad_signature"), wrong: ("refused", "wrong_target"),
        theirs: ("pending", ""),  # lockctl's, not the touchscreen's
    }  # fmt: skip
    assert screen.captures == 0


def test_capture_inbox_running_left_by_a_stop_finished_interrupted(inbox: ScreenCommands) -> None:
    db = inbox.store_path
    shot = receive(db, SIGNER.sign("screen.capture", {}))
    with open_store(db) as store:
        CommandLedger(store).claim("kiosk", time.time())
    screen = Screen()
    one_pass(inbox, screen)
    left = entry(db, shot)
    assert left is not None and (left.state, left.code) == ("failed", "interrupted")
    assert screen.captures == 0
