"""The commands the sync agent runs itself (target ``agent`` in
:data:`contracts.commands.TARGETS`), on a thread of their own so a slow
``systemctl`` or upload never holds the MQTT loop.

:class:`CommandRunner` claims the agent's pending commands from the ledger,
verifies each signed body again (the store is shared with other processes:
a row is not trusted for being there), runs the handler its name maps to in
:data:`HANDLERS` and records the outcome. The dispatch is a plain dict, so a
handler can be plugged in from elsewhere (``config.apply`` from the config
push): ``handler(command, context) -> Outcome``.

A handler that would cut the agent's own connection (restarting the sync
service, rebooting) does not do it: it asks for it with
:meth:`RunContext.after_report`, and the agent runs it once the broker
acknowledged the result (bounded wait), so central learns the outcome.

The runner also uploads the attachments other processes leave in the
ledger (a ``screen.capture`` PNG from the touchscreen), then settles the
entry with ``{bytes, sha256}`` so the agent reports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from contracts.commands import CommandError, DeviceCommand, DiagnosticsArgs, ServiceArgs
from sync import diagnostics
from sync.commands import CommandDesk, Verifier
from sync.config import DeviceConfig, load_config
from sync.configpush import config_apply_handler
from sync.errors import ConfigError
from sync.ledger import CommandLedger, FinalState, LedgerEntry, load_command_keys
from sync.outbox import Outbox
from sync.system import System, SystemActionError, build_system
from sync.upload import AttachmentUploader, UploadError

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


class Outcome(NamedTuple):
    """What became of a command: the final state, its code, a short message
    (no personal data) and figures for ``detail``."""

    state: FinalState
    code: str
    message: str
    detail: dict[str, Any]


@dataclass
class RunContext:
    """What handlers may use; ``after_report`` is the agent's callback."""

    config_path: str
    system: System
    uploader: AttachmentUploader | None
    sources: diagnostics.DiagnosticsSources
    defer: Callable[[str, Callable[[], None]], None]
    command_id: str = field(default="", init=False)

    def after_report(self, action: Callable[[], None]) -> None:
        """Run ``action`` once central has this command's result."""
        self.defer(self.command_id, action)


class OutcomeLike(Protocol):
    """What a handler returns: :class:`Outcome`, or another type with these
    fields (the configuration push's ``PushOutcome``)."""

    @property
    def state(self) -> FinalState: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def detail(self) -> dict[str, Any]: ...


Handler = Callable[[DeviceCommand, RunContext], OutcomeLike]


def service_restart(command: DeviceCommand, context: RunContext) -> Outcome:
    service = ServiceArgs.model_validate(command.args).service
    if service == "sync":
        # Our own unit: first the result, then the restart (--no-block).
        context.after_report(lambda: _act(lambda: context.system.restart("sync", wait=False)))
        argv = ["systemctl", "restart", "--no-block", "city-kiosk-sync.service"]
        return Outcome("done", "restarting", "restarting after this result", {"service": service,
                       "run": " ".join(argv)})  # fmt: skip
    try:
        argv = context.system.restart(service)
    except SystemActionError as exc:
        return Outcome("failed", "restart_failed", str(exc), {"service": service})
    return Outcome("done", "restarted", "", {"service": service, "run": " ".join(argv)})


def device_reboot(command: DeviceCommand, context: RunContext) -> Outcome:
    context.after_report(lambda: _act(context.system.reboot))
    return Outcome("done", "rebooting", "rebooting after this result", {"run": "systemctl reboot"})


def config_reload(command: DeviceCommand, context: RunContext) -> Outcome:
    # Validate first: a file that would stop the services is never taken.
    try:
        load_config(context.config_path)
    except ConfigError as exc:
        return Outcome("failed", "config_invalid", str(exc)[:500], {})
    ran: list[str] = []
    try:
        for service in ("lockctl", "kiosk"):
            ran.append(" ".join(context.system.restart(service)))
    except SystemActionError as exc:
        return Outcome("failed", "restart_failed", str(exc), {"run": ran})
    context.after_report(lambda: _act(lambda: context.system.restart("sync", wait=False)))
    ran.append("systemctl restart --no-block city-kiosk-sync.service (after this result)")
    return Outcome("done", "reloaded", "", {"run": ran})


def config_apply(command: DeviceCommand, context: RunContext) -> Outcome:
    return Outcome("failed", "not_supported", "configuration push is not available yet", {})


def diagnostics_collect(command: DeviceCommand, context: RunContext) -> Outcome:
    lines = DiagnosticsArgs.model_validate(command.args).log_lines
    if context.uploader is None:
        return Outcome("failed", "upload_failed", "central.url is not configured", {})
    body = diagnostics.collect(context.sources, command.id, lines)
    try:
        uploaded = context.uploader.upload(command.id, command.name, body)
    except UploadError as exc:
        return Outcome("failed", exc.code, exc.message, {"bytes": len(body)})
    return Outcome("done", "uploaded", "", uploaded.detail())


# ``config.apply`` answers not_supported here; :func:`wire_commands` plugs in
# the configuration push (sync/configpush.py) for the agent.
HANDLERS: dict[str, Handler] = {
    "service.restart": service_restart,
    "device.reboot": device_reboot,
    "config.reload": config_reload,
    "config.apply": config_apply,
    "diagnostics.collect": diagnostics_collect,
}


def _act(action: Callable[[], object]) -> None:
    try:
        action()
    except SystemActionError as exc:
        log.error("deferred system action failed", extra={"error": str(exc)})


class CommandRunner:
    """See the module docstring. ``start()`` runs it on a daemon thread."""

    def __init__(
        self,
        ledger: CommandLedger,
        verify: Callable[[bytes], object],
        context: RunContext,
        *,
        handlers: dict[str, Handler] | None = None,
        on_finished: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.verify = verify
        self.context = context
        self.handlers = HANDLERS if handlers is None else handlers
        self.on_finished = on_finished
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for command_id in self.ledger.interrupted("agent"):
            # Taken by an earlier run that stopped mid-way: its outcome is unknown.
            self.ledger.finish(command_id, "failed", "interrupted",
                               "the sync agent stopped while running it", time.time())  # fmt: skip
        self._thread = threading.Thread(target=self._loop, name="commands", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            try:
                self.run_pending()
                self.upload_attachments()
            except Exception:  # a bug must not end the thread: the next poll retries
                log.exception("command runner failed")

    def run_pending(self) -> None:
        for entry in self.ledger.claim("agent", time.time()):
            if self._stopping.is_set():
                return
            outcome = self._run(entry)
            self.ledger.finish(entry.id, outcome.state, outcome.code, outcome.message,
                               time.time(), detail=outcome.detail)  # fmt: skip
            log.info(
                "command finished",
                extra={"command": entry.id, "command_name": entry.name, "state": outcome.state,
                       "code": outcome.code},
            )  # fmt: skip
            self.on_finished()

    def _run(self, entry: LedgerEntry) -> OutcomeLike:
        try:
            command = self.verify(entry.body)
        except CommandError as exc:
            return Outcome("refused", exc.code, exc.message, {})
        assert isinstance(command, DeviceCommand)
        if command.id != entry.id or command.name != entry.name:
            return Outcome("refused", "malformed", "the ledger row does not match its body", {})
        handler = self.handlers.get(command.name)
        if handler is None:
            return Outcome("failed", "not_supported", f"{command.name} is not run here", {})
        self.context.command_id = command.id
        try:
            return handler(command, self.context)
        except Exception:
            log.exception("command handler failed", extra={"command": command.id})
            return Outcome("failed", "internal_error", "the device failed to run it", {})

    def upload_attachments(self) -> None:
        for entry in self.ledger.with_attachment():
            data = entry.attachment or b""
            if entry.state != "done" or self.context.uploader is None:
                why = "central.url is not configured" if entry.state == "done" else entry.message
                state: FinalState = "failed" if entry.state == "done" else entry.state  # type: ignore[assignment]
                code = "upload_failed" if entry.state == "done" else entry.code
                self.ledger.settle_attachment(entry.id, state, code, why, entry.detail)
                continue
            try:
                uploaded = self.context.uploader.upload(entry.id, entry.name, data)
            except UploadError as exc:
                self.ledger.settle_attachment(entry.id, "failed", exc.code, exc.message,
                                              {"bytes": len(data)})  # fmt: skip
            else:
                detail = {**entry.detail, **uploaded.detail()}
                self.ledger.settle_attachment(entry.id, "done", entry.code or "uploaded",
                                              entry.message, detail)  # fmt: skip
            self.on_finished()


def wire_commands(
    config: DeviceConfig,
    outbox: Outbox,
    results_topic: str,
    *,
    inbox: Callable[[tuple[Any, ...]], None],
    health: Callable[[], dict[str, Any] | None],
) -> tuple[CommandDesk, CommandRunner]:
    """The agent's command desk and runner over its store; ``inbox`` takes
    the runner's ``("finished",)`` and ``("deferred", id, action)`` items."""
    try:
        keys = load_command_keys(config.commands.public_key_file)
    except ConfigError as exc:  # events must still flow: every command is refused
        log.error("command key unusable: commands refused", extra={"error": str(exc)})
        keys = {}
    verifier = Verifier(keys, config.device.id)
    ledger = CommandLedger(outbox.store)
    system = build_system(config)
    sources = diagnostics.DiagnosticsSources(config.device.id, outbox, system, health)
    context = RunContext(
        config.source, system, AttachmentUploader.for_device(config), sources,
        defer=lambda command_id, action: inbox(("deferred", command_id, action)),
    )  # fmt: skip

    def restart_services(services: list[str]) -> None:
        # After a pushed configuration: the agent's own service last, once
        # central has the result (the others now, so a failure is reported).
        for service in services:
            if service == "sync":
                context.after_report(lambda: _act(lambda: system.restart("sync", wait=False)))
            else:
                system.restart(service)

    handlers = {**HANDLERS, "config.apply": config_apply_handler(config, outbox.store,
                                                                   restart_services)}  # fmt: skip
    runner = CommandRunner(
        ledger, lambda body: verifier.verify(body)[0], context, handlers=handlers,
        on_finished=lambda: inbox(("finished",)),
    )  # fmt: skip
    desk = CommandDesk(
        ledger, outbox, verifier, results_topic,
        on_received=lambda target: runner.wake() if target == "agent" else None,
    )  # fmt: skip
    return desk, runner
