"""Rounding to the instrument never makes an order worse for the bot: a quantity never grows, a
limit buy never pays more (a sell never takes less), a stop never fires earlier; a value already
on the grid stays where it is, binary representation error and all. "Never" is to within 1e-14
of the value: what is closer to a step than that is taken as on it (float noise, ~45 ulps)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tradefleet_runtime.instruments import round_price, round_quantity
from tradefleet_runtime.model import OrderType, Side

NOISE = 1e-14
STEPS = st.sampled_from([1.0, 0.5, 0.1, 0.01, 0.001, 0.00001, 0.25])


@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), STEPS)
@example(313.18999968749654, 0.01)  # 3e-7 below a step: once snapped up to 313.19
@example(131072.0, 0.00001)
def test_a_quantity_never_grows_and_loses_less_than_a_step(quantity: float, step: float) -> None:
    rounded = round_quantity(quantity, step)
    assert rounded <= quantity * (1 + NOISE)
    assert quantity - rounded < step * (1 + 1e-9)
    units = rounded / step
    assert abs(units - round(units)) <= 1e-12 * max(1.0, units)  # on the lot step


@given(st.integers(min_value=0, max_value=10_000_000), STEPS)
@example(3, 0.1)  # 0.1 * 3 is 0.30000000000000004, and 0.3 / 0.1 is 2.9999999999999996
def test_a_value_on_the_grid_stays_on_it(units: int, step: float) -> None:
    value = units * step
    assert round_quantity(value, step) == pytest.approx(value, rel=1e-12, abs=1e-12)
    for side in Side:
        for order_type in (OrderType.LIMIT, OrderType.STOP):
            price = round_price(value, step, side, order_type) if value > 0 else value
            assert price == pytest.approx(value, rel=1e-12, abs=1e-12)


@given(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), STEPS, st.sampled_from(Side))
@example(5560.0, 0.00001, Side.BUY)  # on the tick: once returned one ulp above it
@example(274429.5873797256, 0.00001, Side.SELL)  # 0.27 tick off: once snapped to the tick
def test_a_price_rounds_only_to_the_bots_side(price: float, tick: float, side: Side) -> None:
    limit = round_price(price, tick, side, OrderType.LIMIT)
    stop = round_price(price, tick, side, OrderType.STOP)
    low, high = price * (1 - NOISE), price * (1 + NOISE)
    if side is Side.BUY:
        assert limit <= high and stop >= low  # pays no more; triggers no earlier (above)
    else:
        assert stop <= high and limit >= low  # takes no less; triggers no earlier (below)
    assert abs(limit - price) < tick * (1 + 1e-9) and abs(stop - price) < tick * (1 + 1e-9)
