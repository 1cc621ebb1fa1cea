"""A backtest never fills a reduce-only order past flat (review R43): the paper broker checks
reduce-only as an order fills, against its own account, so the engine's past-flat close never
fires there and a backtest's result is what it was.

Seeded random strategies on a random walk (brackets, kept stop-losses beside closes, reversals,
reduce-only market/limit/stop orders of up to twice the position, orders of an earlier position
left working across reversals, gaps through the stops) produce no ``reduce_only_past_flat``
event and no ``past-flat`` order, and every position the engine holds at each bar is the paper
broker's own. Fails if the paper venue let a reduce-only fill go past flat (its ``_execute``
without the ``reducible`` cap).
"""

from __future__ import annotations

import random

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, make_engine
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderIntent, OrderType, Side

SYMBOL = "TEST"


def _bars(seed: int, count: int) -> list[Bar]:
    rng = random.Random(seed)
    price = 100.0
    bars = []
    for i in range(count):
        gap = rng.choice([0.0, 0.0, 0.0, rng.uniform(-6.0, 6.0)])
        open_ = max(price + gap, 5.0)
        close = max(open_ + rng.uniform(-4.0, 4.0), 5.0)
        high = max(open_, close) + rng.uniform(0.0, 3.0)
        low = max(min(open_, close) - rng.uniform(0.0, 3.0), 1.0)
        bars.append(Bar(SYMBOL, HOUR, T0 + i * HOUR, open_, high, low, close, 1.0))
        price = close
    return bars


def _random_strategy(seed: int) -> Scripted:
    rng = random.Random(seed * 7919)

    def act(ctx: StrategyContext, bar: Bar) -> None:
        held = ctx.position(SYMBOL).quantity
        px = bar[6]
        roll = rng.random()
        size = rng.choice([0.5, 1.0, 1.5])
        if roll < 0.15:
            ctx.buy(SYMBOL, size, stop_loss=px * 0.95, take_profit=px * 1.06)
        elif roll < 0.30:
            ctx.sell(SYMBOL, size, stop_loss=px * 1.05, take_profit=px * 0.94)
        elif roll < 0.42:
            ctx.close(SYMBOL)
        elif roll < 0.52:
            ctx.close(SYMBOL)
            if held >= 0:
                ctx.sell(SYMBOL, size, stop_loss=px * 1.05, take_profit=px * 0.94)
            else:
                ctx.buy(SYMBOL, size, stop_loss=px * 0.95, take_profit=px * 1.06)
        elif roll < 0.70 and held:
            side = Side.SELL if held > 0 else Side.BUY
            kind = rng.choice([OrderType.MARKET, OrderType.LIMIT, OrderType.STOP])
            away = rng.uniform(0.01, 0.05) * px
            price = None
            if kind is OrderType.LIMIT:
                price = px + away if side is Side.SELL else px - away
            elif kind is OrderType.STOP:
                price = px - away if side is Side.SELL else px + away
            quantity = abs(held) * rng.choice([0.5, 1.0, 2.0])
            ctx.submit(OrderIntent(SYMBOL, side, quantity, kind, price=price, reduce_only=True))

    return Scripted({i: act for i in range(400)})


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_paper_backtest_never_fills_a_reduce_only_order_past_flat(seed: int) -> None:
    journal = Journal(":memory:")
    strategy = _random_strategy(seed)
    engine = make_engine(strategy, journal=journal)
    broker = engine.broker
    mismatches = []
    for one in _bars(seed, 400):
        engine.run([one])
        held = broker._held.get(SYMBOL, 0.0)  # type: ignore[attr-defined]  # the venue's own
        if abs(held - engine.position(SYMBOL).quantity) > 1e-9:
            mismatches.append((one.ts, held, engine.position(SYMBOL).quantity))
    fills = journal.query("SELECT COUNT(*) FROM fills")[0][0]
    reduce_only = journal.query("SELECT COUNT(*) FROM orders WHERE reduce_only = 1")[0][0]
    assert fills > 100 and reduce_only > 50  # the scenario trades, and reduces, a lot
    assert journal.query("SELECT COUNT(*) FROM orders WHERE tag = 'past-flat'")[0][0] == 0
    events = journal.query("SELECT message FROM events WHERE kind = 'reduce_only_past_flat'")
    assert events == []
    assert mismatches == []
