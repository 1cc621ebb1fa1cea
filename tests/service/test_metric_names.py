"""The bot's metrics follow Prometheus' naming rules: ``promtool check metrics`` passes on a
scrape with every series present, and no gauge ends in ``_total`` (a counter's suffix: queries
and tools take such a series for a counter and apply rate() to it).

``promtool`` comes from Debian's ``prometheus`` package (``make prometheus``); missing, the test
fails, never skips (as ``tests/packaging/test_alerts.py``).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.fakes import FakeControlPlane
from tests.service.test_metrics_labels import LABELS
from tradefleet_runtime.service.metrics import RuntimeMetrics


def _scrape() -> str:
    """Every metric of a bot with something in each: an order, a fill, fees, slippage on both
    sides of zero, a risk decision, broker calls, webhook requests and signals."""
    status = FakeControlPlane().status
    metrics = RuntimeMetrics(LABELS)
    metrics.watch(lambda: status, lambda: 1.0, 60.0)
    bot, symbol, currency = LABELS.bot, LABELS.symbols[0], LABELS.currency
    metrics.orders.labels(bot, symbol, "filled").inc()
    metrics.fills.labels(bot, symbol, "buy").inc()
    metrics.fees.labels(bot, symbol, currency).inc(0.5)
    metrics.funding_paid.labels(bot, symbol, currency).inc(1.25)
    metrics.funding_received.labels(bot, symbol, currency).inc(0.75)
    metrics.slippage.labels(bot, symbol).observe(-2.0)
    metrics.slippage.labels(bot, symbol).observe(3.0)
    metrics.risk_decisions.labels(bot, "fixed-size", "allow", "allow").inc()
    metrics.bar_to_order.labels(bot).observe(0.002)
    metrics.broker_latency.labels(bot, "submit").observe(0.01)
    metrics.broker_errors.labels(bot, "submit").inc()
    metrics.webhook_requests.labels(bot, "accepted").inc()
    metrics.signals.labels(bot, "accepted").inc()
    return generate_latest(metrics.registry).decode()


def test_promtool_check_metrics_passes_on_a_full_scrape() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("`promtool` is not on PATH: run `make prometheus`", pytrace=False)
    text = _scrape()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_gauge_ends_in_total_and_bars_handled_is_a_counter() -> None:
    families = {f.name: f for f in text_string_to_metric_families(_scrape())}
    gauges_total = sorted(
        sample.name
        for family in families.values()
        if family.type == "gauge"
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    assert gauges_total == []
    assert families["tradefleet_bars"].type == "counter"
    [bars] = families["tradefleet_bars"].samples
    assert (bars.name, bars.value) == ("tradefleet_bars_total", 1234)
    [pnl] = families["tradefleet_pnl"].samples
    assert families["tradefleet_pnl"].type == "gauge" and pnl.value == 250.5
