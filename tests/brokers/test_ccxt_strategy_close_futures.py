"""A strategy's ``ctx.close`` through the real ccxt broker on the fake futures venues
(Binance USDⓈ-M, Bybit linear): a resting limit sell of the strategy's own (with and without
the entry's bracket), the close's cancel slowed at the venue's door, the limit trading through
before the cancel lands; and a reversal (``close`` + ``sell``) while the close waits.

What a careful user expects: never short, one exit of what was held, the wait ends (its
``close_waits`` event says so) and the strategy's later orders on the symbol are sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import BOT, QUANTITY, START_PRICE, VenueHarness
from tests.brokers.test_ccxt_flatten_beside_resting_sell import (
    ASK,
    CANCEL_METHOD,
    CANCEL_PATH,
    _at,
    _events,
    _pump_for,
    _sells,
    _until,
    _venue,
    _venue_status,
    _watch,
)
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus, OrderType

FUTURES = ("binance-usdm", "bybit")
DELAY_MS = 900
SL, TP = 45_000.0, 60_000.0  # the bracket's guards: far from where the cases trade


class _Bot:
    """A live engine on the harness's broker: bar 0 buys ``QUANTITY`` (``bracket``: with SL/TP),
    bar 1 rests a limit sell of all it holds at ``ASK``; ``next_bar`` hands it the next bar."""

    def __init__(self, harness: VenueHarness, *, bracket: bool, rest: float | None = None) -> None:
        self.harness = harness
        self.symbol = symbol = harness.symbol
        self.journal = Journal(":memory:")
        start_test_run(self.journal, "live", bot=BOT, mode="live", timeframe_s=60)
        config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)

        def buy(ctx: StrategyContext, _bar: Bar) -> None:
            if bracket:
                ctx.buy(symbol, QUANTITY, stop_loss=SL, take_profit=TP)
            else:
                ctx.buy(symbol, QUANTITY)

        def rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
            quantity = ctx.position(symbol).quantity if rest is None else rest
            ctx.sell(symbol, quantity, order_type=OrderType.LIMIT, price=ASK)

        self.strategy = Scripted({0: buy, 1: rest_a_sell})
        broker = harness.broker
        self.engine = Engine(
            config, self.strategy, broker, self.journal, venue=broker, brackets=broker
        )
        self.ts = int(time.time()) // 60 * 60 - 600
        self.next_bar()
        _until(self.engine, lambda: self.engine.position(symbol).quantity > 0.0, "the buy")
        if bracket:
            entry = self.engine.last_order_id
            guards = (f"{entry}-sl", f"{entry}-tp")
            _until(
                self.engine,
                lambda: all(_venue_status(harness, g) is OrderStatus.OPEN for g in guards),
                "the guards at the venue",
            )
        self.next_bar()
        [self.sell] = [o.client_order_id for o in self.engine.open_orders() if not o.parent_id]
        _until(
            self.engine,
            lambda: _venue_status(harness, self.sell) is OrderStatus.OPEN,
            "the limit sell open at the venue",
        )

    def next_bar(self) -> None:
        px = START_PRICE
        self.engine.run([Bar(self.symbol, 60, self.ts, px, px, px, px, 1.0)])
        self.ts += 60

    def on_next_bar(self, action: Callable[[StrategyContext, Bar], None]) -> None:
        self.strategy.actions[len(self.strategy.seen)] = action
        self.next_bar()

    def slow_cancels(self) -> None:
        name = self.harness.name
        self.harness.fake.faults.inject(
            "latency",
            path=CANCEL_PATH[name],
            method=CANCEL_METHOD[name],
            delay_ms=DELAY_MS,
            times=None,
        )


def _sent_after(journal: Journal, rowid: int) -> list[tuple[str, float, str]]:
    rows = journal.query(
        "SELECT side, quantity, tag FROM orders WHERE parent_id IS NULL AND rowid > ? "
        "ORDER BY rowid",
        rowid,
    )
    return [(str(side), float(quantity), str(tag)) for side, quantity, tag in rows]


def _last_rowid(journal: Journal) -> int:
    [(rowid,)] = journal.query("SELECT COALESCE(MAX(rowid), 0) FROM orders")
    return int(rowid)


@pytest.mark.parametrize("bracket", [False, True], ids=["bare", "bracketed"])
@pytest.mark.parametrize("venue", FUTURES)
def test_resting_sell_fills_before_its_cancel_lands_wait_ends_and_next_orders_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, venue: str, bracket: bool
) -> None:
    with _venue(venue, tmp_path) as harness:
        bot = _Bot(harness, bracket=bracket)
        engine, journal, symbol = bot.engine, bot.journal, bot.symbol
        taken = _watch(harness, monkeypatch, bot.sell)
        bot.slow_cancels()
        bot.on_next_bar(lambda ctx, _bar: ctx.close(symbol))
        [(_message, data)] = _events(journal, "close_waits")
        assert data == {"symbol": symbol, "waiting_for": [bot.sell], "tag": "close"}
        _pump_for(engine, 0.25)  # the cancel is at the venue's door
        harness.trade_through(ASK + 500)  # the resting sell fills before its cancel lands
        _until(
            engine,
            lambda: engine.position(symbol).quantity == 0.0 and not engine.open_orders(),
            "flat",
        )
        _pump_for(engine, 1.5)  # the late cancel's answer, whatever it brings
        assert _venue_status(harness, bot.sell) is OrderStatus.FILLED
        assert _sells(taken) == [], "a close went beside the resting sell"
        assert _at(harness) == 0  # flat at the venue, never short
        # The strategy buys again on its next bar: the order goes (nothing holds it).
        before = _last_rowid(journal)
        bot.on_next_bar(lambda ctx, _bar: ctx.buy(symbol, QUANTITY))
        _pump_for(engine, 0.5)
        assert _sent_after(journal, before) == [("buy", QUANTITY, "")], (
            "the strategy's buy was held behind a close that waits for an order already filled"
        )
        _until(engine, lambda: engine.position(symbol).quantity > 0.0, "the new buy")
        # The wait is over: the strategy's close had nothing left to close, and says so.
        said = _events(journal, "close_waits")
        assert len(said) == 2, f"the close still waits: {said}"
        assert "nothing is left" in said[1][0]


@pytest.mark.parametrize("venue", FUTURES)
def test_reversal_while_the_close_waits_ends_short_what_was_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, venue: str
) -> None:
    """``close`` + ``sell(2 * QUANTITY)``: the end position is short 2 * QUANTITY, whether the
    resting sell's cancel is confirmed (the close sells the long) or it fills first."""
    with _venue(venue, tmp_path) as harness:
        bot = _Bot(harness, bracket=True)
        engine, journal, symbol = bot.engine, bot.journal, bot.symbol
        bot.slow_cancels()
        before = _last_rowid(journal)

        def reverse(ctx: StrategyContext, _bar: Bar) -> None:
            ctx.close(symbol)
            ctx.sell(symbol, 2 * QUANTITY)

        bot.on_next_bar(reverse)
        assert _sent_after(journal, before) == []  # both held while the cancel is on its way
        _until(engine, lambda: _venue_status(harness, bot.sell) is OrderStatus.CANCELLED, "cxl")
        _until(engine, lambda: engine.position(symbol).quantity < 0.0, "the reversal")
        _pump_for(engine, 0.5)
        assert _sent_after(journal, before) == [
            ("sell", QUANTITY, "close"),
            ("sell", 2 * QUANTITY, ""),
        ]
        assert engine.position(symbol).quantity == pytest.approx(-2 * QUANTITY)
        assert _at(harness) == Decimal(str(-2 * QUANTITY))


@pytest.mark.parametrize("bracket", [False, True], ids=["bare", "bracketed"])
@pytest.mark.parametrize("venue", FUTURES)
def test_reversal_when_the_resting_sell_fills_first_ends_short_what_was_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, venue: str, bracket: bool
) -> None:
    with _venue(venue, tmp_path) as harness:
        bot = _Bot(harness, bracket=bracket)
        engine, journal, symbol = bot.engine, bot.journal, bot.symbol
        bot.slow_cancels()
        before = _last_rowid(journal)

        def reverse(ctx: StrategyContext, _bar: Bar) -> None:
            ctx.close(symbol)
            ctx.sell(symbol, 2 * QUANTITY)

        bot.on_next_bar(reverse)
        _pump_for(engine, 0.25)
        harness.trade_through(ASK + 500)
        _until(engine, lambda: engine.position(symbol).quantity < 0.0, "the reversal")
        _pump_for(engine, 1.5)
        assert _sent_after(journal, before) == [("sell", 2 * QUANTITY, "")]
        assert engine.position(symbol).quantity == pytest.approx(-2 * QUANTITY)
        assert _at(harness) == Decimal(str(-2 * QUANTITY))


PART = 0.004  # the strategy's resting sell takes profit on part of the position


@pytest.mark.parametrize("venue", ("binance-spot", *FUTURES))
def test_part_exit_filled_before_its_cancel_lands_the_close_sells_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, venue: str
) -> None:
    """Long ``QUANTITY`` (no bracket), a limit sell of ``PART`` resting; the strategy closes
    and the limit trades through before its cancel lands. The close must still sell the rest
    (what the bot holds once the sell has ended), once."""
    with _venue(venue, tmp_path) as harness:
        bot = _Bot(harness, bracket=False, rest=PART)
        engine, symbol = bot.engine, bot.symbol
        held = engine.position(symbol).quantity
        taken = _watch(harness, monkeypatch, bot.sell)
        bot.slow_cancels()
        bot.on_next_bar(lambda ctx, _bar: ctx.close(symbol))
        _pump_for(engine, 0.25)
        harness.trade_through(ASK + 500)  # the part exit fills before its cancel lands
        _until(engine, lambda: _venue_status(harness, bot.sell) is OrderStatus.FILLED, "fill")
        deadline = time.monotonic() + 6.0
        while engine.position(symbol).quantity != 0.0 and time.monotonic() < deadline:
            _pump_for(engine, 0.1)
        _pump_for(engine, 0.5)
        closes = [t for t in _sells(taken) if t.type == "MARKET"]
        assert [c.quantity for c in closes] == [Decimal(str(held)) - Decimal(str(PART))], (
            f"the strategy's close of the rest was never sent; the bot holds "
            f"{engine.position(symbol).quantity} with nothing working: {engine.open_orders()}"
        )
        assert engine.position(symbol).quantity == 0.0
        assert _at(harness) == 0  # flat; on spot the person's coins untouched
