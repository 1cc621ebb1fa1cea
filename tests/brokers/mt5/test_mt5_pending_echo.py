"""A moved pending order (a resting limit or stop) is reported, and booked, at the price the
MT5 terminal holds, read back after TRADE_ACTION_MODIFY, not at the one asked: the broker puts
an off-tick price on the symbol's tick before sending it, and the emulated server may snap it
again to a coarser step it does not state (``held_price_step``, a test knob)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import pytest

from tests.brokers.mt5.harness import Mt5Harness, live_engine, minute_bar, settle_and_pump
from tests.brokers.stop_movers import Mover
from tests.runtime.helpers import Action, Scripted
from tests.venues.mt5.faults import CallError
from tradefleet_plugins.brokers.mt5_broker import _held_pending_price
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import (
    STOP_LOSS_TAG,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
    Side,
)

# Every broker-level test runs twice: on the emulator, and through the bridge in front of it.
transports = pytest.mark.usefixtures("transport")

SNAP = 50  # points: the emulated server holds moved pending prices on 0.0005 for EURUSD


def _resting(harness: Mt5Harness, side: Side, order_type: OrderType, price: float) -> Order:
    """A resting order of 0.1 lot on the terminal, acknowledged."""
    order = harness.order(side, symbol="EURUSD", order_type=order_type, price=price)
    [ack] = harness.submit(order)
    assert ack.status is OrderStatus.OPEN  # type: ignore[union-attr]
    return order


def _amend(harness: Mt5Harness, order: Order, price: float) -> OrderUpdate:
    assert harness.broker.amend(order.client_order_id, None, price) is None  # an event follows
    [update] = harness.settle()
    assert isinstance(update, OrderUpdate)
    return update


def _held(harness: Mt5Harness) -> float:
    [live] = harness.terminal.orders_get() or ()
    return float(live.price_open)


def _working_price(harness: Mt5Harness, order: Order) -> float | None:
    """The price the broker keeps the order working at (its ``open_orders``)."""
    [working] = [
        o for o in harness.broker.open_orders() if o.client_order_id == order.client_order_id
    ]
    return working.price


@transports
@pytest.mark.parametrize(
    ("side", "order_type", "placed", "asked", "held"),
    [
        # A buy limit's price is rounded down (never worse for the bot), a sell stop's down too.
        (Side.BUY, OrderType.LIMIT, 1.0990, 1.099937, 1.09993),
        (Side.SELL, OrderType.STOP, 1.0950, 1.097468, 1.09746),
        # A sell limit's up.
        (Side.SELL, OrderType.LIMIT, 1.1050, 1.104321, 1.10433),
    ],
)
def test_an_off_tick_amend_reports_the_rounded_price_the_terminal_holds(
    netting: Mt5Harness,
    side: Side,
    order_type: OrderType,
    placed: float,
    asked: float,
    held: float,
) -> None:
    order = _resting(netting, side, order_type, placed)
    update = _amend(netting, order, asked)
    assert _held(netting) == held
    assert (update.status, update.code, update.reason) == (
        OrderStatus.OPEN,
        ReasonCode.NONE,
        "amended",
    )
    assert update.price == held  # the old broker said None: the engine booked the asked price
    assert _working_price(netting, order) == held


@transports
def test_a_price_the_terminal_snaps_is_reported_and_kept_as_it_holds_it(
    netting: Mt5Harness,
) -> None:
    netting.terminal.update_symbol("EURUSD", held_price_step=SNAP)
    order = _resting(netting, Side.BUY, OrderType.LIMIT, 1.0990)
    update = _amend(netting, order, 1.0982)  # on the tick: sent as asked
    assert _held(netting) == 1.0980  # the server snapped it to its 0.0005 step
    assert update.price == 1.0980
    assert _working_price(netting, order) == 1.0980  # not the 1.0982 sent


@transports
def test_a_failed_read_back_reports_the_rounded_price_sent_not_a_refusal(
    netting: Mt5Harness, caplog: pytest.LogCaptureFixture
) -> None:
    order = _resting(netting, Side.BUY, OrderType.LIMIT, 1.0990)
    # The amend's first orders_get (the order's SL/TP, before the change) answers; the read
    # back after the change fails (not a lost terminal: -1, a call that failed).
    netting.terminal.faults.script("orders_get", [None, CallError(-1, "Terminal: Call failed")])
    update = _amend(netting, order, 1.099937)
    assert netting.terminal.faults.pending("orders_get") == 0  # the read back failed
    assert _held(netting) == 1.09993
    assert (update.status, update.code, update.reason) == (
        OrderStatus.OPEN,
        ReasonCode.NONE,
        "amended",
    )
    assert update.price == 1.09993  # what the broker sent, on the tick; never None
    assert _working_price(netting, order) == 1.09993
    assert f"{order.client_order_id}: moved, but the order could not be read back" in caplog.text


def test_a_terminal_lost_during_the_read_back_runs_the_amend_again_and_reads_it() -> None:
    """A lost terminal is no answer: the amend runs again once it is back (the terminal
    holds the price already: 10025, no change) and reports the price it then reads."""
    harness = Mt5Harness.netting(transport="direct").connect()
    try:
        harness.terminal.update_symbol("EURUSD", held_price_step=SNAP)
        order = _resting(harness, Side.BUY, OrderType.LIMIT, 1.0990)
        harness.terminal.faults.script("orders_get", [None, CallError(-10001)])
        update = _amend(harness, order, 1.0982)
        assert harness.terminal.faults.pending("orders_get") == 0
        assert harness.terminal.calls["initialize"] == 2  # reconnected, then ran again
        assert (update.status, update.code) == (OrderStatus.OPEN, ReasonCode.NONE)
        assert update.price == 1.0980 == _held(harness)
        assert _working_price(harness, order) == 1.0980
    finally:
        harness.close()


@transports
def test_a_refused_modify_keeps_the_order_working_at_the_price_held(
    netting: Mt5Harness,
) -> None:
    netting.terminal.update_symbol("EURUSD", held_price_step=SNAP)
    order = _resting(netting, Side.BUY, OrderType.LIMIT, 1.0990)
    assert _amend(netting, order, 1.0982).price == 1.0980
    # The terminal refuses the move (10015, invalid price). (A move above the ask is no
    # longer sent as a modify: it trades through the market, test_mt5_amend_through_market.)
    netting.terminal.faults.script("order_send", [10015])
    refused = _amend(netting, order, 1.0970)
    assert refused.status is OrderStatus.OPEN  # still working: not dropped by the engine
    assert refused.code is ReasonCode.INVALID_PRICE
    assert refused.reason.startswith("amend refused")
    assert refused.price is None  # nothing moved
    assert _held(netting) == 1.0980
    assert _working_price(netting, order) == 1.0980  # the price held, not the 1.0982 sent


class _Record(NamedTuple):
    price_open: Any


@pytest.mark.parametrize("given", [0.0, -1.0, math.nan, math.inf, True, None, "x"])
def test_a_read_back_without_a_usable_price_reports_the_price_sent(given: Any) -> None:
    held = _held_pending_price([_Record(given)], 1.09993)
    assert held.price == 1.09993
    assert held.unread == f"the order read back has no price ({given!r}); 1.09993 sent is reported"


def test_the_price_read_back_is_reported_and_a_difference_said() -> None:
    assert _held_pending_price([_Record(1.098)], 1.0982) == (
        1.098,
        "",
        "the terminal holds 1.098 where 1.0982 was sent",
    )
    assert _held_pending_price([_Record(1.0982)], 1.0982) == (1.0982, "", "")


# -- the engine books it: a stop-loss resting as a pending order, moved by MOVE_STOP ------------

STOP = 1.0950
ASKED = 1.0982  # on the tick: the engine sends it as asked
HELD = 1.0980  # where the server holds it (0.0005 step)


def _stop_bot() -> tuple[Mt5Harness, Engine]:
    """A live bot on a netting account long 10,000 EURUSD at 1.1, protected by a reduce-only
    sell stop of its own at 1.0950 resting at the terminal as a pending order (not the
    position's SL), on a server snapping moved pending prices to 0.0005."""
    venue = Mt5Harness.build("netting", transport="direct")
    venue.symbols = ("EURUSD",)
    venue.terminal.update_symbol("EURUSD", held_price_step=SNAP)
    venue.connect()
    stop = OrderIntent(
        "EURUSD", Side.SELL, 10_000.0, OrderType.STOP, STOP, reduce_only=True, tag=STOP_LOSS_TAG
    )
    buy: Action = lambda ctx, bar: ctx.buy("EURUSD", 10_000.0)  # noqa: E731
    protect: Action = lambda ctx, bar: ctx.submit(stop)  # noqa: E731
    engine, journal = live_engine(venue, Scripted({0: buy, 1: protect}))
    mover = Mover("EURUSD", {2: ASKED})
    config = EngineConfig(venue.bot, "live", ("EURUSD",), 60, 10_000.0)
    hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
    engine = Engine(config, engine.strategy, venue.broker, journal, venue=venue.broker, hooks=hooks)
    for i in range(2):
        engine.run([minute_bar(i, 1.1)])
        for _ in range(3):
            settle_and_pump(engine, venue)
    [pending] = venue.terminal.orders_get() or ()
    [position] = venue.terminal.positions_get() or ()
    assert pending.price_open == STOP and not position.sl  # a pending order, not the SL
    return venue, engine


def _query(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    journal: Journal = engine.journal  # type: ignore[assignment]
    return journal.query(sql)


def test_a_moved_pending_stop_is_booked_at_the_price_the_terminal_holds() -> None:
    venue, engine = _stop_bot()
    try:
        engine.run([minute_bar(2, 1.1)])  # the plugin asks its move after this bar
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert _held(venue) == HELD
        [stop] = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
        assert stop.price == pytest.approx(HELD)  # the book: what the terminal holds
        [(price,)] = _query(engine, "SELECT price FROM orders WHERE tag = 'stop_loss'")
        assert price == pytest.approx(HELD)  # what a restart re-arms
        [(reason,)] = _query(
            engine, "SELECT reason FROM order_updates WHERE reason LIKE 'stop moved%'"
        )
        assert reason == "stop moved from 1.095 to 1.098 by trail (1.0982 asked)"
        [(said,)] = _query(
            engine, "SELECT message FROM events WHERE kind = 'stop_move_venue_price'"
        )
        assert said == f"{stop.client_order_id}: the venue holds 1.098 where 1.0982 was asked"
    finally:
        venue.close()
