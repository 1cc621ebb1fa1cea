"""exits: early exit at 80% of the stop distance, trailing and break-even, at their boundaries,
and through the engine (reduce-only market orders tagged with the plugin)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, events, manifest, open_session
from tradefleet_plugins.risk.exits import exit_reason
from tradefleet_plugins.risk.exits_params import ExitsParams
from tradefleet_runtime.model import OrderIntent, Position, Side
from tradefleet_runtime.plugins.registry import PluginRegistry


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


LONG = Position("X", 10, 100.0)
SHORT = Position("X", -10, 100.0)


@pytest.mark.parametrize(("mark", "exits"), [(98.41, False), (98.4, True), (98.39, True)])
def test_early_exit_at_80_percent_of_the_stop_distance(mark: float, exits: bool) -> None:
    # Stop at 98 (−2%): the early exit is at −1.6%, 98.40.
    found = exit_reason(LONG, mark, 98.0, 100.0, None, ExitsParams())
    assert (found is not None and found[1] == "early_exit") is exits


@pytest.mark.parametrize(("mark", "exits"), [(101.59, False), (101.6, True), (101.61, True)])
def test_early_exit_for_a_short(mark: float, exits: bool) -> None:
    assert (exit_reason(SHORT, mark, 102.0, 100.0, None, ExitsParams()) is not None) is exits


@pytest.mark.parametrize(("mark", "exits"), [(108.91, False), (108.9, True), (108.89, True)])
def test_trailing_percent(mark: float, exits: bool) -> None:
    p = ExitsParams(early_exit_fraction=0, trailing_pct=0.01)
    # Best 110 since entry: the trail is 1.10 behind, at 108.90.
    assert (exit_reason(LONG, mark, None, 110.0, None, p) is not None) is exits


def test_trailing_atr_and_break_even() -> None:
    p = ExitsParams(early_exit_fraction=0, trailing_atr_multiple=2)
    assert exit_reason(LONG, 106.01, None, 110.0, 2.0, p) is None
    assert exit_reason(LONG, 106.0, None, 110.0, 2.0, p) is not None
    be = ExitsParams(early_exit_fraction=0, break_even_r=1)
    # Risk 2 (stop 98): armed once the best reached 102; a close at the entry then exits.
    assert exit_reason(LONG, 100.0, 98.0, 101.99, None, be) is None
    assert exit_reason(LONG, 100.01, 98.0, 102.0, None, be) is None
    assert exit_reason(LONG, 100.0, 98.0, 102.0, None, be) == (
        "back at the entry 100 after 1R in profit",
        "break_even",
    )


def test_the_engine_exits_early_with_a_reduce_only_order(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    strategy = Scripted(
        {0: lambda c, b: c.submit(OrderIntent("TEST", Side.BUY, 10, stop_loss=98.0))}
    )
    document = manifest([{"name": "exits"}])
    bot = bot_with(registry, document, strategy, tmp_path)
    session = open_session(bot)
    engine = session.engine
    assert engine is not None
    engine.run(flat_bars([100, 100, 99, 98.5, 98.3, 98.3, 98.3]))
    [(message, data)] = events(session.journal, "risk_action")
    assert json.loads(data)["code"] == "early_exit" and "80%" in message
    [row] = session.journal.query(
        "SELECT side, quantity, reduce_only FROM orders WHERE tag = 'risk:exits'"
    )
    assert row == ("sell", 10.0, 1)
    assert not engine.portfolio.open_positions  # closed at the next open (98.30), not at 98
    assert engine.portfolio.trades[-1].exit_price == pytest.approx(98.3)
