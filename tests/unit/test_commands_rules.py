"""Central's checks before it signs a command (pure logic) and the dashboard's
wording of what a command will do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from central.commands.errors import CommandRefused
from central.commands.rules import (
    DeviceFacts,
    audited_args,
    check_issuer,
    check_request,
)
from central.ops.dashboard.commands_page import describe, form_args

KNOWN = DeviceFacts("door-1", True, "hall", frozenset({"main", "side"}))
LIFE = timedelta(minutes=5)


def refused(facts: DeviceFacts, name: str, args: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(CommandRefused) as caught:
        check_request(facts, name, args, max_unlock_seconds=kw.get("cap", 60),
                      lifetime=kw.get("lifetime", LIFE))  # fmt: skip
    return caught.value.code


def test_commands_rules_accept_and_normalise_arguments() -> None:
    args = check_request(KNOWN, "door.unlock", {"door": "main", "seconds": 20, "reason": "jam"},
                         max_unlock_seconds=60, lifetime=LIFE)  # fmt: skip
    assert args == {"door": "main", "seconds": 20.0, "reason": "jam"}
    assert check_request(KNOWN, "door.lockdown", {"door": "*", "reason": "fire drill"},
                         max_unlock_seconds=60, lifetime=LIFE)["door"] == "*"  # fmt: skip
    unknown_doors = DeviceFacts("door-9", True, "annex", None)
    assert check_request(unknown_doors, "door.relock", {"door": "any"}, max_unlock_seconds=60,
                         lifetime=LIFE) == {"door": "any"}  # fmt: skip


def test_commands_rules_refuse_with_a_code() -> None:
    unlock = {"door": "main", "seconds": 20, "reason": "jammed reader"}
    assert refused(DeviceFacts("x", False), "door.unlock", unlock) == "unknown_device"
    assert refused(KNOWN, "door.explode", {}) == "unknown_command"
    assert refused(KNOWN, "door.unlock", {**unlock, "door": "back"}) == "unknown_door"
    assert refused(KNOWN, "door.unlock", unlock, cap=10) == "over_cap"
    assert refused(KNOWN, "door.unlock", {**unlock, "seconds": 601}) == "bad_args"
    assert refused(KNOWN, "door.unlock", {**unlock, "reason": "ok"}) == "bad_args"  # too short
    assert refused(KNOWN, "door.unlock", {**unlock, "reason": "My Number 123456789012"}) == (
        "bad_reason")  # fmt: skip
    assert refused(KNOWN, "device.reboot", {"now": True}) == "bad_args"
    assert refused(KNOWN, "device.reboot", {}, lifetime=timedelta(days=2)) == "bad_lifetime"


def test_commands_rules_tokens_cannot_unlock_or_lock_down() -> None:
    for name in ("door.unlock", "door.lockdown"):
        with pytest.raises(CommandRefused) as caught:
            check_issuer("token:ab12", name)
        assert caught.value.code == "second_factor_required" and caught.value.status == 403
        check_issuer("staff:sato", name)
    check_issuer("token:ab12", "door.relock")


def test_commands_rules_audit_keeps_no_reason_or_settings() -> None:
    args = {"door": "main", "seconds": 5.0, "reason": "let Sato in", "settings": {"a": 1}}
    assert audited_args(args) == {"door": "main", "seconds": 5.0}


def test_commands_dashboard_restates_the_command() -> None:
    args = form_args("door.unlock", {"door": " main ", "seconds": "15", "reason": "jam",
                                     "service": "kiosk"})  # fmt: skip
    assert args == {"door": "main", "seconds": 15.0, "reason": "jam"}
    assert describe(str, "door.unlock", args, "door-1") == (
        "Unlock door main of door-1 for 15 seconds.")  # fmt: skip
    assert "every door" in describe(str, "door.lockdown", {"door": "*"}, "hall")
    assert form_args("device.reboot", {"door": "main"}) == {}
