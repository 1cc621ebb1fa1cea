"""Funding booked into a bot's account reaches its metrics, its event stream and ListTrades."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

from rich.table import Table

from tests.service.test_metrics_labels import LABELS
from tradefleet_runtime.model import CashFlow
from tradefleet_runtime.service.api import TradeView
from tradefleet_runtime.service.cli_control import _trades_table
from tradefleet_runtime.service.controller import _Listener
from tradefleet_runtime.service.grpc_server import trade_from_proto, trade_to_proto
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


def test_list_trades_carries_a_trades_funding_both_ways() -> None:
    view = TradeView(
        seq=3, symbol="BTCUSDT", direction=1, quantity=1.0, entry_ts=1, exit_ts=2,
        entry_price=100.0, exit_price=110.0, net_pnl=-9.75 + 10.0, fees=0.0, funding=-9.75,
    )  # fmt: skip
    message = trade_to_proto(view)
    assert message.funding == -9.75
    assert trade_from_proto(message) == view


def _titles(table: Table) -> list[str]:
    return [str(column.header) for column in table.columns]


def test_the_cli_shows_a_funding_column_only_when_a_trade_has_funding() -> None:
    """``tradefleet trades``: a spot bot's table stays as narrow as before."""
    spot = TradeView(
        seq=0, symbol="BTCUSDT", direction=1, quantity=1.0, entry_ts=1, exit_ts=2,
        entry_price=100.0, exit_price=110.0, net_pnl=10.0, fees=0.0,
    )  # fmt: skip
    assert "funding" not in _titles(_trades_table([spot]))
    perp = dataclasses.replace(spot, seq=1, funding=-1.25, net_pnl=8.75)
    table = _trades_table([spot, perp])
    assert _titles(table)[-2:] == ["funding", "closed"]
    funding = table.columns[_titles(table).index("funding")]
    assert list(funding.cells) == ["0.00", "-1.25"]
