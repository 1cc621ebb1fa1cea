"""probation: size multipliers at their boundaries, hibernation as a lock, reset."""

from __future__ import annotations

import pytest

from tradefleet_plugins.risk.probation import Probation, multiplier, rolling_loss
from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Instrument, OrderIntent, RiskAction, Side, Trade

P = ProbationParams()
EPS = 1e-6


@pytest.mark.parametrize(
    ("loss", "factor"),
    [
        (0.05 - EPS, 1.0),
        (0.05, 0.5),
        (0.05 + EPS, 0.5),
        (0.10 - EPS, 0.5),
        (0.10, 0.25),
        (0.10 + EPS, 0.25),
        (0.15 - EPS, 0.25),
        (0.15, 0.25),
        (0.15 + EPS, 0.0),
    ],
)
def test_multiplier_boundaries(loss: float, factor: float) -> None:
    assert multiplier(loss, P) == factor


def test_rolling_loss_is_over_the_equity_before_the_window() -> None:
    assert rolling_loss([-500.0, -500.0], 9_000.0) == pytest.approx(0.10)
    assert rolling_loss([1_000.0, -500.0], 10_000.0) == 0.0


def ctx(equity: float) -> RiskContext:
    return RiskContext(0, equity, equity, equity, equity, {}, {}, Instrument("X"))


def loss(amount: float) -> Trade:
    return Trade("X", 1, 1, 0, 1, 100, 99, -amount, 0.0)


def test_shrinks_then_hibernates_until_a_person_resets() -> None:
    plugin = Probation(ProbationParams(window_trades=3))
    trades: list[Trade] = []
    plugin.bind_trades(trades)
    buy = OrderIntent("X", Side.BUY, 10.0)
    assert plugin.check(buy, ctx(10_000)).action is RiskAction.APPROVE
    trades.append(loss(600))  # 600 of 10,000 before: 6%
    decision = plugin.check(buy, ctx(9_400))
    assert decision.action is RiskAction.SHRINK and decision.quantity == 5.0
    trades.append(loss(600))  # 12%
    assert plugin.check(buy, ctx(8_800)).quantity == 2.5
    trades.append(loss(600))  # 18%
    assert plugin.check(buy, ctx(8_200)).code == "hibernating"
    assert plugin.lock_reason() is not None
    assert plugin.check(OrderIntent("X", Side.SELL, 1, reduce_only=True), ctx(8_200)).action is (
        RiskAction.APPROVE
    )
    assert plugin.reset_lock() is None and plugin.lock_reason() is None
    assert plugin.check(buy, ctx(8_200)).action is RiskAction.APPROVE  # the window restarted
    trades.append(loss(100))
    assert plugin.check(buy, ctx(8_100)).action is RiskAction.APPROVE  # 1.2%: full size
