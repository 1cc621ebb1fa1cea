"""pre-trade's ``max_risk_per_trade`` caps only what an order opens, and needs the order's size.

A reversal sent as one order (long 100, ``sell 110``: not reduce-only, the engine does not split
it) closes 100 and opens 10. The part that closes is an exit: it is neither measured nor cut, so
with 10,000 of equity, X at 100 and the new short's stop at 102, the 10 it opens risk 20, within
1% (100), and the order goes whole. Without a stop, what it opens is not sent, and the order is
shrunk to the 100 that close the long. An entry sent after a ``ctx.close`` closes nothing
(``RiskContext.closable``): all of it is measured.

Placed before the chain's sizer, the cap would see every entry unsized: pre-trade with
``max_risk_per_trade`` on is refused at load there, naming its ``spec.risk[i]``, as the plugins
that declare ``needs-size`` are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.pre_trade import PreTrade, risk_cap
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Instrument, OrderIntent, RiskAction, RiskDecision, Side
from tradefleet_runtime.sdk.testing import risk_context
from tradefleet_runtime.spec.checks import validate_plugins
from tradefleet_runtime.spec.load import parse_manifest

OFF: dict[str, Any] = {
    "price_band": 0, "max_gross_exposure": 0, "group_cap": 0, "max_correlation": 0,
    "max_open_positions": 0, "max_leverage": 0, "max_risk_per_trade": 0.01,
}  # fmt: skip
A, S, V = RiskAction.APPROVE, RiskAction.SHRINK, RiskAction.VETO
EQUITY = 10_000.0


def _check(
    intent: OrderIntent,
    closable: dict[str, float] | None = None,
    instrument: Instrument | None = None,
) -> RiskDecision:
    """pre-trade (every check but the risk cap and free margin off) on X at 100, long 100,
    at 10:1 (the long takes a tenth of the equity as margin)."""
    ctx = risk_context(
        "X", equity=EQUITY, marks={"X": 100.0}, positions={"X": 100.0}, closable=closable,
        instrument=instrument,
    )  # fmt: skip
    return PreTrade(PreTradeParams(**OFF, margin_leverage=10)).check(intent, ctx)


@pytest.mark.parametrize("stop", [102.0, None], ids=["stop", "no-stop"])
def test_a_reversal_order_is_never_cut_in_what_it_closes(
    tmp_path: Path, stop: float | None
) -> None:
    registry = PluginRegistry.discover()
    strategy = Scripted(
        {
            0: lambda c, b: c.buy("X", 100.0, stop_loss=98.0),  # risks 200: shrunk to 50
            2: lambda c, b: c.buy("X", 50.0, stop_loss=98.0),  # long 100 (risk 100 each)
            4: lambda c, b: c.sell("X", 110.0, stop_loss=stop),
        }
    )
    document = manifest(
        [{"name": "pre-trade", "params": OFF}], symbols=("X",), capital=10_000.0, leverage=10.0
    )
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(flat_bars([100.0] * 8, symbol="X"))
    held = engine.portfolio.positions["X"].quantity
    # With its stop the 10 it opens fit the cap: short 10. Without one nothing may open: flat.
    assert held == pytest.approx(-10.0 if stop is not None else 0.0)


def test_a_reversal_within_the_cap_goes_whole() -> None:
    assert _check(OrderIntent("X", Side.SELL, 110.0, stop_loss=102.0)).action is A


def test_a_reversal_over_the_cap_is_cut_in_what_it_opens_only() -> None:
    """200 against long 100: 100 open with the stop 30 away, 3,000 at risk; 3.33 may open."""
    decision = _check(OrderIntent("X", Side.SELL, 200.0, stop_loss=130.0))
    assert decision.action is S and decision.code == "max_risk_per_trade"
    assert decision.quantity == pytest.approx(100.0 + 100.0 / 30.0)
    assert decision.reason == (
        "risk 3,000.00 at the stop for the 100 it opens exceeds 1.00% of equity 10,000.00 "
        "(max_risk_per_trade): 200 -> 103.3333333 (100 close X's position)"
    )


def test_a_reversal_without_a_stop_is_shrunk_to_what_closes() -> None:
    decision = _check(OrderIntent("X", Side.SELL, 110.0))
    assert decision.action is S and decision.quantity == 100.0 and decision.code == "no_stop"
    assert decision.reason.startswith("X reversal has no stop-loss for the 10 it opens")
    assert "110 -> 100, the part closing X's position (an exit is never cut)" in decision.reason


def test_a_reversal_that_may_open_less_than_the_minimum_only_closes() -> None:
    """Lots of 10: the cap allows 3.33 of the 100 it opens (stop 30 away), below one lot."""
    lots = Instrument("X", lot_step=10.0, min_quantity=10.0)
    decision = _check(OrderIntent("X", Side.SELL, 200.0, stop_loss=130.0), instrument=lots)
    assert decision.action is S and decision.quantity == 100.0
    assert "what it may open, 0, below X's minimum quantity 10" in decision.reason


def test_an_entry_behind_an_exit_is_measured_whole() -> None:
    """A ``ctx.close`` works for the whole long: the sell of 110 closes nothing, and its 110
    risk 220 at the stop: shrunk to 50, as an entry from flat would be."""
    sell = OrderIntent("X", Side.SELL, 110.0, stop_loss=102.0)
    decision = _check(sell, closable={"X": 0.0})
    assert decision.action is S and decision.quantity == 50.0
    assert decision.reason.startswith("risk 220.00 at the stop exceeds")
    # ... and vetoed without a stop: none of it is an exit.
    assert _check(sell._replace(stop_loss=None), closable={"X": 0.0}).action is V


def test_risk_cap_without_a_closing_part_is_as_before() -> None:
    intent = OrderIntent("X", Side.BUY, 100.0, stop_loss=98.0)
    decision = risk_cap(intent, 100.0, 100.0, EQUITY, 0.01, 0.0, Instrument("X"))
    assert decision is not None and decision.action is S and decision.quantity == 50.0
    assert risk_cap(intent, 100.0, 100.0, EQUITY, 0.01, 0.0, Instrument("X"), 100.0) is None


# -- at load ----------------------------------------------------------------------------------


def _load_errors(risk: list[dict[str, Any]]) -> dict[str, str]:
    errors = validate_plugins(parse_manifest(manifest(risk)), PluginRegistry.discover())
    return {error.field: error.message for error in errors}


SIZER = {"name": "fixed-fractional", "params": {"risk_per_trade": 0.01}}


@pytest.mark.parametrize(
    "params",
    [{"max_risk_per_trade": 0.01}, {"max_risk_per_trade_per_symbol": {"TEST": 0.01}}],
    ids=["max_risk_per_trade", "per-symbol"],
)
def test_pre_trade_capping_risk_before_the_sizer_is_refused_at_load(
    params: dict[str, Any],
) -> None:
    errors = _load_errors([{"name": "pre-trade", "params": params}, SIZER])
    assert errors == {
        "spec.risk[0]": "pre-trade's max_risk_per_trade decides on the order's size, but the "
        "sizer fixed-fractional comes after it (spec.risk[1]): put a sizer before pre-trade, "
        "or turn max_risk_per_trade off"
    }


@pytest.mark.parametrize(
    "risk",
    [
        [{"name": "pre-trade", "params": {"max_risk_per_trade": 0}}, SIZER],  # off
        [{"name": "pre-trade", "params": {}}, SIZER],  # off by default
        [SIZER, {"name": "pre-trade", "params": {"max_risk_per_trade": 0.01}}],  # after
        [{"name": "pre-trade", "params": {"max_risk_per_trade": 0.01}}],  # no sizer: sized
    ],
    ids=["off", "default", "after-the-sizer", "no-sizer"],
)
def test_pre_trade_loads_where_it_sees_the_size_or_caps_no_risk(risk: list[dict[str, Any]]) -> None:
    assert _load_errors(risk) == {}


def test_a_needs_size_plugin_before_the_sizer_is_still_refused() -> None:
    errors = _load_errors([{"name": "circuit-breaker", "params": {}}, SIZER])
    assert errors["spec.risk[0]"] == (
        "circuit-breaker decides on the order's size, but the sizer fixed-fractional comes "
        "after it (spec.risk[1]): put a sizer before circuit-breaker"
    )
