"""On a netting account, the SL/TP children of every entry that added to the symbol's one
position are found on that position after a restart: adopted as they work there, at the part
of the position each entry added, and never a reason to close anything.

What went wrong before: a bot long 0.1 lot with SL/TP adds a second entry with the same SL/TP
(allowed on netting, docs/mt5.md). On restart — the second entry filled while the bot was
down, or both filled while it ran — the engine asked the broker to place the second entry's
children; the broker looked for "a position of <second entry>", but the one position carries
the first entry's id, so both children were rejected ("no open position of ... at the
terminal") and the engine closed the second entry at market as ``stop-refused``, on a
position that had its stop all along.
"""

from __future__ import annotations

from pathlib import Path

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
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_broker import _child_on_position
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import OrderType

SL, TP = 1.0950, 1.1100
LOT = 10_000.0  # euros: 0.1 lot of EURUSD


def _pyramided(tmp_path: Path, limit: bool) -> tuple[MT5Terminal, Path, list[str]]:
    """A netting bot buys 0.1 lot with SL/TP, then a second 0.1 lot with the same SL/TP (at
    market, or as a limit still resting), and goes down: the terminal, the journal's path
    and the two entries' ids."""
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    path = tmp_path / "journal.sqlite"
    strategy = Scripted(
        {
            0: lambda ctx, bar: ctx.buy("EURUSD", LOT, stop_loss=SL, take_profit=TP),
            # the position's own SL/TP: allowed on a netting account
            1: lambda ctx, bar: ctx.buy(
                "EURUSD",
                LOT,
                order_type=OrderType.LIMIT if limit else OrderType.MARKET,
                price=1.0990 if limit else None,
                stop_loss=SL,
                take_profit=TP,
            ),
        }
    )
    engine, journal = live_engine(venue, strategy, Journal(path, durable=True))
    entries = []
    for i in range(2):
        engine.run([minute_bar(i, 1.1)])
        settle_and_pump(engine, venue)
        entries.append(engine.last_order_id)
    assert len(venue.terminal.orders_get() or ()) == (1 if limit else 0)
    journal.close()
    venue.close()
    return venue.terminal, path, entries


def _restart(terminal: MT5Terminal) -> Mt5Harness:
    restarted = Mt5Harness.build("netting", venue=terminal)
    restarted.symbols = ("EURUSD",)
    return restarted.connect()


def _restored(restarted: Mt5Harness, journal: Journal) -> Engine:
    again, carried, plan = restarted_plan(restarted, journal, EMULATOR_T0 - 3600)
    again.restore_from_venue(carried, plan, EMULATOR_T0)
    for _ in range(3):
        settle_and_pump(again, restarted)
    return again


@pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge
@pytest.mark.parametrize("second_entry", ["limit-filled-while-down", "market-filled-before"])
def test_a_pyramided_entry_is_not_closed_at_restart(tmp_path: Path, second_entry: str) -> None:
    limit = second_entry == "limit-filled-while-down"
    terminal, path, entries = _pyramided(tmp_path, limit)
    if limit:
        terminal.set_price("EURUSD", 1.0985)  # the limit fills while the bot is down
    restarted = _restart(terminal)
    (position,) = terminal.positions_get() or ()
    assert (position.volume, position.sl, position.tp) == (0.2, SL, TP)  # fully protected
    second = Journal(path, durable=True)
    try:
        again = _restored(restarted, second)
        # Nothing was sold: the terminal still holds the whole 0.2 lot, under its SL/TP ...
        (position,) = terminal.positions_get() or ()
        assert (position.volume, position.sl, position.tp) == (0.2, SL, TP)
        assert [d.type for d in restarted.deals()] == [0, 0]  # two buys, no close
        # ... and the bot books all of it, no stop-refused exit.
        assert again.portfolio.position("EURUSD").quantity == 2 * LOT
        statuses = dict(second.order_statuses())
        assert "rejected" not in statuses.values(), statuses
        # Each entry's children work at the position's SL/TP, sized on what that entry
        # added (not the whole position each: its stop is counted once).
        working = sorted((o.client_order_id, o.quantity, o.price) for o in again.open_orders())
        assert working == sorted(
            (f"{entry}-{role}", LOT, price)
            for entry in entries
            for role, price in (("sl", SL), ("tp", TP))
        )
    finally:
        second.close()
        restarted.close()


def test_a_netted_entrys_stop_removed_by_hand_while_down_is_found_on_the_position(
    tmp_path: Path,
) -> None:
    """Both entries' stops are sent again (the position lost its SL while the bot was down):
    the first sets the position's SL, the second's is that SL, found in place — nothing is
    refused, nothing closed."""
    terminal, path, entries = _pyramided(tmp_path, limit=False)
    restarted = _restart(terminal)  # (the terminal answers a connected caller only)
    (position,) = terminal.positions_get() or ()
    removed = terminal.order_send(
        {
            "action": terminal.TRADE_ACTION_SLTP,
            "symbol": "EURUSD",
            "position": position.ticket,
            "sl": 0.0,
            "tp": position.tp,
        }
    )
    # removed by hand, before the restart's reconciliation
    assert removed is not None and removed.retcode == terminal.TRADE_RETCODE_DONE
    second = Journal(path, durable=True)
    try:
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        assert sorted(plan.resend) == sorted(f"{entry}-sl" for entry in entries)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        for _ in range(3):
            settle_and_pump(again, restarted)
        (position,) = terminal.positions_get() or ()
        assert (position.volume, position.sl, position.tp) == (0.2, SL, TP)
        assert [d.type for d in restarted.deals()] == [0, 0]  # two buys, no close
        assert again.portfolio.position("EURUSD").quantity == 2 * LOT
        statuses = dict(second.order_statuses())
        assert [statuses[f"{entry}-sl"] for entry in entries] == ["open", "open"], statuses
        reasons = dict(
            second.query("SELECT client_order_id, reason FROM order_status WHERE run_id = 'live-2'")
        )
        assert reasons[f"{entries[1]}-sl"].startswith("already position"), reasons
    finally:
        second.close()
        restarted.close()


@pytest.mark.parametrize(
    ("held", "want", "shared", "placing"),
    [
        (1.0950, 1.0950, True, "in place"),  # the position holds it: nothing to send
        (1.0950, 1.095004, False, "in place"),  # within half a point
        (0.0, 1.0950, True, "set"),  # no level held: setting it moves nobody's
        (1.0940, 1.0950, False, "set"),  # the entry's own position (hedging, one entry)
        (1.0940, 1.0950, True, "replaces"),  # would move the other entries' stop: refused
    ],
)
def test_how_a_child_goes_on_a_position(
    held: float, want: float, shared: bool, placing: str
) -> None:
    assert _child_on_position(held, want, 0.000005, shared) == placing
