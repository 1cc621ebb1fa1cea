"""An entry whose cancel loses the race with its fill does not outlive an emergency flatten.

The flatten cancels what is in the order book and closes what the account holds. A market
entry already at the venue (its cancel refused, or lost on the way) fills afterwards: the bot,
halted to be flat, would hold it, with the stop-loss and take-profit its fill placed. The
engine closes what such a fill opened at market, reduce-only, cancels its bracket, and
journals it as a further ``flattened`` event, so the flatten stays owed until that close fills.

The paper broker stands in for the venue; its cancel of the entry is lost (``_lose_cancel``):
the entry keeps working there, and fills at the next bar's open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.brokers.mt5.harness import Mt5Harness, live_engine, minute_bar, settle_and_pump
from tests.runtime.held_closes import journaled_events, last_status
from tests.runtime.helpers import Action, Scripted, flat_bars, paper_engine
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderUpdate, Side

SYMBOL = "TEST"
BARS = flat_bars([100.0] * 8)


def _buy_with_bracket(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=110.0)


def _buy_two(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(SYMBOL, 2.0)


def _engine(tmp_path: Path, actions: dict[int, Action]) -> Engine:
    journal = Journal(tmp_path / "journal.sqlite")
    return paper_engine(journal, "run-1", Scripted(actions=actions))


def _lose_cancel(engine: Engine, monkeypatch: pytest.MonkeyPatch, order_id: str) -> None:
    """The venue never hears the cancel of ``order_id`` (it had the entry already): it keeps
    working there and fills."""
    cancel = engine.broker.cancel

    def lossy(client_order_id: str) -> OrderUpdate | None:
        return None if client_order_id == order_id else cancel(client_order_id)

    monkeypatch.setattr(engine.broker, "cancel", lossy)


def _in_flight_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, str]:
    """A bot whose bracketed market entry was sent on the last bar (it fills at the next
    bar's open), whose cancel the venue will not hear."""
    engine = _engine(tmp_path, {1: _buy_with_bracket})
    engine.run(BARS[:2])
    [entry] = engine.open_orders()
    assert engine.position(SYMBOL).quantity == 0.0
    _lose_cancel(engine, monkeypatch, entry.client_order_id)
    return engine, entry.client_order_id


def _halt_with_flatten(engine: Engine) -> None:
    assert engine.halt("alice", "incident", flatten=True)


def _flatten_after_a_halt(engine: Engine) -> None:
    """A halt first, then its flatten: a flatten asked of a halted bot, or one a restart owes
    (the session calls ``Engine.flatten``)."""
    assert engine.halt("alice", "incident")
    engine.flatten("alice", "incident")


@pytest.mark.parametrize("stop", [_halt_with_flatten, _flatten_after_a_halt])
def test_an_entry_that_fills_after_the_flattens_cancel_is_closed_at_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: Callable[[Engine], None]
) -> None:
    engine, entry = _in_flight_entry(tmp_path, monkeypatch)
    stop(engine)
    [(message, first)] = journaled_events(engine, "flattened")
    assert "nothing was left to close" in message and first["closes"] == []

    engine.run(BARS[2:3])  # the entry fills at the venue; the bot answers at once
    late = [o for o in engine.open_orders() if o.client_order_id != entry]
    [close] = late  # the close alone: the entry's stop-loss and take-profit are cancelled
    assert close.reduce_only and close.tag == "emergency-flatten"
    assert (close.side, close.quantity) == (Side.SELL, 1.0)
    assert (last_status(engine, f"{entry}-sl"), last_status(engine, f"{entry}-tp")) == (
        "cancelled",
        "cancelled",
    )
    [_, (message, data)] = journaled_events(engine, "flattened")
    assert entry in message and "after the flatten's cancel" in message
    assert close.client_order_id in message
    assert data["closes"] == [close.client_order_id] and data["left"] == []
    assert data["late_fill"] == entry
    # The process dying now, before the close fills, leaves the flatten owed at the next start.
    assert engine.journal.flatten_owed(engine.config.bot_name) == ("alice", "incident")  # type: ignore[attr-defined]

    engine.run(BARS[3:5])
    assert engine.position(SYMBOL).quantity == 0.0
    assert not engine.open_orders() and not engine.broker.positions()
    assert engine.halted
    assert engine.journal.flatten_owed(engine.config.bot_name) is None  # type: ignore[attr-defined]
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == "emergency-flatten"


def test_the_closes_still_on_their_way_stay_named_with_the_late_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A position held before the stop, its close still on its way when the late entry fills:
    the newest ``flattened`` event (the one a restart reads) names both closes."""
    engine = _engine(tmp_path, {0: _buy_two, 1: _buy_with_bracket})
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 2.0
    [entry] = [o.client_order_id for o in engine.open_orders() if not o.reduce_only]
    _lose_cancel(engine, monkeypatch, entry)
    _halt_with_flatten(engine)
    [(_, first)] = journaled_events(engine, "flattened")
    closes = first["closes"]
    assert isinstance(closes, list)
    [first_close] = closes

    # At the next open the venue fills the entry first (it is older), the first close after.
    engine.run(BARS[2:3])
    late = engine.last_order_id
    [_, (_, data)] = journaled_events(engine, "flattened")
    assert data["late_fill"] == entry
    assert data["closes"] == [first_close, late] and data["left"] == []
    engine.run(BARS[3:5])
    assert engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()
    assert engine.journal.flatten_owed(engine.config.bot_name) is None  # type: ignore[attr-defined]


def test_an_entry_that_fills_after_a_halt_without_flatten_keeps_its_position_and_bracket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A halt alone keeps positions: an entry whose cancel lost the race is held, protected by
    its stop-loss and take-profit, as any position the halt found (unchanged behaviour)."""
    engine, entry = _in_flight_entry(tmp_path, monkeypatch)
    assert engine.halt("alice", "incident")
    engine.run(BARS[2:4])
    assert engine.position(SYMBOL).quantity == 1.0
    assert sorted(o.client_order_id for o in engine.open_orders()) == [
        f"{entry}-sl",
        f"{entry}-tp",
    ]
    assert journaled_events(engine, "flattened") == []


def test_after_a_resume_an_entry_that_fills_is_the_strategys_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flatten is the halt's: once a person resumes, a fill is a trade, not a leftover."""
    engine, entry = _in_flight_entry(tmp_path, monkeypatch)
    _halt_with_flatten(engine)
    engine.resume("alice", "all clear")
    engine.run(BARS[2:4])
    assert engine.position(SYMBOL).quantity == 1.0
    assert len(journaled_events(engine, "flattened")) == 1
    assert {o.client_order_id for o in engine.open_orders()} == {f"{entry}-sl", f"{entry}-tp"}


@pytest.mark.parametrize("margin_mode", ["netting", "hedging"])
def test_on_mt5_an_entry_the_terminal_fills_after_the_flatten_is_closed(margin_mode: str) -> None:
    """The MT5 broker's path: the market entry is on its way to the terminal (it cannot be
    cancelled) when the stop comes; its fill, heard afterwards, is closed, and the SL/TP the
    terminal set on its position are cleared."""
    venue = Mt5Harness.build(margin_mode, transport="direct")
    venue.symbols = ("EURUSD",)
    venue.connect()
    try:
        buy: Action = lambda ctx, bar: ctx.buy(  # noqa: E731
            "EURUSD", 10_000.0, stop_loss=1.0950, take_profit=1.1100
        )
        engine, journal = live_engine(venue, Scripted({0: buy}))
        engine.run([minute_bar(0, 1.1)])
        [entry] = engine.open_orders()
        _halt_with_flatten(engine)
        for _ in range(3):  # the entry's ack and fill, then the close's
            settle_and_pump(engine, venue)
        assert engine.position("EURUSD").quantity == 0.0 and not engine.open_orders()
        assert venue.terminal.positions_get() == () and venue.terminal.orders_get() == ()
        statuses = dict(journal.order_statuses())
        parent = entry.client_order_id
        assert (statuses[f"{parent}-sl"], statuses[f"{parent}-tp"]) == ("cancelled", "cancelled")
        assert journal.flatten_owed(venue.bot) is None
    finally:
        venue.close()
