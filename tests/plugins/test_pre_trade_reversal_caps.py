"""pre-trade's margin and exposure caps judge only what a reversal opens; no cap cuts its exit.

A reversal sent as one order (long 50 of X at 100, ``sell 100``: ``RiskContext.closing`` is 50)
closes 50 and opens 50. The part that closes is an exit: it always goes, and it takes its
exposure and margin with it. The part that opens is judged as an entry would be once the
position is closed: the free margin, the gross and group exposure after the order, the
symbol's leverage. When it does not fit, the order is shrunk (never below its closing part); a
reversal that may open nothing only closes. The largest order bounds the whole order sent, but
never below its closing part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.pre_trade import PreTrade
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import OrderIntent, RiskAction, RiskDecision, Side
from tradefleet_runtime.sdk.testing import risk_context

A, S, V = RiskAction.APPROVE, RiskAction.SHRINK, RiskAction.VETO
OFF: dict[str, Any] = {
    "price_band": 0, "max_gross_exposure": 0, "group_cap": 0, "max_correlation": 0,
    "max_open_positions": 0, "max_leverage": 0,
}  # fmt: skip


def _check(
    intent: OrderIntent, held: float = 50.0, closable: dict[str, float] | None = None, **on: Any
) -> RiskDecision:
    """pre-trade with only ``on`` (and the free margin at 1:1 unless said) on X at 100:
    10,000 of equity, ``held`` of X (5,000 of it at 50) and 1,000 of Y."""
    params = PreTradeParams(**{**OFF, "margin_leverage": 1, **on})
    ctx = risk_context(
        "X", equity=10_000.0, marks={"X": 100.0, "Y": 100.0},
        positions={"X": held, "Y": 10.0} if held else {"Y": 10.0}, closable=closable,
    )  # fmt: skip
    return PreTrade(params).check(intent, ctx)


def _sell(quantity: float, **kw: Any) -> OrderIntent:
    return OrderIntent("X", Side.SELL, quantity, **kw)


# Each cap at a level where an entry of 50 from flat passes and the reversal (opening 50) used
# to be refused: the whole 10,000 of notional was counted, the long it closes kept too.
CAPS: dict[str, dict[str, Any]] = {
    "free_margin": {},  # 5,000 of margin free: 10,000 did not fit
    "gross_exposure": {"margin_leverage": 100, "max_gross_exposure": 0.7},
    "group_cap": {"margin_leverage": 100, "group_cap": 0.7, "groups": {"X": "G", "Y": "G"}},
}


@pytest.mark.parametrize("on", CAPS.values(), ids=CAPS.keys())
def test_a_reversal_opening_what_an_entry_may_goes_whole(on: dict[str, Any]) -> None:
    assert _check(OrderIntent("X", Side.SELL, 50.0), held=0.0, **on).action is A  # the control
    decision = _check(_sell(100.0), **on)
    assert decision.action is A, decision.reason


@pytest.mark.parametrize("on", CAPS.values(), ids=CAPS.keys())
def test_a_reversal_opening_too_much_only_closes(on: dict[str, Any]) -> None:
    """Opening 100 (10,000) fits none of them: the 50 closing the long still go."""
    assert _check(OrderIntent("X", Side.SELL, 100.0), held=0.0, **on).action is V  # the control
    decision = _check(_sell(150.0), **on)
    assert decision.action is S and decision.quantity == 50.0, decision.reason
    assert decision.code == next(k for k, v in CAPS.items() if v == on)
    assert "150 -> 50, the part closing X's position (an exit is never cut)" in decision.reason


def test_the_symbols_leverage_already_nets_the_position_it_closes() -> None:
    """``max_leverage`` measures the position after the order: short 50 is 0.5x (passes on the
    code before the change too)."""
    assert _check(_sell(100.0), margin_leverage=100, max_leverage=0.6).action is A


def test_a_reversal_beyond_the_symbols_leverage_only_closes() -> None:
    decision = _check(_sell(120.0), margin_leverage=100, max_leverage=0.6)  # short 70: 0.7x
    assert decision.action is S and decision.quantity == 50.0 and decision.code == "max_leverage"


def test_an_entry_behind_an_exit_closes_nothing_and_is_judged_whole() -> None:
    """A ``ctx.close`` is working for the whole long: the sell of 100 opens all of it."""
    assert _check(_sell(100.0), closable={"X": 0.0}).action is V


@pytest.mark.parametrize("cap", ["max_order_quantity", "max_order_notional"])
def test_the_largest_order_bounds_a_reversal_but_never_below_what_it_closes(cap: str) -> None:
    """The largest order is a bound on the order sent (a fat-finger guard): a reversal of 100
    against a limit of 40 is cut to the 50 closing the long, never to 40 (an exit cut)."""
    limit: dict[str, Any] = {cap: 40.0 if cap == "max_order_quantity" else 4_000.0}  # 40 of X
    decision = _check(_sell(100.0), margin_leverage=100, **limit)
    assert decision.action is S and decision.quantity == 50.0, decision.reason
    assert decision.code == cap.replace("_order", "")  # max_quantity, max_notional
    # Within the limit's room beyond the exit: 50 closes, 20 opens.
    wider: dict[str, Any] = {cap: 70.0 if cap == "max_order_quantity" else 7_000.0}
    decision = _check(_sell(100.0), margin_leverage=100, **wider)
    assert decision.action is S and decision.quantity == 70.0, decision.reason
    # A plain sell of the whole long above the limit is an exit: it goes whole.
    assert _check(_sell(50.0), margin_leverage=100, **limit).action is A
    # An entry from flat is capped at the limit, as before.
    entry = _check(_sell(100.0), held=0.0, margin_leverage=100, **limit)
    assert entry.action is S and entry.quantity == 40.0


def test_a_reversal_shrunk_to_its_exit_by_the_risk_cap_is_not_vetoed_by_the_margin() -> None:
    """All the equity in the long (100 at 1:1): no stop, so max_risk_per_trade lets only the
    100 closing it go, and that exit frees margin rather than taking any."""
    decision = _check(_sell(110.0), held=100.0, max_risk_per_trade=0.01)
    assert decision.action is S and decision.quantity == 100.0 and decision.code == "no_stop"


@settings(max_examples=300, deadline=None)
@given(
    held=st.floats(0.0, 200.0),
    asked=st.floats(0.01, 400.0),
    gross_cap=st.sampled_from([0.0, 0.3, 0.7, 1.5]),
    leverage=st.sampled_from([1.0, 2.0, 100.0]),
    symbol_cap=st.sampled_from([0.0, 0.4, 1.0]),
    largest=st.sampled_from([0.0, 10.0, 60.0]),
)
def test_a_reversal_is_shrunk_never_below_its_exit_nor_grown(
    held: float, asked: float, gross_cap: float, leverage: float, symbol_cap: float, largest: float
) -> None:
    decision = _check(
        _sell(asked),
        held=held,
        margin_leverage=leverage,
        max_gross_exposure=gross_cap,
        max_leverage=symbol_cap,
        max_order_quantity=largest,
    )
    closing = min(asked, held)
    if closing > 0.0:
        assert decision.action is not V, decision.reason  # the exit always goes
    if decision.action is S:
        assert decision.quantity is not None
        assert closing - 1e-9 <= decision.quantity <= asked, decision.reason


def test_a_paper_bot_at_full_allocation_reverses(tmp_path: Path) -> None:
    """pre-trade at its defaults, 1:1: long 100 of X at 100 holds the whole 10,000; ``sell
    200`` leaves short 100, the same exposure. It used to be vetoed (free margin, gross)."""
    strategy = Scripted({0: lambda c, b: c.buy("X", 100.0), 2: lambda c, b: c.sell("X", 200.0)})
    document = manifest(
        [{"name": "pre-trade", "params": {}}], symbols=("X",), capital=10_000.0, leverage=1.0
    )
    session = open_session(bot_with(PluginRegistry.discover(), document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(flat_bars([100.0] * 5, symbol="X"))
    assert engine.portfolio.positions["X"].quantity == pytest.approx(-100.0)


# -- the symbol's leverage behind an exit already working ---------------------------------------


def _behind_exit(closable: float | None, quantity: float) -> RiskDecision:
    """Long 50 of X at 100 on 10,000 of equity, ``closable`` of it not yet closed by a working
    exit (None: no exit working), ``sell quantity`` against a 0.6x cap on X."""
    return _check(
        _sell(quantity), closable=None if closable is None else {"X": closable},
        margin_leverage=100, max_leverage=0.6,
    )  # fmt: skip


def test_a_reversal_behind_a_working_close_is_held_to_the_symbols_leverage() -> None:
    """A ``ctx.close`` works for the whole long: the sell of 100 closes nothing and leaves short
    100 (1x) once both fill, as a short of 100 from flat would; the cap measured short 50."""
    assert _check(_sell(100.0), held=0.0, margin_leverage=100, max_leverage=0.6).action is V
    assert _behind_exit(0.0, 100.0).action is V
    assert _behind_exit(None, 100.0).action is A  # no exit working: it closes 50, opens 50


def test_a_reversal_behind_a_partial_exit_opens_no_more_than_the_cap() -> None:
    """An exit works for 30 of the 50 (closable 20): the sell of 100 closes 20 and would open 80
    (0.8x) once everything fills: shrunk to its closing part."""
    decision = _behind_exit(20.0, 100.0)
    assert decision.action is S and decision.quantity == 20.0 and decision.code == "max_leverage"
    # Within the cap either way (60 open at most whether the exit fills or not): it goes.
    assert _behind_exit(20.0, 70.0).action is A
