"""How many gRPC calls to runtimes the operator has in flight at once (issue 19, memory).

Each call in flight holds gRPC core memory the process keeps: past ``MAX_IN_FLIGHT`` a call
waits for one to end, for as long as calls keep ending; when none has ended for
``SLOT_WAIT_S`` (every slot held by runtimes that do not answer), it goes out without a slot,
so a halt never queues for long behind unresponsive runtimes.
"""

from __future__ import annotations

import asyncio

import pytest

from tradefleet_operator import runtime_client
from tradefleet_operator.runtime_client import RuntimeClients


def test_a_call_past_the_cap_waits_for_a_free_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_client, "MAX_IN_FLIGHT", 2)
    monkeypatch.setattr(runtime_client, "SLOT_WAIT_S", 5.0)

    async def scenario() -> None:
        clients = RuntimeClients()
        assert await clients._take_slot() and await clients._take_slot()
        third = asyncio.create_task(clients._take_slot())
        await asyncio.sleep(0.01)
        assert not third.done()  # both slots taken: it waits
        clients._give_slot()  # one call ended
        assert await third  # and the waiting call took its slot

    asyncio.run(scenario())


def test_a_call_keeps_waiting_while_calls_end_however_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_client, "MAX_IN_FLIGHT", 1)
    monkeypatch.setattr(runtime_client, "SLOT_WAIT_S", 0.2)

    async def scenario() -> None:
        clients = RuntimeClients()
        assert await clients._take_slot()
        ahead = [asyncio.create_task(clients._take_slot()) for _ in range(5)]
        await asyncio.sleep(0)
        last = asyncio.create_task(clients._take_slot())
        for task in ahead:  # one call ends every 0.05 s: six ends before ``last`` gets a turn
            await asyncio.sleep(0.05)
            clients._give_slot()
            assert await task
        await asyncio.sleep(0.05)
        clients._give_slot()
        assert await last  # waited longer than SLOT_WAIT_S, for a slot all the same

    asyncio.run(scenario())


def test_a_call_goes_out_without_a_slot_when_the_slots_are_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_client, "MAX_IN_FLIGHT", 1)
    monkeypatch.setattr(runtime_client, "SLOT_WAIT_S", 0.01)

    async def scenario() -> None:
        clients = RuntimeClients()
        assert await clients._take_slot()  # held by a runtime that does not answer
        assert not await clients._take_slot()  # not held back once nothing ends
        clients._give_slot()
        assert await clients._take_slot()  # no slot was lost to the give-up
        assert clients._in_flight.locked()

    asyncio.run(scenario())
