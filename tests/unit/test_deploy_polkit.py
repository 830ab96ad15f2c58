"""The polkit rule the installer writes (deploy/polkit/): the sync agent's
user may restart exactly the units the agent's commands name, and reboot;
the rule names the same user and units as the installer and the agent."""

from __future__ import annotations

import re

from deploy.host import SYNC_USER
from deploy.install import POLKIT_FILES, POLKIT_RULE, UNITS
from sync.system import UNITS as AGENT_UNITS

RULE = (POLKIT_FILES / POLKIT_RULE).read_text()


def test_deploy_polkit_rule_names_exactly_the_agents_units_and_user() -> None:
    assert set(re.findall(r'"(city-kiosk-[a-z-]+\.service)"', RULE)) == set(UNITS)
    assert set(AGENT_UNITS.values()) == set(UNITS)
    assert re.findall(r'subject\.user !== "([^"]+)"', RULE) == [SYNC_USER]


def test_deploy_polkit_rule_grants_only_restart_and_reboot() -> None:
    code = "\n".join(line for line in RULE.splitlines() if not line.lstrip().startswith("//"))
    assert re.findall(r'action\.lookup\("verb"\) === "([a-z-]+)"', code) == ["restart"]
    granted = set(re.findall(r'action\.id === "([a-z0-9.-]+)"', code))
    assert granted == {
        "org.freedesktop.systemd1.manage-units",
        "org.freedesktop.login1.reboot",
        "org.freedesktop.login1.reboot-multiple-sessions",
    }
    # One YES per grant: manage-units (restart of the listed units) and reboot.
    assert code.count("polkit.Result.YES") == 2
