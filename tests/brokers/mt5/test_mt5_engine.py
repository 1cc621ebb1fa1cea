"""The real engine with the mt5 broker on the emulated terminal: orders leave as PENDING, the
terminal's answers come back through ``pump``, and the journal equals the terminal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
)
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import Disconnect, UnknownOutcome
from tradefleet_runtime.journal import Journal


@pytest.fixture(params=["netting", "hedging"])
def venue(request: pytest.FixtureRequest, transport: str) -> Iterator[Mt5Harness]:
    # transport: direct, and through an in-process bridge (conftest.py)
    harness = Mt5Harness.build(request.param, transport=transport)
    harness.symbols = ("EURUSD",)
    harness.connect()
    yield harness
    harness.close()


def _journal_equals_terminal(journal: Journal, venue: Mt5Harness) -> None:
    journaled = sorted(row[0] for row in journal.query("SELECT fill_id FROM fills"))
    magic = venue.broker._magic
    at_terminal = sorted(str(d.ticket) for d in venue.deals() if d.magic == magic)
    assert journaled == at_terminal


def test_bracketed_entry_stopped_out_journal_equals_terminal(venue: Mt5Harness) -> None:
    strategy = Scripted(
        {0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0, stop_loss=1.0950, take_profit=1.1100)}
    )
    engine, journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    assert dict(journal.order_statuses())  # journaled pending before the terminal answered
    assert settle_and_pump(engine, venue) == 2  # ack + fill
    statuses = dict(journal.order_statuses())
    parent = next(cid for cid in statuses if not cid.endswith(("-sl", "-tp")))
    assert statuses == {parent: "filled", f"{parent}-sl": "open", f"{parent}-tp": "open"}
    assert engine.portfolio.position("EURUSD").quantity == 10_000.0  # 0.1 lot
    venue.terminal.set_price("EURUSD", 1.0940)
    settle_and_pump(engine, venue)
    statuses = dict(journal.order_statuses())
    assert statuses[f"{parent}-sl"] == "filled" and statuses[f"{parent}-tp"] == "cancelled"
    assert engine.portfolio.position("EURUSD").quantity == 0.0
    assert venue.terminal.positions_get() == ()
    _journal_equals_terminal(journal, venue)


FAULTS: dict[str, list[Any]] = {
    "timeout-executed": [UnknownOutcome(10012, executed=True)],
    "timeout-not-executed": [UnknownOutcome(10012, executed=False)],
    "no-connection-executed": [UnknownOutcome(10031, executed=True)],
    "no-connection-not-executed": [UnknownOutcome(10031, executed=False)],
    "unnamed-code": [UnknownOutcome(10099, executed=True)],
    "terminal-lost-executed": [Disconnect("ipc", executed=True)],
    "terminal-lost-not-executed": [Disconnect("ipc", executed=False)],
    "requote-storm": [10004, 10020, 10021],
    "throttled": [10024, 10024],
    "filling-refused": [10030],
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faults_end_with_journal_equal_to_terminal(venue: Mt5Harness, fault: str) -> None:
    venue.terminal.faults.script("order_send", FAULTS[fault])
    strategy = Scripted(
        {
            0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0),
            1: lambda ctx, bar: ctx.close("EURUSD"),
        }
    )
    engine, journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    assert list(dict(journal.order_statuses()).values()) == ["filled"]
    assert engine.portfolio.position("EURUSD").quantity == 10_000.0  # 0.1 lot
    venue.terminal.faults.script("order_send", FAULTS[fault])  # the exit meets it too
    engine.run([minute_bar(1, 1.1)])
    settle_and_pump(engine, venue)
    assert list(dict(journal.order_statuses()).values()) == ["filled", "filled"]
    assert engine.portfolio.position("EURUSD").quantity == 0.0
    assert venue.terminal.positions_get() == ()
    _journal_equals_terminal(journal, venue)


def test_partial_fill_journaled_as_the_terminal_has_it(venue: Mt5Harness) -> None:
    venue.terminal.faults.script("order_send", [10010])
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0)})
    engine, journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    assert list(dict(journal.order_statuses()).values()) == ["cancelled"]
    assert engine.portfolio.position("EURUSD").quantity == 5_000.0
    assert [p.volume for p in venue.terminal.positions_get()] == [0.05]
    _journal_equals_terminal(journal, venue)


def test_exit_closes_the_position_and_cancels_its_children(venue: Mt5Harness) -> None:
    strategy = Scripted(
        {
            0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0, stop_loss=1.0950),
            1: lambda ctx, bar: ctx.close("EURUSD"),
        }
    )
    engine, journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    engine.run([minute_bar(1, 1.1)])
    settle_and_pump(engine, venue)
    statuses = dict(journal.order_statuses())
    assert sorted(statuses.values()) == ["cancelled", "filled", "filled"]
    assert engine.portfolio.position("EURUSD").quantity == 0.0
    assert venue.terminal.positions_get() == ()
    _journal_equals_terminal(journal, venue)


def test_a_restarted_bot_adopts_its_positions_sl_and_tp_and_they_still_act(
    venue: Mt5Harness, transport: str, tmp_path: Path
) -> None:
    """MT5 keeps a bracket as its position's SL and TP, not as orders. A restarted bot's
    reconciliation must find them working (adopted: shown as open orders, cancellable), not
    close them in the journal as never sent while they still act at the terminal."""
    path = tmp_path / "journal.sqlite"
    strategy = Scripted(
        {0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0, stop_loss=1.0950, take_profit=1.1100)}
    )
    engine, journal = live_engine(venue, strategy, Journal(path, durable=True))
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    parent = engine.last_order_id
    children = {f"{parent}-sl", f"{parent}-tp"}
    journal.close()  # killed: the terminal keeps the position with its SL and TP

    venue.close()
    restarted = Mt5Harness.build(venue=venue.terminal, transport=transport)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    try:
        second = Journal(path, durable=True)
        again, carried, plan = restarted_plan(restarted, second, 0)
        assert {o.client_order_id for o, _ in carried.working} == children
        assert (plan.never_sent, plan.degraded) == ((), False)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        assert {o.client_order_id for o in again.open_orders()} == children
        # The stop still acts, and the restarted bot books it as its stop-loss exit.
        restarted.terminal.set_price("EURUSD", 1.0940)
        settle_and_pump(again, restarted)
        statuses = dict(second.order_statuses())
        assert (statuses[f"{parent}-sl"], statuses[f"{parent}-tp"]) == ("filled", "cancelled")
        assert again.portfolio.position("EURUSD").quantity == 0.0
        assert [t.exit_reason for t in again.portfolio.trades] == ["stop_loss"]
        second.close()
    finally:
        restarted.close()
