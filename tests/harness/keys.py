"""The test fleet's credential key: what a device's ``reader.credential_key_file``
and central's ``reservations.code_key_file`` name in tests (the product has no
built-in key; the demo writes its own)."""

from __future__ import annotations

from pathlib import Path

TEST_KEY = bytes(range(32))


def fixed_code_key(_facility: str) -> bytes:
    """Central's ``code_key`` for tests: the test key for every facility."""
    return TEST_KEY


def write_test_key(path: Path) -> Path:
    """The test key as a key file (64 hex characters); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEST_KEY.hex() + "\n")
    return path
