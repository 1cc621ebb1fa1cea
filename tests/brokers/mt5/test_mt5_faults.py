"""Every retcode class and fault against the emulated terminal: what the broker does, and that
the terminal's history never holds a second order for one client order id."""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, updates
from tests.venues.mt5 import Disconnect, MT5Terminal, UnknownOutcome
from tradefleet_runtime.sdk import OrderStatus, ReasonCode

from .harness import gold_pro_symbols

# Every test runs twice: on the emulator, and through the bridge in front of it.
pytestmark = pytest.mark.usefixtures("transport")


def _one_order(harness: Mt5Harness, client_order_id: str) -> None:
    """The terminal holds exactly one order and one deal for this id."""
    assert len(harness.history_orders(client_order_id)) == 1
    assert len(harness.deals(client_order_id)) == 1


@pytest.mark.parametrize("retcode", [10004, 10020, 10021])
def test_requote_family_is_sent_again_at_a_fresh_price(netting: Mt5Harness, retcode: int) -> None:
    netting.terminal.faults.script("order_send", [retcode, retcode])
    order = netting.order()
    events = netting.submit(order)
    assert len(fills(events)) == 1
    _one_order(netting, order.client_order_id)
    assert netting.terminal.calls["order_send"] == 3


def test_requote_storm_ends_in_a_rejection_without_an_order(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [10004] * 10)
    order = netting.order()
    (update,) = netting.submit(order)
    assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert "requote" in update.reason  # type: ignore[union-attr]
    assert netting.terminal.calls["order_send"] == 4  # the first try + requote_retries (3)
    assert netting.history_orders() == []


class _RisingMarket:
    """The terminal, with the price moving up 20 points before every order_send."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        tick = self.terminal.symbol_info_tick(request["symbol"])
        self.terminal.set_price(request["symbol"], tick.bid + 0.0002, tick.ask + 0.0002)
        return self.terminal.order_send(request)


def test_requotes_are_followed_only_within_the_bounded_deviation() -> None:
    term = MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols())
    term.faults.script("order_send", [10004] * 5)
    harness = Mt5Harness.build(venue=_RisingMarket(term), max_requote_points=30).connect()
    try:
        (update,) = harness.submit(harness.order())
        assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
        assert "max_requote_points 30" in update.reason  # type: ignore[union-attr]
        assert term.calls["order_send"] == 2  # +20 points: sent again; +40: refused
        assert harness.history_orders() == []
    finally:
        harness.close()


@pytest.mark.parametrize("retcode", [10012, 10031])
@pytest.mark.parametrize("executed", [True, False])
def test_unknown_outcome_is_reconciled_and_never_doubles(
    netting: Mt5Harness, retcode: int, executed: bool
) -> None:
    netting.terminal.faults.script("order_send", [UnknownOutcome(retcode, executed=executed)])
    order = netting.order()
    events = netting.submit(order)
    assert len(fills(events)) == 1
    _one_order(netting, order.client_order_id)
    # executed: history showed it, nothing sent again; not executed: sent once more.
    assert netting.terminal.calls["order_send"] == (1 if executed else 2)
    assert netting.terminal.calls["history_orders_get"] >= 1


@pytest.mark.parametrize("executed", [True, False])
def test_unnamed_retcode_is_reconciled_first(netting: Mt5Harness, executed: bool) -> None:
    step: Any = UnknownOutcome(10099, executed=executed)
    netting.terminal.faults.script("order_send", [step])
    order = netting.order()
    assert len(fills(netting.submit(order))) == 1
    _one_order(netting, order.client_order_id)


def test_unknown_outcome_that_persists_is_a_typed_rejection(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=False)] * 5)
    order = netting.order()
    (update,) = netting.submit(order)
    assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert update.code is ReasonCode.UNKNOWN_OUTCOME  # type: ignore[union-attr]
    assert netting.terminal.calls["order_send"] == 3  # 1 + unknown_retries (2)
    assert netting.history_orders() == []


def test_lost_trade_server_is_reconciled_then_refused_as_unavailable(
    netting: Mt5Harness,
) -> None:
    netting.terminal.faults.disconnect("server")
    (update,) = netting.submit(netting.order())
    assert update.code is ReasonCode.VENUE_UNAVAILABLE  # type: ignore[union-attr]
    assert not netting.broker.is_connected()
    netting.terminal.faults.reconnect("server")
    netting.settle()
    assert netting.broker.is_connected()
    assert netting.history_orders() == []


def test_too_many_requests_backs_off_then_sends(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [10024, 10024])
    order = netting.order()
    assert len(fills(netting.submit(order))) == 1
    assert netting.slept == [0.01, 0.02]  # exponential back-off
    _one_order(netting, order.client_order_id)


def test_throttled_terminal_gets_every_order_in_the_end(netting: Mt5Harness) -> None:
    netting.terminal.faults.throttle(max_requests=1, per_seconds=0.1)
    orders = [netting.order() for _ in range(3)]
    for order in orders:
        netting.broker.submit(order)
    events = netting.settle()
    assert len(fills(events)) == 3
    assert netting.slept, "the broker waited for the throttle window"
    for order in orders:
        _one_order(netting, order.client_order_id)


def test_throttling_beyond_the_retries_is_rate_limited(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [10024] * 10)
    (update,) = netting.submit(netting.order())
    assert update.code is ReasonCode.RATE_LIMITED  # type: ignore[union-attr]
    assert netting.history_orders() == []


@pytest.mark.parametrize(
    ("retcode", "code"),
    [
        (10019, ReasonCode.INSUFFICIENT_FUNDS),
        (10014, ReasonCode.INVALID_QUANTITY),
        (10015, ReasonCode.INVALID_PRICE),
        (10016, ReasonCode.INVALID_STOPS),
    ],
)
def test_refusals_are_typed_and_never_retried(
    netting: Mt5Harness, retcode: int, code: ReasonCode
) -> None:
    netting.terminal.faults.script("order_send", [retcode])
    (update,) = netting.submit(netting.order())
    assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert update.code is code  # type: ignore[union-attr]
    assert str(retcode) in update.reason  # type: ignore[union-attr]
    assert netting.terminal.calls["order_send"] == 1


def test_no_money_from_the_terminal_itself(netting: Mt5Harness) -> None:
    # 400 lots (40 million euros): beyond the $10,000 account's margin, within volume_max.
    (update,) = netting.submit(netting.order(quantity=40_000_000.0))
    assert update.code is ReasonCode.INSUFFICIENT_FUNDS  # type: ignore[union-attr]
    assert netting.terminal.calls["order_send"] == 1


@pytest.mark.parametrize("executed", [True, False])
def test_terminal_lost_mid_order_reconnects_and_reconciles(
    netting: Mt5Harness, executed: bool
) -> None:
    netting.terminal.faults.script("order_send", [Disconnect("ipc", executed=executed)])
    order = netting.order()
    events = netting.submit(order)
    assert len(fills(events)) == 1
    _one_order(netting, order.client_order_id)
    assert netting.terminal.calls["initialize"] == 2  # start, and again after the loss
    assert netting.broker.is_connected()


def test_terminal_lost_between_orders_reconnects_with_backoff(netting: Mt5Harness) -> None:
    netting.terminal.faults.disconnect("ipc")
    netting.terminal.faults.script("initialize", [-10003, -10003])  # two failed restarts
    order = netting.order()
    assert len(fills(netting.submit(order))) == 1
    assert netting.slept[:2] == [0.01, 0.02]
    _one_order(netting, order.client_order_id)


def test_partial_fill_reports_the_part_and_expires_the_rest(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [10010])
    order = netting.order(quantity=10_000.0)  # 0.1 lot
    events = netting.submit(order)
    (fill,) = fills(events)
    assert fill.quantity == 5_000.0  # 0.05 lot
    tail = updates(events)[-1]
    assert tail.status is OrderStatus.CANCELLED and tail.code is ReasonCode.EXPIRED
    report = netting.broker.query_order(order.client_order_id)
    assert report is not None and report.filled_quantity == 5_000.0
    assert "filled 5000 of 10000" in tail.reason


def test_placed_market_order_fills_on_the_next_tick(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [10008])
    order = netting.order()
    (ack,) = netting.submit(order)
    assert ack.status is OrderStatus.OPEN  # type: ignore[union-attr]
    netting.terminal.set_price("EURUSD", 1.1002)
    (fill,) = netting.settle()
    assert fill.client_order_id == order.client_order_id  # type: ignore[union-attr]
    assert netting.broker.open_orders() == []
