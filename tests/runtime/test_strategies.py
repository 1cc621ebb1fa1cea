"""The built-in strategies' rules on hand-made bars, and each one backtested on real data."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.runtime.test_indicators_reference import eurusd_bars
from tradefleet_plugins.strategies.bos_retest import BosRetest
from tradefleet_plugins.strategies.bos_retest_params import BosRetestParams
from tradefleet_plugins.strategies.confluence import IndicatorConfluence
from tradefleet_plugins.strategies.confluence_params import ConfluenceParams
from tradefleet_plugins.strategies.ema_cross import EmaCross
from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_plugins.strategies.ensemble import Ensemble
from tradefleet_plugins.strategies.ensemble_params import EnsembleParams
from tradefleet_plugins.strategies.fib_atr import FibAtr
from tradefleet_plugins.strategies.fib_atr_params import FibAtrParams
from tradefleet_runtime.sdk import Bar, OrderStatus, Side, Strategy, build_strategy
from tradefleet_runtime.sdk.testing import SentOrder, StrategyRun, make_bars, run_strategy

# -- bos-retest ------------------------------------------------------------------------------

# 1-minute closes; each 5 make one 5-minute bar. Block 1's high (1.1010) is a swing high once
# block 2 closes lower; block 3 closes at 1.1020, above it: the break.
STRUCTURE = [1.1000] * 5 + [1.1005, 1.1010, 1.1008, 1.1006, 1.1004]
STRUCTURE += [1.1003, 1.1002, 1.1003, 1.1004, 1.1005, 1.1008, 1.1012, 1.1016, 1.1018, 1.1020]


def _bos(tail: Sequence[float], **params: object) -> tuple[BosRetest, list[Bar], StrategyRun]:
    strategy = BosRetest(
        BosRetestParams(higher_timeframe="5m", swing_left=1, swing_right=1, **params)
    )
    bars = make_bars([*STRUCTURE, *tail], symbol="EURUSD", timeframe="1m")
    return strategy, bars, run_strategy(strategy, bars, quantity=1000)


def _steps(run: StrategyRun) -> list[str]:
    return [event.message for event in run.events_of("strategy")]


def test_a_break_then_a_retest_enters_in_the_break_direction() -> None:
    _, bars, run = _bos([1.1016, 1.10105, 1.1014, 1.1018])
    assert _steps(run) == ["bos-break", "bos-retest"]
    entry, stop, target = run.orders
    assert entry.side is Side.BUY and entry.tag == "bos-retest"
    assert entry.created_ts == bars[21].close_ts  # the retest bar (index 21)
    # Stop 0.5 pip beyond the lowest low since the break (the retest bar's low, 1.10105).
    assert stop.price == pytest.approx(1.10105 - 0.00005)
    assert stop.price is not None
    risk = 1.10105 - stop.price
    assert target.price == pytest.approx(1.10105 + 2 * risk)


def test_a_break_without_a_retest_within_threshold_does_not_enter() -> None:
    _, _, run = _bos([1.1016, 1.1012, 1.1014], expiry_bars=10)  # 2 pips away: no retest
    assert _steps(run) == ["bos-break"]
    assert run.orders == ()


def test_a_failed_retest_drops_the_setup() -> None:
    _, _, run = _bos([1.1016, 1.1005, 1.10105, 1.1014])  # closes 5 pips below the level
    assert _steps(run) == ["bos-break", "bos-failed"]
    assert run.orders == ()


def test_an_expired_setup_is_not_traded_later() -> None:
    _, _, run = _bos([1.1016, 1.1017, 1.1018, 1.10105, 1.1014], expiry_bars=3)
    assert _steps(run) == ["bos-break", "bos-expired"]
    assert run.orders == ()


def test_pip_size_is_per_symbol() -> None:
    params = BosRetestParams(pip_sizes={"USDJPY": 0.01})
    strategy = BosRetest(params)
    assert (strategy.pip("USDJPY"), strategy.pip("EURUSD")) == (0.01, 0.0001)


# -- indicator-confluence --------------------------------------------------------------------


class _Recording(IndicatorConfluence):
    """Records the votes of every bar it decides on."""

    def __init__(self, params: ConfluenceParams) -> None:
        super().__init__(params)
        self.seen: list[tuple[int, int, int]] = []  # (bar index, long votes, short votes)

    def on_bar(self, bar: Bar) -> None:
        super().on_bar(bar)
        self.seen.append((len(self.seen), *self.last_votes[bar.symbol]))


SMALL = {"rsi_period": 3, "macd_fast": 2, "macd_slow": 4, "macd_signal": 2, "ema_period": 4}
SMALL |= {"bollinger_period": 4, "allow_short": False}
# A slow fall, then a rise: the fast indicators turn long one after the other.
VOTE_CLOSES = [1.20, 1.19, 1.18, 1.17, 1.16, 1.15, 1.14, 1.13, 1.128, 1.129, 1.136, 1.16, 1.17]


def _votes(threshold: int) -> tuple[_Recording, StrategyRun]:
    strategy = _Recording(ConfluenceParams(threshold=threshold, **SMALL))
    run = run_strategy(strategy, make_bars(VOTE_CLOSES), quantity=1, warmup=False)
    return strategy, run


def test_three_of_five_votes_enter_and_two_do_not() -> None:
    strategy, run = _votes(threshold=3)
    bars = make_bars(VOTE_CLOSES)
    longs = [(index, long) for index, long, _ in strategy.seen]
    first_three = next(index for index, long in longs if long >= 3)
    assert strategy.seen[first_three][1:] == (3, 2)  # exactly 3 of 5 long
    two = [index for index, long in longs if long == 2 and index < first_three]
    assert two, f"the bars should pass through a 2-of-5 vote first: {strategy.seen}"
    # With a threshold of 4, the 3-of-5 bar is not enough: the entry waits a bar.
    stricter, stricter_run = _votes(threshold=4)
    assert stricter.seen == strategy.seen
    entries = [o.created_ts for o in stricter_run.orders]
    assert min(entries) == bars[first_three + 1].close_ts
    (entry, *_) = run.orders
    assert entry.side is Side.BUY and entry.created_ts == bars[first_three].close_ts
    assert entry.tag.startswith("confluence-long-")
    assert entry.price is None  # a market order, bracketed:
    assert len(run.orders) == 3


def test_a_two_of_five_vote_alone_never_enters() -> None:
    strategy, run = _votes(threshold=3)
    assert [long for _, long, _ in strategy.seen[8:10]] == [2, 2]  # 2 of 5 on bars 8 and 9
    bars = make_bars(VOTE_CLOSES)
    assert min(o.created_ts for o in run.orders) == bars[10].close_ts


def test_confluence_defaults_are_the_users() -> None:
    params = ConfluenceParams()
    assert (params.threshold, params.stop_loss_pct, params.take_profit_pct) == (3, 0.02, 0.05)


def test_confluence_early_exit_closes_before_the_stop() -> None:
    closes = [*VOTE_CLOSES, 1.15, 1.125, 1.124, 1.124]
    strategy = IndicatorConfluence(ConfluenceParams(early_exit_fraction=0.5, **SMALL))
    run = run_strategy(strategy, make_bars(closes), quantity=1, warmup=False)
    tags = [o.tag for o in run.orders if o.status is OrderStatus.FILLED]
    assert "early-exit" in tags


# -- fib-atr ---------------------------------------------------------------------------------


def test_fib_atr_buys_a_pullback_to_a_retracement_in_an_uptrend() -> None:
    # Swing low 0.996 (bar 2), swing high 1.10 (bar 7, confirmed at bar 9); bar 11 dips under
    # the 38.2% level (1.0603) and closes above it, above the trend EMA.
    closes = [1.02, 1.01, 1.00, 1.01, 1.03, 1.05, 1.08, 1.10, 1.09, 1.08, 1.07, 1.062, 1.075]
    params = FibAtrParams(swing_left=2, swing_right=2, trend_period=8, atr_period=3)
    strategy = FibAtr(params)
    bars = [bar._replace(low=bar.low - 0.004) for bar in make_bars(closes)]
    run = run_strategy(strategy, bars, quantity=1, warmup=False)
    entry, stop, target = run.orders
    assert entry.side is Side.BUY and entry.tag == "fib-long"
    assert entry.created_ts == bars[11].close_ts
    assert stop.price is not None and target.price is not None
    assert stop.price < entry_close(bars, entry) < target.price
    assert strategy.touched_level(bars[12]) is None  # one trade per swing


def entry_close(bars: list[Bar], order: SentOrder) -> float:
    return next(b.close for b in bars if b.close_ts == order.created_ts)


# -- ensemble --------------------------------------------------------------------------------


class _Voter(Strategy):
    """Votes +1 from bar ``at`` on (a buy), or never."""

    def __init__(self, at: int | None) -> None:
        super().__init__(None)
        self.at, self.count = at, 0

    def on_bar(self, bar: Bar) -> None:
        self.count += 1
        if self.at is not None and self.count == self.at:
            self.ctx.buy(bar.symbol)


def _ensemble(ats: Sequence[int | None], confidences: Sequence[float]) -> StrategyRun:
    children = [
        (f"v{i}", _Voter(at), c) for i, (at, c) in enumerate(zip(ats, confidences, strict=True))
    ]
    strategy = Ensemble(EnsembleParams(), children=children)
    return run_strategy(strategy, make_bars([10.0] * 8), quantity=1, warmup=False)


def test_quorum_of_two_confident_children_enters() -> None:
    run = _ensemble([2, 4, None], [0.8, 0.8, 0.8])
    (entry,) = run.orders
    assert entry.created_ts == make_bars([10.0] * 8)[3].close_ts  # when the 2nd vote came
    assert entry.side is Side.BUY and entry.tag == "quorum-long"


def test_a_quorum_miss_sends_nothing() -> None:
    assert _ensemble([2, None, None], [0.9, 0.9, 0.9]).orders == ()


def test_a_quorum_without_confidence_sends_nothing() -> None:
    assert _ensemble([2, 3, None], [0.6, 0.7, 0.9]).orders == ()


def test_children_orders_are_votes_not_orders() -> None:
    run = _ensemble([2, None, None], [1.0, 1.0, 1.0])
    assert run.fills == ()


def test_ensemble_builds_children_through_the_registry() -> None:
    strategy = build_strategy("ensemble", {})
    assert isinstance(strategy, Ensemble)
    assert [name for name, _, _ in strategy.children] == [
        "ema-cross",
        "indicator-confluence",
        "fib-atr",
    ]


# -- every strategy on real data -------------------------------------------------------------

REAL: dict[str, Strategy] = {}


def _real(name: str) -> Strategy:
    params: dict[str, dict[str, object]] = {
        "ema-cross": {"fast": 12, "slow": 48},
        "bos-retest": {"higher_timeframe": "4h"},
        "indicator-confluence": {"stop_loss_pct": 0.005, "take_profit_pct": 0.01},
        "ensemble": {
            "children": [
                {"name": "ema-cross", "params": {"fast": 12, "slow": 48}},
                {"name": "ema-cross", "params": {"fast": 20, "slow": 100}},
                {"name": "indicator-confluence"},
            ]
        },
    }
    return build_strategy(name, params.get(name, {}))


@pytest.mark.parametrize(
    "name", ["ema-cross", "indicator-confluence", "bos-retest", "fib-atr", "ensemble"]
)
def test_each_strategy_backtests_on_bundled_eurusd(name: str) -> None:
    run = run_strategy(_real(name), eurusd_bars(), quantity=10_000, capital=100_000)
    assert len(run.trades) >= 5, f"{name} should trade on a year of EURUSD"
    assert run.equity > 0


def test_ema_cross_still_crosses() -> None:
    run = run_strategy(EmaCross(EmaCrossParams(fast=2, slow=3)), make_bars([1, 2, 3, 2, 1, 2, 3]))
    assert run.decisions  # cross orders reached the (absent) sizer


def test_fib_atr_long_only_takes_no_short() -> None:
    """A spot account cannot sell what it does not hold: with ``allow_short: false`` the
    bundled EURUSD year, whose default run sells pullbacks in downtrends, opens longs only."""
    both = run_strategy(FibAtr(FibAtrParams()), eurusd_bars(), quantity=10_000, capital=100_000)
    assert any(t.direction < 0 for t in both.trades)
    longs = run_strategy(
        FibAtr(FibAtrParams(allow_short=False)), eurusd_bars(), quantity=10_000, capital=100_000
    )
    assert longs.trades and all(t.direction > 0 for t in longs.trades)
