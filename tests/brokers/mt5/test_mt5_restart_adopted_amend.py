"""A resting order an earlier run left at the terminal is, after a restart, the broker's own
working order: amended, cancelled and cancelled-all as before the restart.

What went wrong before: the restarted broker watched such an order by ticket only, not as a
working order, so an amend of it (a risk plugin's MOVE_STOP of a stop-loss resting as a
pending stop order, or any amend) was answered REJECTED "no resting order with this client
order id", and the engine dropped an order the terminal still worked; a ``cancel_all`` left
it resting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
    updates,
)
from tests.brokers.stop_movers import Mover
from tests.runtime.helpers import Scripted
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import OrderStatus, OrderType, ReasonCode, Side

STOP, MOVED = 1.0950, 1.0970


def _restarted_engine(restarted: Mt5Harness, journal: Journal, mover: Mover) -> Engine:
    """The restarted bot (run "live-2") with ``mover`` as an acting risk plugin, reconciled
    with the terminal as `tradefleet serve` does before its first bar."""
    hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
    engine, carried, plan = restarted_plan(restarted, journal, EMULATOR_T0 - 3600, hooks)
    engine.restore_from_venue(carried, plan, EMULATOR_T0)
    return engine


def test_a_move_stop_of_an_adopted_pending_stop_loss_moves_it(tmp_path: Path) -> None:
    # Netting: a stop-loss the strategy rests as its own pending stop order (reduce-only).
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    path = tmp_path / "journal.sqlite"
    strategy = Scripted(
        {
            0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0),
            1: lambda ctx, bar: ctx.sell(
                "EURUSD", 10_000.0, order_type=OrderType.STOP, price=STOP, tag="stop_loss"
            ),
        }
    )
    engine, journal = live_engine(venue, strategy, Journal(path, durable=True))
    for i in range(2):
        engine.run([minute_bar(i, 1.1)])
        settle_and_pump(engine, venue)
    (resting,) = venue.terminal.orders_get() or ()
    stop_id = engine.last_order_id
    assert resting.price_open == STOP
    journal.close()
    venue.broker.close()

    restarted = Mt5Harness.build("netting", venue=venue.terminal)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    second = Journal(path, durable=True)
    try:
        again = _restarted_engine(restarted, second, Mover("EURUSD", {0: MOVED}))
        assert [o.client_order_id for o in again.open_orders()] == [stop_id]
        again.run([minute_bar(2, 1.1)])  # the mover asks its MOVE_STOP after this bar
        for _ in range(3):
            settle_and_pump(again, restarted)
        # Moved at the terminal, and the bot still works it, at the new price.
        (resting,) = restarted.terminal.orders_get() or ()
        assert resting.price_open == MOVED
        (stop,) = again.open_orders()
        assert (stop.client_order_id, stop.price) == (stop_id, MOVED)
        statuses = dict(second.order_statuses())
        assert statuses[stop_id] == "open", statuses
    finally:
        second.close()
        restarted.close()


@pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge
@pytest.mark.parametrize("margin_mode", ["netting", "hedging"])
def test_an_adopted_resting_order_is_amended_and_cancelled_as_before(margin_mode: str) -> None:
    old = Mt5Harness.build(margin_mode).connect()
    limit = old.order(order_type=OrderType.LIMIT, price=1.0950, stop_loss=1.0900)
    old.submit(limit)
    old.close()
    new = Mt5Harness.build(margin_mode, venue=old.terminal).connect()
    try:
        order_id = limit.client_order_id
        # The broker's own working order, as the terminal holds it.
        (working,) = new.broker.open_orders()
        assert (working.client_order_id, working.side, working.order_type) == (
            order_id,
            Side.BUY,
            OrderType.LIMIT,
        )
        assert (working.quantity, working.price, working.stop_loss) == (10_000.0, 1.095, 1.09)
        new.settle()  # the restart's first poll reports its price once

        new.broker.amend(order_id, None, 1.0940)
        (answer,) = updates(new.settle())
        assert (answer.status, answer.code, answer.reason) == (
            OrderStatus.OPEN,
            ReasonCode.NONE,
            "amended",
        )
        (resting,) = new.terminal.orders_get() or ()
        assert (resting.price_open, resting.sl) == (1.094, 1.09)  # its own stop kept

        new.broker.cancel_all("EURUSD")
        (cancelled,) = updates(new.settle())
        assert (cancelled.client_order_id, cancelled.status) == (order_id, OrderStatus.CANCELLED)
        assert new.terminal.orders_get() == ()
        assert new.broker.open_orders() == []
    finally:
        new.close()
