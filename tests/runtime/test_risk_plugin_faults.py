"""A risk plugin's malformed answers are its fault, said in its name; never a crash naming
nothing, never an order of what it did not mean (W36).

- A decision whose action is a plain string, or whose quantity is a string, a complex number,
  ``True`` or infinite: a veto, the plugin's fault (``plugin_fault``). They crashed the run
  with a bare AttributeError or TypeError, or (infinite, True) reached the broker.
- An ``account_actions`` item that is no action, or a REDUCE whose fraction is not a number
  above 0: refused in the plugin's name, naming the field (``risk_action_failed``); the bot
  trades on. They crashed the run, or were said as done and did nothing.
- A plugin's ``on_bar`` or ``lock_reason`` that raises ends the run, naming the plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, Scripted, bar
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.capabilities import AccountAction, ActionKind
from tradefleet_runtime.contracts import BrokerContext, RiskContext, RiskPlugin, Strategy
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.errors import RiskPluginError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderIntent, RiskAction, RiskDecision
from tradefleet_runtime.spec.model import Mode

BARS = [bar(i, 100, 100, 100, 100, "A") for i in range(6)]


def _engine(
    strategy: Strategy,
    risk: Sequence[tuple[str, RiskPlugin]],
    *,
    hooks: RiskHooks | None = None,
    lock_holders: Sequence[tuple[str, Any]] = (),
) -> Engine:
    paper = PaperBroker(PaperBrokerParams())
    paper.connect(BrokerContext("f", Mode.BACKTEST, ("A",), "USD", 100_000.0))
    journal = Journal(":memory:")
    journal.start_run(
        run_id="f", bot="f", mode="backtest", currency="USD", initial_capital=100_000.0,
        timeframe_s=HOUR, config_hash="x", manifest={},
    )  # fmt: skip
    config = EngineConfig("f", "backtest", ("A",), HOUR, 100_000.0)
    return Engine(
        config, strategy, paper, journal, list(risk), hooks=hooks, lock_holders=lock_holders
    )


def _rows(e: Engine, sql: str) -> list[tuple[Any, ...]]:
    return e.journal.query(sql)  # type: ignore[attr-defined, no-any-return]


class Answers:
    def __init__(self, decision: Any) -> None:
        self.decision = decision

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return self.decision  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("decision", "said"),
    [
        (RiskDecision("approve", None), "action is 'approve', not a RiskAction"),  # type: ignore[arg-type]
        (RiskDecision(RiskAction.SHRINK, "5"), "sized the order to '5', which is not a number"),  # type: ignore[arg-type]
        (RiskDecision(RiskAction.SHRINK, 1j), "which is not a number"),  # type: ignore[arg-type]
        (RiskDecision(RiskAction.SHRINK, True), "sized the order to True"),
        (RiskDecision(RiskAction.APPROVE, float("inf")), "sized the order to inf"),
    ],
    ids=["action-str", "quantity-str", "quantity-complex", "quantity-true", "quantity-inf"],
)
def test_a_malformed_decision_is_a_veto_in_the_plugins_name(decision: Any, said: str) -> None:
    strategy = Scripted({0: lambda c, b: c.buy("A", 4), 2: lambda c, b: c.buy("A")})
    e = _engine(strategy, [("odd", Answers(decision))])
    e.run(BARS)
    assert _rows(e, "SELECT quantity FROM orders") == []
    faults = _rows(e, "SELECT plugin, reason, code FROM risk_decisions WHERE action = 'veto'")
    assert [(p, c) for p, _, c in faults] == [("odd", "plugin_fault")] * 2
    assert all(said in reason for _, reason, _ in faults), faults


class Actor:
    """Asks for ``actions`` once, after the bar the entry filled on."""

    def __init__(self, actions: Sequence[Any]) -> None:
        self.actions, self.asked = list(actions), 0

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def account_actions(self, ctx: RiskContext) -> Sequence[AccountAction]:
        self.asked += 1
        return self.actions if self.asked == 3 else []


@pytest.mark.parametrize(
    ("action", "said"),
    [
        ("flatten A", "returned str, not an AccountAction"),
        (AccountAction("flatten", "f", "A"), "kind: 'flatten' is not an ActionKind"),  # type: ignore[arg-type]
        (AccountAction(ActionKind.REDUCE, "r", "A", fraction=0.0), "fraction: 0.0 must be"),
        (AccountAction(ActionKind.REDUCE, "r", "A", fraction=-1.0), "fraction: -1.0 must be"),
        (AccountAction(ActionKind.REDUCE, "r", "A", fraction=float("nan")), "fraction: nan"),
    ],
    ids=["a-string", "kind-str", "fraction-0", "fraction-negative", "fraction-nan"],
)
def test_an_action_the_bot_cannot_do_is_refused_in_the_plugins_name(action: Any, said: str) -> None:
    strategy = Scripted({0: lambda c, b: c.buy("A", 4), 4: lambda c, b: c.buy("A", 1)})
    actor = Actor([action])
    e = _engine(strategy, [("actor", actor)], hooks=RiskHooks(actors=[("actor", actor)]))
    e.run(BARS)  # no crash: the bot trades on
    assert _rows(e, "SELECT side, quantity FROM orders") == [("buy", 4.0), ("buy", 1.0)]
    [(message,)] = _rows(e, "SELECT message FROM events WHERE kind = 'risk_action_failed'")
    assert message.startswith("actor asked an action the bot cannot do: ") and said in message
    assert _rows(e, "SELECT 1 FROM events WHERE kind = 'risk_action'") == []  # not said done


class BarRaiser:
    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def on_bar(self, b: Bar) -> None:
        raise RuntimeError("bar broke")


class LockRaiser:
    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def lock_reason(self) -> str | None:
        raise RuntimeError("lock broke")

    def reset_lock(self) -> str | None:
        return None


def test_a_risk_plugins_on_bar_error_ends_the_run_naming_it() -> None:
    plugin = BarRaiser()
    hooks = RiskHooks(bar_observers=[("barraiser", plugin)])
    e = _engine(Scripted(), [("barraiser", plugin)], hooks=hooks)
    with pytest.raises(RiskPluginError) as raised:
        e.run(BARS)
    assert str(raised.value).startswith("risk plugin barraiser failed in on_bar at the A 1h bar")
    assert str(raised.value).endswith("RuntimeError: bar broke")


def test_a_risk_plugins_lock_reason_error_ends_the_run_naming_it() -> None:
    plugin = LockRaiser()
    e = _engine(Scripted(), [("lockraiser", plugin)], lock_holders=[("lockraiser", plugin)])
    with pytest.raises(RiskPluginError) as raised:
        e.run(BARS)
    assert str(raised.value) == (
        "risk plugin lockraiser failed in lock_reason: RuntimeError: lock broke"
    )


class BigLock:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def lock_reason(self) -> str | None:
        return self.reason

    def reset_lock(self) -> str | None:
        return None


def test_a_huge_lock_reason_is_kept_cut_to_its_first_characters() -> None:
    # It was journaled whole with the lock and again in every order the lock refused.
    lock = BigLock("x" * 10_000_000)
    strategy = Scripted({2: lambda c, b: c.buy("A", 1), 4: lambda c, b: c.buy("A", 1)})
    e = _engine(strategy, [("big", lock)], lock_holders=[("big", lock)])
    e.run(BARS)
    assert _rows(e, "SELECT 1 FROM orders") == []
    reasons = [r for (r,) in _rows(e, "SELECT reason FROM risk_decisions")]
    assert len(reasons) == 2 and all(len(r) < 3_000 for r in reasons)
    assert reasons[0].endswith("… (9,998,000 more characters))")
    assert e.state.locks()["big"].endswith("… (9,998,000 more characters)")
