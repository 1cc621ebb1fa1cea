"""The paper broker: a simulated venue with the same contract as the real brokers.

Fill rules (the engine's promise to strategy authors):
- An order is worked only on bars that open at or after the time it was sent, so a signal
  taken at a bar's close can never fill inside that bar.
- Market orders fill at the next bar's open, moved against the taker by ``slippage_bps``.
- Limit orders fill at their price when the bar trades through it, or at the open if the bar
  opens beyond it (a better price). No slippage; ``maker_fee_bps``. But a limit the open of
  its first bar (or of the first bar after it was moved) is already through was marketable
  when it reached the venue: it fills as a market order does, at the open with the slippage
  and ``fee_bps``, never beyond its limit.
- Stop orders trigger when the bar trades through the stop and fill at the stop (or at the
  open when the bar gaps through it), plus slippage.
- ``take_profit_fill: market``: a bracket's take-profit is not a resting limit but a market
  order sent when the price reaches it (live Kraken spot's, which the broker watches): it
  fills at its price, or at the open when the bar gapped through it, as a stop does, with the
  slippage against the bot and ``fee_bps``, never the maker's terms.
- Stop-loss and take-profit of a filled entry are one-cancels-other children. When both lie
  inside one bar the worse (the stop-loss) is taken, unless the bar opened beyond one of them.
  Children of an entry that filled inside a bar (not at its open) may only stop out on that
  same bar: the path after the entry is unknown, so the worse outcome is assumed.
- A restarted bot's bars that closed while it was down (``match_missed_bar``) work the orders
  that rested on the book before the restart, as the venue would have meanwhile, by the rules
  above (a stop the price crossed and came back from is filled; both children inside one bar:
  the stop-loss); an order sent since the restart waits for the first live bar.
- A fill that would leave margin (gross notional / leverage) above equity is rejected.
- Liquidation (``maintenance_margin_rate``, 0.005 by default; 0: off): the account is one
  cross-margin wallet, and when its equity falls to that fraction of its gross notional the
  position is closed at the price where they meet (``paper_liquidation``), or at the bar's open
  when it opened beyond it, with ``fee_bps`` plus ``liquidation_fee_bps``; the fill's reason is
  ``liquidation`` and its order id ``liquidation:<symbol>:<bar time>``, none of the bot's. The
  symbol's working orders are cancelled (``cancelled_by_venue``). The bar's open comes first
  (a gap beyond the price liquidates before any order), then the orders it fills (market
  orders, and resting ones it opened beyond); inside the bar, the bot's own stop that the price
  reaches first (a long's at or above the liquidation price) fills first, otherwise the
  liquidation comes first; a position an order opened inside the bar is looked at over the
  rest of it. After a restart, another symbol's price is known only from its next bar (its last
  fill's is no price to liquidate on). A long at leverage 1 is never liquidated.
- Funding (``funding_rate``, off by default): at each funding time (00:00 UTC and every
  ``funding_interval_h`` after) a position pays ``quantity × price × rate`` (a long pays a
  positive rate, a short receives it). It is settled on the symbol's first bar opening at or
  after that time, before the bar's fills (the position held at that time), at the bar's open:
  the mark then, or the first price after it when the data has a gap (each time in the gap is
  paid once, at that price). Never a later price. Booked into this account's cash (the margin
  check sees it) and reported among ``on_bar``'s events as a ``CashFlow`` whose ``flow_id``,
  ``funding:<symbol>:<time>``, is the same after a restart, so the engine books it once.
- Funding history (``funding_history``: a venue's funding-rate CSV per symbol): that symbol pays
  at the history's own times (a venue's interval may change, 8h to 4h), each at its own rate,
  settled as above. A position held at a funding time the history has no rate for — an
  interval after its last time, or before its first, or in a hole of the file (rows missing:
  ``paper_funding_history``'s rule) — fails the run with a ``DataError`` naming the symbol,
  the param and the history's span or the hole's rows, rather than paying 0 or a guess.
- Currencies: profit (quantity × price move) is booked as money of the account, unconverted.
  ``connect`` refuses a symbol whose name says its profit is in another currency than
  ``spec.capital.currency`` (USDJPY on USD), or a contract settled in another currency than
  its quote (``paper_currency``; USD and its stablecoins count as one).

It implements the real venues' contract (``venue-execution``) as its reference: refusals and
cancels carry a ``ReasonCode``, orders can be queried by client order id, amended and cancelled
per symbol, and it reports orders, fills and positions as a venue would. Its answers are
immediate (no network), so ``submit`` returns OPEN or REJECTED rather than PENDING.

One book of the account: the engine's portfolio applies fills to positions (average price,
realized PnL). This broker keeps only what matching needs, the cash and the signed quantity
of each symbol (reduce-only clipping, the margin check) and the marks; a position's average
price is worked out when asked, by replaying the fills it keeps (a backtest keeps none).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from tradefleet_plugins.brokers.paper_currency import currency_refusal
from tradefleet_plugins.brokers.paper_funding_files import load_funding_histories
from tradefleet_plugins.brokers.paper_funding_history import (
    FundingHistory,
    funding_due,
    hole_around,
    next_funding_time,
    uncovered,
)
from tradefleet_plugins.brokers.paper_liquidation import (
    liquidation_fill_price,
    liquidation_price,
)
from tradefleet_plugins.brokers.paper_params import InstrumentParams, PaperBrokerParams
from tradefleet_plugins.feeds.csv_time import format_time
from tradefleet_runtime.sdk import (
    LIQUIDATION_TAG,
    TAKE_PROFIT_TAG,
    Bar,
    BrokerContext,
    CashFlow,
    DataError,
    Fill,
    Instrument,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PluginError,
    Position,
    PositionReport,
    ReasonCode,
    Side,
    apply_fill,
    bracket_children,
    fill_reason,
    netted_quantity,
)

_EMPTY: tuple[Fill | OrderUpdate | CashFlow, ...] = ()
_INF = float("inf")
# Read per order and per fill: module constants, not attribute lookups through the enum classes.
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_STOP = OrderType.STOP
_LIMIT = OrderType.LIMIT
_OPEN = OrderStatus.OPEN
_FILLED = OrderStatus.FILLED
_CANCELLED = OrderStatus.CANCELLED
_REJECTED = OrderStatus.REJECTED
_NO_CODE = ReasonCode.NONE
_FUNDING = "funding"  # CashFlow.kind of the payments this broker makes
# Named tuples built positionally: keyword construction costs several times more, and these
# are built for every order and every fill.
_new = tuple.__new__


class PaperBroker:
    """Simulated account used by backtest and paper bots."""

    def __init__(self, params: PaperBrokerParams) -> None:
        self.params = params
        self._fee = params.fee_bps / 10_000.0
        self._maker_fee = (
            params.maker_fee_bps if params.maker_fee_bps is not None else params.fee_bps
        ) / 10_000.0
        self._slip = params.slippage_bps / 10_000.0
        # A bracket's take-profit sent as a market order when the price reaches it (live
        # Kraken spot's), instead of resting as a limit: a taker's fill.
        self._tp_market = params.take_profit_fill == "market"
        self._leverage = params.leverage
        self._mm_rate = params.maintenance_margin_rate
        self._liquidates = self._mm_rate > 0.0
        self._liquidation_fee = (params.fee_bps + params.liquidation_fee_bps) / 10_000.0
        # Each held symbol's liquidation price (``paper_liquidation``), a long's as is and a
        # short's negated, so that one comparison a bar tells (a symbol no price liquidates is
        # absent). Kept true after every fill and payment; with more than one symbol held
        # (``_several``) the others' marks move it, and a bar's symbol's is worked out again.
        self._guards: dict[str, float] = {}
        self._several = False
        # Symbols a restored account holds whose mark is still their last fill's price (no bar
        # since the restart): another symbol's liquidation price is not worked out on it.
        self._stale: set[str] = set()
        # The account as matching sees it: cash, the signed quantity per symbol (a symbol stays
        # once it has traded, flat or not) and the last price of each symbol.
        self._cash = 0.0
        self._held: dict[str, float] = {}
        self._marks: dict[str, float] = {}
        # Working orders, by symbol in the order they were sent, and by client order id.
        self._working: dict[str, list[Order]] = {}
        self._by_id: dict[str, Order] = {}
        # Bracket children of an entry filled inside a bar: before this time only the stop may
        # trigger (the path after the entry is unknown).
        self._stop_only_until: dict[str, int] = {}
        # Limit orders the bot sent or moved, or a bracket placed at its entry's fill at an
        # open, that no bar has looked at yet. One the open of the first bar it meets is
        # already through was marketable when it reached the venue: it takes liquidity, as a
        # market order does (the taker fee, the slippage), where a limit that rested first and
        # is then gapped through is a maker's. Orders submitted after a restart and before its
        # first bar (``_rearmed``: the journal's re-armed orders, a signal's) are new only if
        # no bar met them before the restart: when that first bar is the one after their
        # creation (``_rearm_until_first_bar``).
        self._fresh: set[str] = set()
        self._rearming = False
        self._rearmed: dict[str, int] = {}
        self._known_ids: set[str] = set()
        self._fill_count = 0
        self._now = 0
        self._instruments: dict[str, Instrument] = {}
        # For the venue's reports: every order sent, what of it filled (quantity, notional),
        # how it ended (status, ts), and the executions. Kept as plain references and tuples:
        # reports are built only when asked, so the per-order path pays next to nothing.
        self._orders: dict[str, Order] = {}
        self._filled: dict[str, tuple[float, float]] = {}
        self._final: dict[str, tuple[OrderStatus, int]] = {}
        self._fills: list[Fill] = []
        # The journaled fills an account was restored from: with ``_fills``, what positions'
        # average prices are replayed from when asked.
        self._restored: list[Fill] = []
        self._queued: list[Fill | OrderUpdate] = []
        # A backtest asks no venue questions: its report comes from the journal. Keeping every
        # order and fill of a million-bar run in memory would cost tens of megabytes for nothing.
        self._keep = True
        # Funding: the constant rate of each symbol that pays one, the history of each that
        # pays by its venue's history (both chosen at connect, from the bot's symbols), the
        # symbols paying either, the seconds between constant-rate funding times, and per
        # symbol holding a position the next funding time it owes. ``_funding_due`` is the
        # earliest of those: a bar opening before it owes nothing, which is the one comparison
        # a bar pays (inf: none owed, or funding off, the default).
        self._funding_rates: dict[str, float] = {}
        # Read when the broker is built (the bot assembled), before a run is journaled: a file
        # refused fails the command cleanly. Not when the params are checked: the operator's
        # admission checks them without the files. The broker is not told the manifest's
        # folder (the csv feed is, through its FeedRequest): relative paths are the working
        # directory's.
        self._histories = load_funding_histories(params.funding_history, Path.cwd())
        self._funding_histories: dict[str, FundingHistory] = {}
        self._funding_symbols: frozenset[str] = frozenset()
        self._funding_step = params.funding_interval_h * 3600
        self._funding_next: dict[str, int] = {}
        self._funding_due: float = _INF
        self._currency = ""

    # -- Broker protocol ---------------------------------------------------------------------

    def connect(self, ctx: BrokerContext) -> None:
        # This broker books quantity × price move as money of the account: a symbol whose
        # name says it pays in another currency would be booked at a rate of 1 (USDJPY's yen
        # as dollars), and every figure of the rehearsal with it. Refused before anything,
        # as the MT5 broker refuses it from the terminal's profit currency.
        refusal = currency_refusal(ctx.symbols, ctx.currency)
        if refusal is not None:
            raise PluginError(refusal)
        self._cash = ctx.initial_capital
        self._keep = ctx.mode != "backtest"
        self._currency = ctx.currency
        rate_of = self.params.funding_rate_of
        self._funding_rates = {s: rate_of(s) for s in ctx.symbols if rate_of(s)}
        histories = self._histories
        self._funding_histories = {s: histories[s] for s in ctx.symbols if s in histories}
        self._funding_symbols = frozenset(self._funding_rates) | frozenset(self._funding_histories)
        if (
            not self._liquidates
            and not self._funding_symbols
            and type(self).on_bar is PaperBroker.on_bar
        ):
            # An account that is never liquidated and pays no funding has nothing to look for
            # on a bar but its orders: the lean path. (Not for a subclass's own ``on_bar``,
            # which an instance attribute would hide.)
            self.on_bar = self._on_bar_plain  # type: ignore[method-assign]

    def instrument(self, symbol: str) -> Instrument:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            limits: InstrumentParams = self.params.instruments.get(
                symbol, self.params.default_instrument
            )
            instrument = self._instruments[symbol] = Instrument(
                symbol=symbol,
                tick_size=limits.tick_size,
                lot_step=limits.lot_step,
                min_quantity=limits.min_quantity,
                min_notional=limits.min_notional,
                contract_size=limits.contract_size,
                # What its taking fills cost, stated so a sizer's leverage cap leaves room.
                taker_fee=self._fee,
                slippage=self._slip,
            )
        return instrument

    def submit(self, order: Order) -> OrderUpdate:
        order_id = order.client_order_id
        if order_id in self._known_ids:
            # The venue's answer to a retried id: refuse, never create a second order.
            return OrderUpdate(
                order_id,
                OrderStatus.REJECTED,
                order.created_ts,
                "duplicate client order id",
                code=ReasonCode.DUPLICATE_CLIENT_ID,
            )
        self._known_ids.add(order_id)
        if self._keep:
            self._orders[order_id] = order
        problem = self._validate(order)
        if problem:
            self._final[order_id] = (_REJECTED, order.created_ts)
            return OrderUpdate(order_id, _REJECTED, order.created_ts, problem[1], code=problem[0])
        self._work(order)
        if order[4] is _LIMIT:
            if self._rearming:
                self._rearmed[order_id] = order[11]
            else:
                self._fresh.add(order_id)
        return _new(
            OrderUpdate, (order_id, _OPEN, order.created_ts, "", order_id, _NO_CODE, None, None)
        )

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        order = self._by_id.get(client_order_id)
        if order is None:
            return None
        self._drop(order)
        self._final[client_order_id] = (_CANCELLED, self._now)
        # Who asked: the journal keeps the reason, not the code, and a bare "cancelled" read
        # the same as the venue's own cancels (an OCO sibling's, a liquidation's).
        return OrderUpdate(
            client_order_id,
            OrderStatus.CANCELLED,
            self._now,
            "cancelled at the bot's request",
            code=ReasonCode.CANCELLED_BY_USER,
        )

    # -- venue-execution: the real venues' contract, answered from memory --------------------

    def drain_events(self) -> Sequence[Fill | OrderUpdate]:
        events, self._queued = self._queued, []
        return events

    def query_order(self, client_order_id: str) -> OrderReport | None:
        order = self._orders.get(client_order_id)
        return None if order is None else self._report(order)

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        return [
            self._report(order)
            for order_id, order in self._orders.items()
            if order_id in self._by_id or self._final.get(order_id, (None, 0))[1] >= since_ts
        ]

    def fill_reports(self, since_ts: int) -> Sequence[Fill]:
        return [fill for fill in self._fills if fill.ts >= since_ts]

    def position_reports(self) -> Sequence[PositionReport]:
        return [
            PositionReport(s, p.quantity, p.average_price, self._now)
            for s, p in self.positions().items()
        ]

    def cancel_all(self, symbol: str | None) -> None:
        for order in list(self._by_id.values()):
            if symbol is None or order.symbol == symbol:
                update = self.cancel(order.client_order_id)
                if update is not None:
                    self._queued.append(update)

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        """Native amend: the order keeps its id and its place (a simulator has no queue)."""
        order = self._by_id.get(client_order_id)
        if order is None:
            return OrderUpdate(
                client_order_id,
                OrderStatus.REJECTED,
                self._now,
                "no working order with this client order id",
                code=ReasonCode.UNKNOWN_ORDER,
            )
        changed = order
        if quantity is not None:
            changed = changed._replace(quantity=quantity)
        if price is not None:
            changed = changed._replace(price=price)
        problem = self._validate(changed)
        if problem:
            # The order stays as it was, still working: a refused amend changes nothing.
            return OrderUpdate(
                client_order_id,
                OrderStatus.OPEN,
                self._now,
                f"amend refused: {problem[1]}",
                code=problem[0],
            )
        working = self._working[order.symbol]
        working[working.index(order)] = changed
        self._by_id[client_order_id] = changed
        self._orders[client_order_id] = changed
        if price is not None and changed.order_type is _LIMIT:
            self._fresh.add(client_order_id)  # moved: at its new price, it arrives again
        return OrderUpdate(client_order_id, OrderStatus.OPEN, self._now, "amended", client_order_id)

    def is_connected(self) -> bool:
        return True

    def account_leverage(self) -> float:
        return self._leverage

    def _report(self, order: Order) -> OrderReport:
        order_id = order.client_order_id
        filled, notional = self._filled.get(order_id, (0.0, 0.0))
        if order_id in self._by_id:
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
            ts = order.created_ts
        else:
            status, ts = self._final.get(order_id, (OrderStatus.FILLED, order.created_ts))
        return OrderReport(
            client_order_id=order_id,
            venue_order_id=order_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            filled_quantity=filled,
            status=status,
            ts=ts,
            price=order.price,
            average_price=notional / filled if filled else None,
            reduce_only=order.reduce_only,
        )

    def open_orders(self) -> Sequence[Order]:
        return list(self._by_id.values())

    def positions(self) -> dict[str, Position]:
        """Open positions with their average price and realized PnL, replayed from the fills.

        A rare question (tests, a venue's report), so the fills pay nothing for it. A backtest
        keeps no fills: its positions are the engine portfolio's, the one book of the account.
        """
        if not self._keep:
            raise RuntimeError(
                "positions: a backtest's paper broker keeps no fills; ask the engine's portfolio"
            )
        book: dict[str, Position] = {}
        for fill in (*self._restored, *self._fills):
            position = book.get(fill.symbol)
            if position is None:
                position = book[fill.symbol] = Position(fill.symbol)
            apply_fill(position, fill)
        return {s: p for s, p in book.items() if p.quantity}

    def balance(self) -> float:
        return self._cash

    def close(self) -> None:
        """Nothing to release: the simulated account lives in memory."""

    def restore_account(self, fills: Sequence[Fill]) -> None:
        """Rebuild the simulated account from the bot's journaled fills (after a restart)."""
        for fill in fills:
            signed = fill.quantity if fill.side is _BUY else -fill.quantity
            self._cash -= signed * fill.price + fill.fee
            self._held[fill.symbol] = netted_quantity(self._held.get(fill.symbol, 0.0), signed)
            self._marks[fill.symbol] = fill.price
        self._restored.extend(fills)
        self._fill_count = len(fills)
        # A position held since its last fill owes the funding times after that fill.
        self._owe_funding_after((fill.symbol, fill.ts) for fill in fills)
        self._stale = {symbol for symbol, held in self._held.items() if held}
        self._guard_all()
        self._rearm_until_first_bar()

    def _rearm_until_first_bar(self) -> None:
        """The engine re-arms the journal's working orders after ``restore_account`` and
        before the first bar. A limit submitted then (re-armed, or a signal's) is new if that
        first bar is the one after its creation: no bar met it before the restart. The first
        bar decides, and puts ``on_bar`` back (no cost after it)."""
        self._rearming = True
        normal = self.on_bar

        def first_bar(bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow]:
            self._rearming = False
            self.on_bar = normal  # type: ignore[method-assign]
            for order_id, created in self._rearmed.items():
                if bar.ts - created < bar.timeframe_s and order_id in self._by_id:
                    self._fresh.add(order_id)
            self._rearmed.clear()
            return normal(bar)

        self.on_bar = first_bar  # type: ignore[method-assign]

    def restore_cash_flows(self, flows: Sequence[CashFlow]) -> None:
        """After ``restore_account``: the payments outside fills (this broker's funding) the
        bot booked in earlier runs. Into the cash, as they were then; and a funding time paid
        is not owed again (a bar handled again after the restart settles nothing twice)."""
        for flow in flows:
            self._cash += flow.amount
        self._owe_funding_after((flow.symbol, flow.ts) for flow in flows)
        self._guard_all()

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow]:
        """A bar of the account: a bar that owes funding, or reaches its symbol's liquidation
        price, takes the slow path (``_guarded_bar``); any other is matched against the
        symbol's working orders, for a dictionary read and a comparison more than
        ``_on_bar_plain``, which ``connect`` puts in place when neither can happen."""
        symbol = bar[0]
        # Every symbol's last close (those with a position are read: margin, liquidation).
        self._marks[symbol] = bar[6]
        if bar[2] >= self._funding_due:
            return self._guarded_bar(bar)
        guards = self._guards
        if guards:  # a position some price liquidates
            if self._several:
                if self._stale:
                    self._stale.discard(symbol)
                self._guard(symbol)  # the other symbols' marks moved it
            guard = guards.get(symbol)
            if guard is not None and (bar[5] <= guard if guard > 0.0 else bar[4] >= -guard):
                return self._guarded_bar(bar)
        working = self._working.get(symbol)
        if not working:
            return _EMPTY
        if self._liquidates:
            # Its orders may open or grow a position inside the bar: the rest of the bar is
            # then looked at against its liquidation price (``_guarded_bar``).
            return self._guarded_bar(bar)
        return self._match(bar, working)

    def match_missed_bar(
        self, bar: Bar, resting: Collection[str]
    ) -> Sequence[Fill | OrderUpdate | CashFlow]:
        """A bar that closed while the bot was down (``MissedBarMatcher``): the venue worked the
        orders resting on its book then — ``resting``, re-armed from the journal, and the
        bracket children their fills open — as on any bar, funding and liquidation included.
        An order sent since the restart (a flatten owed, a decision taken on the history) had
        not reached the venue at that bar: it is held back, neither worked nor cancelled by it,
        and keeps its place for the first live bar."""
        working = self._working.get(bar[0])
        held = [o for o in working or () if not _rested(o, resting)]
        if not held:
            return self.on_bar(bar)
        assert working is not None
        working[:] = [o for o in working if _rested(o, resting)]
        try:
            return self.on_bar(bar)
        finally:
            # Matching removes from and appends to this very list; the held-back orders, sent
            # after every order that rested, go back behind them.
            self._working[bar[0]].extend(held)

    def _on_bar_plain(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow]:
        """``on_bar`` of an account with no funding and no liquidation."""
        symbol = bar[0]
        self._marks[symbol] = bar[6]
        working = self._working.get(symbol)
        if not working:
            return _EMPTY
        return self._match(bar, working)

    # -- liquidation -------------------------------------------------------------------------

    def _guarded_bar(self, bar: Bar) -> list[Fill | OrderUpdate | CashFlow]:
        """A bar that owes funding or may liquidate: funding first (the position held at that
        time), then the bar's open (a gap beyond the liquidation price liquidates before any
        order), its market orders, and inside the bar the liquidation or the bot's stop the
        price reaches first; then the rest of its orders, and the liquidation price again."""
        events: list[Fill | OrderUpdate | CashFlow] = []
        symbol = bar[0]
        ts = bar[2]
        self._now = ts
        if self._stale:
            self._stale.discard(symbol)
        due = self._funding_next.get(symbol)
        if due is not None and due <= ts:
            events.extend(self._settle_funding(symbol, due, bar))
            self._funding_due = min(self._funding_next.values(), default=_INF)
            self._guard_all()  # the cash moved
        held = self._held.get(symbol, 0.0)
        price = self._liquidation_at(symbol)
        if price is not None and (bar[3] <= price if held > 0.0 else bar[3] >= price):
            events.extend(self._liquidate(symbol, bar[3], bar))
            return events
        working = self._working.get(symbol)
        matched: list[Fill | OrderUpdate] = []
        if working:
            self._match_open(bar, working, matched)
            # Resting orders the bar opened beyond filled at the open too, before any price
            # inside it (a take-profit a gap up went through, then a fall).
            at_open = [
                order
                for order in working
                if order.created_ts <= ts
                and order.order_type is not _MARKET
                and (hit := self._trigger(order, bar)) is not None
                and hit[1]
            ]
            if at_open:
                self._match_resting(bar, at_open, matched)
        events.extend(matched)
        # Inside the bar: the liquidation first, unless the bot's stop comes before it.
        if self._liquidated_inside(symbol, bar, events, stops_first=True):
            return events
        if working:
            matched = []
            self._match_rest(bar, working, matched)
            events.extend(matched)
            # What the rest left (a partial stop, an entry filled inside the bar).
            self._liquidated_inside(symbol, bar, events, stops_first=False)
        return events

    def _liquidated_inside(
        self,
        symbol: str,
        bar: Bar,
        events: list[Fill | OrderUpdate | CashFlow],
        stops_first: bool,
    ) -> bool:
        """Liquidate ``symbol``'s position if ``bar`` reaches its liquidation price (appending
        the events), unless ``stops_first`` and the bot's own stop comes before it; whether
        it did."""
        price = self._liquidation_at(symbol)
        if price is None:
            return False
        held = self._held.get(symbol, 0.0)
        at = liquidation_fill_price(held, price, bar[3], bar[4], bar[5])
        if at is None or (stops_first and self._stop_first(symbol, held, price, bar)):
            return False
        events.extend(self._liquidate(symbol, at, bar))
        return True

    def _stop_first(self, symbol: str, held: float, price: float, bar: Bar) -> bool:
        """Whether the bot's own stop closing ``symbol``'s position triggers in ``bar`` before
        the price reaches its liquidation price ``price`` (a long's sell stop at or above it,
        a short's buy stop at or below it): it is then filled first, as on the venue."""
        closing = Side.SELL if held > 0.0 else Side.BUY
        for order in self._working.get(symbol, ()):
            if order.order_type is not _STOP or order.side is not closing or order.price is None:
                continue
            if held > 0.0 and price <= order.price and bar[5] <= order.price:
                return True
            if held < 0.0 and price >= order.price and bar[4] >= order.price:
                return True
        return False

    def _liquidation_at(self, symbol: str) -> float | None:
        """``symbol``'s liquidation price now (the other symbols at their marks)."""
        self._guard(symbol)
        guard = self._guards.get(symbol)
        if guard is None:
            return None
        return guard if guard > 0.0 else -guard

    def _guard(self, symbol: str) -> None:
        """Work out ``symbol``'s liquidation price into ``_guards`` (absent: none)."""
        held = self._held.get(symbol, 0.0)
        price = None
        stale = self._stale
        if held and not (stale and any(s != symbol and s in stale for s in self._held)):
            rest = self._cash
            gross = 0.0
            marks = self._marks
            for other, quantity in self._held.items():
                if quantity and other != symbol:
                    mark = marks[other]
                    rest += quantity * mark
                    gross += abs(quantity) * mark
            price = liquidation_price(held, rest, gross, self._mm_rate)
        if price is None:
            self._guards.pop(symbol, None)
        else:
            self._guards[symbol] = price if held > 0.0 else -price

    def _guard_all(self) -> None:
        """Every held symbol's liquidation price again (the cash or a position changed)."""
        if not self._liquidates:
            return
        held = [symbol for symbol, quantity in self._held.items() if quantity]
        self._several = len(held) > 1
        self._guards.clear()
        for symbol in held:
            self._guard(symbol)

    def _liquidate(self, symbol: str, price: float, bar: Bar) -> list[Fill | OrderUpdate]:
        """The venue closes ``symbol``'s whole position at ``price`` and cancels the symbol's
        working orders (after the fill: the bot sees the position gone, then its orders)."""
        held = self._held[symbol]
        ts = bar[2]
        quantity = abs(held)
        side = Side.SELL if held > 0.0 else _BUY
        fee = quantity * price * self._liquidation_fee
        order_id = f"{LIQUIDATION_TAG}:{symbol}:{ts}"
        self._fill_count += 1
        fill = Fill(order_id, symbol, side, quantity, price, fee, ts, order_id, LIQUIDATION_TAG)
        self._cash += held * price - fee
        self._held[symbol] = 0.0
        self._marks[symbol] = price
        if self._keep:
            self._fills.append(fill)
        events: list[Fill | OrderUpdate] = [fill]
        for order in list(self._working.get(symbol, ())):
            self._drop(order)
            self._final[order.client_order_id] = (_CANCELLED, ts)
            events.append(
                OrderUpdate(
                    order.client_order_id,
                    OrderStatus.CANCELLED,
                    ts,
                    "cancelled by the venue: the position was liquidated",
                    code=ReasonCode.CANCELLED_BY_VENUE,
                )
            )
        self._owe_funding_after(((symbol, ts),))
        self._guard_all()
        return events

    # -- funding -----------------------------------------------------------------------------

    def _settle_funding(self, symbol: str, due: int, bar: Bar) -> list[CashFlow]:
        """``symbol``'s payments for the funding times from ``due`` to ``bar``'s open, each at
        the open (the first price at or after every one of them), on the position held: at
        the constant rate on the ``funding_interval_h`` grid, or at the history's own times
        and rates."""
        opened = bar[2]
        held = self._held.get(symbol, 0.0)
        if not held:
            # Flat: owes nothing until a fill opens a position again (``_execute``).
            del self._funding_next[symbol]
            return []
        history = self._funding_histories.get(symbol)
        instants: Sequence[int]
        rates: Sequence[float]
        if history is None:
            step = self._funding_step
            instants = range(due, opened + 1, step)
            rates = [self._funding_rates[symbol]] * len(instants)
            self._funding_next[symbol] = (opened // step + 1) * step
        else:
            missing = uncovered(history, due, opened)
            if missing is not None:
                raise _beyond_history(symbol, history, missing)
            instants, rates = funding_due(history, due, opened)
            self._funding_next[symbol] = next_funding_time(history, opened)
        flows: list[CashFlow] = []
        price = bar[3]
        currency = self._currency
        for instant, rate in zip(instants, rates, strict=True):
            amount = -held * price * rate
            flow_id = f"funding:{symbol}:{instant}"
            flows.append(_new(CashFlow, (flow_id, symbol, amount, currency, instant, _FUNDING)))
            self._cash += amount
        return flows

    def _next_funding(self, symbol: str, ts: int) -> int:
        """``symbol``'s first funding time after ``ts``."""
        history = self._funding_histories.get(symbol)
        if history is not None:
            return next_funding_time(history, ts)
        step = self._funding_step
        return (ts // step + 1) * step

    def _owe_funding_after(self, moments: Iterable[tuple[str, int]]) -> None:
        """Each (symbol, ts): ``symbol``'s position, if it holds one and pays funding, owes the
        funding times after ``ts`` (and none at or before it), unless a later moment says
        otherwise."""
        paying, nexts = self._funding_symbols, self._funding_next
        for symbol, ts in moments:
            if symbol in paying and self._held.get(symbol, 0.0):
                nexts[symbol] = max(nexts.get(symbol, 0), self._next_funding(symbol, ts))
            else:
                nexts.pop(symbol, None)
        self._funding_due = min(nexts.values(), default=_INF)

    # -- matching ----------------------------------------------------------------------------

    def _validate(self, order: Order) -> tuple[ReasonCode, str] | None:
        # ``0 < x < inf`` is False for NaN: a NaN price would rest for ever, a NaN stop-loss
        # never trigger; a venue refuses both, and so does its reference.
        quantity = order.quantity
        if not 0.0 < quantity < _INF:
            return ReasonCode.INVALID_QUANTITY, f"quantity must be positive, got {quantity}"
        price = order.price
        if order.order_type is not _MARKET and (price is None or not 0.0 < price < _INF):
            return ReasonCode.INVALID_PRICE, f"{order.order_type} order needs a positive price"
        for name, stop in (("stop_loss", order.stop_loss), ("take_profit", order.take_profit)):
            if stop is not None and not 0.0 < stop < _INF:
                return ReasonCode.INVALID_STOPS, f"{name} must be a positive price, got {stop}"
        limits = self._instruments.get(order.symbol) or self.instrument(order.symbol)
        if limits.min_quantity and quantity < limits.min_quantity:
            return (
                ReasonCode.BELOW_MIN_QUANTITY,
                f"quantity {quantity:.10g} below minimum {limits.min_quantity:.10g}",
            )
        return None

    def _work(self, order: Order) -> None:
        working = self._working.get(order.symbol)
        if working is None:
            working = self._working[order.symbol] = []
        working.append(order)
        self._by_id[order.client_order_id] = order

    def _drop(self, order: Order) -> None:
        self._by_id.pop(order.client_order_id, None)
        self._working[order.symbol].remove(order)
        if self._stop_only_until:
            self._stop_only_until.pop(order.client_order_id, None)
        if self._fresh:
            self._fresh.discard(order.client_order_id)

    def _match(self, bar: Bar, working: list[Order]) -> list[Fill | OrderUpdate]:
        self._now = bar[2]
        events: list[Fill | OrderUpdate] = []
        self._match_open(bar, working, events)
        if working:
            self._match_rest(bar, working, events)
        return events

    def _match_open(self, bar: Bar, working: list[Order], events: list[Fill | OrderUpdate]) -> None:
        """Market orders at the open (the common case: often the only orders working)."""
        ts = bar[2]
        ready = [order for order in working if order[4] is _MARKET and order[11] <= ts]
        if ready:
            by_id = self._by_id
            buy_price = bar[3] * (1.0 + self._slip)
            sell_price = bar[3] * (1.0 - self._slip)
            for order in ready:
                if order[0] in by_id:
                    price = buy_price if order[2] is _BUY else sell_price
                    self._execute(order, price, bar, self._fee, fill_reason(order), events, True)

    def _match_rest(self, bar: Bar, working: list[Order], events: list[Fill | OrderUpdate]) -> None:
        """Resting orders; one-cancels-other groups resolved together. Children born in a pass
        (brackets of an entry that just filled) get their own pass over the same bar."""
        ts = bar[2]
        seen: set[str] = set()
        for _pass in range(3):
            resting = [
                order
                for order in working
                if order.created_ts <= ts
                and order.order_type is not _MARKET
                and order.client_order_id not in seen
            ]
            if not resting:
                break
            seen.update(order.client_order_id for order in resting)
            self._match_resting(bar, resting, events)

    def _trigger(self, order: Order, bar: Bar) -> tuple[float, bool] | None:
        """(fill price, triggered at the open) if ``bar`` triggers ``order``, else None."""
        price = order.price
        assert price is not None
        buy = order.side is _BUY
        if order.order_type is _LIMIT:
            if (bar.open <= price) if buy else (bar.open >= price):
                base, at_open = bar.open, True
            elif (bar.low <= price) if buy else (bar.high >= price):
                base, at_open = price, False
            else:
                return None
            if self._tp_market and _market_take_profit(order):
                # Sent at market when the price got there: a taker pays the slippage.
                return base * (1.0 + self._slip if buy else 1.0 - self._slip), at_open
            return base, at_open
        # stop
        if (bar.open >= price) if buy else (bar.open <= price):
            base, at_open = bar.open, True
        elif (bar.high >= price) if buy else (bar.low <= price):
            base, at_open = price, False
        else:
            return None
        return base * (1.0 + self._slip if buy else 1.0 - self._slip), at_open

    def _match_resting(
        self, bar: Bar, resting: list[Order], events: list[Fill | OrderUpdate]
    ) -> None:
        triggered: list[tuple[int, Order, float, bool]] = []
        for order in resting:
            if (
                self._stop_only_until.get(order.client_order_id, 0) > bar.ts
                and order.order_type is not _STOP
            ):
                continue
            hit = self._trigger(order, bar)
            if hit is not None:
                price, at_open = hit
                # At-open triggers happened first; then stops before limits (the worse outcome).
                rank = 0 if at_open else (1 if order.order_type is _STOP else 2)
                triggered.append((rank, order, price, at_open))
        triggered.sort(key=lambda entry: entry[0])
        fresh = self._fresh
        for _rank, order, price, at_open in triggered:
            if order.client_order_id not in self._by_id:
                continue  # cancelled by its OCO sibling
            if order.order_type is not _LIMIT or (self._tp_market and _market_take_profit(order)):
                fee = self._fee  # priced as a taker's by ``_trigger``
            elif at_open and order.client_order_id in fresh:
                price, fee = self._marketable_limit_price(order, price), self._fee
            else:
                fee = self._maker_fee
            self._execute(order, price, bar, fee, fill_reason(order), events, at_open)
        if fresh:
            fresh.difference_update([order.client_order_id for order in resting])

    def _marketable_limit_price(self, order: Order, open_: float) -> float:
        """The fill of a limit order the open is through on its first bar: a market order's
        price (the open, the slippage against it), never worse than the limit."""
        limit = order.price
        assert limit is not None
        if order.side is _BUY:
            return min(open_ * (1.0 + self._slip), limit)
        return max(open_ * (1.0 - self._slip), limit)

    def _execute(
        self,
        order: Order,
        price: float,
        bar: Bar,
        fee_rate: float,
        reason: str,
        events: list[Fill | OrderUpdate],
        at_open: bool,
    ) -> None:
        # One unpacking: cheaper than a named field read each (this runs for every fill).
        (
            order_id,
            symbol,
            side,
            wanted,
            _,
            _,
            stop_loss,
            take_profit,
            reduce_only,
            _,
            oco_group,
            _,
            _,
        ) = order
        ts = bar[2]
        held = self._held.get(symbol, 0.0)
        quantity = wanted
        if reduce_only:
            reducible = -held if side is _BUY else held
            if reducible <= 0:
                self._drop(order)
                events.append(
                    OrderUpdate(
                        order_id,
                        OrderStatus.CANCELLED,
                        ts,
                        "reduce-only order: no position to reduce",
                        code=ReasonCode.REDUCE_ONLY,
                    )
                )
                self._final[order_id] = (_CANCELLED, ts)
                self._cancel_group(order, ts, events, held=held)
                return
            quantity = min(quantity, reducible)
        fee = quantity * price * fee_rate
        signed = quantity if side is _BUY else -quantity
        if abs(held + signed) > abs(held) and not self._margin_ok(
            symbol, held + signed, price, fee
        ):
            self._drop(order)
            events.append(
                OrderUpdate(
                    order_id,
                    OrderStatus.REJECTED,
                    ts,
                    "insufficient margin",
                    code=ReasonCode.INSUFFICIENT_FUNDS,
                )
            )
            self._final[order_id] = (_REJECTED, ts)
            return
        # ``_drop`` inlined: this is every fill's path.
        del self._by_id[order_id]
        self._working[symbol].remove(order)
        if self._stop_only_until:
            self._stop_only_until.pop(order_id, None)
        self._fill_count += 1
        fill: Fill = _new(
            Fill,
            (
                order_id,
                symbol,
                side,
                quantity,
                price,
                fee,
                ts,
                f"{order_id}-f{self._fill_count}",
                reason,
            ),
        )
        # The account as matching needs it; positions and PnL are the engine portfolio's.
        self._cash -= signed * price + fee
        self._held[symbol] = netted_quantity(held, signed)
        self._marks[symbol] = price
        if self._liquidates:
            self._guard_all()
        if not held and self._funding_symbols:
            # A position opened from flat owes the funding times after this fill.
            self._owe_funding_after(((symbol, ts),))
        if self._keep:
            self._fills.append(fill)
            self._filled[order_id] = (quantity, quantity * price)
            self._final[order_id] = (_FILLED if quantity >= wanted else _CANCELLED, ts)
        events.append(fill)
        if quantity < wanted:
            # A reduce-only order cut to the position: the rest is gone, and the bot must know
            # (it would otherwise count a working remainder, e.g. as a stop protecting a later
            # position, that the venue no longer holds).
            events.append(
                OrderUpdate(
                    order_id,
                    OrderStatus.CANCELLED,
                    ts,
                    f"reduce-only: {wanted - quantity:.10g} more would have opened a position",
                    code=ReasonCode.REDUCE_ONLY,
                )
            )
        if oco_group is not None:
            self._cancel_group(order, ts, events)
        if stop_loss is not None or take_profit is not None:
            self._open_bracket(order, quantity, bar, at_open)

    def _margin_ok(self, symbol: str, new_quantity: float, price: float, fee: float) -> bool:
        exposure = abs(new_quantity) * price
        equity = self._cash - fee
        marks = self._marks
        for other, quantity in self._held.items():
            if other == symbol:
                equity += quantity * price
            else:
                # Set at the symbol's first fill, so every held symbol has one.
                mark = marks[other]
                exposure += abs(quantity) * mark
                equity += quantity * mark
        return exposure / self._leverage <= equity

    def _cancel_group(
        self,
        order: Order,
        ts: int,
        events: list[Fill | OrderUpdate],
        held: float | None = None,
    ) -> None:
        """Cancel ``order``'s one-cancels-other siblings: it filled, or it found no position
        to reduce (``held``: the position it found, flat or on its own side) and was
        cancelled itself, which the reason says — said filled, the order log told the risk
        manager a stop-loss had closed a position that something else (a flatten, a close)
        had closed before it."""
        if order.oco_group is None:
            return
        reason = (
            "one-cancels-other sibling filled"
            if held is None
            else sibling_ended_flat(order.client_order_id, order.symbol, order.side, held)
        )
        for sibling in list(self._working.get(order.symbol, ())):
            if sibling.oco_group == order.oco_group:
                self._drop(sibling)
                events.append(
                    OrderUpdate(
                        sibling.client_order_id,
                        OrderStatus.CANCELLED,
                        ts,
                        reason,
                        code=ReasonCode.CANCELLED_BY_VENUE,
                    )
                )
                self._final[sibling.client_order_id] = (_CANCELLED, ts)

    def _open_bracket(self, parent: Order, quantity: float, bar: Bar, at_open: bool) -> None:
        for child in bracket_children(parent, quantity, bar.ts):
            self._known_ids.add(child.client_order_id)
            if self._keep:
                self._orders[child.client_order_id] = child
            self._work(child)
            # Entered at the open: the whole bar is after the entry, and a take-profit the open
            # is already through arrives marketable (a taker's). Entered inside the bar: only
            # the worse outcome (the stop) may still happen in it.
            if not at_open:
                self._stop_only_until[child.client_order_id] = bar.ts + bar.timeframe_s
            elif child.order_type is _LIMIT:
                self._fresh.add(child.client_order_id)


def sibling_ended_flat(sibling_id: str, symbol: str, side: Side, held: float) -> str:
    """Why a bracket child is cancelled when its one-cancels-other sibling ``sibling_id``, a
    reduce-only order on ``side``, triggered with nothing to reduce (pure): nothing filled (the
    engine says the same of a child it cuts to nothing: "nothing left to close"). The reason
    names the position ``held`` (signed) as it is: at 0, or on the sibling's own side when a
    reversal left it there (a long's stop-loss finding a short), which is no flat account."""
    cause = (
        f"one-cancels-other sibling {sibling_id} triggered with no position to reduce, and was "
        "cancelled, not filled"
    )
    if held == 0.0:
        return f"nothing left to close: the {symbol} position is at 0 ({cause})"
    found = "long" if held > 0.0 else "short"
    guarded = "short" if side is _BUY else "long"  # a buy reduces a short
    return (
        f"nothing left to close: the {symbol} position is {found} {abs(held):.10g}, not "
        f"{guarded}: nothing of it to reduce ({cause})"
    )


def _rested(order: Order, resting: Collection[str]) -> bool:
    """Whether ``order`` rested on the book before the restart (``match_missed_bar``): one of
    ``resting``, or a bracket child of one (opened by its fill during the outage)."""
    return order.client_order_id in resting or (
        order.parent_id is not None and order.parent_id in resting
    )


def _market_take_profit(order: Order) -> bool:
    """Whether ``order`` is a bracket's take-profit (the child ``bracket_children`` builds,
    re-armed after a restart too), which ``take_profit_fill: market`` fills at market; a
    strategy's own limit order, whatever its tag, rests as a limit."""
    return order.parent_id is not None and order.tag == TAKE_PROFIT_TAG


def _beyond_history(symbol: str, history: FundingHistory, missing: int) -> DataError:
    """The error of a position in ``symbol`` held at ``missing``, a funding time its history
    has no rate for: charging 0 or a constant there would misstate the run's cost."""
    hole = hole_around(history, missing)
    if hole is not None:
        return _in_hole(symbol, history, missing, hole)
    where = "after" if missing > history.last else "before"
    return DataError(
        f"spec.broker.params.funding_history.{symbol}: the position in {symbol} is held at "
        f"the funding time {format_time(missing)} UTC, {where} the history "
        f"({history.source}: {format_time(history.first)} to its last time "
        f"{format_time(history.last)} UTC), which has no rate for it: give a history that "
        "covers the bars traded, or end the bars within it (the csv feed's start and end)"
    )


def _in_hole(
    symbol: str, history: FundingHistory, missing: int, hole: tuple[int, int]
) -> DataError:
    """The error of a position held at ``missing``, a time the venue paid in a hole of the
    history (rows missing from the file): its rate is unknown, as outside the history."""
    start, end = hole
    return DataError(
        f"spec.broker.params.funding_history.{symbol}: the position in {symbol} is held at "
        f"the funding time {format_time(missing)} UTC, in a hole of the history "
        f"({history.source}: no row between {format_time(start)} and {format_time(end)} UTC), "
        "which has no rate for it: add the venue's missing rows to the file (download them "
        "again), or give bars that end before the hole or start after it (the csv feed's "
        "start and end)"
    )
