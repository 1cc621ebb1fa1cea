"""A take-profit filled in part on a netting futures account holding a pyramid of two brackets
(review R44), through the real ccxt broker on the fake Bybit. The part's own stop-loss is cut
to what is held, not the oldest entry's: cut oldest first, after the newer take-profit executed
0.004 of 0.01 the older stop-loss was cut to 0.006; when that take-profit filled its rest (a
reduce-only limit resting part-filled) its own stop-loss was cancelled (one-cancels-other), and
the 0.01 left ran under a stop of 0.006.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.ccxt_venue_reads import pump_for
from tests.brokers.harness import BOT, QUANTITY, START_PRICE, VenueHarness
from tests.brokers.test_ccxt_flatten_beside_resting_sell import _until, _venue, _venue_status
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.brackets import STOP_LOSS_TAG
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus

SL, TP_OLD, TP_NEW = 48_000.0, 52_000.0, 51_000.0
PART = Decimal("0.004")


def _bybit_fill(harness: VenueHarness, link_id: str, quantity: Decimal) -> None:
    state = harness.fake.state
    with state.lock:
        [order] = [o for o in state.orders.values() if o.link_id == link_id and o.is_open]
        state._fill(order, quantity, order.price, True)


def _holds(engine: Engine, symbol: str, quantity: float) -> Callable[[], bool]:
    return lambda: engine.position(symbol).quantity == pytest.approx(quantity)


def _venue_stops(harness: VenueHarness, stop_ids: tuple[str, ...]) -> Decimal:
    """What the open stop-losses at the venue still close, together."""
    state = harness.fake.state
    with state.lock:
        return sum(
            (
                o.qty - o.cum_qty
                for o in state.orders.values()
                if any(o.link_id.startswith(s) for s in stop_ids) and o.is_open
            ),
            Decimal(0),
        )


def test_a_pyramids_take_profit_filled_in_part_then_whole_leaves_the_rest_under_a_stop(
    tmp_path: Path,
) -> None:
    with _venue("bybit", tmp_path) as harness:
        symbol = harness.symbol
        journal = Journal(":memory:")
        start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)

        def older(ctx: StrategyContext, _bar: Bar) -> None:
            ctx.buy(symbol, QUANTITY, stop_loss=SL, take_profit=TP_OLD)

        def newer(ctx: StrategyContext, _bar: Bar) -> None:
            ctx.buy(symbol, QUANTITY, stop_loss=SL, take_profit=TP_NEW)

        broker = harness.broker
        config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
        engine = Engine(
            config, Scripted({0: older, 1: newer}), broker, journal, venue=broker, brackets=broker
        )
        ts = int(time.time()) // 60 * 60 - 600
        entries = []
        for i in range(2):
            px = START_PRICE
            engine.run([Bar(symbol, 60, ts + 60 * i, px, px, px, px, 1.0)])
            _until(engine, _holds(engine, symbol, QUANTITY * (i + 1)), "the entry")
            entries.append(engine.last_order_id)
        guards = [f"{e}-{k}" for e in entries for k in ("sl", "tp")]
        _until(
            engine,
            lambda: all(_venue_status(harness, g) is OrderStatus.OPEN for g in guards),
            "the guards at the venue",
        )
        stops = (f"{entries[0]}-sl", f"{entries[1]}-sl")
        newer_tp = f"{entries[1]}-tp"

        _bybit_fill(harness, newer_tp, PART)  # the newer take-profit executes 0.004
        _until(
            engine,
            lambda: engine.position(symbol).quantity == pytest.approx(2 * QUANTITY - 0.004),
            "the part",
        )
        pump_for(engine, 1.0)
        _bybit_fill(harness, newer_tp, Decimal(str(QUANTITY)) - PART)  # and then the rest
        _until(
            engine,
            lambda: engine.position(symbol).quantity == pytest.approx(QUANTITY),
            "the rest",
        )
        pump_for(engine, 1.5)
        held = engine.position(symbol).quantity
        in_engine = sum(
            w.order.quantity - w.filled
            for w in engine.book
            if w.order.parent_id is not None and w.order.tag == STOP_LOSS_TAG
        )
        at_venue = _venue_stops(harness, stops)
        assert at_venue == Decimal(str(held)), f"held {held}, stop-losses at the venue {at_venue}"
        assert in_engine == pytest.approx(held)
        # The newer stop ended one-cancels-other, not "outside the bot": the older protects.
        said = journal.query("SELECT message FROM events WHERE kind = 'stop_cancelled'")
        assert said == [], said
