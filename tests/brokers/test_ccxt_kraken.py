"""The ccxt broker's Kraken dialect where a second symbol matters: Kraken's lists (closed
orders, own trades) hold every market at once, so a report over several symbols reads them
once, not once a symbol (each page is a rate-limited call of several seconds there)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.venues.kraken.server import FakeKraken
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.sdk import BrokerContext, Order, Side

SYMBOLS = ("BTC/USD", "ETH/USD")


def test_reports_over_two_symbols_read_each_kraken_list_once(tmp_path: Path) -> None:
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
    finally:
        broker.close()
        fake.stop()
