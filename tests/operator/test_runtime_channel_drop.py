"""Dropping a runtime's channel (a call found nobody listening, or the bot was deleted) lets
the calls still in flight on it end on their own: closed at once, it cancelled them — a status
timer's failed GetStatus cancelled a deletion's EmergencyStop to the same runtime."""

from __future__ import annotations

import asyncio

import grpc

from tradefleet_operator.runtime_client import RuntimeClients


async def _slow_echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(0.5)
    return request


def test_a_call_in_flight_outlives_the_drop_of_its_channel() -> None:
    async def scenario() -> bytes:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "probe.Probe", {"Echo": grpc.unary_unary_rpc_method_handler(_slow_echo)}
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        clients = RuntimeClients(timeout=3.0)
        address = f"127.0.0.1:{port}"
        try:
            call = clients.channel(address).unary_unary("/probe.Probe/Echo")(b"stop", timeout=3)
            await asyncio.sleep(0.1)  # on its way
            await clients.drop(address)  # another call found the runtime gone, say
            assert clients.channel(address) is not None  # the next call gets a new channel
            answer: bytes = await call
            return answer
        finally:
            await clients.close()
            await server.stop(None)

    assert asyncio.run(scenario()) == b"stop"
