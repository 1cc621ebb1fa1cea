"""The plugin author's testing kit (``tradefleet_runtime.sdk.testing``) tells the truth.

Each test states what a bot would do and checks that the kit, which goes through the real
session, engine and paper broker, says so.
"""

from __future__ import annotations

import doctest
import math
import subprocess
import sys
from typing import Any

import pytest

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
)
from tradefleet_runtime.sdk import testing as kit
from tradefleet_runtime.sdk.testing import (
    START,
    check_shrink_or_veto,
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
