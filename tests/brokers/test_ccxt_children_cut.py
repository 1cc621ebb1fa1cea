"""A bracket entry resting part-filled at a ccxt venue whose children the engine cuts to a smaller
position (``Engine._cap_children``): the venue's children are its fills less the cut, never
grown back over it, and a child cut to nothing takes the rest of its entry with it.

The ccxt broker places and grows a bracket's children itself as its entry fills
(``_keep_protected``). The engine tells it each cut as the amount taken off
(``ChildCutter.cut_child``): the broker may have seen more of the entry fill than the engine
had, so a size alone cannot say it. A limit buy of 0.1 fills 0.04; a plain sell of 0.01 leaves
0.03 and the children are cut to it; the entry fills its other 0.06: the position is 0.09, and
so are the children at the venue and in the engine. Sold whole (0.04), the children are cut to
nothing: the engine cancels them and the rest of the entry, whose fills would have no stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.brokers.harness import BOT, ORDER_PATH, START_PRICE, VenueHarness, harness_for
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus, OrderType

STOP, TARGET, LIMIT = 48_000.0, 52_000.0, 50_500.0
FUTURES = ("binance-usdm", "bybit")


def _engine(harness: VenueHarness, sold: float) -> tuple[Engine, Journal, Callable[[int], None]]:
    """A live engine on the harness's broker (``follows-brackets``: it places the children)
    whose strategy buys 0.1 at limit 50,500 with SL/TP on its first bar (the venue fills 0.4 of
    it at once, the rest rests) and sells ``sold`` at market on its second; and a function
    running its i-th bar."""
    harness.fake.faults.inject(
        "partial_fill", path=ORDER_PATH[harness.name], method="POST", fraction=0.4
    )
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    symbol = harness.symbol
    strategy = Scripted(
        {
            0: lambda ctx, _bar: ctx.buy(
                symbol,
                0.1,
                order_type=OrderType.LIMIT,
                price=LIMIT,
                stop_loss=STOP,
                take_profit=TARGET,
            ),
            1: lambda ctx, _bar: ctx.sell(symbol, sold),
        }
    )
    broker = harness.broker
    config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
    engine = Engine(config, strategy, broker, journal, venue=broker, brackets=broker)
    start = int(time.time()) // 60 * 60 - 120

    def run(i: int) -> None:
        price = START_PRICE
        engine.run([Bar(symbol, 60, start + 60 * i, price, price, price, price, 1.0)])

    return engine, journal, run


def _until(engine: Engine, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; working: {engine.open_orders()}")
        engine.pump()
        time.sleep(0.02)


def _venue_size(harness: VenueHarness, client_order_id: str) -> float | None:
    report = harness.broker.query_order(client_order_id)
    return None if report is None or report.status is not OrderStatus.OPEN else report.quantity


def _engine_children(engine: Engine) -> dict[str, float]:
    return {
        w.order.client_order_id: round(w.order.quantity - w.filled, 8)
        for w in engine.book
        if w.order.parent_id is not None
    }


def _entry(journal: Journal) -> str:
    ((entry,),) = journal.query("SELECT client_order_id FROM orders WHERE stop_loss IS NOT NULL")
    return str(entry)


@pytest.mark.parametrize("name", FUTURES)
def test_a_cut_child_grows_by_the_entrys_later_fills_less_the_cut(
    name: str, tmp_path: Path
) -> None:
    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, run = _engine(harness, 0.01)
        run(0)
        entry = _entry(journal)
        children = [f"{entry}-sl", f"{entry}-tp"]
        _until(
            engine, lambda: all(_venue_size(harness, c) == pytest.approx(0.04) for c in children)
        )
        run(1)  # the sell of 0.01: the children are cut to 0.03
        _until(
            engine, lambda: all(_venue_size(harness, c) == pytest.approx(0.03) for c in children)
        )
        assert _engine_children(engine) == {c: pytest.approx(0.03) for c in children}
        harness.trade_through(50_300.0)  # the entry fills its other 0.06
        _until(engine, lambda: entry not in engine.book)
        time.sleep(1.0)  # the broker's own protection after the entry's last fill
        engine.pump()
        held = engine.position(harness.symbol).quantity
        assert held == pytest.approx(0.09)
        sizes = {c: _venue_size(harness, c) for c in children}
        assert sizes == {c: pytest.approx(0.09) for c in children}, sizes  # was 0.1 at the venue
        assert _engine_children(engine) == {c: pytest.approx(0.09) for c in children}


@pytest.mark.parametrize("name", FUTURES)
def test_children_cut_to_nothing_take_the_rest_of_their_entry_with_them(
    name: str, tmp_path: Path
) -> None:
    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, run = _engine(harness, 0.04)
        run(0)
        entry = _entry(journal)
        children = [f"{entry}-sl", f"{entry}-tp"]
        _until(
            engine, lambda: all(_venue_size(harness, c) == pytest.approx(0.04) for c in children)
        )
        run(1)  # the sell of all 0.04: the children are cut to nothing
        _until(engine, lambda: not _engine_children(engine))
        harness.trade_through(50_300.0)  # the entry would fill its other 0.06 here
        time.sleep(1.0)
        engine.pump()
        held = engine.position(harness.symbol).quantity
        stops = [o for o in harness.broker.open_orders() if o.parent_id == entry]
        assert held == 0.0, f"a long of {held:g}, stop-loss children at the venue: {stops}"
        assert not engine.open_orders()
        report = harness.broker.query_order(entry)
        assert report is not None and report.status is OrderStatus.CANCELLED
        assert report.filled_quantity == pytest.approx(0.04)
        said = journal.query("SELECT message FROM events WHERE kind = 'bracket_entry_cancelled'")
        assert len(said) == 1 and entry in said[0][0], said
