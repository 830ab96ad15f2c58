"""The card reader both flows use, built from the device configuration: the
PC/SC card service and the fleet's credential key behind card references."""

from __future__ import annotations

from cardreader.credential import load_key
from cardreader.errors import CredentialKeyError
from cardreader.service import CardService
from foundation.errors import ConfigError, MissingKeyError
from kiosk.card_refs import known_refs_in
from sync.config import DeviceConfig

KEY_HOW = "the fleet's credential key (python -m cardreader keygen PATH; docs/configuration.md)"


def credential_key(config: DeviceConfig) -> bytes:
    """The fleet's key (``reader.credential_key_file``) for card references
    (and code hashes without ``reader.code_key_file``); unset or unreadable
    is a configuration error."""
    path = config.reader.credential_key_file
    if path is None:
        raise MissingKeyError(config.source, "reader.credential_key_file", how=KEY_HOW)
    try:
        return load_key(path)
    except CredentialKeyError as exc:
        raise ConfigError(config.source, [f"reader.credential_key_file: {exc}"]) from None


def code_key(config: DeviceConfig) -> bytes:
    """The key of reservation-code hashes: this facility's key
    (``reader.code_key_file``, written by provisioning), else the credential
    key (the demo's and the tests' single-key layout)."""
    path = config.reader.code_key_file
    if path is None:
        return credential_key(config)
    try:
        return load_key(path)
    except CredentialKeyError as exc:
        raise ConfigError(config.source, [f"reader.code_key_file: {exc}"]) from None


def card_service_for(config: DeviceConfig) -> CardService:
    """The card reader as configured (``reader.backend`` ``sim`` is the same
    PC/SC path, with virtual cards played into pcscd)."""
    return CardService(
        credential_key=credential_key(config),
        reader_filter=config.reader.name,
        apdu_timeout=config.reader.apdu_timeout_seconds,
        extended_reads=config.reader.extended_reads,
        # The j1 -> j2 transition (docs/cardreader.md): cards enrolled under
        # their legacy reference still match, with the whole certificate read.
        known_refs=known_refs_in(config.store.path),
    )
