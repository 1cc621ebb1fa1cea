"""The risk plugins' declared abilities beyond ``check``, and what their account actions become.

``RiskHooks`` holds, typed, the plugins that declared each risk capability (the session builds
it from the descriptors; the engine calls nothing else), so a bot whose chain declares none pays
nothing per bar. ``action_intents`` is the one pure rule turning an :class:`AccountAction` into
orders: reduce-only market intents that can only take exposure away.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tradefleet_runtime.capabilities import (
    AccountAction,
    AccountActor,
    ActionKind,
    BarObserver,
    EquityRestorer,
    FillObserver,
    FillRestorer,
    LockRestorer,
    OrderObserver,
    StateRestorer,
    TierReporter,
    TradeReader,
)
from tradefleet_runtime.model import OrderIntent, Position, Side

ACTION_TAG = "risk:"  # tag of the orders an account action sends: "risk:<plugin>"


@dataclass(frozen=True)
class RiskHooks:
    """Risk plugins by declared capability, by name, in chain order."""

    bar_observers: Sequence[tuple[str, BarObserver]] = ()
    fill_observers: Sequence[tuple[str, FillObserver]] = ()
    order_observers: Sequence[tuple[str, OrderObserver]] = ()
    trade_readers: Sequence[tuple[str, TradeReader]] = ()
    actors: Sequence[tuple[str, AccountActor]] = ()
    lock_restorers: Sequence[tuple[str, LockRestorer]] = ()
    equity_restorers: Sequence[tuple[str, EquityRestorer]] = ()
    fill_restorers: Sequence[tuple[str, FillRestorer]] = ()
    # ``restores-state``: their state is journaled as it changes (paper and live bots only)
    # and handed back after a restart.
    state_restorers: Sequence[tuple[str, StateRestorer]] = ()
    tier_reporters: Sequence[tuple[str, TierReporter]] = field(default_factory=tuple)
    # Names of the plugins that decide on the intent alone (``intent-only``): no account
    # snapshot is built for them.
    intent_only: frozenset[str] = frozenset()


def action_intents(
    plugin: str, action: AccountAction, positions: Mapping[str, Position]
) -> list[OrderIntent]:
    """The reduce-only market orders ``action`` asks for, given the open positions.

    REDUCE closes ``fraction`` of each targeted position, FLATTEN all of it; CANCEL_ENTRIES
    and MOVE_STOP send no order. A fraction outside (0, 1] is clamped into it, so no action can
    open or flip a position.
    """
    if action.kind is ActionKind.CANCEL_ENTRIES or action.kind is ActionKind.MOVE_STOP:
        return []  # no order: a cancel, or an amend of the stop (the engine's _move_stop)
    fraction = 1.0 if action.kind is ActionKind.FLATTEN else min(max(action.fraction, 0.0), 1.0)
    if fraction <= 0.0:
        return []
    symbols = [action.symbol] if action.symbol is not None else list(positions)
    intents = []
    for symbol in symbols:
        position = positions.get(symbol)
        if position is None or not position.quantity:
            continue
        quantity = abs(position.quantity) * fraction
        side = Side.SELL if position.quantity > 0 else Side.BUY
        intents.append(
            OrderIntent(symbol, side, quantity, reduce_only=True, tag=f"{ACTION_TAG}{plugin}")
        )
    return intents


def action_problem(action: object) -> str | None:
    """Why ``action``, one item a plugin's ``account_actions`` returned, is no action the
    engine can do, naming the field; None when it is one (pure). A REDUCE's fraction above 1
    is the whole position (``action_intents`` clamps it); one that is not a number above 0
    asks for nothing the plugin could have meant, and is refused in its name, not done as
    nothing."""
    if not isinstance(action, AccountAction):
        return f"returned {type(action).__name__}, not an AccountAction"
    if action.kind.__class__ is not ActionKind:
        return f"kind: {action.kind!r} is not an ActionKind"
    if action.symbol is not None and not isinstance(action.symbol, str):
        return f"symbol: {action.symbol!r} is not a symbol"
    if action.kind is ActionKind.REDUCE:
        fraction = action.fraction
        number = isinstance(fraction, numbers.Real) and not isinstance(fraction, bool)
        if not number or not float(fraction) > 0.0:  # NaN too
            return f"fraction: {fraction!r} must be a number above 0 (1: the whole position)"
    return None


__all__ = ["ACTION_TAG", "RiskHooks", "action_intents", "action_problem"]
