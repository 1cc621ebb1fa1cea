"""Optional abilities a plugin declares, so the runtime never has to guess them.

A plugin's descriptor lists its capabilities (``PluginSpec(capabilities={...})``). When the
plugin is loaded, the registry checks that the object really has each declared method with the
declared shape, and that it has no capability method it did not declare: a misspelt
``lock_reson`` or a forgotten declaration is an error naming the plugin and the method, not a
feature that silently never runs. The engine then calls a capability only through these
protocols, on the objects the registry vouched for.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import types
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tradefleet_runtime.model import (
    Accrual,
    Bar,
    CashFlow,
    Fill,
    Order,
    OrderReport,
    OrderUpdate,
    Position,
    PositionReport,
    Side,
    Trade,
)
from tradefleet_runtime.signals import Signal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from tradefleet_runtime.bar_columns import BarColumns
    from tradefleet_runtime.contracts import RiskContext


class Capability(StrEnum):
    """The optional abilities; each names the protocol a plugin must then satisfy."""

    TAKES_SIGNALS = "takes-signals"  # strategy: SignalReceiver
    RISK_LOCK = "risk-lock"  # risk plugin: RiskLockHolder (a lock only a person resets)
    RESTORES_ACCOUNT = "restores-account"  # broker: AccountRestorer
    KNOWS_SYMBOLS = "knows-symbols"  # any plugin's descriptor: SymbolChecker (admission)
    OBSERVES_BARS = "observes-bars"  # risk plugin: BarObserver (every base bar)
    OBSERVES_FILLS = "observes-fills"  # risk plugin: FillObserver (every fill of the bot)
    OBSERVES_ORDERS = "observes-orders"  # risk plugin: OrderObserver (each order as decided)
    READS_TRADES = "reads-trades"  # risk plugin: TradeReader (the bot's closed trades)
    ACTS_ON_ACCOUNT = "acts-on-account"  # risk plugin: AccountActor (reduce, flatten, cancel)
    RESTORES_LOCK = "restores-lock"  # risk plugin: LockRestorer (a journaled lock after restart)
    # risk plugin: EquityRestorer (the account's journaled equity after a restart, so limits
    # measured from a day's start or a peak do not start again from the restart)
    RESTORES_EQUITY = "restores-equity"
    # risk plugin: FillRestorer (the fills of earlier runs with the prices their orders were
    # decided at, so execution measured over a window does not start again from a restart)
    RESTORES_FILLS = "restores-fills"
    # risk plugin: StateRestorer (its own state, journaled by paper and live bots whenever it
    # changes and handed back after a restart: what bars and fills cannot rebuild, a trail's
    # best price since entry)
    RESTORES_STATE = "restores-state"
    REPORTS_TIER = "reports-tier"  # risk plugin: TierReporter (an escalation level for status)
    VENUE_EXECUTION = "venue-execution"  # broker: VenueExecution (events, queries, reports)
    # broker: BracketFollower (places a bracket's children itself; told the bracket of an
    # entry adopted from the venue after a restart, which the venue does not keep)
    FOLLOWS_BRACKETS = "follows-brackets"
    # data feed: its bars arrive when they close at the venue, so the runtime never paces
    # them (a restarted bot's missed bars are caught up at once, not one per timeframe).
    LIVE_FEED = "live-feed"
    # data feed: MarketClock (the market's time now, as the feed knows it: a restarted bot's
    # bars that a newer bar had already closed after by then are history, not traded)
    TELLS_MARKET_TIME = "tells-market-time"
    TARGET_POSITIONS = "target-positions"  # strategy: TargetPositioner (vectorised sweeps)
    # risk plugin: its check decides on the intent alone (a sizer of fixed quantities), so the
    # engine builds no account snapshot for it: it is handed ``BLANK_CONTEXT``.
    INTENT_ONLY = "intent-only"
    # broker: PositionRestorer (told, after a restart's reconciliation and before the first
    # bar, the positions the bot books: what it counts of a fill can depend on them)
    RESTORES_POSITIONS = "restores-positions"
    # broker: LeverageReporter (the leverage its venue measures margin with, once connected,
    # which risk plugins read as ``RiskContext.leverage``; without it 1 is assumed)
    KNOWS_LEVERAGE = "knows-leverage"
    # broker: PriceQuoter (the price a market order would fill at now: a market entry decided
    # between bars, a signal's, is sized and risk-checked at it rather than at the last close,
    # up to a bar old)
    QUOTES_PRICES = "quotes-prices"
    # broker: CashFlowReporter (the venue's payments outside fills, funding: reported as
    # ``CashFlow`` events and, after a restart, those made while the bot was down)
    REPORTS_CASH_FLOWS = "reports-cash-flows"
    # broker: reports the payments its venue accrues on the bot's open positions and books
    # only at their close (an MT5 position's swap), as ``Accrual`` events: the bot's equity
    # counts them while the position is held, as the venue's does. No method: events only.
    REPORTS_ACCRUALS = "reports-accruals"
    # risk plugin: a sizer (gives an intent the strategy left unsized its quantity).
    SIZER = "sizer"
    # risk plugin: decides on the order's size (cuts it, or bounds what it risks), so a sizer
    # of the chain must come before it: a manifest with one after it is refused at load.
    NEEDS_SIZE = "needs-size"


@runtime_checkable
class SignalReceiver(Protocol):
    """A strategy that takes trade signals pushed from outside (webhook, ``SubmitSignal``)."""

    def on_signal(self, signal: Signal) -> str | None:
        """Queue the signal's orders on the context, or return why it is refused."""
        ...


@dataclass(frozen=True)
class TargetPlan:
    """A strategy's whole run as target positions, for the vectorised sweep path.

    ``target[i]`` is the position the strategy holds after bar ``i`` closed, in units of the
    sizer's quantity (1 long, -1 short, 0 flat), for every bar the strategy is shown, warm-up
    included (where it must be 0). Each change is traded as the event engine trades ema-cross:
    a market order closing what is held, then a market order opening the new target, both
    filled at the next bar's open.

    The tags are those the strategy's own orders carry for the same steps (closing, opening a
    long, opening a short): they are the fills' and trades' reasons, as in the event engine.
    Untagged orders' fills read ``market``.
    """

    target: npt.NDArray[np.float64]
    close_tag: str = ""
    buy_tag: str = ""
    sell_tag: str = ""


@runtime_checkable
class TargetPositioner(Protocol):
    """A strategy that can state its whole run as target positions of one symbol's bars."""

    def target_positions(self, columns: BarColumns) -> TargetPlan | None:
        """The plan for these bars (oldest first), or None when these params need the event
        engine (brackets, anything decided on fills): the optimiser then runs it."""
        ...


@runtime_checkable
class RiskLockHolder(Protocol):
    """A risk plugin that can lock trading until a person resets it (``ResetRiskLock``)."""

    def lock_reason(self) -> str | None:
        """Why trading is locked, or None while unlocked."""
        ...

    def reset_lock(self) -> str | None:
        """A person asks to clear the lock (who and why are journaled by the engine).

        Return None when cleared, or why it cannot be cleared yet (a cooldown): the lock then
        stays and the refusal is given to the person.
        """
        ...


@runtime_checkable
class SymbolLockHolder(Protocol):
    """A lock holder whose lock may hold only some symbols (probation with ``scope: symbol``
    hibernates the asset that lost, not the bot): the engine's gate refuses entries on those
    symbols and lets the others on. The lock is otherwise a lock: journaled, restored, shown in
    the status and its metrics, and cleared only by a person's reset (every symbol at once)."""

    def locked_symbols(self) -> Collection[str] | None:
        """The symbols the lock holds now; None: every symbol."""
        ...


@runtime_checkable
class LockRestorer(Protocol):
    """A lock holder told, after a restart, of the lock the journal says it still holds."""

    def restore_lock(self, reason: str, since_ts: int) -> None:
        """Hold the lock again: ``reason`` as journaled, locked since bar time ``since_ts``."""
        ...


# The most fills of earlier runs a ``restores-fills`` plugin is shown after a restart: more than
# any window a plugin measures execution over needs, and one query's worth at start.
RESTORED_FILLS = 10_000


@runtime_checkable
class FillRestorer(Protocol):
    """A risk plugin that measures execution over its last fills (slippage against the price
    each order was decided at): after a restart, before the first bar, it is shown the fills
    of the bot's earlier runs with those prices, so a restart does not empty its window (a bot
    restarted at every deploy would otherwise never collect enough fills to act)."""

    def restore_fills(self, fills: Sequence[tuple[Fill, float]]) -> None:
        """Take these (fill, the price its order was decided at) pairs, oldest first: at most
        ``RESTORED_FILLS`` of the bot's last fills or, once a person reset this plugin's lock,
        those since that reset. Orders journaled before the runtime recorded the price are
        left out. What they would have asked the account to do was done before the restart."""
        ...


@runtime_checkable
class EquityRestorer(Protocol):
    """A risk plugin whose limits are measured from the account's past equity (the day's
    start, the week's, the peak): after a restart, before the first bar, it is shown the
    equity snapshots the bot's earlier runs journaled, so a restart never moves a baseline
    (a bot down 4% today may not lose another 5% because it was restarted)."""

    def restore_equity(self, timestamps: Sequence[int], equity: Sequence[float]) -> None:
        """Rebuild the baselines from these bar-close snapshots, oldest first: every one the
        bot journaled since its first run or, once a person reset this plugin's lock, since
        that reset (the snapshot of its bar, the equity the reset started from, included).
        What they would have asked the account to do was done before the restart."""
        ...


@runtime_checkable
class StateRestorer(Protocol):
    """A risk plugin whose decisions rest on state that bars and fills cannot rebuild (the
    best price since an entry, seen on bars the restarted bot no longer shows it): a paper or
    live bot journals the state after each bar's risk work whenever it changed, and hands the
    newest one back after a restart, so a restart never loosens what the plugin holds. A
    backtest never asks (it has nothing to restart)."""

    def saved_state(self) -> Mapping[str, Any]:
        """The state to keep, as JSON: str keys; str, int, float (finite), bool, None, lists
        and dicts of them. Called after every bar's risk work: keep it small and cheap. One
        that cannot be written as JSON, or raises, is said once and not journaled."""
        ...

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Take back the newest state the bot's earlier runs journaled, after the account is
        restored (or reconciled with the venue) and before the first bar. It comes from an
        earlier run, perhaps an older release: check it, and drop what does not fit the
        account as it is now (a position reopened while the bot was down). Raise only leaving
        the plugin as it was built: the bot then starts with it so (said, naming the plugin)."""
        ...


@runtime_checkable
class BarObserver(Protocol):
    """A risk plugin that sees every base bar after the broker matched it (ATR, returns)."""

    def on_bar(self, bar: Bar) -> None: ...


@runtime_checkable
class FillObserver(Protocol):
    """A risk plugin that sees every fill of the bot (trade counts, cooldowns)."""

    def on_fill(self, fill: Fill) -> None: ...


@runtime_checkable
class OrderObserver(Protocol):
    """A risk plugin told of every order the risk chain let through, with the price it was
    decided at (its limit or trigger price, else the symbol's mark when it was decided): what
    execution quality (slippage) is measured against when its fills come."""

    def on_order(self, order: Order, reference: float) -> None: ...


@runtime_checkable
class TradeReader(Protocol):
    """A risk plugin given read access to the bot's closed trades (this run and earlier ones,
    oldest first; the sequence grows as trades close and must not be changed)."""

    def bind_trades(self, trades: Sequence[Trade]) -> None: ...


@runtime_checkable
class TierReporter(Protocol):
    """A risk plugin with escalation levels (0: normal); the engine journals each change and
    the service shows the tier in ``GetStatus`` and its metrics."""

    def tier(self) -> int: ...


class ActionKind(StrEnum):
    """What a risk plugin may do to the account between orders: only ever less exposure."""

    REDUCE = "reduce"  # cut a position (or every position) by a fraction
    FLATTEN = "flatten"  # close a position (or every position) and cancel its working orders
    CANCEL_ENTRIES = "cancel_entries"  # cancel resting orders that are not reduce-only
    # Move a position's working stop-loss to ``price``: only toward the mark (the engine
    # refuses a move that loosens it, passes the mark or is not a finite price).
    MOVE_STOP = "move_stop"


@dataclass(frozen=True, slots=True)
class AccountAction:
    """One action a risk plugin asks for; the engine turns it into reduce-only orders through
    its normal order path (own client order ids, the risk chain, the journal)."""

    kind: ActionKind
    reason: str
    symbol: str | None = None  # None: every open position (or every resting entry)
    fraction: float = 1.0  # REDUCE: the share of the position to close, 0 < fraction <= 1
    code: str = ""  # a short fixed word for metrics, e.g. "drawdown_tier_2"
    price: float | None = None  # MOVE_STOP: the stop-loss's new price


@runtime_checkable
class AccountActor(Protocol):
    """A risk plugin that acts on the account between orders. Called after each base bar's
    orders were sent (the bar's price is marked), with the account's snapshot."""

    def account_actions(self, ctx: RiskContext) -> Sequence[AccountAction]: ...


@runtime_checkable
class AccountRestorer(Protocol):
    """A broker that rebuilds its account from the bot's journaled fills after a restart."""

    def restore_account(self, fills: Sequence[Fill]) -> None: ...


@runtime_checkable
class CashFlowRestorer(Protocol):
    """An ``AccountRestorer`` that also makes payments outside fills (the paper broker's
    simulated funding): told, after ``restore_account``, the ones the bot booked into cash in
    earlier runs, so that its account's cash is the bot's. Optional: no capability to declare."""

    def restore_cash_flows(self, flows: Sequence[CashFlow]) -> None: ...


@runtime_checkable
class MissedBarMatcher(Protocol):
    """An ``AccountRestorer`` that is its own venue (the paper broker): after a restart it is
    handed each bar that closed while the bot was down (``session.bar_missed``), in time
    order and before the strategy sees them, to work the orders that rested on its book
    meanwhile as a venue would have (a stop the price crossed fills at its price, or at the
    bar's open when the bar gapped through it; its fills are stamped with that bar's time).
    Optional: no capability to declare. A live broker has no such method: its venue worked
    them, and the start-up reconciliation reports what filled."""

    def match_missed_bar(
        self, bar: Bar, resting: Collection[str]
    ) -> Sequence[Fill | OrderUpdate | CashFlow]:
        """The events of ``bar`` for the orders in ``resting`` (client order ids: those on the
        venue's book by that bar — re-armed from the journal, sent before the bar by a run
        that came back earlier —) and the bracket children
        their fills open; every other working order — one sent since the restart — is not
        worked on it (it reached the venue after that bar), nor cancelled by what the bar
        does (a liquidation). The account's own payments due on the bar (funding) are made
        as on any bar."""
        ...


@runtime_checkable
class BracketFollower(Protocol):
    """A venue broker that places a bracket entry's stop-loss/take-profit children itself —
    from the entry's first fill, sized on what filled, resized as the rest fills — and so must
    be told the bracket of an entry it finds working at the venue after a restart (the venue
    keeps the entry, not the bot's stop-loss and take-profit for it), and asked to place the
    children of one that filled while the bot was down."""

    def follow_bracket(self, order: Order) -> None:
        """``order`` (as the bot journaled it, with ``stop_loss``/``take_profit``) is working
        at the venue and was adopted at start-up: protect what of it filled, and what fills
        from now on, as for an entry this broker sent. Never sends ``order`` itself."""
        ...

    def protect_filled(self, order: Order, quantity: float) -> None:
        """``order`` (as journaled) ended at the venue while the bot was down, ``quantity`` of
        it filled in all (what the account holds): bring its children to cover ``quantity``,
        as this broker does at a fill — placed when no earlier run placed them, grown when one
        placed them for the part filled before it stopped (the bot has journaled and booked
        them under their ids). Never sends ``order`` itself."""
        ...


@runtime_checkable
class ChildCutter(Protocol):
    """A ``BracketFollower`` (it sizes a bracket's children on its entry's fills itself) told
    each cut the engine makes to a child whose position got smaller, as the amount taken
    off. A plain ``amend`` of the child's quantity cannot say it: the broker may have seen
    more of the entry fill than the engine had when it cut, and would grow the child back
    over the cut at the entry's next fill. Optional: no capability to declare; without it
    the engine amends the child's quantity."""

    def cut_child(self, client_order_id: str, quantity: float, cut: float) -> OrderUpdate | None:
        """The engine took ``cut`` (> 0) off bracket child ``client_order_id``, now
        ``quantity`` in the engine's count of its entry's fills. From now on size it as all
        its entry filled less every cut, and bring the one at the venue there (answered as an
        amend is: "amended" or a refusal; None when the answer comes as an event)."""
        ...

    def restore_cuts(self, cuts: Mapping[str, float]) -> None:
        """After a restart, before ``follow_bracket``: what earlier runs cut off each bracket
        child still working at the venue (child id -> amount taken off), as the journal keeps
        it. Size those children from then on as all their entry filled less it, as if the bot
        had never stopped: a cut forgotten would grow them back over it. Sends nothing."""
        ...


@runtime_checkable
class PairedChildren(Protocol):
    """A broker whose venue takes a bracket's stop-loss and take-profit only together, as one
    order (the ccxt broker on Binance spot, for a long's two sells: one OCO list, since two
    orders would each hold the coin and the venue refuses the second). Neither child is made
    while either waits for more of its entry (below the venue's minimums): the engine's book
    holds the children the broker places, no more (``Engine._child_placeable``). Any other
    broker places each child as soon as it fits."""

    def children_placed_together(self, symbol: str, side: Side) -> bool:
        """Whether a bracket's children of ``symbol`` on ``side`` (the side that closes the
        position) are placed only together."""
        ...


@runtime_checkable
class TicketBrackets(Protocol):
    """A broker whose bracket children follow the venue position their entry opened rather
    than the symbol's net position — an MT5 hedging account, where each ticket carries its own
    stop-loss and take-profit. A fill that makes the bot's position smaller cuts only the
    children of the entry whose own position it closed, which only the broker knows: the
    engine's rule for the others (oldest first, ``children_over_position``) would take the
    stops off a ticket still open. Optional: no capability to declare."""

    def entries_reduced(self, fill: Fill) -> tuple[str, ...] | None:
        """The client order ids of the bracket entries whose own positions ``fill`` (one the
        broker reported) reduced or closed; () when it closed none of them (it opened a
        position of its own beside them, say); None when this account's children follow the
        symbol's net position (the engine's own rule applies). Called on the engine thread:
        answer from what the broker noted when it reported the fill, never waiting on the
        venue."""
        ...


@runtime_checkable
class PositionRestorer(Protocol):
    """A venue broker whose booking of a fill depends on the bot's position before it (a spot
    buy closing a short counts its whole amount, one opening a long what the account holds of
    it), told after a restart the positions the bot starts from."""

    def restore_positions(self, positions: Mapping[str, Position]) -> None:
        """``positions`` (by symbol; open ones only, a symbol absent is flat) are the bot's
        after the start-up reconciliation — the journal's, moved by the fills it journaled
        from the venue and any venue position it adopted — before its first bar, a flatten
        owed or any order the strategy sends. Count this run's fills from them, as if no
        restart had happened; a fill already reported as an event and not yet drained is not
        in them (an adopted order's, a child reconciliation placed). Also called before, when
        the reconciliation asks for ``order_reports``/``fill_reports(since_ts)``, with the
        journal's positions before ``since_ts``: count the fills those list (the ones made
        while the bot was down among them) from those. Both on the engine thread; keep copies
        (the engine's objects change with its fills)."""
        ...


@runtime_checkable
class SpotCloses(Protocol):
    """A venue broker whose venue holds balances, not positions, for some symbols (the ccxt
    broker on a spot market): a close there is a plain sell, which the venue takes from any
    coin the account holds — a person's own too — and never caps at the bot's position. A
    flatten's close sent while the position's stop-loss or take-profit still works could fill
    beside one of them and sell twice what the bot holds: there the flatten cancels them and
    closes once the venue confirmed (``Engine._close_after``), as it does for any other order
    that would reduce the position. Optional: no capability to declare."""

    def closes_from_balance(self, symbol: str) -> bool:
        """Whether a close of ``symbol`` sells from the account's balance (spot)."""
        ...


@runtime_checkable
class OrderRestorer(Protocol):
    """A venue broker that cannot read back from its venue everything the bot holds of an
    order it placed (MT5: an SL/TP child's level once a person moved one ticket's line, an
    order's reduce-only), told after a restart the orders the journal holds working. Optional:
    no capability to declare."""

    def restore_orders(self, orders: Sequence[Order]) -> None:
        """``orders``: the orders the journal holds working or sent without an answer, as it
        holds them (the last price it booked for each), before the start-up reconciliation
        asks for ``order_reports``/``fill_reports``. Read them where the venue cannot tell
        (the level a child is the bot's at, an order to watch as reduce-only); send nothing.
        On the engine thread; keep copies."""
        ...


@runtime_checkable
class CashFlowReporter(Protocol):
    """A venue broker that reports the money its venue moves in or out of the account outside
    fills: a perpetual future's funding payments. While the bot runs, each payment arrives as
    a ``CashFlow`` among ``drain_events``' events, when the broker has read it; the engine
    books it into cash once (by ``flow_id``), journals it and counts it."""

    def cash_flow_reports(self, since_ts: int) -> Sequence[CashFlow]:
        """The venue's payments in the bot's symbols booked at or after ``since_ts`` (UTC
        epoch seconds), oldest first; ``flow_id`` is the venue's id of each. Blocks: called
        at start-up, after reconciliation, for what was paid while the bot was down."""
        ...


# ``reports-accruals`` (no method, so no protocol): a venue broker whose venue accrues payments
# on an open position and books them only when it closes (an MT5 position's swap) reports,
# among ``drain_events``' events, an ``Accrual`` per bot symbol whenever the venue's running
# total changed since the last one it reported (0 once, when the position is gone), and
# again after every ``connect``: nothing of it is journaled, a restarted bot learns it anew.
# The payment itself comes as a ``CashFlow`` (``reports-cash-flows``) when the venue books it.


@runtime_checkable
class LeverageReporter(Protocol):
    """A broker that knows the leverage its account's margin is measured with."""

    def account_leverage(self) -> float | None:
        """The leverage, read once the broker is connected; None when it cannot tell (the
        runtime then assumes 1, which over- rather than understates the margin an order
        needs)."""
        ...


#: The oldest price (seconds since the broker saw it) a ``quotes-prices`` broker gives as the
#: market's now; older, it has none. A few polls' worth: a price seen since is what a market
#: order meets, where a bar's close is up to a timeframe old.
QUOTE_MAX_AGE_S = 5.0


@runtime_checkable
class PriceQuoter(Protocol):
    """A broker that knows where its venue's market stands now. Between bars (a webhook
    signal, a control call) the bot's mark of a symbol is its last bar's close, up to a
    timeframe old; a market entry decided then fills at the market, so the engine sizes and
    risk-checks it at this price instead (``risk_snapshot.quoted_mark``), for that order only.
    A broker declaring it that has no usable price gets its market entries refused between
    bars: a size computed on a stale close can risk several times what the sizer was told."""

    def market_price(self, symbol: str, side: Side) -> float | None:
        """The price a market order of ``symbol`` on ``side`` would fill at now: the best ask
        for a buy, the best bid for a sell (the last trade where the venue gives no book), seen
        at most ``QUOTE_MAX_AGE_S`` ago; None when the broker has none that fresh. Called on
        the engine thread, only for a market entry decided between bars, while every command
        behind it waits (an emergency stop among them): answer at once from a price the broker
        keeps fresh, never waiting on the network (a local read bounded to what it needs, at
        most)."""
        ...


@runtime_checkable
class VenueExecution(Protocol):
    """A broker for a real venue (and the paper broker, the contract's reference).

    Shaped after NautilusTrader's live execution client: the venue's answers arrive as events
    when they happen, and the bot can ask the venue what it holds.

    - ``submit``/``cancel``/``amend`` never wait on the network: they hand the request to the
      broker's own I/O thread and return at once — ``submit`` with status PENDING (the ack
      follows as an event) or a final answer it knows without asking (a local refusal).
      Network time must never delay bars, the control API or an emergency stop.
    - The broker calls ``BrokerContext.wake`` (from any thread) when it has events; the
      runtime then calls ``drain_events`` on the engine thread and applies them in order:
      acks (OPEN with the venue's order id), PARTIALLY_FILLED/FILLED updates, ``Fill``s,
      cancels and rejections, each with a ``ReasonCode``. ``on_bar`` returns them too.
    - The queries block (they are for reconciliation at start-up and for the broker's own
      retries, never for the per-bar path): ``query_order`` by client order id (None: the venue
      never saw it), ``order_reports``/``fill_reports`` since a time, ``position_reports``.
    """

    def drain_events(self) -> Sequence[Fill | OrderUpdate | CashFlow | Accrual]:
        """Every event since the last call, oldest first (engine thread). ``CashFlow``s only
        from a broker that declares ``reports-cash-flows``, ``Accrual``s only from one that
        declares ``reports-accruals``."""
        ...

    def query_order(self, client_order_id: str) -> OrderReport | None: ...

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        """The bot's orders at the venue: every open one, and those closed at or after
        ``since_ts`` (UTC epoch seconds)."""
        ...

    def fill_reports(self, since_ts: int) -> Sequence[Fill]:
        """The bot's executions at or after ``since_ts``, oldest first; ``fill_id`` is the
        venue's trade id, so the same execution always has the same id."""
        ...

    def position_reports(self) -> Sequence[PositionReport]:
        """The venue's net positions in the bot's symbols (spot: base-asset balances)."""
        ...

    def cancel_all(self, symbol: str | None) -> None:
        """Cancel every working order of the bot in ``symbol`` (None: every symbol)."""
        ...

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        """Change a working order's quantity and/or price: natively where the venue can,
        cancel-replace otherwise (the replacement's id is ``sdk.replacement_order_id``).

        A refused amend leaves the order as it was: answer ``OPEN`` with the refusal's
        ``ReasonCode`` and words (never ``REJECTED``, which would end an order the venue still
        holds); only an order the venue does not know is ``REJECTED``/``UNKNOWN_ORDER``."""
        ...

    def is_connected(self) -> bool:
        """Whether the venue answered the last request (for readiness, truthfully)."""
        ...


@runtime_checkable
class MarketClock(Protocol):
    """A live data feed that knows the market's time (the venue's clock, a trade server's),
    which the host's clock may be off from. A restarted bot asks it, as each timestamp of
    the bars the feed sends since its last handled one arrives, whether a newer bar had
    already closed by then: such a bar closed while the bot was down and goes to the
    strategy as history, never traded (``session.split_history``; only a higher timeframe's
    bar built from such bars that is still the newest of its series is). A replaying feed (a
    csv file) has no market time and does not declare it."""

    def market_time(self) -> float | None:
        """The market's time now, in UTC epoch seconds, as of the feed's latest reading of
        it; None while the feed does not know it yet (the bot then trades what it is sent,
        as before the capability). Called on the engine thread, perhaps while the feed runs
        on a thread of its own: answer at once from what the feed holds, never waiting on
        the network, and never ahead of the market (a bar taken for closed too early would
        be dropped as history)."""
        ...


@runtime_checkable
class ReleaseSlack(Protocol):
    """A ``MarketClock`` feed that holds a closed bar back by its own design (a wait for the
    venue to finish writing the candle, for a late symbol of the same time, a poll): a running
    bot judges a bar late (``Engine._late_shown``) only once a newer bar closed more than what
    of that hold goes beyond one timeframe before it came. Optional: a feed without it is
    judged on the timeframe alone."""

    def release_slack_s(self) -> float:
        """The longest the feed holds a closed bar back on purpose, in seconds."""
        ...


class SymbolChecker(Protocol):
    """Descriptor-level: whether a symbol can be traded with these (validated) params."""

    def __call__(self, params: Any, symbol: str) -> bool: ...


@dataclass(frozen=True)
class _Shape:
    """What a capability asks of a plugin object: method names and their positional arity."""

    kinds: frozenset[str]
    methods: tuple[tuple[str, int], ...]  # (name, positional parameters after self)


SHAPES: dict[Capability, _Shape] = {
    Capability.TAKES_SIGNALS: _Shape(frozenset({"strategy"}), (("on_signal", 1),)),
    Capability.RISK_LOCK: _Shape(frozenset({"risk"}), (("lock_reason", 0), ("reset_lock", 0))),
    Capability.RESTORES_ACCOUNT: _Shape(frozenset({"broker"}), (("restore_account", 1),)),
    Capability.KNOWS_SYMBOLS: _Shape(frozenset({"strategy", "risk", "broker", "data"}), ()),
    Capability.LIVE_FEED: _Shape(frozenset({"data"}), ()),
    Capability.TELLS_MARKET_TIME: _Shape(frozenset({"data"}), (("market_time", 0),)),
    Capability.OBSERVES_BARS: _Shape(frozenset({"risk"}), (("on_bar", 1),)),
    Capability.OBSERVES_FILLS: _Shape(frozenset({"risk"}), (("on_fill", 1),)),
    Capability.OBSERVES_ORDERS: _Shape(frozenset({"risk"}), (("on_order", 2),)),
    Capability.READS_TRADES: _Shape(frozenset({"risk"}), (("bind_trades", 1),)),
    Capability.ACTS_ON_ACCOUNT: _Shape(frozenset({"risk"}), (("account_actions", 1),)),
    Capability.RESTORES_LOCK: _Shape(frozenset({"risk"}), (("restore_lock", 2),)),
    Capability.RESTORES_EQUITY: _Shape(frozenset({"risk"}), (("restore_equity", 2),)),
    Capability.RESTORES_FILLS: _Shape(frozenset({"risk"}), (("restore_fills", 1),)),
    Capability.RESTORES_STATE: _Shape(
        frozenset({"risk"}), (("saved_state", 0), ("restore_state", 1))
    ),
    Capability.REPORTS_TIER: _Shape(frozenset({"risk"}), (("tier", 0),)),
    Capability.VENUE_EXECUTION: _Shape(
        frozenset({"broker"}),
        (
            ("drain_events", 0),
            ("query_order", 1),
            ("order_reports", 1),
            ("fill_reports", 1),
            ("position_reports", 0),
            ("cancel_all", 1),
            ("amend", 3),
            ("is_connected", 0),
        ),
    ),
    Capability.FOLLOWS_BRACKETS: _Shape(
        frozenset({"broker"}), (("follow_bracket", 1), ("protect_filled", 2))
    ),
    Capability.TARGET_POSITIONS: _Shape(frozenset({"strategy"}), (("target_positions", 1),)),
    Capability.INTENT_ONLY: _Shape(frozenset({"risk"}), ()),
    Capability.KNOWS_LEVERAGE: _Shape(frozenset({"broker"}), (("account_leverage", 0),)),
    Capability.QUOTES_PRICES: _Shape(frozenset({"broker"}), (("market_price", 2),)),
    Capability.RESTORES_POSITIONS: _Shape(frozenset({"broker"}), (("restore_positions", 1),)),
    Capability.REPORTS_CASH_FLOWS: _Shape(frozenset({"broker"}), (("cash_flow_reports", 1),)),
    Capability.REPORTS_ACCRUALS: _Shape(frozenset({"broker"}), ()),
    Capability.SIZER: _Shape(frozenset({"risk"}), ()),
    Capability.NEEDS_SIZE: _Shape(frozenset({"risk"}), ()),
}


def parse_capabilities(kind: str, names: Any) -> tuple[frozenset[Capability], list[str]]:
    """Declared capability names → capabilities, with an error for each unknown or misplaced."""
    found: set[Capability] = set()
    errors: list[str] = []
    for name in names or ():
        try:
            capability = Capability(name)
        except ValueError:
            known = ", ".join(c.value for c in Capability)
            errors.append(f"unknown capability {name!r} (known: {known})")
            continue
        if kind not in SHAPES[capability].kinds:
            errors.append(f"capability {capability.value!r} is not for {kind} plugins")
            continue
        found.add(capability)
    return frozenset(found), errors


def _arity_problem(method: Callable[..., Any], wanted: int) -> str:
    """Why ``method`` (bound) cannot be called with ``wanted`` positional arguments, or ""."""
    function = getattr(method, "__func__", None)
    # A method defined on the class: its signature is the function's, found once per function
    # (a plugin is built for every trial of an optimisation, its methods checked each time).
    if (
        isinstance(method, types.MethodType)
        and isinstance(function, types.FunctionType)
        and _binds_after_self(function, wanted)
    ):
        return ""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return ""
    try:
        signature.bind(*([None] * wanted))
    except TypeError:
        return f"takes {signature} but is called with {wanted} argument(s)"
    return ""


@functools.cache
def _binds_after_self(function: types.FunctionType, wanted: int) -> bool:
    """Whether ``function``, bound to an object, takes ``wanted`` positional arguments."""
    try:
        inspect.signature(function).bind(None, *([None] * wanted))
    except (TypeError, ValueError):
        return False  # the caller looks again, on the bound method, to say why
    return True


def check_object(kind: str, obj: object, declared: frozenset[Capability]) -> list[str]:
    """Problems with a built plugin object against its declared capabilities (empty: fine)."""
    problems: list[str] = []
    for capability, shape in SHAPES.items():
        if kind not in shape.kinds:
            continue
        for method_name, arity in shape.methods:
            method = getattr(obj, method_name, None)
            if capability in declared:
                if not callable(method):
                    attributes = [name for name in dir(obj) if not name.startswith("__")]
                    near = difflib.get_close_matches(method_name, attributes, n=1)
                    hint = f" (found {near[0]!r}: misspelt?)" if near else ""
                    problems.append(
                        f"declares {capability.value!r} but has no method {method_name!r}{hint}"
                    )
                    continue
                problem = _arity_problem(method, arity)
                if problem:
                    problems.append(f"method {method_name!r} {problem}")
            elif callable(method):
                problems.append(
                    f"has method {method_name!r} but does not declare capability "
                    f"{capability.value!r} (add it to the descriptor's capabilities, or the "
                    "runtime will never call it)"
                )
    return problems


__all__ = [
    "QUOTE_MAX_AGE_S",
    "RESTORED_FILLS",
    "SHAPES",
    "AccountAction",
    "AccountActor",
    "AccountRestorer",
    "ActionKind",
    "BarObserver",
    "BracketFollower",
    "Capability",
    "CashFlowReporter",
    "CashFlowRestorer",
    "ChildCutter",
    "EquityRestorer",
    "FillObserver",
    "FillRestorer",
    "LockRestorer",
    "MarketClock",
    "MissedBarMatcher",
    "OrderObserver",
    "OrderRestorer",
    "PositionRestorer",
    "PriceQuoter",
    "RiskLockHolder",
    "SignalReceiver",
    "SpotCloses",
    "StateRestorer",
    "SymbolChecker",
    "TargetPlan",
    "TargetPositioner",
    "TicketBrackets",
    "TierReporter",
    "TradeReader",
    "VenueExecution",
    "check_object",
    "parse_capabilities",
]
