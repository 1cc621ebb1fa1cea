"""On Binance USDⓈ-M a reduce-only order is exempt from the minimum notional, so a bracket
child below it works at the venue (``ccxt_orders.create_args``); the engine books the same
child by the same rule (``Engine._child_placeable``, ``limit_problem``), so its book, journal,
status and risk context hold every child the venue works.

A limit buy of 0.01 at 50,500 with a stop-loss at 48,000 fills 0.001 first (the venue's
minimum quantity; a stop of 0.001 at 48,000 is 48 USDT, under the 100 USDT minimum notional).
The broker places the stop-loss and take-profit of 0.001 at once (reduce-only), and the engine
books them; when the price falls through the stop and the entry's limit, the stop's fill ends
the bracket and the entry's later fill is closed (``bracket_spent``): no position is left
without a stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.brokers.harness import BOT, ORDER_PATH, START_PRICE, VenueHarness, harness_for
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus, OrderType

STOP, TARGET, LIMIT = 48_000.0, 52_000.0, 50_500.0
NAME = "binance-usdm"


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


def _started(harness: VenueHarness) -> tuple[Engine, Journal, str]:
    """A live engine whose limit buy of 0.01 (SL 48,000, TP 52,000) filled 0.001 and whose
    broker placed the entry's stop-loss at the venue; (engine, journal, entry id)."""
    harness.fake.faults.inject("partial_fill", path=ORDER_PATH[NAME], method="POST", fraction=0.1)
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    symbol = harness.symbol
    strategy = Scripted(
        {
            0: lambda ctx, _bar: ctx.buy(
                symbol,
                0.01,
                order_type=OrderType.LIMIT,
                price=LIMIT,
                stop_loss=STOP,
                take_profit=TARGET,
            )
        }
    )
    broker = harness.broker
    config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
    engine = Engine(config, strategy, broker, journal, venue=broker, brackets=broker)
    start = int(time.time()) // 60 * 60 - 120
    price = START_PRICE
    engine.run([Bar(symbol, 60, start, price, price, price, price, 1.0)])
    _until(engine, lambda: engine.position(symbol).quantity > 0.0)
    ((entry,),) = journal.query("SELECT client_order_id FROM orders WHERE stop_loss IS NOT NULL")
    _until(engine, lambda: _venue_size(harness, f"{entry}-sl") is not None)
    time.sleep(0.5)
    engine.pump()
    return engine, journal, str(entry)


def test_a_child_working_at_the_venue_is_in_the_engines_book(tmp_path: Path) -> None:
    with harness_for(NAME, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, _journal, entry = _started(harness)
        stop = f"{entry}-sl"
        held = engine.position(harness.symbol).quantity
        venue_stop = _venue_size(harness, stop)
        booked = [w.order.client_order_id for w in engine.book if w.order.parent_id == entry]
        assert held == 0.001 and venue_stop == 0.001
        # The venue works a stop of 0.001 for the position of 0.001: the engine books it.
        assert stop in booked, f"venue: {stop} {venue_stop}; engine's children: {booked}"


def test_a_stop_filled_before_the_engine_booked_it_leaves_no_bare_position(
    tmp_path: Path,
) -> None:
    """The price falls through the stop (48,000) and the entry's limit: the venue fills the
    0.001 stop and the entry's other 0.009. The booked child's fill spends the bracket and the
    engine closes the entry's later fill at market (``bracket_spent``): the bot is flat, or
    protected, or says why not."""
    with harness_for(NAME, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, entry = _started(harness)
        harness.trade_through(47_900.0)
        _until(engine, lambda: entry not in engine.book)
        time.sleep(1.5)  # the broker's own protection after the entry's last fill
        engine.pump()
        _until(engine, lambda: not engine.open_orders() or time.sleep(0.5) is None)
        held = engine.position(harness.symbol).quantity
        stop = _venue_size(harness, f"{entry}-sl")
        said = journal.query(
            "SELECT kind FROM events WHERE kind IN ('bracket_spent', 'stop_refused')"
        )
        assert held == 0.0 or (stop is not None and stop >= held) or said, (
            f"a long of {held:g} with stop {stop} at the venue; events {said}; "
            f"engine book {[(w.order.client_order_id, w.order.quantity) for w in engine.book]}"
        )
