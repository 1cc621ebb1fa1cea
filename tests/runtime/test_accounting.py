"""Equity is cash plus marked positions at every bar, for any sequence of trades."""

from __future__ import annotations

import random

import pytest

from tests.runtime.helpers import Scripted, bar, make_engine
from tradefleet_runtime.model import Bar, Side


def _random_walk(n: int, seed: int, symbol: str = "TEST") -> list[Bar]:
    rng = random.Random(seed)
    price = 100.0
    bars = []
    for i in range(n):
        open_ = price * (1 + rng.gauss(0, 0.002))
        close = open_ * (1 + rng.gauss(0, 0.01))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.004)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.004)))
        bars.append(bar(i, open_, high, low, close, symbol))
        price = close
    return bars


class RandomTrader(Scripted):
    """Buys, sells, reverses and brackets at random, recording cash and positions per bar."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.books: list[tuple[int, float, float, float]] = []  # close_ts, cash, qty, close

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        self.books.append((bar.close_ts, ctx.cash, ctx.position(bar.symbol).quantity, bar.close))
        roll = self.rng.random()
        if roll < 0.08:
            side = self.rng.choice([Side.BUY, Side.SELL])
            stop = bar.close * (0.97 if side is Side.BUY else 1.03)
            target = bar.close * (1.04 if side is Side.BUY else 0.96)
            order = ctx.buy if side is Side.BUY else ctx.sell
            order(bar.symbol, self.rng.uniform(1, 20), stop_loss=stop, take_profit=target)
        elif roll < 0.12:
            ctx.close(bar.symbol)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_equity_is_cash_plus_marked_positions_at_every_bar(seed: int) -> None:
    bars = _random_walk(600, seed)
    strategy = RandomTrader(seed)
    engine = make_engine(strategy, capital=50_000, broker={"fee_bps": 5, "slippage_bps": 2})
    engine.run(bars)
    result = engine.finish()
    assert len(strategy.fills) > 20, "the random trader should trade"
    # The strategy saw cash and quantity *after* the bar's fills; the engine snapshotted equity
    # at the same instant: equity == cash + quantity × close, bar after bar.
    for (close_ts, cash, quantity, close), ts, equity in zip(
        strategy.books, result.equity_ts, result.equity, strict=True
    ):
        assert ts == close_ts
        assert equity == pytest.approx(cash + quantity * close, rel=1e-12, abs=1e-9)
    # Cash reconciles with the fills alone: every unit bought was paid for, fees included.
    cash = 50_000.0
    for fill in strategy.fills:
        sign = 1 if fill.side is Side.BUY else -1
        cash -= sign * fill.quantity * fill.price + fill.fee
    assert engine.portfolio.cash == pytest.approx(cash)
    # Realised P&L of closed trades + open P&L == equity change.
    realized = sum(t.net_pnl for t in result.trades)
    open_pnl = 0.0
    for position in result.open_positions:
        open_pnl += position.quantity * (bars[-1].close - position.average_price)
    open_fees = result.fees - sum(t.fees for t in result.trades)
    assert result.final_equity - 50_000 == pytest.approx(realized + open_pnl - open_fees, abs=1e-6)
