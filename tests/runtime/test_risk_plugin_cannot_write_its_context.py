"""A risk plugin cannot change what the next plugin, or the next intent, decides on (W36).

The context a plugin is handed shared its mappings with the rest of the chain (its marks for
this intent, its positions until the next fill): a plugin writing a mark near zero switched
off the next plugin's notional cap (50 sent where pre-trade cuts to 10), and one clearing the
positions blinded a position count for the next intent. The context's mappings and positions
are read-only now: a plugin that writes one fails, which vetoes its intent, naming it.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, Scripted, bar
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.risk.pre_trade import PreTrade
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.capabilities import AccountAction, ActionKind
from tradefleet_runtime.contracts import BrokerContext, RiskContext, RiskPlugin, Strategy
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderIntent, RiskDecision
from tradefleet_runtime.spec.model import Mode

SYMBOLS = ("A", "B")
BARS = [bar(i, 100, 100, 100, 100, symbol) for i in range(6) for symbol in SYMBOLS]


def _engine(strategy: Strategy, risk: Sequence[tuple[str, RiskPlugin]]) -> Engine:
    paper = PaperBroker(PaperBrokerParams())
    paper.connect(BrokerContext("ro", Mode.BACKTEST, SYMBOLS, "USD", 100_000.0))
    journal = Journal(":memory:")
    journal.start_run(
        run_id="ro", bot="ro", mode="backtest", currency="USD", initial_capital=100_000.0,
        timeframe_s=HOUR, config_hash="x", manifest={},
    )  # fmt: skip
    config = EngineConfig("ro", "backtest", SYMBOLS, HOUR, 100_000.0)
    return Engine(config, strategy, paper, journal, list(risk))


def _rows(e: Engine, sql: str) -> list[tuple[Any, ...]]:
    return e.journal.query(sql)  # type: ignore[attr-defined, no-any-return]


class Writer:
    """A plugin that writes what it was shown, then approves."""

    def __init__(self, write: Callable[[OrderIntent, RiskContext], None]) -> None:
        self.write = write

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        self.write(intent, ctx)
        return RiskDecision.approve()


def _set_mark(intent: OrderIntent, ctx: RiskContext) -> None:
    ctx.marks[intent.symbol] = 1e-9


def _clear_positions(intent: OrderIntent, ctx: RiskContext) -> None:
    ctx.positions.clear()


def _shrink_a_position(intent: OrderIntent, ctx: RiskContext) -> None:
    for position in ctx.positions.values():
        position.quantity = 0.0


@pytest.mark.parametrize(
    "write", [_set_mark, _clear_positions], ids=["mark-near-zero", "positions-cleared"]
)
def test_a_plugin_writing_its_context_is_vetoed_and_the_next_rule_still_judges(
    write: Callable[[OrderIntent, RiskContext], None],
) -> None:
    strategy = Scripted({0: lambda c, b: c.buy("A", 50)})
    pre_trade = PreTrade(PreTradeParams(max_order_notional=1000))
    e = _engine(strategy, [("writer", Writer(write)), ("pre-trade", pre_trade)])
    e.run(BARS)
    assert _rows(e, "SELECT symbol, quantity FROM orders") == []
    [(plugin, action, reason)] = _rows(
        e, "SELECT plugin, action, reason FROM risk_decisions WHERE plugin = 'writer'"
    )
    assert (plugin, action) == ("writer", "veto")
    assert reason.startswith(("writer failed: TypeError", "writer failed: AttributeError")), reason


def test_a_position_a_plugin_was_shown_cannot_be_written_for_the_next_intent() -> None:
    # Long A, then in one bar: a sell of A (the writer zeroes the positions it is shown while
    # judging it) and a buy of B: the position count judges B on the account as it is.
    strategy = Scripted(
        {0: lambda c, b: c.buy("A", 1), 2: lambda c, b: (c.sell("A", 1), c.buy("B", 5))}
    )
    count = PreTrade(PreTradeParams(max_open_positions=1))
    e = _engine(strategy, [("count", count), ("writer", Writer(_shrink_a_position))])
    e.run(BARS)
    assert _rows(e, "SELECT symbol FROM orders WHERE symbol = 'B'") == []
    vetoed = _rows(e, "SELECT plugin, symbol, reason FROM risk_decisions WHERE action = 'veto'")
    assert ("count", "B") in {(plugin, symbol) for plugin, symbol, _ in vetoed}, vetoed
    assert any(plugin == "writer" and "read-only" in reason for plugin, _, reason in vetoed), vetoed


class Copier:
    """Models the position an order leaves on copies of what it was shown, writing nothing;
    ``flatten``: keeps a deep copy of the positions and flattens A at its third call."""

    def __init__(self) -> None:
        self.asked = 0

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        held = ctx.positions.get(intent.symbol)
        if held is not None and intent.quantity is not None:
            after = dataclasses.replace(held, quantity=held.quantity + intent.quantity)
            own = copy.copy(held)
            own.quantity = 0.0  # the plugin's own copy: writable
            assert after.quantity > held.quantity > own.quantity
            assert pickle.loads(pickle.dumps(held)) == held
        return RiskDecision.approve()

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        self.asked += 1
        kept = copy.deepcopy(dict(ctx.positions))
        if self.asked == 3 and "A" in kept:
            return [AccountAction(ActionKind.FLATTEN, "drawdown", "A")]
        return []


def test_a_plugin_copying_what_it_was_shown_is_not_a_fault() -> None:
    # R52: copy, deepcopy, pickle and dataclasses.replace of a read-only position raised: the
    # plugin's orders were vetoed as its fault, and its flatten was never done.
    strategy = Scripted({0: lambda c, b: c.buy("A", 1), 2: lambda c, b: c.buy("A", 1)})
    copier = Copier()
    hooks = RiskHooks(actors=[("copier", copier)])
    paper = PaperBroker(PaperBrokerParams())
    paper.connect(BrokerContext("ro", Mode.BACKTEST, SYMBOLS, "USD", 100_000.0))
    journal = Journal(":memory:")
    journal.start_run(
        run_id="ro", bot="ro", mode="backtest", currency="USD", initial_capital=100_000.0,
        timeframe_s=HOUR, config_hash="x", manifest={},
    )  # fmt: skip
    config = EngineConfig("ro", "backtest", SYMBOLS, HOUR, 100_000.0)
    e = Engine(config, strategy, paper, journal, [("copier", copier)], hooks=hooks)
    e.run(BARS)
    assert _rows(e, "SELECT reason FROM risk_decisions WHERE code = 'plugin_fault'") == []
    assert _rows(e, "SELECT 1 FROM events WHERE kind = 'risk_action_failed'") == []
    orders = _rows(e, "SELECT side, quantity FROM orders WHERE symbol = 'A' ORDER BY rowid")
    assert [side for side, _ in orders] == ["buy", "buy", "sell"], orders  # flatten done
