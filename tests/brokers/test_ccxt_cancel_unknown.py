"""A cancel whose look-up at the venue failed keeps the order as it was, and is asked again.

A failed look-up is not "no such order". A cancel of an order the broker does not follow looks
the order up at the venue. When that look-up failed (a 503 on every try, its retries spent) a
cancel of a bracket child this broker object never sent, and whose id is not among those
loaded from the venue at start-up, was answered CANCELLED "cancelled before it was placed",
and the child marked never to be placed: but an earlier run may have placed it, and the venue
works it still — a stop the bot has forgotten. Now such a cancel is answered OPEN with the
failure's code (what the engine keeps, as an amend's: ``test_ccxt_amend_unknown``), and asked
again at the next poll: the order is cancelled at the venue once it can be asked, or a child
not placed yet is withheld then.

Against the fake Bybit (linear) and Kraken (spot); the harness's ids carry no bot prefix, so a
new broker object on the account loads none of them at start-up.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.brokers.harness import Event, Harness, VenueHarness, harness_for, updates
from tests.brokers.resting_bracket import fail_lookups, resting_bracket
from tradefleet_plugins.brokers.ccxt_orders import Dialect, bot_client_id
from tradefleet_runtime.model import OrderStatus, OrderUpdate, ReasonCode


def _answers(harness: VenueHarness, client_order_id: str, after: int) -> list[OrderUpdate]:
    return updates(harness.events[after:], client_order_id)


def _first_answer(harness: VenueHarness, client_order_id: str, after: int) -> OrderUpdate:
    harness.wait_for(lambda e: bool(updates(e[after:], client_order_id)), timeout=20.0)
    return _answers(harness, client_order_id, after)[0]


def _final(harness: VenueHarness, client_order_id: str, after: int) -> OrderUpdate:
    def ended(events: list[Event]) -> bool:
        return any(u.status.is_final for u in updates(events[after:], client_order_id))

    harness.wait_for(ended, timeout=20.0)
    return next(u for u in _answers(harness, client_order_id, after) if u.status.is_final)


def _kept(answer: OrderUpdate) -> None:
    assert answer.status is OrderStatus.OPEN, answer  # was CANCELLED, never placed
    assert answer.code is not ReasonCode.NONE, answer
    assert "cancel not made" in answer.reason, answer


def _harness(name: str, tmp_path: Path) -> AbstractContextManager[Harness]:
    leverage = {} if name == "kraken" else {"leverage": 5}
    return harness_for(name, tmp_path, max_retries=2, **leverage)


@pytest.mark.parametrize("name", ["bybit", "kraken"])
def test_a_cancel_whose_look_up_failed_keeps_a_stop_the_venue_works_and_cancels_it_later(
    name: str, tmp_path: Path
) -> None:
    """An entry fills and its stop-loss works at the venue; a new broker object on the account
    (a restart: the stop is no id it sent or loaded) is asked to cancel it while every look-up
    fails. Answered OPEN with the failure's code, not "cancelled before it was placed"; once the
    venue answers, the stop is cancelled there and the bot hears it cancelled."""
    with _harness(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        entry = harness.order("cxfail-held", quantity=0.1, stop_loss=48_000.0, take_profit=52_000.0)
        stop = f"{entry.client_order_id}-sl"
        harness.broker.submit(entry)
        harness.wait_filled(entry.client_order_id, 0.1)
        harness.wait_for(lambda _e: _working(harness, stop), timeout=10.0)
        assert stop in harness.venue_client_ids()

        broker = harness.restart()
        fail_lookups(harness)
        after = len(harness.events)
        broker.cancel(stop)
        answer = _first_answer(harness, stop, after)
        _kept(answer)
        assert _venue_status(harness, stop) == "working"  # the venue still works it

        harness.fake.faults.clear()
        ended = _final(harness, stop, after)
        assert ended.status is OrderStatus.CANCELLED, ended
        assert "before it was placed" not in ended.reason, ended
        assert _venue_status(harness, stop) in ("Cancelled", "Deactivated", "canceled")


def test_a_cancel_whose_look_up_failed_withholds_an_unplaced_child_once_answered(
    tmp_path: Path,
) -> None:
    """A limit entry rests with its SL and TP (not placed before it fills); the take-profit is
    cancelled while every look-up fails: OPEN with the failure's code. Once the venue answers
    (it has no such order) the child is withheld: cancelled, and never placed when the entry
    fills."""
    with _harness("bybit", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        entry, stop, target = resting_bracket(harness, "cxfail-unplaced")
        fail_lookups(harness)
        after = len(harness.events)
        broker.cancel(target)
        _kept(_first_answer(harness, target, after))

        harness.fake.faults.clear()
        ended = _final(harness, target, after)
        assert ended.status is OrderStatus.CANCELLED, ended
        harness.trade_through(48_900.0)
        harness.wait_filled(entry.client_order_id, 0.1)
        harness.wait_for(lambda _e: _working(harness, stop), timeout=10.0)
        assert target not in harness.venue_client_ids()


def _working(harness: VenueHarness, client_order_id: str) -> bool:
    report = harness.broker.query_order(client_order_id)
    return report is not None and report.status is OrderStatus.OPEN


def _venue_status(harness: VenueHarness, client_order_id: str) -> str:
    """ "working" while the fake venue's order is open, else its own status (read from the
    fake's state: the broker's look-ups fail while the faults last)."""
    for order in harness.venue_orders():
        if harness.name == "kraken":  # the bot's ids packed into Kraken's 18 characters
            cid = bot_client_id(order.cl_ord_id or "", Dialect.KRAKEN)
        else:
            cid = order.link_id
        if cid == client_order_id:
            return "working" if order.is_open else str(order.status)
    raise AssertionError(f"{client_order_id} is not at the venue")
