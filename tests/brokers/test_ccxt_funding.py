"""The ccxt broker books perpetual futures' funding (``reports-cash-flows``), against the fake
Binance USDⓈ-M and Bybit linear venues with the real ccxt.

Each fake settles funding at 00:00, 08:00 and 16:00 UTC (``pass_funding_time`` freezes its clock
just past the next instant and pays it): a position pays ``size × mark × rate``. The fakes' rate
is 0 unless a test sets it; here it is the venues' usual 0.0001, so 2 BTC at 50,000 pay (a long)
or receive (a short) 10 USDT an instant. The venues sign the payment oppositely (Binance's
income: negative when paid; Bybit's execFee: positive when paid); the bot's ``CashFlow`` is
signed from the account's side on both: negative = paid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.brokers.harness import SYMBOL, VenueHarness, harness_for
from tests.venues.funding_schedule import EIGHT_HOURS_MS
from tradefleet_plugins.brokers import ccxt_broker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import (
    Capability,
    CashFlow,
    CashFlowReporter,
    OrderStatus,
    PluginKind,
    Side,
)

FUTURES = ("binance-usdm", "bybit")
# Where each fake lists funding payments, and how a request reading them is told apart.
FUNDING_PATH = {"binance-usdm": "/fapi/v1/income", "bybit": "/v5/execution/list"}
FUNDING_TYPE = {"binance-usdm": ("incomeType", "FUNDING_FEE"), "bybit": ("execType", "Funding")}
RATE = "0.0001"
POSITION = 2.0  # BTC, at the fakes' 50,000: 10 USDT an instant at RATE


@pytest.fixture(params=FUTURES)
def futures(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VenueHarness]:
    with _venue(request.param, tmp_path) as harness:
        yield harness


@contextmanager
def _venue(name: str, folder: Path, **params: Any) -> Iterator[VenueHarness]:
    """A fake venue (futures ones paying the usual rate on BTCUSDT) and a ccxt broker on it,
    reading funding every 0.1 s (its default is 300 s)."""
    settings: dict[str, Any] = {"rate_limit_ms": 10, "funding_poll_s": 0.1}
    settings.update(params)
    with harness_for(name, folder, **settings) as harness:
        assert isinstance(harness, VenueHarness)
        if name in FUTURES:
            harness.fake.set_funding_rate(SYMBOL, RATE)
        yield harness


def _open(harness: VenueHarness, side: Side, order_id: str = "pos1") -> None:
    update = harness.broker.submit(harness.order(order_id, side, quantity=POSITION))
    harness.answer(update)
    assert harness.wait_final(order_id).status is OrderStatus.FILLED


def _flows(harness: VenueHarness) -> list[CashFlow]:
    events: list[Any] = list(harness.events)  # CashFlows among the fills and updates
    return [e for e in events if isinstance(e, CashFlow)]


def _wait_flows(harness: VenueHarness, count: int, timeout: float = 15.0) -> list[CashFlow]:
    harness.wait_for(lambda _events: len(_flows(harness)) >= count, timeout)
    return _flows(harness)


def _venue_ids(harness: VenueHarness) -> list[str]:
    """The venue's own ids of its funding payments, oldest first."""
    if harness.name == "bybit":
        return [x.exec_id for x in harness.fake.funding_executions()]
    return [str(row.tran_id) for row in harness.fake.funding_income()]


def _funding_reads(harness: VenueHarness, after: int = 0) -> list[Any]:
    key, value = FUNDING_TYPE[harness.name]
    return [
        r
        for r in list(harness.fake.requests)[after:]
        if r.path == FUNDING_PATH[harness.name] and r.params.get(key) == value
    ]


def _reads_more(harness: VenueHarness, reads: int, timeout: float = 15.0) -> None:
    """Until the broker read funding ``reads`` more times (successfully)."""
    start = len(harness.fake.requests)
    deadline = time.monotonic() + timeout
    while len([r for r in _funding_reads(harness, start) if r.status == 200]) < reads:
        assert time.monotonic() < deadline, "the broker stopped reading funding"
        harness.collect()
        time.sleep(0.05)
    harness.collect()


def _freeze(harness: VenueHarness, at_ms: int) -> None:
    """Move the fake venue's (frozen) clock to ``at_ms``."""
    with harness.fake.state.lock:
        clock = harness.fake.state.clock
        clock.frozen_ms = at_ms - clock.offset_ms


def test_the_ccxt_broker_declares_reports_cash_flows() -> None:
    spec = PluginRegistry.discover().get(PluginKind.BROKER, "ccxt").spec
    assert spec.has(Capability.REPORTS_CASH_FLOWS)


@pytest.mark.parametrize("name", FUTURES)
@pytest.mark.parametrize(("side", "amount"), [(Side.BUY, -10.0), (Side.SELL, 10.0)])
def test_a_funding_instant_is_one_cash_flow_signed_from_the_accounts_side(
    name: str, side: Side, amount: float, tmp_path: Path
) -> None:
    """A long pays a positive rate (negative amount), a short receives it, on both venues
    (Bybit's execFee says +10 where the long paid: ccxt's amount is not the bot's)."""
    with _venue(name, tmp_path) as harness:
        assert isinstance(harness.broker, CashFlowReporter)
        _open(harness, side)
        wakes = harness.wakes
        at = harness.fake.pass_funding_time()
        [flow] = _wait_flows(harness, 1)
        assert flow == CashFlow(_venue_ids(harness)[0], SYMBOL, amount, "USDT", at // 1000)
        assert flow.kind == "funding"
        assert harness.wakes > wakes  # the bot was woken to book it


def test_a_payment_is_reported_once_however_often_funding_is_read(
    futures: VenueHarness,
) -> None:
    _open(futures, Side.BUY)
    first = futures.fake.pass_funding_time()
    _wait_flows(futures, 1)
    _reads_more(futures, 3)  # each read returns the payment again (the overlap)
    assert len(_flows(futures)) == 1
    second = futures.fake.pass_funding_time()
    assert second == first + EIGHT_HOURS_MS
    _wait_flows(futures, 2)
    _reads_more(futures, 3)
    flows = _flows(futures)
    assert [f.flow_id for f in flows] == _venue_ids(futures)
    assert [f.ts for f in flows] == [first // 1000, second // 1000]
    assert [f.amount for f in flows] == [-10.0, -10.0]


def test_a_payment_booked_before_connect_is_not_reported_but_the_catch_up_has_it(
    futures: VenueHarness,
) -> None:
    """It belongs to whatever held the position then: this run's events leave it out; a
    restarted bot asks ``cash_flow_reports`` for those made while it was down."""
    _open(futures, Side.BUY)
    before = futures.fake.pass_funding_time()
    futures.restart()  # connects after the payment, on the venue's clock
    futures.events.clear()
    _reads_more(futures, 3)
    assert _flows(futures) == []
    after = futures.fake.pass_funding_time()
    [flow] = _wait_flows(futures, 1)
    assert flow.ts == after // 1000 and flow.flow_id == _venue_ids(futures)[1]
    caught_up = futures.broker.cash_flow_reports(before // 1000)
    assert [(f.flow_id, f.ts, f.amount) for f in caught_up] == [
        (_venue_ids(futures)[0], before // 1000, -10.0),
        (flow.flow_id, after // 1000, -10.0),
    ]
    assert futures.broker.cash_flow_reports(after // 1000 + 1) == []


# Rows a page holds at each venue (Binance's income: 1,000 a request; Bybit's executions: 100).
PAGE = {"binance-usdm": 1000, "bybit": 100}


@pytest.mark.parametrize("name", FUTURES)
def test_cash_flow_reports_read_every_page_and_every_week_since_oldest_first(
    name: str, tmp_path: Path
) -> None:
    """More payments than a page in one week (funding every minute here), then nine days of
    8-hourly ones (Bybit answers seven days a request): all of them, once, oldest first."""
    with _venue(name, tmp_path, funding_poll_s=3600) as harness:
        _open(harness, Side.SELL)
        dense = PAGE[name] + 20
        with harness.fake.state.lock:
            harness.fake.state.funding.interval_ms = 60_000
        first = harness.fake.pass_funding_time()
        instants = [first] + [harness.fake.pass_funding_time() for _ in range(dense - 1)]
        with harness.fake.state.lock:
            harness.fake.state.funding.interval_ms = EIGHT_HOURS_MS
        instants += [harness.fake.pass_funding_time() for _ in range(27)]
        assert instants[-1] - instants[dense] > 8 * 86_400_000
        start = len(harness.fake.requests)

        flows = harness.broker.cash_flow_reports(first // 1000)

        assert [f.flow_id for f in flows] == _venue_ids(harness)
        assert [f.ts for f in flows] == [at // 1000 for at in instants]
        assert {f.amount for f in flows} == {10.0}  # the short receives
        reads = _funding_reads(harness, start)
        if name == "bybit":
            assert any("cursor" in r.params for r in reads)  # the week of the dense ones
            assert all(r.params.get("limit") == "100" for r in reads)  # full pages
            # no request spans more than Bybit's seven days
            for r in reads:
                if "endTime" in r.params:
                    span = int(r.params["endTime"]) - int(r.params["startTime"])
                    assert span < 7 * 86_400_000
        else:
            # a full page from the week's start, then the next from its last row's time
            starts = [int(r.params["startTime"]) for r in reads]
            assert first in starts and instants[PAGE[name] - 1] in starts
        assert any("endTime" in r.params for r in reads)  # more than one week
        later = harness.broker.cash_flow_reports(instants[-3] // 1000)
        assert [f.ts for f in later] == [at // 1000 for at in instants[-3:]]


def test_a_failed_funding_read_loses_no_payment(
    futures: VenueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The venue's funding list fails (every retry of a read, twice), and meanwhile its clock
    moves an hour past the payment: the next read still starts where the last successful one
    did, not where a failed one began. The failure is said once."""
    caplog.set_level(logging.INFO, logger="tradefleet.brokers.ccxt")
    _open(futures, Side.BUY)
    _reads_more(futures, 1)
    path = FUNDING_PATH[futures.name]
    attempts = 2 * (futures.params.max_retries + 1)
    start = len(futures.fake.requests)
    futures.fake.faults.inject("funding_unavailable", times=attempts)
    at = futures.fake.pass_funding_time()
    _freeze(futures, at + 3_600_000)
    [flow] = _wait_flows(futures, 1, timeout=30)
    assert (flow.flow_id, flow.amount, flow.ts) == (_venue_ids(futures)[0], -10.0, at // 1000)
    failed = [r for r in futures.fake.requests[start:] if r.path == path and r.status == -1]
    assert len(failed) == attempts
    _reads_more(futures, 2)
    assert len(_flows(futures)) == 1
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "reading funding payments failed" in m]) == 1
    assert any("funding reads work again" in m for m in said)
    assert not any(futures.fake.secret in m for m in said)


def test_spot_reads_no_funding(tmp_path: Path) -> None:
    """Binance spot pays no funding: no funding request while it runs, none for the reports."""
    with _venue("binance-spot", tmp_path) as harness:
        _open(harness, Side.BUY)
        time.sleep(1.0)  # ten funding periods of a futures broker
        asked = len(harness.fake.requests)
        assert harness.broker.cash_flow_reports(0) == []
        assert len(harness.fake.requests) == asked
        paths = {r.path for r in harness.fake.requests}
        assert not paths & {"/fapi/v1/income", "/fapi/v1/time", "/api/v3/time"}
        assert _flows(harness) == []


def test_a_venue_without_a_funding_reader_says_so_once_and_reports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A futures venue the broker has no reader of funding rows for: never a guessed sign."""
    monkeypatch.setattr(ccxt_broker, "funding_rows_of", lambda _dialect: None)
    caplog.set_level(logging.WARNING, logger="tradefleet.brokers.ccxt")
    with _venue("bybit", tmp_path) as harness:
        _open(harness, Side.BUY)
        harness.fake.pass_funding_time()
        time.sleep(1.0)
        harness.collect()
        assert _flows(harness) == []
        assert harness.broker.cash_flow_reports(0) == []
        assert _funding_reads(harness) == []
    said = [r.getMessage() for r in caplog.records if "no funding reader" in r.getMessage()]
    assert len(said) == 1 and "bybit" in said[0]


def test_funding_poll_s_is_checked_naming_the_field() -> None:
    for wrong in (0, -1, 3601):
        with pytest.raises(ValidationError, match="funding_poll_s"):
            CcxtBrokerParams(exchange="bybit", market_type="linear", funding_poll_s=wrong)
    assert CcxtBrokerParams(exchange="bybit", market_type="linear").funding_poll_s == 300.0
