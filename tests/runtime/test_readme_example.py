"""The README's "Writing a strategy" example, run verbatim: it trades and exits, and its
breakout compares a close with the highs of the bars BEFORE it."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from tests.runtime.test_indicators_reference import eurusd_bars
from tradefleet_runtime.sdk import OrderStatus, Strategy
from tradefleet_runtime.sdk.testing import make_bars, run_strategy

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> types.ModuleType:
    text = README.read_text()
    section = text[text.index("## Writing a strategy") :]
    (block,) = re.findall(r"```python\n(.*?)```", section[: section.index("\n## ", 5)], re.S)
    module = types.ModuleType("my_package.breakout")
    sys.modules.setdefault("my_package", types.ModuleType("my_package"))
    sys.modules["my_package.breakout"] = module
    exec(compile(block, str(README), "exec"), module.__dict__)
    return module


def _breakout(**params: int) -> Strategy:
    example = _example()
    strategy: Strategy = example.Breakout(example.BreakoutParams(**params))
    return strategy


def test_the_example_trades_and_exits_on_real_data() -> None:
    run = run_strategy(_breakout(), eurusd_bars(), quantity=10_000, capital=100_000)
    tags = [order.tag for order in run.orders if order.status is OrderStatus.FILLED]
    assert tags.count("breakout") >= 5
    assert "breakdown" in tags  # it exits on its own signal, not only at the stop
    assert len(run.trades) >= 5


def test_the_breakout_is_against_the_previous_highs() -> None:
    # Channel of 3: bars 1-3 have highs 10; bar 4 closes at 10 (equal, no breakout, and a
    # channel that included the bar itself could never be exceeded); bar 5 closes above.
    bars = make_bars([10, 10, 10, 10, 10, 10.5, 10.6, 10.7])
    run = run_strategy(_breakout(lookback=3, exit_lookback=2), bars, quantity=1)
    (entry, *_) = run.orders
    assert entry.tag == "breakout" and entry.created_ts == bars[5].close_ts


def test_the_example_registers_through_the_hook() -> None:
    (spec,) = _example().tradefleet_strategies()
    assert spec.name == "breakout"
