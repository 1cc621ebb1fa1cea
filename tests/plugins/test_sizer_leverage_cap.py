"""A sizer whose ``max_leverage`` cut the size says so in its reason, and with room under the
cap ``fixed-fractional`` risks what it asks on an MT5 forex or gold account.

The decision read "risk 1.00% of 10000.00" while the default 1x cap had sized an EURUSD order at
a fifth of that risk (9,216 units, 0.09 lot: 18 USD at a 20-pip stop): the journal's word for
the risk a trade ran was wrong. The sizer decides; the MT5 broker sends its quantity to the
emulated terminal, whose deal says the lots.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers.mt5.harness import Mt5Harness
from tradefleet_plugins.risk.kelly import Kelly
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.risk.sizing import leverage_capped
from tradefleet_plugins.risk.volatility_target import VolatilityTarget
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, Side

EQUITY = 10_000.0


def ctx(symbol: str, mark: float) -> RiskContext:
    return RiskContext(
        ts=1_736_121_600,
        equity=EQUITY,
        cash=EQUITY,
        start_of_day_equity=EQUITY,
        peak_equity=EQUITY,
        positions={},
        marks={symbol: mark},
        instrument=Instrument(symbol),
        stops={},
        initial_equity=EQUITY,
    )


@pytest.fixture
def terminal() -> Iterator[Mt5Harness]:
    harness = Mt5Harness.netting().connect()
    yield harness
    harness.close()


def _lots(harness: Mt5Harness, symbol: str, quantity: float) -> float:
    harness.submit(harness.order(Side.BUY, quantity, symbol=symbol))
    deals = harness.deals()
    assert deals, f"the terminal made no deal for {quantity:g} {symbol}"
    return float(deals[-1].volume)


def test_one_percent_of_10000_over_a_20_pip_stop_is_half_a_lot_with_room_under_the_cap(
    terminal: Mt5Harness,
) -> None:
    """docs/mt5.md's example: 50,000 EURUSD, 0.5 lot, 100 USD at the stop; no cap named."""
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=30))
    decision = sizer.check(
        OrderIntent("EURUSD", Side.BUY, None, stop_loss=1.0830), ctx("EURUSD", 1.0850)
    )
    assert decision.quantity == pytest.approx(50_000.0)
    assert decision.reason == "risk 1.00% of 10000.00"
    assert _lots(terminal, "EURUSD", decision.quantity) == 0.5


def test_gold_one_percent_over_a_10_dollar_stop_is_a_tenth_of_a_lot(terminal: Mt5Harness) -> None:
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=30))
    decision = sizer.check(
        OrderIntent("XAUUSD", Side.BUY, None, stop_loss=2640.0), ctx("XAUUSD", 2650.0)
    )
    assert decision.quantity == pytest.approx(10.0)
    assert _lots(terminal, "XAUUSD", decision.quantity) == 0.1


def test_the_default_1x_cap_is_named_with_the_share_of_the_risk_it_left(
    terminal: Mt5Harness,
) -> None:
    """1x: 10,000 / 1.085 = 9,216 units (0.09 lot), 18% of the asked 1% at the stop."""
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.01))
    decision = sizer.check(
        OrderIntent("EURUSD", Side.BUY, None, stop_loss=1.0830), ctx("EURUSD", 1.0850)
    )
    assert decision.quantity == pytest.approx(EQUITY / 1.0850)
    assert decision.reason == (
        "risk 1.00% of 10000.00, capped by max_leverage 1 (notional at most 1x equity) "
        "to 18% of that risk"
    )
    assert _lots(terminal, "EURUSD", decision.quantity) == 0.09


def test_the_other_sizers_name_the_cap_too() -> None:
    kelly = Kelly(KellyParams(min_trades=10, fallback_risk=0.01))  # no trades yet: 1%
    decision = kelly.check(
        OrderIntent("EURUSD", Side.BUY, None, stop_loss=1.0830), ctx("EURUSD", 1.0850)
    )
    assert decision.reason.endswith(
        ", capped by max_leverage 1 (notional at most 1x equity) to 18% of that risk"
    ), decision.reason

    target = VolatilityTarget(VolatilityTargetParams(atr_period=2))
    for ts in range(3):
        target.on_bar(Bar("EURUSD", 3600, ts * 3600, 1.085, 1.0851, 1.0849, 1.085, 1.0))
    decision = target.check(OrderIntent("EURUSD", Side.BUY, None), ctx("EURUSD", 1.0850))
    assert ", capped by max_leverage 1 (notional at most 1x equity) to " in decision.reason, (
        decision.reason
    )


@pytest.mark.parametrize(
    ("by_risk", "by_leverage", "said"),
    [
        (100.0, 100.0, ""),
        (100.0, 150.0, ""),
        (
            100.0,
            25.0,
            ", capped by max_leverage 2 (notional at most 2x equity) to 25% of that risk",
        ),
        (0.0, 10.0, ""),
    ],
)
def test_leverage_capped(by_risk: float, by_leverage: float, said: str) -> None:
    assert leverage_capped(by_risk, by_leverage, 2.0) == said
