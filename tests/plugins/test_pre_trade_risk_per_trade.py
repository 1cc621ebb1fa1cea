"""pre-trade's ``max_risk_per_trade``: an entry that comes with its own quantity (a strategy's,
a signal's volume: no sizer changes it) may lose at most that fraction of equity if its stop is
hit, quantity × |entry − stop|, the entry at the order's price or, for a market order, the
mark. A larger one is shrunk to fit, rounded down to the lot step; one without a stop is vetoed
unless ``risk_without_stop`` is set; reduce-only orders always pass; 0 (the default) is off.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.runtime.helpers import flat_bars, make_engine
from tradefleet_plugins.risk.pre_trade import PreTrade, risk_at_stop
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.contracts import RiskContext, RiskPlugin
from tradefleet_runtime.journal.sqlite import Journal
from tradefleet_runtime.model import (
    Instrument,
    Order,
    OrderIntent,
    OrderType,
    OrderUpdate,
    RiskAction,
    Side,
)
from tradefleet_runtime.sdk import fixed_fractional_quantity
from tradefleet_runtime.service.api import Direction, Signal

TS = int(datetime(2024, 6, 5, 12, 0, tzinfo=UTC).timestamp())
A, S, V = RiskAction.APPROVE, RiskAction.SHRINK, RiskAction.VETO
EQUITY = 10_000.0
# X at 100 with a stop at 98: 2.0 a unit, exact in binary; 1% of 10,000 is 100, so 50 units.
MARK = 100.0
STOP = 98.0


def ctx(
    equity: float = EQUITY,
    instrument: Instrument | None = None,
    marks: dict[str, float] | None = None,
    leverage: float = 100.0,
) -> RiskContext:
    return RiskContext(
        ts=TS, equity=equity, cash=equity, start_of_day_equity=equity, peak_equity=equity,
        positions={}, marks=marks or {"X": MARK, "Y": MARK},
        instrument=instrument or Instrument("X"), leverage=leverage, initial_equity=equity,
    )  # fmt: skip


def check(intent: OrderIntent, context: RiskContext | None = None, **params: Any) -> Any:
    # Every other check off, so a decision is this one's.
    off: dict[str, Any] = {
        "price_band": 0, "max_gross_exposure": 0, "group_cap": 0, "max_correlation": 0,
        "max_open_positions": 0, "max_leverage": 0, "max_risk_per_trade": 0.01,
    }  # fmt: skip
    return PreTrade(PreTradeParams(**{**off, **params})).check(intent, context or ctx())


def buy(quantity: float | None, stop: float | None = STOP, **kw: Any) -> OrderIntent:
    return OrderIntent("X", Side.BUY, quantity, stop_loss=stop, **kw)


@pytest.mark.parametrize(("quantity", "action"), [(49.99, A), (50.0, A), (50.01, S)])
def test_the_cap_at_its_boundary(quantity: float, action: RiskAction) -> None:
    decision = check(buy(quantity))
    assert decision.action is action
    if action is S:
        assert decision.quantity == pytest.approx(50.0, rel=1e-12)
        assert decision.quantity * (MARK - STOP) <= 100.0 * (1 + 1e-12)
        assert decision.code == "max_risk_per_trade"


def test_the_reason_says_from_what_to_what_and_why() -> None:
    decision = check(buy(100.0))
    assert decision.action is S and decision.quantity == 50.0
    assert decision.reason == (
        "risk 200.00 at the stop exceeds 1.00% of equity 10,000.00 (max_risk_per_trade): 100 -> 50"
    )


def test_a_short_with_its_stop_above_is_capped_the_same() -> None:
    sell = OrderIntent("X", Side.SELL, 100.0, stop_loss=102.0)
    decision = check(sell)
    assert decision.action is S and decision.quantity == 50.0
    assert check(sell._replace(quantity=50.0)).action is A


def test_a_limit_entry_is_measured_from_its_price_not_the_mark() -> None:
    # A buy limit at 90 with its stop at 88 risks 2 a unit, whatever the mark (100) is: from
    # the mark it would be 12 a unit, and 50 units would be cut to 8.33.
    limit = buy(50.0, stop=88.0, order_type=OrderType.LIMIT, price=90.0)
    assert check(limit).action is A
    decision = check(limit._replace(quantity=60.0))
    assert decision.action is S and decision.quantity == 50.0
    # A market order with the same stop is measured from the mark: 12 a unit.
    market = check(buy(50.0, stop=88.0))
    assert market.action is S and market.quantity == pytest.approx(100.0 / 12.0)


def test_a_shrink_rounds_down_to_the_lot_step() -> None:
    # EURUSD on an MT5 account: a lot step and minimum of 1,000 units (0.01 lot). One lot with
    # a 20-pip stop on 10,000 risks 200; the cap allows 50,000 — on the step.
    eurusd = Instrument("EURUSD", lot_step=1_000.0, min_quantity=1_000.0)
    at = ctx(instrument=eurusd, marks={"EURUSD": 1.0850})
    lot = OrderIntent("EURUSD", Side.BUY, 100_000.0, stop_loss=1.0830)
    decision = check(lot, at)
    assert decision.action is S and decision.quantity == 50_000.0
    assert "200.00" in decision.reason and "100000 -> 50000" in decision.reason
    # A 35-pip stop allows 28,571.4: rounded down to 28,000, never up to 29,000.
    wide = check(lot._replace(stop_loss=1.0815), at)
    assert wide.action is S and wide.quantity == 28_000.0
    assert wide.quantity * (1.0850 - 1.0815) <= 100.0


def test_a_cap_below_the_instruments_minimum_vetoes() -> None:
    # 1% of 10,000 over a 250-pip stop allows 4,000 units; the minimum is 10,000.
    big = Instrument("EURUSD", lot_step=10_000.0, min_quantity=10_000.0)
    at = ctx(instrument=big, marks={"EURUSD": 1.0850})
    decision = check(OrderIntent("EURUSD", Side.BUY, 100_000.0, stop_loss=1.06), at)
    assert decision.action is V and decision.code == "max_risk_per_trade"
    assert "minimum quantity 10000" in decision.reason


def test_an_entry_without_a_stop_is_vetoed_naming_it() -> None:
    decision = check(buy(1.0, stop=None))
    assert decision.action is V and decision.code == "no_stop"
    assert "X entry has no stop-loss" in decision.reason
    assert "risk_without_stop" in decision.reason


def test_risk_without_stop_assumes_a_move_of_the_price() -> None:
    # 2% of 100 is 2 a unit: 50 units is 1% of 10,000.
    assert check(buy(50.0, stop=None), risk_without_stop=0.02).action is A
    decision = check(buy(80.0, stop=None), risk_without_stop=0.02)
    assert decision.action is S and decision.quantity == 50.0


def test_reduce_only_orders_always_pass() -> None:
    exit_ = OrderIntent("X", Side.SELL, 1e6, reduce_only=True)
    assert check(exit_).action is A
    assert check(exit_, max_risk_per_trade=0.001).action is A


def test_off_by_default() -> None:
    assert PreTradeParams().max_risk_per_trade == 0
    assert check(buy(1_000.0, stop=None), max_risk_per_trade=0).action is A


def test_per_symbol_override() -> None:
    per_symbol = {"X": 0.005}
    decision = check(buy(50.0), max_risk_per_trade_per_symbol=per_symbol)
    assert decision.action is S and decision.quantity == 25.0  # 0.5% of 10,000 over 2
    other = OrderIntent("Y", Side.BUY, 50.0, stop_loss=STOP)
    at_y = ctx(instrument=Instrument("Y"))
    assert check(other, at_y, max_risk_per_trade_per_symbol=per_symbol).action is A  # 1%
    off_for_x = {"X": 0.0}
    assert check(buy(1_000.0, stop=None), max_risk_per_trade_per_symbol=off_for_x).action is A


def test_an_unsized_order_is_vetoed_while_the_cap_is_on() -> None:
    # pre-trade before the sizer would let through any size the sizer then gives.
    decision = check(buy(None))
    assert decision.action is V and decision.code == "unsized"
    assert "put pre-trade after the sizer" in decision.reason
    assert check(buy(None), max_risk_per_trade=0).action is A


def test_no_equity_is_vetoed_as_such() -> None:
    decision = check(buy(1.0), ctx(equity=0.0))
    assert decision.action is V and decision.code == "no_equity"


def test_a_quantity_cap_and_the_risk_cap_are_both_said() -> None:
    decision = check(buy(500.0), max_order_quantity=200.0)
    assert decision.action is S and decision.quantity == 50.0
    assert decision.reason.startswith("order capped at 200 (max quantity); risk 400.00 ")
    assert decision.reason.endswith("200 -> 50")


def test_the_margin_check_judges_the_shrunk_order() -> None:
    # 150 × 100 = 15,000 of notional does not fit 10,000 at 1:1; the 50 left by the cap do.
    assert check(buy(150.0), margin_leverage=1, max_risk_per_trade=0).action is V
    decision = check(buy(150.0), margin_leverage=1)
    assert decision.action is S and decision.quantity == 50.0


@settings(max_examples=300, deadline=None)
@given(
    equity=st.floats(100.0, 1e7),
    price=st.floats(1e-3, 1e5),
    distance=st.floats(1e-4, 0.5),
    fraction=st.floats(1e-4, 0.2),
)
def test_fixed_fractional_at_the_same_fraction_is_never_shrunk(
    equity: float, price: float, distance: float, fraction: float
) -> None:
    stop = price * (1 - distance)
    quantity = fixed_fractional_quantity(equity, price, price - stop, fraction, 1e9)
    at = ctx(equity=equity, marks={"X": price}, leverage=1e12)  # margin no object
    assert check(buy(quantity, stop=stop), at, max_risk_per_trade=fraction).action is A


@settings(max_examples=300, deadline=None)
@given(
    quantity=st.floats(1e-3, 1e7),
    distance=st.floats(1e-4, 0.5),
    step=st.sampled_from([0.0, 1e-5, 0.001, 0.01, 0.1, 1.0, 1_000.0]),
    short=st.booleans(),
)
def test_a_shrunk_order_is_on_the_step_and_within_the_cap(
    quantity: float, distance: float, step: float, short: bool
) -> None:
    side = Side.SELL if short else Side.BUY
    stop = MARK * (1 + distance) if short else MARK * (1 - distance)
    intent = OrderIntent("X", side, quantity, stop_loss=stop)
    decision = check(intent, ctx(instrument=Instrument("X", lot_step=step)))
    risk = risk_at_stop(quantity, MARK, stop, 0.0)
    assert risk is not None
    if risk <= 100.0 * (1 + 1e-9):  # a float's last bits over is no breach
        assert decision.action is A
        return
    if decision.action is V:  # the cap allows less than one step
        assert step and 100.0 / abs(MARK - stop) < step * (1 + 1e-9)
        return
    assert decision.action is S and decision.quantity < quantity
    assert decision.quantity * abs(MARK - stop) <= 100.0 * (1 + 1e-9)
    if step:
        units = decision.quantity / step
        assert abs(units - round(units)) < 1e-6
        # Rounded down by less than one step: the largest on the step that fits.
        assert (decision.quantity + step) * abs(MARK - stop) > 100.0 * (1 - 1e-9)


def test_params_are_bounded_and_name_the_field() -> None:
    with pytest.raises(ValidationError, match="max_risk_per_trade"):
        PreTradeParams(max_risk_per_trade=1)  # 1 for 1%: 100% of equity a trade
    with pytest.raises(ValidationError, match=r"max_risk_per_trade_per_symbol\.X"):
        PreTradeParams(max_risk_per_trade_per_symbol={"X": -0.01})
    with pytest.raises(ValidationError, match=r"max_risk_per_trade_per_symbol\.XX"):
        PreTradeParams.model_validate(
            {"max_risk_per_trade_per_symbol": {"XX": 0.01}}, context={"symbols": ["X"]}
        )
    with pytest.raises(ValidationError, match="risk_without_stop"):
        PreTradeParams(risk_without_stop=1)


def test_a_signal_with_volume_risks_no_more_than_max_risk_per_trade() -> None:
    """A webhook signal of 1 lot (100,000 EURUSD) with a 20-pip stop on a 10,000 account risks
    200 (2%). Its volume is the order's quantity (the sizer does not size it); pre-trade's
    max_risk_per_trade at 1% shrinks it to 50,000 (0.5 lot) before prop-firm sees it.

    Paper broker at MT5's contract and steps for EURUSD (100,000 a lot, 0.01 lot steps) and
    100:1; prop-firm's fee_bps at 1 (an FX commission). pre-trade's gross exposure cap (150% of
    equity by default) is off: prop-firm's 100:1 bounds it on this account."""
    strategy = ExternalSignal(ExternalSignalParams(volume_unit="lots"))
    pre_trade = PreTradeParams(max_risk_per_trade=0.01, max_gross_exposure=0)
    risk: list[tuple[str, RiskPlugin]] = [
        # 30x, an FX account's: the sizer's default 1x would itself cut the lot to 9,000.
        (
            "fixed-fractional",
            FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=30)),
        ),
        ("pre-trade", PreTrade(pre_trade)),
        ("prop-firm", PropFirm(PropFirmParams(fee_bps=1.0))),
    ]
    instrument = {"contract_size": 100_000, "lot_step": 1_000, "min_quantity": 1_000}
    journal = Journal(":memory:")
    engine = make_engine(
        strategy,
        symbols=("EURUSD",),
        capital=EQUITY,
        broker={"leverage": 100, "default_instrument": instrument},
        risk=risk,
        journal=journal,
    )
    engine.portfolio.leverage = 100.0  # what a session reads from the broker (knows-leverage)
    engine.signals = strategy
    sent: list[Order] = []
    submit = engine.broker.submit

    def recording(order: Order) -> OrderUpdate:
        sent.append(order)
        return submit(order)

    engine.broker.submit = recording  # type: ignore[method-assign]
    engine.run(flat_bars([1.0850] * 3, symbol="EURUSD"))
    signal = Signal(
        "EURUSD",
        Direction.BUY,
        entry=1.0850,
        stop_loss=1.0830,  # 20 pips
        take_profit=1.0890,
        volume=1.0,  # one lot: 100,000 EURUSD
        current_price=1.0851,
    )
    accepted, reason, _ = engine.handle_signal(signal)
    engine.finish()
    assert accepted, reason
    entries = [o for o in sent if o.parent_id is None and not o.reduce_only]
    assert [o.quantity for o in entries] == [50_000.0]
    assert entries[0].quantity * (1.0850 - 1.0830) <= 0.01 * EQUITY * (1 + 1e-9)
    decisions = journal.query(
        "SELECT plugin, action, code, reason FROM risk_decisions WHERE action != 'approve'"
    )
    assert decisions == [
        (
            "pre-trade",
            "shrink",
            "max_risk_per_trade",
            "risk 200.00 at the stop exceeds 1.00% of equity 10,000.00 (max_risk_per_trade): "
            "100000 -> 50000",
        )
    ]
