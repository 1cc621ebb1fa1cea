"""A sizer's ``max_leverage`` bounds an order that came sized, as its doc says it bounds an
order's notional: a webhook signal's own ``volume`` (which no sizer sets) included.

Seen live (Bybit linear fake, 10,000 USDT, ``fixed-fractional {risk_per_trade: 0.01,
max_leverage: 3}``): a signal with ``"volume": 100`` (a sender's typo for 0.01) went to the
venue as a market buy of 100 BTC, 5,000,000 USDT, 500 times the equity; only the venue's margin
check refused it, and on an account holding more than the bot's capital it would have filled.
Now such an order is shrunk to the cap (what it opens: the part closing an opposite position is
an exit), on the lot step, or vetoed when nothing is left; an exit always passes.
"""

from __future__ import annotations

import pytest

from tradefleet_plugins.risk.kelly import Kelly
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.risk.volatility_target import VolatilityTarget
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_runtime.sdk import Instrument, OrderIntent, RiskAction, Side
from tradefleet_runtime.sdk.testing import judge

MARK = {"BTCUSDT": 50_000.0}


def _fixed(max_leverage: float = 3.0) -> FixedFractional:
    return FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=max_leverage))


def test_a_signals_own_volume_is_held_to_max_leverage() -> None:
    intent = OrderIntent("BTCUSDT", Side.BUY, 100.0, stop_loss=49_000.0, take_profit=52_000.0)
    [decision] = judge(_fixed(), intent, equity=10_000.0, marks=MARK)
    assert decision.action is RiskAction.SHRINK
    assert decision.quantity == pytest.approx(0.6)  # 3 x 10,000 / 50,000
    assert decision.reason == (
        "fixed-fractional: 100 BTCUSDT opened is 500.00x equity, over max_leverage 3: 100 -> 0.6"
    )


def test_an_order_within_the_cap_passes_untouched() -> None:
    intent = OrderIntent("BTCUSDT", Side.BUY, 0.6, stop_loss=49_000.0)
    [decision] = judge(_fixed(), intent, equity=10_000.0, marks=MARK)
    assert decision.action is RiskAction.APPROVE and decision.quantity is None


def test_a_reversal_is_bounded_on_what_it_opens_not_on_what_it_closes() -> None:
    """Long 2 BTC, sell 2.5: 2 close, 0.5 opens (2.5x equity, within 3x): through; sell 3: 1
    would open (5x), cut to 2 + 0.6."""
    reverse = OrderIntent("BTCUSDT", Side.SELL, 2.5)
    [decision] = judge(_fixed(), reverse, equity=10_000.0, marks=MARK, positions={"BTCUSDT": 2.0})
    assert decision.action is RiskAction.APPROVE and decision.quantity is None
    too_far = OrderIntent("BTCUSDT", Side.SELL, 3.0)
    [decision] = judge(_fixed(), too_far, equity=10_000.0, marks=MARK, positions={"BTCUSDT": 2.0})
    assert decision.action is RiskAction.SHRINK and decision.quantity == pytest.approx(2.6)


def test_an_exit_always_passes() -> None:
    exit_ = OrderIntent("BTCUSDT", Side.SELL, 100.0, reduce_only=True)
    [decision] = judge(_fixed(), exit_, equity=10_000.0, marks=MARK, positions={"BTCUSDT": 100.0})
    assert decision.action is RiskAction.APPROVE and decision.quantity is None


def test_the_cut_is_on_the_lot_step_and_vetoed_below_the_minimum() -> None:
    lots = Instrument("BTCUSDT", lot_step=0.25, min_quantity=0.25)
    [decision] = judge(
        _fixed(), OrderIntent("BTCUSDT", Side.BUY, 5.0), equity=10_000.0, marks=MARK,
        instrument=lots,
    )  # fmt: skip
    assert decision.action is RiskAction.SHRINK and decision.quantity == 0.5
    [decision] = judge(
        _fixed(0.5), OrderIntent("BTCUSDT", Side.BUY, 5.0), equity=10_000.0, marks=MARK,
        instrument=lots,
    )  # fmt: skip
    assert decision.action is RiskAction.VETO and decision.code == "max_leverage"


def test_no_price_vetoes_a_sized_entry() -> None:
    [decision] = judge(_fixed(), OrderIntent("BTCUSDT", Side.BUY, 1.0), equity=10_000.0, marks={})
    assert decision.action is RiskAction.VETO
    assert "no price or equity to bound 1 BTCUSDT" in decision.reason


@pytest.mark.parametrize(
    ("sizer", "name"),
    [
        (Kelly(KellyParams(max_leverage=3)), "kelly"),
        (VolatilityTarget(VolatilityTargetParams(max_leverage=3)), "volatility-target"),
    ],
)
def test_the_other_sizers_hold_a_sized_order_too(sizer: object, name: str) -> None:
    intent = OrderIntent("BTCUSDT", Side.BUY, 100.0)
    [decision] = judge(sizer, intent, equity=10_000.0, marks=MARK)  # type: ignore[arg-type]
    assert decision.action is RiskAction.SHRINK and decision.quantity == pytest.approx(0.6)
    assert decision.reason.startswith(f"{name}: 100 BTCUSDT opened is 500.00x equity")
