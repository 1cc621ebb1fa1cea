"""The ccxt broker's Kraken dialect where a second symbol matters: Kraken's lists (open and
closed orders, own trades) hold every market at once, so a report or a poll cycle over several
symbols reads each once, not once a symbol (each page is a rate-limited call of several
seconds there)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
