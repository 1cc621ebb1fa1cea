"""The paper broker liquidates a leveraged position as a venue does: when the account's equity
falls to its maintenance margin (``maintenance_margin_rate`` × gross notional).

Before, a backtest at 10× leverage held a long through a 15 % fall that any venue would have
liquidated, and went on to report the recovery as profit. Now the position is closed at the
price where equity meets the margin (the open, when the bar gapped beyond it), the symbol's
orders are cancelled, the fill's reason is ``liquidation``, and the engine says so.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pytest
import yaml

from tests.plugin_hooks import registry_with
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_liquidation import (
    liquidation_fill_price,
    liquidation_price,
)
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.bar_columns import BarColumns
from tradefleet_runtime.capabilities import TargetPlan
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
    Side,
)
from tradefleet_runtime.optimize.vector import run_plan, vector_terms
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.metrics import exit_kind
from tradefleet_runtime.sdk import PluginKind, PluginParams, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_704_067_200
BTC, ETH = "BTCUSDT", "ETHUSDT"


# --- the rule, alone -----------------------------------------------------------------------------


def test_a_levered_long_is_liquidated_where_equity_meets_the_margin() -> None:
    # 1,000 of equity, 100 units bought at 100 at 10x: cash -9,000.
    price = liquidation_price(100.0, -9_000.0, 0.0, 0.005)
    assert price == pytest.approx(9_000.0 / (100 * 0.995))
    assert -9_000.0 + 100 * price == pytest.approx(0.005 * 100 * price)


def test_a_short_is_liquidated_above_and_a_long_without_borrowing_never() -> None:
    # 1,000 of equity, 100 units sold at 100: cash 11,000.
    price = liquidation_price(-100.0, 11_000.0, 0.0, 0.005)
    assert price == pytest.approx(11_000.0 / (100 * 1.005))
    assert 11_000.0 - 100 * price == pytest.approx(0.005 * 100 * price)
    assert liquidation_price(10.0, 0.0, 0.0, 0.005) is None  # bought with its own cash
    assert liquidation_price(10.0, -500.0, 0.0, 0.0) is None  # no maintenance margin
    assert liquidation_price(0.0, -500.0, 0.0, 0.005) is None


def test_other_symbols_move_a_symbols_liquidation_price() -> None:
    alone = liquidation_price(100.0, -9_000.0, 0.0, 0.005)
    # The same cash, and another symbol held long worth 500 (gross 500): more equity, more
    # margin.
    beside = liquidation_price(100.0, -9_000.0 + 500.0, 500.0, 0.005)
    assert alone is not None and beside is not None and beside < alone
    assert -8_500.0 + 100 * beside == pytest.approx(0.005 * (100 * beside + 500.0))


def test_a_bar_liquidates_at_the_price_or_at_an_open_beyond_it() -> None:
    assert liquidation_fill_price(1.0, 90.0, 95.0, 96.0, 89.0) == 90.0
    assert liquidation_fill_price(1.0, 90.0, 85.0, 86.0, 84.0) == 85.0  # gapped through
    assert liquidation_fill_price(1.0, 90.0, 95.0, 96.0, 90.5) is None
    assert liquidation_fill_price(-1.0, 110.0, 105.0, 111.0, 104.0) == 110.0
    assert liquidation_fill_price(-1.0, 110.0, 115.0, 116.0, 114.0) == 115.0
    assert liquidation_fill_price(-1.0, 110.0, 105.0, 109.0, 104.0) is None


# --- the broker -----------------------------------------------------------------------------------


def _broker(**params: object) -> PaperBroker:
    broker = PaperBroker(PaperBrokerParams(leverage=10, **params))  # type: ignore[arg-type]
    broker.connect(BrokerContext("b", "paper", (BTC, ETH), "USDT", 1_000.0))  # type: ignore[arg-type]
    return broker


def _bar(i: int, o: float, h: float, lo: float, c: float, symbol: str = BTC) -> Bar:
    return Bar(symbol, HOUR, T0 + i * HOUR, o, h, lo, c, 1.0)


def _enter(broker: PaperBroker, side: Side, quantity: float = 100.0, **order: object) -> Order:
    entry = Order(f"e-{side}", BTC, side, quantity, created_ts=T0, **order)  # type: ignore[arg-type]
    assert broker.submit(entry).status is OrderStatus.OPEN
    fills = [e for e in broker.on_bar(_bar(0, 100, 100, 100, 100)) if isinstance(e, Fill)]
    assert [f.price for f in fills] == [100.0]
    return entry


LONG_AT = 9_000.0 / (100 * 0.995)  # 90.45...
SHORT_AT = 11_000.0 / (100 * 1.005)  # 109.45...


def test_a_long_falling_through_its_price_is_closed_there_and_its_orders_cancelled() -> None:
    broker = _broker()
    _enter(broker, Side.BUY)
    take_profit = Order("tp", BTC, Side.SELL, 100.0, OrderType.LIMIT, 120.0, created_ts=T0)
    broker.submit(take_profit)
    assert not broker.on_bar(_bar(1, 95, 96, 91, 92))  # above 90.45: nothing
    events = list(broker.on_bar(_bar(2, 92, 93, 88, 89)))
    fill, cancel = events
    assert isinstance(fill, Fill) and isinstance(cancel, OrderUpdate)
    assert (fill.side, fill.quantity, fill.reason) == (Side.SELL, 100.0, "liquidation")
    assert fill.price == pytest.approx(LONG_AT)
    assert fill.client_order_id == f"liquidation:{BTC}:{T0 + 2 * HOUR}"
    assert (cancel.client_order_id, cancel.status, cancel.code) == (
        "tp",
        OrderStatus.CANCELLED,
        ReasonCode.CANCELLED_BY_VENUE,
    )
    # What is left is the maintenance margin: 0.5 % of the notional at that price.
    assert broker.balance() == pytest.approx(0.005 * 100 * LONG_AT)
    assert broker.open_orders() == []
    assert not broker.on_bar(_bar(3, 80, 130, 70, 125))  # flat: no more


def test_a_bar_opening_beyond_the_price_liquidates_at_its_open() -> None:
    broker = _broker()
    _enter(broker, Side.BUY)
    [fill] = broker.on_bar(_bar(1, 85, 86, 84, 85))
    assert isinstance(fill, Fill) and fill.price == 85.0
    assert broker.balance() == pytest.approx(-9_000.0 + 8_500.0)  # a gap can cost more


def test_a_short_rising_through_its_price_is_closed_there() -> None:
    broker = _broker(fee_bps=10, liquidation_fee_bps=50)
    _enter(broker, Side.SELL, quantity=90.0)
    cash = 1_000.0 + 9_000.0 - 9.0  # the entry's fee
    at = cash / (90 * 1.005)
    [fill] = broker.on_bar(_bar(1, 105, 112, 104, 111))
    assert isinstance(fill, Fill) and (fill.side, fill.reason) == (Side.BUY, "liquidation")
    assert fill.price == pytest.approx(at)
    assert fill.fee == pytest.approx(90 * at * 0.006)  # the taker fee and the extra


def test_the_bots_stop_the_price_reaches_first_fills_first() -> None:
    broker = _broker()
    entry = _enter(broker, Side.BUY)
    stop = Order("sl", BTC, Side.SELL, 100.0, OrderType.STOP, 92.0, reduce_only=True)
    broker.submit(stop._replace(created_ts=T0))
    events = list(broker.on_bar(_bar(1, 95, 96, 88, 89)))
    assert [(e.client_order_id, e.reason) for e in events if isinstance(e, Fill)] == [
        ("sl", "stop")
    ]
    del entry


def test_a_stop_beyond_the_liquidation_price_comes_too_late() -> None:
    broker = _broker()
    _enter(broker, Side.BUY)
    broker.submit(
        Order("sl", BTC, Side.SELL, 100.0, OrderType.STOP, 88.0, reduce_only=True, created_ts=T0)
    )
    events = list(broker.on_bar(_bar(1, 95, 96, 87, 89)))
    fills = [e for e in events if isinstance(e, Fill)]
    assert [f.reason for f in fills] == ["liquidation"]
    assert [(e.client_order_id, e.status) for e in events if isinstance(e, OrderUpdate)] == [
        ("sl", OrderStatus.CANCELLED)
    ]


@pytest.mark.parametrize(
    "order",
    [
        Order("close", BTC, Side.SELL, 100.0, reduce_only=True, created_ts=T0 + HOUR),
        Order("sl", BTC, Side.SELL, 100.0, OrderType.STOP, 93.0, reduce_only=True, created_ts=T0),
    ],
    ids=["market-close-sent-before-the-gap", "stop-above-the-liquidation-price"],
)
def test_a_bar_opening_beyond_the_price_liquidates_before_the_bots_orders(order: Order) -> None:
    """The documented strict side (docs/writing-a-strategy.md, "Liquidation"): the venue's
    liquidation acts as the market reopens, before the orders queued for it (W35 found the
    user docs silent on it)."""
    broker = _broker()
    _enter(broker, Side.BUY)
    broker.submit(order)
    events = list(broker.on_bar(_bar(1, 80, 81, 79, 80)))
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.reason, f.price) for f in fills] == [("liquidation", 80.0)]
    assert [(e.client_order_id, e.status) for e in events if isinstance(e, OrderUpdate)] == [
        (order.client_order_id, OrderStatus.CANCELLED)
    ]


def test_off_a_levered_account_goes_below_zero_as_before() -> None:
    broker = _broker(maintenance_margin_rate=0.0)
    _enter(broker, Side.BUY)
    assert not broker.on_bar(_bar(1, 85, 86, 80, 80))
    assert broker.balance() == pytest.approx(-9_000.0)


def test_a_restored_account_is_liquidated_as_the_one_before_the_restart() -> None:
    broker = _broker()
    broker.restore_account([Fill("e", BTC, Side.BUY, 100.0, 100.0, 0.0, T0, "e-f1", "market")])
    [fill] = broker.on_bar(_bar(1, 95, 96, 88, 89))
    assert isinstance(fill, Fill) and fill.price == pytest.approx(LONG_AT)


def test_another_symbols_fall_brings_the_liquidation_nearer() -> None:
    broker = _broker()
    _enter(broker, Side.BUY, quantity=50.0)  # 5,000 of BTC
    eth = Order("eth", ETH, Side.BUY, 40.0, created_ts=T0)
    broker.submit(eth)
    broker.on_bar(_bar(0, 100, 100, 100, 100, ETH))  # 4,000 of ETH: cash -8,000
    # BTC alone would be liquidated at (8,000 - 4,000·(1 - 0.005))/(50·0.995); ETH falling
    # to 80 takes 800 of equity away, so BTC's price rises.
    assert not broker.on_bar(_bar(1, 80, 80, 80, 80, ETH))
    btc_at = (8_000.0 - 40 * 80 + 0.005 * 40 * 80) / (50 * 0.995)
    [fill] = broker.on_bar(_bar(1, btc_at + 1, btc_at + 1, btc_at - 0.01, btc_at))
    assert isinstance(fill, Fill) and fill.price == pytest.approx(btc_at)


# --- through the engine and the vectorised path ---------------------------------------------------


class HoldParams(PluginParams):
    direction: Literal[-1, 1] = 1
    quantity: float = 100.0


class Hold(Strategy):
    """Opens ``direction`` × quantity at market on its first bar and holds it."""

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        if not ctx.position(bar.symbol).quantity and not self.entered:
            self.entered = True
            side = ctx.buy if self.params.direction > 0 else ctx.sell
            side(bar.symbol, self.params.quantity, stop_loss=50.0, tag="hold")

    entered = False


HOOKS = SimpleNamespace(
    tradefleet_strategies=hookimpl(
        lambda: [
            PluginSpec(
                kind=PluginKind.STRATEGY,
                name="hold",
                version="1.0.0",
                factory=Hold,
                params=HoldParams,
            )
        ]
    )
)


def test_a_backtest_books_the_liquidation_and_says_it(tmp_path: Path) -> None:
    closes = [100.0, 100.0, 95.0, 88.0, 120.0, 130.0]
    (tmp_path / "btc.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(
            f"{T0 + i * HOUR},{p},{max(c, p)},{min(c, p)},{c},1\n"
            for i, (p, c) in enumerate(zip([100.0, *closes], closes, strict=False))
        )
    )
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "tradefleet.io/v1alpha1",
                "kind": "TradingBot",
                "metadata": {"name": "levered"},
                "spec": {
                    "mode": "backtest",
                    "strategy": {"name": "hold"},
                    "market": {"symbols": [BTC], "timeframe": "1h"},
                    "broker": {"name": "paper", "params": {"leverage": 10}},
                    "data": {"name": "csv", "params": {"path": str(tmp_path / "btc.csv")}},
                    "capital": {"currency": "USDT", "initial": 1000},
                },
            }
        )
    )
    registry: PluginRegistry = registry_with(HOOKS)
    bot = assemble(load_manifest(manifest), registry, tmp_path)
    journal = Journal(tmp_path / "j.sqlite")
    try:
        session = BotSession(bot, journal)
        outcome = session.close(session.run())
    finally:
        journal.close()
    (trade,) = outcome.result.trades
    assert (trade.entry_reason, trade.exit_reason) == ("hold", "liquidation")
    assert trade.exit_price == pytest.approx(LONG_AT)
    assert outcome.result.open_positions == []  # not held through the recovery to 130
    assert exit_kind(trade.exit_reason) == "liquidation"  # not the strategy's own exit
    db = sqlite3.connect(tmp_path / "j.sqlite")
    try:
        (message,) = db.execute("SELECT message FROM events WHERE kind = 'position_liquidated'")
        assert "liquidation" in message[0]
        statuses = dict(db.execute("SELECT client_order_id, status FROM order_status"))
    finally:
        db.close()
    stops = [cid for cid in statuses if cid.endswith("-sl")]
    assert stops and all(statuses[cid] == "cancelled" for cid in stops)


def test_the_vectorised_path_leaves_a_liquidated_run_to_the_engine() -> None:
    count = 8
    closes = np.array([100.0, 100.0, 100.0, 95.0, 88.0, 120.0, 130.0, 130.0])
    columns = BarColumns(
        T0 + np.arange(count, dtype=np.int64) * HOUR,
        closes.copy(),
        closes.copy(),
        np.minimum(closes, np.concatenate(([100.0], closes[:-1]))),
        closes.copy(),
        np.ones(count),
    )
    plan = TargetPlan(np.array([0.0, 1.0, 1, 1, 1, 1, 1, 1]), "close", "buy", "sell")
    params = {"leverage": 10, "maintenance_margin_rate": 0.005}
    levered = vector_terms(
        (BTC,),
        ("paper", params),
        [("fixed-size", {"quantity": 100.0})],
        initial_capital=1_000.0,
        timeframe_s=HOUR,
    )
    assert not isinstance(levered, str)
    refused = run_plan(columns, plan, levered, 0)
    assert isinstance(refused, str) and "liquidated" in refused
    unlevered = vector_terms(
        (BTC,),
        ("paper", {**params, "maintenance_margin_rate": 0.0}),
        [("fixed-size", {"quantity": 100.0})],
        initial_capital=1_000.0,
        timeframe_s=HOUR,
    )
    assert not isinstance(unlevered, str)
    assert not isinstance(run_plan(columns, plan, unlevered, 0), str)
