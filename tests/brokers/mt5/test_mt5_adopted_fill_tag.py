"""The fill of a resting order a restarted bot adopted carries the order's tag, as the journal
holds it — as it would had the bot not restarted.

What went wrong: a restarted MT5 broker knows an adopted resting order as the terminal holds it
(price, volume, side, type), and the terminal keeps no tag; its fill's reason was the order's
type (``limit``, ``stop``). The trade it opened or closed then read ``limit`` where the strategy
said ``breakout``, and a pending stop-loss the strategy tagged ``stop_loss`` was reported as a
strategy exit (``stop``) instead of a stop-loss.
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
)
from tests.runtime.helpers import Action, Scripted
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Bar, OrderType, Side, StrategyContext


def _rest(side: Side, order_type: OrderType, price: float, tag: str) -> Action:
    def act(ctx: StrategyContext, _bar: Bar) -> None:
        send = ctx.buy if side is Side.BUY else ctx.sell
        send("EURUSD", 10_000.0, order_type=order_type, price=price, tag=tag)

    return act


@pytest.mark.parametrize(
    ("side", "order_type", "price", "fill_at", "tag"),
    [
        (Side.BUY, OrderType.LIMIT, 1.0950, 1.0940, "breakout"),  # entry reason
        (Side.BUY, OrderType.STOP, 1.1050, 1.1060, "stop_loss"),  # a short's pending stop
    ],
    ids=["limit", "stop"],
)
def test_an_adopted_resting_orders_fill_carries_the_journals_tag(
    tmp_path: Path, side: Side, order_type: OrderType, price: float, fill_at: float, tag: str
) -> None:
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    path = tmp_path / "journal.sqlite"
    actions = {0: _rest(side, order_type, price, tag)}
    engine, journal = live_engine(venue, Scripted(actions), Journal(path, durable=True))
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    order_id = engine.last_order_id
    assert [o.comment for o in venue.terminal.orders_get() or ()] == [order_id]
    journal.close()
    venue.broker.close()

    restarted = Mt5Harness.build("netting", venue=venue.terminal)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    second = Journal(path, durable=True)
    try:
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        assert [o.tag for o in again.open_orders()] == [tag]
        restarted.terminal.set_price("EURUSD", fill_at, fill_at + 0.0001)  # it fills
        for _ in range(2):
            settle_and_pump(again, restarted)
        (fill,) = again.strategy.fills  # type: ignore[attr-defined]
        assert (fill.client_order_id, fill.reason) == (order_id, tag)
        rows = second.fills_at(restarted.bot, [fill.ts])
        assert [(row[3], row[4]) for row in rows] == [(tag, order_id)]
    finally:
        second.close()
        restarted.close()
