"""On spot, a strategy's ``close`` sells once: it waits for the venue to confirm the cancel of
the position's stop-loss and take-profit before it sells.

The real ccxt broker against the fake Binance spot, on an account that holds a person's own
coins beside the bot's (walkthrough W21's account). ``ctx.close`` cancelled the OCO and sold
at once; a take-profit the market reached before the cancel landed sold the bot's coins, and
the close, which no reduce-only caps on spot, sold as many of the person's: twice what the bot
held. The flatten learnt to wait for those cancels (8a3f8a8); the strategy's own close, the
common exit, had not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from tests.brokers.harness import (
    BOT,
    QUANTITY,
    START_PRICE,
    VenueHarness,
    base_balance,
    coinless_spot,
)
from tests.brokers.test_ccxt_flatten_keeps_stops import SL, TP, _events, _until, _venue_status
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus

PERSONS = Decimal("0.5")  # a person's own BTC on the account, beside the bot's
CANCEL = {"path": "/api/v3/order", "method": "DELETE"}


def _flat_bar(symbol: str, ts: int) -> Bar:
    return Bar(symbol, 60, ts, START_PRICE, START_PRICE, START_PRICE, START_PRICE, 1.0)


def _bought_with_exits(harness: VenueHarness) -> tuple[Engine, Journal, Callable[[], None]]:
    """A live bot that bought ``QUANTITY`` with its OCO working at the venue; and the call
    that hands it the next bar, on which its strategy closes the position."""
    with harness.fake.state.lock:
        harness.fake.state.accounts[harness.fake.api_key].spot_free["BTC"] = PERSONS
    symbol = harness.symbol
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)

    def buy(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy(symbol, QUANTITY, stop_loss=SL, take_profit=TP)

    def close(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.close(symbol)

    broker = harness.broker
    engine = Engine(
        config, Scripted({0: buy, 1: close}), broker, journal, venue=broker, brackets=broker
    )
    first = int(time.time()) // 60 * 60 - 120
    engine.run([_flat_bar(symbol, first)])
    entry = engine.last_order_id
    guards = {f"{entry}-sl", f"{entry}-tp"}
    _until(
        engine,
        lambda: (
            all(_venue_status(harness, g) is OrderStatus.OPEN for g in guards)
            and {o.client_order_id for o in engine.open_orders()} == guards
        ),
    )
    return engine, journal, lambda: engine.run([_flat_bar(symbol, first + 60)])


def _sold_and_bought(harness: VenueHarness) -> tuple[Decimal, Decimal]:
    with harness.fake.state.lock:
        orders = harness.fake.orders("spot")
        sold = sum((o.executed_qty for o in orders if o.side == "SELL"), Decimal(0))
        bought = sum((o.executed_qty for o in orders if o.side == "BUY"), Decimal(0))
    return sold, bought


def test_a_target_reached_before_its_cancel_lands_sells_once(tmp_path: Path) -> None:
    with coinless_spot(tmp_path) as harness:
        engine, journal, close_bar = _bought_with_exits(harness)
        symbol = harness.symbol
        held = Decimal(str(engine.position(symbol).quantity))
        harness.fake.faults.inject("latency", delay_ms=800, times=2, **CANCEL)
        close_bar()
        [(_message, data)] = _events(journal, "close_waits")
        assert data["symbol"] == symbol and len(data["waiting_for"]) == 2  # the OCO's two legs
        harness.trade_through(TP + 500)  # the take-profit fills before the cancel is heard
        _until(
            engine,
            lambda: (
                engine.position(symbol).quantity == 0.0
                and not engine.open_orders()
                and "ended" in _events(journal, "close_waits")[-1][1]
            ),
        )
        sold, bought = _sold_and_bought(harness)
        assert sold == held and bought == Decimal(str(QUANTITY))  # one sale of what it bought
        assert sum(base_balance(harness)) == PERSONS  # the person's coins untouched
        assert "nothing is left" in _events(journal, "close_waits")[-1][0]


def test_once_the_cancel_is_confirmed_the_close_sells_what_the_bot_holds(
    tmp_path: Path,
) -> None:
    with coinless_spot(tmp_path) as harness:
        engine, journal, close_bar = _bought_with_exits(harness)
        symbol = harness.symbol
        held = Decimal(str(engine.position(symbol).quantity))
        harness.fake.faults.inject("latency", delay_ms=300, times=2, **CANCEL)
        close_bar()
        assert _events(journal, "close_waits")  # waits: the OCO's cancel is not heard yet
        _until(engine, lambda: engine.position(symbol).quantity == 0.0)
        sold, _bought = _sold_and_bought(harness)
        assert sold == held
        assert sum(base_balance(harness)) == PERSONS
        rows = journal.query("SELECT tag FROM orders WHERE side = 'sell' AND parent_id IS NULL")
        assert [tag for (tag,) in rows] == ["close"]
