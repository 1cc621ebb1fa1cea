"""A cancel of an order the broker follows that the venue refuses for a lasting reason.

A key without the permission to cancel (Binance -2015, Bybit 10005, Kraken's "permission
denied") is refused at every try: no retry changes it. The cancel stays due (the venue holds
the order: it must not be forgotten, nor reported cancelled), but it is asked again after 1,
2, 4 ... polls — the pacing of a cancel whose look-up keeps failing
(``test_ccxt_cancel_lookup_lasting``) — not at every poll, and said once more when it has
lasted. A fault that passes (a 5xx, a timeout) is still asked at the next poll. Meanwhile the
poll reads the order: a fill is booked once, and a flatten's close is not held up.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.brokers.harness import QUANTITY, VENUE_SETUPS, VenueHarness, harness_for, updates
from tests.brokers.test_ccxt_faults import CANCEL_PATH
from tests.brokers.test_ccxt_flatten_keeps_stops import FUTURES, _events, _guarded, _until
from tradefleet_plugins.brokers import ccxt_broker
from tradefleet_plugins.brokers.ccxt_errors import classify
from tradefleet_runtime.sdk import OrderStatus, OrderType, ReasonCode

# The refusal of a cancel as each venue words it for a key that may not cancel.
REFUSAL: dict[str, dict[str, object]] = {
    "binance-spot": {
        "status": 401,
        "code": -2015,
        "msg": "Invalid API-key, IP, or permissions for action.",
    },
    "binance-usdm": {
        "status": 401,
        "code": -2015,
        "msg": "Invalid API-key, IP, or permissions for action.",
    },
    "bybit": {"code": 10005, "msg": "Permission denied, please check your API key permissions."},
    "kraken": {"error": "EGeneral:Permission denied"},
}
# Polls watched. At the slowing pace a cancel refused at poll p is asked again at p+1, p+3,
# p+7, p+15: five tries in these polls (the old pace: one a poll at least).
WATCHED_POLLS = 20


def _refuse_cancels(harness: VenueHarness, path: tuple[str, str] | None = None) -> None:
    method, where = path or CANCEL_PATH[harness.name]
    harness.fake.faults.inject(
        "reject", path=where, method=method, times=None, **REFUSAL[harness.name]
    )


def _cancels(harness: VenueHarness, path: tuple[str, str] | None = None) -> int:
    """The cancel requests the fake venue received."""
    method, where = path or CANCEL_PATH[harness.name]
    return sum(1 for r in harness.fake.requests if (r.method, r.path) == (method, where))


def _polls(harness: VenueHarness) -> int:
    return int(harness.broker._polls)


def _wait_polls(harness: VenueHarness, polls: int) -> None:
    start = _polls(harness)
    harness.wait_for(lambda _e: _polls(harness) >= start + polls, timeout=30.0)


def _resting(harness: VenueHarness, cid: str) -> None:
    """A limit buy below the market, working at the venue and followed by the broker."""
    harness.broker.submit(harness.order(cid, price=45_000.0, order_type=OrderType.LIMIT))
    harness.wait_for(
        lambda e: any(u.status is OrderStatus.OPEN for u in updates(e, cid)), timeout=10.0
    )


@pytest.mark.parametrize("name", VENUE_SETUPS)
def test_a_cancel_refused_for_a_lasting_reason_is_asked_slower_kept_open_and_made_later(
    name: str, tmp_path: Path
) -> None:
    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        _resting(harness, "rfl1")
        _refuse_cancels(harness)
        after = len(harness.events)
        harness.broker.cancel("rfl1")
        harness.wait_for(lambda _e: _cancels(harness) >= 1)
        _wait_polls(harness, WATCHED_POLLS)
        harness.collect()

        # Asked again, slower: the old pace asked at every poll (and woke the poller each time:
        # more requests than polls).
        asked = _cancels(harness)
        assert 3 <= asked <= 6, asked
        # Kept: the venue holds it. Never reported cancelled; said once more when it lasted,
        # OPEN with the refusal's code and words, for a person to see.
        answers = updates(harness.events[after:], "rfl1")
        assert all(a.status is OrderStatus.OPEN for a in answers), answers
        [said] = answers
        assert said.code is ReasonCode.AUTHENTICATION, said
        assert "cancel still not made" in said.reason and "refused" in said.reason, said
        assert "ermission" in said.reason, said  # the venue's words
        report = harness.broker.query_order("rfl1")
        assert report is not None and report.status is OrderStatus.OPEN
        assert "rfl1" in harness.venue_client_ids()

        # The venue takes cancels again: the cancel is made (within the pace's next wait) and
        # reported once.
        harness.fake.faults.clear()
        final = harness.wait_final("rfl1")
        assert final.status is OrderStatus.CANCELLED, final
        harness.collect()
        cancelled = [u for u in updates(harness.events, "rfl1") if u.status.is_final]
        assert len(cancelled) == 1, cancelled
        harness.assert_venue_matches()


@pytest.mark.parametrize("name", ["binance-usdm", "bybit"])
def test_an_order_that_fills_while_its_refused_cancel_waits_is_booked_once(
    name: str, tmp_path: Path
) -> None:
    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        _resting(harness, "rfl2")
        _refuse_cancels(harness)
        harness.broker.cancel("rfl2")
        harness.wait_for(lambda _e: _cancels(harness) >= 1)
        _wait_polls(harness, 10)
        assert _cancels(harness) <= 4  # paced (the old pace: one a poll at least)

        # It fills while its cancel waits: the poll reads the fill, booked once; the order
        # ends FILLED (never CANCELLED) and its cancel is no longer asked.
        harness.trade_through(44_900.0)
        final = harness.wait_final("rfl2")
        assert final.status is OrderStatus.FILLED, final
        asked = _cancels(harness)
        _wait_polls(harness, 40)  # past the pace's next waits
        assert _cancels(harness) == asked
        assert harness.filled("rfl2") == pytest.approx(QUANTITY)
        finals = [u for u in updates(harness.events, "rfl2") if u.status.is_final]
        assert [u.status for u in finals] == [OrderStatus.FILLED]
        harness.assert_venue_matches()


@pytest.mark.parametrize("name", ["binance-usdm", "bybit"])
def test_a_cancel_failing_for_a_passing_fault_is_still_asked_at_the_next_poll(
    name: str, tmp_path: Path
) -> None:
    """A 503 outlasting the request's retries (none here) is no lasting refusal: the cancel is
    asked at the next poll, as before the pacing."""
    with harness_for(name, tmp_path, max_retries=0) as harness:
        assert isinstance(harness, VenueHarness)
        _resting(harness, "rfl3")
        method, path = CANCEL_PATH[name]
        harness.fake.faults.inject("server_error", path=path, method=method, times=None)
        harness.broker.cancel("rfl3")
        harness.wait_for(lambda _e: _cancels(harness) >= 1)
        _wait_polls(harness, 12)
        assert _cancels(harness) >= 12  # one a poll at least (a pacing would ask 4)
        assert all(u.status is OrderStatus.OPEN for u in updates(harness.events, "rfl3"))
        harness.fake.faults.clear()
        assert harness.wait_final("rfl3").status is OrderStatus.CANCELLED
        harness.assert_venue_matches()


@pytest.mark.parametrize("name", FUTURES)
def test_a_halt_with_flatten_closes_at_once_while_the_guards_cancels_are_refused(
    name: str, tmp_path: Path
) -> None:
    """The engine's flatten on futures: the reduce-only close goes and fills at once; the
    guards' cancels after it, refused by the venue, are kept due and paced, never reported
    cancelled while the venue holds the guards, and made once the venue takes them."""
    # Where each venue cancels a conditional order (the guards).
    guard_cancel = {
        "binance-usdm": ("DELETE", "/fapi/v1/algoOrder"),
        "bybit": ("POST", "/v5/order/cancel"),
    }[name]
    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, guards = _guarded(harness)
        _refuse_cancels(harness, guard_cancel)
        halted = time.monotonic()
        assert engine.halt("alice", "incident", flatten=True)
        _until(engine, lambda: engine.position(harness.symbol).quantity == 0.0, timeout=5.0)
        assert time.monotonic() - halted < 3.0
        assert not _events(journal, "flatten_failed")
        # The guards' cancels are refused: kept open, asked again slower.
        _until(engine, lambda: _cancels(harness, guard_cancel) >= 2)
        start = _polls(harness)
        _until(engine, lambda: _polls(harness) >= start + WATCHED_POLLS)
        assert _cancels(harness, guard_cancel) <= 2 * 6
        for guard in guards:
            report = harness.broker.query_order(guard)
            assert report is not None and report.status is OrderStatus.OPEN, report
        assert {o.client_order_id for o in engine.open_orders()} == set(guards)

        harness.fake.faults.clear()
        _until(engine, lambda: not engine.open_orders(), timeout=15.0)
        for guard in guards:
            report = harness.broker.query_order(guard)
            assert report is not None and report.status is OrderStatus.CANCELLED, report
        assert not _events(journal, "flatten_failed")  # the flatten ended flat, nothing owed


@pytest.mark.parametrize(
    ("names", "code", "lasting"),
    [
        # ExchangeError subclasses: the venue answered and refused — lasting.
        (("PermissionDenied", "AuthenticationError", "ExchangeError"), 10005, True),
        (("BadRequest", "ExchangeError"), -1102, True),
        (("InvalidOrder", "ExchangeError"), None, True),
        (("ExchangeError",), None, True),
        # Binance's refused key raised as DDoSProtection once a key has worked: its code wins.
        (("DDoSProtection", "NetworkError"), -2015, True),
        # "No such order": not refused, ended (the poll reports how).
        (("OrderNotFound", "InvalidOrder", "ExchangeError"), -2011, False),
        # NetworkError subclasses and 5xx: passing.
        (("RequestTimeout", "NetworkError"), None, False),
        (("ExchangeNotAvailable", "NetworkError"), None, False),
        (("OnMaintenance", "ExchangeNotAvailable", "NetworkError"), None, False),
        (("RateLimitExceeded", "NetworkError"), None, False),
        (("InvalidNonce", "NetworkError"), None, False),
        (("BadResponse",), None, False),
    ],
)
def test_which_cancel_refusals_last(
    names: tuple[str, ...], code: int | None, lasting: bool
) -> None:
    message = json.dumps({"code": code, "msg": "words"}) if code is not None else "words"
    failure = classify((*names, "BaseError", "Exception"), message, 400, None, 0)
    assert ccxt_broker._refusal_lasts(failure) is lasting


def test_a_5xx_exchange_error_is_passing() -> None:
    failure = classify(("ExchangeError", "BaseError"), "Bad Gateway", 502, None, 0)
    assert not ccxt_broker._refusal_lasts(failure)


def test_the_pace_doubles_to_its_longest_wait() -> None:
    waits = [ccxt_broker._cancel_wait_polls(n) for n in range(1, 10)]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 64, 64]
