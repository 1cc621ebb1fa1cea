"""A venue's answers reach a served bot when they happen, and a slow venue delays nothing.

`ThreadedVenue` is a venue broker as the contract wants one (``venue-execution``): `submit`
hands the order to its own I/O thread and returns PENDING at once; that thread waits the venue's
latency, then reports the ack and the fill as events and wakes the engine. The bot's bars are an
hour apart and paced by the wall clock, so anything that shows up before the next bar came
through the wake, not the bar clock.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.plugin_hooks import registry_with, venue_plugins
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Instrument,
    Order,
    OrderReport,
    OrderStatus,
    OrderUpdate,
    Position,
    PositionReport,
)
from tradefleet_runtime.sdk import Strategy
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)


class ThreadedVenue:
    """Fills every order at 100 after ``latency`` seconds, on its own thread."""

    latency = 0.05

    def __init__(self, params: Any) -> None:
        self._requests: queue.Queue[Order | None] = queue.Queue()
        self._events: list[Fill | OrderUpdate] = []
        self._lock = threading.Lock()
        self._wake: Any = None
        self.sent: list[str] = []
        self._thread = threading.Thread(target=self._work, daemon=True)

    def connect(self, ctx: BrokerContext) -> None:
        self._wake = ctx.wake
        self._thread.start()

    def _work(self) -> None:
        while (order := self._requests.get()) is not None:
            time.sleep(self.latency)
            with self._lock:
                self._events.append(
                    OrderUpdate(order.client_order_id, OrderStatus.OPEN, 0, venue_order_id="v1")
                )
                self._events.append(
                    Fill(
                        order.client_order_id,
                        order.symbol,
                        order.side,
                        order.quantity,
                        100.0,
                        0.0,
                        order.created_ts,
                        "trade-" + order.client_order_id,
                    )
                )
            if self._wake is not None:
                self._wake()

    def instrument(self, symbol: str) -> Instrument:
        return Instrument(symbol)

    def submit(self, order: Order) -> OrderUpdate:
        self.sent.append(order.client_order_id)
        self._requests.put(order)
        return OrderUpdate(order.client_order_id, OrderStatus.PENDING, order.created_ts)

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        return None

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate]:
        return self.drain_events()

    def open_orders(self) -> Sequence[Order]:
        return []

    def positions(self) -> dict[str, Position]:
        return {}

    def balance(self) -> float:
        return 0.0

    def close(self) -> None:
        self._requests.put(None)

    def drain_events(self) -> Sequence[Fill | OrderUpdate]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def query_order(self, client_order_id: str) -> OrderReport | None:
        return None

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        return []

    def fill_reports(self, since_ts: int) -> Sequence[Fill]:
        return []

    def position_reports(self) -> Sequence[PositionReport]:
        return []

    def cancel_all(self, symbol: str | None) -> None:
        """Nothing rests at this venue."""

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        return None

    def is_connected(self) -> bool:
        return True


class BuyOnce(Strategy):
    def on_bar(self, bar: Bar) -> None:
        if not self.ctx.position(bar.symbol).quantity and not self.ctx.open_orders():
            self.ctx.buy(bar.symbol, 1)


HOOKS = venue_plugins(
    ("buy-once", BuyOnce), ("threaded-venue", ThreadedVenue), frozenset({"paper"})
)


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Serve the bot against a venue answering after ``latency`` seconds."""
    started: list[tuple[BotController, Any, Journal]] = []

    def start(
        latency: float, live_feed: bool = False, bars: Iterable[Bar] | None = None
    ) -> BotController:
        monkeypatch.setattr(ThreadedVenue, "latency", latency)
        controller, broker, journal = _start(tmp_path, live_feed, bars)
        started.append((controller, broker, journal))
        return controller

    yield start
    for controller, broker, journal in started:
        controller.stop()
        controller.wait(10)
        broker.close()
        journal.close()


def _start(
    tmp_path: Path, live_feed: bool = False, bars: Iterable[Bar] | None = None
) -> tuple[BotController, Any, Journal]:
    registry = registry_with(HOOKS)
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "tradefleet.io/v1alpha1",
                "kind": "TradingBot",
                "metadata": {"name": "venue-bot"},
                "spec": {
                    "mode": "paper",
                    "strategy": {"name": "buy-once"},
                    "market": {"symbols": ["BTCUSDT"], "timeframe": "1h"},
                    "broker": {"name": "threaded-venue"},
                    "capital": {"currency": "USDT", "initial": 10000},
                },
            }
        )
    )
    bot = assemble(load_manifest(manifest), registry, tmp_path)
    bot.live_feed = live_feed  # as a feed declaring `live-feed` would make it
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    if bars is None:
        bars = [Bar("BTCUSDT", HOUR, T0 + i * HOUR, 100, 101, 99, 100, 1) for i in range(3)]
    served = BotController(bot, journal, registry, speed=1.0, bars=bars)
    served.start()
    return served, bot.broker, journal


def _until(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_a_fill_reaches_the_served_bot_when_it_happens_not_at_the_next_bar(serve: Any) -> None:
    controller = serve(0.05)
    # The next bar is an hour away: the position can only come from the venue's wake.
    assert _until(lambda: controller.get_status().open_positions == 1)
    (position,) = controller.list_positions()
    assert (position.symbol, position.quantity) == ("BTCUSDT", 1.0)
    assert controller.get_status().bars == 1


def test_an_emergency_stop_lands_within_a_second_while_the_venue_takes_five(serve: Any) -> None:
    controller = serve(5.0)
    # The first bar's order is at the venue, its answer five seconds away.
    assert _until(lambda: controller.engine is not None and len(controller.list_orders()) == 1)
    started = time.monotonic()
    status = controller.emergency_stop("alice", "venue is slow")
    took = time.monotonic() - started
    assert status.phase is Phase.HALTED or controller.get_status().phase is Phase.HALTED
    assert took < 1.0, f"the halt took {took:.2f}s"
    # The venue's late answer still lands (the halt sends nothing new; it loses nothing).
    assert _until(lambda: controller.get_status().open_positions == 1, timeout=10)
    assert controller.get_status().halted


def test_bars_of_a_live_feed_are_not_paced_again(serve: Any) -> None:
    # A live feed hands over bars as they close; three an hour apart that it already has (a
    # restarted bot's missed ones) are handled at once, not one an hour.
    controller = serve(0.05, live_feed=True)
    assert _until(lambda: controller.get_status().bars == 3)


def test_an_emergency_stop_lands_within_a_second_while_the_live_feed_waits_five_on_its_venue(
    serve: Any,
) -> None:
    fetching = threading.Event()

    def slow_venue() -> Iterator[Bar]:
        yield Bar("BTCUSDT", HOUR, T0, 100, 101, 99, 100, 1)
        fetching.set()
        time.sleep(5.0)  # the venue takes five seconds to answer the next candle request
        yield Bar("BTCUSDT", HOUR, T0 + HOUR, 100, 101, 99, 100, 1)

    controller = serve(0.05, live_feed=True, bars=slow_venue())
    assert fetching.wait(5)
    started = time.monotonic()
    controller.emergency_stop("alice", "market is moving")
    took = time.monotonic() - started
    assert controller.get_status().halted
    assert took < 1.0, f"the halt took {took:.2f}s"
    # The late candle still arrives and is handled (the feed lost nothing).
    assert _until(lambda: controller.get_status().bars == 2, timeout=10)
