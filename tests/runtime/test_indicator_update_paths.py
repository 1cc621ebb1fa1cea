"""The indicators' faster per-bar paths compute exactly what the plain ones did.

- A close indicator's ``update(bar)`` (which does its ``add``'s arithmetic itself once warmed
  up) equals ``add(bar.close)`` to the last bit: count, readiness, the newest value, every
  output's whole history and the state a strategy reads (MACD's line and signal values).
- A subclass that overrides ``add`` still sees every close through ``update``.
- ATR, ADX, Swings and Fibonacci equal their earlier implementations
  (kept below as references) bar for bar, on random walks on a coarse price grid so that equal
  highs and lows — the ties the swing rule decides with ``<`` on one side and ``<=`` on the
  other, flat bars — happen often.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradefleet_runtime.indicators import (
    ADX,
    ATR,
    MACD,
    RSI,
    Bollinger,
    CloseIndicator,
    Fibonacci,
    Indicator,
    Series,
    Swings,
    true_range,
)
from tradefleet_runtime.indicators.series import NAN
from tradefleet_runtime.model import Bar
from tradefleet_runtime.sdk.testing import make_bars

HOUR = 3600


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a.hex() == b.hex()


def _same_series(a: Series, b: Series) -> bool:
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))


def _same_outputs(a: Indicator, b: Indicator) -> bool:
    mine, theirs = a.outputs(), b.outputs()
    return list(mine) == list(theirs) and all(
        _same_series(mine[name], theirs[name]) for name in mine
    )


# -- close indicators: update(bar) is add(close) ---------------------------------------------

CLOSE_INDICATORS: dict[str, Callable[[], CloseIndicator]] = {
    "RSI": lambda: RSI(5),
    "RSI-2": lambda: RSI(2),
    "MACD": lambda: MACD(3, 7, 4),
    "MACD-2-3-1": lambda: MACD(2, 3, 1),
    "Bollinger": lambda: Bollinger(5, 2.0),
    "Bollinger-1": lambda: Bollinger(1, 1.5),
}


def _state(indicator: CloseIndicator) -> list[float]:
    """What a strategy reads besides the series."""
    if isinstance(indicator, MACD):
        return [indicator.line_value, indicator.signal_value]
    return []


@pytest.mark.parametrize("name", sorted(CLOSE_INDICATORS))
@settings(max_examples=60, deadline=None)
@given(
    closes=st.lists(
        st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
        | st.sampled_from([1.0, 2.0, 3.0]),  # repeats: zero changes, zero variance
        max_size=40,
    )
)
def test_update_with_a_bar_equals_add_of_its_close_to_the_last_bit(
    name: str, closes: list[float]
) -> None:
    by_bar, by_value = CLOSE_INDICATORS[name](), CLOSE_INDICATORS[name]()
    for bar in make_bars([close + 1.0 for close in closes]):
        by_bar.update(bar)
        by_value.add(bar.close)
        assert by_bar.count == by_value.count
        assert by_bar.ready == by_value.ready
        assert _same(by_bar.value, by_value.value)
        assert all(_same(a, b) for a, b in zip(_state(by_bar), _state(by_value), strict=True))
    assert _same_outputs(by_bar, by_value)


def _doubling(base: type[CloseIndicator]) -> type[CloseIndicator]:
    class Doubled(base):  # type: ignore[valid-type, misc]
        __slots__ = ()

        def add(self, value: float) -> None:
            super().add(2 * value)

    return Doubled


@pytest.mark.parametrize(
    ("base", "make"),
    [
        (RSI, lambda cls: cls(3)),
        (MACD, lambda cls: cls(2, 4, 2)),
        (Bollinger, lambda cls: cls(3, 2.0)),
    ],
)
def test_a_subclass_with_its_own_add_sees_every_close_through_update(
    base: type[CloseIndicator], make: Callable[[type[CloseIndicator]], CloseIndicator]
) -> None:
    doubled, plain = make(_doubling(base)), make(base)
    closes = [1.0, 2.0, 4.0, 3.0, 5.0, 6.0, 2.5, 7.0, 6.5, 8.0, 7.5, 9.0]
    for bar in make_bars(closes):
        doubled.update(bar)
        plain.add(2 * bar.close)
    assert doubled.count == plain.count == len(closes)
    assert plain.ready  # the warmed-up path was reached
    assert _same_outputs(doubled, plain)


# -- bar indicators against their earlier implementations ------------------------------------


class ReferenceATR(Indicator):
    def __init__(self, period: int) -> None:
        super().__init__(period + 1)
        self.period = period
        self._previous_close = NAN
        self._total = 0.0

    def update(self, bar: Bar) -> None:
        count = self.count = self.count + 1
        previous, self._previous_close = self._previous_close, bar[6]
        if count > 1:
            tr = true_range(bar[4], bar[5], previous)
            period = self.period
            if count <= period + 1:
                self._total += tr
                if count == period + 1:
                    self.value = self._total / period
            else:
                self.value = (self.value * (period - 1) + tr) / period
        self._push(self.value)


class ReferenceSwings(Indicator):
    def __init__(self, left: int, right: int, history: int = 256) -> None:
        super().__init__(left + right + 1, history)
        self.left, self.right = left, right
        self._bars: deque[tuple[int, float, float]] = deque(maxlen=left + right + 1)
        self.swing_high = self.swing_low = NAN
        self.high_ts = self.low_ts = -1
        self.last = 0
        self.new_high = self.new_low = False
        self.high = Series(history)
        self.low = Series(history)

    def update(self, bar: Bar) -> None:
        bars = self._bars
        bars.append((bar[2], bar[4], bar[5]))
        self.count += 1
        self.new_high = self.new_low = False
        if len(bars) == bars.maxlen:
            left = self.left
            ts, high, low = bars[left]
            before = [bars[i] for i in range(left)]
            after = [bars[i] for i in range(left + 1, len(bars))]
            if all(b[1] < high for b in before) and all(b[1] <= high for b in after):
                self.swing_high, self.high_ts, self.new_high = high, ts, True
                self.last = 1
            if all(b[2] > low for b in before) and all(b[2] >= low for b in after):
                self.swing_low, self.low_ts, self.new_low = low, ts, True
                self.last = -1 if not self.new_high else self.last
        self.value = float(self.last)
        self._push(self.value)
        self.high.append(self.swing_high)
        self.low.append(self.swing_low)

    def outputs(self) -> dict[str, Series]:
        return {"last": self.values, "high": self.high, "low": self.low}


class ReferenceFibonacci(Indicator):
    def __init__(self, left: int, right: int) -> None:
        self.swings = ReferenceSwings(left, right, history=2)
        super().__init__(self.swings.warmup)
        self.direction = 0
        self.start = self.end = NAN

    def update(self, bar: Bar) -> None:
        swings = self.swings
        swings.update(bar)
        self.count += 1
        if swings.high_ts >= 0 and swings.low_ts >= 0:
            if swings.high_ts > swings.low_ts:
                self.direction, self.start, self.end = 1, swings.swing_low, swings.swing_high
            elif swings.low_ts > swings.high_ts:
                self.direction, self.start, self.end = -1, swings.swing_high, swings.swing_low
        self.value = self.end - 0.618 * (self.end - self.start)
        self._push(self.value)


def _walk(seed: int, count: int) -> list[Bar]:
    """Hourly bars on a grid of 0.5: ties between highs, lows and closes are frequent."""
    rng = random.Random(seed)
    bars, close = [], 100.0
    for index in range(count):
        open_ = close
        close = max(1.0, close + rng.choice((-1.0, -0.5, 0.0, 0.5, 1.0)))
        high = max(open_, close) + rng.choice((0.0, 0.0, 0.5, 1.0))
        low = min(open_, close) - rng.choice((0.0, 0.0, 0.5, 1.0))
        bars.append(Bar("AAA", HOUR, index * HOUR, open_, high, low, close, 1.0))
    return bars


def _swing_state(s: Swings | ReferenceSwings) -> tuple[object, ...]:
    return (s.count, s.last, s.high_ts, s.low_ts, s.new_high, s.new_low, s.ready)


@pytest.mark.parametrize(("left", "right"), [(1, 0), (1, 1), (2, 2), (3, 1), (2, 5)])
@pytest.mark.parametrize("seed", range(3))
def test_swings_equal_the_earlier_implementation(left: int, right: int, seed: int) -> None:
    swings, reference = Swings(left, right, history=64), ReferenceSwings(left, right, 64)
    confirmed = 0
    for bar in _walk(seed, 600):
        swings.update(bar)
        reference.update(bar)
        assert _swing_state(swings) == _swing_state(reference)
        assert _same(swings.swing_high, reference.swing_high)
        assert _same(swings.swing_low, reference.swing_low)
        assert _same(swings.value, reference.value)
        confirmed += swings.new_high + swings.new_low
    assert confirmed > 50  # swings were found, both kinds and outside bars among them
    assert _same_outputs(swings, reference)


@pytest.mark.parametrize(("left", "right"), [(1, 1), (2, 2), (3, 3)])
@pytest.mark.parametrize("seed", range(3))
def test_fibonacci_equals_the_earlier_implementation(left: int, right: int, seed: int) -> None:
    fib, reference = Fibonacci(left, right), ReferenceFibonacci(left, right)
    for bar in _walk(seed, 600):
        fib.update(bar)
        reference.update(bar)
        assert (fib.count, fib.direction) == (reference.count, reference.direction)
        assert _same(fib.start, reference.start) and _same(fib.end, reference.end)
        assert _same(fib.value, reference.value)
        assert _same(
            fib.retracement(0.382), reference.end - 0.382 * (reference.end - reference.start)
        )
    assert fib.direction != 0
    assert _same_series(fib.values, reference.values)


@pytest.mark.parametrize("period", [1, 2, 14])
@pytest.mark.parametrize("seed", range(3))
def test_atr_equals_the_earlier_implementation(period: int, seed: int) -> None:
    atr, reference = ATR(period), ReferenceATR(period)
    for bar in _walk(seed, 400):
        atr.update(bar)
        reference.update(bar)
        assert atr.count == reference.count
        assert _same(atr.value, reference.value)
    assert atr.ready
    assert _same_series(atr.values, reference.values)


class ReferenceADX(Indicator):
    def __init__(self, period: int) -> None:
        super().__init__(2 * period)
        self.period = period
        self._high = self._low = self._close = NAN
        self._plus_dm = self._minus_dm = self._tr = 0.0
        self._dx_total = 0.0
        self.plus_di = Series()
        self.minus_di = Series()

    def update(self, bar: Bar) -> None:
        count = self.count = self.count + 1
        high, low = bar[4], bar[5]
        up, down = high - self._high, self._low - low
        tr = true_range(high, low, self._close)
        self._high, self._low, self._close = high, low, bar[6]
        period = self.period
        plus_di = minus_di = NAN
        if count > 1:
            if count > period:
                self._plus_dm -= self._plus_dm / period
                self._minus_dm -= self._minus_dm / period
                self._tr -= self._tr / period
            if down > 0.0 and up < down:
                self._minus_dm += down
            elif up > 0.0 and up > down:
                self._plus_dm += up
            self._tr += tr
            if count > period and self._tr != 0.0:
                plus_di = 100.0 * self._plus_dm / self._tr
                minus_di = 100.0 * self._minus_dm / self._tr
                both = plus_di + minus_di
                dx = 100.0 * abs(minus_di - plus_di) / both if both != 0.0 else 0.0
                if count <= 2 * period:
                    self._dx_total += dx
                    if count == 2 * period:
                        self.value = self._dx_total / period
                else:
                    self.value = (self.value * (period - 1) + dx) / period
        self._push(self.value)
        self.plus_di.append(plus_di)
        self.minus_di.append(minus_di)

    def outputs(self) -> dict[str, Series]:
        return {"adx": self.values, "plus_di": self.plus_di, "minus_di": self.minus_di}


BAR_INDICATORS: dict[str, tuple[Callable[[], Indicator], Callable[[], Indicator]]] = {
    "ADX-2": (lambda: ADX(2), lambda: ReferenceADX(2)),
    "ADX-14": (lambda: ADX(14), lambda: ReferenceADX(14)),
}


@pytest.mark.parametrize("name", sorted(BAR_INDICATORS))
@pytest.mark.parametrize("seed", range(3))
def test_bar_indicators_equal_their_earlier_implementations(name: str, seed: int) -> None:
    make, make_reference = BAR_INDICATORS[name]
    indicator, reference = make(), make_reference()
    for bar in _walk(seed, 500):
        indicator.update(bar)
        reference.update(bar)
        assert indicator.count == reference.count
        assert _same(indicator.value, reference.value)
    assert indicator.ready
    assert _same_outputs(indicator, reference)
    assert not math.isnan(indicator.value)
