"""A limit or stop order's own price against the market, decided before anything is sent.

MetaTrader 5 refuses a pending order whose price is on the wrong side of the market or closer
to it than the symbol's ``trade_stops_level`` with a bare "invalid price (10015)". Before, the
broker sent them anyway: a buy limit above the ask — which the paper broker of the same
manifest fills at once as a taker — was lost at the terminal, and a limit inside the stops
level was refused without saying why. Now:

* a limit the market is through (a buy limit above the ask, a sell limit below the bid) goes as
  a market deal on the order's own comment, its ``deviation`` the distance to the limit, so a
  server that honours deviation never fills it beyond the limit; a fill beyond it anyway (a
  market-execution server) is booked as the terminal made it and a warning names both prices;
  the market moving away before a retry makes it rest instead;
* a stop the market is through (already triggered) goes as a market deal;
* an order that would rest inside the stops level is refused before it is sent
  (``invalid_price``), naming the level and the nearest price allowed.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols, updates
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C
from tradefleet_plugins.brokers import mt5_requests as rq
from tradefleet_runtime.sdk import (
    Order,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
    child_order_id,
)


class _Spy:
    """The terminal, recording every ``order_send`` request; ``move`` (bid, ask) is published
    just before the first one is handled (the market moving while the request travels)."""

    def __init__(self, terminal: MT5Terminal, move: tuple[str, float, float] | None = None) -> None:
        self.terminal = terminal
        self.requests: list[dict[str, Any]] = []
        self._move = move

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        self.requests.append(dict(request))
        if self._move is not None:
            symbol, bid, ask = self._move
            self._move = None
            self.terminal.set_price(symbol, bid, ask)
        return self.terminal.order_send(request)


def _spied(
    margin_mode: str = "netting",
    symbols: tuple[str, ...] = ("EURUSD",),
    move: tuple[str, float, float] | None = None,
) -> tuple[Mt5Harness, _Spy]:
    spy = _Spy(MT5Terminal(margin_mode=margin_mode, symbols=gold_pro_symbols()), move)
    harness = Mt5Harness.build(margin_mode, venue=spy)
    harness.symbols = symbols
    harness.connect()
    return harness, spy


# -- through the market: a deal --------------------------------------------------------------


def test_a_buy_limit_through_the_market_fills_at_the_market_once() -> None:
    venue, spy = _spied("hedging")
    try:
        venue.terminal.set_price("EURUSD", 1.0960, 1.0961)
        order = venue.order(
            side=Side.BUY, quantity=10_000.0, order_type=OrderType.LIMIT, price=1.0965
        )
        events = venue.submit(order)
        assert not [u for u in updates(events) if u.status is OrderStatus.REJECTED]
        (fill,) = fills(events)  # as the paper broker: filled at once, at the market
        assert (fill.client_order_id, fill.quantity, fill.price) == (
            order.client_order_id,
            10_000.0,
            1.0961,
        )
        (request,) = spy.requests
        assert request["action"] == C.TRADE_ACTION_DEAL
        assert request["type"] == C.ORDER_TYPE_BUY
        assert request["comment"] == order.client_order_id
        assert request["type_filling"] == C.ORDER_FILLING_FOK  # EURUSD's first allowed
        assert request["deviation"] == 40  # 1.0961 -> 1.0965, in points of 0.00001
        assert venue.terminal.orders_get() == ()  # nothing left resting
        # A restarted broker sees the fill once, under the bot's own client order id.
        venue.broker.close()
        again = Mt5Harness.build("hedging", venue=spy)
        again.symbols = ("EURUSD",)
        again.connect()
        try:
            assert [f.client_order_id for f in again.broker.fill_reports(0)] == [
                order.client_order_id
            ]
            (report,) = again.broker.order_reports(0)
            assert report.status is OrderStatus.FILLED
            assert report.filled_quantity == 10_000.0
        finally:
            again.close()
    finally:
        venue.close()


@pytest.mark.usefixtures("transport")
def test_a_sell_limit_through_the_market_fills_at_the_bid(netting: Mt5Harness) -> None:
    # EURUSD 1.10000 / 1.10010: a sell limit at 1.0990 is 100 points below the bid.
    order = netting.order(side=Side.SELL, order_type=OrderType.LIMIT, price=1.0990)
    (fill,) = fills(netting.submit(order))
    assert (fill.client_order_id, fill.price, fill.quantity) == (
        order.client_order_id,
        1.1,
        10_000.0,
    )
    (sent,) = netting.history_orders(order.client_order_id)
    assert sent.type == C.ORDER_TYPE_SELL  # a market deal, not a pending sell limit


def _gold_buy_limit_through(venue: Mt5Harness, **stops: float) -> Order:
    """A buy limit of 5 oz XAUUSD at 2651.00, above the ask 2650.30: sent as a deal."""
    return venue.order(
        symbol="XAUUSD", quantity=5.0, order_type=OrderType.LIMIT, price=2651.00, **stops
    )


def test_a_limit_deal_carries_its_sl_tp_as_a_market_entry_does() -> None:
    venue, spy = _spied(symbols=("XAUUSD",))
    try:
        # GOLD.pro 2650.00 / 2650.30; SL/TP measured from the bid, as for a market entry.
        order = _gold_buy_limit_through(venue, stop_loss=2640.0, take_profit=2670.0)
        (fill,) = fills(venue.submit(order))
        assert fill.price == 2650.30
        assert (spy.requests[0]["sl"], spy.requests[0]["tp"]) == (2640.0, 2670.0)
        (position,) = venue.terminal.positions_get() or ()
        assert (position.sl, position.tp) == (2640.0, 2670.0)
        venue.terminal.set_price("GOLD.pro", 2639.0)
        stop_fill, sibling = venue.settle()
        assert stop_fill.client_order_id == child_order_id(order.client_order_id, "sl")
        assert sibling.client_order_id == child_order_id(order.client_order_id, "tp")
        assert sibling.code is ReasonCode.CANCELLED_BY_VENUE  # type: ignore[union-attr]
    finally:
        venue.close()


def test_a_limit_deals_sl_inside_the_level_from_the_bid_is_refused_unsent() -> None:
    venue, spy = _spied(symbols=("XAUUSD",))
    try:
        # 20 points under the bid 2650.00; the level is 50.
        order = _gold_buy_limit_through(venue, stop_loss=2649.80)
        (update,) = updates(venue.submit(order))
        assert (update.status, update.code) == (OrderStatus.REJECTED, ReasonCode.INVALID_PRICE)
        assert "stop_loss 2649.8 is 20 points from 2650" in update.reason, update.reason
        assert spy.requests == []
    finally:
        venue.close()


def test_instant_execution_never_fills_a_limit_beyond_it_and_it_rests_instead() -> None:
    # GBPUSD: instant execution (deviation honoured), stops level 10, 1.25000 / 1.25012. The
    # ask jumps to 1.25042 while the deal travels: beyond the limit 1.25020 by more than its
    # deviation, so the server requotes; on the fresh tick the market is no longer through,
    # and the limit rests where it was asked (22 points under the ask, outside the level).
    venue, spy = _spied(symbols=("GBPUSD",), move=("GBPUSD", 1.25030, 1.25042))
    try:
        order = venue.order(symbol="GBPUSD", order_type=OrderType.LIMIT, price=1.25020)
        events = venue.submit(order)
        assert fills(events) == []
        (ack,) = updates(events)
        assert ack.status is OrderStatus.OPEN
        first, second = spy.requests
        assert (first["action"], first["deviation"], first["price"]) == (
            C.TRADE_ACTION_DEAL,
            8,
            1.25012,
        )
        assert (second["action"], second["type"]) == (
            C.TRADE_ACTION_PENDING,
            C.ORDER_TYPE_BUY_LIMIT,
        )
        (resting,) = venue.terminal.orders_get() or ()
        assert (resting.price_open, resting.comment) == (1.2502, order.client_order_id)
        assert venue.deals(order.client_order_id) == []
    finally:
        venue.close()


def test_a_fill_beyond_the_limit_is_booked_as_made_and_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # EURUSD is in market execution: the server ignores deviation, and the ask moves from
    # 1.0961 to 1.0970 while the deal travels.
    venue, _spy = _spied(move=("EURUSD", 1.0969, 1.0970))
    try:
        venue.terminal.set_price("EURUSD", 1.0960, 1.0961)
        order = venue.order(order_type=OrderType.LIMIT, price=1.0965)
        with caplog.at_level(logging.WARNING, logger="tradefleet_plugins.brokers.mt5_broker"):
            (fill,) = fills(venue.submit(order))
        assert fill.price == 1.097  # what the account holds
        (warning,) = [r for r in caplog.records if "beyond its limit" in r.getMessage()]
        assert "1.0965" in warning.getMessage() and "1.097" in warning.getMessage()
        assert order.client_order_id in warning.getMessage()
    finally:
        venue.close()


@pytest.mark.usefixtures("transport")
@pytest.mark.parametrize(
    ("side", "price", "filled_at"),
    [(Side.BUY, 1.0990, 1.1001), (Side.SELL, 1.1010, 1.1)],
)
def test_a_stop_the_market_is_through_is_a_market_deal(
    netting: Mt5Harness, side: Side, price: float, filled_at: float
) -> None:
    # EURUSD 1.10000 / 1.10010: a buy stop under the ask, a sell stop over the bid, triggered.
    order = netting.order(side=side, order_type=OrderType.STOP, price=price)
    (fill,) = fills(netting.submit(order))
    assert (fill.client_order_id, fill.price) == (order.client_order_id, filled_at)
    (sent,) = netting.history_orders(order.client_order_id)
    assert sent.type in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL)
    assert netting.terminal.orders_get() == ()


def test_a_triggered_stop_goes_with_the_bots_deviation() -> None:
    venue, spy = _spied()
    try:
        assert fills(venue.submit(venue.order(order_type=OrderType.STOP, price=1.0990)))
        (request,) = spy.requests
        assert request["action"] == C.TRADE_ACTION_DEAL
        assert request["deviation"] == venue.broker.params.deviation_points
    finally:
        venue.close()


@pytest.mark.usefixtures("transport")
def test_a_limit_at_the_market_rests_where_there_is_no_stops_level(netting: Mt5Harness) -> None:
    # EURUSD's trade_stops_level is 0: the terminal takes a buy limit at the ask as a pending
    # order (and activates it at once on a real server).
    order = netting.order(order_type=OrderType.LIMIT, price=1.1001)
    (ack,) = updates(netting.submit(order))
    assert ack.status is OrderStatus.OPEN
    (resting,) = netting.terminal.orders_get() or ()
    assert (resting.type, resting.price_open) == (C.ORDER_TYPE_BUY_LIMIT, 1.1001)


# -- inside trade_stops_level: refused before it is sent -------------------------------------


@pytest.mark.usefixtures("transport")
@pytest.mark.parametrize(
    ("side", "order_type", "price", "words"),
    [
        (
            Side.BUY,
            OrderType.LIMIT,
            2650.30,  # at the ask: 0 points from it
            "a buy limit on XAUUSD must be at least 50 points (0.50) below the ask 2650.30 "
            "(GOLD.pro's trade_stops_level 50): 2649.80 at most, not 2650.30",
        ),
        (
            Side.SELL,
            OrderType.LIMIT,
            2650.20,
            "a sell limit on XAUUSD must be at least 50 points (0.50) above the bid 2650.00 "
            "(GOLD.pro's trade_stops_level 50): 2650.50 at least, not 2650.20",
        ),
        (
            Side.BUY,
            OrderType.STOP,
            2650.50,
            "a buy stop on XAUUSD must be at least 50 points (0.50) above the ask 2650.30 "
            "(GOLD.pro's trade_stops_level 50): 2650.80 at least, not 2650.50",
        ),
        (
            Side.SELL,
            OrderType.STOP,
            2649.90,
            "a sell stop on XAUUSD must be at least 50 points (0.50) below the bid 2650.00 "
            "(GOLD.pro's trade_stops_level 50): 2649.50 at most, not 2649.90",
        ),
    ],
)
def test_an_order_inside_the_stops_level_is_refused_naming_the_level(
    netting: Mt5Harness, side: Side, order_type: OrderType, price: float, words: str
) -> None:
    # GOLD.pro: bid 2650.00 / ask 2650.30, trade_stops_level 50 points.
    order = netting.order(
        side=side, symbol="XAUUSD", quantity=10.0, order_type=order_type, price=price
    )
    (update,) = updates(netting.submit(order))
    assert (update.status, update.code) == (OrderStatus.REJECTED, ReasonCode.INVALID_PRICE)
    assert update.reason == words
    assert netting.terminal.calls.get("order_send", 0) == 0  # decided before sending


@pytest.mark.usefixtures("transport")
def test_the_nearest_price_named_is_accepted(netting: Mt5Harness) -> None:
    order = netting.order(symbol="XAUUSD", quantity=10.0, order_type=OrderType.LIMIT, price=2649.80)
    (ack,) = updates(netting.submit(order))
    assert ack.status is OrderStatus.OPEN
    (resting,) = netting.terminal.orders_get() or ()
    assert resting.price_open == 2649.80


# -- the pure decisions ----------------------------------------------------------------------

_GOLD = rq.SymbolSpec(
    name="GOLD.pro",
    digits=2,
    point=0.01,
    tick_size=0.01,
    volume_min=0.01,
    volume_max=100.0,
    volume_step=0.01,
    stops_level=50,
    filling_flags=3,
    execution_mode=rq.SYMBOL_TRADE_EXECUTION_MARKET,
)
# An index quoted in cents on a 0.25 tick, with a stops level of 100 points (1.00).
_INDEX = _GOLD._replace(name="US500", tick_size=0.25, stops_level=100)


def _order(side: Side, order_type: OrderType, price: float, symbol: str = "XAUUSD") -> Order:
    return Order(
        client_order_id="tf1234ab0001x",
        symbol=symbol,
        side=side,
        quantity=1.0,
        order_type=order_type,
        price=price,
        created_ts=0,
    )


@pytest.mark.parametrize(
    ("side", "order_type", "price", "through"),
    [
        (Side.BUY, OrderType.LIMIT, 2650.31, True),
        (Side.BUY, OrderType.LIMIT, 2650.30, False),  # at the ask: rests (or is refused)
        (Side.SELL, OrderType.LIMIT, 2649.99, True),
        (Side.SELL, OrderType.LIMIT, 2650.00, False),
        (Side.BUY, OrderType.STOP, 2650.29, True),
        (Side.BUY, OrderType.STOP, 2650.30, False),
        (Side.SELL, OrderType.STOP, 2650.01, True),
        (Side.SELL, OrderType.STOP, 2650.00, False),
    ],
)
def test_through_the_market_is_strictly_beyond_it(
    side: Side, order_type: OrderType, price: float, through: bool
) -> None:
    order = _order(side, order_type, price)
    assert rq.through_market(order, _GOLD, 2650.00, 2650.30) is through


def test_a_limits_deviation_is_the_distance_to_it_rounded_down() -> None:
    assert (
        rq.limit_deviation(_order(Side.BUY, OrderType.LIMIT, 2651.00), _GOLD, 2650.0, 2650.3) == 70
    )
    assert (
        rq.limit_deviation(_order(Side.SELL, OrderType.LIMIT, 2649.2), _GOLD, 2650.0, 2650.3) == 80
    )
    # not through: nothing to allow
    assert rq.limit_deviation(_order(Side.BUY, OrderType.LIMIT, 2640.0), _GOLD, 2650.0, 2650.3) == 0


def test_beyond_the_limit_is_a_worse_price_only() -> None:
    buy = _order(Side.BUY, OrderType.LIMIT, 2651.00)
    sell = _order(Side.SELL, OrderType.LIMIT, 2649.00)
    assert rq.beyond_limit(buy, _GOLD, 2651.01) and not rq.beyond_limit(buy, _GOLD, 2651.00)
    assert rq.beyond_limit(sell, _GOLD, 2648.99) and not rq.beyond_limit(sell, _GOLD, 2649.00)
    assert not rq.beyond_limit(_order(Side.BUY, OrderType.STOP, 2640.0), _GOLD, 2700.0)


def test_the_nearest_price_allowed_is_on_the_tick_away_from_the_market() -> None:
    # ask 5900.60 - 1.00 = 5899.60, down to the 0.25 tick: 5899.50 (5899.75 would be inside).
    problem = rq.pending_price_problem(
        _order(Side.BUY, OrderType.LIMIT, 5900.00, "US500"), _INDEX, 5900.10, 5900.60
    )
    assert problem is not None and ": 5899.50 at most, not 5900.00" in problem
    # bid 5900.10 - 1.00 = 5899.10, down to the tick for a sell stop: 5899.00.
    problem = rq.pending_price_problem(
        _order(Side.SELL, OrderType.STOP, 5899.75, "US500"), _INDEX, 5900.10, 5900.60
    )
    assert problem is not None and ": 5899.00 at most, not 5899.75" in problem
    assert (
        rq.pending_price_problem(
            _order(Side.BUY, OrderType.LIMIT, 5899.50, "US500"), _INDEX, 5900.10, 5900.60
        )
        is None
    )
