"""The plugin author's testing kit (``tradefleet_runtime.sdk.testing``) tells the truth.

Each test states what a bot would do and checks that the kit, which goes through the real
session, engine and paper broker, says so.
"""

from __future__ import annotations

import doctest
import math
import random
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from tradefleet_plugins.strategies.ema_cross import EmaCross
from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_runtime.sdk import (
    Bar,
    Instrument,
    OrderIntent,
    OrderStatus,
    Position,
    RiskAction,
    RiskContext,
    RiskDecision,
    Side,
    Strategy,
    TargetPlan,
)
from tradefleet_runtime.sdk import testing as kit
from tradefleet_runtime.sdk.testing import (
    START,
    check_shrink_or_veto,
    check_target_plan,
    judge,
    make_bar,
    make_bars,
    run_strategy,
)

HOUR = 3600


class BuyOnBar(Strategy):
    """Buys ``quantity`` (None: unsized) on the n-th bar it sees, counting from 0."""

    def __init__(self, on: int, quantity: float | None = 1.0, warmup: int = 0) -> None:
        super().__init__(None)
        self.on, self.quantity, self.warmup = on, quantity, warmup
        self.seen = 0

    def warmup_bars(self) -> int:
        return self.warmup

    def on_bar(self, bar: Bar) -> None:
        if self.seen == self.on:
            self.ctx.buy(bar.symbol, self.quantity)
        self.seen += 1


class BuyEveryBar(Strategy):
    """Asks for one unit on every bar; needs ``warmup`` bars first."""

    def __init__(self, warmup: int) -> None:
        super().__init__(None)
        self.warmup = warmup

    def warmup_bars(self) -> int:
        return self.warmup

    def on_bar(self, bar: Bar) -> None:
        self.ctx.buy(bar.symbol, 1.0)


class VetoAll:
    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.veto("closed for lunch", "lunch")


class Doubler:
    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve((intent.quantity or 1.0) * 2)


class CapAt:
    def __init__(self, most: float) -> None:
        self.most = most

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.quantity is not None and intent.quantity > self.most:
            return RiskDecision.shrink(self.most, f"at most {self.most:g}")
        return RiskDecision.approve()


class Recorder:
    """Approves everything and keeps the contexts it was shown."""

    def __init__(self) -> None:
        self.seen: list[RiskContext] = []

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        self.seen.append(ctx)
        return RiskDecision.approve()


# -- bars ------------------------------------------------------------------------------------


def test_make_bars_open_at_the_previous_close_and_hug_it() -> None:
    bars = make_bars([10, 12, 11], symbol="EURUSD", timeframe="15m", start=1_000_000)
    assert [(b.open, b.high, b.low, b.close) for b in bars] == [
        (10.0, 10.0, 10.0, 10.0),
        (10.0, 12.0, 10.0, 12.0),
        (12.0, 12.0, 11.0, 11.0),
    ]
    assert [b.ts for b in bars] == [1_000_000, 1_000_900, 1_001_800]
    assert {(b.symbol, b.timeframe_s) for b in bars} == {("EURUSD", 900)}


def test_make_bar_gives_full_control_and_refuses_impossible_bars() -> None:
    bar = make_bar(1.1, 1.3, 1.0, 1.2, 50.0, index=3, timeframe=HOUR)
    assert bar == Bar("TEST", HOUR, START + 3 * HOUR, 1.1, 1.3, 1.0, 1.2, 50.0)
    with pytest.raises(ValueError, match="impossible bar"):
        make_bar(1.0, 0.9, 0.8, 1.0)


# -- running a strategy ----------------------------------------------------------------------


def test_an_order_on_bar_3_fills_once_at_bar_4s_open() -> None:
    bars = make_bars([10, 11, 12, 13, 14, 15])
    run = run_strategy(BuyOnBar(on=3, quantity=2), bars)
    assert len(run.fills) == 1
    fill = run.fills[0]
    assert (fill.side, fill.quantity, fill.price, fill.ts) == (
        Side.BUY,
        2.0,
        bars[4].open,
        bars[4].ts,
    )
    (order,) = run.orders
    assert order.status is OrderStatus.FILLED
    assert order.created_ts == bars[3].close_ts
    assert order.filled == 2.0
    assert run.position("TEST").quantity == 2.0
    assert run.equity == pytest.approx(10_000 + 2 * (15 - 13))
    assert run.trades == ()  # still open: a trade is a round trip


def test_broker_params_reach_the_paper_broker() -> None:
    bars = make_bars([100, 100, 100])
    run = run_strategy(BuyOnBar(on=0), bars, broker_params={"fee_bps": 10, "slippage_bps": 100})
    (fill,) = run.fills
    assert fill.price == pytest.approx(101.0)
    assert fill.fee == pytest.approx(101.0 * 0.001)


def test_warmup_drops_the_orders_of_the_first_bars() -> None:
    bars = make_bars([10.0] * 8)
    run = run_strategy(BuyEveryBar(warmup=3), bars)
    assert (run.history_bars, run.dropped_orders) == (3, 3)
    assert min(order.created_ts for order in run.orders) == bars[3].close_ts
    assert len(run.orders) == 5
    assert any("3 bar(s) of history" in event.message for event in run.events_of("warmed_up"))

    eager = run_strategy(BuyEveryBar(warmup=3), bars, warmup=False)
    assert (eager.history_bars, eager.dropped_orders, len(eager.orders)) == (0, 0, 8)


def test_a_risk_plugins_veto_shows_in_the_decisions() -> None:
    run = run_strategy(BuyOnBar(on=1), make_bars([10, 11, 12]), risk=[("lunch", VetoAll())])
    assert run.orders == () and run.fills == ()
    (decision,) = run.decisions
    assert (decision.plugin, decision.action, decision.reason) == (
        "lunch",
        RiskAction.VETO,
        "closed for lunch",
    )
    assert run.vetoes == (decision,)


def test_risk_plugins_are_named_by_their_class_and_run_in_order() -> None:
    run = run_strategy(BuyOnBar(on=0, quantity=5), make_bars([10, 11]), risk=[CapAt(3), Doubler()])
    assert [(d.plugin, d.action) for d in run.decisions] == [
        ("CapAt", RiskAction.SHRINK),
        ("Doubler", RiskAction.VETO),  # it tried to grow the order: the engine's rule
    ]
    assert "only shrink or veto" in run.decisions[1].reason


def test_unsized_orders_are_vetoed_without_a_sizer() -> None:
    bars = make_bars([10, 11, 12])
    run = run_strategy(BuyOnBar(on=0, quantity=None), bars)
    (decision,) = run.decisions
    assert (decision.plugin, decision.action) == ("engine.sizing", RiskAction.VETO)
    assert "no quantity" in decision.reason
    assert run.fills == ()

    sized = run_strategy(BuyOnBar(on=0, quantity=None), bars, quantity=4)
    assert [(f.quantity, f.price) for f in sized.fills] == [(4.0, 10.0)]
    assert sized.decisions[0].plugin == "fixed-size"


class BracketBuyer(Strategy):
    """Buys once with a stop-loss 2% under and a take-profit 5% over the signal bar's close."""

    def on_start(self, ctx: Any) -> None:
        self.done = False

    def on_bar(self, bar: Bar) -> None:
        if not self.done:
            self.ctx.buy(bar.symbol, 1.0, stop_loss=bar.close * 0.98, take_profit=bar.close * 1.05)
            self.done = True


def test_a_bracket_stops_out_and_makes_one_trade() -> None:
    bars = make_bars([100, 100, 99, 97, 96])
    run = run_strategy(BracketBuyer(None), bars)
    entry, *children = run.orders
    assert entry.status is OrderStatus.FILLED
    assert {o.parent_id for o in children} == {entry.client_order_id}
    assert sorted(o.status for o in children) == [OrderStatus.CANCELLED, OrderStatus.FILLED]
    assert [f.reason for f in run.fills] == ["market", "stop_loss"]
    (trade,) = run.trades
    assert trade.exit_price == pytest.approx(98.0)
    assert run.position("TEST").quantity == 0.0


def test_bars_of_several_symbols_may_come_in_any_order() -> None:
    a = make_bars([10, 11, 12], symbol="AAA")
    b = make_bars([20, 21, 22], symbol="BBB")

    class BuyBoth(Strategy):
        def on_bar(self, bar: Bar) -> None:
            if bar.ts == START:
                self.ctx.buy(bar.symbol, 1.0)

    run = run_strategy(BuyBoth(None), b + a, symbols=["AAA", "BBB"])
    assert [(f.symbol, f.price) for f in run.fills] == [("AAA", 10.0), ("BBB", 20.0)]
    assert set(run.positions) == {"AAA", "BBB"}


def test_the_run_is_immutable() -> None:
    run = run_strategy(BuyOnBar(on=0), make_bars([10, 11]))
    with pytest.raises(AttributeError):
        run.equity = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        run.positions["TEST"] = Position("TEST")  # type: ignore[index]


# -- judging a risk plugin -------------------------------------------------------------------


def test_judge_builds_the_risk_context() -> None:
    recorder = Recorder()
    intents = [OrderIntent("EURUSD", Side.BUY, 1.0), OrderIntent("GBPUSD", Side.SELL)]
    decisions = judge(
        recorder,
        intents,
        equity=5_000,
        positions={"EURUSD": 2.0},
        marks={"EURUSD": 1.1},
        instrument=Instrument("EURUSD", lot_step=0.01),
    )
    assert [d.action for d in decisions] == [RiskAction.APPROVE, RiskAction.APPROVE]
    first, second = recorder.seen
    assert second.instrument.symbol == "EURUSD"  # the one given serves every intent
    assert (first.equity, first.cash, first.peak_equity, first.start_of_day_equity) == (
        5_000,
        5_000,
        5_000,
        5_000,
    )
    assert first.positions == {"EURUSD": Position("EURUSD", 2.0, 1.1)}
    assert first.mark("EURUSD") == 1.1 and first.mark("GBPUSD") == 0.0
    assert first.instrument.lot_step == 0.01
    assert judge(Recorder(), OrderIntent("X", Side.BUY)) == [RiskDecision.approve()]
    assert kit.risk_context("X").instrument == Instrument("X")


def test_check_shrink_or_veto_applies_the_engines_rule() -> None:
    sized = OrderIntent("TEST", Side.BUY, 5.0)
    unsized = OrderIntent("TEST", Side.BUY)
    grown, sized_up = check_shrink_or_veto(Doubler(), [sized, unsized])
    assert grown.answer.action is RiskAction.APPROVE
    assert grown.vetoed and grown.fault
    assert grown.decision.code == "plugin_fault"
    assert "grow the order from 5 to 10" in grown.decision.reason
    assert (sized_up.vetoed, sized_up.fault, sized_up.quantity) == (False, False, 2.0)

    (shrunk,) = check_shrink_or_veto(CapAt(3), sized)
    assert (shrunk.quantity, shrunk.fault, shrunk.decision.action) == (
        3.0,
        False,
        RiskAction.SHRINK,
    )
    (vetoed,) = check_shrink_or_veto(VetoAll(), sized, name="lunch")
    assert vetoed.vetoed and not vetoed.fault


def test_check_shrink_or_veto_refuses_a_nan_size() -> None:
    class Broken:
        def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
            return RiskDecision.approve(math.nan)

    (verdict,) = check_shrink_or_veto(Broken(), OrderIntent("TEST", Side.BUY))
    assert verdict.fault and verdict.vetoed


# -- proving a target-positions plan -----------------------------------------------------------


def _gapped(count: int) -> list[Bar]:
    """A seeded walk whose opens jump away from the previous close (fill-at-close engines would
    differ), with turns often enough for an EMA cross."""
    rng = random.Random(11)
    bars, close = [], 100.0
    for index in range(count):
        open_ = close * (1 + rng.uniform(-0.004, 0.004))
        close = open_ * (1 + rng.gauss(0, 0.01))
        high, low = max(open_, close) * 1.001, min(open_, close) * 0.999
        bars.append(make_bar(open_, high, low, close, index=index))
    return bars


def test_ema_cross_plan_trades_as_its_on_bar() -> None:
    strategy = EmaCross(EmaCrossParams(fast=5, slow=12))
    run = check_target_plan(strategy, _gapped(600), quantity=2.0, broker_params={"fee_bps": 10})
    assert len(run.fills) > 20 and run.trades  # it did trade: the comparison had content
    assert {fill.reason for fill in run.fills} >= {"cross-up", "cross-down"}


class _Flip(Strategy):
    """Long for 10 bars, short for 10, … after a warm-up of 5; ``late`` makes its on_bar turn
    one bar after its plan, ``tag`` names its opening orders differently from its plan."""

    def __init__(self, late: bool = False, tag: str = "open") -> None:
        super().__init__(None)
        self.late, self.tag, self.seen = late, tag, -1

    def warmup_bars(self) -> int:
        return 5

    def _wanted(self, index: int) -> float:
        return 0.0 if index < 5 else (1.0 if (index // 10) % 2 == 0 else -1.0)

    def on_bar(self, bar: Bar) -> None:
        self.seen += 1
        index = self.seen - 1 if self.late else self.seen
        wanted = self._wanted(max(index, 0))
        held = self.ctx.position(bar.symbol).quantity
        if wanted == (held > 0) - (held < 0) or self.ctx.open_orders():
            return
        if held:
            self.ctx.close(bar.symbol, tag="shut")
        if wanted > 0:
            self.ctx.buy(bar.symbol, tag=self.tag)
        elif wanted < 0:
            self.ctx.sell(bar.symbol, tag=self.tag)

    def target_positions(self, columns: Any) -> TargetPlan:
        target = np.array([self._wanted(i) for i in range(len(columns))])
        return TargetPlan(target, close_tag="shut", buy_tag="open", sell_tag="open")


def test_a_plan_that_trades_as_on_bar_passes() -> None:
    run = check_target_plan(_Flip(), make_bars([100 + (i % 7) for i in range(60)]))
    assert len(run.fills) == 11  # the entry after warm-up, then a close and an open at 5 turns


def test_a_plan_a_bar_ahead_of_on_bar_fails_naming_the_first_fill() -> None:
    with pytest.raises(AssertionError, match=r"fill 0: time"):
        check_target_plan(_Flip(late=True), make_bars([100 + (i % 7) for i in range(60)]))


def test_a_plan_whose_tags_differ_from_on_bar_fails_naming_the_reason() -> None:
    with pytest.raises(AssertionError, match=r"fill 0: reason: 'other' by on_bar, 'open'"):
        check_target_plan(_Flip(tag="other"), make_bars([100 + (i % 7) for i in range(60)]))


def test_nothing_to_compare_is_a_value_error() -> None:
    class NoPlan(Strategy):
        def on_bar(self, bar: Bar) -> None:
            pass

    with pytest.raises(ValueError, match="no target_positions"):
        check_target_plan(NoPlan(None), make_bars([1, 2, 3]))
    with pytest.raises(ValueError, match="one symbol"):
        check_target_plan(_Flip(), make_bars([1, 2]) + make_bars([1, 2], symbol="OTHER"))
    bracketed = EmaCross(EmaCrossParams(fast=5, slow=12, stop_loss_pct=0.01))
    with pytest.raises(ValueError, match="offers no plan"):
        check_target_plan(bracketed, _gapped(50))


# -- the kit itself --------------------------------------------------------------------------


def test_the_kits_docstring_examples_run() -> None:
    failed, attempted = doctest.testmod(kit, optionflags=doctest.ELLIPSIS)
    assert attempted >= 5
    assert failed == 0


def test_importing_the_kit_loads_no_service() -> None:
    heavy = ("grpc", "aiohttp", "prometheus_client", "kopf", "tradefleet_plugins")
    probe = (
        "import sys, tradefleet_runtime.sdk.testing\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == ""
