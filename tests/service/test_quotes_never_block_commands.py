"""Between bars every command runs on the engine thread, one after another, and a caller waits
``COMMAND_TIMEOUT_S`` (10 s) for its answer. A market entry decided then asks its broker for the
current price (``quotes-prices``) on that thread: an emergency stop queued behind a burst of
signals must not wait for their prices while the venue's ticker hangs.

The bot: a paper bot trading ``external-signal`` market entries on the bundled EURUSD hours,
its broker the paper broker quoting the prices of a ccxt broker connected to the fake Binance
USDⓈ-M, whose ticker does not answer (15 s) and whose last price has aged out. The entries are
refused for want of a current price, each at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness, harness_for
from tests.service.paper_bots import (
    SIGNALS,
    eurusd_signal,
    paper_controller,
    paper_manifest,
    short_eurusd,
    wait_for_a_bar,
)
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.capabilities import QUOTE_MAX_AGE_S
from tradefleet_runtime.engine.risk_snapshot import NO_CURRENT_PRICE
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Side
from tradefleet_runtime.service.api import ControlError

SIGNALS_AHEAD = 5


class VenuePrices(PaperBroker):
    """The paper broker, quoting what the ccxt broker on ``venue`` quotes for its symbol."""

    def __init__(self, venue: VenueHarness) -> None:
        super().__init__(PaperBrokerParams.model_validate({}))
        self.venue = venue

    def market_price(self, symbol: str, side: Side) -> float | None:
        quote: float | None = self.venue.broker.market_price(self.venue.symbol, side)
        return quote


@pytest.fixture(name="hung")
def _hung(tmp_path: Path) -> Iterator[VenueHarness]:
    """The ccxt broker once its price was read, then the venue's ticker hangs and the price
    ages out."""
    with harness_for("binance-usdm", tmp_path, timeout_ms=20_000) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        deadline = time.monotonic() + 5.0
        while broker.market_price(harness.symbol, Side.BUY) is None:
            assert time.monotonic() < deadline, "no price was ever read"
            time.sleep(0.05)
        harness.fake.faults.inject(
            "latency", path="/fapi/v1/ticker/24hr", delay_ms=15_000, times=None
        )
        time.sleep(3.0)  # the next round's read is stuck
        for market, (began, ticker) in list(broker._quotes.items()):
            broker._quotes[market] = (began - QUOTE_MAX_AGE_S - 1.0, ticker)
        yield harness


def test_an_emergency_stop_behind_signals_waits_for_no_price(
    tmp_path: Path, hung: VenueHarness
) -> None:
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    market = {**SIGNALS, "params": {**SIGNALS["params"], "entry_order": "market"}}
    controller = paper_controller(
        paper_manifest("quotes-halt", market, short_eurusd(tmp_path)), journal
    )
    controller.bot.broker = VenuePrices(hung)
    controller.start()
    try:
        wait_for_a_bar(controller)
        senders = [
            threading.Thread(
                target=lambda i=i: _ignore(lambda: controller.submit_signal(eurusd_signal(f"s{i}")))
            )
            for i in range(SIGNALS_AHEAD)
        ]
        for sender in senders:
            sender.start()
        time.sleep(0.3)  # the signals are queued first, as a burst from a webhook sender is
        began = time.monotonic()
        controller.emergency_stop("ops", "the venue looks wrong", flatten=True)
        took = time.monotonic() - began
        for sender in senders:
            sender.join(30)
        halted = controller.engine is not None and controller.engine.halted
    finally:
        controller.stop()
        controller.wait(30)
    refused = journal.query(
        "SELECT COUNT(*) FROM risk_decisions WHERE plugin = 'engine.price' AND code = ?",
        NO_CURRENT_PRICE,
    )
    journal.close()
    assert halted
    assert took < 1.5, f"the emergency stop waited {took:.1f} s behind the signals' prices"
    assert refused == [(SIGNALS_AHEAD,)]  # each entry refused for want of a current price


def _ignore(call: object) -> None:
    with contextlib.suppress(ControlError):
        call()  # type: ignore[operator]
