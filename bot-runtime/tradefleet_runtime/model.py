"""The runtime's domain types: bars, orders, fills, positions and risk decisions.

These are the words every plugin speaks. They are small immutable values (named tuples: cheap to
build, about ten times cheaper than frozen dataclasses, which matters on the per-order path) so
that a plugin can keep one without seeing it change later, and a risk plugin cannot alter the
order it is asked about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class Bar(NamedTuple):
    """One closed OHLCV bar. ``ts`` is the bar's *open* time in UTC epoch seconds.

    A strategy is handed a bar only after it has closed, i.e. at ``ts + timeframe_s``.
    """

    symbol: str
    timeframe_s: int
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def close_ts(self) -> int:
        """The time at which the bar closed (and became visible to strategies)."""
        return self.ts + self.timeframe_s


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    # +1 for a buy, -1 for a sell: a plain attribute of each member (set below), because a
    # property on an enum costs ~0.4 µs a read on Python 3.11 and risk rules read it per order.
    sign: int

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


Side.BUY.sign = 1
Side.SELL.sign = -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(StrEnum):
    PENDING = "pending"  # accepted by the engine, not yet acknowledged by the broker
    OPEN = "open"  # working at the broker
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})


class OrderIntent(NamedTuple):
    """What a strategy asks for, before risk and sizing.

    ``quantity`` may be ``None``: the bot's sizer (a risk plugin) then decides it. Risk plugins
    may only shrink or veto an intent; they never grow it or change its side.
    """

    symbol: str
    side: Side
    quantity: float | None = None
    order_type: OrderType = OrderType.MARKET
    price: float | None = None  # limit price, or trigger price of a stop order
    stop_loss: float | None = None
    take_profit: float | None = None
    reduce_only: bool = False
    tag: str = ""
    # How sure the strategy (or the signal behind it) is, 0..1; sizers may scale by it.
    confidence: float | None = None


class Order(NamedTuple):
    """An order as sent to a broker. ``client_order_id`` is deterministic (see ``order_ids``)."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MARKET
    price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    reduce_only: bool = False
    parent_id: str | None = None  # set on the SL/TP children of a bracket
    oco_group: str | None = None  # children sharing a group cancel each other when one fills
    created_ts: int = 0
    tag: str = ""


class Fill(NamedTuple):
    """One execution. ``fee`` is in the account currency and always ≥ 0."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: int
    fill_id: str
    reason: str = ""  # "market", "limit", "stop", or the order's tag ("stop_loss", ...)


class CashFlow(NamedTuple):
    """Money the venue moved in or out of the account outside any fill: a perpetual future's
    funding payment (``kind`` ``"funding"``).

    ``amount`` is signed from the account's side (negative: the account paid) and in
    ``currency``; the engine books it into cash only when that is the bot's account currency.
    ``flow_id`` is the venue's own id of the payment, so the same payment is the same flow in
    every report and after every restart, and is booked once.
    """

    flow_id: str
    symbol: str
    amount: float
    currency: str
    ts: int  # when the venue booked it, UTC epoch seconds
    kind: str = "funding"


class Accrual(NamedTuple):
    """The venue's running total of payments accrued on the bot's open position in ``symbol``
    and not booked yet: an MT5 position's swap (``kind`` ``"swap"``), charged at each rollover
    but paid only by the deal that closes the position.

    A mark, like a price: the newest replaces the previous, it is never journaled and never
    touches cash; the bot's equity counts it, as the venue's does, so limits measured on equity
    (a day's loss, a drawdown) see it while the position is held. ``amount`` is signed from the
    account's side (negative: the account owes it) and in ``currency`` (the account's); 0 once
    the position is gone. When the payment is booked (a ``CashFlow`` of the symbol), the
    engine takes it out of the accrual, so equity never counts it twice.
    """

    symbol: str
    amount: float
    currency: str
    ts: int  # when the venue reported it, UTC epoch seconds
    kind: str = "swap"


def fill_reason(order: Order) -> str:
    """``Fill.reason`` for a fill of ``order``: its tag, or untagged, its type. Every broker
    gives it (the contract suite checks), so the trades' entry and exit reasons, which the
    report groups into signal, risk, stop-loss and take-profit exits, mean the same on all."""
    return order.tag or order.order_type.value


class ReasonCode(StrEnum):
    """Why an order was refused, cancelled or left in doubt: a fixed word for machines.

    ``OrderUpdate.reason`` is for people (the venue's own message, journaled); the engine, the
    metrics and the contract tests act on the code, never on the words of a reason.
    """

    NONE = ""
    INSUFFICIENT_FUNDS = "insufficient_funds"  # balance or margin too small
    INVALID_PRICE = "invalid_price"  # off the tick, outside the venue's price band
    INVALID_QUANTITY = "invalid_quantity"  # off the lot step, above the maximum
    INVALID_STOPS = "invalid_stops"  # stop-loss/take-profit too close or on the wrong side
    BELOW_MIN_QUANTITY = "below_min_quantity"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    REDUCE_ONLY = "reduce_only"  # a reduce-only order that would open or grow a position
    RATE_LIMITED = "rate_limited"  # the venue throttled us (429/418): retried by the broker
    VENUE_UNAVAILABLE = "venue_unavailable"  # 5xx, maintenance, connection refused
    DUPLICATE_CLIENT_ID = "duplicate_client_id"  # the venue already holds this client order id
    UNKNOWN_ORDER = "unknown_order"  # the venue does not know the order (cancel, query)
    UNKNOWN_OUTCOME = "unknown_outcome"  # sent, but whether it arrived is not known yet
    AUTHENTICATION = "authentication"  # credentials refused or missing permission
    MARKET_CLOSED = "market_closed"
    EXPIRED = "expired"  # time in force ran out (day orders, IOC/FOK remainders)
    CANCELLED_BY_USER = "cancelled_by_user"  # the bot (or a person on its behalf) cancelled
    CANCELLED_BY_VENUE = "cancelled_by_venue"  # OCO sibling, self-trade prevention, liquidation
    VENUE_REJECTED = "venue_rejected"  # any other refusal; ``reason`` has the venue's words


class OrderUpdate(NamedTuple):
    """A change of an order's status reported by a broker (rejections, cancels, acks, fills'
    progress). ``code`` says why for machines, ``reason`` for people."""

    client_order_id: str
    status: OrderStatus
    ts: int
    reason: str = ""
    venue_order_id: str | None = None
    code: ReasonCode = ReasonCode.NONE
    # Set on PARTIALLY_FILLED/FILLED acks from a venue: how much of the order is done so far.
    filled_quantity: float | None = None
    # Set on an "amended" answer: the price (limit price, or a stop's trigger) the venue says
    # the order now holds, which may not be the one asked (the venue's own tick, a stops level
    # it clamps to). None: the venue's answer did not say; the engine books the price asked.
    # On an open update with another reason and no code: the price the venue holds the order
    # at, reported unasked (a move whose answer was lost, one made by hand at the venue); the
    # engine books it when it differs from its own by more than half a tick.
    price: float | None = None


class OrderReport(NamedTuple):
    """What a venue says about one order right now (``query_order``, ``order_reports``):
    what the bot reconciles its journal against after a restart."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    filled_quantity: float
    status: OrderStatus
    ts: int
    price: float | None = None  # limit price, or a stop's trigger price
    average_price: float | None = None  # of the filled part
    reduce_only: bool = False

    @property
    def remaining(self) -> float:
        return max(self.quantity - self.filled_quantity, 0.0)


class PositionReport(NamedTuple):
    """A venue's net position in one symbol (signed quantity; > 0 long, < 0 short).

    ``balance`` marks a spot venue's holding of the base asset: it is the account's, and may
    include coins that were never the bot's, so reconciliation only checks that it covers what
    the bot holds."""

    symbol: str
    quantity: float
    average_price: float = 0.0
    ts: int = 0
    balance: bool = False


class Instrument(NamedTuple):
    """What the venue says about a symbol: the rounding and size limits orders must obey.

    Quantities are **units of the base asset** everywhere in the runtime (euros of EURUSD,
    ounces of XAUUSD, an index's own units), the same in backtest, paper and live: P&L is
    quantity × price move, a notional quantity × price. ``lot_step``, ``min_quantity`` and
    ``max_quantity`` are in those units too; a broker whose venue counts in lots or contracts
    converts at its own boundary (the MT5 broker: units = lots × contract size).
    ``contract_size`` is information only — how many units one of the venue's lots or contracts
    holds (MT5's ``trade_contract_size``; 1 where the venue trades units) — and no figure of the
    runtime multiplies by it.

    ``taker_fee`` and ``slippage`` are what a fill that takes liquidity costs beyond its price,
    as fractions (0.0026 = 0.26%): the fee charged on its notional, and how far a market or
    stop fill lands past the price against the bot. A sizer's ``max_leverage`` cut leaves room
    for them, so that the entry it sizes is not refused for its own fill's costs. The paper
    broker states its ``fee_bps`` and ``slippage_bps``, the ccxt broker ccxt's taker rate of the
    market; 0 (the default) where a broker does not state them, and the cut then leaves no
    room. (Contract 1.20.)"""

    symbol: str
    tick_size: float = 0.0  # 0 means any price
    lot_step: float = 0.0  # units; 0 means any quantity
    min_quantity: float = 0.0  # units
    max_quantity: float = float("inf")  # units
    min_notional: float = 0.0  # quote currency: quantity × price
    contract_size: float = 1.0  # units in one venue lot or contract (information)
    quote_currency: str = ""
    taker_fee: float = 0.0  # fraction of a taking fill's notional
    slippage: float = 0.0  # fraction of the price a market or stop fill moves against the bot


@dataclass(slots=True)
class Position:
    """A net position in one symbol. ``quantity`` is signed: > 0 long, < 0 short."""

    symbol: str
    quantity: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0
    opened_ts: int = 0

    @property
    def is_open(self) -> bool:
        return self.quantity != 0.0

    def unrealized_pnl(self, mark: float) -> float:
        return self.quantity * (mark - self.average_price)


class RiskAction(StrEnum):
    APPROVE = "approve"
    SHRINK = "shrink"
    VETO = "veto"


class RiskDecision(NamedTuple):
    """A risk plugin's answer about one intent. Build it with the class methods."""

    action: RiskAction
    quantity: float | None = None
    reason: str = ""  # for people: free text, journaled
    code: str = ""  # for machines: a short fixed word (metrics label), e.g. "daily_loss"

    @classmethod
    def approve(
        cls, quantity: float | None = None, reason: str = "", code: str = ""
    ) -> RiskDecision:
        return cls(RiskAction.APPROVE, quantity, reason, code)

    @classmethod
    def shrink(cls, quantity: float, reason: str, code: str = "") -> RiskDecision:
        return cls(RiskAction.SHRINK, quantity, reason, code)

    @classmethod
    def veto(cls, reason: str, code: str = "") -> RiskDecision:
        return cls(RiskAction.VETO, 0.0, reason, code)


# The exit reason of a position still open when a backtest's data ends: the report marks it at
# the last close as if closed there (no exit fee), so every position shows up as a trade.
END_OF_DATA = "end of data"


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip: from flat (or a reversal) back to flat (or the next reversal).

    ``entry_reason``/``exit_reason`` are the ``Fill.reason`` of the fill that opened the trade
    and of the one that ended it: the order's tag (``stop_loss``/``take_profit`` for bracket
    children, the strategy's own tags, ``emergency-flatten``...) or, untagged, its type.
    ``funding`` is what the venue paid (+) or charged (-) the position while the trade held it
    (perpetual futures), in its net P&L as fees are.
    """

    symbol: str
    direction: int  # +1 long, -1 short
    quantity: float
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    gross_pnl: float
    fees: float
    entry_reason: str = ""
    exit_reason: str = ""
    funding: float = 0.0

    @property
    def net_pnl(self) -> float:
        return self.gross_pnl - self.fees + self.funding


@dataclass
class CarriedState:
    """What a bot's earlier runs left in its journal: the account and orders to carry over."""

    initial_capital: float
    fills: list[Fill] = field(default_factory=list)
    working: list[tuple[Order, float]] = field(default_factory=list)  # (order, filled so far)
    unacknowledged: list[Order] = field(default_factory=list)
    runs: int = 0
    # Every client order id the bot ever journaled: none of them may be sent again as new.
    known_order_ids: frozenset[str] = frozenset()
    # The intents a risk plugin vetoed (never orders), by the id they took: (symbol, side, the
    # quantity asked, None when the sizer decides it). A bar handled again after a crash
    # decides the same intent no more (its decisions are journaled once).
    vetoed_intents: dict[str, tuple[str, str, float | None]] = field(default_factory=dict)
    # Close time of the last timestamp the bot fully handled (0: none); a restart resumes
    # after it.
    last_bar_ts: int = 0
    # The venue's payments outside fills (funding) the bot booked, oldest first.
    cash_flows: list[CashFlow] = field(default_factory=list)
    # When the journal was brought to a release that books those payments (0: it always
    # was): the payments before were never the bot's to book, and none is caught up.
    cash_flows_from: int = 0
