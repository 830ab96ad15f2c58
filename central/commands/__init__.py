"""Remote commands to devices, central's side (docs/protocol.md "Commands",
docs/ops.md "Remote commands").

* :mod:`.rules` -- what central checks before signing (pure);
* :mod:`.service` -- :class:`CommandService`: issue, follow, read;
* :mod:`.relay` -- :class:`CommandRelay`: publishes, takes results, re-sends
  on reconnection, expires;
* :mod:`.attachments` -- the device listener's upload route.

For other subsystems (configuration push), one call::

    command_id = service.issue(device, "config.apply", {"version": 3, "settings": {...}},
                               issuer="staff:sato", source="10.0.0.5")

It returns the new command's id, or raises :class:`CommandRefused` (``code``
and a ``message`` for the person; already in the audit log). The command is
signed, stored ``queued`` and published by the relay; follow it with
:meth:`CommandService.get` (``state``: queued, sent, delivered, done,
failed, refused, expired; ``code``, ``message``, ``detail`` from the device),
or be told of every final result: ``service.result_hooks.append(callback)``
(called with the :class:`contracts.commands.CommandResult` on the relay's
thread, after it is stored). Wiring configuration push::

    push = ConfigPushService(db, lambda d, n, a, who, src: service.issue(
        d, n, a, issuer=who, source=src))
    service.result_hooks.append(lambda r: push.record_result(
        r.device, r.id, state=r.state, code=r.code, message=r.message, now=r.at)
        if r.name == "config.apply" else None)
"""

from central.commands.errors import CommandRefused, CommandsError, NotConfigured
from central.commands.service import STATES, CommandService, load_signing_key

__all__ = [
    "STATES",
    "CommandRefused",
    "CommandService",
    "CommandsError",
    "NotConfigured",
    "load_signing_key",
]
