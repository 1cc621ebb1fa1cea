"""A close made by hand in the terminal is said "booked" once, when it is booked: by the
running bot when it polls it, or by start-up reconciliation when the bot was down. A restart
lists the deal again to reconciliation (``fill_reports``), which books only what its journal
lacks: the broker does not say it books it (the engine says each one it books)."""

from __future__ import annotations

import logging
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
from tests.venues.mt5 import MT5Terminal
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal

SL = 1.0950
BOOKED = "booked as a change made outside the bot"  # the broker's words
ENGINE_BOOKED = "position reduced outside the bot"  # the engine's, as it books one


@pytest.fixture(params=["netting", "hedging"])
def margin(request: pytest.FixtureRequest) -> Iterator[str]:
    mode: str = request.param
    yield mode


def _venue(mode: str, term: MT5Terminal | None = None) -> Mt5Harness:
    venue = Mt5Harness.build(mode, venue=term, transport="direct")
    venue.symbols = ("EURUSD",)
    return venue.connect()


def _pump(engine: Engine, venue: Mt5Harness, times: int = 3) -> None:
    for _ in range(times):
        settle_and_pump(engine, venue)


def _close_by_hand(term: MT5Terminal, margin: str, volume: float) -> None:
    """A person sells ``volume`` lots of the bot's position in the terminal (magic 0)."""
    (position,) = term.positions_get() or ()
    request: dict[str, Any] = {
        "action": term.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": volume,
        "type": term.ORDER_TYPE_SELL,
        "type_filling": term.ORDER_FILLING_IOC,
        "magic": 0,
    }
    if margin == "hedging":
        request["position"] = position.ticket
    answer: Any = term.order_send(request)
    assert answer.retcode == term.TRADE_RETCODE_DONE


def _bought_half_a_lot(margin: str, path: Path) -> tuple[Any, Any, Journal]:
    """A live bot on a fresh terminal that bought 0.5 lot of EURUSD with its stop, settled:
    (its venue, engine, journal)."""
    venue = _venue(margin)
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", 50_000.0, stop_loss=SL)})
    engine, journal = live_engine(venue, strategy, Journal(path, durable=True))
    engine.run([minute_bar(0, 1.1)])
    _pump(engine, venue)
    return venue, engine, journal


def _said(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


def test_a_restart_does_not_say_it_books_again_a_close_by_hand_already_booked(
    margin: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A person closes 0.2 lot of the bot's 0.5 by hand; the running bot books it (one outside
    fill, warned once). A later restart's ``fill_reports`` lists the deal again and
    reconciliation books nothing: nothing may say it is booked again."""
    path = tmp_path / "journal.sqlite"
    venue, engine, journal = _bought_half_a_lot(margin, path)
    term = venue.terminal
    _close_by_hand(term, margin, 0.2)
    _pump(engine, venue)
    assert engine.portfolio.position("EURUSD").quantity == 30_000.0  # booked by the running bot
    journal.close()
    venue.close()

    restarted = _venue(margin, term)
    second = Journal(path, durable=True)
    try:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            _again, _carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        assert plan.missed_fills == ()  # nothing to book again
        said = _said(caplog, BOOKED)
        assert said == [], f"the restart says it books again what the journal holds: {said}"
    finally:
        second.close()
        restarted.close()


def test_a_close_by_hand_while_the_bot_was_down_is_said_booked_once_at_restart(
    margin: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same close made while the bot was down is booked by the restart, and said so."""
    path = tmp_path / "journal.sqlite"
    venue, _engine, journal = _bought_half_a_lot(margin, path)
    term = venue.terminal
    journal.close()  # the bot is down (its broker object polls no more: not settled again)
    _close_by_hand(term, margin, 0.2)
    venue.close()

    restarted = _venue(margin, term)
    second = Journal(path, durable=True)
    try:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
            assert len(plan.missed_fills) == 1
            again.restore_from_venue(carried, plan, EMULATOR_T0)
        assert again.portfolio.position("EURUSD").quantity == 30_000.0
        assert len(_said(caplog, ENGINE_BOOKED)) == 1, caplog.text
        assert _said(caplog, BOOKED) == []  # the broker only lists it
    finally:
        second.close()
        restarted.close()
