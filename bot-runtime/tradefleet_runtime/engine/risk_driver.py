"""An intent's way to an order: the trading-state gate, the risk chain, sizing and rounding.

Every decision — the gate's, each plugin's, the engine's own sizing checks — is handed to one
``decide`` callback, which journals and counts it; so nothing is decided unrecorded. Plugins that
declared ``observes-orders`` are told of each order let through, with the price it was decided
at (a bot whose chain declares none pays one falsy test per order). The account snapshot is
built once per intent, and only when a plugin that reads it is reached: plugins that declared
``intent-only`` get ``BLANK_CONTEXT`` (so a chain of sizers alone builds none).

An intent that only reduces a position — on the side that closes it, for no more than is held
net of the exits already working — is made reduce-only here, before the gate, whoever sent it
(``ctx.sell`` of the held quantity is an exit as ``ctx.close`` is): the gate and every rule then
let it through (no rule may stop a reduction of risk), and the venue gets a reduce-only order,
which cannot open or reverse a position if the account moved before it filled. The same holds
after the chain for an order a rule or the lot step shrank to no more than it closes (a
reversal cut to its closing part, ``entry_cut``, pre-trade's caps): it goes out reduce-only,
so a resting limit the position's stop-loss left nothing to close cannot open a position the
rule refused (``closes_only``). An order nothing shrank keeps the mark it had. Such an order
also goes without the stop-loss and take-profit the strategy gave it (``drops_bracket``; the
engine journals it, ``bracket_dropped``): they were the bracket of the position the reversal
was to open, and once it fills the account is flat — reduce-only children there would protect
nothing, be shown as protection of a position that does not exist, and at a venue stay working
for a later position of the symbol. A reversal still opening after its cut keeps its bracket.

The gate refuses what an order opens under a halt or a risk lock, never what it closes: an
order past the position there is cut to its closing part (``gate_cut``: what ``reducible``
leaves, net of the exits already working), a shrink journaled and counted as the gate's
decision (``engine.halted``, ``engine.locked``), and goes on as an exit would: reduce-only,
without its bracket (``bracket_dropped``), through the chain. With nothing left to close it is
vetoed whole, as is every order that is not reduce-only under a pause alone. A bot halted and
paused is gated by its halt first (``TradingState.gate``): such an order is cut there too.
Between bars a market order past the position that the broker gives no usable price for is cut
the same way, by the engine before the driver (``unpriced_cut``, journaled as ``engine.price``'s
shrink): nothing opens unpriced, and its closing part, which sizes nothing on a price, goes.

Before any of that, an intent no venue could work is refused (``intent_problem``,
``stops_problem``), by ``engine.order``, naming the field: a quantity or price that is not a
positive finite number (a stop from an indicator not warmed up is NaN, and a NaN stop never
triggers), a limit or stop order without its price, a stop-loss or take-profit on the wrong
side of its entry. Exits too: an exit's NaN is no more an order than an entry's.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Collection, Sequence
from types import MappingProxyType
from typing import cast

from tradefleet_runtime.capabilities import OrderObserver
from tradefleet_runtime.contracts import RiskContext, RiskPlugin
from tradefleet_runtime.engine.risk_chain import judge, round_down
from tradefleet_runtime.engine.trading_state import TradingState
from tradefleet_runtime.model import (
    Instrument,
    Order,
    OrderIntent,
    OrderType,
    Position,
    ReasonCode,
    RiskAction,
    RiskDecision,
    Side,
)

_APPROVE = RiskAction.APPROVE
_MARKET = OrderType.MARKET
_STOP = OrderType.STOP
_NAN = float("nan")
_INF = float("inf")
# The refusals' codes, as the venues' (``ReasonCode``): plain str, a metrics label.
_INVALID_QUANTITY = ReasonCode.INVALID_QUANTITY.value
_INVALID_PRICE = ReasonCode.INVALID_PRICE.value
_INVALID_STOPS = ReasonCode.INVALID_STOPS.value
# Relative tolerance of "no more than is held": quantities are sums of fills and float.
_HELD_TOLERANCE = 1e-9
#: The gate's rules (``TradingState.gate``) that let an order's closing part through
#: (``gate_cut``): a halt and a risk lock. A pause refuses the whole order, as it always did.
GATE_CUTS = frozenset({"engine.halted", "engine.locked"})

#: What an ``intent-only`` plugin is handed instead of the account: no time, NaN figures, no
#: positions, marks, stops or closable quantities (read-only), so a plugin that declared
#: ``intent-only`` and reads the account anyway sizes nothing (NaN is a plugin fault, journaled
#: as a veto) rather than deciding on figures that look real.
BLANK_CONTEXT = RiskContext(
    0,
    _NAN,
    _NAN,
    _NAN,
    _NAN,
    cast("dict[str, Position]", MappingProxyType({})),
    cast("dict[str, float]", MappingProxyType({})),
    Instrument(""),
    cast("dict[str, tuple[tuple[float, float], ...]]", MappingProxyType({})),
    _NAN,
    _NAN,
    (),
    MappingProxyType({}),
)
# Named tuples built positionally: ``_replace`` and keyword construction cost several times more,
# and these run for every order.
_new = tuple.__new__

log = logging.getLogger("tradefleet.engine")

Decide = Callable[[str, OrderIntent, str, RiskDecision], None]


def _number_problem(name: str, value: object, noun: str) -> str | None:
    """Why ``value`` is no positive finite number, naming the field ``name``; None when it is.
    The slow path of ``intent_problem``: a plain float in range never gets here."""
    # bool is an int, and a True quantity is a mistake, not one unit; numpy's scalars are real.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"{name}: {value!r} is not a number"
    number = float(value)
    if not math.isfinite(number):
        return f"{name}: {number} is not a {noun}"
    if number <= 0.0:
        # A sell is a side, not a sign: a negative quantity is no short.
        return f"{name}: must be positive, not {number:.10g}"
    return None


def intent_problem(intent: OrderIntent) -> tuple[str, str] | None:
    """(code, reason naming the field) when ``intent`` cannot be an order on any account:
    a quantity or price that is not a positive finite number, a limit or stop order without
    its price; None when it can. Called for every order: a plain float in range costs two
    comparisons (NaN fails both), everything else takes ``_number_problem``."""
    quantity = intent[2]
    if quantity is not None and not (quantity.__class__ is float and 0.0 < quantity < _INF):
        problem = _number_problem("quantity", quantity, "quantity")
        if problem is not None:
            return _INVALID_QUANTITY, problem
    price = intent[4]
    if price is None:
        if intent[3] is not _MARKET:
            return _INVALID_PRICE, f"price: a {intent[3]} order needs one"
    elif not (price.__class__ is float and 0.0 < price < _INF):
        problem = _number_problem("price", price, "price")
        if problem is not None:
            return _INVALID_PRICE, problem
    # Unrolled, as above: a loop over the two would cost more than every test here.
    stop = intent[5]
    if stop is not None and not (stop.__class__ is float and 0.0 < stop < _INF):
        problem = _number_problem("stop_loss", stop, "price")
        if problem is not None:
            return _INVALID_STOPS, problem
    stop = intent[6]
    if stop is not None and not (stop.__class__ is float and 0.0 < stop < _INF):
        problem = _number_problem("take_profit", stop, "price")
        if problem is not None:
            return _INVALID_STOPS, problem
    return None


def stops_problem(intent: OrderIntent, mark: float) -> tuple[str, str] | None:
    """(code, reason naming the field) when ``intent``'s stop-loss or take-profit lies on the
    wrong side of its entry; None when neither does (or there is none, or nothing to judge by).

    The bracket's children (``brackets.py``) are a stop and a limit on the closing side: a
    long's stop-loss is a sell stop, which must sit below the price the entry fills at or it
    triggers at once (a take-profit above it, or it fills at once); a short's the other way.
    That price is judged by the entry's own: a limit entry fills at its limit or better, a stop
    entry at its trigger or worse (a buy stop's stop-loss above the mark is right while below
    its trigger), a market entry near the ``mark``. Prices are checked first
    (``intent_problem``); a market entry without a mark (0 or NaN) is left to the venue."""
    order_type = intent[3]
    if order_type is _MARKET:
        reference, what = mark, "the mark"
        if not reference > 0.0:  # NaN too
            return None
    else:
        price = intent[4]
        if price is None:  # refused already (``intent_problem``)
            return None
        reference = price
        what = "the trigger price" if order_type is _STOP else "the limit price"
    side = intent[1]
    sign = side.sign
    stop_loss, take_profit = intent[5], intent[6]
    if stop_loss is not None and (reference - stop_loss) * sign <= 0.0:
        where = "below" if sign > 0 else "above"
        return _INVALID_STOPS, (
            f"stop_loss: {stop_loss:.10g} is not {where} {what} {reference:.10g}, "
            f"as a {side.value}'s must be"
        )
    if take_profit is not None and (take_profit - reference) * sign <= 0.0:
        where = "above" if sign > 0 else "below"
        return _INVALID_STOPS, (
            f"take_profit: {take_profit:.10g} is not {where} {what} {reference:.10g}, "
            f"as a {side.value}'s must be"
        )
    return None


def closes_only(quantity: float, left: float) -> bool:
    """Whether an order of ``quantity`` only closes a position of which ``left`` is still to
    close on its side (``reducible``'s figure; 0 when the side opens or adds) (pure). Within
    ``_HELD_TOLERANCE``: quantities are sums of fills, and float."""
    return left > 0.0 and quantity <= left * (1.0 + _HELD_TOLERANCE)


def closing_cut(veto: RiskDecision, intent: OrderIntent, left: float) -> RiskDecision | None:
    """``veto`` of what ``intent`` opens, as a shrink to the part of it that closes (pure): an
    order past the position — ``left`` of it still to close on its side, ``reducible``'s
    figure, net of the exits already working — is cut to that closing part (it goes
    reduce-only, without its bracket: ``closing_part``), the veto's reason and code kept. None
    when the veto stands whole: nothing left to close (the order opens or adds, or working
    exits close it all already), or no size (a sizer's to give, and sizers size entries
    only)."""
    quantity = intent.quantity
    if quantity is None or not left > 0.0:
        return None
    cut = min(quantity, left)
    return RiskDecision.shrink(
        cut,
        f"{veto.reason}; the {intent.side.value} of {quantity:.10g} cut to the {cut:.10g} "
        f"closing the {intent.symbol} position, sent reduce-only",
        veto.code,
    )


def closing_part(intent: OrderIntent, cut: RiskDecision) -> OrderIntent:
    """``intent`` cut to the part that closes its position, ``cut`` (``closing_cut``'s shrink):
    an exit, reduce-only and without the bracket of the position it was to open (pure)."""
    # intent._replace(quantity=cut.quantity, stop_loss=None, take_profit=None, reduce_only=True)
    return _new(
        OrderIntent, (*intent[:2], cut.quantity, *intent[3:5], None, None, True, *intent[8:])
    )


def gate_cut(
    rule: str, veto: RiskDecision, intent: OrderIntent, left: float
) -> RiskDecision | None:
    """What the trading-state gate makes of ``intent`` when it refuses it by ``rule`` with
    ``veto`` (pure): under a halt or a risk lock (``GATE_CUTS``), an order past the position is
    shrunk to its closing part (``closing_cut``); a halt or a lock stops what an order opens,
    never what it closes. None when the veto stands: another rule (a pause), or nothing to cut
    (``closing_cut``)."""
    if rule not in GATE_CUTS:
        return None
    return closing_cut(veto, intent, left)


def unpriced_cut(
    veto: RiskDecision, intent: OrderIntent, left: float, mark: float
) -> RiskDecision | None:
    """What is left of a market order decided between bars that the engine refuses, with
    ``veto``, for want of a usable current price (``risk_snapshot.quoted_mark``) (pure): its
    closing part (``closing_cut``) — an exit, which sizes nothing on the price and is never
    refused — when the order is one a venue could work (``intent_problem``; ``stops_problem``
    at ``mark``, the last close the driver would judge it at); None when the veto stands
    whole. An order the driver would refuse before any cut (``engine.order``: a NaN quantity
    would make a NaN cut) is never cut here."""
    if intent_problem(intent) is not None or stops_problem(intent, mark) is not None:
        return None
    return closing_cut(veto, intent, left)


def drops_bracket(reduce_only: bool, reduce_only_before: bool, bracketed: bool) -> bool:
    """Whether an order goes without its stop-loss and take-profit (pure): it has them
    (``bracketed``), and it is ``reduce_only`` only because the chain or the lot step shrank it
    to its closing part (module docstring) — not ``reduce_only_before`` the chain, an exit as
    the strategy sent it, whose bracket is its own to give."""
    return bracketed and reduce_only and not reduce_only_before


def bracket_dropped(intent: OrderIntent, order: Order) -> str | None:
    """Why ``order`` went without the stop-loss or take-profit its ``intent`` carried
    (``drops_bracket``), for the journal; None when it kept them, or had none (pure)."""
    dropped = [
        name
        for name, asked, sent in (
            ("stop-loss", intent.stop_loss, order.stop_loss),
            ("take-profit", intent.take_profit, order.take_profit),
        )
        if asked is not None and sent is None
    ]
    if not dropped:
        return None
    size = "" if intent.quantity is None else f" of {intent.quantity:.10g}"
    return (
        f"{order.client_order_id}: its {' and '.join(dropped)} dropped: the order only closes "
        f"(the {order.side.value}{size} was cut to the {order.quantity:.10g} closing the "
        f"{order.symbol} position, sent reduce-only; once it fills there is no position left "
        "for them to protect)"
    )


class RiskDriver:
    def __init__(
        self,
        chain: Sequence[tuple[str, RiskPlugin]],
        state: TradingState,
        instrument: Callable[[str], Instrument],
        context: Callable[[str], RiskContext],
        decide: Decide,
        *,
        order_observers: Sequence[tuple[str, OrderObserver]] = (),
        intent_only: Collection[str] = frozenset(),
        reducible: Callable[[str, Side], float] | None = None,
    ) -> None:
        self.chain = list(chain)
        # (name, plugin, whether it reads the account snapshot), in chain order.
        self._links = [(name, plugin, name not in intent_only) for name, plugin in self.chain]
        self.state = state
        self._instrument = instrument
        self._context = context
        self._decide = decide
        self._order_observers = tuple(order_observers)
        # How much of a symbol's position an order on a side may still close (0: it opens or
        # adds); None: the driver marks nothing (a caller with no account).
        self._reducible = reducible

    def order_for(self, intent: OrderIntent, order_id: str, now: int) -> Order | None:
        """The order ``intent`` becomes under ``order_id``, or None when it is refused."""
        decide = self._decide
        context: RiskContext | None = None
        # Refused first: a NaN quantity would reach the sizers and the reduce-only test, a
        # negative one pass for an exit, a NaN stop be blamed on the sizer that divides by it.
        problem = intent_problem(intent)
        if problem is None and (intent[5] is not None or intent[6] is not None):
            mark = _NAN
            if intent[3] is _MARKET:  # judged by the mark: the snapshot the chain reuses
                context = self._context(intent.symbol)
                mark = context.mark(intent.symbol)
            problem = stops_problem(intent, mark)
        if problem is not None:
            decide("engine.order", intent, order_id, RiskDecision.veto(problem[1], problem[0]))
            return None
        if not intent.reduce_only and self._reducible is not None:
            intent = self._mark_reducing(intent)
        gated = self.state.gate(intent)
        if gated is not None:
            rule, veto = gated
            left = 0.0 if self._reducible is None else self._reducible(intent.symbol, intent.side)
            cut = gate_cut(rule, veto, intent, left)
            if cut is None:
                decide(rule, intent, order_id, veto)
                return None
            # The closing part goes on as an exit (the chain lets exits through), reduce-only
            # and without the bracket of the position the reversal was to open
            # (``drops_bracket``; the engine journals it, ``bracket_dropped``).
            decide(rule, intent, order_id, cut)
            intent = closing_part(intent, cut)
        quantity = intent.quantity
        shrunk = False  # whether a rule cut a size the order had (sizing one is no cut)
        for name, plugin, reads_account in self._links:
            if not reads_account:
                given = BLANK_CONTEXT
            elif context is None:
                given = context = self._context(intent.symbol)
            else:
                given = context
            try:
                decision = plugin.check(intent, given)
            except Exception as error:  # a broken plugin vetoes, it never lets an order through
                log.exception("risk plugin %s failed", name)
                decision = RiskDecision.veto(
                    f"{name} failed: {type(error).__name__}: {error}", "plugin_fault"
                )
            if (
                type(decision) is RiskDecision
                and decision.action is _APPROVE
                and decision.quantity is None
            ):  # a plain approval: ``judge`` would leave the quantity as it is
                decide(name, intent, order_id, decision)
                continue
            verdict = judge(name, quantity, decision)
            decide(name, intent, order_id, verdict.decision)
            if verdict.vetoed:
                return None
            if quantity is not None and verdict.quantity != quantity:
                shrunk = True  # ``judge`` lets a size only shrink
            quantity = verdict.quantity
            if quantity != intent.quantity:  # intent._replace(quantity=quantity), positionally
                intent = _new(OrderIntent, (intent[0], intent[1], quantity, *intent[3:]))
        if quantity is None:
            decide(
                "engine.sizing",
                intent,
                order_id,
                RiskDecision.veto(
                    "order has no quantity and no sizer in spec.risk decided one", "unsized"
                ),
            )
            return None
        instrument = self._instrument(intent.symbol)
        rounded = round_down(quantity, instrument.lot_step)
        if rounded <= 0.0 or rounded < instrument.min_quantity:
            decide(
                "engine.sizing",
                intent,
                order_id,
                RiskDecision.veto(
                    # The field and the symbol: a signal's sender or a journal reader sees
                    # which order's quantity, and the step that rounded it.
                    f"quantity: {quantity:.10g} {intent.symbol} rounds to {rounded:.10g} (lot step "
                    f"{instrument.lot_step:.10g}), below {intent.symbol}'s minimum quantity "
                    f"{instrument.min_quantity:.10g}",
                    "below_minimum",
                ),
            )
            return None
        if quantity - rounded > 1e-9 * quantity:
            # The venue takes whole lot steps: the order shrinks, and like every change of an
            # order's size that is a decision, journaled and counted (a sizer's 0.0137 became
            # 0.013 without a word before). A float's last bits (0.30000000000000004 on a 0.1
            # step) are no shrink.
            decide(
                "engine.sizing",
                intent,
                order_id,
                RiskDecision.shrink(
                    rounded,
                    f"quantity {quantity:.10g} rounded down to the lot step"
                    f" {instrument.lot_step:.10g}: {rounded:.10g}",
                    "lot_step",
                ),
            )
        reduce_only = intent.reduce_only
        stop_loss, take_profit = intent.stop_loss, intent.take_profit
        if not reduce_only and (shrunk or rounded < quantity) and self._reducible is not None:
            # Shrunk to its closing part (module docstring): the figure ``RiskContext.closing``
            # gave the chain, read again (nothing moved since); not shrunk, it kept its mark.
            reduce_only = closes_only(rounded, self._reducible(intent.symbol, intent.side))
            if drops_bracket(reduce_only, False, stop_loss is not None or take_profit is not None):
                # No broker places children of an order without them (paper, ccxt, mt5 all
                # build them from these two fields), at its fill or at a restart.
                stop_loss = take_profit = None
        order: Order = _new(
            Order,
            (
                order_id,
                intent.symbol,
                intent.side,
                rounded,
                intent.order_type,
                intent.price,
                stop_loss,
                take_profit,
                reduce_only,
                None,  # parent_id
                None,  # oco_group
                now,  # created_ts
                intent.tag,
            ),
        )
        if self._order_observers:
            self._tell_observers(order, context)
        return order

    def _mark_reducing(self, intent: OrderIntent) -> OrderIntent:
        """``intent`` made reduce-only when it only reduces the position (module docstring);
        else ``intent`` itself. An unsized intent is left as it is: how much it closes is the
        sizer's to say, and a sizer sizes entries only."""
        quantity = intent.quantity
        if quantity is None or self._reducible is None:
            return intent
        if not closes_only(quantity, self._reducible(intent.symbol, intent.side)):
            return intent
        # intent._replace(reduce_only=True), positionally (field 7)
        return _new(OrderIntent, (*intent[:7], True, *intent[8:]))

    def _tell_observers(self, order: Order, context: RiskContext | None) -> None:
        """Hand each order observer the order and the price it was decided at: its limit or
        trigger price, else the symbol's mark in the snapshot the chain decided on."""
        reference = order.price
        if reference is None:
            if context is None:
                context = self._context(order.symbol)
            reference = context.mark(order.symbol)
        if not reference or reference != reference:  # no mark yet, or NaN: nothing to measure
            return
        for name, observer in self._order_observers:
            try:
                observer.on_order(order, reference)
            except Exception:  # an observer's fault must not stop an order the chain let through
                log.exception("risk plugin %s failed observing an order", name)
