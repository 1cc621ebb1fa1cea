"""One harness per broker setup: the broker, a way to make its market trade through a price, and
(for the fake venues) what the venue itself holds, to compare with what the broker reported.

Setups: ``paper`` (bars fed to the paper broker), and the ccxt broker against the fake Binance
spot, Binance USDⓈ-M and Bybit v5 linear (``set_price`` moves the fake's last price; its
matching engine fills what crosses).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.venues.binance.server import FakeBinance
from tests.venues.bybit.server import FakeBybit
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import InstrumentParams, PaperBrokerParams
from tradefleet_runtime.sdk import (
    Bar,
    BrokerContext,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    bot_prefix,
)

BOT = "contract"
PREFIX = bot_prefix(BOT)
SYMBOL = "BTCUSDT"
START_PRICE = 50_000.0
QUANTITY = 0.01
SETUPS = ("paper", "binance-spot", "binance-usdm", "bybit")
VENUE_SETUPS = SETUPS[1:]

Event = Fill | OrderUpdate


class Harness:
    """What every setup offers the contract tests."""

    name: str
    venue: bool = False
    broker: Any
    events: list[Event]

    def __init__(self) -> None:
        self.events = []
        self.price = START_PRICE
        self._clock = 1_700_000_000

    def now(self) -> int:
        return self._clock

    def order(
        self,
        client_order_id: str,
        side: Side = Side.BUY,
        quantity: float = QUANTITY,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        **extra: Any,
    ) -> Order:
        return Order(
            client_order_id,
            SYMBOL,
            side,
            quantity,
            order_type,
            price,
            created_ts=self.now(),
            **extra,
        )

    def trade_through(self, price: float) -> None:
        raise NotImplementedError

    def settle(self) -> None:
        """Let a market order execute (the paper broker fills it at the next bar's open)."""

    def collect(self) -> list[Event]:
        fresh = list(self.broker.drain_events())
        self.events += fresh
        return fresh

    def wait_for(self, done: Callable[[list[Event]], bool], timeout: float = 8.0) -> list[Event]:
        """Collect events until ``done(all events so far)``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.collect()
            if done(self.events):
                return self.events
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: timed out; events so far: {self.events}")
            time.sleep(0.02)

    def filled(self, client_order_id: str) -> float:
        return sum(
            e.quantity
            for e in self.events
            if isinstance(e, Fill) and e.client_order_id == client_order_id
        )

    def wait_filled(self, client_order_id: str, quantity: float = QUANTITY) -> None:
        self.wait_for(lambda _e: self.filled(client_order_id) >= quantity - 1e-12)

    def final(self, client_order_id: str) -> OrderUpdate | None:
        for event in self.events:
            if (
                isinstance(event, OrderUpdate)
                and event.client_order_id == client_order_id
                and event.status.is_final
            ):
                return event
        return None

    def wait_final(self, client_order_id: str) -> OrderUpdate:
        self.wait_for(lambda _e: self.final(client_order_id) is not None)
        final = self.final(client_order_id)
        assert final is not None
        return final

    def answer(self, update: OrderUpdate) -> OrderUpdate:
        """The broker's answer to a submit: at once (paper), or the ack event (venues)."""
        if update.status is not OrderStatus.PENDING:
            return update
        cid = update.client_order_id

        def answered(events: list[Event]) -> bool:
            return any(isinstance(e, OrderUpdate) and e.client_order_id == cid for e in events)

        self.wait_for(answered)
        return next(
            e for e in self.events if isinstance(e, OrderUpdate) and e.client_order_id == cid
        )

    def restart(self) -> Any:
        """A new broker object on the same account (the old one closed, orders left)."""
        raise NotImplementedError

    # venue side (fakes only)
    def venue_client_ids(self) -> list[str]:
        return []

    def venue_fill_ids(self) -> list[str]:
        return []

    def close(self) -> None:
        self.broker.close()


class PaperHarness(Harness):
    name = "paper"

    def __init__(self) -> None:
        super().__init__()
        limits = InstrumentParams(
            tick_size=0.01, lot_step=0.001, min_quantity=0.001, min_notional=5.0
        )
        self.broker = PaperBroker(
            PaperBrokerParams(fee_bps=5, leverage=10, instruments={SYMBOL: limits})
        )
        self.broker.connect(BrokerContext(BOT, "paper", (SYMBOL,), "USDT", 100_000.0))

    def trade_through(self, price: float) -> None:
        bar = Bar(
            SYMBOL,
            60,
            self._clock,
            self.price,
            max(self.price, price),
            min(self.price, price),
            price,
            1.0,
        )
        self._clock += 60
        self.price = price
        self.events += self.broker.on_bar(bar)

    def settle(self) -> None:
        self.trade_through(self.price)

    def close(self) -> None:
        self.broker.close()


class VenueHarness(Harness):
    venue = True
    fake: Any

    def __init__(self, name: str, credentials: Path, **params: Any) -> None:
        super().__init__()
        self.name = name
        self.credentials = credentials
        exchange, market_type = {
            "binance-spot": ("binance", "spot"),
            "binance-usdm": ("binanceusdm", "linear"),
            "bybit": ("bybit", "linear"),
        }[name]
        if name == "bybit":
            self.fake = FakeBybit().start()
        else:
            self.fake = FakeBinance().start()
        self.market = "spot" if name == "binance-spot" else "usdm"
        self._set(START_PRICE)
        (credentials / "apiKey").write_text(self.fake.api_key)
        (credentials / "secret").write_text(self.fake.secret)
        settings: dict[str, Any] = {
            "exchange": exchange,
            "market_type": market_type,
            "api_url": self.fake.url,
            "poll_interval_s": 0.05,
            "timeout_ms": 1500,
            "backoff_base_s": 0.05,
            "backoff_max_s": 0.5,
        }
        settings.update(params)
        self.params = CcxtBrokerParams(**settings)
        self.wakes = 0
        self.broker = self._connect()

    def _connect(self) -> CcxtBroker:
        broker = CcxtBroker(self.params)
        broker.connect(
            BrokerContext(
                BOT,
                "live",
                (SYMBOL,),
                "USDT",
                100_000.0,
                self.credentials,
                wake=self._wake,
            )
        )
        return broker

    def _wake(self) -> None:
        self.wakes += 1

    def _set(self, price: float) -> None:
        if self.name == "bybit":
            self.fake.set_price(SYMBOL, price)
        else:
            self.fake.set_price(SYMBOL, price, market=self.market)

    def trade_through(self, price: float) -> None:
        self.price = price
        self._set(price)

    def restart(self) -> CcxtBroker:
        self.broker.close()
        self.broker = self._connect()
        return self.broker

    def venue_orders(self) -> list[Any]:
        if self.name == "bybit":
            return list(self.fake.orders())
        return list(self.fake.orders(self.market))

    def venue_client_ids(self) -> list[str]:
        if self.name == "bybit":
            return [o.link_id for o in self.fake.orders() if o.link_id]
        ids = [o.client_order_id for o in self.fake.orders(self.market)]
        if self.market == "usdm":
            with self.fake.state.lock:
                algos = list(self.fake.state.usdm.algo_orders.values())
            # A triggered conditional order places a regular order under the same id: count
            # each id once per kind.
            placed = {a.client_algo_id for a in algos if a.actual_order_id is not None}
            ids = [i for i in ids if i not in placed] + [a.client_algo_id for a in algos]
        return ids

    def venue_fill_ids(self) -> list[str]:
        with self.fake.state.lock:
            if self.name == "bybit":
                return [x.exec_id for x in self.fake.state.executions[self.fake.api_key]]
            engine = self.fake.state.spot if self.market == "spot" else self.fake.state.usdm
            return [
                str(t.id)
                for (account, _symbol), trades in engine.trades.items()
                if account == self.fake.api_key
                for t in trades
            ]

    def assert_venue_matches(self) -> None:
        """No client id twice at the venue; every venue fill reported once by the broker."""
        self.collect()
        counts = Counter(self.venue_client_ids())
        doubled = [cid for cid, n in counts.items() if n > 1]
        assert not doubled, f"client ids placed twice at the venue: {doubled}"
        # Every order the venue holds was reported by the broker (a cancel-replace amend's
        # replacement, ``<id>-a<n>``, under the bot's own id).
        answered = {e.client_order_id for e in self.events if isinstance(e, OrderUpdate)}
        unreported = {cid for cid in counts if re.sub(r"-a\d+$", "", cid) not in answered}
        assert not unreported, f"venue orders the broker never reported: {unreported}"
        reported = [e.fill_id for e in self.events if isinstance(e, Fill)]
        assert len(reported) == len(set(reported)), f"a fill reported twice: {reported}"
        assert sorted(reported) == sorted(self.venue_fill_ids())

    def close(self) -> None:
        try:
            self.broker.close()
        finally:
            self.fake.stop()


@contextmanager
def harness_for(name: str, tmp_path: Path, **params: Any) -> Iterator[Harness]:
    harness: Harness
    if name == "paper":
        harness = PaperHarness()
    else:
        credentials = tmp_path / "credentials"
        credentials.mkdir(exist_ok=True)
        harness = VenueHarness(name, credentials, **params)
    try:
        yield harness
    finally:
        harness.close()


def updates(events: Sequence[Event], client_order_id: str) -> list[OrderUpdate]:
    return [
        e for e in events if isinstance(e, OrderUpdate) and e.client_order_id == client_order_id
    ]
