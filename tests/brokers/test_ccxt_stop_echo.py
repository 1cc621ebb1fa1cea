"""A moved stop is booked at the trigger the venue says it holds, through the ccxt broker against
the fake Binance USDⓈ-M: the fake holds conditional triggers on a coarser step than its
PRICE_FILTER tick (``SymbolSpec.trigger_step``), the moved stop's new order answers with the
trigger it holds, and the broker's "amended" update carries it (``OrderUpdate.price``)."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from tests.brokers.harness import (
    START_PRICE,
    VenueHarness,
    coinless_spot,
    harness_for,
    updates,
    wait_children_open,
)
from tests.brokers.stop_movers import Mover
from tests.brokers.test_ccxt_trailing_native import _bar, _guarded, _stop_price, _until
from tradefleet_plugins.brokers.ccxt_broker import _held_price
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderStatus, OrderUpdate

SL = 48_000.0
ASKED = 49_000.2  # on the market's 0.10 tick
HELD = 49_000.0  # on the venue's 0.5 trigger step


def _working_triggers(harness: VenueHarness) -> list[Decimal]:
    state = harness.fake.state
    with state.lock:
        return [a.trigger_price for a in state.usdm.algo_orders.values() if a.status == "NEW"]


def _moved_stop(harness: VenueHarness) -> tuple[Engine, Journal, str]:
    """A live engine on ``harness`` long with its stop-loss at 48,000 (``_guarded``), whose
    trailing plugin then moved it to 49,000.2: (engine, journal, the stop's id), the move
    answered."""
    engine, journal, stop = _guarded(harness, Mover(harness.symbol, {1: ASKED}))
    engine.run([_bar(harness, 1, START_PRICE)])  # the plugin moves the stop to 49,000.2
    _until(engine, lambda: _stop_price(engine) not in (None, SL))
    return engine, journal, stop


def test_the_trigger_the_venue_holds_is_booked_not_the_one_asked(tmp_path: Path) -> None:
    with harness_for("binance-usdm", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        state = harness.fake.state
        with state.lock:
            state.usdm.symbols["BTCUSDT"].trigger_step = Decimal("0.5")
        engine, journal, stop = _moved_stop(harness)
        broker = harness.broker
        symbol = harness.symbol
        # The old stop cancelled once the new one works; the new one on the venue's step.
        _until(engine, lambda: _working_triggers(harness) == [Decimal("49000.0")])
        assert _stop_price(engine) == HELD  # the book: what the venue holds
        [(price,)] = journal.query("SELECT price FROM orders WHERE client_order_id = ?", stop)
        assert price == HELD
        [(reason,)] = journal.query(
            "SELECT reason FROM order_updates WHERE reason LIKE 'stop moved%'"
        )
        assert reason == "stop moved from 48000 to 49000 by trail (49000.2 asked)"
        [(said,)] = journal.query("SELECT message FROM events WHERE kind = 'stop_move_venue_price'")
        assert said == f"{stop}: the venue holds 49000 where 49000.2 was asked"
        report = broker.query_order(stop)
        assert report is not None and report.status is OrderStatus.OPEN
        assert report.price == pytest.approx(HELD)

        # The position is protected at the venue's trigger: a fall through it closes there.
        harness.trade_through(48_990.0)
        _until(engine, lambda: engine.position(symbol).quantity == 0.0)
        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss"


def test_the_held_price_read_from_an_answer() -> None:
    assert _held_price({"triggerPrice": 49_000.0, "price": None}, trigger=True) == 49_000.0
    assert _held_price({"stopPrice": "48000.00", "price": "0"}, trigger=True) == 48_000.0
    assert _held_price({"price": 51_000.0}, trigger=False) == 51_000.0
    # Not said (Bybit's and Kraken's amend answers: ids only; ccxt omits a zero).
    assert _held_price({"id": "1", "triggerPrice": None}, trigger=True) is None
    assert _held_price({"price": 51_000.0, "stopPrice": 0}, trigger=True) is None
    assert _held_price({}, trigger=False) is None
    # Said, but no number: NaN, which the engine says it cannot book.
    held = _held_price({"triggerPrice": "n/a"}, trigger=True)
    assert held is not None and held != held


def test_the_amended_update_carries_the_price() -> None:
    update = OrderUpdate("x", OrderStatus.OPEN, 0, "amended", price=1.5)
    assert update.price == 1.5 and OrderUpdate("x", OrderStatus.OPEN, 0).price is None


def _amended(harness: VenueHarness, cid: str) -> list[OrderUpdate]:
    return [u for u in updates(harness.events, cid) if u.reason == "amended"]


def _has_amended(harness: VenueHarness, cid: str, _event: object) -> bool:
    return bool(_amended(harness, cid))


def test_a_spot_oco_move_answers_with_the_prices_its_new_list_holds(tmp_path: Path) -> None:
    """Binance spot moves a stop of an OCO list by placing the list again: each leg's
    "amended" answer carries the price the new list's order report says it holds."""
    with coinless_spot(tmp_path) as spot:
        entry = "echo1"
        order = spot.order(entry, stop_loss=SL, take_profit=52_000.0)
        spot.answer(spot.broker.submit(order))
        assert spot.wait_final(entry).status is OrderStatus.FILLED
        wait_children_open(spot, spot.broker, entry, spot.held(entry))
        spot.broker.amend(f"{entry}-sl", None, 48_500.0)
        for leg, price in (("sl", 48_500.0), ("tp", 52_000.0)):
            cid = f"{entry}-{leg}"
            spot.wait_for(partial(_has_amended, spot, cid))
            [amended] = _amended(spot, cid)
            assert amended.price == price, leg


def _bybit_triggers(harness: VenueHarness) -> list[Decimal]:
    state = harness.fake.state
    with state.lock:
        return [o.trigger_price for o in state.orders.values() if o.status == "Untriggered"]


def test_bybit_s_amend_answer_names_no_price_so_the_moved_stop_is_looked_up(
    tmp_path: Path,
) -> None:
    """Bybit answers an amend with ids only: the broker looks the order up once and books the
    trigger the venue holds (here on a 0.5 step), not the one asked."""
    with harness_for("bybit", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        state = harness.fake.state
        with state.lock:
            state.instruments["BTCUSDT"].trigger_step = Decimal("0.5")
        engine, journal, stop = _moved_stop(harness)
        assert _bybit_triggers(harness) == [Decimal("49000.0")]
        assert _stop_price(engine) == HELD
        [(price,)] = journal.query("SELECT price FROM orders WHERE client_order_id = ?", stop)
        assert price == HELD
        [(said,)] = journal.query("SELECT message FROM events WHERE kind = 'stop_move_venue_price'")
        assert said == f"{stop}: the venue holds 49000 where 49000.2 was asked"
