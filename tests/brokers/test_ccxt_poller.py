"""The ccxt broker's poller stops when its loop is shut down, also when a wake-up and the
cancel arrive together (Python 3.11's ``asyncio.wait_for`` returns the wake-up's result and
drops such a cancel: the poller then polled on against closed clients until its loop was
destroyed under it)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker


def test_a_cancel_that_meets_a_wake_up_still_stops_the_poller() -> None:
    async def scenario() -> bool:
        polls: list[int] = []

        async def poll() -> None:
            polls.append(1)

        broker = CcxtBroker.__new__(CcxtBroker)
        broker._poke = asyncio.Event()
        broker.params = SimpleNamespace(poll_interval_s=30.0)  # type: ignore[assignment]
        broker._poll = poll  # type: ignore[method-assign]
        task = asyncio.create_task(broker._poll_forever())
        await asyncio.sleep(0)  # waiting for a wake-up
        broker._poke.set()
        await asyncio.sleep(0)  # the wake-up lands...
        task.cancel()  # ... and the shutdown's cancel with it
        done, _pending = await asyncio.wait([task], timeout=1.0)
        if not done:
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
        return bool(done)

    assert asyncio.run(scenario())
