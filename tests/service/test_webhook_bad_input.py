"""Bad input the signal webhook and ``validate_signal`` once mishandled: a bot that takes no
signals now (starting, stopped) answered 503 with an ERROR traceback, and ``direction`` was
upper-cased before the check, so a non-ASCII look-alike (``ſell``) passed as SELL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.service.test_webhook import GOOD_SIGNAL, running
from tests.service.webhook_client import signal_body
from tradefleet_runtime.service.api import (
    NoAnswer,
    NotNow,
    Signal,
    SignalInvalid,
    SignalResult,
    validate_signal,
)
from tradefleet_runtime.service.webhook import Refusal, parse_signal_body


@pytest.mark.parametrize(
    "message", ["the bot is still starting", "the bot has stopped (its data ended)"]
)
async def test_a_bot_taking_no_signals_now_answers_409_with_its_reason_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, message: str
) -> None:
    async def not_now(signal: Signal) -> SignalResult:
        raise NotNow(message)

    caplog.set_level(logging.DEBUG, logger="tradefleet_runtime.service.webhook")
    async with running(tmp_path) as h:
        h.answer = not_now
        reply = await h.send()
        assert reply.status == 409, reply.body
        assert reply.body["accepted"] is False
        assert reply.body["outcome"] == "refused"
        assert message in reply.body["reason"]
        assert "Retry-After" not in reply.headers
        assert h.counts() == {"refused": 1.0}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]


async def test_an_engine_that_does_not_answer_is_still_503(tmp_path: Path) -> None:
    """``NoAnswer`` is a ``NotNow`` too, but the bot failed to answer: worth a retry."""

    async def no_answer(signal: Signal) -> SignalResult:
        raise NoAnswer("the bot did not answer in time")

    async with running(tmp_path) as h:
        h.answer = no_answer
        reply = await h.send()
        assert reply.status == 503, reply.body
        assert reply.body["outcome"] == "unavailable"
        assert "Retry-After" in reply.headers


@pytest.mark.parametrize(
    "direction",
    [
        "ſell",  # U+017F LATIN SMALL LETTER LONG S: "ſell".upper() == "SELL"
        "ſELL",
        "buy\u0131",  # dotless i
        "ＢＵＹ",  # fullwidth
        "bu\u0443",  # Cyrillic u
    ],
)
def test_direction_is_ascii_buy_or_sell_only(direction: str) -> None:
    fields = {**GOOD_SIGNAL, "direction": direction}
    with pytest.raises(SignalInvalid) as refused:
        validate_signal(fields)
    assert [p.path for p in refused.value.problems] == ["direction"]


@pytest.mark.parametrize("direction", ["buy", "Buy", "BUY", "sell", "sElL"])
def test_direction_takes_any_ascii_case(direction: str) -> None:
    levels = (
        {"entry": 1.0850, "stop_loss": 1.0830, "take_profit": 1.0890}
        if direction.lower() == "buy"
        else {"entry": 1.0850, "stop_loss": 1.0890, "take_profit": 1.0830}
    )
    body = validate_signal({**GOOD_SIGNAL, "direction": direction, "price_levels": levels})
    assert body.direction == direction.upper()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeframe", "M\u0131"),
        ("timeframe", "M５"),
        ("timeframe", "M5\n"),
        ("pattern_type", "M5_BOſ"),
        ("pattern_type", "M5_BOS\n"),
        ("symbol", "EURUSD\n"),
        ("symbol", "EURUſD"),
    ],
)
def test_other_enum_like_fields_refuse_non_ascii_and_trailing_newlines(
    field: str, value: str
) -> None:
    with pytest.raises(Refusal) as refused:
        parse_signal_body(signal_body(**{field: value}))
    assert refused.value.status == 400
    assert refused.value.reason.startswith(f"{field}:"), refused.value.reason


async def test_the_webhook_refuses_a_long_s_sell_naming_direction(tmp_path: Path) -> None:
    sell_levels = {"entry": 1.0850, "stop_loss": 1.0890, "take_profit": 1.0830}
    async with running(tmp_path) as h:
        reply = await h.send(signal_body(direction="ſell", price_levels=sell_levels))
        assert reply.status == 400, reply.body
        assert reply.body["outcome"] == "malformed"
        assert reply.body["reason"].startswith("direction:")
        assert h.submitted == []
