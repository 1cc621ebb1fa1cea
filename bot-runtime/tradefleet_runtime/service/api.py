"""What the service's front ends (gRPC, HTTP webhook, control CLI) see of a running bot.

``ControlPlane`` is the one interface they use. Its implementation
(:class:`~tradefleet_runtime.service.controller.BotController`) applies every change on the
engine's own thread, so callers never touch engine state: reads return immutable snapshots,
writes return once the engine has applied them (or refused them with a reason).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Annotated, Final, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from tradefleet_runtime.service import limits
from tradefleet_runtime.service.event_kinds import EventKind as EventKind
from tradefleet_runtime.signals import Direction as Direction
from tradefleet_runtime.signals import Signal as Signal


class Phase(StrEnum):
    STARTING = "Starting"  # loading plugins, reconciling with the broker
    RUNNING = "Running"
    PAUSED = "Paused"  # no new entries; exits and protective orders still work
    HALTED = "Halted"  # emergency stop: nothing new is sent until resumed
    # Start-up reconciliation found the venue and the journal disagreeing: nothing is sent
    # until a person has looked and resumed the bot (or restarted it after fixing the account).
    DEGRADED = "Degraded"
    STOPPING = "Stopping"
    STOPPED = "Stopped"  # the data ended or the bot was stopped
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class RiskPluginState:
    name: str
    version: str
    locked: bool = False
    reason: str = ""
    tier: int = 0  # escalation tier of a plugin with tiers (circuit-breaker 0..3), else 0


@dataclass(frozen=True, slots=True)
class PluginInfo:
    kind: str
    name: str
    version: str


@dataclass(frozen=True, slots=True)
class QualityFigure:
    """One execution-quality measure over the rolling window, with its capability indices.

    ``cp``/``cpk`` are ``None`` until the window holds enough samples or when the spec sets no
    limits for the measure.
    """

    name: str  # win_rate, slippage_bps, bar_to_order_ms, reward_risk
    samples: int
    mean: float
    stddev: float
    cp: float | None = None
    cpk: float | None = None


@dataclass(frozen=True, slots=True)
class SymbolExposure:
    """One open net position for the exposure gauges: signed quantity and notional at the mark
    (in the account currency, as the engine's equity counts it)."""

    symbol: str
    quantity: float
    notional: float


@dataclass(frozen=True, slots=True)
class CloseStuck:
    """A position a risk plugin's or the stop policy's flatten could not close and will not
    send again: the venue refused the close for a reason no retry changes. A person must close
    it (``tradefleet stop ADDRESS --flatten``, or at the venue)."""

    symbol: str
    code: str  # the refusal's reason code (``below_min_quantity``, ...); "" when none was given
    position: float  # the position held, signed


@dataclass(frozen=True, slots=True)
class CloseRetrying:
    """A position a risk plugin's or the stop policy's flatten asked to close that the venue
    refused ``refusals`` times in a row (since ``since_ts``, bot time) for reasons a later try
    may pass: the bot still sends the close at each of the symbol's bars, but the position is
    still open. A person may close it (``tradefleet stop ADDRESS --flatten``, or at the venue)."""

    symbol: str
    code: str  # the last refusal's reason code (``venue_unavailable``, ``market_closed``, ...)
    position: float  # the position held, signed
    refusals: int
    since_ts: int


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    bot: str
    mode: str
    phase: Phase
    equity: float
    balance: float  # cash in the account currency
    currency: str
    pnl_today: float
    pnl_total: float
    drawdown_pct: float  # from the equity peak, 0..100
    open_positions: int
    open_orders: int
    halted: bool
    halt_reason: str
    paused: bool
    pause_reason: str
    last_bar_ts: int  # close time of the last bar handled (0 before the first)
    config_hash: str
    plugins: tuple[PluginInfo, ...] = ()
    risk: tuple[RiskPluginState, ...] = ()
    quality: tuple[QualityFigure, ...] = ()
    broker_connected: bool = True
    reconciled: bool = True
    bars: int = 0
    exposure: tuple[SymbolExposure, ...] = ()  # open positions only
    starting_reason: str = ""  # while Starting: what it waits for (the venue at start)
    # No engine runs yet and the figures (equity to open orders) are the last an earlier run
    # journaled, not the account now: the proto's ``last_known``.
    last_known: bool = False
    # Positions the bot's own flatten could not close and leaves to a person (``CloseStuck``);
    # empty while no engine runs (the journal's debts are read when it starts).
    closes_stuck: tuple[CloseStuck, ...] = ()
    # Positions whose flatten close the venue keeps refusing though the bot keeps sending it
    # (``CloseRetrying``); empty while no engine runs (a restart sends the close again).
    closes_retrying: tuple[CloseRetrying, ...] = ()


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    quantity: float
    average_price: float
    mark: float
    unrealized_pnl: float
    realized_pnl: float
    opened_ts: int


@dataclass(frozen=True, slots=True)
class OrderView:
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    quantity: float
    filled: float
    price: float | None
    status: str
    reduce_only: bool
    parent_id: str | None
    created_ts: int
    # Why the order was sent and what it protects: the journal's word, so that a person reads
    # why a trade happened from the API instead of from SQL. Defaults: what an older server
    # (or an order journaled without them) gives.
    tag: str = ""  # the strategy's tag, "stop_loss"/"take_profit" on bracket children
    stop_loss: float | None = None  # an entry's bracket; None without one (and on children)
    take_profit: float | None = None
    reference_price: float | None = None  # its own price, else the mark it was decided at
    fees: float = 0.0  # paid on its fills so far
    average_fill_price: float | None = None  # None before the first fill
    venue_order_id: str | None = None  # the venue's id, kept after the order filled
    status_reason: str = ""  # why it has its latest status ("" when none was given)


@dataclass(frozen=True, slots=True)
class TradeView:
    seq: int
    symbol: str
    direction: int
    quantity: float
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    net_pnl: float
    fees: float
    # The reasons of the opening and the closing fill: the order's tag, or untagged, its type.
    entry_reason: str = ""
    exit_reason: str = ""
    # The client order ids of the orders whose fills opened and closed the trade; None when
    # the journal cannot tell (fills of two orders alike: same bar, side and reason).
    entry_order_id: str | None = None
    exit_order_id: str | None = None
    # Funding paid (+) or charged (-) while the trade held its position; in ``net_pnl``.
    funding: float = 0.0


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: tuple[OrderView, ...]
    next_page_token: str  # "" when there are no more


@dataclass(frozen=True, slots=True)
class TradePage:
    trades: tuple[TradeView, ...]
    next_page_token: str  # "" when there are no more


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    seq: int
    ts: int  # bot time (bar close) when it happened
    kind: EventKind
    message: str
    data: Mapping[str, str | float | int | bool] = field(default_factory=dict)


class EventSubscription(Protocol):
    """Events from the moment of subscribing; iterate, and ``close()`` when done.

    A subscriber that falls behind never slows the engine: its queue is bounded, and overflow is
    replaced by one ``DROPPED`` event carrying the count.
    """

    def __iter__(self) -> Iterator[RuntimeEvent]: ...

    def get(self, timeout: float | None = None) -> RuntimeEvent | None: ...

    def close(self) -> None: ...


# --- signal validation: the ONE check of a signal's fields, for the webhook and SubmitSignal ---

_Symbol = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/#+-]+$")
]
_Price = Annotated[
    float, Field(strict=True, ge=limits.MIN_PRICE, le=limits.MAX_PRICE, allow_inf_nan=False)
]
_Volume = Annotated[
    float, Field(strict=True, ge=limits.MIN_VOLUME, le=limits.MAX_VOLUME, allow_inf_nan=False)
]


class PriceLevels(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    entry: _Price
    stop_loss: _Price
    take_profit: _Price
    current_price: _Price | None = None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    source: Annotated[str, StringConstraints(max_length=128)] = ""
    confidence: Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)] | None = None


class SignalBody(BaseModel):
    """A signal's fields in the webhook's JSON shape. Build it with :func:`validate_signal`
    (which also checks the price levels against the direction), never directly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: _Symbol
    direction: Literal["BUY", "SELL"]
    price_levels: PriceLevels
    timeframe: Annotated[str, StringConstraints(max_length=16, pattern=r"^[A-Za-z0-9]*$")] = ""
    pattern_type: Annotated[
        str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_.:/ -]*$")
    ] = ""
    volume: _Volume | None = None
    metadata: Metadata | None = None

    @field_validator("direction", mode="before")
    @classmethod
    def _direction_any_case(cls, value: object) -> object:
        # Any case of the ASCII words only: str.upper() maps some non-ASCII letters onto
        # ASCII ones ("ſell" -> "SELL", "ı" -> "I"), which would let a look-alike pass as a
        # trade direction. Non-ASCII text is left as sent, so the Literal refuses it.
        return value.upper() if isinstance(value, str) and value.isascii() else value

    def to_signal(self, *, signal_id: str, received_at: float) -> Signal:
        return Signal(
            symbol=self.symbol,
            direction=Direction(self.direction),
            entry=self.price_levels.entry,
            stop_loss=self.price_levels.stop_loss,
            take_profit=self.price_levels.take_profit,
            volume=self.volume,
            current_price=self.price_levels.current_price,
            timeframe=self.timeframe,
            pattern_type=self.pattern_type,
            source=self.metadata.source if self.metadata else "",
            confidence=self.metadata.confidence if self.metadata else None,
            signal_id=signal_id,
            received_at=received_at,
        )


@dataclass(frozen=True, slots=True)
class SignalProblem:
    """One reason a signal is refused: where (``("price_levels", "entry")``) and what."""

    location: tuple[str, ...]
    message: str

    @property
    def path(self) -> str:
        return ".".join(self.location)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.location else self.message


class SignalInvalid(ValueError):
    """A signal failed :func:`validate_signal`; ``problems`` lists why (at most five)."""

    def __init__(self, problems: list[SignalProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _level_problem(body: SignalBody) -> SignalProblem | None:
    levels = body.price_levels
    if body.direction == "BUY":
        if not levels.stop_loss < levels.entry:
            return SignalProblem(("price_levels", "stop_loss"), "must be below entry for a BUY")
        if not levels.take_profit > levels.entry:
            return SignalProblem(("price_levels", "take_profit"), "must be above entry for a BUY")
    else:
        if not levels.stop_loss > levels.entry:
            return SignalProblem(("price_levels", "stop_loss"), "must be above entry for a SELL")
        if not levels.take_profit < levels.entry:
            return SignalProblem(("price_levels", "take_profit"), "must be below entry for a SELL")
    return None


def validate_signal(fields: Mapping[str, object]) -> SignalBody:
    """The one validation of a signal pushed from outside, in the webhook's JSON shape; the
    gRPC ``SubmitSignal`` builds that shape from its request and calls this too, so both front
    ends refuse exactly the same signals. Raises :class:`SignalInvalid` naming the fields.

    Numbers must be real numbers (not strings, not booleans), finite and within
    :mod:`~tradefleet_runtime.service.limits`' ranges; a BUY needs ``stop_loss < entry <
    take_profit``, a SELL ``take_profit < entry < stop_loss``.
    """
    try:
        body = SignalBody.model_validate(dict(fields))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False)[:5]:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(SignalProblem(tuple(_clip(str(p)) for p in error["loc"]), message))
        raise SignalInvalid(problems) from None
    problem = _level_problem(body)
    if problem is not None:
        raise SignalInvalid([problem])
    return body


@dataclass(frozen=True, slots=True)
class SignalResult:
    accepted: bool
    reason: str = ""
    client_order_id: str = ""  # the order it became, when accepted


class ControlError(Exception):
    """A control call was refused; ``field`` names the offending argument when there is one.

    ``grpc_code`` is the gRPC status it becomes: the request was wrong (``INVALID_ARGUMENT``)
    unless a subclass says the bot could not take a good request now.
    """

    grpc_code = "INVALID_ARGUMENT"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NotNow(ControlError):
    """The bot cannot take the call in its present state (still starting, stopped): the
    request itself was fine. ``FAILED_PRECONDITION``: sending it again unchanged is futile
    until the bot's state changes."""

    grpc_code = "FAILED_PRECONDITION"


class NoAnswer(NotNow):
    """The bot's engine did not answer in time: ``UNAVAILABLE``, worth trying again."""

    grpc_code = "UNAVAILABLE"


class SignalConflict(ControlError):
    """A ``signal_id`` the bot has seen came with a different signal: ``ALREADY_EXISTS`` (the
    webhook answers 409). Sending it again never helps; the sender needs a fresh id."""

    grpc_code = "ALREADY_EXISTS"

    def __init__(self, signal_id: str) -> None:
        super().__init__(
            f"{_clip(signal_id)!r} was already used for a different signal; "
            "send this one with a new id",
            "signal_id",
        )
        self.signal_id = signal_id


def signal_digest(signal: Signal) -> str:
    """A digest of what a signal asks for (every field but its id and arrival time): a repeated
    ``signal_id`` is the same signal only when this matches the one journaled with it."""
    content = asdict(signal)
    del content["signal_id"], content["received_at"]
    text = json.dumps(content, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Characters a reason may not hold: control and format characters (newlines, tabs, escapes,
# bidi overrides) and line/paragraph separators. A reason is journaled, logged and shown on one
# line; such characters would forge or garble those lines, so they are written as spaces.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def check_reason(reason: str, action: str) -> str:
    """The one check of a control call's reason (pause, resume, risk lock reset): the reason
    as journaled, on one line — line breaks, control and format characters (a YAML block's
    newlines, a bidi override) become spaces, runs of space one — or ``ControlError`` naming
    ``reason`` when no text is left or it exceeds ``MAX_REASON_CHARS``. ``action`` names the
    call in the message (``"a pause"``). An emergency stop's is ``halt_reason``."""
    text = _one_line(reason)
    if not text:
        raise ControlError(f"{action} needs a reason", "reason")
    if len(text) > limits.MAX_REASON_CHARS:
        raise ControlError(f"at most {limits.MAX_REASON_CHARS} characters", "reason")
    return text


#: An emergency stop's reason when the one given holds no text (a blank, a zero-width space).
NO_HALT_REASON: Final = "no reason given"


def halt_reason(reason: str) -> str:
    """An emergency stop's reason as journaled: on one line as ``check_reason`` writes it, and
    never refused — a reason of no text is ``NO_HALT_REASON``, a longer one cut to
    ``MAX_REASON_CHARS``. The operator sends ``spec.emergencyStop.reason`` as written, which
    the cluster takes with any text (a blank, a zero-width space): a halt refused for its
    reason's form would leave the bot trading while its spec says halted."""
    text = _one_line(reason)
    if len(text) > limits.MAX_REASON_CHARS:
        return text[: limits.MAX_REASON_CHARS - 1].rstrip() + "\u2026"
    return text or NO_HALT_REASON


def _one_line(reason: str) -> str:
    return " ".join(
        "".join(
            " " if unicodedata.category(char) in _UNPRINTABLE_CATEGORIES else char
            for char in reason
        ).split()
    )


class ControlPlane(Protocol):
    """Everything the API front ends may ask of one running bot."""

    def get_status(self) -> StatusSnapshot: ...

    def list_positions(self) -> list[PositionView]: ...

    def list_orders(self, include_closed: bool = False) -> list[OrderView]: ...

    def list_order_page(self, page_size: int = 1000, page_token: str = "") -> OrderPage:
        """Every order of the run, closed ones included, a page at a time (oldest first)."""
        ...

    def list_trades(self, page_size: int = 100, page_token: str = "") -> TradePage: ...

    def pause(self, who: str, reason: str) -> StatusSnapshot: ...

    def resume(
        self, who: str, reason: str, *, pause_only: bool = False, halt_only: bool = False
    ) -> StatusSnapshot:
        """Clears a pause and a halt (the only way out of an emergency stop); with
        ``pause_only``, the pause alone (a halt and a Degraded stop stay: the answer's
        ``halted`` says one still holds); with ``halt_only``, the halt and a Degraded stop
        alone (a pause stays, and no entry is taken in between). Not both."""
        ...

    def emergency_stop(self, who: str, reason: str, flatten: bool = False) -> StatusSnapshot:
        """Halt: refuse every new entry, cancel resting entry orders, optionally close every
        position. Idempotent: a second call while halted changes nothing."""
        ...

    def reset_risk_lock(self, plugin: str, who: str, reason: str) -> StatusSnapshot: ...

    def submit_signal(self, signal: Signal) -> SignalResult: ...

    def update_params(self, params: Mapping[str, object], who: str) -> StatusSnapshot:
        """Replace the strategy's params; raises ``ControlError`` naming the field when they
        fail the strategy's schema, and then nothing changes."""
        ...

    def subscribe_events(
        self, max_queue: int = 1000, recent: int = 0, kinds: Collection[EventKind] = ()
    ) -> EventSubscription:
        """The events from now on; with ``recent``, first up to that many of the latest ones
        kept (oldest first) of ``kinds`` (every kind when empty)."""
        ...
