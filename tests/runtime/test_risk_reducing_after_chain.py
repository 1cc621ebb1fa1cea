"""An order the risk chain shrank to no more than it closes goes out reduce-only.

The engine makes an intent that only reduces a position reduce-only before the chain
(``test_risk_reducing.py``). A reversal sent as one order is no exit then; a rule that refuses
what it opens shrinks it to its closing part (circuit-breaker's tiers, probation, quality-guard:
``entry_cut``; pre-trade's caps). After the chain such an order is an exit whole, and goes out
reduce-only (``risk_driver.closes_only``): journaled so, sent so, and kept by a halt's cancel of
the entries. A resting limit the position's stop-loss then leaves nothing to close is cancelled
at the venue instead of opening the position the rule refused. An order nothing shrank, and one
still opening after its cut, are left as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.circuit_breaker import CircuitBreaker
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.pre_trade import PreTrade
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.engine.risk_driver import closes_only
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import OrderType

TIER_2 = {"warn_drawdown": 0.02, "reduce_drawdown": 0.04, "lock_drawdown": 0.5,
          "max_drawdown": 0.6, "weekly_loss": 0.5, "reduce_fraction": 0.0001}  # fmt: skip


def _sells(journal: Journal) -> list[tuple[Any, ...]]:
    """The strategy's sells as journaled: (type, quantity, reduce_only); children left out."""
    return [
        tuple(row)
        for row in journal.query(
            "SELECT order_type, quantity, reduce_only FROM orders WHERE side = 'sell'"
            " AND parent_id IS NULL AND client_order_id NOT LIKE '%r%' ORDER BY rowid"
        )
    ]


def test_closes_only_is_at_most_what_is_left_to_close() -> None:
    assert closes_only(500.0, 500.0)
    assert closes_only(499.95, 500.0)
    assert closes_only(500.0 * (1.0 + 1e-12), 500.0)  # a float's last bits
    assert not closes_only(500.01, 500.0)
    assert not closes_only(1.0, 0.0)  # nothing to close: the side opens or adds


def test_a_tier_2_reversal_cut_to_its_closing_part_never_opens_after_a_stop_out(
    tmp_path: Path,
) -> None:
    """Long 500 with a stop-loss at 98.5; in tier 2 a resting sell limit 600 at 105 is cut to
    its closing part (499.95: the breaker's own reduce took 0.05). The stop-loss closes the
    long; the market then trades through 105: the limit finds nothing to reduce."""
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 500, stop_loss=98.5),
            3: lambda ctx, b: ctx.sell("TEST", 600, order_type=OrderType.LIMIT, price=105.0),
        }
    )
    chain = [{"name": "circuit-breaker", "params": TIER_2}]
    bot = bot_with(PluginRegistry.discover(), manifest(chain), strategy, tmp_path)
    session = open_session(bot)
    engine = session.engine
    journal = session.journal
    assert engine is not None and isinstance(journal, Journal)
    engine.run(flat_bars([100.0, 100.0, 99.0, 99.0, 99.0, 98.0, 98.0, 106.0, 106.0, 106.0]))
    cut = journal.query(
        "SELECT quantity_in, quantity_out, reason FROM risk_decisions WHERE action = 'shrink'"
    )
    assert [tuple(row[:2]) for row in cut] == [(600.0, 499.95)]
    assert "tier 2" in str(cut[0][2])
    assert _sells(journal) == [("limit", 499.95, 1)]  # journaled, and so sent, reduce-only
    updates = journal.query(
        "SELECT u.reason FROM order_updates u JOIN orders o USING (client_order_id)"
        " WHERE o.order_type = 'limit' AND u.status = 'cancelled'"
    )
    assert [row[0] for row in updates] == ["reduce-only order: no position to reduce"]
    assert engine.position("TEST").quantity == 0.0  # never short in tier 2


def test_a_halt_keeps_a_reversal_cut_to_its_closing_part_working_as_an_exit() -> None:
    """A halt cancels the working entries; the cut reversal is an exit, and stays."""
    journal = Journal(":memory:")
    strategy = Scripted(
        {
            0: lambda c, b: c.buy("TEST", 1000),
            3: lambda c, b: c.sell("TEST", 1500, order_type=OrderType.LIMIT, price=120.0),
        }
    )
    breaker = CircuitBreaker(CircuitBreakerParams(timezone="UTC", reduce_fraction=0.0001))
    engine = make_engine(
        strategy, capital=100_000.0, journal=journal, risk=[("circuit-breaker", breaker)]
    )
    engine.run(flat_bars([100.0, 100.0, 89.0, 89.0, 89.0]))  # 11% down: tier 2
    assert breaker.tier() == 2
    working = [o for o in engine.open_orders("TEST") if o.order_type is OrderType.LIMIT]
    assert [(o.quantity, o.reduce_only) for o in working] == [(1000.0, True)]
    engine.halt("test", "kill switch")
    assert [o.client_order_id for o in engine.open_orders("TEST")] == [working[0].client_order_id]


def test_pre_trade_capping_a_reversal_at_its_closing_part_sends_it_reduce_only() -> None:
    """pre-trade's largest order never cuts below the part that closes: a sell of 600 against
    a long 300 with ``max_order_quantity`` 100 is an exit of 300."""
    journal = Journal(":memory:")
    strategy = Scripted({i: lambda c, b: c.buy("TEST", 100) for i in range(3)} | {
        3: lambda c, b: c.sell("TEST", 600)
    })  # fmt: skip
    rule = PreTrade(PreTradeParams(max_order_quantity=100))
    engine = make_engine(strategy, capital=100_000.0, journal=journal, risk=[("pre-trade", rule)])
    engine.run(flat_bars([100.0] * 6))
    assert _sells(journal) == [("market", 300.0, 1)]
    assert engine.position("TEST").quantity == 0.0


def test_a_tier_1_cut_that_still_opens_stays_an_entry() -> None:
    """Tier 1 cuts only what a reversal opens: what is left still opens, so it is no exit."""
    journal = Journal(":memory:")
    strategy = Scripted({0: lambda c, b: c.buy("TEST", 1000), 3: lambda c, b: c.sell("TEST", 2000)})
    breaker = CircuitBreaker(CircuitBreakerParams(timezone="UTC"))  # tier 1 from 5% down
    engine = make_engine(
        strategy, capital=100_000.0, journal=journal, risk=[("circuit-breaker", breaker)]
    )
    engine.run(flat_bars([100.0, 100.0, 93.0, 93.0, 93.0, 93.0]))  # 7% down: tier 1
    assert breaker.tier() == 1
    (sell,) = _sells(journal)
    assert 1000.0 < sell[1] < 2000.0 and sell[2] == 0, sell
    assert engine.position("TEST").quantity < 0.0


def test_a_reversal_no_rule_shrank_stays_an_entry() -> None:
    journal = Journal(":memory:")
    strategy = Scripted({0: lambda c, b: c.buy("TEST", 100), 2: lambda c, b: c.sell("TEST", 150)})
    breaker = CircuitBreaker(CircuitBreakerParams(timezone="UTC"))
    engine = make_engine(
        strategy, capital=100_000.0, journal=journal, risk=[("circuit-breaker", breaker)]
    )
    engine.run(flat_bars([100.0] * 5))
    assert _sells(journal) == [("market", 150.0, 0)]
    assert engine.position("TEST").quantity == -50.0
