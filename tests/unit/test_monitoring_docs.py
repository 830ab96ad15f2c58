"""The example Prometheus rules and Grafana dashboard use metrics that
central really exports (names checked against central/ops/metrics.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def exported() -> set[str]:
    source = (ROOT / "central" / "ops" / "metrics.py").read_text()
    return set(re.findall(r'"(kiosk_[a-z_]+)"', source))


def test_monitoring_prometheus_rules_use_exported_metrics() -> None:
    rules = (ROOT / "docs" / "monitoring" / "prometheus-rules.yml").read_text()
    used = set(re.findall(r"\b(kiosk_[a-z_]+)\b", rules)) - {"kiosk_fleet"}
    assert used and used <= exported(), used - exported()


def test_monitoring_grafana_dashboard_is_json_with_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "docs" / "monitoring" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(kiosk_[a-z_]+)\b", e)}
    assert used and used <= exported(), used - exported()
