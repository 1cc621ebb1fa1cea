"""What a strategy declared it reads: indicators and bar histories per series, and the one
function that keeps them current (the engine calls it instead of ``on_bar``).

Everything declared for a series is updated with each of its bars *before* the strategy's
``on_bar`` sees that bar — in warm-up and catch-up too — so ``ema[-1]`` is the value at the bar
being handled and nothing later. A strategy that declares nothing gets its own ``on_bar``
back: it pays nothing per bar.

What is declared is checked when the handler is built: a declaration after that, or one on a
series the strategy is never handed (a symbol not the bot's, a timeframe it did not subscribe
to), would leave an indicator empty for ever — and its warm-up would still hold back trading —
so each is an error naming the strategy, the indicator and the series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from tradefleet_runtime.indicators.series import DEFAULT_HISTORY, BarHistory, Indicator
from tradefleet_runtime.model import Bar
from tradefleet_runtime.timeframes import format_timeframe

SeriesKey = tuple[str, int]  # (symbol, timeframe in seconds)


class UnfedSeries(ValueError):
    """A strategy declared an indicator or a bar history on a series it is never handed.

    A ``ValueError``: the bot's session reports it as the strategy refusing to start.
    """


def series_name(key: SeriesKey) -> str:
    """``EURUSD 4h``: a series as messages name it."""
    return f"{key[0]} {format_timeframe(key[1])}"


class IndicatorBook:
    """One strategy's declared indicators and bar histories; ``owner`` names the strategy in
    errors."""

    __slots__ = ("_updates", "histories", "indicators", "owner", "sealed")

    def __init__(self, owner: str = "the strategy") -> None:
        self.owner = owner
        self._updates: dict[SeriesKey, list[Callable[[Bar], None]]] = {}
        self.indicators: list[tuple[SeriesKey, Indicator]] = []
        self.histories: dict[SeriesKey, BarHistory] = {}
        # Set once the engine has built the bar handler: a later declaration would never be
        # updated, so it is refused instead.
        self.sealed = False

    def _check_open(self, what: str, key: SeriesKey) -> None:
        if self.sealed:
            raise RuntimeError(
                f"{self.owner}: {what} on {series_name(key)} declared after the bot started: "
                "the engine would never update it. Declare indicators and bar histories in "
                "on_start (or __init__) and keep them in attributes"
            )

    def add(self, key: SeriesKey, indicator: Indicator) -> None:
        self._check_open(indicator.label(), key)
        self.indicators.append((key, indicator))
        self._updates.setdefault(key, []).append(indicator.update)

    def history(self, key: SeriesKey, size: int = DEFAULT_HISTORY) -> BarHistory:
        """The bar history of ``key``; asking twice gives the same one (the larger size)."""
        known = self.histories.get(key)
        if known is not None and known.maxlen >= size:
            return known
        self._check_open(f"a bar history of {size} bars", key)
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

    def declared(self) -> list[tuple[SeriesKey, str]]:
        """Each declaration: its series and what it is (``EMA(20)``, a bar history)."""
        found = [(key, indicator.label()) for key, indicator in self.indicators]
        found += [(key, f"a bar history of {h.maxlen} bars") for key, h in self.histories.items()]
        return found

    def __bool__(self) -> bool:
        return bool(self._updates)


def check_series(
    book: IndicatorBook, symbols: Sequence[str], subscribed: Iterable[SeriesKey]
) -> None:
    """Raise :class:`UnfedSeries` unless every series ``book`` declared is one the strategy is
    handed: a symbol in ``symbols`` (the bot's) at a timeframe it subscribed to.

    The engine hands a strategy the bars of its subscriptions only: anything declared on
    another series would never be updated, and would still count in the default warm-up.
    """
    wanted = set(subscribed)
    problems: list[str] = []
    for key, what in book.declared():
        if key in wanted:
            continue
        symbol, timeframe_s = key
        if symbol not in symbols:
            problems.append(
                f"{what} on {series_name(key)} would never be updated: {symbol!r} is not one of "
                f"the bot's symbols ({', '.join(symbols) or 'none'}); declare it on one of them"
            )
            continue
        has = ", ".join(format_timeframe(t) for t in sorted(t for s, t in wanted if s == symbol))
        problems.append(
            f"{what} on {series_name(key)} would never be updated: the strategy does not "
            f"subscribe to {symbol} at {format_timeframe(timeframe_s)} "
            f"({f'only at {has}' if has else 'nor at any timeframe'}); return "
            f"Subscription({symbol!r}, {timeframe_s}) from subscriptions() too, or declare it "
            "on a subscribed series"
        )
    if problems:
        raise UnfedSeries(f"{book.owner}: " + "; ".join(problems))


class Subscribed(Protocol):
    """A series the engine hands the strategy (``contracts.Subscription``)."""

    @property
    def symbol(self) -> str: ...

    @property
    def timeframe_s(self) -> int: ...


def _strategy_of(on_bar: Callable[[Bar], None]) -> Any:
    """The strategy whose bound ``on_bar`` this is, or None (a plain function)."""
    owner = getattr(on_bar, "__self__", None)
    return owner if hasattr(owner, "indicator_book") and hasattr(owner, "subscriptions") else None


def _seal(
    on_bar: Callable[[Bar], None],
    book: IndicatorBook | None,
    subscriptions: Iterable[Subscribed] | None,
) -> IndicatorBook | None:
    """Seal the book ``on_bar``'s strategy declares in (making it an empty one if it declared
    nothing yet, so that a declaration in ``on_bar`` is refused too) and check its series
    against the strategy's subscriptions and the bot's symbols."""
    strategy = _strategy_of(on_bar)
    if strategy is not None and book is None and strategy.indicator_book is None:
        # ``Strategy._book`` makes the book on the first declaration: one made after this
        # point would never be handed to the engine, so an empty sealed one is left instead.
        book = strategy.indicator_book = IndicatorBook(type(strategy).__name__)
    if book is None:
        return None
    book.sealed = True
    if not (book.indicators or book.histories):
        return book
    ctx = getattr(strategy, "ctx", None)
    if subscriptions is None:
        if ctx is None:
            return book  # a plain function and no subscriptions: nothing to check against
        # Asked again, as the engine asked before ``on_start``: the answer depends only on
        # the symbols and the base timeframe.
        subscriptions = strategy.subscriptions(list(ctx.symbols), ctx.base_timeframe_s)
    wanted = [(sub.symbol, sub.timeframe_s) for sub in subscriptions]
    symbols = list(ctx.symbols) if ctx is not None else sorted({symbol for symbol, _ in wanted})
    check_series(book, symbols, wanted)
    return book


def bar_handler(
    on_bar: Callable[[Bar], None],
    book: IndicatorBook | None,
    subscriptions: Iterable[Subscribed] | None = None,
) -> Callable[[Bar], None]:
    """What the engine calls per bar: ``on_bar`` itself, or the book's update and then it.

    The book is sealed here, so its series are fixed: the handler is specialised once for them
    (one series, one timeframe, or any) and builds nothing per bar. What was declared is
    checked first, against ``subscriptions`` (the series the engine wired) or, when ``on_bar``
    is a strategy's own (the engine's call, ``ensemble``'s for its children), against what
    that strategy's ``subscriptions`` returns for its context: :class:`UnfedSeries` names a
    declaration on a series it is never handed.
    """
    book = _seal(on_bar, book, subscriptions)
    if book is None:
        return on_bar
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
