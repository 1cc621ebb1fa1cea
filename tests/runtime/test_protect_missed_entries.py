"""A bracket entry that filled while the bot was down: its stop-loss and take-profit are placed
at the restart, sized on what filled — by the engine, or by a broker that places brackets itself
(``follows-brackets``), which is asked to (``protect_filled``) so that it places them the way its
venue takes them (Binance spot: one OCO list, where two orders would hold the coin twice)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
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
from tradefleet_runtime.sdk import Strategy

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)
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


class Idle(Strategy):
    pass


def _restart(
    folder: Path, follower: Follower | None, known: frozenset[str] = frozenset()
) -> tuple[Engine, PaperBroker, Journal, str, Order]:
    """A bot restarted after its bracket entry filled (``HELD`` of it) while it was down: the
    engine after reconciliation, the venue, the journal, the summary and the entry."""
    venue = PaperBroker(PaperBrokerParams())
    venue.connect(BrokerContext(BOT, "paper", ("BTCUSDT",), "USD", 10_000.0))  # type: ignore[arg-type]
    journal = Journal(folder / "journal.sqlite", durable=True)
    start_test_run(journal, "r2", bot=BOT, mode="live")
    config = EngineConfig(BOT, "live", ("BTCUSDT",), HOUR, 10_000.0)
    engine = Engine(config, Idle(None), venue, journal, venue=venue, brackets=follower)
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
