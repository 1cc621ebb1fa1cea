"""Venue faults at the broker level, one named test each (the fakes' named faults).

After each: the venue's orders and fills equal what the broker reported, and no client order
id is placed twice at the venue (``VenueHarness.assert_venue_matches``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.brokers.harness import (
    ORDER_PATH,
    QUANTITY,
    VENUE_SETUPS,
    VenueHarness,
    updates,
)
from tradefleet_runtime.sdk import OrderStatus, OrderType, ReasonCode, Side

venues = pytest.mark.parametrize("name", VENUE_SETUPS)


def _venue(name: str, tmp_path: Path, **params: object) -> VenueHarness:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    return VenueHarness(name, credentials, **params)


def _posts(harness: VenueHarness) -> list[float]:
    path = ORDER_PATH[harness.name]
    return [r.at for r in harness.fake.requests if r.method == "POST" and r.path == path]


def _limit(harness: VenueHarness, cid: str) -> None:
    harness.broker.submit(harness.order(cid, price=45_000.0, order_type=OrderType.LIMIT))


def _opened(harness: VenueHarness, cid: str, timeout: float = 8.0) -> None:
    harness.wait_for(
        lambda _e: any(u.status is OrderStatus.OPEN for u in updates(harness.events, cid)),
        timeout,
    )


@venues
def test_accept_then_timeout_leaves_exactly_one_order(name: str, tmp_path: Path) -> None:
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject(
            "accept_then_timeout", path=ORDER_PATH[name], method="POST", hold_s=4
        )
        _limit(harness, "att1")
        _opened(harness, "att1")
        ack = updates(harness.events, "att1")[0]
        assert ack.venue_order_id  # found by its client id, not sent again
        assert len(_posts(harness)) == 1
        assert harness.venue_client_ids().count("att1") == 1
        harness.trade_through(44_900.0)
        harness.wait_filled("att1")
        harness.assert_venue_matches()
    finally:
        harness.close()


@venues
def test_a_market_order_whose_answer_was_lost_is_found_filled_not_sent_again(
    name: str, tmp_path: Path
) -> None:
    """The order filled at once and its answer was lost. Kraken checks a client id only
    against open orders: sent again, the same id would be taken and fill a second time. The
    broker finds it among the ended orders first."""
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject(
            "accept_then_timeout", path=ORDER_PATH[name], method="POST", hold_s=4
        )
        harness.broker.submit(harness.order("lost1"))
        harness.wait_filled("lost1")
        assert len(_posts(harness)) == 1
        assert harness.venue_client_ids().count("lost1") == 1
        assert harness.filled("lost1") == pytest.approx(QUANTITY)
        harness.assert_venue_matches()
    finally:
        harness.close()


@venues
def test_dropped_connection_after_accept_is_looked_up_not_resent(name: str, tmp_path: Path) -> None:
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject("accept_then_drop", path=ORDER_PATH[name], method="POST")
        _limit(harness, "drp1")
        _opened(harness, "drp1")
        assert len(_posts(harness)) == 1
        harness.assert_venue_matches()
    finally:
        harness.close()


@venues
def test_dropped_connection_before_accept_is_sent_again_once(name: str, tmp_path: Path) -> None:
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject("drop_connection", path=ORDER_PATH[name], method="POST")
        _limit(harness, "drp2")
        _opened(harness, "drp2")
        assert len(_posts(harness)) == 2  # looked up (absent), then sent once more
        assert harness.venue_client_ids().count("drp2") == 1
        harness.assert_venue_matches()
    finally:
        harness.close()


@venues
def test_a_5xx_burst_is_ridden_out_with_one_order(name: str, tmp_path: Path) -> None:
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject(
            "server_error", path=ORDER_PATH[name], method="POST", status=503, times=3
        )
        _limit(harness, "5xx1")
        _opened(harness, "5xx1")
        assert len(_posts(harness)) == 4
        assert harness.venue_client_ids().count("5xx1") == 1
        assert harness.broker.is_connected()
        harness.assert_venue_matches()
    finally:
        harness.close()


def _quiet_after(harness: VenueHarness, start: float, seconds: float) -> list[float]:
    """Arrival times of any request in (start, start + seconds): none may come during a ban."""
    margin = 0.1  # requests already on the wire when the refusal arrived
    return [
        r.at - start
        for r in harness.fake.requests
        if start + margin < r.at < start + seconds - margin
    ]


@venues
def test_a_429_burst_is_ridden_out_honouring_retry_after(name: str, tmp_path: Path) -> None:
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject(
            "rate_limit", path=ORDER_PATH[name], method="POST", retry_after=2, times=2
        )
        _limit(harness, "429a")
        _opened(harness, "429a")
        posts = _posts(harness)
        assert len(posts) == 3
        for refused in posts[:2]:
            # Binance: Retry-After 2 s; Bybit: its reset timestamp, 1-2 s ahead; Kraken names
            # no wait: every request holds 3 s (its call counter falls only meanwhile).
            wait = {"bybit": 1.0, "kraken": 3.0}.get(name, 2.0)
            assert _quiet_after(harness, refused, wait) == []
            assert not [p for p in posts if refused < p < refused + wait]
        assert harness.venue_client_ids().count("429a") == 1
        harness.assert_venue_matches()
    finally:
        harness.close()


def test_a_418_ban_is_waited_out_without_extending_it(tmp_path: Path) -> None:
    harness = _venue("binance-spot", tmp_path)
    try:
        harness.fake.faults.inject(
            "ip_ban", path=ORDER_PATH["binance-spot"], method="POST", retry_after=2
        )
        _limit(harness, "418a")
        _opened(harness, "418a")
        posts = _posts(harness)
        assert len(posts) == 2
        assert posts[1] - posts[0] >= 2.0
        # Nothing at all reached the venue while the ban lasted (polls included).
        assert _quiet_after(harness, posts[0], 2.0) == []
        harness.assert_venue_matches()
    finally:
        harness.close()


@venues
def test_partial_fill_fault_reports_each_execution_once(name: str, tmp_path: Path) -> None:
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject(
            "partial_fill", path=ORDER_PATH[name], method="POST", fraction=0.3
        )
        harness.broker.submit(harness.order("pf1", price=50_500.0, order_type=OrderType.LIMIT))
        harness.wait_for(lambda _e: harness.filled("pf1") > 0)
        assert harness.filled("pf1") == pytest.approx(QUANTITY * 0.3)
        harness.trade_through(50_300.0)
        harness.wait_filled("pf1")
        final = harness.wait_final("pf1")
        assert final.status is OrderStatus.FILLED
        harness.assert_venue_matches()
    finally:
        harness.close()


REJECTS = [
    (
        "binance-spot",
        -2010,
        "Account has insufficient balance for requested action.",
        ReasonCode.INSUFFICIENT_FUNDS,
    ),
    ("binance-spot", -1013, "Filter failure: NOTIONAL", ReasonCode.BELOW_MIN_NOTIONAL),
    ("binance-spot", -1013, "Filter failure: LOT_SIZE", ReasonCode.INVALID_QUANTITY),
    (
        "binance-spot",
        -1111,
        "Precision is over the maximum defined for this asset.",
        ReasonCode.INVALID_QUANTITY,
    ),
    (
        "binance-spot",
        -2015,
        "Invalid API-key, IP, or permissions for action.",
        ReasonCode.AUTHENTICATION,
    ),
    ("binance-usdm", -2019, "Margin is insufficient.", ReasonCode.INSUFFICIENT_FUNDS),
    (
        "binance-usdm",
        -4164,
        "Order's notional must be no smaller than 100 (unless you choose reduce only).",
        ReasonCode.BELOW_MIN_NOTIONAL,
    ),
    ("binance-usdm", -2022, "ReduceOnly Order is rejected.", ReasonCode.REDUCE_ONLY),
    ("binance-usdm", -4014, "Price not increased by tick size.", ReasonCode.INVALID_PRICE),
    ("bybit", 110007, "ab not enough for new order", ReasonCode.INSUFFICIENT_FUNDS),
    (
        "bybit",
        110094,
        "Order does not meet minimum order value 5USDT",
        ReasonCode.BELOW_MIN_NOTIONAL,
    ),
    (
        "bybit",
        110017,
        "current position is zero, cannot fix reduce-only order qty",
        ReasonCode.REDUCE_ONLY,
    ),
    ("bybit", 10003, "API key is invalid.", ReasonCode.AUTHENTICATION),
]


@pytest.mark.parametrize(
    ("name", "code", "message", "expected"),
    REJECTS,
    ids=[f"{r[0]}{r[1]}" for r in REJECTS],
)
def test_a_reject_with_a_real_code_gives_its_reason_code(
    name: str, code: int, message: str, expected: ReasonCode, tmp_path: Path
) -> None:
    harness = _venue(name, tmp_path)
    try:
        harness.fake.faults.inject(
            "reject", path=ORDER_PATH[name], method="POST", code=code, msg=message
        )
        _limit(harness, "rej1")
        final = harness.wait_final("rej1")
        assert final.status is OrderStatus.REJECTED
        assert final.code is expected
        assert message[:20] in final.reason
        assert len(_posts(harness)) == 1  # never retried
        assert harness.venue_client_ids() == []
        harness.assert_venue_matches()
    finally:
        harness.close()


@venues
def test_a_venue_duplicate_refusal_is_looked_up_never_a_second_order(
    name: str, tmp_path: Path
) -> None:
    harness = _venue(name, tmp_path)
    try:
        # The first answer is lost (timeout) and the venue refuses the retry as a duplicate:
        # the broker looks the order up and adopts it.
        harness.fake.faults.inject(
            "accept_then_timeout", path=ORDER_PATH[name], method="POST", hold_s=4
        )
        _limit(harness, "dup2")
        _opened(harness, "dup2")
        assert harness.venue_client_ids().count("dup2") == 1
        harness.assert_venue_matches()
    finally:
        harness.close()


def test_a_skewed_clock_is_resynchronised_and_the_order_sent(tmp_path: Path) -> None:
    harness = _venue("binance-spot", tmp_path)
    try:
        harness.fake.faults.inject(
            "clock_skew", path=ORDER_PATH["binance-spot"], method="POST", offset_ms=-30_000
        )
        _limit(harness, "skw1")
        _opened(harness, "skw1")
        assert len(_posts(harness)) == 2
        assert any(r.path == "/api/v3/time" for r in harness.fake.requests)
        harness.assert_venue_matches()
    finally:
        harness.close()


@venues
def test_a_slow_venue_never_delays_submit(name: str, tmp_path: Path) -> None:
    harness = _venue(name, tmp_path, timeout_ms=10_000)
    try:
        harness.fake.faults.inject(
            "latency", path=ORDER_PATH[name], method="POST", delay_ms=5_000, times=2
        )
        started = time.monotonic()
        first = harness.broker.submit(
            harness.order("slow1", price=45_000.0, order_type=OrderType.LIMIT)
        )
        second = harness.broker.submit(
            harness.order("slow2", price=45_000.0, order_type=OrderType.LIMIT)
        )
        harness.broker.cancel("slow1")
        harness.broker.drain_events()
        spent = time.monotonic() - started
        assert first.status is second.status is OrderStatus.PENDING
        assert spent < 1.0, f"the engine thread waited {spent:.2f}s on a slow venue"
        assert harness.final("slow1") is None  # the venue has not answered yet
        # On Kraken a request waits for the one before it to be answered, two seconds at
        # most (its nonce must arrive in order: ccxt_nonce), so the second order goes 2 s late.
        _opened(harness, "slow2", 15.0)
        harness.wait_final("slow1")  # the cancel followed the (slow) ack
        harness.assert_venue_matches()
    finally:
        harness.close()


def test_an_order_whose_look_up_also_fails_is_never_resent(tmp_path: Path) -> None:
    harness = _venue("binance-spot", tmp_path, max_retries=1)
    try:
        harness.fake.faults.inject(
            "accept_then_timeout", path=ORDER_PATH["binance-spot"], method="POST", hold_s=4
        )
        # The look-ups by client id fail too (5xx), until the poller's later one.
        harness.fake.faults.inject(
            "server_error", path=ORDER_PATH["binance-spot"], method="GET", times=2
        )
        _limit(harness, "lost1")
        _opened(harness, "lost1")
        assert len(_posts(harness)) == 1
        assert harness.venue_client_ids().count("lost1") == 1
        harness.assert_venue_matches()
    finally:
        harness.close()


@pytest.mark.parametrize("name", ["binance-spot", "binance-usdm"])
def test_a_stop_amended_past_the_market_is_never_left_half_done(name: str, tmp_path: Path) -> None:
    """Moving a sell stop above the market is refused (it would trigger at once). Spot's
    cancel-replace has cancelled the old stop by then: the order is over, said as REJECTED
    (for a stop-loss child the bot then closes its position). USDⓈ-M places the changed copy
    first: refused, the old stop keeps working and the amend is refused."""
    harness = _venue(name, tmp_path)
    try:
        stop = harness.order("amd4", side=Side.SELL, price=45_000.0, order_type=OrderType.STOP)
        harness.broker.submit(stop)
        _opened(harness, "amd4")
        harness.broker.amend("amd4", None, 51_000.0)
        harness.wait_for(
            lambda _e: any(u.code is not ReasonCode.NONE for u in updates(harness.events, "amd4"))
        )
        answer = [u for u in updates(harness.events, "amd4") if u.code is not ReasonCode.NONE][-1]
        report = harness.broker.query_order("amd4")
        assert report is not None
        if name == "binance-spot":
            assert answer.status is OrderStatus.REJECTED
            assert "cancelled the order" in answer.reason
            assert report.status is OrderStatus.CANCELLED
        else:
            assert answer.status is OrderStatus.OPEN and answer.reason.startswith("amend refused")
            assert report.status is OrderStatus.OPEN
            assert report.price == pytest.approx(45_000.0)
        harness.assert_venue_matches()
    finally:
        harness.close()


# Where each fake venue takes a cancel of a plain order.
CANCEL_PATH = {
    "binance-spot": ("DELETE", "/api/v3/order"),
    "binance-usdm": ("DELETE", "/fapi/v1/order"),
    "bybit": ("POST", "/v5/order/cancel"),
    "kraken": ("POST", "/0/private/CancelOrder"),
}


@venues
def test_a_cancel_the_venue_did_not_take_is_asked_again_until_it_does(
    name: str, tmp_path: Path
) -> None:
    """A cancel whose 5xx outlasts the request's retries is not dropped: a bracket's other
    child left working after its sibling filled would close the bot's next trade. The next
    poll asks again, and the order ends cancelled at the venue, reported once."""
    harness = _venue(name, tmp_path, max_retries=1)
    try:
        _limit(harness, "cxl1")
        _opened(harness, "cxl1")
        method, path = CANCEL_PATH[name]
        harness.fake.faults.inject("server_error", path=path, method=method, status=503, times=2)
        harness.broker.cancel("cxl1")
        final = harness.wait_final("cxl1")
        assert final.status is OrderStatus.CANCELLED
        cancels = [r for r in harness.fake.requests if (r.method, r.path) == (method, path)]
        assert len(cancels) >= 3  # two refused (the request and its one retry), then taken
        report = harness.broker.query_order("cxl1")
        assert report is not None and report.status is OrderStatus.CANCELLED
        assert [u.status for u in updates(harness.events, "cxl1")].count(OrderStatus.CANCELLED) == 1
        harness.assert_venue_matches()
    finally:
        harness.close()


def test_a_resized_stops_earlier_copy_the_venue_kept_is_cancelled_later(tmp_path: Path) -> None:
    """USDⓈ-M resizes a stop by placing the new copy, then cancelling the old: when that
    cancel fails past its retries, the old copy (reduce-only, but able to act on a later
    position) is cancelled by a later poll — the venue ends with one stop, the new one."""
    harness = _venue("binance-usdm", tmp_path, max_retries=1)
    try:
        stop = harness.order("amd5", side=Side.SELL, price=45_000.0, order_type=OrderType.STOP)
        harness.broker.submit(stop)
        _opened(harness, "amd5")
        harness.fake.faults.inject(
            "server_error", path="/fapi/v1/algoOrder", method="DELETE", times=2
        )
        harness.broker.amend("amd5", QUANTITY * 2, None)
        harness.wait_for(
            lambda _e: any(u.reason == "amended" for u in updates(harness.events, "amd5"))
        )

        def working() -> list[tuple[str, float]]:
            with harness.fake.state.lock:
                algos = list(harness.fake.state.usdm.algo_orders.values())
            return [(a.client_algo_id, float(a.quantity)) for a in algos if a.status == "NEW"]

        harness.wait_for(lambda _e: working() == [("amd5-a1", QUANTITY * 2)])
        report = harness.broker.query_order("amd5")
        assert report is not None and report.status is OrderStatus.OPEN
        assert report.quantity == pytest.approx(QUANTITY * 2)
        harness.assert_venue_matches()
    finally:
        harness.close()


# Binance USDⓈ-M takes a reduce-only stop below its minimum notional: there the first part gets
# its stop at once (tests/runtime/test_bracket_minimums_exits.py).
@pytest.mark.parametrize("name", ["binance-spot"])
def test_a_first_part_below_the_minimum_waits_for_the_rest_before_its_stop(
    name: str, tmp_path: Path
) -> None:
    """An entry's first part too small for the venue's minimum notional gets no stop yet (a
    refused stop would read as a position without one, and the bot would close it): the
    children come, sized on it all, when the rest fills."""
    harness = _venue(name, tmp_path)
    try:
        instrument = harness.broker.instrument(harness.symbol)
        stop_price = 48_000.0
        fraction = 0.5 * instrument.min_notional / (QUANTITY * stop_price)
        assert QUANTITY * fraction >= instrument.lot_step  # a fill the venue can make
        harness.fake.faults.inject(
            "partial_fill", path=ORDER_PATH[name], method="POST", fraction=fraction
        )
        entry = harness.order(
            "tiny1",
            price=50_500.0,
            order_type=OrderType.LIMIT,
            stop_loss=stop_price,
            take_profit=52_000.0,
        )
        harness.broker.submit(entry)
        harness.wait_for(lambda _e: harness.filled("tiny1") > 0.0)
        time.sleep(0.5)  # polls come and go: nothing is placed, nothing refused
        harness.collect()
        children = ("tiny1-sl", "tiny1-tp")
        assert not [e for e in harness.events if e.client_order_id in children]
        assert all(harness.broker.query_order(c) is None for c in children)
        harness.trade_through(50_400.0)
        harness.wait_filled("tiny1")
        harness.wait_for(
            lambda _e: all(
                (r := harness.broker.query_order(c)) is not None
                and r.status is OrderStatus.OPEN
                and r.quantity == pytest.approx(harness.held("tiny1"))
                for c in children
            )
        )
        harness.assert_venue_matches()
    finally:
        harness.close()


def test_a_child_cancelled_before_it_was_placed_is_never_placed(tmp_path: Path) -> None:
    """A flatten cancels every order the bot knows, a bracket child waiting for more of its
    entry included: it is said cancelled at once and never placed later (a stop placed after
    a flatten would act on the next position); its sibling still protects the entry. On
    Binance spot: USDⓈ-M takes a reduce-only child below its minimum notional at once."""
    harness = _venue("binance-spot", tmp_path)
    try:
        instrument = harness.broker.instrument(harness.symbol)
        fraction = 0.5 * instrument.min_notional / (QUANTITY * 48_000.0)
        harness.fake.faults.inject(
            "partial_fill", path=ORDER_PATH["binance-spot"], method="POST", fraction=fraction
        )
        entry = harness.order(
            "wh1",
            price=50_500.0,
            order_type=OrderType.LIMIT,
            stop_loss=48_000.0,
            take_profit=52_000.0,
        )
        harness.broker.submit(entry)
        harness.wait_for(lambda _e: harness.filled("wh1") > 0.0)
        harness.broker.cancel("wh1-tp")
        cancelled = harness.wait_final("wh1-tp")
        assert cancelled.status is OrderStatus.CANCELLED
        harness.trade_through(50_400.0)
        harness.wait_filled("wh1")
        harness.wait_for(
            lambda _e: (
                (r := harness.broker.query_order("wh1-sl")) is not None
                and r.status is OrderStatus.OPEN
            )
        )
        time.sleep(0.3)
        assert harness.broker.query_order("wh1-tp") is None
        harness.assert_venue_matches()
    finally:
        harness.close()
