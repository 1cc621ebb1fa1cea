"""A limit's deal sent with the RETURN filling mode that fills in part: the server keeps the rest
working as the same order, so the broker watches that order and sends no new request for it.

``rq.filling_modes`` falls back to ORDER_FILLING_RETURN for a deal on a symbol that allows
neither FOK nor IOC outside market execution (an exchange-executed symbol whose filling flags
are 0). MQL5 (ENUM_ORDER_TYPE_FILLING): "In case of partial filling, an order with remaining
volume is not canceled and is processed further". Sending that rest again (``<id>#1``, as for
an IOC deal whose rest expires) trades it twice: a buy limit of 0.2 lot ends 0.3 lot. The
emulator keeps such a rest working at the terminal, at the request's price and deviation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols, updates
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C
from tradefleet_runtime.sdk import OrderStatus, OrderType, Side

LIMIT = 1.1005


class _Recorder:
    """The terminal, with the requests sent to it recorded; after a deal that filled in part,
    the market moves off the limit (the deal took what was offered up to it)."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal
        self.requests: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        self.requests.append(dict(request))
        result = self.terminal.order_send(request)
        if result is not None and result.retcode == C.TRADE_RETCODE_DONE_PARTIAL:
            self.terminal.set_price("EURUSD", 1.1006, 1.1007)
        return result


@pytest.fixture
def venue() -> Iterator[tuple[Mt5Harness, _Recorder]]:
    """A netting account whose EURUSD is exchange-executed with no FOK nor IOC flag (deals go
    RETURN), with a buy limit of 0.2 lot at 1.1005 sent while the market is through it and
    filled half (0.1 lot)."""
    symbols = gold_pro_symbols()
    symbols["EURUSD"] = {
        **symbols["EURUSD"],
        "trade_exemode": C.SYMBOL_TRADE_EXECUTION_EXCHANGE,
        "filling_mode": 0,
    }
    spy = _Recorder(MT5Terminal(margin_mode="netting", symbols=symbols))
    harness = Mt5Harness.build("netting", venue=spy)
    harness.symbols = ("EURUSD",)
    harness.connect()
    try:
        yield harness, spy
    finally:
        harness.close()


def _half_filled(harness: Mt5Harness, spy: _Recorder) -> tuple[str, list[Any]]:
    harness.terminal.set_price("EURUSD", 1.1000, 1.1001)
    harness.terminal.faults.script("order_send", [10010])  # the deal fills half
    order = harness.order(Side.BUY, 20_000.0, order_type=OrderType.LIMIT, price=LIMIT)
    events = harness.submit(order)
    (deal,) = [r for r in spy.requests if r["action"] == C.TRADE_ACTION_DEAL]
    assert deal["type_filling"] == C.ORDER_FILLING_RETURN
    assert sum(f.quantity for f in fills(events)) == 10_000.0
    return order.client_order_id, events


def test_a_return_deals_rest_the_server_keeps_is_not_sent_again(
    venue: tuple[Mt5Harness, _Recorder],
) -> None:
    harness, spy = venue
    order_id, events = _half_filled(harness, spy)
    assert [u.status for u in updates(events)] == [OrderStatus.OPEN]  # working, not ended
    # the deal's own order works for the rest, 0.1 lot, and nothing else
    working = [(o.comment, o.volume_current) for o in harness.terminal.orders_get() or ()]
    assert working == [(order_id, 0.1)], f"working at the terminal: {working}"
    harness.terminal.set_price("EURUSD", 1.1003, 1.1004)  # back to the limit
    later = harness.settle()
    (position,) = harness.terminal.positions_get() or ()
    sent = [(r["comment"], r["volume"]) for r in spy.requests]
    assert position.volume == 0.2, f"{position.volume} lot for an order of 0.2; sent {sent}"
    assert sent == [(order_id, 0.2)]
    assert sum(f.quantity for f in fills(later)) == 10_000.0  # the rest's fill, reported
    assert harness.terminal.orders_get() == ()


def test_the_kept_rest_is_cancelled_as_the_order(venue: tuple[Mt5Harness, _Recorder]) -> None:
    harness, spy = venue
    order_id, _events = _half_filled(harness, spy)
    harness.broker.cancel(order_id)
    ended = harness.settle()
    assert [(u.client_order_id, u.status) for u in updates(ended)] == [
        (order_id, OrderStatus.CANCELLED)
    ]
    assert harness.terminal.orders_get() == ()
    (position,) = harness.terminal.positions_get() or ()
    assert position.volume == 0.1
    harness.terminal.set_price("EURUSD", 1.1003, 1.1004)
    harness.settle()
    (position,) = harness.terminal.positions_get() or ()
    assert position.volume == 0.1  # nothing of it trades after the cancel
