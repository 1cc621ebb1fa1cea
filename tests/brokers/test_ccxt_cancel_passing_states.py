"""Two passing venue states are never taken for a cancel refusal that lasts.

A cancel the venue refuses for a lasting reason is asked again 1, 2, 4 ... polls apart
(``_refusal_lasts``); one refused for a passing state is asked at the next poll. Binance
USDⓈ-M's -5028 ("Timestamp for this request is outside of the ME recvWindow": its matching
engine late under load, ccxt ``InvalidOrder``) and Bybit's 110079 ("The order is processing and
can not be operated, please try again later", a plain ``ExchangeError`` in ccxt) pass within a
second, exactly when a halt flattens in a fast market: classed lasting, the cancel of a bracket
(on spot, the one the close waits for) would wait 1, 2, 4, 8 ... polls. Both are a busy venue's
answer: in doubt, looked up and asked again at once.
"""

from __future__ import annotations

import json

import pytest

from tradefleet_plugins.brokers import ccxt_broker
from tradefleet_plugins.brokers.ccxt_errors import Retry, classify
from tradefleet_runtime.sdk import ReasonCode


@pytest.mark.parametrize(
    ("names", "code", "words"),
    [
        (
            ("InvalidOrder", "ExchangeError"),
            -5028,
            "Timestamp for this request is outside of the ME recvWindow.",
        ),
        (
            ("ExchangeError",),
            110079,
            "The order is processing and can not be operated, please try again later",
        ),
    ],
)
def test_a_cancel_refused_for_a_passing_venue_state_is_not_paced(
    names: tuple[str, ...], code: int, words: str
) -> None:
    message = json.dumps({"code": code, "msg": words})
    failure = classify((*names, "BaseError", "Exception"), message, 400, None, 0)
    assert not ccxt_broker._refusal_lasts(failure), failure
    # Asked again at once as a busy venue is: looked up first, since it may have reached it.
    assert failure.code is ReasonCode.VENUE_UNAVAILABLE, failure
    assert failure.retry is Retry.IN_DOUBT, failure
