"""Every runtime metric a chart alert uses is in ``docs/operations.md#metrics``: a person
building a dashboard or a silence from the table finds it (``tradefleet_closes_retrying``, the
gauge ``TradefleetCloseRetrying`` pages on, was missing).
"""

from __future__ import annotations

import re

import yaml

from tests.packaging.test_alerts import ALERTS, OPERATIONS, metric_names


def _metrics_table() -> set[str]:
    text = OPERATIONS.read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `tradefleet_"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`(tradefleet_[a-z_]+)`", first_cell))
    return names


def test_every_runtime_metric_an_alert_uses_is_in_the_metrics_table() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    used: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used |= metric_names(str(rule["expr"]))
    runtime = {name for name in used if name.startswith("tradefleet_") and "operator" not in name}
    missing = sorted(runtime - _metrics_table())
    assert not missing, f"alerts use runtime metrics the Metrics table omits: {missing}"
