"""A restart finds a bracket's stop-loss filled in part and still working at the venue (a
stop-limit resting part-filled; an MT5 hedging split entry whose SL closed one of its tickets):
its take-profit protects the rest of the position, which is still open. Reconciliation keeps
it (not "a bracket order whose sibling filled, to be cancelled"), and the engine cuts it to
what is held, as the running bot keeps the sibling of a child that still works — the ccxt
broker cancels a bracket's siblings once a child *ends* with a fill, the paper broker fills a
child whole at once. A sibling that ended (filled, or cancelled after a part), or a position
already closed, leaves the take-profit orphaned as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, T0, live_restart
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.model import (
    CarriedState,
    Fill,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionReport,
    Side,
)
from tradefleet_runtime.order_ids import bot_prefix
from tradefleet_runtime.reconcile import ReconcilePlan, plan_reconciliation

BOT = "partial-sibling-bot"
PREFIX = bot_prefix(BOT)
ENTRY = Order(
    PREFIX + "1", "BTCUSDT", Side.BUY, 0.1, OrderType.MARKET, None,
    stop_loss=90.0, take_profit=110.0, created_ts=T0,
)  # fmt: skip
STOP, TARGET = bracket_children(ENTRY, 0.1, T0)
BOUGHT = Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, 0.1, 100.0, 0.0, T0, "t1")
STOPPED = Fill(STOP.client_order_id, "BTCUSDT", Side.SELL, 0.04, 90.0, 0.0, T0 + 60, "t2")


def _report(order: Order, filled: float, status: OrderStatus) -> OrderReport:
    return OrderReport(
        order.client_order_id, "v-" + order.client_order_id, "BTCUSDT", order.side,
        order.order_type, order.quantity, filled, status, T0 + 60, price=order.price,
        reduce_only=True,
    )  # fmt: skip


def _plan(
    stop: OrderReport,
    held: float = 0.06,
    journaled: tuple[Fill, ...] = (BOUGHT,),
    more: tuple[Fill, ...] = (),
) -> ReconcilePlan:
    """The bot bought 0.1 with SL/TP; its stop filled 0.04 (``STOPPED``, journaled or not by
    ``journaled``) and is ``stop`` at the venue now; ``more``: other fills of the bot."""
    fills = (BOUGHT, STOPPED, *more)
    return plan_reconciliation(
        prefix=PREFIX,
        symbols=["BTCUSDT"],
        journal_fills=list(journaled),
        journal_working={o.client_order_id: o for o in (STOP, TARGET)},
        known_order_ids=frozenset({ENTRY.client_order_id, STOP.client_order_id,
                                   TARGET.client_order_id}),
        venue_orders=[stop, _report(TARGET, 0.0, OrderStatus.OPEN)],
        venue_fills=list(fills),
        venue_positions=[PositionReport("BTCUSDT", held, 100.0)] if held else [],
        now=T0 + HOUR,
    )  # fmt: skip


@pytest.mark.parametrize("journaled", [(BOUGHT,), (BOUGHT, STOPPED)], ids=["missed", "journaled"])
def test_the_target_of_a_stop_filled_in_part_and_still_working_is_kept(
    journaled: tuple[Fill, ...],
) -> None:
    plan = _plan(_report(STOP, 0.04, OrderStatus.PARTIALLY_FILLED), journaled=journaled)
    assert plan.orphaned == ()  # was (TARGET,): cancelled, the 0.06 left without its target
    assert {r.client_order_id for r in plan.adopted} == {STOP.client_order_id,
                                                         TARGET.client_order_id}  # fmt: skip
    assert not plan.degraded


def test_the_target_of_a_stop_that_ended_or_of_a_closed_position_is_still_orphaned() -> None:
    # The stop ended after its part (cancelled, expired): the running bot cancels the sibling.
    ended = _plan(_report(STOP, 0.04, OrderStatus.CANCELLED))
    assert ended.orphaned == (TARGET.client_order_id,)
    # The rest of the position closed by another order of the bot: nothing left to protect.
    sold = Fill(PREFIX + "2", "BTCUSDT", Side.SELL, 0.06, 95.0, 0.0, T0 + 90, "t3")
    flat = _plan(_report(STOP, 0.04, OrderStatus.PARTIALLY_FILLED), held=0.0, more=(sold,))
    assert flat.orphaned == (TARGET.client_order_id,)


class Answering(PaperBroker):
    """A venue broker answering every amend ("amended") and noting the cancels asked."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams())
        self.cancels: list[str] = []
        self.amends: list[tuple[str, float | None]] = []

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self.cancels.append(client_order_id)
        return None

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        self.amends.append((client_order_id, quantity))
        return OrderUpdate(client_order_id, OrderStatus.OPEN, T0 + HOUR, "amended")


def test_a_restarted_bot_keeps_the_target_cut_to_what_the_stop_left(tmp_path: Path) -> None:
    venue = Answering()
    engine, journal = live_restart(tmp_path, BOT, venue)
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT],
        working=[(STOP, 0.0), (TARGET, 0.0)],
        runs=1,
        known_order_ids=frozenset({ENTRY.client_order_id, STOP.client_order_id,
                                   TARGET.client_order_id}),
    )  # fmt: skip
    plan = _plan(_report(STOP, 0.04, OrderStatus.PARTIALLY_FILLED))
    engine.restore_from_venue(state, plan, T0 + HOUR)
    try:
        left = {w.order.client_order_id: round(w.order.quantity - w.filled, 8) for w in engine.book}
        assert left == {STOP.client_order_id: 0.06, TARGET.client_order_id: 0.06}
        assert venue.cancels == []  # was: the target cancelled at the venue
        amends = [(order_id, round(quantity or 0.0, 8)) for order_id, quantity in venue.amends]
        assert amends == [(TARGET.client_order_id, 0.06)]
        assert engine.portfolio.position("BTCUSDT").quantity == pytest.approx(0.06)
    finally:
        journal.close()
