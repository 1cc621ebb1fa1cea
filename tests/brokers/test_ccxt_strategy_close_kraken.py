"""A strategy's ``ctx.close`` on Kraken spot through the real ccxt broker. Kraken has no
OCO: the bracket's stop-loss rests at the venue, its take-profit is watched by the broker,
which, when the price reaches it, lifts the stop at the venue and sells at market under the
take-profit's id. The account holds a person's own bitcoin beside the bot's.

What a careful user expects: the bot sells what it bought once, never the person's coins.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from tests.brokers.harness import BOT, QUANTITY, START_PRICE, VenueHarness, harness_for
from tests.brokers.test_ccxt_flatten_beside_resting_sell import _events, _pump_for, _until
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus

PERSONS = Decimal("0.5")
STOP, TARGET = 48_000.0, 52_000.0
CANCEL = {"path": "/0/private/CancelOrder", "method": "POST"}


@contextmanager
def _kraken(tmp_path: Path) -> Iterator[VenueHarness]:
    with harness_for("kraken", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        with harness.fake.state.lock:
            harness.fake.account().balances["XXBT"] = PERSONS
        yield harness


class _Bot:
    def __init__(self, harness: VenueHarness) -> None:
        self.harness = harness
        self.symbol = symbol = harness.symbol
        self.journal = Journal(":memory:")
        start_test_run(self.journal, "live", bot=BOT, mode="live", timeframe_s=60)
        config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)

        def buy(ctx: StrategyContext, _bar: Bar) -> None:
            ctx.buy(symbol, QUANTITY, stop_loss=STOP, take_profit=TARGET)

        def close(ctx: StrategyContext, _bar: Bar) -> None:
            ctx.close(symbol)

        self.strategy = Scripted({0: buy, 1: close})
        broker = harness.broker
        self.engine = engine = Engine(
            config, self.strategy, broker, self.journal, venue=broker, brackets=broker
        )
        self.ts = int(time.time()) // 60 * 60 - 600
        self.next_bar()
        entry = engine.last_order_id
        self.guards = (f"{entry}-sl", f"{entry}-tp")

        def open_(cid: str) -> bool:
            report = broker.query_order(cid)
            return report is not None and report.status is OrderStatus.OPEN

        _until(engine, lambda: all(open_(g) for g in self.guards), "the guards", timeout=20.0)
        _until(engine, lambda: len(engine.open_orders()) == 2, "the guards in the book")

    def next_bar(self) -> None:
        px = START_PRICE
        self.engine.run([Bar(self.symbol, 60, self.ts, px, px, px, px, 1.0)])
        self.ts += 60

    def btc(self) -> Decimal:
        return Decimal(self.harness.fake.balance("XXBT"))


def _cancels_asked(harness: VenueHarness) -> int:
    return sum(1 for r in harness.fake.requests if r.path == CANCEL["path"])


def test_kraken_close_with_a_slow_cancel_sells_once(tmp_path: Path) -> None:
    with _kraken(tmp_path) as harness:
        bot = _Bot(harness)
        engine, symbol = bot.engine, bot.symbol
        held = Decimal(str(engine.position(symbol).quantity))
        assert bot.btc() == PERSONS + held
        harness.fake.faults.inject("latency", delay_ms=800, times=None, **CANCEL)
        bot.next_bar()  # the strategy closes
        [(_message, data)] = _events(bot.journal, "close_waits")
        assert f"{bot.guards[0]}" in data["waiting_for"]
        _until(engine, lambda: engine.position(symbol).quantity == 0.0, "flat", timeout=20.0)
        _pump_for(engine, 1.0)
        assert bot.btc() == PERSONS
        assert not engine.open_orders()


def test_kraken_close_while_the_watched_target_lifts_its_stop_journals_no_refusal(
    tmp_path: Path,
) -> None:
    """The price reaches the watched take-profit: the broker lifts the stop at the venue (its
    cancel slow) to sell under the take-profit's id. The strategy closes meanwhile: the
    take-profit's cancel is answered "cancelled" by the broker at once, the lifted stop's too
    (the bot asked both); the close then sells the position, and the take-profit's sell does
    not go. The stop used to be reported refused by the venue ("lifted … which ended
    cancelled"): a rejection counted, ``stop_refused`` and a stop-refused close journaled for a
    position the strategy was closing."""
    with _kraken(tmp_path) as harness:
        bot = _Bot(harness)
        engine, symbol = bot.engine, bot.symbol
        held = Decimal(str(engine.position(symbol).quantity))
        harness.fake.faults.inject("latency", delay_ms=1500, times=None, **CANCEL)
        before = _cancels_asked(harness)
        harness.trade_through(TARGET + 100.0)
        deadline = time.monotonic() + 5.0
        while _cancels_asked(harness) == before:  # the lift's cancel reached the venue
            assert time.monotonic() < deadline, "the watched take-profit did not act"
            time.sleep(0.02)
        bot.next_bar()  # the strategy closes while the lift is on its way
        _until(engine, lambda: engine.position(symbol).quantity <= 0.0, "flat", timeout=20.0)
        _pump_for(engine, 4.0)  # whatever else the venue does
        sold = [
            o
            for o in harness.fake.orders()
            if o.side == "sell" and o.vol_exec > 0 and o.account == harness.fake.api_key
        ]
        assert sum((o.vol_exec for o in sold), Decimal(0)) == held, [
            (o.cl_ord_id, o.ordertype, o.vol_exec) for o in sold
        ]
        assert bot.btc() == PERSONS  # the person's coins untouched
        assert engine.position(symbol).quantity == 0.0
        # The journal tells it as it was: the strategy's close (or the take-profit) sold the
        # position; no stop-loss was refused by the venue.
        alarms = bot.journal.query(
            "SELECT kind, message FROM events WHERE kind IN "
            "('order_rejected', 'stop_refused', 'stop_refused_close') ORDER BY id"
        )
        assert alarms == [], alarms
        tags = [tag for (tag,) in bot.journal.query("SELECT tag FROM orders WHERE side = 'sell'")]
        assert "stop-refused" not in tags, tags
