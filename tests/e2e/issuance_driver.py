"""Drives the counter kiosk's issuance touchscreen in its own process.

``python -m tests.e2e.issuance_driver SCENARIO.json``: as
:mod:`tests.e2e.ui_driver` (same steps: tap, wait, shot, idle, insert,
remove), on the issuance app started by :func:`run_issuance` (its card
watcher included) from the scenario's config, with an in-process :class:`FakeCentral`, the simulated
payment terminal, a :class:`FilePrinter` on ``spool`` and the real card
reader through pcscd. Extra steps: ``{"printer": "jammed"}`` sets the file
printer's state, ``{"central_fail": "confirm", "code": "..."}`` scripts a
refusal (no code: an outage). The last line before ``done`` is a summary
(payment ledger, outcomes reported to central, sessions left open, chimes).

With ``"real_central": true`` the central port and the printer come from the
configuration (the real issuance listener over mutual TLS, a CUPS queue);
then ``{"insert": "mynumber", "variant": V, "tries": N}`` builds the card from
the test JPKI in ``pki_dir`` (users ``TEST-user-V``), ``{"printer": S}``
writes the CUPS test backend's state file (``cups_out``) and
``{"printer": "ok"}`` also restarts the stopped queue, and
``{"pause_central": true|false}`` stops or continues central's process
(``central_pid``) for an outage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kivy.clock import Clock

from cardreader.sim.profiles import mynumber_card
from cardreader.sim.testpki import load_test_pki_with
from cardreader.sim.vpcd import VpcdLink
from kiosk.errors import CentralRefused, CentralUnreachable
from kiosk.issuance.payment import SimulatedTerminal
from kiosk.issuance.printing import FilePrinter, PrinterState
from kiosk.issuance.sound import SimulatedSound
from kiosk.issuance.ui.app import IssuanceApp
from kiosk.issuance.ui.run import run_issuance
from sync.config import load_config
from tests.e2e.keypad_steps import KeypadSteps
from tests.e2e.ui_driver import Driver
from tests.harness.fake_issuance_central import FakeCentral


class IssuanceDriver(Driver):
    central: FakeCentral | None = None
    printer: FilePrinter | None = None
    scenario: dict[str, Any]

    def run(self, step: dict[str, Any]) -> None:
        if "insert" in step and "variant" in step:
            pki = load_test_pki_with(Path(self.scenario["pki_dir"]), step["variant"])
            card = mynumber_card(pki, variant=step["variant"], tries=step.get("tries"))
            self.link = VpcdLink(card, port=self.card_port)
            self.link.insert()
            self.report(inserted=step["variant"])
            self.advance(0.2)
        elif "pause_central" in step:
            sig = signal.SIGSTOP if step["pause_central"] else signal.SIGCONT
            os.kill(int(self.scenario["central_pid"]), sig)
            self.advance()
        elif "printer" in step and self.printer is None:
            (Path(self.scenario["cups_out"]) / "printer-state").write_text(step["printer"])
            if step["printer"] == "ok":  # staff loaded paper: the queue runs again
                issuance = self.scenario["cups"]
                subprocess.run(["cupsenable", "-h", issuance["server"], issuance["queue"]],
                               check=True, timeout=15)  # fmt: skip
            self.advance()
        elif "central_fail" in step and self.central is None:
            raise ValueError("central_fail needs the fake central")
        elif "state" in step:
            v = self.app.view
            self.report(screen=v.screen, step_name=v.step, notice=v.notice, title=v.title,
                        body=v.body, dots=v.pin_dots, tries=v.tries_text,
                        last_try=v.last_try)  # fmt: skip
            self.advance()
        elif "printer" in step and self.printer is not None:
            self.printer.set_state(PrinterState(step["printer"]))
            self.advance()
        elif "central_fail" in step and self.central is not None:
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
    config = load_config(scenario["config"])
    artifacts = Path(scenario["artifacts"])
    artifacts.mkdir(parents=True, exist_ok=True)
    payment, sound = SimulatedTerminal(), SimulatedSound()
    trusted = bool(scenario.get("clock_trusted", True))
    ports: dict[str, Any] = {"payment": payment, "sound": sound, "clock_trusted": lambda: trusted}
    central = printer = None
    if not scenario.get("real_central"):  # else central and printer from the config
        central = ports["central"] = FakeCentral(config.device.id)
        printer = ports["printer"] = FilePrinter(Path(scenario["spool"]))
    card_port = int(scenario.get("cards", {}).get("port", 0))

    def started(app: IssuanceApp) -> None:
        driver = IssuanceDriver(app, scenario["steps"], artifacts, card_port)
        driver.central, driver.printer, driver.scenario = central, printer, scenario
        if scenario.get("keypad"):
            driver.keypad = KeypadSteps(driver)
        original = driver.report

        def report(**values: Any) -> None:
            if values.get("done"):
                summary: dict[str, Any] = {
                    "ledger": payment.ledger, "balance": payment.balance(),
                    "chimes": sound.played,
                }  # fmt: skip
                if central is not None:
                    summary["outcomes"] = [o.status for _, o in central.outcomes]
                    summary["open_sessions"] = len(central.sessions)
                original(summary=summary)
            original(**values)

        driver.report = report  # type: ignore[method-assign]
        driver.start()

    return run_issuance(config, on_started=started, **ports)


if __name__ == "__main__":
    sys.exit(main())
