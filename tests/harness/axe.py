"""axe-core (the accessibility rules engine, from npm) for browser tests:
installed with npm into a git-ignored folder under tests/ on first use, then
injected into the page under test."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.harness.services import ServiceError, require_binary

AXE_VERSION = "4.14.1"
HOME = Path(__file__).resolve().parents[1] / ".axe"
SCRIPT = HOME / "node_modules" / "axe-core" / "axe.min.js"


def axe_script() -> str:
    if not SCRIPT.is_file() or f'"version": "{AXE_VERSION}"' not in (
        SCRIPT.parent / "package.json"
    ).read_text(encoding="utf-8"):
        npm = require_binary("npm")
        HOME.mkdir(exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(HOME), "--no-save", "--no-audit", "--no-fund",
             f"axe-core@{AXE_VERSION}"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not SCRIPT.is_file():
            raise ServiceError(f"npm could not install axe-core: {done.stderr[-2000:]}")
    return SCRIPT.read_text(encoding="utf-8")


def serious_violations(driver: Any, script: str) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the current page."""
    driver.execute_script(script)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical',"
        " description: String(e), nodes: []}]));"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "description": v["description"],
         "nodes": [n.get("target") for n in v.get("nodes", [])][:5]}
        for v in result if v.get("impact") in ("serious", "critical")
    ]  # fmt: skip
