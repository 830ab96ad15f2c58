"""Checks of the card reader (PC/SC) and of the lock controller (GPIO)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cardreader.errors import CardReaderError, NoCardError, NoReaderError, ServiceUnavailableError
from cardreader.service import CardService
from deploy.checks import CheckResult, DoctorContext, fail, not_checked, ok, warn
from lockctl.client import LockClient
from lockctl.errors import LockctlError, LockctlUnavailableError, RequestError

RELAY_CLICK_SECONDS = 1.0
CARD_POLL_SECONDS = 0.2


def check_reader(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return not_checked("reader")
    wanted = ctx.config.reader.name
    service = CardService(reader_filter=wanted, apdu_timeout=ctx.config.reader.apdu_timeout_seconds)
    try:
        return _reader(ctx, service, wanted)
    finally:
        service.close()


def _reader(ctx: DoctorContext, service: CardService, wanted: str) -> CheckResult:
    try:
        everything = service.pcsc.readers()
    except ServiceUnavailableError:
        return fail(
            "reader",
            "the PC/SC service (pcscd) is not running or not reachable",
            "start it: `systemctl start pcscd` (and `systemctl enable pcscd.socket`)",
        )
    except CardReaderError as exc:
        return fail("reader", f"PC/SC error: {exc}", "restart pcscd and run doctor again")
    matching = [r for r in everything if wanted in r]
    if not matching:
        seen = ", ".join(everything) or "none"
        what = f"matching reader.name {wanted!r}" if wanted else "at all"
        return fail(
            "reader",
            f"no card reader {what} (connected: {seen})",
            "plug the reader in (USB), or correct reader.name to a part of one connected name",
            readers=everything,
        )
    if not ctx.card_test:
        return ok("reader", f"reader present: {matching[0]}", reader=matching[0])
    return _card_test(ctx, service, matching[0])


def _card_test(ctx: DoctorContext, service: CardService, reader: str) -> CheckResult:
    """Identify the kind of a presented card: never its number, never a PIN."""
    ctx.say(f"card test: place a card on {reader} (waiting {ctx.card_wait_seconds:.0f} s)")
    deadline = time.monotonic() + ctx.card_wait_seconds
    while True:
        try:
            kind = service.identify(reader).kind.value
            break
        except NoCardError:
            if time.monotonic() >= deadline:
                return fail(
                    "reader",
                    f"reader present: {reader}, but no card was presented within"
                    f" {ctx.card_wait_seconds:.0f} s",
                    "place a card flat on the reader during the card test",
                )
            time.sleep(CARD_POLL_SECONDS)
        except (NoReaderError, CardReaderError) as exc:
            return fail(
                "reader",
                f"reader present: {reader}, but the card test failed: {exc}",
                "try another card; if every card fails, replace the reader or its cable",
            )
    return ok("reader", f"reader present: {reader}; card test read a {kind} card", card=kind)


def check_lock(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return not_checked("lock")
    path = ctx.config.lock.socket
    try:
        with LockClient(path, timeout=ctx.timeout) as client:
            status = client.status()
            result = _lock_status(ctx, status)
            if ctx.relay_click is not None and result.status != "fail":
                return _relay_click(ctx, client, ctx.relay_click, result)
            return result
    except LockctlUnavailableError as exc:
        return fail(
            "lock",
            f"the lock controller does not answer: {exc}",
            "`systemctl status city-kiosk-lockctl` and `journalctl -u city-kiosk-lockctl -n 50`"
            " (a GPIO in use by another program or a bad pin shows there)",
        )
    except LockctlError as exc:
        return fail(
            "lock",
            f"the lock controller answered wrongly: {exc}",
            "restart city-kiosk-lockctl; if it persists, reinstall the release",
        )


def _lock_status(ctx: DoctorContext, status: dict[str, Any]) -> CheckResult:
    assert ctx.config is not None
    doors = status.get("doors", [])
    running = sorted(str(d.get("door")) for d in doors)
    configured = sorted(d.id for d in ctx.config.doors)
    summary = ", ".join(f"{d.get('door')} {d.get('state')}" for d in doors) or "no doors"
    details = {"doors": running, "watchdog_seconds": status.get("watchdog")}
    if running != configured:
        return warn(
            "lock",
            f"lockctl answers but runs with doors {running}, the config has {configured}",
            "restart city-kiosk-lockctl so it reads the current config",
            **details,
        )
    if any(d.get("relay_energised") for d in doors):
        on = [str(d.get("door")) for d in doors if d.get("relay_energised")]
        return warn(
            "lock",
            f"lockctl answers; relay energised (unlocked) now: {on}",
            "normal during a check-in; run doctor again if it stays",
            **details,
        )
    return ok("lock", f"lockctl answers, {len(doors)} relay(s): {summary}", **details)


def _relay_click(
    ctx: DoctorContext, client: LockClient, door: str, before: CheckResult
) -> CheckResult:
    assert ctx.config is not None
    if door not in {d.id for d in ctx.config.doors}:
        return fail(
            "lock",
            f"--relay-click {door}: no such door in the config",
            "use one of: " + ", ".join(d.id for d in ctx.config.doors),
        )
    question = f"Unlock door {door} for {RELAY_CLICK_SECONDS:g} s now? The relay will click."
    if not ctx.confirm(question):
        return warn(
            "lock",
            before.finding + f"; relay click on {door} not confirmed",
            "answer y (or pass --yes) to click the relay",
            **before.details,
        )
    try:
        reply = client.unlock(door, seconds=RELAY_CLICK_SECONDS, reason="staff", ref="doctor")
    except RequestError as exc:
        return fail(
            "lock",
            f"lockctl refused the relay click on {door}: {exc}",
            "see `journalctl -u city-kiosk-lockctl -n 50`",
        )
    if not reply.get("relay_energised"):
        return fail(
            "lock",
            f"relay of {door} did not energise on unlock (read back low)",
            "check the relay driver, its supply and doors.relay_active_high",
        )
    relocked = _wait_relocked(client, door, RELAY_CLICK_SECONDS + ctx.timeout)
    if not relocked:
        return fail(
            "lock",
            f"relay of {door} clicked but did not relock in time",
            "stop city-kiosk-lockctl now (it de-energises every relay) and call support",
        )
    return ok(
        "lock", before.finding + f"; relay click on {door}: unlocked and relocked", **before.details
    )


def _wait_relocked(client: LockClient, door: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        doors = client.status().get("doors", [])
        if not any(d.get("door") == door and d.get("relay_energised") for d in doors):
            return True
        time.sleep(0.05)
    return False


def check_keypad(ctx: DoctorContext) -> CheckResult:
    """The USB keypad of ``[keypad] device``: a warning when it is missing
    (the touchscreen still works by touch)."""
    if ctx.config is None:
        return not_checked("keypad")
    keypad = ctx.config.keypad
    if not keypad.enabled:
        return ok("keypad", "keypad keys are off (keypad.enabled = false)")
    if not keypad.device:
        return ok("keypad", "no keypad device configured: not watched", device="")
    path = Path(keypad.device)
    if not path.exists():
        return warn(
            "keypad",
            f"keypad not found at {path}: people who cannot use the touchscreen cannot"
            " use this kiosk",
            "plug the keypad in (USB); `ls -l /dev/input/by-id/` shows the name to put"
            " in keypad.device",
            device=str(path),
        )
    if not path.is_char_device():
        return warn(
            "keypad",
            f"keypad.device {path} is not an input device",
            "point keypad.device at the keypad's *-event-kbd entry in /dev/input/by-id/",
            device=str(path),
        )
    return ok("keypad", f"keypad present: {path}", device=str(path))
