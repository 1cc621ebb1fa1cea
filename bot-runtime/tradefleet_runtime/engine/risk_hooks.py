"""The risk plugins' declared abilities beyond ``check``, and what their account actions become.

``RiskHooks`` holds, typed, the plugins that declared each risk capability (the session builds
it from the descriptors; the engine calls nothing else), so a bot whose chain declares none pays
nothing per bar. ``action_intents`` is the one pure rule turning an :class:`AccountAction` into
orders: reduce-only market intents that can only take exposure away.
"""

from __future__ import annotations

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


__all__ = ["ACTION_TAG", "RiskHooks", "action_intents"]
