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
which cannot open or reverse a position if the account moved before it filled.
"""

from __future__ import annotations

import logging
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
    Position,
    RiskAction,
    RiskDecision,
    Side,
)

_APPROVE = RiskAction.APPROVE
_NAN = float("nan")
# Relative tolerance of "no more than is held": quantities are sums of fills and float.
_HELD_TOLERANCE = 1e-9

#: What an ``intent-only`` plugin is handed instead of the account: no time, NaN figures, no
#: positions, marks or stops (read-only), so a plugin that declared ``intent-only`` and reads
#: the account anyway sizes nothing (NaN is a plugin fault, journaled as a veto) rather than
#: deciding on figures that look real.
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
)
# Named tuples built positionally: ``_replace`` and keyword construction cost several times more,
# and these run for every order.
_new = tuple.__new__

log = logging.getLogger("tradefleet.engine")

Decide = Callable[[str, OrderIntent, str, RiskDecision], None]


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
        if not intent.reduce_only and self._reducible is not None:
            intent = self._mark_reducing(intent)
        gated = self.state.gate(intent)
        if gated is not None:
            decide(gated[0], intent, order_id, gated[1])
            return None
        context: RiskContext | None = None
        quantity = intent.quantity
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
                    f"quantity {quantity:g} rounds to {rounded:g}, below the instrument minimum "
                    f"{instrument.min_quantity:g}",
                    "below_minimum",
                ),
            )
            return None
        order: Order = _new(
            Order,
            (
                order_id,
                intent.symbol,
                intent.side,
                rounded,
                intent.order_type,
                intent.price,
                intent.stop_loss,
                intent.take_profit,
                intent.reduce_only,
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
        left = self._reducible(intent.symbol, intent.side)
        if left <= 0.0 or quantity > left * (1.0 + _HELD_TOLERANCE):
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
