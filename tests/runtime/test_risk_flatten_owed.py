"""A risk plugin's flatten whose close the venue refused stays owed until the position is flat.

A refusal that a later try may pass (the venue down or throttling, the market shut, a price
band, an order expired for want of liquidity) sends the close again at the symbol's next bar,
never while a close of it is on its way; a refusal no retry changes (a quantity below the
venue's minimum, the symbol not tradable, credentials refused) is said once, as an error, and
left to a person. Meanwhile the position keeps its stop-loss and take-profit. Each step is
journaled (``close_owed``: what a restart reads, ``Journal.closes_owed``).

The venue is the paper broker with the plugin's closes in the test's hands (``HeldCloses``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.runtime.held_closes import (
    journaled_events,
    last_status,
    owed_closes,
    through_the_stop,
    working_at,
)
from tests.runtime.helpers import bar
from tests.runtime.test_risk_flatten_keeps_stops import (
    ACTION_IDS,
    BARS,
    PLUGIN,
    SYMBOL,
    TAG,
    Breaker,
    _decisions,
    _flatten_at_next_bar,
    _long_with_bracket,
)
from tradefleet_runtime.capabilities import ActionKind
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.model import OrderIntent, ReasonCode, RiskDecision

# Refusals a later try may pass, and refusals no retry changes (the symbol not tradable is
# VENUE_REJECTED at the ccxt and MT5 brokers: "trade disabled", a bad symbol).
PASSING = (ReasonCode.VENUE_UNAVAILABLE, ReasonCode.RATE_LIMITED, ReasonCode.MARKET_CLOSED)
LASTING = (
    ReasonCode.BELOW_MIN_QUANTITY,
    ReasonCode.VENUE_REJECTED,
    ReasonCode.AUTHENTICATION,
    ReasonCode.INVALID_QUANTITY,
)


def _more_bars(engine: Engine, first: int, count: int) -> None:
    """Bars trading flat at 100 (neither the stop-loss at 90 nor the take-profit at 110)."""
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in range(first, first + count)])


@pytest.mark.parametrize("code", PASSING)
def test_a_close_refused_for_a_passing_reason_is_sent_again_and_the_position_ends_flat(
    tmp_path: Path, code: ReasonCode
) -> None:
    """The reproduction: refused once, the plugin's close was never sent again; the position
    stayed open (with its stop) until a person sent ``stop --flatten``."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.refuse = code
    _flatten_at_next_bar(engine, breaker)
    [refused] = venue.closes_sent
    [(message, failed)] = journaled_events(engine, "flatten_failed")
    assert "at the next bar" in message and failed["retried"] is True
    assert owed_closes(engine) == {SYMBOL: (TAG, None)}

    venue.refuse = None  # the venue is back
    engine.run(BARS[3:4])  # the symbol's next bar: the close goes again
    [_, again] = venue.closes_sent
    assert again != refused and again.startswith(ACTION_IDS)
    assert _decisions(engine, again) == [(PLUGIN, "approve")]  # the plugin's action still
    assert sorted(working_at(venue)) == sorted([f"{entry}-sl", f"{entry}-tp", again])
    [(step, _)] = journaled_events(engine, "risk_flatten")
    assert "again" in step and SYMBOL in step and code.value in step

    engine.run(BARS[4:5])  # it fills at the open
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    assert not working_at(venue) and not engine.open_orders()
    assert last_status(engine, again) == "filled"
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == TAG
    assert owed_closes(engine) == {}
    _more_bars(engine, 5, 2)
    assert len(venue.closes_sent) == 2  # flat: nothing more is sent


def test_a_close_is_tried_at_every_bar_until_the_venue_takes_it(tmp_path: Path) -> None:
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)
    _more_bars(engine, 3, 3)
    assert len(venue.closes_sent) == 4  # the first, and one a bar
    assert len(set(venue.closes_sent)) == 4  # each its own id
    assert len(journaled_events(engine, "flatten_failed")) == 4
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]  # guarded throughout
    venue.refuse = None
    _more_bars(engine, 6, 2)
    assert engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()
    assert len(venue.closes_sent) == 5


def test_no_second_close_while_the_retry_is_on_its_way(tmp_path: Path) -> None:
    """The retry's answer is slow: bars pass, and no close races it (both could fill)."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)
    venue.refuse = None
    venue.hold = True
    _more_bars(engine, 3, 3)
    [_, again] = venue.closes_sent
    assert again in {o.client_order_id for o in engine.open_orders()}
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]
    venue.release()
    engine.pump()
    _more_bars(engine, 6, 1)
    assert engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()
    assert len(venue.closes_sent) == 2


def test_a_stop_that_fills_before_the_retry_leaves_nothing_owed_and_no_short(
    tmp_path: Path,
) -> None:
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)
    engine.run([through_the_stop(3)])  # the stop-loss fills at 90 before the close goes again
    _more_bars(engine, 4, 2)
    assert len(venue.closes_sent) == 1
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == "stop_loss"
    assert owed_closes(engine) == {}
    *_, (message, done) = journaled_events(engine, "close_owed")
    assert done["owed"] is False and "flat" in message
    assert last_status(engine, f"{entry}-tp") == "cancelled"


@pytest.mark.parametrize("code", LASTING)
def test_a_refusal_no_retry_changes_is_said_once_and_not_sent_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, code: ReasonCode
) -> None:
    """Retried every bar, such a close would be refused every bar (and journaled each time):
    the bot says so once, as an error naming the position and the reason, keeps the stop, and
    leaves the position to a person — also when the plugin asks to flatten again."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.refuse = code
    with caplog.at_level(logging.ERROR, "tradefleet.engine"):
        _flatten_at_next_bar(engine, breaker)
        _more_bars(engine, 3, 3)
        breaker.ask(ActionKind.FLATTEN)  # the plugin asks again: the same position, the same no
        _more_bars(engine, 6, 2)
    [close] = venue.closes_sent
    [(failed, data)] = journaled_events(engine, "flatten_failed")
    assert close in failed and data["retried"] is False and data["code"] == code.value
    assert "a person must close" in failed and "at the next bar" not in failed
    [(_, owed_at_first), (said, owed)] = journaled_events(engine, "close_owed")
    assert owed_at_first["refused"] is None  # owed from the first close: before it left
    assert SYMBOL in said and "1 " in said and code.value in said and PLUGIN in said
    assert owed["owed"] is True and owed["refused"] == code.value
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and code.value in errors[0].getMessage()
    assert owed_closes(engine) == {SYMBOL: (TAG, code.value)}
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]  # the stop still guards
    assert engine.position(SYMBOL).quantity == 1.0

    engine.run([through_the_stop(8)])  # the stop closes it: the debt ends
    assert engine.position(SYMBOL).quantity == 0.0 and owed_closes(engine) == {}


def test_a_person_s_emergency_flatten_takes_an_owed_close_over(tmp_path: Path) -> None:
    """The emergency stop's flatten closes the position itself (its own record, which a
    restart reads): the plugin's debt ends there, and the plugin's retry never races it."""
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)
    engine.halt("alice", "incident", flatten=True)
    assert owed_closes(engine) == {}
    *_, (message, done) = journaled_events(engine, "close_owed")
    assert done["owed"] is False and "emergency" in message
    _more_bars(engine, 3, 2)
    assert len(venue.closes_sent) == 1  # the plugin's close is not sent again
    assert engine.position(SYMBOL).quantity == 0.0  # the emergency's close filled


@pytest.mark.parametrize(("veto", "code"), [("below_minimum", "below_min_quantity"), ("x", "")])
def test_a_close_the_risk_chain_refuses_is_said_once_and_not_sent_each_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, veto: str, code: str
) -> None:
    """Refused before it left (the sizing's minimum, a plugin's veto with its own code): the
    same decision would refuse it at every bar. Said once, left to a person."""

    def refuse_the_close(self: Breaker, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only and intent.tag == TAG:
            return RiskDecision.veto("not this close", veto)
        return RiskDecision.approve()

    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    monkeypatch.setattr(Breaker, "check", refuse_the_close)
    _flatten_at_next_bar(engine, breaker)
    _more_bars(engine, 3, 3)
    assert venue.closes_sent == [] and engine.position(SYMBOL).quantity == 1.0
    assert engine.stats.risk_decisions[(PLUGIN, "veto")] == 1  # decided once, not every bar
    [(failed, data)] = journaled_events(engine, "flatten_failed")
    assert "refused before it was sent" in failed and data["code"] == code
    assert data["retried"] is False
    assert owed_closes(engine) == {SYMBOL: (TAG, code)}
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]
