"""``external-signal``: a signal against an entry of the other way that is still working.

At default params a BUY then a SELL before the next bar were both accepted: the two market
entries netted out at the venue (a zero-length trade), and both brackets stayed working around
what was left. The working entry is now met as the position it becomes: refused without
``reverse_on_opposite``, cancelled (then the new entry sent) with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.runtime.helpers import flat_bars
from tests.runtime.signal_engines import signal_engine
from tradefleet_runtime.model import Order, Side
from tradefleet_runtime.service.api import Direction, Signal


def signal(direction: Direction, volume: float = 1000, entry: float = 1.0) -> Signal:
    stop, target = (0.9, 1.1) if direction is Direction.BUY else (1.1, 0.9)
    return Signal("TEST", direction, entry=entry, stop_loss=stop, take_profit=target, volume=volume)


def entries(engine: Any) -> list[Order]:
    return [o for o in engine.open_orders("TEST") if not o.reduce_only and o.parent_id is None]


@pytest.mark.parametrize("first", [Direction.BUY, Direction.SELL])
def test_without_reverse_a_signal_against_a_working_entry_is_refused(first: Direction) -> None:
    engine, sent = signal_engine()
    bars = flat_bars([1.0] * 5)
    engine.run(bars[:2])
    accepted, reason, first_id = engine.handle_signal(signal(first))
    assert accepted, reason
    other = Direction.SELL if first is Direction.BUY else Direction.BUY
    accepted, reason, order_id = engine.handle_signal(signal(other))
    assert not accepted and order_id == ""
    assert reason == (
        f"signal is against the working {first.value.lower()} entry for TEST ({first_id}); "
        "reverse_on_opposite is off"
    )
    assert [o.client_order_id for o in sent] == [first_id]
    engine.run(bars[2:])
    # The one entry filled, bracketed by its own stop and target; nothing netted it out.
    held = engine.position("TEST").quantity
    assert held == (1000 if first is Direction.BUY else -1000)
    assert engine.portfolio.trades == []
    working = engine.open_orders("TEST")
    assert sorted(o.tag for o in working) == ["stop_loss", "take_profit"]
    assert all(o.side is (Side.SELL if held > 0 else Side.BUY) for o in working)


def test_without_reverse_a_resting_limit_refuses_the_other_way_until_cancelled() -> None:
    engine, _ = signal_engine(entry_order="limit")
    bars = flat_bars([1.0] * 4)
    engine.run(bars[:2])
    accepted, reason, buy_id = engine.handle_signal(signal(Direction.BUY, entry=0.995))
    assert accepted, reason
    engine.run(bars[2:])  # 1.0 never reaches 0.995: the buy keeps resting
    refused, reason, _ = engine.handle_signal(signal(Direction.SELL, entry=1.005))
    assert not refused and f"working buy entry for TEST ({buy_id})" in reason
    engine.cancel(buy_id)
    accepted, reason, _ = engine.handle_signal(signal(Direction.SELL, entry=1.005))
    assert accepted, reason


def test_with_reverse_a_working_entry_is_cancelled_before_the_new_one() -> None:
    """Reversing a position closes it (cancelling its brackets) and enters; reversing an entry
    not filled yet cancels it and enters: no exit is sent (nothing is held), and the one entry
    left is the new one."""
    engine, sent = signal_engine(reverse_on_opposite=True)
    bars = flat_bars([1.0] * 5)
    engine.run(bars[:2])
    accepted, reason, buy_id = engine.handle_signal(signal(Direction.BUY, volume=4000))
    assert accepted, reason
    sent.clear()
    accepted, reason, sell_id = engine.handle_signal(signal(Direction.SELL))
    assert accepted, reason
    assert [(o.side, o.quantity, o.reduce_only) for o in sent] == [(Side.SELL, 1000, False)]
    assert [o.client_order_id for o in entries(engine)] == [sell_id]
    assert buy_id not in {o.client_order_id for o in engine.open_orders("TEST")}
    engine.run(bars[2:])
    assert engine.position("TEST").quantity == -1000
    assert engine.portfolio.trades == []  # no zero-length trade
    working = engine.open_orders("TEST")
    assert sorted((o.tag, o.side, o.quantity) for o in working) == [
        ("stop_loss", Side.BUY, 1000),
        ("take_profit", Side.BUY, 1000),
    ]


def test_a_same_way_signal_with_reverse_on_does_not_cancel_the_working_entry() -> None:
    """Only the other way reverses: with pyramiding a second buy adds, the first kept."""
    engine, sent = signal_engine(reverse_on_opposite=True, allow_pyramiding=True)
    engine.run(flat_bars([1.0] * 2))
    first = engine.handle_signal(signal(Direction.BUY))
    second = engine.handle_signal(signal(Direction.BUY))
    assert first[0] and second[0]
    assert sorted(o.client_order_id for o in entries(engine)) == sorted([first[2], second[2]])
    assert all(not o.reduce_only for o in sent)
