"""``Engine.closes_retrying``: the positions a risk plugin's (or the stop policy's) flatten asked
to close that the venue keeps refusing for reasons a later try may pass.

The bot sends such a close again at each of the symbol's bars (``test_risk_flatten_owed.py``),
but meanwhile the position its risk rules want closed stays open: a venue down for an hour, a
market closed for the weekend, a price band that holds. One refusal is a blip and says nothing;
from the second in a row the status, the ``tradefleet_closes_retrying`` gauge and its alert
name the position, the refusals, when they began and the last code. Gone once the position is
flat, a halt's flatten takes it over, or the refusal becomes one no retry changes (then it is
stuck: ``closes_stuck``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.runtime.test_risk_flatten_keeps_stops import (
    SYMBOL,
    _flatten_at_next_bar,
    _long_with_bracket,
)
from tests.runtime.test_risk_flatten_owed import PASSING, _more_bars
from tradefleet_runtime.model import ReasonCode


@pytest.mark.parametrize("code", PASSING)
def test_a_close_refused_twice_in_a_row_is_retrying_until_the_position_is_flat(
    tmp_path: Path, code: ReasonCode
) -> None:
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = code
    _flatten_at_next_bar(engine, breaker)
    first = engine.now
    assert len(venue.closes_sent) == 1
    assert engine.closes_retrying() == {}  # one refusal: a blip, nobody is told yet

    _more_bars(engine, 3, 1)  # the retry, refused again
    assert len(venue.closes_sent) == 2
    assert engine.closes_retrying() == {SYMBOL: (code.value, 1.0, 2, first)}
    _more_bars(engine, 4, 2)
    assert engine.closes_retrying() == {SYMBOL: (code.value, 1.0, 4, first)}
    assert engine.closes_stuck() == {}  # still the bot's to do

    venue.refuse = None  # the venue takes the next one
    _more_bars(engine, 6, 2)
    assert engine.position(SYMBOL).quantity == 0.0
    assert engine.closes_retrying() == {}


def test_the_last_refusals_code_is_shown(tmp_path: Path) -> None:
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)
    venue.refuse = ReasonCode.MARKET_CLOSED
    _more_bars(engine, 3, 1)
    [(code, held, refusals, _since)] = engine.closes_retrying().values()
    assert (code, held, refusals) == ("market_closed", 1.0, 2)


def test_said_once_as_an_error_at_the_second_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    with caplog.at_level(logging.ERROR, logger="tradefleet_runtime"):
        _flatten_at_next_bar(engine, breaker)
        _more_bars(engine, 3, 4)
    said = [r.getMessage() for r in caplog.records if "refused 2 times in a row" in r.getMessage()]
    assert len(said) == 1
    assert SYMBOL in said[0] and "venue_unavailable" in said[0] and "--flatten" in said[0]


def test_a_refusal_no_retry_changes_moves_it_to_stuck(tmp_path: Path) -> None:
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)
    _more_bars(engine, 3, 1)
    assert SYMBOL in engine.closes_retrying()
    venue.refuse = ReasonCode.BELOW_MIN_QUANTITY
    _more_bars(engine, 4, 1)
    assert engine.closes_retrying() == {}
    assert engine.closes_stuck() == {SYMBOL: ("below_min_quantity", 1.0)}


def test_a_halts_flatten_takes_it_over(tmp_path: Path) -> None:
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)
    _more_bars(engine, 3, 1)
    assert SYMBOL in engine.closes_retrying()
    engine.halt("ops", "the venue is flaky", flatten=True)
    assert engine.closes_retrying() == {}


def test_a_refusal_then_a_pass_counts_from_zero_again(tmp_path: Path) -> None:
    """Refused once, then the close works at the venue and fills: a later flatten refused once
    is a first refusal again, not a third."""
    engine, venue, breaker, _entry = _long_with_bracket(tmp_path)
    venue.refuse = ReasonCode.RATE_LIMITED
    _flatten_at_next_bar(engine, breaker)
    venue.refuse = None
    _more_bars(engine, 3, 2)
    assert engine.position(SYMBOL).quantity == 0.0
    assert engine.closes_retrying() == {}
