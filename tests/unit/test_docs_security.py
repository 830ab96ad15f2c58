"""docs/security.md proves each control with a named test; every name must be
a test that exists, and every interface of the threat model must be there,
so the page cannot promise a proof that is gone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "security.md"
TEST_REF = re.compile(r"`(tests/[a-z0-9_/]+\.py)::([a-z0-9_]+)`")
INTERFACES = (
    "Card reader",
    "Lock socket",
    "MQTT",
    "Issuance HTTPS",
    "Dashboard",
    "Operator API",
    "Provisioning and the installer",
    "Physical access to a device",
)


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return {node.name for node in ast.walk(tree) if isinstance(node, functions)}


def test_docs_security_every_named_test_exists() -> None:
    references = TEST_REF.findall(PAGE.read_text(encoding="utf-8"))
    assert len(references) >= 40, "the threat model should name its proofs"
    missing = []
    for file, name in references:
        path = ROOT / file
        if not path.is_file() or name not in _test_names(path):
            missing.append(f"{file}::{name}")
    assert missing == []


@pytest.mark.parametrize("interface", INTERFACES)
def test_docs_security_covers_each_interface(interface: str) -> None:
    headings = re.findall(r"^## (.+)$", PAGE.read_text(encoding="utf-8"), flags=re.M)
    assert any(h.startswith(interface) for h in headings)


def test_docs_security_every_row_has_a_control_and_a_proof() -> None:
    rows = [line for line in PAGE.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and not line.startswith(("| attacker", "|---"))]  # fmt: skip
    threat_rows = [row for row in rows if row.count("|") == 4]
    assert threat_rows
    for row in threat_rows:
        _, _, control, proof, _ = row.split("|")
        assert len(control.strip()) > 20, row
        assert "`tests/" in proof, row
