"""A strategy's indicator and bar-history declarations are refused where they could never be
updated, instead of staying empty for ever (and, through the default warm-up, holding back
trading):

- declared after the bot started (in ``on_bar``), even by a strategy that declared nothing in
  ``on_start`` (its book did not exist when the engine sealed it);
- declared on a timeframe the strategy did not subscribe to;
- declared on a symbol that is not the bot's (a typo).

Each error names the strategy, the indicator (or history) and the series, and says what to do.
What is declared right — on the base series, on a subscribed higher timeframe, in ``__init__``
with an explicit timeframe — is updated as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tradefleet_plugins.strategies.ensemble import Ensemble
from tradefleet_plugins.strategies.ensemble_params import ChildParams, EnsembleParams
from tradefleet_runtime.errors import StrategyError, StrategyRefused
from tradefleet_runtime.indicators import ATR, EMA, bar_handler
from tradefleet_runtime.indicators.book import IndicatorBook, UnfedSeries, check_series
from tradefleet_runtime.sdk import Bar, Strategy, StrategyContext, Subscription
from tradefleet_runtime.sdk.testing import make_bars, run_strategy

HOUR = 3600
CLOSES = [float(c) for c in range(1, 21)]


class _Idle(Strategy):
    def on_bar(self, bar: Bar) -> None:
        pass


# -- late declarations -----------------------------------------------------------------------


class _LateOnly(_Idle):
    """Declares nothing in on_start, then an EMA on its first bar."""

    def on_bar(self, bar: Bar) -> None:
        if not hasattr(self, "ema"):
            self.ema = self.indicator(EMA(3), "TEST")


class _LateHistory(_Idle):
    def on_bar(self, bar: Bar) -> None:
        if not hasattr(self, "history"):
            self.history = self.bars("TEST", size=5)


class _LateSecond(_Idle):
    """Declared one in on_start (so its book existed when sealed), and one more later."""

    def on_start(self, ctx: StrategyContext) -> None:
        self.fast = self.indicator(EMA(2), "TEST")

    def on_bar(self, bar: Bar) -> None:
        if not hasattr(self, "slow"):
            self.slow = self.indicator(EMA(5), "TEST")


@pytest.mark.parametrize(
    ("strategy", "what"),
    [
        (_LateOnly, "EMA(3)"),
        (_LateHistory, "a bar history of 5 bars"),
        (_LateSecond, "EMA(5)"),
    ],
)
def test_a_declaration_after_the_start_is_refused_naming_strategy_indicator_and_series(
    strategy: type[Strategy], what: str
) -> None:
    with pytest.raises(StrategyError) as raised:
        run_strategy(strategy(None), make_bars(CLOSES))
    message = str(raised.value)
    cause = raised.value.__cause__
    assert isinstance(cause, RuntimeError)
    assert f"{strategy.__name__}: {what} on TEST 1h declared after the bot started" in message
    assert "on_start" in message  # what to do instead


# -- series the strategy is never handed -----------------------------------------------------


class _Unsubscribed(_Idle):
    def on_start(self, ctx: StrategyContext) -> None:
        self.atr = self.indicator(ATR(2), "TEST", "4h")  # no subscriptions() override


class _Subscribed(_Unsubscribed):
    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        return [*super().subscriptions(symbols, base_timeframe_s), Subscription("TEST", 4 * HOUR)]

    def on_stop(self) -> None:
        self.seen = len(self.atr)


class _Misspelt(_Idle):
    def on_start(self, ctx: StrategyContext) -> None:
        self.ema = self.indicator(EMA(2), "TSET")


class _HigherOnly(_Idle):
    """Subscribes to 4h bars only, and declares a history on the (unsubscribed) base series."""

    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        return [Subscription(symbol, 4 * HOUR) for symbol in symbols]

    def on_start(self, ctx: StrategyContext) -> None:
        self.history = self.bars("TEST")


def test_an_indicator_on_an_unsubscribed_timeframe_is_refused_at_start() -> None:
    with pytest.raises(StrategyRefused) as raised:
        run_strategy(_Unsubscribed(None), make_bars(CLOSES))
    message = str(raised.value)
    assert "_Unsubscribed: ATR(2) on TEST 4h would never be updated" in message
    assert "does not subscribe to TEST at 4h (only at 1h)" in message
    assert "Subscription('TEST', 14400) from subscriptions()" in message


def test_the_same_indicator_on_a_subscribed_timeframe_is_updated() -> None:
    strategy = _Subscribed(None)
    run = run_strategy(strategy, make_bars(CLOSES))
    assert strategy.seen == 5  # 20 hourly bars: five 4h bars
    assert strategy.atr.ready
    assert run.history_bars == 12  # ATR(2) needs three 4h bars: 12 base bars of warm-up


def test_an_indicator_on_a_symbol_not_the_bots_is_refused_at_start() -> None:
    with pytest.raises(StrategyRefused) as raised:
        run_strategy(_Misspelt(None), make_bars(CLOSES))
    message = str(raised.value)
    assert "_Misspelt: EMA(2) on TSET 1h would never be updated" in message
    assert "'TSET' is not one of the bot's symbols (TEST)" in message


def test_a_history_on_a_base_series_the_strategy_does_not_subscribe_to_is_refused() -> None:
    with pytest.raises(StrategyRefused) as raised:
        run_strategy(_HigherOnly(None), make_bars(CLOSES))
    message = str(raised.value)
    assert "_HigherOnly: a bar history of 256 bars on TEST 1h would never be updated" in message
    assert "(only at 4h)" in message


class _InInit(_Idle):
    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.ema = self.indicator(EMA(3), "TEST", "1h")


def test_a_declaration_in_init_is_kept_up_to_date() -> None:
    strategy = _InInit(None)
    run_strategy(strategy, make_bars(CLOSES))
    assert len(strategy.ema) == len(CLOSES)
    assert strategy.ema.value == pytest.approx(19.0)  # EMA(3) of a +1 ramp lags it by one


# -- strategies made of strategies -----------------------------------------------------------


def test_an_ensemble_child_declaring_on_an_unsubscribed_series_is_refused_at_start() -> None:
    child = _Unsubscribed(None)
    params = EnsembleParams(children=[ChildParams(name="ema-cross")], quorum=1)
    ensemble = Ensemble(params, children=[("unsubscribed", child, 1.0)])
    with pytest.raises(StrategyRefused, match=r"_Unsubscribed: ATR\(2\) on TEST 4h"):
        run_strategy(ensemble, make_bars(CLOSES))


# -- the check itself ------------------------------------------------------------------------


def test_check_series_lists_every_unfed_declaration_and_passes_fed_ones() -> None:
    book = IndicatorBook("Mine")
    book.add(("AAA", HOUR), EMA(3))
    book.history(("AAA", HOUR), 4)
    check_series(book, ["AAA"], [("AAA", HOUR)])  # all fed: no error
    book.add(("AAA", 4 * HOUR), EMA(5))
    book.add(("BBB", HOUR), EMA(7))
    with pytest.raises(UnfedSeries) as raised:
        check_series(book, ["AAA"], [("AAA", HOUR)])
    message = str(raised.value)
    assert message.startswith("Mine: EMA(5) on AAA 4h would never be updated")
    assert "EMA(7) on BBB 1h would never be updated: 'BBB' is not one of" in message


def test_bar_handler_of_a_plain_function_seals_without_a_strategy_to_check() -> None:
    def on_bar(bar: Bar) -> None:
        pass

    book = IndicatorBook()
    book.add(("ZZZ", HOUR), EMA(3))  # no strategy, no context: nothing to check it against
    bar_handler(on_bar, book)
    assert book.sealed


def test_bar_handler_checks_against_the_subscriptions_it_is_given() -> None:
    # What the engine passes when it wired them (its on_bar may be no strategy's bound method).
    def on_bar(bar: Bar) -> None:
        pass

    book = IndicatorBook("Wrapped")
    book.add(("AAA", 4 * HOUR), EMA(3))
    with pytest.raises(UnfedSeries, match=r"Wrapped: EMA\(3\) on AAA 4h .*\(only at 1h\)"):
        bar_handler(on_bar, book, [Subscription("AAA", HOUR)])
    fed = IndicatorBook("Fed")
    fed.add(("AAA", 4 * HOUR), EMA(3))
    bar_handler(on_bar, fed, [Subscription("AAA", HOUR), Subscription("AAA", 4 * HOUR)])
