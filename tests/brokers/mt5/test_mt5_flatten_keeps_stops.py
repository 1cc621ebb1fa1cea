"""On MT5 an emergency flatten keeps a position's SL/TP until its close has filled.

SL/TP are attributes of the terminal's position: the engine's bracket children. The flatten
closes the position with a market deal (netting: against the bot's volume, reduce-only; hedging:
by the position's ticket) and leaves its SL/TP as they are; the terminal drops them with the
position. A close the terminal never executes (its trade server's link lost) leaves the
position with its SL/TP.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, live_engine, minute_bar, settle_and_pump
from tests.runtime.helpers import Action, Scripted
from tests.venues.mt5.constants import TRADE_ACTION_DEAL
from tests.venues.mt5.faults import UnknownOutcome
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal

SL, TP = 1.0950, 1.1100


def _bracketed(margin_mode: str) -> tuple[Mt5Harness, Engine, Journal, str]:
    """A live bot holding 10,000 EURUSD with its SL/TP set on the terminal's position."""
    venue = Mt5Harness.build(margin_mode, transport="direct")
    venue.symbols = ("EURUSD",)
    venue.connect()
    buy: Action = lambda ctx, bar: ctx.buy(  # noqa: E731
        "EURUSD", 10_000.0, stop_loss=SL, take_profit=TP
    )
    engine, journal = live_engine(venue, Scripted({0: buy}))
    engine.run([minute_bar(0, 1.1)])
    [entry] = engine.open_orders()
    for _ in range(3):
        settle_and_pump(engine, venue)
    [position] = venue.terminal.positions_get() or ()
    assert (position.sl, position.tp) == (SL, TP)
    return venue, engine, journal, entry.client_order_id


def _events(journal: Journal, kind: str) -> list[tuple[str, dict[str, object]]]:
    rows = journal.query("SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind)
    return [(str(message), json.loads(data) if data else {}) for message, data in rows]


@pytest.mark.parametrize("margin_mode", ["netting", "hedging"])
def test_the_close_fills_and_the_positions_sl_tp_end_with_it(margin_mode: str) -> None:
    venue, engine, journal, entry = _bracketed(margin_mode)
    try:
        assert engine.halt("alice", "incident", flatten=True)
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert engine.position("EURUSD").quantity == 0.0 and not engine.open_orders()
        assert venue.terminal.positions_get() == () and venue.terminal.orders_get() == ()
        statuses = dict(journal.order_statuses())
        assert (statuses[f"{entry}-sl"], statuses[f"{entry}-tp"]) == ("cancelled", "cancelled")
        assert journal.flatten_owed(engine.config.bot_name) is None
        assert _events(journal, "flatten_failed") == []
    finally:
        venue.close()


def _deals_lost(venue: Mt5Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trade server's link drops for every market deal (the request never executed;
    SL/TP changes still go through): the terminal answers 10031, its history shows nothing."""
    terminal = venue.terminal
    send = terminal.order_send

    def losing(request: dict[str, Any]) -> Any:
        if request.get("action") == TRADE_ACTION_DEAL:
            terminal.faults.script("order_send", [UnknownOutcome(10031, executed=False)])
        return send(request)

    monkeypatch.setattr(terminal, "order_send", losing)


@pytest.mark.parametrize("margin_mode", ["netting", "hedging"])
def test_a_close_the_terminal_never_executes_leaves_the_sl_tp_on_the_position(
    margin_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the SL/TP were cleared first (they went through) and the close was lost: the
    position stayed open at the terminal with SL 0 and TP 0."""
    venue, engine, journal, entry = _bracketed(margin_mode)
    try:
        with monkeypatch.context() as patch:
            _deals_lost(venue, patch)
            assert engine.halt("alice", "incident", flatten=True)
            for _ in range(4):
                settle_and_pump(engine, venue)
        [position] = venue.terminal.positions_get() or ()
        assert (position.sl, position.tp) == (SL, TP)
        assert engine.position("EURUSD").quantity == 10_000.0
        assert {o.client_order_id for o in engine.open_orders()} == {f"{entry}-sl", f"{entry}-tp"}
        [(message, data)] = _events(journal, "flatten_failed")
        assert data["status"] == "rejected" and f"{entry}-sl" in message
        assert journal.flatten_owed(engine.config.bot_name) == ("alice", "incident")

        # The link is back: another emergency stop with flatten closes it, SL/TP with it.
        engine.halt("alice", "incident", flatten=True)
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert venue.terminal.positions_get() == () and not engine.open_orders()
        assert journal.flatten_owed(engine.config.bot_name) is None
    finally:
        venue.close()
