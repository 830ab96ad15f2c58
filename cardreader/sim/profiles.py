"""Build a virtual card from a profile name (CLI, tests, demo).

Profiles: ``mynumber`` (variants ``valid``, ``expired``, ``revoked``, and a
``blocked`` PIN by ``tries=0``), ``felica``, ``mifare``, ``unknown`` and
``faulty`` (see :mod:`cardreader.sim.faulty`).
"""

from __future__ import annotations

from pathlib import Path

from cardreader.sim.cards import ATR_FELICA, ATR_MIFARE_1K, UidCard, UnknownCard
from cardreader.sim.faulty import FaultyCard
from cardreader.sim.mynumber import MyNumberCard, PinState, sign_state_for
from cardreader.sim.testpki import TestPki
from cardreader.sim.vpcd import VirtualCard

PROFILES = ("mynumber", "felica", "mifare", "unknown", "faulty")
DEMO_FELICA_IDM = bytes.fromhex("012E4CD2A1B2C3D4")
DEMO_MIFARE_UID = bytes.fromhex("04A23BC2D15E80")


def mynumber_card(
    pki: TestPki,
    *,
    variant: str = "valid",
    pin: str = "1234",
    state_path: Path | None = None,
    tries: int | None = None,
    extended_length: bool = True,
    sign_password: str = "TEST1234",  # noqa: S107 -- test material
) -> MyNumberCard:
    """A My Number Card holding the test PKI's ``variant`` user certificate
    (and its signing certificate, key and CA when the PKI has them).

    ``tries`` sets the user-auth retry counter (0 = blocked) and persists it
    if a ``state_path`` is given; otherwise the persisted value (or 3) is
    used. The signing password's counter lives beside it (``*.sign.json``).
    """
    user = pki.users[variant]
    state = PinState(state_path)
    if tries is not None:
        state.set(tries)
    signer = pki.signers.get(variant)
    return MyNumberCard(
        sign_cert_der=signer.der if signer else None,
        sign_key=signer.key if signer else None,
        sign_ca_der=pki.sign_root.der if signer and pki.sign_root else None,
        sign_password=sign_password,
        sign_pin_state=sign_state_for(state_path),
        cert_der=user.der,
        key=user.key,
        ca_der=pki.root.der,
        pin=pin,
        pin_state=state,
        extended_length=extended_length,
    )


def build_card(
    profile: str,
    *,
    pki: TestPki | None = None,
    pin: str = "1234",
    variant: str = "valid",
    state_path: Path | None = None,
    tries: int | None = None,
    uid: bytes | None = None,
    fault: str = "garbage",
) -> VirtualCard:
    if profile == "felica":
        return UidCard(uid=uid or DEMO_FELICA_IDM, atr=ATR_FELICA)
    if profile == "mifare":
        return UidCard(uid=uid or DEMO_MIFARE_UID, atr=ATR_MIFARE_1K)
    if profile == "unknown":
        return UnknownCard()
    if profile not in ("mynumber", "faulty"):
        raise ValueError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
    if pki is None:
        raise ValueError(f"profile {profile!r} needs a test PKI (python -m cardreader testpki)")
    card = mynumber_card(pki, variant=variant, pin=pin, state_path=state_path, tries=tries)
    return card if profile == "mynumber" else FaultyCard(card, mode=fault)
