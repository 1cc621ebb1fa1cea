"""The indicator book's bar handler and the averages' one-call ``update``: every declared
indicator and history is updated once with each bar of its own series, in declaration order
(histories first), before ``on_bar`` sees that bar — whatever mix of series is declared — and
``update(bar)`` is ``add(bar.close)`` to the last bit."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradefleet_plugins.strategies.ema_cross import EmaCross
from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_runtime.indicators import (
    EMA,
    SMA,
    WMA,
    BarHistory,
    CloseIndicator,
    IndicatorBook,
    bar_handler,
)
from tradefleet_runtime.model import Bar
from tradefleet_runtime.sdk import Strategy
from tradefleet_runtime.sdk.testing import make_bars, run_strategy

HOUR = 3600
SYMBOLS = ("AAA", "BBB", "CCC")
TIMEFRAMES = (HOUR, 4 * HOUR)


class Recorder(CloseIndicator):
    """Remembers every bar it was updated with, and writes itself in a shared log each time."""

    __slots__ = ("bars", "log")

    def __init__(self, log: list[object]) -> None:
        super().__init__(1)
        self.bars: list[Bar] = []
        self.log = log

    def update(self, bar: Bar) -> None:
        self.log.append(self)
        self.bars.append(bar)
        self.add(bar[6])

    def add(self, value: float) -> None:
        self.count += 1
        self.value = value
        self._push(value)


def _bar(symbol: str, timeframe_s: int, index: int) -> Bar:
    close = 100.0 + index
    return Bar(symbol, timeframe_s, index * timeframe_s, close, close, close, close, 1.0)


def _stream(rng: random.Random, count: int) -> list[Bar]:
    """Bars of every symbol and timeframe, declared or not, interleaved at random."""
    return [_bar(rng.choice(SYMBOLS), rng.choice(TIMEFRAMES), index) for index in range(count)]


keys = st.lists(
    st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(TIMEFRAMES)), min_size=1, max_size=6
)


@settings(max_examples=150, deadline=None)
@given(
    declared=keys,
    with_history=st.lists(st.booleans(), min_size=6, max_size=6),
    seed=st.integers(0, 10**6),
)
def test_each_indicator_sees_exactly_its_series_bars_in_order_before_on_bar(
    declared: list[tuple[str, int]], with_history: list[bool], seed: int
) -> None:
    # One series, one timeframe for several symbols, or several of each: every specialised
    # handler against the definition (the bars of the indicator's own series, nothing else).
    log: list[object] = []
    book = IndicatorBook()
    recorders = [Recorder(log) for _ in declared]
    histories: dict[tuple[str, int], BarHistory] = {}
    for key, recorder, keep_bars in zip(declared, recorders, with_history, strict=False):
        book.add(key, recorder)
        if keep_bars:
            histories[key] = book.history(key, 4)
    seen: list[Bar] = []

    def on_bar(bar: Bar) -> None:
        key = (bar[0], bar[1])
        # Its series' indicators were updated just now, once each, in declaration order...
        mine = [r for k, r in zip(declared, recorders, strict=True) if k == key]
        assert log == mine
        log.clear()
        for recorder in mine:  # ...so the newest value is this very bar's: no lookahead
            assert recorder.bars[-1] is bar and recorder[-1] == bar.close
        if key in histories:
            assert histories[key][-1] is bar
        seen.append(bar)

    handle = bar_handler(on_bar, book)
    bars = _stream(random.Random(seed), 60)
    for bar in bars:
        handle(bar)

    assert seen == bars
    for key, recorder in zip(declared, recorders, strict=True):
        assert recorder.bars == [bar for bar in bars if (bar.symbol, bar.timeframe_s) == key]
        assert recorder.count == len(recorder.bars)
    for key, history in histories.items():
        own = [bar for bar in bars if (bar.symbol, bar.timeframe_s) == key]
        assert list(history) == own[-4:]


def test_two_symbols_on_two_timeframes_update_each_indicator_once_per_its_bar() -> None:
    log: list[object] = []
    book = IndicatorBook()
    wanted = [("AAA", HOUR), ("BBB", HOUR), ("AAA", 4 * HOUR), ("BBB", 4 * HOUR)]
    recorders = {key: (Recorder(log), Recorder(log)) for key in wanted}
    for key, (first, second) in recorders.items():
        book.add(key, first)
        book.add(key, second)
    calls: list[tuple[str, int]] = []

    def on_bar(bar: Bar) -> None:
        assert log == list(recorders[bar.symbol, bar.timeframe_s])  # first, then second
        log.clear()
        calls.append((bar.symbol, bar.timeframe_s))

    handle = bar_handler(on_bar, book)
    bars = [_bar(symbol, timeframe, i) for i in range(8) for symbol, timeframe in wanted]
    for bar in bars:
        handle(bar)

    assert calls == [(bar.symbol, bar.timeframe_s) for bar in bars]
    for key, (first, second) in recorders.items():
        own = [bar for bar in bars if (bar.symbol, bar.timeframe_s) == key]
        assert first.bars == own and second.bars == own


def test_a_book_declaring_nothing_hands_back_on_bar_and_a_sealed_book_refuses_more() -> None:
    def on_bar(bar: Bar) -> None:
        pass

    assert bar_handler(on_bar, None) is on_bar
    empty = IndicatorBook()
    assert bar_handler(on_bar, empty) is on_bar
    with pytest.raises(RuntimeError, match="on_start"):
        empty.add(("AAA", HOUR), EMA(3))
    book = IndicatorBook()
    history = book.history(("AAA", HOUR), 8)
    bar_handler(on_bar, book)
    assert book.history(("AAA", HOUR), 8) is history  # asking again is fine
    with pytest.raises(RuntimeError, match="on_start"):
        book.history(("AAA", HOUR), 16)


# -- the averages' update(bar) is add(close), bit for bit ------------------------------------

AVERAGES: dict[str, Callable[[], CloseIndicator]] = {
    "EMA": lambda: EMA(7),
    "EMA-seed-first": lambda: EMA(7, seed_first=True),
    "EMA-1": lambda: EMA(1),
    "SMA": lambda: SMA(5),
    "SMA-1": lambda: SMA(1),
    "WMA": lambda: WMA(6),
    "WMA-1": lambda: WMA(1),
}


@pytest.mark.parametrize("name", sorted(AVERAGES))
@settings(max_examples=60, deadline=None)
@given(
    closes=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
        max_size=40,
    )
)
def test_update_with_a_bar_equals_add_of_its_close_to_the_last_bit(
    name: str, closes: list[float]
) -> None:
    by_bar, by_value = AVERAGES[name](), AVERAGES[name]()
    for bar in make_bars([abs(close) + 1.0 for close in closes]):
        by_bar.update(bar)
        by_value.add(bar.close)
        assert by_bar.count == by_value.count
        assert by_bar.ready == by_value.ready
        assert _same(by_bar.value, by_value.value)
    assert len(by_bar) == len(by_value)
    assert all(_same(a, b) for a, b in zip(by_bar.values, by_value.values, strict=True))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a.hex() == b.hex()


def _doubling(base: type[CloseIndicator], own_update: bool) -> type[CloseIndicator]:
    """``base`` with its own ``add`` (twice the close), and an ``update`` of its own too."""

    class Doubled(base):  # type: ignore[valid-type, misc]
        __slots__ = ()

        def add(self, value: float) -> None:
            super().add(2 * value)

    if not own_update:
        return Doubled

    class Deferring(Doubled):
        __slots__ = ()

        def update(self, bar: Bar) -> None:  # its own, handing the bar to the inherited one
            super().update(bar)

    return Deferring


@pytest.mark.parametrize("own_update", [False, True])
@pytest.mark.parametrize("base", [EMA, SMA, WMA])
def test_a_subclass_with_its_own_add_sees_every_close_through_update(
    base: type[CloseIndicator], own_update: bool
) -> None:
    doubled, plain = _doubling(base, own_update)(3), base(3)
    closes = [1.0, 2.0, 4.0, 3.0, 5.0, 6.0, 2.5, 7.0]
    for bar in make_bars(closes):
        doubled.update(bar)
        plain.add(2 * bar.close)
    assert doubled.count == plain.count == len(closes)
    assert list(doubled.values) == list(plain.values)


def test_an_update_of_a_subclass_is_kept_when_a_further_subclass_overrides_add() -> None:
    class OfHighs(EMA):
        __slots__ = ()

        def update(self, bar: Bar) -> None:
            self.add(bar.high)

    class HalfHighs(OfHighs):
        __slots__ = ()

        def add(self, value: float) -> None:
            super().add(value / 2)

    ema, reference = HalfHighs(3), EMA(3)
    for bar in make_bars([1.0, 3.0, 2.0, 5.0, 4.0]):
        ema.update(bar)
        reference.add(bar.high / 2)
    assert list(ema.values) == list(reference.values)


def test_an_ema_whose_alpha_is_changed_live_computes_with_the_new_alpha() -> None:
    ema = EMA(3, seed_first=True)
    closes = [10.0, 11.0, 13.0, 12.0, 15.0, 14.0, 16.0]
    bars = make_bars(closes)
    for bar in bars[:3]:
        ema.update(bar)
    expected = ema.value
    ema.period, ema.alpha = 9, 0.2
    for bar in bars[3:]:
        ema.update(bar)
        expected += 0.2 * (bar.close - expected)
        assert ema.value == expected


# -- ema-cross -------------------------------------------------------------------------------


class _Context:
    symbols = ("AAA", "BBB")
    base_timeframe_s = HOUR


def test_ema_cross_params_changed_live_move_its_emas_with_the_new_periods() -> None:
    strategy = EmaCross(EmaCrossParams(fast=3, slow=8))
    strategy.ctx = _Context()  # type: ignore[assignment]
    strategy.on_start(strategy.ctx)
    handle = bar_handler(lambda bar: None, strategy.indicator_book)
    closes = [100.0 + 3 * math.sin(i / 3) for i in range(30)]
    reference = {period: EMA(period, seed_first=True) for period in (3, 8)}
    for i, close in enumerate(closes):
        if i == 12:
            strategy.update_params(EmaCrossParams(fast=5, slow=20))
            for ema, period in zip(reference.values(), (5, 20), strict=True):
                ema.alpha = 2.0 / (period + 1)
        for symbol in _Context.symbols:
            handle(_bar_at(symbol, i, close))
        for ema in reference.values():
            ema.add(close)
    book = strategy.indicator_book
    assert book is not None
    values = [indicator.value for (symbol, _), indicator in book.indicators if symbol == "BBB"]
    assert values == [reference[3].value, reference[8].value]
    assert [indicator.period for _, indicator in book.indicators] == [5, 20, 5, 20]  # type: ignore[attr-defined]


def _bar_at(symbol: str, index: int, close: float) -> Bar:
    return Bar(symbol, HOUR, index * HOUR, close, close, close, close, 1.0)


class _ReferenceEmaCross(EmaCross):
    """ema-cross's rule as first written: warm-up checked first, then the side, then a turn."""

    def __init__(self, params: EmaCrossParams) -> None:
        super().__init__(params)
        self.previous: dict[str, int] = {}

    def on_bar(self, bar: Bar) -> None:
        leg = self._legs[bar.symbol]
        if leg.slow.count < self.params.slow:
            return
        fast, slow = leg.fast.value, leg.slow.value
        direction = 1 if fast > slow else (-1 if fast < slow else 0)
        previous = self.previous.get(bar.symbol, 0)
        if direction == 0 or direction == previous:
            return
        self.previous[bar.symbol] = direction
        if previous == 0:
            return
        self._turn(bar, direction)


@pytest.mark.parametrize("allow_short", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_ema_cross_trades_exactly_as_its_rule_reads(seed: int, allow_short: bool) -> None:
    # Closes on a coarse grid; a flat start keeps both EMAs exactly equal past the warm-up (a
    # tie: no direction yet), and the engine trades from the first bar, so the strategy's own
    # warm-up rule is what holds it back.
    rng = random.Random(seed)
    bars: list[Bar] = []
    for symbol in ("AAA", "BBB"):
        closes, close = [100.0] * (12 if symbol == "AAA" else 1), 100.0
        for _ in range(300):
            if rng.random() < 0.6:
                close = max(1.0, close + rng.choice((-2.0, -1.0, 1.0, 2.0)))
            closes.append(close)
        bars += make_bars(closes, symbol=symbol)
    params = EmaCrossParams(fast=3, slow=7, allow_short=allow_short)

    def run(strategy: Strategy) -> list[tuple[object, ...]]:
        result = run_strategy(strategy, bars, quantity=1.0, symbols=["AAA", "BBB"], warmup=False)
        return [(o.symbol, o.side, o.created_ts, o.tag) for o in result.orders]

    orders = run(EmaCross(params))
    assert orders  # the walk crosses: the comparison is not vacuous
    assert orders == run(_ReferenceEmaCross(params))
