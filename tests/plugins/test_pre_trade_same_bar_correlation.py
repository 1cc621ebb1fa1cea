"""pre-trade's max_correlation counts the entries already let through (working, not yet filled)
as well as the open positions: two correlated symbols entered on one bar are one too many."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.pre_trade import PreTrade, held_directions
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import (
    Bar,
    Instrument,
    Order,
    OrderIntent,
    Position,
    RiskAction,
    Side,
)
from tradefleet_runtime.plugins.registry import PluginRegistry

TS = int(datetime(2024, 6, 5, 12, 0, tzinfo=UTC).timestamp())
HOUR = 3600
# X wanders; Y is X at another scale (correlation 1), Z moves against X (correlation -1).
MOVES = [0.01 * math.sin(i * 1.7) + 0.004 * math.cos(i * 0.3) for i in range(40)]


def correlated_plugin() -> PreTrade:
    """A pre-trade with only max_correlation (0.7) on, fed 40 bars of X, Y and Z."""
    plugin = PreTrade(
        PreTradeParams(
            price_band=0, max_gross_exposure=0, group_cap=0, max_open_positions=0,
            max_leverage=0, max_correlation=0.7, correlation_bars=30,
        )
    )  # fmt: skip
    prices = {"X": 100.0, "Y": 1e-6, "Z": 50.0}
    for i, move in enumerate(MOVES):
        prices["X"] *= 1 + move
        prices["Y"] *= 1 + move
        prices["Z"] *= 1 - move
        for symbol, close in prices.items():
            plugin.on_bar(Bar(symbol, HOUR, TS + i * HOUR, close, close, close, close, 1.0))
    return plugin


def ctx(
    positions: dict[str, Position] | None = None, entries: tuple[Order, ...] = ()
) -> RiskContext:
    return RiskContext(
        ts=TS + 39 * HOUR, equity=100_000.0, cash=100_000.0, start_of_day_equity=100_000.0,
        peak_equity=100_000.0, positions=positions or {},
        marks={"X": 100.0, "Y": 1e-6, "Z": 50.0}, instrument=Instrument("Y"), leverage=100.0,
        initial_equity=100_000.0, entries=entries,
    )  # fmt: skip


def entry(symbol: str, side: Side, quantity: float = 1.0) -> Order:
    return Order(f"e-{symbol}-{side}", symbol, side, quantity)


def test_an_entry_working_in_a_correlated_symbol_vetoes_the_same_direction() -> None:
    plugin = correlated_plugin()
    working = ctx(entries=(entry("X", Side.SELL),))
    vetoed = plugin.check(OrderIntent("Y", Side.SELL, 1.0), working)
    assert vetoed.action is RiskAction.VETO
    assert vetoed.code == "correlation"
    assert "with X (entry order working)" in vetoed.reason
    # The other direction is a hedge, not a double-up; without the entry nothing is held.
    assert plugin.check(OrderIntent("Y", Side.BUY, 1.0), working).action is RiskAction.APPROVE
    assert plugin.check(OrderIntent("Y", Side.SELL, 1.0), ctx()).action is RiskAction.APPROVE


def test_a_negatively_correlated_entry_vetoes_the_opposite_direction() -> None:
    plugin = correlated_plugin()
    working = ctx(entries=(entry("X", Side.BUY),))
    assert plugin.check(OrderIntent("Z", Side.SELL, 1.0), working).code == "correlation"
    assert plugin.check(OrderIntent("Z", Side.BUY, 1.0), working).action is RiskAction.APPROVE


def test_the_answer_of_one_bar_changes_as_its_entries_are_let_through() -> None:
    """The per-bar cache must not answer a second intent with what it found before the first
    entry was working (same bar time, same symbol and side)."""
    plugin = correlated_plugin()
    intent = OrderIntent("Y", Side.BUY, 1.0)
    assert plugin.check(intent, ctx()).action is RiskAction.APPROVE
    vetoed = plugin.check(intent, ctx(entries=(entry("X", Side.BUY),)))
    assert vetoed.action is RiskAction.VETO and vetoed.code == "correlation"


def test_an_open_position_is_still_named_open() -> None:
    plugin = correlated_plugin()
    held = ctx(positions={"X": Position("X", 2.0, 100.0)}, entries=(entry("Z", Side.SELL),))
    vetoed = plugin.check(OrderIntent("Y", Side.BUY, 1.0), held)
    assert vetoed.code == "correlation"
    assert "with open X" in vetoed.reason


def test_held_directions_counts_both_ways_of_an_entry_against_a_position() -> None:
    # Short X with a buy working: a reversal (an exit the snapshot does not show closes the
    # short) or a trim; either may be what holds after the bar.
    positions = {"X": Position("X", -1.0, 100.0), "Y": Position("Y", 2.0, 1.0)}
    entries = (entry("X", Side.BUY), entry("Y", Side.BUY), entry("Z", Side.SELL))
    assert held_directions(positions, entries) == {"X": (-1, 1), "Y": (1,), "Z": (-1,)}
    assert held_directions(positions, ()) == {"X": (-1,), "Y": (1,)}


def test_reversing_into_a_correlated_symbol_is_vetoed() -> None:
    """Short X, closing it and buying it on this bar: a buy of Y doubles up on the long X the
    bar leaves (the repro's 2018-03-19 case), though X is still short in the snapshot."""
    plugin = correlated_plugin()
    reversing = ctx(positions={"X": Position("X", -1.0, 100.0)}, entries=(entry("X", Side.BUY),))
    assert plugin.check(OrderIntent("Y", Side.BUY, 1.0), reversing).code == "correlation"


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def test_two_correlated_symbols_entered_on_one_bar(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Through the engine: AAA and BBB (BBB = AAA × 1e-3) are both bought on one bar, neither
    held before; the second is vetoed for correlation though the first has not filled."""
    symbols = ("AAA", "BBB")
    closes = [100.0]
    for move in MOVES:
        closes.append(closes[-1] * (1 + move))

    def enter_both(context: Any, bar: Bar) -> None:
        for symbol in symbols:
            context.buy(symbol, 1)

    last = 2 * len(closes) - 1  # BBB's last bar: every bar of both seen
    strategy = Scripted({last - 2: enter_both})
    document = manifest(
        [
            {
                "name": "pre-trade",
                "params": {
                    "max_correlation": 0.7, "correlation_bars": 30, "max_open_positions": 0,
                    "max_gross_exposure": 0, "group_cap": 0, "price_band": 0,
                },
            }
        ],
        symbols=symbols,
        capital=100_000.0,
    )  # fmt: skip
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    bars = sorted(
        [*flat_bars(closes, symbol="AAA"), *flat_bars([c / 1000 for c in closes], symbol="BBB")],
        key=lambda b: b.ts,
    )
    engine.run(bars)
    assert engine.stats.vetoes == {("pre-trade", "correlation"): 1}
    assert sorted(engine.portfolio.open_positions) == ["AAA"]
