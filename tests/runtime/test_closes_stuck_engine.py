"""``Engine.closes_stuck``: the positions a risk plugin's (or the stop policy's) flatten could not
close and will not send again, which a person must close.

What the status, the ``tradefleet_closes_stuck`` gauge and its alert read: set by a refusal no
retry changes, never by one a retry may pass; gone once the position is flat or another one (a
refused close of 1 says nothing of a position of 2); set again by a restart that finds the
journal's ``close_owed`` refusal and the same position.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.held_closes import through_the_stop
from tests.runtime.test_risk_flatten_keeps_stops import (
    BARS,
    SYMBOL,
    HeldCloses,
    _engine,
    _flatten_at_next_bar,
    _long_with_bracket,
    buy_with_bracket,
    rest_a_limit_buy,
)
from tests.runtime.test_risk_flatten_owed import LASTING, PASSING, _more_bars
from tests.runtime.test_risk_flatten_owed_restart import SYMBOL as RESTART_SYMBOL
from tests.runtime.test_risk_flatten_owed_restart import (
    Bot,
    BuyOnce,
    Closes,
    _bars,
    _refused_flatten,
    _venue_answers,  # noqa: F401  (autouse: the shared venue's answers, reset per test)
)
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar, ReasonCode


@pytest.mark.parametrize("code", LASTING)
def test_a_refusal_no_retry_changes_shows_the_position_as_stuck_until_it_is_flat(
    tmp_path: Path, code: ReasonCode
) -> None:
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    assert engine.closes_stuck() == {}  # holding, nothing asked: nothing stuck
    venue.refuse = code
    _flatten_at_next_bar(engine, breaker)
    assert engine.closes_stuck() == {SYMBOL: (code.value, 1.0)}
    _more_bars(engine, 3, 2)
    assert engine.closes_stuck() == {SYMBOL: (code.value, 1.0)}  # said once, kept while held

    engine.run([through_the_stop(5)])  # its stop-loss closes it
    assert engine.position(SYMBOL).quantity == 0.0
    assert engine.closes_stuck() == {}


@pytest.mark.parametrize("code", PASSING)
def test_a_refusal_a_retry_may_pass_is_not_stuck(tmp_path: Path, code: ReasonCode) -> None:
    """Sent again at the next bar: the bot is on it, no person is needed yet."""
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = code
    _flatten_at_next_bar(engine, breaker)
    assert engine.position(SYMBOL).quantity == 1.0
    assert engine.closes_stuck() == {}


def test_a_close_refused_without_a_code_is_stuck_with_an_empty_code(tmp_path: Path) -> None:
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.NONE
    _flatten_at_next_bar(engine, breaker)
    assert engine.closes_stuck() == {SYMBOL: ("", 1.0)}


def _buy_one_more(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0)


def test_a_position_that_changed_is_no_longer_stuck(tmp_path: Path) -> None:
    """The strategy buys 1 more after the refusal: a close of 2 is another close (the next
    flatten sends it), so 2 held is not reported as the stuck 1."""
    engine, breaker = _engine(
        tmp_path / "journal.sqlite",
        {0: buy_with_bracket, 1: rest_a_limit_buy, 3: _buy_one_more},
        HeldCloses(),
    )
    engine.run(BARS[:2])
    venue = engine.broker
    assert isinstance(venue, HeldCloses)
    venue.refuse = ReasonCode.BELOW_MIN_QUANTITY
    _flatten_at_next_bar(engine, breaker)
    assert engine.closes_stuck() == {SYMBOL: ("below_min_quantity", 1.0)}
    engine.run(BARS[3:5])  # bought at bar 3, filled at bar 4's open
    assert engine.position(SYMBOL).quantity == 2.0
    assert engine.closes_stuck() == {}


def test_a_restart_shows_the_stuck_close_again(tmp_path: Path) -> None:
    """The journal's ``close_owed`` refusal and the venue's same position: ``resume_closes``
    does not send it, and the new engine reports it stuck before its first bar."""
    bot = Bot(tmp_path, BuyOnce)
    _refused_flatten(bot, "killed", ReasonCode.BELOW_MIN_QUANTITY)
    Closes.answer = "accept"  # the venue would take it now: still only a person decides
    session, journal, engine = bot.open(_bars(5, 3))
    try:
        assert engine.closes_stuck() == {RESTART_SYMBOL: ("below_min_quantity", 1.0)}
    finally:
        session.close("stopped")
        journal.close()
