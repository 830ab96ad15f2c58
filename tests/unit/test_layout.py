"""Package boundaries, checked on every import statement (function-level
ones too): device packages never import central, deploy or the demo; central
never imports the demo; cardreader imports only foundation (its command line
also reads the device configuration)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "kiosk": {"central", "deploy", "demo", "bench", "tests"},
    "lockctl": {"central", "deploy", "demo", "bench", "tests"},
    "cardreader": {"central", "deploy", "demo", "bench", "tests", "kiosk", "lockctl"},
    "sync": {"central", "deploy", "demo", "bench", "tests", "kiosk", "lockctl"},
    "foundation": {"central", "deploy", "demo", "bench", "tests", "kiosk", "lockctl", "sync"},
    "contracts": {"central", "deploy", "demo", "bench", "tests", "kiosk", "lockctl", "sync"},
    "central": {"demo", "bench", "tests", "kiosk", "lockctl"},
    "deploy": {"demo", "bench", "tests"},
}


def imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layout_package_imports_stay_inside_their_boundary(package: str) -> None:
    found = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imported_packages(path) & FORBIDDEN[package]
    }
    assert not found, sorted(found)


def test_layout_cardreader_library_imports_only_foundation() -> None:
    ours = {"kiosk", "lockctl", "sync", "central", "deploy", "demo", "contracts", "foundation"}
    found = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "cardreader").rglob("*.py")
        if path.name != "cli.py"  # the command line reads the device configuration
        for name in imported_packages(path) & (ours - {"foundation"})
    }
    assert not found, sorted(found)
