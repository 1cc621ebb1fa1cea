"""A cancel whose look-up at the venue keeps failing: what it costs, and what waits on it.

A cancel of an order the broker does not follow looks it up at the venue; when the look-up
fails (``test_ccxt_cancel_unknown``) the order is answered OPEN "kept as it was" and the cancel
asked again later. A failure that lasts (Bybit's order list answering 5xx; Binance USDⓈ-M's
conditional-order query refused with a 4xx the broker does not take for "no such order")
must neither end the order falsely (no status says "unknown", and CANCELLED or REJECTED would
make the bot forget a stop the venue may work) nor hold anything else up: a reduce-only close
sent meanwhile (a flatten's) fills and is reported, the broker stops at once, and the look-up
is asked again at a slowing pace, not at every poll.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness, harness_for, updates
from tests.brokers.resting_bracket import resting_bracket
from tradefleet_runtime.model import OrderStatus, OrderType, Side

# The look-up that keeps failing, as each venue answers it.
FAULT = {
    # The open orders hold no such order; the ended ones are refused (the key may not read
    # them): the poll's own read of ended orders fails as well, so only the count is watched.
    "bybit": (
        "reject",
        ("GET", "/v5/order/history"),
        {"code": 10005, "msg": "Permission denied, please check your API key permissions."},
    ),
    # The order query says "unknown order" (the child is no regular order); the conditional
    # order query is refused for a reason the broker does not take for "no such order".
    "binance-usdm": (
        "reject",
        ("GET", "/fapi/v1/algoOrder"),
        {"status": 400, "code": -1102, "msg": "A mandatory parameter was not sent."},
    ),
}
WATCH_S = 3.0  # some 15 polls at the harness's pace


@pytest.mark.parametrize("name", ["bybit", "binance-usdm"])
def test_a_cancel_whose_look_up_keeps_failing_is_kept_open_asked_slower_and_holds_nothing_up(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with harness_for(name, tmp_path, max_retries=2, leverage=5) as harness:
        assert isinstance(harness, VenueHarness)
        _entry, _stop, target = resting_bracket(harness, "cxlast-entry")
        broker = harness.restart()  # the children are no ids this broker sent or loaded
        fault_name, (method, path), params = FAULT[name]
        harness.fake.faults.inject(fault_name, path=path, method=method, times=None, **params)
        after = len(harness.events)
        broker.cancel(target)
        started = time.monotonic()
        harness.wait_for(lambda e: bool(updates(e[after:], target)), timeout=20.0)

        time.sleep(max(0.0, WATCH_S - (time.monotonic() - started)))
        harness.collect()
        answers = updates(harness.events[after:], target)
        # Kept, never ended falsely: the venue may hold it.
        assert answers and all(a.status is OrderStatus.OPEN for a in answers), answers
        assert "cancel not made" in answers[0].reason, answers[0]
        # Said at most twice (when first kept; once more when it has lasted), not at each poll.
        assert len(answers) <= 2, answers
        # Asked again at a slowing pace: far fewer look-ups than the polls meanwhile (the old
        # pace asked at every poll: 14 look-ups in these 3 s on the fake Binance).
        looked = [r for r in caplog.records if f"look-up of {target} failed" in r.getMessage()]
        assert 2 <= len(looked) <= 7, len(looked)

        # A flatten's close meanwhile: a position opened and closed reduce-only, both filled
        # (and, where the poll's own reads work, reported promptly: the cancel holds no poll).
        opened = harness.order("cxlast-open", quantity=0.1)
        close = harness.order("cxlast-close", Side.SELL, 0.1, OrderType.MARKET, reduce_only=True)
        harness.broker.submit(opened)
        if name == "binance-usdm":
            harness.wait_filled(opened.client_order_id, 0.1)
        sent = time.monotonic()
        harness.broker.submit(close)
        if name == "binance-usdm":
            harness.wait_filled(close.client_order_id, 0.1)
            assert time.monotonic() - sent < 2.0

        # The venue answers again: the cancel is made by the same broker, within the slower
        # pace's longest wait (64 polls).
        harness.fake.faults.clear()
        ended = harness.wait_final(target)
        assert ended.status is OrderStatus.CANCELLED, ended
        for order in (opened, close):
            harness.wait_filled(order.client_order_id, 0.1)
        assert target not in harness.venue_client_ids()  # withheld: never placed
