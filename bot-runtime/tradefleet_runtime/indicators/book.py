"""What a strategy declared it reads: indicators and bar histories per series, and the one
function that keeps them current (the engine calls it instead of ``on_bar``).

Everything declared for a series is updated with each of its bars *before* the strategy's
``on_bar`` sees that bar — in warm-up and catch-up too — so ``ema[-1]`` is the value at the bar
being handled and nothing later. A strategy that declares nothing gets its own ``on_bar``
back: it pays nothing per bar.
"""

from __future__ import annotations

from collections.abc import Callable

from tradefleet_runtime.indicators.series import DEFAULT_HISTORY, BarHistory, Indicator
from tradefleet_runtime.model import Bar

SeriesKey = tuple[str, int]  # (symbol, timeframe in seconds)


class IndicatorBook:
    """One strategy's declared indicators and bar histories."""

    __slots__ = ("_updates", "histories", "indicators", "sealed")

    def __init__(self) -> None:
        self._updates: dict[SeriesKey, list[Callable[[Bar], None]]] = {}
        self.indicators: list[tuple[SeriesKey, Indicator]] = []
        self.histories: dict[SeriesKey, BarHistory] = {}
        # Set once the engine has built the bar handler: a later declaration would never be
        # updated, so it is refused instead.
        self.sealed = False

    def _check_open(self) -> None:
        if self.sealed:
            raise RuntimeError(
                "declare indicators and bar histories in on_start (or earlier): the bot has "
                "started and would never update one declared now"
            )

    def add(self, key: SeriesKey, indicator: Indicator) -> None:
        self._check_open()
        self.indicators.append((key, indicator))
        self._updates.setdefault(key, []).append(indicator.update)

    def history(self, key: SeriesKey, size: int = DEFAULT_HISTORY) -> BarHistory:
        """The bar history of ``key``; asking twice gives the same one (the larger size)."""
        known = self.histories.get(key)
        if known is not None and known.maxlen >= size:
            return known
        self._check_open()
        history = BarHistory(size)
        if known is not None:  # grow: keep what it holds, update only the new one
            for bar in known:
                history.update(bar)
            self._updates[key].remove(known.update)
        self.histories[key] = history
        # Bars first: an indicator's update never reads them, a rule reads both.
        self._updates.setdefault(key, []).insert(0, history.update)
        return history

    def warmup_bars(self, base_timeframe_s: int) -> int:
        """Base bars until every declared indicator has a value."""
        needed = 0
        for (_, timeframe_s), indicator in self.indicators:
            bars = indicator.warmup * max(1, timeframe_s // base_timeframe_s)
            needed = max(needed, bars)
        return needed

    def update(self, bar: Bar) -> None:
        for update in self._updates.get((bar[0], bar[1]), ()):
            update(bar)

    def __bool__(self) -> bool:
        return bool(self._updates)


def bar_handler(on_bar: Callable[[Bar], None], book: IndicatorBook | None) -> Callable[[Bar], None]:
    """What the engine calls per bar: ``on_bar`` itself, or the book's update and then it.

    The book is sealed here, so its series are fixed: the handler is specialised once for them
    (one series, one timeframe, or any) and builds nothing per bar.
    """
    if book is None:
        return on_bar
    book.sealed = True
    if not book:
        return on_bar
    series = {key: tuple(updates) for key, updates in book._updates.items() if updates}
    if not series:
        return on_bar
    if len(series) == 1:
        return _one_series(on_bar, *next(iter(series.items())))
    timeframes = {timeframe_s for _, timeframe_s in series}
    if len(timeframes) == 1:
        return _one_timeframe(on_bar, timeframes.pop(), series)
    return _any_series(on_bar, series)


def _one_series(
    on_bar: Callable[[Bar], None], key: SeriesKey, updates: tuple[Callable[[Bar], None], ...]
) -> Callable[[Bar], None]:
    symbol, timeframe_s = key
    if len(updates) == 2:  # the common case (two averages, or a history and an indicator)
        first, second = updates

        def handle_two(bar: Bar) -> None:
            if bar[1] == timeframe_s and bar[0] == symbol:
                first(bar)
                second(bar)
            on_bar(bar)

        return handle_two

    def handle(bar: Bar) -> None:
        if bar[1] == timeframe_s and bar[0] == symbol:
            for update in updates:
                update(bar)
        on_bar(bar)

    return handle


def _one_timeframe(
    on_bar: Callable[[Bar], None],
    timeframe_s: int,
    series: dict[SeriesKey, tuple[Callable[[Bar], None], ...]],
) -> Callable[[Bar], None]:
    by_symbol = {symbol: updates for (symbol, _), updates in series.items()}
    find = by_symbol.get

    def handle(bar: Bar) -> None:
        if bar[1] == timeframe_s:
            for update in find(bar[0], ()):
                update(bar)
        on_bar(bar)

    return handle


def _any_series(
    on_bar: Callable[[Bar], None], series: dict[SeriesKey, tuple[Callable[[Bar], None], ...]]
) -> Callable[[Bar], None]:
    # Symbol, then timeframe: two lookups of values the bar holds, no key built per bar.
    by_symbol: dict[str, dict[int, tuple[Callable[[Bar], None], ...]]] = {}
    for (symbol, timeframe_s), updates in series.items():
        by_symbol.setdefault(symbol, {})[timeframe_s] = updates
    find = by_symbol.get
    none: dict[int, tuple[Callable[[Bar], None], ...]] = {}

    def handle(bar: Bar) -> None:
        for update in find(bar[0], none).get(bar[1], ()):
            update(bar)
        on_bar(bar)

    return handle
