"""docs/architecture.md names files and folders; each must exist, so the page
cannot drift from the tree without a test failing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
# `kiosk/checkin/access.py`, `central/db/`, `demo/device.toml` ...
PATH = re.compile(r"`((?:[a-z0-9_]+/)+(?:[a-z0-9_]+\.(?:py|toml|kv))?)`")
TOP = (
    "foundation",
    "contracts",
    "sync",
    "cardreader",
    "lockctl",
    "kiosk",
    "central",
    "deploy",
    "demo",
)
# Packages whose table row names files directly inside them.
FLAT = ("foundation", "contracts", "sync", "cardreader", "lockctl")


def named_paths() -> set[str]:
    text = PAGE.read_text(encoding="utf-8")
    found = {p for p in PATH.findall(text) if p.split("/")[0] in TOP}
    # Rows of the package table name files relative to their package.
    for row in text.splitlines():
        match = re.match(r"\| `([a-z]+)/` \|", row)
        if match and match.group(1) in FLAT:
            owned = row.split("|")[2]
            found.update(
                f"{match.group(1)}/{name}" for name in re.findall(r"`([a-z0-9_]+\.py)`", owned)
            )
    return found


def test_architecture_page_names_only_files_that_exist() -> None:
    paths = named_paths()
    assert len(paths) > 40, "the page should name the files a newcomer looks for"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_architecture_page_names_every_top_level_package() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for package in TOP:
        assert f"| `{package}/` |" in text, package
