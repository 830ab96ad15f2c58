"""Putting virtual cards into the test pcscd's vpcd slots and waiting for
pcscd to see them (it polls the virtual reader about every 400 ms).

The waits return as soon as pcscd sees the change; their limit is generous
because on a loaded two-core CI machine pcscd's polling thread has been seen
to take more than 5 s to notice an inserted card."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cardreader.sim.vpcd import VirtualCard, VpcdLink
from tests.harness.pcscd import READER_NAMES, Pcscd
from tests.harness.services import wait_until

SLOT_WAIT_S = 30.0


def card_present(reader: str) -> bool:
    """pcscd's own view of the slot (no connection, so no side effects)."""
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    try:
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        return hresult == scard.SCARD_S_SUCCESS and bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


@contextmanager
def inserted(card: VirtualCard, pcscd: Pcscd, slot: int = 0) -> Iterator[tuple[VpcdLink, str]]:
    """The card in slot ``slot`` until the block ends; yields (link, reader name)."""
    reader = READER_NAMES[slot]
    link = VpcdLink(card, port=pcscd.ports[slot])
    link.insert()
    try:
        wait_until(lambda: card_present(reader), SLOT_WAIT_S, f"card present in {reader}")
        yield link, reader
    finally:
        link.remove()
        wait_until(lambda: not card_present(reader), SLOT_WAIT_S, f"card gone from {reader}")
