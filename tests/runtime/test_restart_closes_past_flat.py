"""A restarted live bot closes what a reduce-only order took past flat while it was down, as
the running bot does (``Engine._close_past_flat``): the venue checks reduce-only as an order is
placed, not as it fills, so a strategy's close filling after the kept stop-loss that closed the
position first opens the other way. The restart books the fills it missed through the
reconciliation (``Engine._apply_reconciled_fill``), which never reached the running rule: it
held a position no order asked for, with no stop, and nothing closed it
(``reconcile.past_flat_owed``, ``Engine._close_past_flat_while_down``).

The bot bought 0.1 BTCUSDT with SL 90 / TP 110; the strategy's close (reduce-only sell 0.1,
tag "close") was on its way while the kept stop-loss filled: the venue sold 0.1 past flat.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, T0, live_restart
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
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

BOT = "past-flat-bot"
PREFIX = bot_prefix(BOT)
SYMBOL = "BTCUSDT"
ENTRY = Order(
    PREFIX + "1", SYMBOL, Side.BUY, 0.1, OrderType.MARKET, None,
    stop_loss=90.0, take_profit=110.0, created_ts=T0,
)  # fmt: skip
STOP, TARGET = bracket_children(ENTRY, 0.1, T0)
CLOSE = Order(
    PREFIX + "2", SYMBOL, Side.SELL, 0.1, OrderType.MARKET, None,
    reduce_only=True, tag="close", created_ts=T0 + 60,
)  # fmt: skip
PAST_FLAT = Order(
    PREFIX + "3", SYMBOL, Side.BUY, 0.1, OrderType.MARKET, None,
    reduce_only=True, tag="past-flat", created_ts=T0 + 180,
)  # fmt: skip
BOUGHT = Fill(ENTRY.client_order_id, SYMBOL, Side.BUY, 0.1, 100.0, 0.0, T0, "t1")
STOPPED = Fill(STOP.client_order_id, SYMBOL, Side.SELL, 0.1, 90.0, 0.0, T0 + 120, "t2")
CLOSED = Fill(CLOSE.client_order_id, SYMBOL, Side.SELL, 0.1, 89.0, 0.0, T0 + 150, "t3")
BOUGHT_BACK = Fill(PAST_FLAT.client_order_id, SYMBOL, Side.BUY, 0.1, 89.5, 0.0, T0 + 200, "t4")
KNOWN = frozenset(
    o.client_order_id for o in (ENTRY, STOP, TARGET, CLOSE)
)  # what the bot journaled before the past-flat close


class Venue(PaperBroker):
    """A venue broker that notes what is sent and cancelled (answers nothing itself)."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams())
        self.sent: list[Order] = []
        self.cancels: list[str] = []

    def submit(self, order: Order) -> OrderUpdate:
        self.sent.append(order)
        return OrderUpdate(order.client_order_id, OrderStatus.OPEN, order.created_ts)

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self.cancels.append(client_order_id)
        return None


def _report(order: Order, filled: float, status: OrderStatus) -> OrderReport:
    return OrderReport(
        order.client_order_id, "v-" + order.client_order_id, SYMBOL, order.side,
        order.order_type, order.quantity, filled, status, T0 + 150, price=order.price,
        reduce_only=order.reduce_only,
    )  # fmt: skip


def _restart(
    tmp_path: Path,
    state: CarriedState,
    venue_orders: list[OrderReport],
    venue_fills: list[Fill],
    held: float,
) -> tuple[Engine, Journal, Venue, ReconcilePlan]:
    venue = Venue()
    engine, journal = live_restart(tmp_path, BOT, venue)
    working = {o.client_order_id: o for o, _ in state.working}
    working.update({o.client_order_id: o for o in state.unacknowledged})
    plan = plan_reconciliation(
        prefix=PREFIX,
        symbols=[SYMBOL],
        journal_fills=list(state.fills),
        journal_working=working,
        known_order_ids=state.known_order_ids,
        venue_orders=venue_orders,
        venue_fills=venue_fills,
        venue_positions=[PositionReport(SYMBOL, held, 89.0)] if held else [],
        now=T0 + HOUR,
        acknowledged=[o.client_order_id for o, _ in state.working],
    )
    assert not plan.degraded, plan.mismatches
    engine.restore_from_venue(state, plan, T0 + HOUR)
    return engine, journal, venue, plan


def _buys_sent(venue: Venue) -> list[tuple[str, float]]:
    return [(o.tag, o.quantity) for o in venue.sent if o.side is Side.BUY and o.reduce_only]


def test_a_reduce_only_fill_past_flat_while_down_is_closed_at_the_restart(tmp_path: Path) -> None:
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT],
        working=[(STOP, 0.0), (TARGET, 0.0), (CLOSE, 0.0)],
        runs=1,
        known_order_ids=KNOWN,
    )
    engine, journal, venue, plan = _restart(
        tmp_path,
        state,
        [
            _report(STOP, 0.1, OrderStatus.FILLED),
            _report(TARGET, 0.0, OrderStatus.CANCELLED),
            _report(CLOSE, 0.1, OrderStatus.FILLED),
        ],
        [BOUGHT, STOPPED, CLOSED],
        -0.1,
    )
    try:
        assert engine.position(SYMBOL).quantity == pytest.approx(-0.1)
        buys = _buys_sent(venue)
        assert buys and sum(q for _, q in buys) == pytest.approx(0.1), (
            "restarted short 0.1 that a reduce-only close took past flat while the bot was "
            f"down; nothing closes it (sent {venue.sent}, missed {plan.missed_fills})"
        )
    finally:
        journal.close()


def test_a_past_flat_close_the_venue_never_received_is_sent_again(
    tmp_path: Path,
) -> None:
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT, STOPPED, CLOSED],
        working=[],
        unacknowledged=[PAST_FLAT],
        runs=1,
        known_order_ids=KNOWN | {PAST_FLAT.client_order_id},
    )
    engine, journal, venue, _plan = _restart(
        tmp_path,
        state,
        [
            _report(STOP, 0.1, OrderStatus.FILLED),
            _report(TARGET, 0.0, OrderStatus.CANCELLED),
            _report(CLOSE, 0.1, OrderStatus.FILLED),
        ],
        [BOUGHT, STOPPED, CLOSED],
        -0.1,
    )
    try:
        assert engine.position(SYMBOL).quantity == pytest.approx(-0.1)
        assert sum(q for _, q in _buys_sent(venue)) == pytest.approx(0.1), (
            f"the past-flat close journaled before the kill was never received and is not "
            f"sent again; the short stays: sent {venue.sent}"
        )
    finally:
        journal.close()


@pytest.mark.parametrize("how", ["filled_while_down", "still_working"])
def test_past_flat_close_in_flight_is_not_sent_twice(tmp_path: Path, how: str) -> None:
    """The past-flat close the running bot sent is not sent again by a restart, whether it
    filled while the bot was down or still works at the venue (adopted)."""
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT, STOPPED, CLOSED],
        working=[(PAST_FLAT, 0.0)],
        runs=1,
        known_order_ids=KNOWN | {PAST_FLAT.client_order_id},
    )
    filled = how == "filled_while_down"
    engine, journal, venue, _plan = _restart(
        tmp_path,
        state,
        [
            _report(STOP, 0.1, OrderStatus.FILLED),
            _report(TARGET, 0.0, OrderStatus.CANCELLED),
            _report(CLOSE, 0.1, OrderStatus.FILLED),
            _report(PAST_FLAT, 0.1, OrderStatus.FILLED)
            if filled
            else _report(PAST_FLAT, 0.0, OrderStatus.OPEN),
        ],
        [BOUGHT, STOPPED, CLOSED, *([BOUGHT_BACK] if filled else [])],
        0.0 if filled else -0.1,
    )
    try:
        assert _buys_sent(venue) == []
        assert engine.position(SYMBOL).quantity == pytest.approx(0.0 if filled else -0.1)
    finally:
        journal.close()


SELL = Order(
    PREFIX + "3", SYMBOL, Side.SELL, 0.1, OrderType.MARKET, None, tag="cross-down",
    created_ts=T0 + 60,
)  # fmt: skip
SOLD = Fill(SELL.client_order_id, SYMBOL, Side.SELL, 0.1, 89.8, 0.0, T0 + 100, "t5")


def test_a_reversal_the_venue_filled_entry_first_is_not_closed(tmp_path: Path) -> None:
    """The strategy reversed (``close``, then ``sell(0.1)``) and the bot died; the venue filled
    the sell before the close. Taken in the venue's order, the close went past flat; taken in
    the order the bot sent them, the account is short 0.1, as the strategy asked: no close."""
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT],
        working=[(STOP, 0.0), (TARGET, 0.0), (CLOSE, 0.0), (SELL, 0.0)],
        runs=1,
        known_order_ids=KNOWN | {SELL.client_order_id},
    )
    engine, journal, venue, _plan = _restart(
        tmp_path,
        state,
        [
            _report(STOP, 0.0, OrderStatus.CANCELLED),
            _report(TARGET, 0.0, OrderStatus.CANCELLED),
            _report(SELL, 0.1, OrderStatus.FILLED),
            _report(CLOSE, 0.1, OrderStatus.FILLED),
        ],
        [BOUGHT, SOLD, CLOSED],
        -0.1,
    )
    try:
        assert engine.position(SYMBOL).quantity == pytest.approx(-0.1)
        assert _buys_sent(venue) == [], venue.sent
    finally:
        journal.close()


def _sell(quantity: float) -> Order:
    return Order(
        PREFIX + "3", SYMBOL, Side.SELL, quantity, OrderType.MARKET, None,
        tag="exit", created_ts=T0 + 60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sold", "held_after"),
    [(0.1, -0.1), (0.2, -0.2)],
    ids=["plain_exit_then_tp", "reversal_then_tp"],
)
def test_a_take_profit_filling_after_a_later_exit_is_closed_past_flat(
    tmp_path: Path, sold: float, held_after: float
) -> None:
    """Long 0.1 (SL 90 / TP 110, children resting since T0). At T0+60 the strategy sells
    ``sold`` (not reduce-only: an exit, or a reversal to short 0.1); the bot dies. The venue
    fills the sell at T0+100, then the take-profit (reduce-only, accepted when placed) at
    T0+150: it sold 0.1 past what the strategy asked for, which a running bot closes
    (``_close_past_flat``). Taken in the order the orders were created, the take-profit
    reduced the long first and nothing was owed."""
    sell = _sell(sold)
    sold_fill = Fill(sell.client_order_id, SYMBOL, Side.SELL, sold, 100.0, 0.0, T0 + 100, "t5")
    tp_fill = Fill(TARGET.client_order_id, SYMBOL, Side.SELL, 0.1, 110.0, 0.0, T0 + 150, "t6")
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT],
        working=[(STOP, 0.0), (TARGET, 0.0), (sell, 0.0)],
        runs=1,
        known_order_ids=(KNOWN - {PREFIX + "2"}) | {sell.client_order_id},
    )
    engine, journal, venue, plan = _restart(
        tmp_path,
        state,
        [
            _report(STOP, 0.0, OrderStatus.CANCELLED),
            _report(TARGET, 0.1, OrderStatus.FILLED),
            _report(sell, sold, OrderStatus.FILLED),
        ],
        [BOUGHT, sold_fill, tp_fill],
        held_after,
    )
    try:
        assert ENTRY.take_profit == 110.0
        assert engine.position(SYMBOL).quantity == pytest.approx(held_after)
        buys = _buys_sent(venue)
        assert sum(q for _, q in buys) == pytest.approx(0.1), (
            "the take-profit sold 0.1 past flat after the strategy's later sell had filled; "
            f"the restart sends nothing to close it (sent {venue.sent}, "
            f"missed {plan.missed_fills})"
        )
    finally:
        journal.close()


def test_both_bracket_children_filling_while_down_is_closed(tmp_path: Path) -> None:
    """The take-profit and the stop-loss both filled while the bot was down (nobody cancelled
    the sibling): the second went 0.1 past flat and the restart closes it, once."""
    tp_fill = Fill(TARGET.client_order_id, SYMBOL, Side.SELL, 0.1, 110.0, 0.0, T0 + 100, "t6")
    sl_fill = Fill(STOP.client_order_id, SYMBOL, Side.SELL, 0.1, 90.0, 0.0, T0 + 150, "t7")
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT],
        working=[(STOP, 0.0), (TARGET, 0.0)],
        runs=1,
        known_order_ids=KNOWN - {PREFIX + "2"},
    )
    engine, journal, venue, _plan = _restart(
        tmp_path,
        state,
        [_report(STOP, 0.1, OrderStatus.FILLED), _report(TARGET, 0.1, OrderStatus.FILLED)],
        [BOUGHT, tp_fill, sl_fill],
        -0.1,
    )
    try:
        assert engine.position(SYMBOL).quantity == pytest.approx(-0.1)
        assert sum(q for _, q in _buys_sent(venue)) == pytest.approx(0.1), venue.sent
    finally:
        journal.close()


def test_a_working_reduce_only_sell_does_not_count_as_the_close_of_a_short(
    tmp_path: Path,
) -> None:
    """Long 0.1 (SL 90). At T0+60 the strategy rests a reduce-only limit sell 0.1 @ 105 (an
    exit it submits itself). While the bot is down the stop fills (flat), then the limit sell
    fills 0.05 (the venue checked reduce-only when it was placed): short 0.05, and the limit's
    other 0.05 still works, adopted. The restart owes a buy of 0.05: a reduce-only sell
    working closes nothing of a short (it was counted as its close, and nothing was sent)."""
    limit = Order(
        PREFIX + "3", SYMBOL, Side.SELL, 0.1, OrderType.LIMIT, 105.0,
        reduce_only=True, tag="scale-out", created_ts=T0 + 60,
    )  # fmt: skip
    stopped = Fill(STOP.client_order_id, SYMBOL, Side.SELL, 0.1, 90.0, 0.0, T0 + 100, "t2")
    part = Fill(limit.client_order_id, SYMBOL, Side.SELL, 0.05, 105.0, 0.0, T0 + 150, "t8")
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT],
        working=[(STOP, 0.0), (TARGET, 0.0), (limit, 0.0)],
        runs=1,
        known_order_ids=(KNOWN - {PREFIX + "2"}) | {limit.client_order_id},
    )
    engine, journal, venue, _plan = _restart(
        tmp_path,
        state,
        [
            _report(STOP, 0.1, OrderStatus.FILLED),
            _report(TARGET, 0.0, OrderStatus.CANCELLED),
            _report(limit, 0.05, OrderStatus.PARTIALLY_FILLED),
        ],
        [BOUGHT, stopped, part],
        -0.05,
    )
    try:
        assert engine.position(SYMBOL).quantity == pytest.approx(-0.05)
        assert sum(q for _, q in _buys_sent(venue)) == pytest.approx(0.05), (
            "short 0.05 past flat; the only order 'on its way' is a reduce-only SELL, which "
            f"closes none of it, yet the restart sends nothing (sent {venue.sent})"
        )
    finally:
        journal.close()
