"""An emergency flatten never leaves a position without its stop.

The flatten cancels the entries at once, but a position's stop-loss and take-profit stay
working until the flatten's close of that position has filled; then they are cancelled. A
close the venue refuses, holds (an outage, a rate limit), or that a dying process never sees
filled, leaves the position guarded as before the stop, and the bot says so.

The venue is the paper broker, with the flatten's closes in the test's hands
(``HeldCloses``): refused, or held unanswered until released.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime import held_closes
from tests.runtime.held_closes import (
    bracket_entry,
    buy_with_bracket,
    journaled_events,
    last_status,
    rest_a_limit_buy,
    resting_limit,
    through_the_stop,
    working_at,
)
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import ReasonCode
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
FLATTEN = "emergency-flatten"
BARS = flat_bars([100.0] * 4)


class HeldCloses(held_closes.HeldCloses):
    close_tag = FLATTEN


def _engine(
    path: Path, actions: dict[int, Action], broker: held_closes.HeldCloses | None = None
) -> Engine:
    broker = broker if broker is not None else HeldCloses()
    broker.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(path)
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    return Engine(config, Scripted(actions=actions), broker, journal, venue=broker)


def _long_with_bracket(tmp_path: Path) -> tuple[Engine, HeldCloses, str]:
    """A bot holding 1 TEST bought at 100, its stop-loss at 90 and take-profit at 110 working
    at the venue, and a limit buy at 80 resting (an entry): (engine, venue, entry id)."""
    engine = _engine(tmp_path / "journal.sqlite", {0: buy_with_bracket, 1: rest_a_limit_buy})
    engine.run(BARS[:2])
    broker = engine.broker
    assert isinstance(broker, HeldCloses)
    assert engine.position(SYMBOL).quantity == 1.0
    entry = bracket_entry(engine)
    assert sorted(working_at(broker)) == sorted(
        [f"{entry}-sl", f"{entry}-tp", resting_limit(engine)]
    )
    return engine, broker, entry


def _owed(engine: Engine) -> tuple[str, str] | None:
    return engine.journal.flatten_owed(engine.config.bot_name)  # type: ignore[attr-defined, no-any-return]


def test_a_refused_close_leaves_the_position_its_stop_and_the_bot_says_so(
    tmp_path: Path,
) -> None:
    """The reproduction: the old flatten cancelled the stop-loss and take-profit before its
    close, the venue refused the close, and the position was left open with no stop at all —
    a fall through 90 afterwards lost without limit."""
    engine, broker, entry = _long_with_bracket(tmp_path)
    limit = resting_limit(engine)
    broker.refuse = ReasonCode.VENUE_UNAVAILABLE
    assert engine.halt("alice", "incident", flatten=True)

    assert engine.position(SYMBOL).quantity == 1.0
    assert sorted(working_at(broker)) == [f"{entry}-sl", f"{entry}-tp"]  # the entry is gone
    assert last_status(engine, limit) == "cancelled"
    [(message, data)] = journaled_events(engine, "flatten_failed")
    [close] = broker.closes_sent
    assert close in message and "venue is in maintenance" in message
    assert f"{entry}-sl" in message and "the bot still holds 1 TEST" in message
    assert data["guards"] == [f"{entry}-sl", f"{entry}-tp"] and data["symbol"] == SYMBOL
    [(_, flattened)] = journaled_events(engine, "flattened")
    assert flattened["left"] == [SYMBOL] and flattened["closes"] == []
    assert _owed(engine) == ("alice", "incident")  # a restart sends the close again

    engine.run([through_the_stop(2)])  # the market falls: the stop the bot kept acts
    assert engine.position(SYMBOL).quantity == 0.0 and not working_at(broker)
    [trade] = engine.portfolio.trades
    assert (trade.exit_reason, trade.exit_price) == ("stop_loss", 90.0)
    # Flat by its stop: the flatten owes nothing more (a restart would send nothing).
    [_, (message, done)] = journaled_events(engine, "flattened")
    assert f"{entry}-sl" in message and done["left"] == [] and done["closes"] == []
    assert _owed(engine) is None


def test_the_stop_works_until_the_close_fills_and_then_no_child_is_left(tmp_path: Path) -> None:
    engine, broker, entry = _long_with_bracket(tmp_path)
    broker.hold = True  # the venue is slow: the close waits unanswered
    assert engine.halt("alice", "incident", flatten=True)
    [close] = broker.closes_sent
    assert sorted(working_at(broker)) == [f"{entry}-sl", f"{entry}-tp"]
    assert {o.client_order_id for o in engine.open_orders()} == {
        close,
        f"{entry}-sl",
        f"{entry}-tp",
    }
    [(_, flattened)] = journaled_events(engine, "flattened")
    assert flattened["closes"] == [close] and flattened["left"] == []

    engine.run(BARS[2:3])  # a bar passes: the close still waits, the stop still guards
    assert sorted(working_at(broker)) == [f"{entry}-sl", f"{entry}-tp"]
    broker.release()
    engine.pump()
    engine.run(BARS[3:4])  # the close fills at the open

    held_closes.assert_closed_by(engine, broker, SYMBOL, entry, close, FLATTEN)
    assert _owed(engine) is None and journaled_events(engine, "flatten_failed") == []


def test_a_stop_that_fills_while_the_close_is_held_leaves_the_account_flat(
    tmp_path: Path,
) -> None:
    """The stop-loss fills first, then the venue takes the close: reduce-only, it closes
    nothing (and the bot cancels it as soon as its position is flat). Never a short."""
    engine, broker, entry = _long_with_bracket(tmp_path)
    broker.hold = True
    engine.halt("alice", "incident", flatten=True)
    [close] = broker.closes_sent
    engine.run([through_the_stop(2)])
    assert engine.position(SYMBOL).quantity == 0.0
    [_, (message, data)] = journaled_events(engine, "flattened")
    assert f"{entry}-sl" in message and close in message
    assert data["closes"] == [] and data["left"] == []
    assert _owed(engine) is None  # the stop closed it: nothing is owed

    broker.release()
    engine.pump()
    engine.run(BARS[3:4])
    assert engine.position(SYMBOL).quantity == 0.0 and not broker.positions()
    assert not working_at(broker) and not engine.open_orders()
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == "stop_loss"


def test_a_close_the_venue_lets_past_flat_is_closed_again(tmp_path: Path) -> None:
    """A venue that checks reduce-only when the order is sent (MT5 netting reads the position
    then deals): the stop-loss fills, the close goes through all the same and opens a short.
    The bot closes what went past flat at once, as a further flatten close."""
    engine, broker, _entry_id = _long_with_bracket(tmp_path)
    broker.hold = True
    broker.ignore_reduce_only = True
    engine.halt("alice", "incident", flatten=True)
    [close] = broker.closes_sent
    engine.run([through_the_stop(2)])
    assert engine.position(SYMBOL).quantity == 0.0
    # The bot's cancel of its close never reached the venue: it had the order already.
    broker.release()
    engine.pump()
    engine.run(BARS[3:4])  # the close fills: short 1
    [_, _, (message, late)] = journaled_events(engine, "flattened")
    assert close in message and "past flat" in message
    closes = late["closes"]
    assert isinstance(closes, list)
    [again] = closes
    assert late["late_fill"] == close and again != close
    assert engine.position(SYMBOL).quantity == -1.0
    engine.run([bar(4, 100.0, 100.0, 100.0, 100.0)])  # the second close fills
    assert engine.position(SYMBOL).quantity == 0.0 and not broker.positions()
    assert not engine.open_orders() and _owed(engine) is None


def test_a_second_flatten_while_the_close_is_held_sends_no_second_close(tmp_path: Path) -> None:
    engine, broker, entry = _long_with_bracket(tmp_path)
    broker.hold = True
    engine.halt("alice", "incident", flatten=True)
    engine.halt("bob", "fleet stop", flatten=True)
    [close] = broker.closes_sent
    assert sorted(working_at(broker)) == [f"{entry}-sl", f"{entry}-tp"]
    [_, (_, second)] = journaled_events(engine, "flattened")
    assert second["closes"] == [close]


def test_a_flat_account_has_its_orphan_children_cancelled_by_the_flatten(tmp_path: Path) -> None:
    """Children whose position is gone protect nothing: the flatten cancels them with the
    entries (nothing keeps them)."""
    engine, broker, _entry_id = _long_with_bracket(tmp_path)
    engine.run([through_the_stop(2)])  # stopped out before the emergency stop
    engine.run(BARS[3:4])
    engine.halt("alice", "incident", flatten=True)
    assert not working_at(broker) and not engine.open_orders()
    [(message, _)] = journaled_events(engine, "flattened")
    assert "nothing was left to close" in message


class SpotVenue(held_closes.SpotVenue):
    close_tag = FLATTEN


def test_on_a_spot_account_the_close_goes_once_the_venue_released_the_coin(
    tmp_path: Path,
) -> None:
    """The stop-loss holds the coin the close would sell: the venue refuses the close. The
    bot cancels the stop-loss and take-profit, and sends the close again only once the venue
    has confirmed their cancels (sent before, it would be refused again)."""
    venue = SpotVenue()
    engine = _engine(tmp_path / "journal.sqlite", {0: buy_with_bracket}, venue)
    engine.run(BARS[:2])
    entry = bracket_entry(engine)
    engine.halt("alice", "incident", flatten=True)
    [refused] = venue.closes_sent
    [(message, data)] = journaled_events(engine, "flatten_exits_cancelled")
    assert refused in message and "insufficient balance" in message
    assert data["guards"] == [f"{entry}-sl", f"{entry}-tp"]
    assert sorted(venue.asked) == [f"{entry}-sl", f"{entry}-tp"]
    [(_, flattened)] = journaled_events(engine, "flattened")
    assert flattened["left"] == [SYMBOL]  # owed until a close is on its way
    assert journaled_events(engine, "flatten_failed") == []

    engine.pump()
    assert venue.closes_sent == [refused]  # the cancels are not answered yet: no close
    venue.answer_cancels()
    engine.pump()
    [_, again] = venue.closes_sent
    [_, (message, later)] = journaled_events(engine, "flattened")
    assert again in message and later["closes"] == [again] and later["left"] == []
    engine.run(BARS[2:3])
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    assert not engine.open_orders() and _owed(engine) is None


def test_a_resume_forgets_a_close_waiting_for_its_guards(tmp_path: Path) -> None:
    venue = SpotVenue()
    engine = _engine(tmp_path / "journal.sqlite", {0: buy_with_bracket}, venue)
    engine.run(BARS[:2])
    engine.halt("alice", "incident", flatten=True)
    engine.resume("alice", "all clear")
    venue.answer_cancels()
    engine.pump()
    assert len(venue.closes_sent) == 1  # the refused one: the strategy trades again
    assert engine.position(SYMBOL).quantity == 1.0


@pytest.mark.parametrize("code", [ReasonCode.INSUFFICIENT_FUNDS, ReasonCode.MARKET_CLOSED])
def test_a_close_refused_after_its_guards_are_gone_is_said_not_retried(
    tmp_path: Path, code: ReasonCode
) -> None:
    """Refused with no guard working (none was set): said once, never sent in a loop."""
    broker = HeldCloses(refuse=code)
    engine = _engine(tmp_path / "journal.sqlite", {0: lambda ctx, _b: ctx.buy(SYMBOL, 1.0)}, broker)
    engine.run(BARS[:2])
    engine.halt("alice", "incident", flatten=True)
    assert len(broker.closes_sent) == 1
    [(message, data)] = journaled_events(engine, "flatten_failed")
    assert "no stop-loss protects it" in message and data["guards"] == []
    assert _owed(engine) == ("alice", "incident")
