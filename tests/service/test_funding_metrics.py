"""Funding booked into a bot's account reaches its metrics and its event stream."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.service.test_metrics_labels import LABELS
from tradefleet_runtime.model import CashFlow
from tradefleet_runtime.service.controller import _Listener
from tradefleet_runtime.service.metrics import MONEY_SERIES, RuntimeMetrics


class _Hub:
    def __init__(self) -> None:
        self.published: list[tuple[int, Any, str, dict[str, Any]]] = []

    def publish(self, ts: int, kind: Any, message: str, data: dict[str, Any]) -> None:
        self.published.append((ts, kind, message, data))


def _listener() -> tuple[_Listener, RuntimeMetrics, _Hub]:
    metrics = RuntimeMetrics(LABELS)
    hub = _Hub()
    controller = SimpleNamespace(metrics=metrics, hub=hub, engine=None, bot=SimpleNamespace())
    controller.bot.name = LABELS.bot
    return _Listener(controller), metrics, hub  # type: ignore[arg-type]


def _value(metrics: RuntimeMetrics, name: str, symbol: str) -> float | None:
    return metrics.registry.get_sample_value(
        name, {"bot": LABELS.bot, "symbol": symbol, "currency": LABELS.currency}
    )


def test_paid_and_received_funding_are_counted_apart_in_the_accounts_currency() -> None:
    listener, metrics, hub = _listener()
    symbol = LABELS.symbols[0]
    listener.on_cash_flow(CashFlow("f1", symbol, -12.5, LABELS.currency, 1_700_000_000), True)
    listener.on_cash_flow(CashFlow("f2", symbol, -2.5, LABELS.currency, 1_700_028_800), True)
    listener.on_cash_flow(CashFlow("f3", symbol, 4.0, LABELS.currency, 1_700_057_600), True)
    assert _value(metrics, "tradefleet_funding_paid_total", symbol) == 15.0
    assert _value(metrics, "tradefleet_funding_received_total", symbol) == 4.0
    assert [data["flow_id"] for _, _, _, data in hub.published] == ["f1", "f2", "f3"]
    assert hub.published[0][0] == 1_700_000_000  # stamped when the venue booked it
    assert {"tradefleet_funding_paid_total", "tradefleet_funding_received_total"} <= MONEY_SERIES


def test_funding_in_another_currency_is_published_but_not_counted_as_money() -> None:
    """Counted under the account's currency label, a BNB amount would read as USD."""
    listener, metrics, hub = _listener()
    symbol = LABELS.symbols[0]
    listener.on_cash_flow(CashFlow("f1", symbol, -0.02, "BNB", 1_700_000_000), False)
    assert _value(metrics, "tradefleet_funding_paid_total", symbol) is None
    ((_, _, message, data),) = hub.published
    assert data["booked"] is False and "not booked" in message


def test_a_symbol_outside_the_spec_is_counted_under_other() -> None:
    listener, metrics, _ = _listener()
    listener.on_cash_flow(CashFlow("f1", "DOGEUSDT", -1.0, LABELS.currency, 1_700_000_000), True)
    assert _value(metrics, "tradefleet_funding_paid_total", "other") == 1.0
