"""The ccxt broker's Kraken dialect where a second symbol matters: Kraken's lists (open and
closed orders, own trades) hold every market at once, so a report or a poll cycle over several
symbols reads each once, not once a symbol (each page is a rate-limited call of several
seconds there)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.venues.kraken.server import FakeKraken
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.sdk import BrokerContext, Order, OrderType, Side

SYMBOLS = ("BTC/USD", "ETH/USD")


@contextmanager
def _two_symbols(tmp_path: Path) -> Iterator[tuple[FakeKraken, CcxtBroker]]:
    """A broker on a fake Kraken account trading both symbols."""
    fake = FakeKraken().start()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "apiKey").write_text(fake.api_key)
    (credentials / "secret").write_text(fake.secret)
    params = CcxtBrokerParams(
        exchange="kraken", api_url=fake.url, poll_interval_s=0.05, rate_limit_ms=10
    )
    broker = CcxtBroker(params)
    try:
        broker.connect(BrokerContext("two-symbols", "live", SYMBOLS, "USD", 1e5, credentials))
        yield fake, broker
    finally:
        broker.close()
        fake.stop()


def test_reports_over_two_symbols_read_each_kraken_list_once(tmp_path: Path) -> None:
    with _two_symbols(tmp_path) as (fake, broker):
        for k, (symbol, quantity) in enumerate(zip(SYMBOLS, (0.01, 0.1), strict=True)):
            broker.submit(Order(f"ks{k}", symbol, Side.BUY, quantity))
        deadline = time.monotonic() + 10
        fills = []
        while len(fills) < 2:
            assert time.monotonic() < deadline, fills
            fills += [e for e in broker.drain_events() if hasattr(e, "fill_id")]
            time.sleep(0.02)
        before = len(fake.requests)
        reports = broker.order_reports(0)
        fill_reports = broker.fill_reports(0)
        asked = [r.path for r in list(fake.requests)[before:]]
        # Each market's own orders and fills, named by the bot's ids...
        assert {(r.client_order_id, r.symbol) for r in reports} == {
            ("ks0", "BTC/USD"),
            ("ks1", "ETH/USD"),
        }
        assert sorted(f.client_order_id for f in fill_reports) == ["ks0", "ks1"]
        # ...from one read of each list per report (one page each here), not one per symbol.
        assert asked.count("/0/private/ClosedOrders") == 2  # order_reports, fill_reports
        assert asked.count("/0/private/TradesHistory") == 1


def test_a_poll_cycle_reads_krakens_open_orders_once_for_every_symbol(tmp_path: Path) -> None:
    """Kraken's open-order list holds every market, and each read is a rate-limited call of
    seconds there: one read a cycle, not one per symbol."""
    cycles = 0
    with _two_symbols(tmp_path) as (fake, broker):
        poll = broker._poll

        async def counted() -> None:
            nonlocal cycles
            cycles += 1
            await poll()

        broker._poll = counted  # type: ignore[method-assign]
        for k, (symbol, price) in enumerate(zip(SYMBOLS, (40_000.0, 2_000.0), strict=True)):
            broker.submit(
                Order(f"kr{k}", symbol, Side.BUY, 0.01, OrderType.LIMIT, price)  # rests
            )
        deadline = time.monotonic() + 10
        opened: set[str] = set()
        while len(opened) < 2:
            assert time.monotonic() < deadline, opened
            opened |= {e.client_order_id for e in broker.drain_events()}
            time.sleep(0.02)
        before, first = len(fake.requests), cycles
        time.sleep(1.0)
        reads = [r.path for r in list(fake.requests)[before:]].count("/0/private/OpenOrders")
        done = cycles - first
        assert done >= 3
        assert reads <= done + 1  # (a cycle may be on its way at either end)


def test_an_order_signed_while_a_read_is_on_the_wire_is_not_refused_for_its_nonce(
    tmp_path: Path,
) -> None:
    """Kraken's nonce must grow from one accepted request to the next, per key, and the broker
    has two clients on the key (orders, reads). A read held on its way to the venue, and an
    order signed after it and sent at once: the read must not arrive with the smaller nonce
    (refused, "EAPI:Invalid nonce"), nor the order be refused for an equal one."""
    with _two_symbols(tmp_path) as (fake, broker):
        broker.submit(Order("kn0", "BTC/USD", Side.BUY, 0.01, OrderType.LIMIT, 40_000.0))
        deadline = time.monotonic() + 10
        while not any(e.client_order_id == "kn0" for e in broker.drain_events()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # The poller reads the open orders every cycle (one order rests): hold the next read.
        fake.faults.inject("latency", path="/0/private/OpenOrders", method="POST", delay_ms=800)
        before = len(fake.requests)
        while not any(r.path == "/0/private/OpenOrders" for r in list(fake.requests)[before:]):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        broker.submit(Order("kn1", "ETH/USD", Side.BUY, 0.1))  # signed while the read waits
        fills = []
        while not fills:
            assert time.monotonic() < deadline + 5
            fills = [e for e in broker.drain_events() if getattr(e, "client_order_id", "") == "kn1"]
            time.sleep(0.02)
        time.sleep(1.0)  # the held read's answer is back
        assert fake.nonces.refused == 0
        assert [r.path for r in fake.requests].count("/0/private/AddOrder") == 2


def test_a_request_slow_to_be_answered_holds_the_next_one_two_seconds_at_most(
    tmp_path: Path,
) -> None:
    """Requests go one at a time on Kraken, but a hung one (a stop may be next) does not hold
    the others for the client's whole timeout: the next order goes after two seconds."""
    with _two_symbols(tmp_path) as (fake, broker):
        fake.faults.inject("latency", path="/0/private/AddOrder", method="POST", delay_ms=6_000)
        broker.submit(Order("kh0", "BTC/USD", Side.BUY, 0.01, OrderType.LIMIT, 40_000.0))
        time.sleep(0.2)  # on the wire, held
        broker.submit(Order("kh1", "ETH/USD", Side.BUY, 0.1, OrderType.LIMIT, 2_000.0))
        deadline = time.monotonic() + 20
        opened: list[str] = []
        while len(opened) < 2:
            assert time.monotonic() < deadline, opened
            opened += [e.client_order_id for e in broker.drain_events()]
            time.sleep(0.02)
        assert opened == ["kh1", "kh0"]  # the second went before the first was answered
        # The held one may then reach the venue with the smaller nonce: refused unexecuted,
        # and sent again. Each order is at the venue once.
        venue_ids = [o.cl_ord_id for o in fake.orders()]
        assert len(venue_ids) == len(set(venue_ids)) == 2


def test_a_second_signer_on_the_key_is_named_in_the_log_and_the_order_still_goes_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process on the same key (a second bot) took a nonce ahead of ours: Kraken
    refuses ours until our counter passes it. The broker says what is likely wrong, without
    the key, and the order reaches the venue once."""
    with _two_symbols(tmp_path) as (fake, broker):
        ahead = int(time.time() * 1000) + 1_500  # the other process's last nonce
        fake.nonces.last[fake.api_key] = ahead
        with caplog.at_level(logging.WARNING, logger="tradefleet.brokers.ccxt"):
            broker.submit(Order("ko0", "BTC/USD", Side.BUY, 0.01, OrderType.LIMIT, 40_000.0))
            deadline = time.monotonic() + 20
            while not any(e.client_order_id == "ko0" for e in broker.drain_events()):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert fake.nonces.refused >= 1
        warnings = [r.getMessage() for r in caplog.records if "nonce" in r.getMessage()]
        assert len(warnings) == 1, warnings  # said once, not once a refusal
        assert "same API key" in warnings[0] and fake.api_key not in warnings[0]
        assert len(fake.orders()) == 1
