"""pre-trade: each check at its boundary (just under, at, just over)."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.pre_trade import PreTrade, correlated_with, correlation, in_hours
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import (
    Bar,
    Instrument,
    Order,
    OrderIntent,
    OrderType,
    Position,
    RiskAction,
    Side,
    Trade,
)
from tradefleet_runtime.plugins.registry import PluginRegistry

TS = int(datetime(2024, 6, 5, 12, 0, tzinfo=UTC).timestamp())  # a Wednesday, noon UTC
A, S, V = RiskAction.APPROVE, RiskAction.SHRINK, RiskAction.VETO


def ctx(
    equity: float = 100_000.0,
    positions: dict[str, Position] | None = None,
    marks: dict[str, float] | None = None,
    ts: int = TS,
    leverage: float = 100.0,
) -> RiskContext:
    return RiskContext(
        ts=ts, equity=equity, cash=equity, start_of_day_equity=equity, peak_equity=equity,
        positions=positions or {}, marks=marks or {"X": 100.0, "Y": 100.0, "Z": 100.0},
        instrument=Instrument("X"), leverage=leverage, initial_equity=equity,
    )  # fmt: skip


def check(intent: OrderIntent, context: RiskContext | None = None, **params: Any) -> Any:
    # Everything off but the check under test, unless a test says otherwise.
    off: dict[str, Any] = {
        "price_band": 0, "max_gross_exposure": 0, "group_cap": 0, "max_correlation": 0,
        "max_open_positions": 0, "max_leverage": 0,
    }  # fmt: skip
    return PreTrade(PreTradeParams(**{**off, **params})).check(intent, context or ctx())


def buy(quantity: float = 1.0, price: float | None = None, symbol: str = "X") -> OrderIntent:
    order_type = OrderType.LIMIT if price is not None else OrderType.MARKET
    return OrderIntent(symbol, Side.BUY, quantity, order_type, price)


@pytest.mark.parametrize(("price", "action"), [(109.99, A), (110.0, A), (110.01, V), (89.99, V)])
def test_price_band(price: float, action: RiskAction) -> None:
    assert check(buy(1, price), price_band=0.10).action is action


@pytest.mark.parametrize(("quantity", "action"), [(9.9, A), (10, A), (10.1, S)])
def test_max_quantity_shrinks(quantity: float, action: RiskAction) -> None:
    decision = check(buy(quantity), max_order_quantity=10)
    assert decision.action is action
    if action is S:
        assert decision.quantity == 10


@pytest.mark.parametrize(("quantity", "action"), [(99, A), (100, A), (101, S)])
def test_max_notional_shrinks(quantity: float, action: RiskAction) -> None:
    decision = check(buy(quantity), max_order_notional=10_000)
    assert decision.action is action
    if action is S:
        assert decision.quantity == pytest.approx(100)


@pytest.mark.parametrize(("quantity", "action"), [(9_999, A), (10_000, A), (10_001, V)])
def test_free_margin_is_leverage_aware(quantity: float, action: RiskAction) -> None:
    # 10:1 on 100,000 with nothing open: 1,000,000 of notional fits, no more.
    assert check(buy(quantity), margin_leverage=10).action is action
    # With 500,000 already open only 500,000 more fits.
    held = ctx(positions={"Y": Position("Y", 5_000, 100.0)})
    assert check(buy(quantity / 2), held, margin_leverage=10).action is action


@pytest.mark.parametrize(("quantity", "action"), [(1_499, A), (1_500, A), (1_501, V)])
def test_gross_exposure_cap(quantity: float, action: RiskAction) -> None:
    assert check(buy(quantity), max_gross_exposure=1.5).action is action


@pytest.mark.parametrize(("quantity", "action"), [(199, A), (200, A), (201, V)])
def test_group_cap(quantity: float, action: RiskAction) -> None:
    # EUR already holds 200 × 100 = 20% of equity; the cap is 40%.
    held = ctx(positions={"Y": Position("Y", 200, 100.0)})
    groups = {"X": "EUR", "Y": "EUR"}
    assert check(buy(quantity), held, group_cap=0.4, groups=groups).action is action
    assert check(buy(quantity, symbol="Z"), held, group_cap=0.4, groups=groups).action is A


def test_max_open_positions() -> None:
    two = {s: Position(s, 1, 100.0) for s in ("X", "Y")}
    three = {**two, "Z": Position("Z", 1, 100.0)}
    assert check(buy(1, symbol="Z"), ctx(positions=two), max_open_positions=3).action is A
    assert check(buy(1, symbol="W"), ctx(positions=three), max_open_positions=3).action is V
    assert check(buy(1, symbol="X"), ctx(positions=three), max_open_positions=3).action is A


@pytest.mark.parametrize(("quantity", "action"), [(9_999, A), (10_000, A), (10_001, V)])
def test_max_leverage_per_symbol(quantity: float, action: RiskAction) -> None:
    assert check(buy(quantity), max_leverage=10).action is action
    assert (
        check(buy(quantity * 3), max_leverage=10, max_leverage_per_symbol={"X": 30}).action
        is action
    )


@pytest.mark.parametrize(
    ("hour", "minute", "allowed"),
    [(7, 59, False), (8, 0, True), (16, 59, True), (17, 0, False)],
)
def test_trading_hours_in_a_timezone(hour: int, minute: int, allowed: bool) -> None:
    # 08:00–17:00 in New York (EDT in June: UTC-4).
    ts = int(datetime(2024, 6, 5, hour + 4, minute, tzinfo=UTC).timestamp())
    p = PreTradeParams(timezone="America/New_York", trading_hours=("08:00", "17:00"))
    assert in_hours(ts, p) is allowed


def test_trading_hours_across_midnight_and_days() -> None:
    p = PreTradeParams(trading_hours=("22:00", "02:00"), trading_days=[0, 1, 2, 3, 4])
    at = lambda d, h: int(datetime(2024, 6, d, h, tzinfo=UTC).timestamp())  # noqa: E731
    assert in_hours(at(5, 23), p) and in_hours(at(5, 1), p) and not in_hours(at(5, 2), p)
    assert not in_hours(at(8, 23), p)  # a Saturday


def test_max_trades_per_day() -> None:
    plugin = PreTrade(PreTradeParams(max_trades_per_day=2, max_correlation=0))
    assert [plugin.check(buy(), ctx()).action for _ in range(3)] == [A, A, V]
    assert plugin.check(buy(), ctx(ts=TS + 86_400)).action is A  # a new day


@pytest.mark.parametrize(("age", "action"), [(3_599, V), (3_600, A), (3_601, A)])
def test_min_holding_period(age: int, action: RiskAction) -> None:
    held = ctx(positions={"X": Position("X", 10, 100.0, opened_ts=TS - age)})
    sell = OrderIntent("X", Side.SELL, 10)
    assert check(sell, held, min_holding_s=3_600).action is action
    exit_ = OrderIntent("X", Side.SELL, 10, reduce_only=True)
    assert check(exit_, held, min_holding_s=3_600).action is A


@pytest.mark.parametrize(("since", "action"), [(599, V), (600, A), (601, A)])
def test_cooldown_after_a_loss(since: int, action: RiskAction) -> None:
    plugin = PreTrade(PreTradeParams(cooldown_after_loss_s=600, max_correlation=0))
    loss = Trade("X", 1, 1, TS - 5_000, TS - since, 100, 99, -1.0, 0.0)
    plugin.bind_trades([loss])
    assert plugin.check(buy(), ctx()).action is action
    plugin.bind_trades([Trade("X", 1, 1, TS - 5_000, TS - 1, 100, 101, 1.0, 0.0)])
    assert plugin.check(buy(), ctx()).action is A


@pytest.mark.parametrize(("equity", "action"), [(999.99, V), (1_000, A), (1_000.01, A)])
def test_min_balance(equity: float, action: RiskAction) -> None:
    assert check(buy(0.001), ctx(equity), min_balance=1_000).action is action


def test_correlation_guard() -> None:
    plugin = PreTrade(PreTradeParams(max_correlation=0.7, correlation_bars=100, max_leverage=0))
    price = {"X": 100.0, "Y": 100.0, "Z": 100.0}
    for i in range(60):
        wiggle = 0.01 if i % 3 else -0.012
        moves = {"X": wiggle, "Y": wiggle * 0.9 + 0.0001 * (i % 2), "Z": 0.01 if i % 2 else -0.01}
        for symbol, move in moves.items():
            price[symbol] *= 1 + move
            plugin.on_bar(Bar(symbol, 3600, TS + i * 3600, 1, 1, 1, price[symbol], 1))
    long_y = ctx(positions={"Y": Position("Y", 10, 100.0)}, ts=TS + 61 * 3600)
    decision = plugin.check(buy(1), long_y)
    assert decision.action is V and decision.code == "correlation"
    assert plugin.check(OrderIntent("X", Side.SELL, 1), long_y).action is A  # a hedge
    assert plugin.check(buy(1, symbol="Z"), long_y).action is A  # uncorrelated


def test_correlation_function() -> None:
    xs = [float(i % 5) for i in range(20)]
    assert correlation(xs, xs) == pytest.approx(1.0)
    assert correlation(xs, [-x for x in xs]) == pytest.approx(-1.0)
    assert correlation(xs[:5], xs[:5]) is None  # too short
    assert correlation([1.0] * 20, xs) is None  # flat


def test_reduce_only_always_passes() -> None:
    exit_ = OrderIntent("X", Side.SELL, 1e9, reduce_only=True)
    assert PreTrade(PreTradeParams(min_balance=1e12)).check(exit_, ctx()).action is A


# The correlation guard decides from running sums kept exactly (integers: rolling_corr.py).
# Over random bar streams (gaps, repeated bar times, flat and trending series, window evictions,
# limits near the realised correlations) its answer must be the one computed afresh from the
# window, every time.
_bar_step = st.tuples(
    st.integers(min_value=0, max_value=3),  # symbol
    st.integers(min_value=0, max_value=2),  # 0: next bar time, 1: same time again, 2: a gap
    st.sampled_from([0.0, 0.01, -0.01, 0.002, 0.5, -0.3, 1e-9]),
    st.floats(min_value=-0.05, max_value=0.05, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(_bar_step, min_size=0, max_size=400),
    window=st.integers(min_value=10, max_value=40),
    limit=st.sampled_from([0.0, 0.3, 0.7, 0.95, 0.999999, 1.0, -0.5]),
    follow=st.booleans(),
)
def test_incremental_correlation_decides_as_the_exact_pass(
    steps: list[tuple[int, int, float, float]], window: int, limit: float, follow: bool
) -> None:
    symbols = ["A", "B", "C", "D"]
    plugin = PreTrade(PreTradeParams(max_correlation=0.7, correlation_bars=window))
    price = dict.fromkeys(symbols, 100.0)
    ts = TS
    for index, kind, base, noise in steps:
        symbol = symbols[index]
        ts += (0, 0, 7200)[kind] if kind else 3600
        move = (base + noise) if not follow else base + noise * (index + 1) / 4
        price[symbol] = max(1e-6, price[symbol] * (1 + move))
        plugin.on_bar(Bar(symbol, 3600, ts, 1, 1, 1, price[symbol], 1))
        if index == 0:  # every symbol moves on A's bar too, mostly together
            for other in symbols[1:]:
                price[other] = max(1e-6, price[other] * (1 + move * 0.9 + noise * 0.1))
                plugin.on_bar(Bar(other, 3600, ts, 1, 1, 1, price[other], 1))
    returns: dict[str, deque[tuple[int, float]]] = plugin._returns
    for mine in symbols:
        for side in (Side.BUY, Side.SELL):
            positions = {
                s: Position(s, 1.0 if i % 2 else -1.0, 100.0) for i, s in enumerate(symbols)
            }
            intent = OrderIntent(mine, side, 1.0)
            context = ctx(positions=positions)
            signs = {s: (1.0 if p.quantity > 0 else -1.0) for s, p in positions.items()}
            exact = correlated_with(intent, positions, signs, returns, limit)
            assert plugin._correlated(intent, context, limit) == exact


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def _working(symbol: str, quantity: float, price: float | None = None) -> Order:
    order_type = OrderType.LIMIT if price is not None else OrderType.MARKET
    return Order(f"e-{symbol}", symbol, Side.BUY, quantity, order_type, price)


def test_working_entry_orders_count_as_open_positions() -> None:
    """Entries sent earlier (this bar or before) and not filled yet open positions too: with
    two positions and one entry working, a fourth symbol is one too many at 3."""
    two = {s: Position(s, 1, 100.0) for s in ("X", "Y")}
    marks = {"W": 100.0, "X": 100.0, "Y": 100.0, "Z": 100.0}
    working = ctx(positions=two, marks=marks)._replace(entries=(_working("Z", 1),))
    vetoed = check(buy(1, symbol="W"), working, max_open_positions=3)
    assert vetoed.action is V and vetoed.code == "max_positions"
    assert "entry orders still working" in vetoed.reason
    # Adding to the symbol the working entry opens opens nothing new.
    assert check(buy(1, symbol="Z"), working, max_open_positions=3).action is A
    assert check(buy(1, symbol="X"), working, max_open_positions=3).action is A


@pytest.mark.parametrize(("quantity", "action"), [(999, A), (1_000, A), (1_001, V)])
def test_working_entries_take_gross_exposure_and_free_margin(
    quantity: float, action: RiskAction
) -> None:
    # 500 units working at a limit of 100 (and a market entry of 500 at the mark 100) hold
    # 100,000 of the 150% cap on 100,000: 50,000 more fits.
    entries = (_working("Y", 500, 100.0), _working("Z", 500))
    working = ctx()._replace(entries=entries)
    assert check(buy(quantity / 2), working, max_gross_exposure=1.5).action is action
    # 2:1 margin on 100,000: 200,000 of notional, 100,000 of it taken by the entries.
    assert check(buy(quantity), working, margin_leverage=2).action is action


def test_entries_approved_earlier_in_the_same_bar_count(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Four symbols, each asking for an entry on the same bar: at most 3 positions, so the
    fourth is vetoed though none of the first three has filled yet."""
    symbols = ("AAA", "BBB", "CCC", "DDD")

    def enter_all(context: Any, bar: Bar) -> None:
        if bar.symbol == "DDD":  # once every symbol has its bar
            for symbol in symbols:
                context.buy(symbol, 10)

    strategy = Scripted({3: enter_all})
    document = manifest(
        [{"name": "pre-trade", "params": {"max_open_positions": 3}}],
        symbols=symbols,
        capital=100_000.0,
    )
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    bars = sorted(
        (b for s in symbols for b in flat_bars([100.0] * 4, symbol=s)), key=lambda b: b.ts
    )
    engine.run(bars)
    decisions = engine.journal.query(
        "SELECT symbol, action FROM risk_decisions WHERE plugin = 'pre-trade' ORDER BY id"
    )
    assert [tuple(row) for row in decisions] == [
        ("AAA", "approve"),
        ("BBB", "approve"),
        ("CCC", "approve"),
        ("DDD", "veto"),
    ]
    assert engine.stats.vetoes[("pre-trade", "max_positions")] == 1
    assert sorted(engine.portfolio.open_positions) == ["AAA", "BBB", "CCC"]
