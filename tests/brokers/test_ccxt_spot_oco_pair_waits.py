"""Binance spot holds the coin for each resting sell, so a bracket's stop-loss and take-profit
go as one OCO list. When an entry's first part puts one of them below the venue's minimum
notional but not the other, neither is placed (the broker's ``_pair_waits``) and the engine
books neither (``Engine._child_placeable``, ``PairedChildren``): the part waits bare for more
of the entry, as a part too small for its stop does. Once both fit they go as one list.

Limit buy 0.001 at 50,500 (SL 40,000, TP 60,000) fills 0.0001 first (0.00009 held after the
coin fee): 0.00009 x 40,000 = 3.6 USDT < 5 USDT minimum; 0.00009 x 60,000 = 5.4 >= 5."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.brokers.harness import BOT, ORDER_PATH, START_PRICE, VenueHarness, harness_for
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderType

NAME = "binance-spot"


def _until(engine: Engine, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        engine.pump()
        time.sleep(0.02)


def _working_children(harness: VenueHarness, entry: str) -> dict[str, Any]:
    return {
        o.client_order_id: o
        for o in harness.venue_orders()
        if o.client_order_id.startswith(entry + "-") and o.status == "NEW"
    }


def _booked_children(engine: Engine, entry: str) -> list[str]:
    return sorted(w.order.client_order_id for w in engine.book if w.order.parent_id == entry)


@contextmanager
def _first_part(tmp_path: Path) -> Iterator[tuple[VenueHarness, Engine, str]]:
    with harness_for(NAME, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        harness.fake.faults.inject(
            "partial_fill", path=ORDER_PATH[NAME], method="POST", fraction=0.1
        )
        journal = Journal(":memory:")
        start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
        symbol = harness.symbol
        strategy = Scripted(
            {
                0: lambda ctx, _bar: ctx.buy(
                    symbol,
                    0.001,
                    order_type=OrderType.LIMIT,
                    price=50_500.0,
                    stop_loss=40_000.0,
                    take_profit=60_000.0,
                )
            }
        )
        broker = harness.broker
        config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
        engine = Engine(config, strategy, broker, journal, venue=broker, brackets=broker)
        start = int(time.time()) // 60 * 60 - 120
        engine.run(
            [Bar(symbol, 60, start, START_PRICE, START_PRICE, START_PRICE, START_PRICE, 1.0)]
        )
        _until(engine, lambda: engine.position(symbol).quantity > 0.0)
        time.sleep(1.5)  # the broker's protecting step has run (and placed what it would)
        engine.pump()
        ((entry,),) = journal.query(
            "SELECT client_order_id FROM orders WHERE stop_loss IS NOT NULL"
        )
        yield harness, engine, str(entry)


def test_no_take_profit_works_without_its_stop_loss(tmp_path: Path) -> None:
    with _first_part(tmp_path) as (harness, engine, entry):
        held = engine.position(harness.symbol).quantity
        assert 0.0 < held < 0.0001
        # Neither child at the venue, and the engine books neither: they agree.
        assert _working_children(harness, entry) == {}, held
        assert _booked_children(engine, entry) == []


def test_the_children_become_one_oco_list_once_both_fit(tmp_path: Path) -> None:
    with _first_part(tmp_path) as (harness, engine, entry):
        harness.trade_through(50_400.0)  # the entry's rest fills: 0.00099 held
        _until(
            engine,
            lambda: any(cid.startswith(f"{entry}-sl") for cid in _working_children(harness, entry)),
        )
        lists = {cid: o.order_list_id for cid, o in _working_children(harness, entry).items()}
        assert len(lists) == 2 and len(set(lists.values())) == 1, lists
        assert -1 not in lists.values(), lists
        both = sorted(f"{entry}-{role}" for role in ("sl", "tp"))
        _until(engine, lambda: _booked_children(engine, entry) == both)
