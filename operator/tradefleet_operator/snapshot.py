"""What a runtime reports about itself, as a plain value (no gRPC types).

``runtime_client`` converts the runtime's ``StatusSnapshot`` message into a
:class:`RuntimeSnapshot`, so the status mapping and the control plan are pure functions that
import neither grpc nor kopf, and tests build snapshots without protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradefleet_operator.names import Phase


@dataclass(frozen=True, slots=True)
class RiskState:
    """One risk plugin of the bot: whether it refuses new entries, and why."""

    name: str
    locked: bool = False
    reason: str = ""
    tier: int = 0  # a circuit breaker's tier: 0 normal, 1 warn, 2 halt entries, 3 flattened


@dataclass(frozen=True, slots=True)
class CloseStuck:
    """A position the bot's own flatten could not close and will not send again (refused for a
    reason no retry changes, ``code``): a person must close it."""

    symbol: str
    code: str = ""  # "" when the venue gave none
    position: float = 0.0


@dataclass(frozen=True, slots=True)
class CloseRetrying:
    """A position the bot's own flatten asked to close that the venue refused ``refusals``
    times in a row (since ``since_ts``), for reasons a later try may pass: still sent again."""

    symbol: str
    code: str = ""
    position: float = 0.0
    refusals: int = 0
    since_ts: int = 0


@dataclass(frozen=True, slots=True)
class RuntimeSnapshot:
    """A runtime's answer to ``GetStatus`` (or to a control call), in the operator's terms.

    ``phase`` is already the operator's :class:`Phase` (the runtime's Starting is Pending, its
    Stopping is Stopped); ``last_bar_ts`` is seconds since the epoch, 0 before the first bar.
    """

    phase: Phase = Phase.PENDING
    equity: float = 0.0
    balance: float = 0.0
    currency: str = ""
    pnl_today: float = 0.0
    pnl_total: float = 0.0
    drawdown_pct: float = 0.0
    open_positions: int = 0
    open_orders: int = 0
    last_bar_ts: int = 0
    halted: bool = False
    halt_reason: str = ""
    paused: bool = False
    pause_reason: str = ""
    broker_connected: bool = False
    config_hash: str = ""
    risk: tuple[RiskState, ...] = ()
    starting_reason: str = ""  # while Starting: what the runtime waits for
    closes_stuck: tuple[CloseStuck, ...] = ()
    closes_retrying: tuple[CloseRetrying, ...] = ()

    @property
    def risk_locks(self) -> list[RiskState]:
        return [state for state in self.risk if state.locked]

    @property
    def risk_tier(self) -> int:
        """The highest tier any risk plugin reports (0 when none has tiers)."""
        return max((state.tier for state in self.risk), default=0)
