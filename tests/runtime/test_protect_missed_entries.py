"""A bracket entry that filled while the bot was down: its stop-loss and take-profit are placed
at the restart, sized on what filled — by the engine, or by a broker that places brackets itself
(``follows-brackets``), which is asked to (``protect_filled``) so that it places them the way its
venue takes them (Binance spot: one OCO list, where two orders would hold the coin twice)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, T0, live_restart
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import bracket_children, bracket_entry
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    CarriedState,
    Fill,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    PositionReport,
    Side,
)
from tradefleet_runtime.order_ids import bot_prefix
from tradefleet_runtime.reconcile import plan_reconciliation

BOT = "protect-bot"
PREFIX = bot_prefix(BOT)
HELD = 0.999  # what the account holds of the entry's 1.0 (a fee taken in the coin)


class Follower:
    """A ``follows-brackets`` broker's side of it: what it was asked."""

    def __init__(self) -> None:
        self.followed: list[Order] = []
        self.protected: list[tuple[Order, float]] = []

    def follow_bracket(self, order: Order) -> None:
        self.followed.append(order)

    def protect_filled(self, order: Order, quantity: float) -> None:
        self.protected.append((order, quantity))


def _engine(folder: Path, follower: Follower | None) -> tuple[Engine, PaperBroker, Journal]:
    """A live bot's engine on a venue (the paper broker's account), its second run."""
    venue = PaperBroker(PaperBrokerParams())
    engine, journal = live_restart(folder, BOT, venue, follower)
    return engine, venue, journal


def _restart(
    folder: Path, follower: Follower | None, known: frozenset[str] = frozenset()
) -> tuple[Engine, PaperBroker, Journal, str, Order]:
    """A bot restarted after its bracket entry filled (``HELD`` of it) while it was down: the
    engine after reconciliation, the venue, the journal, the summary and the entry."""
    engine, venue, journal = _engine(folder, follower)
    entry = Order(
        PREFIX + "1", "BTCUSDT", Side.BUY, 1.0, OrderType.MARKET,
        stop_loss=90.0, take_profit=110.0, created_ts=T0,
    )  # fmt: skip
    state = CarriedState(
        10_000.0,
        unacknowledged=[entry],
        runs=1,
        known_order_ids=frozenset({entry.client_order_id}) | known,
    )
    fill = Fill(entry.client_order_id, "BTCUSDT", Side.BUY, HELD, 100.0, 0.1, T0 + 60, "t1")
    report = OrderReport(
        entry.client_order_id, "v1", "BTCUSDT", Side.BUY, OrderType.MARKET, 1.0, 1.0,
        OrderStatus.FILLED, T0 + 60,
    )  # fmt: skip
    plan = plan_reconciliation(
        prefix=PREFIX,
        symbols=["BTCUSDT"],
        journal_fills=[],
        journal_working={entry.client_order_id: entry},
        known_order_ids=state.known_order_ids,
        venue_orders=[report],
        venue_fills=[fill],
        venue_positions=[PositionReport("BTCUSDT", HELD, 100.0)],
        now=T0 + HOUR,
    )
    assert [f.fill_id for f in plan.missed_fills] == ["t1"] and not plan.degraded
    summary = engine.restore_from_venue(state, plan, T0 + HOUR)
    return engine, venue, journal, summary, entry


def _children() -> set[str]:
    return {PREFIX + "1-sl", PREFIX + "1-tp"}


def test_a_broker_that_places_brackets_itself_is_asked_to_place_them(tmp_path: Path) -> None:
    follower = Follower()
    engine, venue, journal, summary, entry = _restart(tmp_path, follower)
    assert follower.protected == [(entry, HELD)]
    assert follower.followed == []  # the entry is not working: nothing of it to follow
    assert venue.open_orders() == []  # the engine sent nothing itself
    # Booked and journaled all the same: the status shows the stop, the broker's events for
    # the children land on orders the engine knows.
    booked = {o.client_order_id: o.quantity for o in engine.book.orders()}
    assert booked == dict.fromkeys(_children(), HELD)
    statuses = dict(journal.order_statuses("r2"))
    assert {statuses[c] for c in _children()} == {"pending"}
    assert "2 protective order(s) placed for entries filled while down" in summary
    journal.close()


def test_without_such_a_broker_the_engine_sends_the_children_itself(tmp_path: Path) -> None:
    engine, venue, journal, summary, _entry = _restart(tmp_path, None)
    sent = {o.client_order_id: o.quantity for o in venue.open_orders()}
    assert sent == dict.fromkeys(_children(), HELD)
    assert {o.client_order_id for o in engine.book.orders()} == _children()
    assert "2 protective order(s) placed" in summary
    journal.close()


@pytest.mark.parametrize("with_follower", [True, False])
def test_children_an_earlier_run_sent_are_not_placed_again(
    tmp_path: Path, with_follower: bool
) -> None:
    follower = Follower() if with_follower else None
    engine, venue, journal, summary, _entry = _restart(
        tmp_path, follower, known=frozenset({PREFIX + "1-sl"})
    )
    assert venue.open_orders() == [] and engine.book.orders() == []
    if follower is not None:
        assert follower.protected == []
    assert "protective" not in summary
    journal.close()


def _restart_part_filled(
    folder: Path, follower: Follower, tp_status: OrderStatus = OrderStatus.OPEN
) -> tuple[Engine, Journal, Order]:
    """A limit entry of 1.0 filled 0.4 with its children working for that part when the bot
    stopped; the rest filled while it was down (the take-profit ``tp_status`` at the venue)."""
    engine, _venue, journal = _engine(folder, follower)
    entry = Order(
        PREFIX + "1", "BTCUSDT", Side.BUY, 1.0, OrderType.LIMIT, 100.0,
        stop_loss=90.0, take_profit=110.0, created_ts=T0,
    )  # fmt: skip
    stop, target = bracket_children(entry, 0.4, T0 + 60)
    first = Fill(entry.client_order_id, "BTCUSDT", Side.BUY, 0.4, 100.0, 0.04, T0 + 60, "t1")
    rest = Fill(entry.client_order_id, "BTCUSDT", Side.BUY, 0.6, 100.0, 0.06, T0 + 120, "t2")
    state = CarriedState(
        10_000.0,
        fills=[first],
        working=[(entry, 0.4), (stop, 0.0), (target, 0.0)],
        runs=1,
        known_order_ids=frozenset(o.client_order_id for o in (entry, stop, target)),
    )

    def report(order: Order, status: OrderStatus, filled: float) -> OrderReport:
        return OrderReport(
            order.client_order_id, "v-" + order.client_order_id, "BTCUSDT", order.side,
            order.order_type, order.quantity, filled, status, T0 + 120, price=order.price,
        )  # fmt: skip

    plan = plan_reconciliation(
        prefix=PREFIX,
        symbols=["BTCUSDT"],
        journal_fills=[first],
        journal_working={o.client_order_id: o for o, _ in state.working},
        known_order_ids=state.known_order_ids,
        venue_orders=[
            report(entry, OrderStatus.FILLED, 1.0),
            report(stop, OrderStatus.OPEN, 0.0),
            report(target, tp_status, 0.0),
        ],
        venue_fills=[first, rest],
        venue_positions=[PositionReport("BTCUSDT", 1.0, 100.0)],
        now=T0 + HOUR,
    )
    assert [f.fill_id for f in plan.missed_fills] == ["t2"] and not plan.degraded
    engine.restore_from_venue(state, plan, T0 + HOUR)
    return engine, journal, entry


def test_children_placed_for_the_first_part_grow_to_all_that_filled_while_down(
    tmp_path: Path,
) -> None:
    """Left at the first part's size, 0.6 of the position would have had no stop."""
    follower = Follower()
    engine, journal, entry = _restart_part_filled(tmp_path, follower)
    assert follower.protected == [(entry, 1.0)]
    booked = {o.client_order_id: o.quantity for o in engine.book.orders()}
    assert booked == dict.fromkeys(_children(), 1.0)
    journaled = journal.query(
        "SELECT client_order_id, quantity FROM orders WHERE run_id = 'r2' AND parent_id IS NOT NULL"
    )
    assert dict(journaled) == dict.fromkeys(_children(), 1.0)
    journal.close()


def test_a_bracket_a_child_of_which_ended_is_not_grown(tmp_path: Path) -> None:
    """The take-profit was cancelled at the venue (by a person): the bracket is not the bot's
    to rebuild; the stop keeps its size and the broker is asked nothing."""
    follower = Follower()
    engine, journal, _entry = _restart_part_filled(tmp_path, follower, OrderStatus.CANCELLED)
    assert follower.protected == []
    assert {o.client_order_id: o.quantity for o in engine.book.orders()} == {PREFIX + "1-sl": 0.4}
    journal.close()


def _restart_children_never_received(
    folder: Path, follower: Follower | None, stop_at: float = 90.0
) -> tuple[Engine, PaperBroker, Journal, str, Order]:
    """The entry filled (``HELD``, journaled) and the bot journaled its children, then died
    before the venue received them: the venue holds the position and no order. ``stop_at``:
    where the journaled stop stands (moved since the entry was sent)."""
    engine, venue, journal = _engine(folder, follower)
    entry = Order(
        PREFIX + "1", "BTCUSDT", Side.BUY, 1.0, OrderType.MARKET,
        stop_loss=90.0, take_profit=110.0, created_ts=T0,
    )  # fmt: skip
    stop, target = bracket_children(entry, HELD, T0 + 60)
    stop = stop._replace(price=stop_at)
    fill = Fill(entry.client_order_id, "BTCUSDT", Side.BUY, HELD, 100.0, 0.1, T0 + 60, "t1")
    state = CarriedState(
        10_000.0,
        fills=[fill],
        unacknowledged=[stop, target],
        runs=1,
        known_order_ids=frozenset(o.client_order_id for o in (entry, stop, target)),
    )
    report = OrderReport(
        entry.client_order_id, "v1", "BTCUSDT", Side.BUY, OrderType.MARKET, 1.0, HELD,
        OrderStatus.FILLED, T0 + 60,
    )  # fmt: skip
    plan = plan_reconciliation(
        prefix=PREFIX,
        symbols=["BTCUSDT"],
        journal_fills=[fill],
        journal_working={o.client_order_id: o for o in (stop, target)},
        known_order_ids=state.known_order_ids,
        venue_orders=[report],
        venue_fills=[fill],
        venue_positions=[PositionReport("BTCUSDT", HELD, 100.0)],
        now=T0 + HOUR,
    )
    assert set(plan.resend) == _children() and not plan.degraded
    summary = engine.restore_from_venue(state, plan, T0 + HOUR)
    return engine, venue, journal, summary, entry


def test_children_the_venue_never_received_are_placed_by_a_broker_that_places_brackets(
    tmp_path: Path,
) -> None:
    """Sent one by one, Binance spot's take-profit is refused (the stop holds the coin) and
    the two are not linked: the broker is asked to place them as at the fill (one OCO list),
    for the entry as its children stand (the stop where it was moved to)."""
    follower = Follower()
    engine, venue, journal, summary, entry = _restart_children_never_received(
        tmp_path, follower, stop_at=95.0
    )
    assert follower.protected == [
        (
            Order(
                entry.client_order_id, "BTCUSDT", Side.BUY, HELD, stop_loss=95.0, take_profit=110.0
            ),
            HELD,
        )
    ]
    assert venue.open_orders() == []  # the engine sent nothing itself
    booked = {o.client_order_id: o.quantity for o in engine.book.orders()}
    assert booked == dict.fromkeys(_children(), HELD)
    assert "2 protective order(s) the venue never received sent again" in summary
    journal.close()


def test_without_such_a_broker_children_the_venue_never_received_are_sent_as_orders(
    tmp_path: Path,
) -> None:
    _, venue, journal, _summary, _entry = _restart_children_never_received(tmp_path, None)
    sent = {o.client_order_id: o.quantity for o in venue.open_orders()}
    assert sent == dict.fromkeys(_children(), HELD)
    journal.close()


def test_an_entry_is_told_by_its_whole_bracket_only() -> None:
    entry = Order(
        PREFIX + "7", "BTCUSDT", Side.SELL, 2.0, OrderType.LIMIT, 100.0,
        stop_loss=110.0, take_profit=90.0, created_ts=T0, tag="short",
    )  # fmt: skip
    stop, target = bracket_children(entry, 1.5, T0 + 60)
    told = bracket_entry([target, stop])
    assert told is not None
    assert bracket_children(told, 1.5, T0 + 60) == (stop, target)
    # The journaled entry keeps its type and tag; its children say where they stand now.
    moved = stop._replace(price=105.0)
    assert bracket_entry([moved, target], entry) == entry._replace(stop_loss=105.0)
    assert bracket_entry([stop], entry) is None  # its take-profit is not among them
    assert bracket_entry([stop, target._replace(quantity=1.0)]) is None  # two sizes
    assert bracket_entry([stop, target], entry._replace(client_order_id="other")) is None
    assert bracket_entry([]) is None
