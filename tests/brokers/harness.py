"""One harness per broker setup: the broker, a way to make its market trade through a price, and
(for the fake venues) what the venue itself holds, to compare with what the broker reported.

Setups: ``paper`` (bars fed to the paper broker), the ccxt broker against the fake Binance
spot, Binance USDⓈ-M, Bybit v5 linear and Kraken spot (``set_price`` moves the fake's last
price; its matching engine fills what crosses), and the MT5 broker on the emulated terminal
(a netting account), ``mt5`` direct and ``mt5-bridge`` through an in-process bridge server.

Each harness owns its instrument: ``symbol``, ``start_price``, ``quantity``; the cases write
prices on a BTCUSDT scale around 50,000 and ``px`` maps them onto the harness's market.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness
from tests.venues.binance.server import FakeBinance
from tests.venues.bybit.server import FakeBybit
from tests.venues.kraken.server import FakeKraken
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_orders import Dialect, bot_client_id
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_plugins.brokers.mt5_reports import child_role
from tradefleet_plugins.brokers.mt5_requests import base_comment
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
SETUPS = ("paper", "binance-spot", "binance-usdm", "bybit", "kraken", "mt5", "mt5-bridge")
VENUE_SETUPS = ("binance-spot", "binance-usdm", "bybit", "kraken")  # the ccxt broker's fakes
MT5_SETUPS = ("mt5", "mt5-bridge")
# Where each fake venue takes a new order (a fault aimed at order entry names it).
ORDER_PATH = {
    "binance-spot": "/api/v3/order",
    "binance-usdm": "/fapi/v1/order",
    "bybit": "/v5/order/create",
    "kraken": "/0/private/AddOrder",
}

Event = Fill | OrderUpdate


class Harness:
    """What every setup offers the contract tests."""

    name: str
    venue: bool = False
    broker: Any
    events: list[Event]
    symbol: str = SYMBOL
    start_price: float = START_PRICE
    quantity: float = QUANTITY
    contract_size: float = 1.0
    #: Whether the venue has a minimum order value (MT5 has a minimum volume only).
    has_min_notional: bool = True
    #: A spot account: the base asset's balance is the "position" (the fakes start with 1 BTC).
    spot: bool = False
    #: Whether a resting order's fill ends with a FILLED update (the MT5 broker's final word
    #: on a filled order is its fills: the terminal's deals, the order then reports FILLED).
    fill_ends_with_update: bool = True

    def __init__(self) -> None:
        self.events = []
        self.price = self.start_price
        self._clock = 1_700_000_000

    def px(self, price: float) -> float:
        """A case's price (written on the BTCUSDT scale around 50,000) on this market."""
        return price

    def now(self) -> int:
        return self._clock

    def order(
        self,
        client_order_id: str,
        side: Side = Side.BUY,
        quantity: float | None = None,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        **extra: Any,
    ) -> Order:
        return Order(
            client_order_id,
            self.symbol,
            side,
            self.quantity if quantity is None else quantity,
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

    def executed(self, fill: Fill) -> float:
        """What the venue executed of the order in ``fill`` (its quantity, where the account
        holds all of it)."""
        return fill.quantity

    def filled(self, client_order_id: str) -> float:
        """What the venue executed of the order, by its fills."""
        return sum(
            self.executed(e)
            for e in self.events
            if isinstance(e, Fill) and e.client_order_id == client_order_id
        )

    def held(self, client_order_id: str) -> float:
        """What the account holds of the order, by its fills (the bot's count: on Binance spot
        a buy's fee comes out of the asset bought)."""
        return sum(
            e.quantity
            for e in self.events
            if isinstance(e, Fill) and e.client_order_id == client_order_id
        )

    def wait_filled(self, client_order_id: str, quantity: float | None = None) -> None:
        wanted = self.quantity if quantity is None else quantity
        self.wait_for(lambda _e: self.filled(client_order_id) >= wanted - 1e-12)

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
            "kraken": ("kraken", "spot"),
        }[name]
        self.currency = "USDT"
        if name == "bybit":
            self.fake = FakeBybit().start()
        elif name == "kraken":
            self.fake = FakeKraken().start()
            self.symbol, self.currency = "BTC/USD", "USD"  # Kraken's XBTUSD, by ccxt's name
        else:
            self.fake = FakeBinance().start()
        self.market = "spot" if name == "binance-spot" else "usdm"
        self.spot = market_type == "spot"
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
        if name == "kraken":
            # ccxt spaces Kraken's private calls 3-6 s apart (its model of the venue's call
            # counter); the fake keeps none: 20 ms a cost unit keeps the cases' waits short.
            settings["rate_limit_ms"] = 20
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
                (self.symbol,),
                self.currency,
                100_000.0,
                self.credentials,
                wake=self._wake,
            )
        )
        return broker

    def _wake(self) -> None:
        self.wakes += 1

    def executed(self, fill: Fill) -> float:
        """Binance spot takes a buy's fee from the asset bought: the fill is what the account
        holds, and its fee (at the fill price) the rest of what the venue executed."""
        if self.name == "binance-spot" and fill.side is Side.BUY and fill.price > 0.0:
            return fill.quantity + fill.fee / fill.price
        return fill.quantity

    def _set(self, price: float) -> None:
        if self.name == "kraken":
            self.fake.set_price("XBTUSD", price)
        elif self.name == "bybit":
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
        if self.name in ("bybit", "kraken"):
            return list(self.fake.orders())
        return list(self.fake.orders(self.market))

    def venue_client_ids(self) -> list[str]:
        if self.name == "bybit":
            return [o.link_id for o in self.fake.orders() if o.link_id]
        if self.name == "kraken":
            # The venue holds the bot's ids packed into its 18 characters: named as the bot's.
            return [
                bot_client_id(o.cl_ord_id, Dialect.KRAKEN)
                for o in self.fake.orders()
                if o.cl_ord_id
            ]
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
            if self.name == "kraken":
                return [
                    t.txid
                    for t in self.fake.state.trades.values()
                    if t.account == self.fake.api_key
                ]
            engine = self.fake.state.spot if self.market == "spot" else self.fake.state.usdm
            return [
                str(t.id)
                for (account, _symbol), trades in engine.trades.items()
                if account == self.fake.api_key
                for t in trades
            ]

    def close(self) -> None:
        try:
            self.broker.close()
        finally:
            self.fake.stop()


class Mt5ContractHarness(Harness):
    """The MT5 broker on an emulated netting account, trading EURUSD in units like every broker
    (the broker sends lots: units / 100,000) (``mt5``: on the emulator; ``mt5-bridge``: through
    an in-process bridge server in front of it). The terminal is polled on ``collect`` and
    ``settle`` (the broker's own poll timer is out of the way)."""

    venue = True
    symbol = "EURUSD"
    start_price = 1.10000  # the emulator's bid; the ask is 1 pip above
    quantity = 10_000.0  # euros: 0.1 lot at the terminal
    contract_size = 100_000.0  # the instrument's units in one lot (information)
    has_min_notional = False
    fill_ends_with_update = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.transport = "bridge" if name == "mt5-bridge" else "direct"
        self.mt5 = self._connect(None)

    def _connect(self, terminal: Any) -> Mt5Harness:
        mt5 = Mt5Harness.build("netting", venue=terminal, transport=self.transport)
        mt5.bot, mt5.symbols = BOT, (self.symbol,)
        return mt5.connect()

    @property
    def broker(self) -> Any:  # type: ignore[override]
        return self.mt5.broker

    def px(self, price: float) -> float:
        return round(self.start_price * price / START_PRICE, 5)

    def trade_through(self, price: float) -> None:
        self.price = price
        self.mt5.terminal.set_price(self.symbol, price)

    def settle(self) -> None:
        self.broker.settle(timeout=30.0)

    def collect(self) -> list[Event]:
        self.settle()
        return super().collect()

    def restart(self) -> Any:
        terminal = self.mt5.terminal
        self.mt5.close()
        self.mt5 = self._connect(terminal)
        return self.broker

    def _venue_orders(self) -> list[Any]:
        terminal = self.mt5.terminal
        working = terminal.orders_get() or ()
        done = terminal.history_orders_get(0, 2**31 - 1) or ()
        return [o for o in (*working, *done) if o.magic == self.broker._magic]

    def venue_client_ids(self) -> list[str]:
        # An order's first request carries its id as comment (later legs: a leg mark).
        # The terminal's own SL/TP closes (``[tp 1.14400]``) are the children's fills.
        return [
            o.comment
            for o in self._venue_orders()
            if o.comment and base_comment(o.comment) == o.comment and child_role(o.reason) is None
        ]

    def venue_fill_ids(self) -> list[str]:
        deals = self.mt5.terminal.history_deals_get(0, 2**31 - 1) or ()
        return [str(d.ticket) for d in deals if d.symbol]

    def close(self) -> None:
        self.mt5.close()


@contextmanager
def harness_for(name: str, tmp_path: Path, **params: Any) -> Iterator[Harness]:
    harness: Harness
    if name == "paper":
        harness = PaperHarness()
    elif name in MT5_SETUPS:
        harness = Mt5ContractHarness(name)
    else:
        credentials = tmp_path / "credentials"
        credentials.mkdir(exist_ok=True)
        harness = VenueHarness(name, credentials, **params)
    try:
        yield harness
    finally:
        harness.close()


@contextmanager
def coinless_spot(tmp_path: Path) -> Iterator[VenueHarness]:
    """The fake Binance spot account funded in USDT only (no BTC), as most spot bots' are."""
    with harness_for("binance-spot", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        with harness.fake.state.lock:
            harness.fake.state.accounts[harness.fake.api_key].spot_free["BTC"] = Decimal(0)
        yield harness


def wait_children_open(harness: Harness, broker: Any, entry: str, quantity: float) -> None:
    """Wait until both of ``entry``'s bracket children work for ``quantity``, as ``broker``
    reports them (at the venue, or watched by the broker)."""
    harness.wait_for(
        lambda _e: all(
            (r := broker.query_order(f"{entry}-{role}")) is not None
            and r.status is OrderStatus.OPEN
            and r.quantity == pytest.approx(quantity)
            for role in ("sl", "tp")
        )
    )


def base_balance(harness: VenueHarness) -> tuple[Decimal, Decimal]:
    """(free, held by orders) BTC of the fake Binance spot account."""
    with harness.fake.state.lock:
        account = harness.fake.state.accounts[harness.fake.api_key]
        return (
            account.spot_free.get("BTC", Decimal(0)),
            account.spot_locked.get("BTC", Decimal(0)),
        )


def updates(events: Sequence[Event], client_order_id: str) -> list[OrderUpdate]:
    return [
        e for e in events if isinstance(e, OrderUpdate) and e.client_order_id == client_order_id
    ]
