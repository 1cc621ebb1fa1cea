"""kelly and volatility-target sizers: boundaries, confidence, the instrument's step."""

from __future__ import annotations

import pytest

from tradefleet_plugins.risk.kelly import Kelly, kelly_fraction
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.sizing import to_step
from tradefleet_plugins.risk.volatility_target import Atr, VolatilityTarget
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, RiskAction, Side, Trade

INSTRUMENT = Instrument("X", lot_step=0.01, min_quantity=0.1)


def ctx(equity: float = 100_000.0, instrument: Instrument = INSTRUMENT) -> RiskContext:
    return RiskContext(
        ts=0, equity=equity, cash=equity, start_of_day_equity=equity, peak_equity=equity,
        positions={}, marks={"X": 100.0}, instrument=instrument,
    )  # fmt: skip


def trades(wins: int, losses: int, win: float = 2.0, loss: float = 1.0) -> list[Trade]:
    out = [Trade("X", 1, 1, 0, 1, 100, 100 + win, win, 0.0) for _ in range(wins)]
    out += [Trade("X", 1, 1, 0, 1, 100, 100 - loss, -loss, 0.0) for _ in range(losses)]
    return out


def intent(stop: float | None = 99.0, confidence: float | None = None) -> OrderIntent:
    return OrderIntent("X", Side.BUY, None, stop_loss=stop, confidence=confidence)


def test_kelly_fraction() -> None:
    # W = 0.5, R = 2: f* = 0.5 - 0.5 / 2 = 0.25.
    assert kelly_fraction([t.net_pnl for t in trades(10, 10)]) == pytest.approx(0.25)
    assert kelly_fraction([t.net_pnl for t in trades(3, 7, 1, 1)]) < 0
    assert kelly_fraction([]) == 0.0 and kelly_fraction([1.0]) == 1.0


@pytest.mark.parametrize(("count", "sizes"), [(29, False), (30, True), (31, True)])
def test_kelly_needs_its_minimum_of_trades(count: int, sizes: bool) -> None:
    sizer = Kelly(KellyParams(min_trades=30, max_risk=1.0, max_leverage=100))
    history = trades(count // 2 + count % 2, count // 2)
    sizer.bind_trades(history)
    decision = sizer.check(intent(), ctx())
    assert (decision.action is RiskAction.APPROVE) is sizes
    if sizes:
        full = kelly_fraction([t.net_pnl for t in history])
        # Risk 0.25 × f* of 100,000 over a stop 1.00 away.
        assert decision.quantity == pytest.approx(to_step(100_000 * 0.25 * full, INSTRUMENT))


def test_kelly_cap_confidence_and_no_edge() -> None:
    sizer = Kelly(KellyParams(min_trades=10, max_risk=0.01, max_leverage=100))
    sizer.bind_trades(trades(20, 20))  # 0.25 × 0.25 = 6.25% > the 1% cap
    assert sizer.check(intent(), ctx()).quantity == pytest.approx(1_000)
    assert sizer.check(intent(confidence=0.5), ctx()).quantity == pytest.approx(500)
    sizer.bind_trades(trades(5, 15, 1, 1))
    assert sizer.check(intent(), ctx()).code == "no_edge"
    sized = OrderIntent("X", Side.BUY, 3.0)
    assert sizer.check(sized, ctx()).quantity is None  # already sized: left alone


@pytest.mark.parametrize(("equity", "action"), [(9.9, RiskAction.VETO), (10.0, RiskAction.APPROVE)])
def test_sizes_round_down_to_the_step_and_refuse_below_the_minimum(
    equity: float, action: RiskAction
) -> None:
    sizer = Kelly(KellyParams(min_trades=1, fallback_risk=0.01, max_leverage=100))
    # Risk 1% of equity over a stop 1.00 away: 0.099 (below 0.1) or 0.1 (at it).
    decision = sizer.check(intent(), ctx(equity))
    assert decision.action is action
    if action is RiskAction.VETO:
        assert decision.code == "below_minimum"
    odd = sizer.check(intent(), ctx(12_345.0))
    assert odd.quantity == pytest.approx(123.45)
    assert sizer.check(intent(), ctx(12_345.67)).quantity == pytest.approx(123.45)


def test_atr_warms_up_over_its_period() -> None:
    atr = Atr(3)
    for close in (10.0, 11.0):
        atr.add(close + 1, close - 1, close)
    assert atr.value is None
    atr.add(13.0, 11.0, 12.0)
    assert atr.value == pytest.approx(2.0)
    atr.add(16.0, 12.0, 15.0)  # true range 4
    assert atr.value == pytest.approx(2.0 + (4.0 - 2.0) / 3)


def test_volatility_target_sizes_by_atr() -> None:
    p = VolatilityTargetParams(atr_period=3, atr_multiple=2, risk_per_trade=0.01, max_leverage=100)
    sizer = VolatilityTarget(p)
    for i in range(2):
        sizer.on_bar(Bar("X", 3600, i, 100, 101, 99, 100, 1))
    assert sizer.check(intent(None), ctx()).code == "atr_not_ready"
    sizer.on_bar(Bar("X", 3600, 2, 100, 101, 99, 100, 1))
    # ATR 2: 2 ATRs = 4.00 of move; 1% of 100,000 = 1,000 → 250 units.
    assert sizer.check(intent(None), ctx()).quantity == pytest.approx(250)
    assert sizer.check(intent(None, 0.4), ctx()).quantity == pytest.approx(100)
    capped = VolatilityTarget(p.model_copy(update={"max_leverage": 0.1}))
    for i in range(3):
        capped.on_bar(Bar("X", 3600, i, 100, 101, 99, 100, 1))
    assert capped.check(intent(None), ctx()).quantity == pytest.approx(100)  # 10,000 / 100
