"""``quotes-prices`` on the MT5 broker, asked on the engine thread: the tick read takes its turn
behind the terminal jobs already queued (a close is never held up by it), the engine thread
waits for it a bounded time and, while a read still waits its turn, not again; a tick older
than ``QUOTE_MAX_AGE_S`` by the trade server's clock is no current price."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness
from tradefleet_plugins.brokers.mt5_broker import _Job, tick_age
from tradefleet_runtime.sdk import Side

pytestmark = pytest.mark.usefixtures("transport")


def _record_calls(harness: Mt5Harness) -> list[str]:
    """The terminal functions the broker calls from now on, in order."""
    broker = harness.broker
    calls: list[str] = []
    call = broker._call

    def recorded(function: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(function)
        return call(function, *args, **kwargs)

    broker._call = recorded  # type: ignore[method-assign]
    return calls


def test_the_tick_read_waits_its_turn_behind_a_queued_close(netting: Mt5Harness) -> None:
    netting.venue.set_price("EURUSD", 1.10500, 1.10512)
    broker = netting.broker
    calls = _record_calls(netting)
    running = threading.Event()

    def busy() -> None:  # the job the terminal is on when the price is asked
        running.set()
        time.sleep(0.3)

    broker._queue(_Job(busy))
    broker._queue(_Job(lambda: broker._call("symbols_total")))
    assert running.wait(2.0)
    price = broker.market_price("EURUSD", Side.BUY)
    assert price == pytest.approx(1.10512)
    reads = [c for c in calls if c in ("symbols_total", "symbol_info_tick")]
    assert reads[:2] == ["symbols_total", "symbol_info_tick"], calls


def test_a_busy_terminal_costs_one_bounded_wait_not_one_per_ask(netting: Mt5Harness) -> None:
    netting.venue.set_price("EURUSD", 1.10500, 1.10512)
    broker = netting.broker
    release = threading.Event()
    broker._queue(_Job(lambda: release.wait(10.0)))  # a terminal stuck in a job
    try:
        began = time.monotonic()
        assert broker.market_price("EURUSD", Side.BUY) is None
        first = time.monotonic() - began
        began = time.monotonic()
        assert broker.market_price("EURUSD", Side.SELL) is None
        second = time.monotonic() - began
    finally:
        release.set()
    assert first == pytest.approx(broker._TICK_WAIT_S, abs=0.3)
    assert second < 0.05  # the first read still waits its turn: no second wait
    deadline = time.monotonic() + 5.0
    while (price := broker.market_price("EURUSD", Side.SELL)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert price == pytest.approx(1.10500)


def test_a_tick_older_than_the_max_age_is_no_price(netting: Mt5Harness) -> None:
    """The emulated server runs on UTC (``server_offset_s`` 0): a tick stamped a minute ago."""
    netting.venue.set_price("EURUSD", 1.10500, 1.10512, time=time.time() - 60.0)
    assert netting.broker.market_price("EURUSD", Side.BUY) is None
    netting.venue.set_price("EURUSD", 1.10600, 1.10612, time=time.time())
    assert netting.broker.market_price("EURUSD", Side.BUY) == pytest.approx(1.10612)


@pytest.mark.parametrize(
    ("stamp_ms", "host_s", "offset_s", "age"),
    [
        (1_000_000_000_000, 1_000_000_003.0, 0, 3.0),
        (1_000_000_000_000, 1_000_000_010.5, 0, 10.5),
        # A server on UTC+2 stamps its ticks two hours ahead of UTC.
        (1_000_007_200_000, 1_000_000_002.0, 7_200, 2.0),
        (1_000_000_000_000, 999_999_999.0, 0, -1.0),  # the host's clock a second behind
        (0, 1_000_000_000.0, 0, None),  # no stamp
        # Hours apart: server_offset_s is not the server's zone, or the market is shut (a
        # weekend's last tick): the clocks cannot tell the tick's age.
        (1_000_007_200_000, 1_000_000_002.0, 0, None),
        (1_000_000_000_000, 1_000_172_800.0, 0, None),
    ],
)
def test_tick_age(stamp_ms: int, host_s: float, offset_s: int, age: float | None) -> None:
    assert tick_age(stamp_ms, host_s, offset_s) == (None if age is None else pytest.approx(age))
