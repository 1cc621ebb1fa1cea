"""On a hedging account, a limit (or triggered stop) the market is through goes as a deal, and
a deal against the bot's open positions closes them by ticket, oldest first, as a market order
does: only the rest opens a new position.

What went wrong: the deal route sent the whole order as one opening deal, so a sell limit
through the market with a long open opened a short ticket beside it — long and short at once,
each carrying margin and swap, while the bot's books showed the net. A limit that rests and
fills later cannot do better (an MT5 pending order cannot close a position by ticket: it opens
its own, and the bot books the net, as shown below); a deal can, and now does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols, updates
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C
from tradefleet_runtime.sdk import OrderStatus, OrderType, Side


class _Spy:
    """The terminal, recording every ``order_send`` request; ``move`` (symbol, bid, ask) is
    published just before the first one is handled."""

    def __init__(self, terminal: MT5Terminal, move: tuple[str, float, float] | None = None) -> None:
        self.terminal = terminal
        self.requests: list[dict[str, Any]] = []
        self.move = move

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        self.requests.append(dict(request))
        if self.move is not None and request.get("action") == C.TRADE_ACTION_DEAL:
            symbol, bid, ask = self.move
            self.move = None
            self.terminal.set_price(symbol, bid, ask)
        return self.terminal.order_send(request)


def _hedging(symbols: tuple[str, ...] = ("EURUSD",)) -> tuple[Mt5Harness, _Spy]:
    spy = _Spy(MT5Terminal(margin_mode="hedging", symbols=gold_pro_symbols()))
    venue = Mt5Harness.build("hedging", venue=spy)
    venue.symbols = symbols
    venue.connect()
    return venue, spy


def _positions(venue: Mt5Harness) -> list[tuple[int, float]]:
    return sorted((int(p.type), float(p.volume)) for p in venue.terminal.positions_get() or ())


@pytest.mark.parametrize(
    ("order_type", "price"),
    [(OrderType.LIMIT, 1.0990), (OrderType.STOP, 1.1010)],  # a sell limit under the bid; a
    ids=["limit", "stop"],  # sell stop above it (triggered): both through the market
)
def test_a_sell_through_the_market_closes_the_long_by_ticket_first(
    order_type: OrderType, price: float
) -> None:
    venue, spy = _hedging()
    try:
        venue.terminal.set_price("EURUSD", 1.1000, 1.1001)
        venue.submit(venue.order(Side.BUY, 10_000.0))  # long 0.1 lot
        (long,) = venue.terminal.positions_get() or ()
        spy.requests.clear()
        order = venue.order(Side.SELL, 30_000.0, order_type=order_type, price=price)
        events = venue.submit(order)
        # The long closed by its ticket, then the rest (0.2) opened a short: never both.
        assert _positions(venue) == [(C.POSITION_TYPE_SELL, 0.2)], _positions(venue)
        close, rest = spy.requests
        assert (close["action"], close["position"], close["volume"]) == (
            C.TRADE_ACTION_DEAL,
            long.ticket,
            0.1,
        )
        assert (rest["action"], rest.get("position"), rest["volume"]) == (
            C.TRADE_ACTION_DEAL,
            None,
            0.2,
        )
        assert (close["comment"], rest["comment"]) == (
            order.client_order_id,
            f"{order.client_order_id}#1",
        )
        if order_type is OrderType.LIMIT:  # bounded by the limit, as any limit deal
            assert close["deviation"] == rest["deviation"] == 100
        done = fills(events)
        assert [(f.client_order_id, f.quantity) for f in done] == [
            (order.client_order_id, 10_000.0),
            (order.client_order_id, 20_000.0),
        ]
        assert not [u for u in updates(events) if u.status is not OrderStatus.OPEN]
        assert [p.quantity for p in venue.broker.position_reports()] == [-20_000.0]
    finally:
        venue.close()


def test_a_limit_planned_to_close_by_ticket_rests_whole_when_the_market_moved_away() -> None:
    # GBPUSD: instant execution (deviation honoured), stops level 10, 1.25000 / 1.25012. The
    # bid jumps to 1.24960 while the closing deal travels: the sell limit at 1.24980 is no
    # longer through, the server requotes, and on the fresh tick the order rests whole at its
    # limit, under its own id (a pending order cannot close by ticket): nothing traded.
    venue, spy = _hedging(("GBPUSD",))
    try:
        venue.submit(venue.order(Side.BUY, 10_000.0, symbol="GBPUSD"))
        spy.requests.clear()
        spy.move = ("GBPUSD", 1.24960, 1.24972)
        order = venue.order(
            Side.SELL, 30_000.0, symbol="GBPUSD", order_type=OrderType.LIMIT, price=1.24980
        )
        events = venue.submit(order)
        assert fills(events) == []
        first, second = spy.requests
        assert first["action"] == C.TRADE_ACTION_DEAL and first["position"]
        assert (second["action"], second["volume"], second["comment"]) == (
            C.TRADE_ACTION_PENDING,
            0.3,
            order.client_order_id,
        )
        (resting,) = venue.terminal.orders_get() or ()
        assert (resting.type, resting.volume_current, resting.price_open) == (
            C.ORDER_TYPE_SELL_LIMIT,
            0.3,
            1.2498,
        )
        assert _positions(venue) == [(C.POSITION_TYPE_BUY, 0.1)]
        assert [u.status for u in updates(events)] == [OrderStatus.OPEN]
    finally:
        venue.close()


def test_a_resting_limit_that_fills_later_opens_its_own_ticket_and_is_booked_net() -> None:
    # What a resting limit does on a hedging account (the terminal's rule, not the broker's):
    # its fill opens a ticket of its own; the bot books one net position, the terminal's net.
    venue, _spy = _hedging()
    try:
        venue.terminal.set_price("EURUSD", 1.1000, 1.1001)
        venue.submit(venue.order(Side.BUY, 10_000.0))
        order = venue.order(Side.SELL, 10_000.0, order_type=OrderType.LIMIT, price=1.1010)
        venue.submit(order)
        venue.terminal.set_price("EURUSD", 1.1010, 1.1011)
        (fill,) = fills(venue.settle())
        assert (fill.client_order_id, fill.quantity, fill.price) == (
            order.client_order_id,
            10_000.0,
            1.101,
        )
        assert _positions(venue) == [(C.POSITION_TYPE_BUY, 0.1), (C.POSITION_TYPE_SELL, 0.1)]
        assert venue.broker.position_reports() == []  # net flat, as the bot books it
    finally:
        venue.close()
