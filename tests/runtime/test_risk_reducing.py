"""An order that only reduces a position is an exit, however it was sent.

A strategy may close with a plain ``ctx.sell`` of what it holds instead of ``ctx.close``. The
engine makes such an order reduce-only before the gate and the chain (``risk_driver.py``): no
rule, lock or halt may stop a reduction of risk, and the venue gets a reduce-only order, which
cannot reverse the position. Only what the position still holds, net of the exits already
working, reduces; a bracket's stop-loss and take-profit guard the position and do not count.
"""

from __future__ import annotations

from typing import Any

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tradefleet_plugins.risk.circuit_breaker import CircuitBreaker
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar


def _decisions(journal: Journal, side: str = "sell") -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in journal.query(
            "SELECT plugin, action, reason FROM risk_decisions WHERE side = ? ORDER BY id", side
        )
    ]


def _orders(journal: Journal, side: str = "sell") -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in journal.query(
            "SELECT quantity, reduce_only FROM orders WHERE side = ? AND parent_id IS NULL"
            " ORDER BY rowid",
            side,
        )
    ]


def test_a_plain_sell_of_the_held_quantity_passes_prop_firm_without_a_stop() -> None:
    """prop-firm requires a stop on entries; a sell closing the long is no entry."""
    journal = Journal(":memory:")
    strategy = Scripted(
        {
            0: lambda c, b: c.buy("TEST", 100, stop_loss=80.0),
            2: lambda c, b: c.sell("TEST", 100),
        }
    )
    engine = make_engine(
        strategy,
        capital=100_000.0,
        journal=journal,
        risk=[("prop-firm", PropFirm(PropFirmParams(timezone="UTC")))],
    )
    engine.run(flat_bars([100.0] * 5))
    assert _decisions(journal) == [("prop-firm", "approve", "")]
    assert _orders(journal) == [(100.0, 1)]  # reduce-only at the venue too
    assert engine.position("TEST").quantity == 0


def test_a_plain_sell_of_the_held_quantity_passes_the_breakers_tier_2() -> None:
    """Tier 2 stops new entries; the strategy's own exit (a plain sell) must still go."""
    journal = Journal(":memory:")
    strategy = Scripted(
        {
            0: lambda c, b: c.buy("TEST", 1000),
            3: lambda c, b: c.sell("TEST", 1000),
        }
    )
    breaker = CircuitBreaker(CircuitBreakerParams(timezone="UTC", reduce_fraction=0.0001))
    engine = make_engine(
        strategy, capital=100_000.0, journal=journal, risk=[("circuit-breaker", breaker)]
    )
    # Filled at 100, then 89: 11% down, tier 2.
    engine.run(flat_bars([100.0, 100.0, 89.0, 89.0, 89.0, 89.0]))
    assert breaker.tier() == 2
    assert _decisions(journal) == [("circuit-breaker", "approve", "")]
    assert engine.position("TEST").quantity == 0


def test_a_halted_bot_lets_a_plain_exit_through_but_nothing_more() -> None:
    """The gate lets reductions through a halt: a sell of 11 with 10 held goes as its closing
    part, a reduce-only 10 (``test_halt_lock_closing_part.py``); the two sells of 10 after it,
    with that 10 still working, would open a short, and are refused. Flat, never short."""
    journal = Journal(":memory:")

    def exits(context: Any, bar: Bar) -> None:
        context.sell("TEST", 11)
        context.sell("TEST", 10)
        context.sell("TEST", 10)

    strategy = Scripted({0: lambda c, b: c.buy("TEST", 10), 2: exits})
    engine = make_engine(strategy, journal=journal)
    bars = flat_bars([100.0] * 4)
    engine.run(bars[:2])
    engine.halt("test", "kill switch")
    engine.run(bars[2:])
    assert _decisions(journal) == [
        (
            "engine.halted",
            "shrink",
            "bot is halted: kill switch; the sell of 11 cut to the 10 closing the TEST position,"
            " sent reduce-only",
        ),
        ("engine.halted", "veto", "bot is halted: kill switch"),
        ("engine.halted", "veto", "bot is halted: kill switch"),
    ]
    assert _orders(journal) == [(10.0, 1)]
    assert engine.position("TEST").quantity == 0
    assert not engine.open_orders("TEST")


def test_a_brackets_children_leave_the_position_to_be_closed() -> None:
    """A long protected by its bracket's stop and take-profit (both working for all of it):
    a sell of the held quantity still only reduces."""
    journal = Journal(":memory:")
    strategy = Scripted(
        {
            0: lambda c, b: c.buy("TEST", 10, stop_loss=90.0, take_profit=120.0),
            2: lambda c, b: c.sell("TEST", 10),
        }
    )
    engine = make_engine(strategy, journal=journal)
    bars = flat_bars([100.0] * 4)
    engine.run(bars[:2])
    assert len(engine.open_orders("TEST")) == 2  # the bracket's children
    engine.halt("test", "kill switch")
    engine.run(bars[2:])
    assert _orders(journal) == [(10.0, 1)]
    assert engine.position("TEST").quantity == 0


def test_an_order_past_the_position_stays_an_entry() -> None:
    """A sell of more than is held would reverse the long: not reduce-only, checked as an
    entry (so prop-firm asks for its stop)."""
    journal = Journal(":memory:")
    strategy = Scripted(
        {
            0: lambda c, b: c.buy("TEST", 100, stop_loss=80.0),
            2: lambda c, b: c.sell("TEST", 150),
            3: lambda c, b: c.buy("TEST", 10, stop_loss=80.0),  # adds: an entry
        }
    )
    engine = make_engine(
        strategy,
        capital=100_000.0,
        journal=journal,
        risk=[("prop-firm", PropFirm(PropFirmParams(timezone="UTC")))],
    )
    engine.run(flat_bars([100.0] * 5))
    assert _decisions(journal) == [
        ("prop-firm", "veto", "prop-firm: an entry needs a stop-loss"),
    ]
    assert [row[1] for row in _orders(journal, "buy")] == [0, 0]
    assert engine.position("TEST").quantity == 110
