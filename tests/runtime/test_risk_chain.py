"""Risk plugins may only shrink or veto; every decision is journaled and counted."""

from __future__ import annotations

import pytest

from tests.runtime.helpers import Scripted, bar, run
from tradefleet_plugins.risk.sizers import FixedFractional, FixedSize, fixed_fractional_quantity
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams, FixedSizeParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.risk_chain import judge, round_down
from tradefleet_runtime.model import OrderIntent, RiskAction, RiskDecision


class Fixed:
    def __init__(self, decision: RiskDecision) -> None:
        self.decision = decision
        self.seen: list[OrderIntent] = []

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        self.seen.append(intent)
        return self.decision


class Broken:
    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        raise RuntimeError("boom")


BARS = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100)]


def _buy(quantity: float | None = 10) -> Scripted:
    return Scripted({0: lambda ctx, b: ctx.buy("TEST", quantity)})


def _decisions(engine: object) -> list[tuple[object, ...]]:
    return engine.journal.query(  # type: ignore[attr-defined, no-any-return]
        "SELECT plugin, action, quantity_in, quantity_out, reason FROM risk_decisions ORDER BY id"
    )


def test_judge_rules() -> None:
    assert judge("p", 10, RiskDecision.approve()).quantity == 10
    assert judge("p", 10, RiskDecision.shrink(4, "cap")).quantity == 4
    assert judge("p", None, RiskDecision.approve(7)).quantity == 7
    grown = judge("p", 10, RiskDecision.approve(11))
    assert grown.vetoed and grown.fault and "grow" in grown.decision.reason
    assert judge("p", 10, RiskDecision.shrink(-1, "x")).vetoed
    assert judge("p", 10, RiskDecision.shrink(float("nan"), "x")).vetoed
    assert judge("p", 10, "yes").vetoed  # type: ignore[arg-type]


def test_round_down_never_grows() -> None:
    assert round_down(1.2345, 0.01) == 1.23
    assert round_down(0.3, 0.1) == 0.3
    assert round_down(5, 0) == 5


def test_a_plugin_that_grows_an_order_vetoes_it_and_is_journaled() -> None:
    strategy = _buy(10)
    engine, result = run(strategy, BARS, risk=[("greedy", Fixed(RiskDecision.approve(20)))])
    assert strategy.fills == []
    [(plugin, action, q_in, q_out, reason)] = _decisions(engine)
    assert (plugin, action, q_in, q_out) == ("greedy", "veto", 10, 0)
    assert "may only shrink or veto" in str(reason)
    assert result.risk_decisions[("greedy", "veto")] == 1


def test_shrink_then_approve_chain_is_applied_in_order() -> None:
    strategy = _buy(10)
    shrinker = Fixed(RiskDecision.shrink(6, "cap"))
    watcher = Fixed(RiskDecision.approve())
    engine, result = run(strategy, BARS, risk=[("cap", shrinker), ("watch", watcher)])
    assert strategy.fills[0].quantity == 6
    assert watcher.seen[0].quantity == 6  # the next plugin sees the shrunk order
    assert [row[:4] for row in _decisions(engine)] == [
        ("cap", "shrink", 10, 6),
        ("watch", "approve", 6, None),
    ]
    assert result.risk_decisions == {("cap", "shrink"): 1, ("watch", "approve"): 1}


def test_a_veto_stops_the_chain_and_no_order_is_sent() -> None:
    later = Fixed(RiskDecision.approve())
    engine, _ = run(
        _buy(), BARS, risk=[("no", Fixed(RiskDecision.veto("daily loss"))), ("later", later)]
    )
    assert later.seen == []
    assert engine.journal.query("SELECT COUNT(*) FROM orders") == [(0,)]


def test_a_failing_plugin_vetoes() -> None:
    strategy = _buy()
    engine, _ = run(strategy, BARS, risk=[("broken", Broken())])
    assert strategy.fills == []
    assert "boom" in str(_decisions(engine)[0][4])


def test_unsized_order_without_sizer_is_refused() -> None:
    strategy = _buy(None)
    engine, _ = run(strategy, BARS)
    assert strategy.fills == []
    assert _decisions(engine)[0][:2] == ("engine.sizing", "veto")


def test_fixed_size_sizes_only_unsized_orders() -> None:
    sizer = FixedSize(FixedSizeParams(quantity=3, per_symbol={"OTHER": 9}))
    strategy = Scripted({0: lambda ctx, b: (ctx.buy("TEST"), ctx.buy("TEST", 1))})
    run(strategy, BARS, risk=[("fixed-size", sizer)])
    assert [f.quantity for f in strategy.fills] == [3, 1]


def test_fixed_fractional_risks_the_fraction_to_the_stop() -> None:
    assert fixed_fractional_quantity(10_000, 100, 2, 0.01, 10) == pytest.approx(50)
    assert fixed_fractional_quantity(10_000, 100, 0.01, 0.01, 2) == pytest.approx(
        200
    )  # leverage cap
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.02, max_leverage=5))
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", stop_loss=96)})
    run(strategy, BARS, risk=[("ff", sizer)])
    assert strategy.fills[0].quantity == pytest.approx(10_000 * 0.02 / 4)


def test_paused_bot_vetoes_entries_but_not_exits() -> None:
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 1)})
    from tests.runtime.helpers import make_engine

    engine = make_engine(strategy)
    engine.state.pause("test")
    engine.run(BARS)
    assert strategy.fills == []
    assert _decisions(engine)[0][:2] == ("engine.paused", "veto")
    assert RiskAction.VETO.value == "veto"
