"""A working limit entry moved before a restart keeps the venue's price after it.

The bot's limit buy at 49,000 is moved to 49,500 (Binance spot by cancel-replace, ``<id>-a1``;
Binance USDⓈ-M in place), and the process dies. The restarted bot used to adopt the order
with the price its journal held (49,000): ``tradefleet orders`` showed the old price, and a
strategy or risk rule reading the working order's price decided on a number the venue no
longer held. Now the restored order carries the venue's price and quantity, in the engine's
book and in the journal (the orders the status reads), and reconciliation notes the change.

Through a real ``BotSession`` restart against the fake venues with the real ccxt.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import (
    LIMIT,
    MOVED,
    QUANTITY,
    Killed,
    Step,
    bot_broker,
    hand_to_a_bot,
    hourly_bars,
    life,
    status_updates,
    until,
)
from tests.brokers.harness import SYMBOL, VenueHarness, harness_for
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.reconcile import ReconcilePlan, adopted_order
from tradefleet_runtime.sdk import Bar, Order, OrderReport, OrderStatus, OrderType, Side
from tradefleet_runtime.session import BotSession

# setup -> (ccxt exchange, market type, the fake's market, the bot's capital)
SETUPS = {
    "binance-spot": ("binance", "spot", "spot", 50_000),  # cancel-replace: <id>-a1
    "binance-usdm": ("binanceusdm", "linear", "usdm", 100_000),  # amended in place
}


def _life(folder: Path, harness: VenueHarness, setup: str, bars: list[Bar], after: Step) -> None:
    """One life of the bot at ``setup``'s venue (``ccxt_restart_life.life``)."""
    exchange, market_type, _market, initial = SETUPS[setup]
    life(folder, harness, bars, after, exchange=exchange, market_type=market_type, initial=initial)


def _venue_working(harness: VenueHarness, market: str, cid: str) -> tuple[str, float, float]:
    """The bot's order as the venue works it now: (client id of the copy, price, quantity)."""
    with harness.fake.state.lock:
        [order] = [
            o
            for o in harness.fake.orders(market)
            if o.client_order_id.startswith(cid) and o.is_open
        ]
        return order.client_order_id, float(order.price), float(order.orig_qty)


def _moved(harness: VenueHarness, market: str, first: dict[str, str]) -> Step:
    """The first life's end: the bot's limit buy is moved to ``MOVED`` and acknowledged as
    amended (journaled), then the process dies."""

    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        [order] = engine.open_orders()
        first["cid"] = cid = order.client_order_id
        assert order.price == LIMIT
        broker = bot_broker(session)
        broker.amend(cid, None, MOVED)
        until(
            engine,
            lambda: (
                _venue_working(harness, market, cid)[1] == MOVED
                and ("open", "amended") in status_updates(journal, cid)
            ),
            "the amend",
        )
        raise Killed

    return step


@dataclass
class _Seen:
    plan: ReconcilePlan | None = None
    working: list[Order] | None = None


def _restarted(seen: _Seen) -> Step:
    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        seen.plan = session.reconciliation
        seen.working = list(engine.open_orders())

    return step


def _journal_order(path: Path, cid: str) -> tuple[float, float]:
    """(price, quantity) of ``cid`` in the journal's newest run: what ``tradefleet orders``
    and the status show of a working order."""
    db = sqlite3.connect(path)
    try:
        [(price, quantity)] = db.execute(
            "SELECT price, quantity FROM orders WHERE client_order_id = ? AND run_id = "
            "(SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1)",
            (cid,),
        ).fetchall()
    finally:
        db.close()
    return float(price), float(quantity)


def _journal_notes(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT message FROM events WHERE kind = 'reconcile_note'").fetchall()
    finally:
        db.close()
    return [str(message) for (message,) in rows]


@pytest.mark.parametrize("setup", list(SETUPS))
def test_a_restarted_bot_works_its_moved_entry_at_the_venues_price(
    setup: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moved from 49,000 to 49,500 before the restart: after it, the bot's working order, its
    journal row and the reconciliation's adopted report all hold 49,500, as the venue does;
    the quantity is the whole order's; the change is noted."""
    market = SETUPS[setup][2]
    with harness_for(setup, tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        hand_to_a_bot(harness, monkeypatch)
        bars = hourly_bars(2)
        first: dict[str, str] = {}
        _life(tmp_path, harness, setup, bars[:1], _moved(harness, market, first))
        cid = first["cid"]
        copy, venue_price, _ = _venue_working(harness, market, cid)
        assert venue_price == MOVED
        assert copy == (f"{cid}-a1" if setup == "binance-spot" else cid)

        seen = _Seen()
        _life(tmp_path, harness, setup, bars, _restarted(seen))
        assert seen.plan is not None and not seen.plan.degraded
        [adopted] = seen.plan.adopted
        assert (adopted.client_order_id, adopted.price) == (cid, MOVED)
        assert seen.working is not None
        [working] = seen.working
        assert working.client_order_id == cid
        assert (working.price, working.quantity) == pytest.approx((MOVED, QUANTITY))
        assert _journal_order(tmp_path / "bot.sqlite", cid) == pytest.approx((MOVED, QUANTITY))
        assert any(
            cid in note and "49500" in note for note in _journal_notes(tmp_path / "bot.sqlite")
        )


def _report(order_type: OrderType, price: float | None, quantity: float = QUANTITY) -> OrderReport:
    return OrderReport(
        "tfx1", "9", SYMBOL, Side.BUY, order_type, quantity, 0.0, OrderStatus.OPEN, 1, price
    )


JOURNALED = Order("tfx1", SYMBOL, Side.BUY, QUANTITY, OrderType.LIMIT, LIMIT, tag="entry")


@pytest.mark.parametrize(
    ("report", "price", "quantity"),
    [
        (_report(OrderType.LIMIT, MOVED), MOVED, QUANTITY),  # moved: the venue's price
        (_report(OrderType.LIMIT, MOVED, 0.02), MOVED, 0.02),  # and its quantity
        (_report(OrderType.LIMIT, None), LIMIT, QUANTITY),  # no price said: the journal's
        (_report(OrderType.LIMIT, 0.0), LIMIT, QUANTITY),
        (_report(OrderType.LIMIT, float("nan")), LIMIT, QUANTITY),
        (_report(OrderType.STOP, MOVED), LIMIT, QUANTITY),  # another kind's price: not taken
    ],
)
def test_an_adopted_order_is_the_journals_at_the_venues_price_and_quantity(
    report: OrderReport, price: float, quantity: float
) -> None:
    adopted = adopted_order(report, JOURNALED)
    assert (adopted.price, adopted.quantity, adopted.tag) == (price, quantity, "entry")


def test_an_adopted_order_the_journal_never_held_is_the_reports() -> None:
    adopted = adopted_order(_report(OrderType.LIMIT, MOVED), None)
    assert (adopted.client_order_id, adopted.price, adopted.tag) == ("tfx1", MOVED, "adopted")
