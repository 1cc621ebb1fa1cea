"""A live ccxt bot's leverage-capped entry leaves room for the venue's taker fee.

Seen in a Kraken spot rehearsal: ``fixed-fractional`` with ``max_leverage: 1`` sized an entry at
equity ÷ price, which the venue refuses ("EOrder:Insufficient funds": a buy holds its cost plus
the 0.26% taker fee). The sizer leaves room for the fee the broker states on its instrument; the
ccxt broker states ccxt's taker rate for the market, as the paper broker states its ``fee_bps``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.venues.kraken.server import FakeKraken
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_orders import instrument_of
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.sdk import (
    BrokerContext,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    round_quantity,
)

USD = 10_000.0
_DONE = (OrderStatus.FILLED, OrderStatus.REJECTED)
PRICE = 50_000.0


@pytest.fixture
def kraken(tmp_path: Path) -> Iterator[tuple[FakeKraken, CcxtBroker]]:
    fake = FakeKraken(balances={"ZUSD": USD}, prices={"XXBTZUSD": PRICE}).start()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "apiKey").write_text(fake.api_key)
    (credentials / "secret").write_text(fake.secret)
    params = CcxtBrokerParams(
        exchange="kraken", api_url=fake.url, poll_interval_s=0.05, rate_limit_ms=10
    )
    broker = CcxtBroker(params)
    try:
        broker.connect(BrokerContext("fee-room", "live", ("BTC/USD",), "USD", USD, credentials))
        yield fake, broker
    finally:
        broker.close()
        fake.stop()


def test_the_instrument_states_the_markets_taker_rate() -> None:
    market = {"taker": 0.0026, "percentage": True, "precision": {}, "limits": {}}
    assert instrument_of("BTC/USD", market).taker_fee == 0.0026
    assert instrument_of("BTC/USD", {**market, "percentage": False}).taker_fee == 0.0
    assert instrument_of("BTC/USD", {**market, "taker": None}).taker_fee == 0.0


def test_a_1x_spot_entry_the_sizer_caps_is_taken_by_kraken(
    kraken: tuple[FakeKraken, CcxtBroker],
) -> None:
    _, broker = kraken
    instrument = broker.instrument("BTC/USD")
    assert instrument.taker_fee == pytest.approx(0.0026)
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.2, max_leverage=1.0))
    ctx = RiskContext(0, USD, USD, USD, USD, {}, {"BTC/USD": PRICE}, instrument)
    decision = sizer.check(OrderIntent("BTC/USD", Side.BUY, None, stop_loss=49_000.0), ctx)
    assert decision.quantity is not None
    quantity = round_quantity(decision.quantity, instrument.lot_step)
    assert quantity * PRICE * 1.0026 <= USD
    update = broker.submit(
        Order("fee-room-1", "BTC/USD", Side.BUY, quantity, OrderType.MARKET, tag="entry")
    )
    assert update.status is not OrderStatus.REJECTED, update.reason
    answers: list[OrderUpdate] = []
    deadline = time.monotonic() + 8.0
    while not any(a.status in _DONE for a in answers) and time.monotonic() < deadline:
        answers += [e for e in broker.drain_events() if isinstance(e, OrderUpdate)]
        time.sleep(0.02)
    assert [a.status for a in answers if a.status in _DONE] == [OrderStatus.FILLED], [
        (a.status, a.reason) for a in answers
    ]
