"""Regression tests of defects in the manifest loader, plugin params and ``external-signal``.

Each test is named after the defect it pins; each failed before its fix.
"""

from __future__ import annotations

from typing import Any

from tests.runtime.helpers import flat_bars, make_engine
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.model import Order, Side
from tradefleet_runtime.service.api import Direction, Signal

# -- external-signal -------------------------------------------------------------------------


def _signal_engine(**params: Any) -> tuple[Any, list[Order]]:
    """An engine trading ``external-signal`` on the paper broker, recording every order sent."""
    strategy = ExternalSignal(ExternalSignalParams.model_validate(params))
    engine = make_engine(strategy, capital=100_000.0)
    sent: list[Order] = []
    submit = engine.broker.submit

    def recording_submit(order: Order) -> Any:
        sent.append(order)
        return submit(order)

    engine.broker.submit = recording_submit  # type: ignore[method-assign]
    return engine, sent


def _buy(
    volume: float, sl: float = 0.9, tp: float = 1.1, direction: Direction = Direction.BUY
) -> Signal:
    if direction is Direction.SELL:
        sl, tp = tp, sl
    return Signal("TEST", direction, entry=1.0, stop_loss=sl, take_profit=tp, volume=volume)


def test_pyramiding_signal_adds_to_the_position_and_keeps_its_brackets() -> None:
    engine, sent = _signal_engine(allow_pyramiding=True)
    bars = flat_bars([1.0] * 6)
    engine.run(bars[:2])
    accepted, reason, _ = engine.handle_signal(_buy(4000))
    assert accepted, reason
    engine.run(bars[2:4])  # the entry fills at the next open; its SL/TP children rest
    assert engine.position("TEST").quantity == 4000
    first_children = {o.client_order_id for o in engine.open_orders("TEST")}
    assert len(first_children) == 2  # stop-loss and take-profit of the first entry
    sent.clear()
    accepted, reason, _ = engine.handle_signal(_buy(1000, sl=0.85, tp=1.15))
    assert accepted, reason
    # One order: a buy of 1,000 with its own bracket; nothing closed, nothing cancelled.
    assert [(o.side, o.quantity, o.reduce_only) for o in sent] == [(Side.BUY, 1000, False)]
    assert first_children <= {o.client_order_id for o in engine.open_orders("TEST")}
    engine.run(bars[4:])
    assert engine.position("TEST").quantity == 5000
    working = {o.client_order_id: o for o in engine.open_orders("TEST")}
    assert first_children <= set(working)
    # The first entry's brackets still cover its 4,000; the second's cover its 1,000.
    assert sorted(o.quantity for o in working.values()) == [1000, 1000, 4000, 4000]


def test_opposite_signal_with_reverse_closes_then_enters() -> None:
    engine, sent = _signal_engine(reverse_on_opposite=True)
    bars = flat_bars([1.0] * 6)
    engine.run(bars[:2])
    assert engine.handle_signal(_buy(4000))[0]
    engine.run(bars[2:4])
    sent.clear()
    accepted, reason, _ = engine.handle_signal(_buy(1000, direction=Direction.SELL))
    assert accepted, reason
    assert [(o.side, o.quantity, o.reduce_only) for o in sent] == [
        (Side.SELL, 4000, True),
        (Side.SELL, 1000, False),
    ]
    engine.run(bars[4:])
    assert engine.position("TEST").quantity == -1000
