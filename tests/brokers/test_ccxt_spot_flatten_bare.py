"""On spot a flatten cancels the position's stop-loss and take-profit before its close: the two
paths where that could leave the bot's coins unguarded unsaid, or sold twice.

The real ccxt broker against the fake Binance spot (``coinless_spot``: USDT only, or with a
person's own coins beside the bot's, as in walkthrough W21). Found in review (R37).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from tests.brokers.harness import BOT, QUANTITY, START_PRICE, coinless_spot
from tests.brokers.test_ccxt_flatten_keeps_stops import TP, _events, _guarded, _until
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderType

PERSONS = Decimal("0.5")  # a person's own BTC on the account, beside the bot's
CANCEL = {"path": "/api/v3/order", "method": "DELETE"}


def _pump_for(engine: Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        engine.pump()
        time.sleep(0.02)


def test_a_resume_while_the_spot_close_waits_says_the_position_runs_without_its_exits(
    tmp_path: Path,
) -> None:
    """A person halts with flatten, then resumes (a false alarm) before the venue confirmed the
    OCO's cancel. The resume forgets the halt's close; once the cancels land the bot holds the
    coin with neither stop-loss nor take-profit. That used to go unsaid; now a
    ``stop_cancelled`` event says it, naming the exits (the bot does not place them again)."""
    with coinless_spot(tmp_path) as harness:
        engine, journal, guards = _guarded(harness)
        symbol = harness.symbol
        harness.fake.faults.inject("latency", delay_ms=800, times=2, **CANCEL)
        assert engine.halt("alice", "incident", flatten=True)
        [(_, flattened)] = _events(journal, "flattened")
        assert flattened["waiting"] == {symbol: sorted(guards)}
        engine.resume("alice", "false alarm")
        _pump_for(engine, 2.5)  # the OCO's cancel lands (0.8 s)

        held = engine.position(symbol).quantity
        guarded = bool(engine.protective_exits([symbol]))
        after = journal.query(
            "SELECT kind, message FROM events WHERE id > "
            "(SELECT MAX(id) FROM events WHERE kind = 'resumed') ORDER BY id"
        )
        said = [str(m) for _k, m in after if symbol in str(m) and "stop-loss" in str(m)]
        assert held > 0.0 and not guarded  # the person resumed: the strategy's to manage
        assert said, f"nothing said after the resume: {after}"
        [(message, data)] = _events(journal, "stop_cancelled")
        assert data["guards"] == sorted(guards) and data["reason"] == "resumed"
        assert "does not place them again" in message


def test_a_late_entry_on_spot_is_closed_once_its_own_exits_are_cancelled(
    tmp_path: Path,
) -> None:
    """A limit entry with its bracket fills after the halt's cancel was asked (the venue filled
    it first); the broker places its OCO. The late entry's close used to go at once beside
    that OCO: on an account holding a person's coins the close sold those, and the take-profit,
    reached before its cancel landed, sold the bot's. Now the close waits for the OCO's
    cancel and sells what the late fill bought, once."""
    with coinless_spot(tmp_path) as harness:
        with harness.fake.state.lock:
            harness.fake.state.accounts[harness.fake.api_key].spot_free["BTC"] = PERSONS
        symbol = harness.symbol
        journal = Journal(":memory:")
        start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
        config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
        strategy = Scripted(
            {
                0: lambda ctx, _bar: ctx.buy(
                    symbol,
                    QUANTITY,
                    order_type=OrderType.LIMIT,
                    price=49_000.0,
                    stop_loss=48_000.0,
                    take_profit=TP,
                )
            }
        )
        broker = harness.broker
        engine = Engine(config, strategy, broker, journal, venue=broker, brackets=broker)
        now = int(time.time()) // 60 * 60 - 60
        price = START_PRICE
        engine.run([Bar(symbol, 60, now, price, price, price, price, 1.0)])
        entry = engine.last_order_id
        _until(engine, lambda: harness.broker.query_order(entry) is not None)

        # Every cancel takes 1.5 s to reach the venue: the entry's (it fills first), the OCO's.
        harness.fake.faults.inject("latency", delay_ms=1500, times=None, **CANCEL)
        assert engine.halt("alice", "incident", flatten=True)
        harness.trade_through(48_900.0)  # the entry fills before its cancel lands
        deadline = time.monotonic() + 5.0
        while True:  # the broker placed the entry's OCO (the engine hears the fill next)
            with harness.fake.state.lock:
                legs = [o for o in harness.fake.orders("spot") if o.client_order_id[:-3] == entry]
            if len(legs) == 2:
                break
            assert time.monotonic() < deadline, "the entry's OCO never reached the venue"
            time.sleep(0.02)
        engine.pump()  # the late fill: the OCO's cancel asked, and the close?
        harness.trade_through(TP + 500)  # the take-profit is reached before its cancel lands
        _until(
            engine,
            lambda: engine.position(symbol).quantity == 0.0 and not engine.open_orders(),
            timeout=15.0,
        )
        _pump_for(engine, 0.5)

        with harness.fake.state.lock:
            orders = harness.fake.orders("spot")
            [bought] = [o.executed_qty for o in orders if o.client_order_id == entry]
            back = [(o.client_order_id, o.executed_qty) for o in orders if o.side == "BUY"][1:]
            sells = [
                (o.client_order_id, o.type, o.executed_qty) for o in orders if o.side == "SELL"
            ]
        held = bought * Decimal("0.999")  # the buy's 0.1 % fee is taken in the coin bought
        sold = sum((qty for _id, _type, qty in sells), Decimal(0))
        assert (sold, back) == (held, []), (
            f"the bot bought {bought} ({held} held); the venue sold {sells} and bought back "
            f"{back}: {[m for m, _ in _events(journal, 'flattened')]}"
        )
