"""Drives the counter kiosk's issuance touchscreen in its own process.

``python -m tests.e2e.issuance_driver SCENARIO.json``: as
:mod:`tests.e2e.ui_driver` (same steps: tap, wait, shot, idle, insert,
remove), on the issuance app built with :func:`build_issuance` from the
scenario's config, with an in-process :class:`FakeCentral`, the simulated
payment terminal, a :class:`FilePrinter` on ``spool`` and the real card
reader through pcscd. Extra steps: ``{"printer": "jammed"}`` sets the file
printer's state, ``{"central_fail": "confirm", "code": "..."}`` scripts a
refusal (no code: an outage). The last line before ``done`` is a summary
(payment ledger, outcomes reported to central, sessions left open, chimes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from kivy.clock import Clock

from cardreader.watch import CardEvent, CardWatcher
from kiosk.errors import CentralRefused, CentralUnreachable
from kiosk.issuance.fake_central import FakeCentral
from kiosk.issuance.sound import SimulatedSound
from kiosk.issuance.wiring import build_issuance
from kiosk.payment import SimulatedTerminal
from kiosk.printing import FilePrinter, PrinterState
from kiosk.ui.issuance.app import IssuanceApp, post_to_ui
from kiosk.wiring import card_service_for
from sync.config import load_config
from tests.e2e.ui_driver import Driver


class IssuanceDriver(Driver):
    central: FakeCentral
    printer: FilePrinter

    def run(self, step: dict[str, Any]) -> None:
        if "state" in step:
            v = self.app.view
            self.report(screen=v.screen, step_name=v.step, notice=v.notice, title=v.title,
                        body=v.body, dots=v.pin_dots, tries=v.tries_text,
                        last_try=v.last_try)  # fmt: skip
            self.advance()
        elif "printer" in step:
            self.printer.set_state(PrinterState(step["printer"]))
            self.advance()
        elif "central_fail" in step:
            code = step.get("code")
            error = CentralRefused(code) if code else CentralUnreachable("scripted outage")
            self.central.fail_next(step["central_fail"], error)
            self.advance()
        elif "idle" in step:
            self.app.flow.tick(self.app.flow._last_activity + step["idle"])
            self.report(screen=self.app.view.screen, countdown=self.app.view.countdown)
            self.advance()
        else:
            super().run(step)

    def wait(self, screen: str, deadline: float) -> None:
        # The screen manager ignores touches while a transition runs (slow
        # frames on a loaded machine): wait for it to end too.
        if self.app.root.transition.is_active and time.monotonic() < deadline:
            Clock.schedule_once(lambda _dt: self.wait(screen, deadline), 0.05)
        else:
            super().wait(screen, deadline)


def main() -> int:
    scenario = json.loads(Path(sys.argv[1]).read_text())
    config = load_config(scenario.get("config"))
    artifacts = Path(scenario["artifacts"])
    artifacts.mkdir(parents=True, exist_ok=True)
    central = FakeCentral(config.device.id)
    payment, sound = SimulatedTerminal(), SimulatedSound()
    printer = FilePrinter(Path(scenario["spool"]))
    kit = build_issuance(config, post_to_ui, central=central, payment=payment,
                         printer=printer, sound=sound)  # fmt: skip
    watch_service = card_service_for(config)
    watchers: list[CardWatcher] = []
    card_port = int(scenario.get("cards", {}).get("port", 0))

    def started(app: IssuanceApp) -> None:
        def card_event(event: CardEvent) -> None:
            if event.kind in ("inserted", "removed"):
                app.post_card(event.kind == "inserted")

        watchers.append(watch_service.watch(card_event))
        driver = IssuanceDriver(app, scenario["steps"], artifacts, card_port)
        driver.central, driver.printer = central, printer
        original = driver.report

        def report(**values: Any) -> None:
            if values.get("done"):
                original(summary={
                    "ledger": payment.ledger, "balance": payment.balance(),
                    "outcomes": [o.status for _, o in central.outcomes],
                    "open_sessions": len(central.sessions), "chimes": sound.played,
                })  # fmt: skip
            original(**values)

        driver.report = report  # type: ignore[method-assign]
        driver.start()

    try:
        IssuanceApp(kit.flow, config.device.name or "Counter", on_started=started).run()
    finally:
        for watcher in watchers:
            watcher.close()
        watch_service.close()
        kit.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
