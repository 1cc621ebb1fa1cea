"""The gRPC client the operator and the fleet command use to reach bot runtimes.

One grpc.aio channel per runtime address, shared by every call to that runtime. Reads
(``GetStatus``) take the bot's **read** token; only control calls (Pause, Resume, EmergencyStop,
ResetRiskLock) take the **control** token, so status polling needs no power to steer a bot.
Answers come back as plain :class:`~.snapshot.RuntimeSnapshot` values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
import grpc.aio

from tradefleet_operator.control import Call
from tradefleet_operator.names import Phase
from tradefleet_operator.snapshot import CloseRetrying, CloseStuck, RiskState, RuntimeSnapshot
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc

#: Who the runtime journals as the caller of a control call.
ACTOR = "tradefleet-operator"

RUNTIME_PHASES: Mapping[int, Phase] = {
    pb.PHASE_STARTING: Phase.PENDING,
    pb.PHASE_RUNNING: Phase.RUNNING,
    pb.PHASE_PAUSED: Phase.PAUSED,
    pb.PHASE_HALTED: Phase.HALTED,
    pb.PHASE_DEGRADED: Phase.DEGRADED,
    pb.PHASE_STOPPING: Phase.STOPPED,
    pb.PHASE_STOPPED: Phase.STOPPED,
    pb.PHASE_FAILED: Phase.FAILED,
}

_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

#: Calls in flight at once before a new call waits for one to end. Each call in flight holds
#: ~24 KB of gRPC core memory that the process keeps once touched: a fleet stop of 1,000 bots
#: at once sent 1,000 EmergencyStops together and raised the operator's peak by ~24-40 MB
#: (issue 19, "memory at scale").
MAX_IN_FLIGHT = 64
#: A waiting call keeps waiting while calls end (slots turn over, however slowly); when no
#: call has ended for this long, every slot is held by runtimes that do not answer (each call
#: has a deadline of seconds) and the call goes out without a slot: a halt never queues for
#: long behind unresponsive runtimes.
SLOT_WAIT_S = 2.0


class RuntimeCallError(Exception):
    """A call to a runtime failed; ``unreachable`` when it did not answer at all."""

    def __init__(self, code: str, message: str, *, unreachable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.unreachable = unreachable


def snapshot_from_pb(message: pb.StatusSnapshot) -> RuntimeSnapshot:
    """The runtime's ``StatusSnapshot`` message as a plain value."""
    return RuntimeSnapshot(
        phase=RUNTIME_PHASES.get(message.phase, Phase.PENDING),
        equity=message.equity,
        balance=message.balance,
        currency=message.currency,
        pnl_today=message.pnl_today,
        pnl_total=message.pnl_total,
        drawdown_pct=message.drawdown_pct,
        open_positions=message.open_positions,
        open_orders=message.open_orders,
        last_bar_ts=message.last_bar_ts,
        halted=message.halted,
        halt_reason=message.halt_reason,
        paused=message.paused,
        pause_reason=message.pause_reason,
        broker_connected=message.broker_connected,
        starting_reason=message.starting_reason,
        config_hash=message.config_hash,
        risk=tuple(RiskState(r.name, r.locked, r.reason, r.tier) for r in message.risk),
        closes_stuck=tuple(CloseStuck(c.symbol, c.code, c.position) for c in message.closes_stuck),
        closes_retrying=tuple(
            CloseRetrying(c.symbol, c.code, c.position, c.refusals, c.since_ts)
            for c in message.closes_retrying
        ),
    )


class RuntimeClients:
    """One grpc.aio channel per runtime address, shared by every call to that runtime."""

    def __init__(self, timeout: float = 3.0) -> None:
        self.timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}
        # Channels dropped while calls may still run on them, closing with a grace period.
        self._closing: set[asyncio.Future[None]] = set()
        self.calls = 0
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._last_release = 0.0  # loop time a call last gave its slot back

    def channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            # A runtime that is not listening yet (its pod is starting) must be seen as soon as
            # it listens: gRPC's default reconnect backoff grows to 120 s, which delayed a new
            # bot's first status by up to a minute (issue 19, item 7). Capped at 1 s here, and
            # a channel whose call found nobody listening is dropped (:meth:`_call`).
            channel = grpc.aio.insecure_channel(
                address,
                options=[
                    ("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.min_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 1000),
                ],
            )
            self._channels[address] = channel
        return channel

    async def drop(self, address: str) -> None:
        """Forget the address's channel: the next call opens a new one. Calls still in flight
        on it end on their own (each has its deadline): closed at once, the channel cancelled
        them — a status timer's failed GetStatus cancelled a deletion's EmergencyStop to the
        same runtime, and kopf put the finalizer off."""
        channel = self._channels.pop(address, None)
        if channel is not None:
            closing = asyncio.ensure_future(channel.close(grace=self.timeout))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        closing, self._closing = list(self._closing), set()
        await asyncio.gather(
            *(channel.close() for channel in channels), *closing, return_exceptions=True
        )

    async def _call(
        self, address: str, token: str, method: str, request: Any, timeout: float | None = None
    ) -> RuntimeSnapshot:
        # The generated stub is typed for sync channels; on an aio channel each call is awaitable.
        stub: Any = pb_grpc.RuntimeServiceStub(self.channel(address))  # type: ignore[arg-type]
        self.calls += 1
        slot = await self._take_slot()
        try:
            answer: pb.StatusSnapshot = await getattr(stub, method)(
                request,
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=timeout or self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code is grpc.StatusCode.UNAVAILABLE:
                await self.drop(address)  # the next call starts afresh, not in a backoff
            raise RuntimeCallError(
                code.name, error.details() or "", unreachable=code in _UNREACHABLE
            ) from error
        finally:
            if slot:
                self._give_slot()
        return snapshot_from_pb(answer)

    async def _take_slot(self) -> bool:
        """One of the ``MAX_IN_FLIGHT`` slots (True), or none (False: the call goes out
        without one) once no call has ended for ``SLOT_WAIT_S``."""
        if not self._in_flight.locked():
            await self._in_flight.acquire()  # free: returns at once
            return True
        loop = asyncio.get_running_loop()
        waiting = loop.time()
        acquire = asyncio.ensure_future(self._in_flight.acquire())
        try:
            while True:
                await asyncio.wait({acquire}, timeout=SLOT_WAIT_S)
                if acquire.done():
                    return True
                if loop.time() - max(waiting, self._last_release) >= SLOT_WAIT_S:
                    return False  # the slots are stuck
        finally:
            if not acquire.done():
                acquire.cancel()  # a slot granted meanwhile goes back (asyncio.Semaphore)

    def saturated(self) -> bool:
        """Every slot is taken: a call made now waits."""
        return self._in_flight.locked()

    def _give_slot(self) -> None:
        self._last_release = asyncio.get_running_loop().time()
        self._in_flight.release()

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        """``GetStatus`` with the bot's read token."""
        return await self._call(address, read_token, "GetStatus", pb.GetStatusRequest())

    async def invoke(self, address: str, control_token: str, call: Call) -> RuntimeSnapshot:
        """Pause, Resume or EmergencyStop with the bot's control token."""
        request: Any
        if call.method == "Pause":
            request = pb.PauseRequest(reason=call.reason, actor=ACTOR)
        elif call.method == "Resume":
            request = pb.ResumeRequest(
                reason=call.reason,
                actor=ACTOR,
                pause_only=call.pause_only,
                halt_only=call.halt_only,
            )
        elif call.method == "EmergencyStop":
            request = pb.EmergencyStopRequest(reason=call.reason, flatten=call.flatten, actor=ACTOR)
        else:
            raise ValueError(f"unknown control call {call.method}")
        # A control call may queue behind a fleet's worth of others: a longer deadline than a
        # status read, rather than a halt retried a whole timer interval later.
        return await self._call(
            address, control_token, call.method, request, max(self.timeout, 10.0)
        )

    async def emergency_stop(
        self, address: str, control_token: str, reason: str, flatten: bool, timeout: float
    ) -> RuntimeSnapshot:
        """EmergencyStop with its own deadline (deletion waits for it, bounded)."""
        request = pb.EmergencyStopRequest(reason=reason, flatten=flatten, actor=ACTOR)
        return await self._call(address, control_token, "EmergencyStop", request, timeout)

    async def reset_risk_lock(
        self, address: str, control_token: str, plugin: str, reason: str
    ) -> RuntimeSnapshot:
        request = pb.ResetRiskLockRequest(plugin=plugin, reason=reason, actor=ACTOR)
        return await self._call(address, control_token, "ResetRiskLock", request)
