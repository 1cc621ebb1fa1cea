"""``probation``: sizes shrink as the rolling P&L over the last trades sinks.

Rolling loss (the last ``window_trades`` closed trades' net P&L over the equity before them):
below 5% sizes are untouched; from 5% ×0.5; from 10% ×0.25; beyond 15% it hibernates — no new
entries, a lock the engine journals and keeps across restarts until a person resets it (the
window then starts afresh from the next trade). Exits always pass, and so does the part of a
reversal that closes the opposite position (``RiskContext.closing``): the multiplier cuts, and
hibernation refuses, only what an order opens (``entry_cut``).

``scope: bot`` (the default) sums the bot's trades and hibernates the bot. ``scope: symbol``
sums each symbol's own trades: the multiplier and the hibernation hold that symbol's entries
only, and the others keep trading (the lock names the symbols it holds; the engine's gate
asks ``locked_symbols``). A person's reset clears every symbol's.

Where the window starts (after a person's reset) and what hibernates are kept as the plugin's
state (``restores-state``): a restarted bot decides as the one that lived on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_plugins.risk.reason_text import GE, GT, LE, LT, given, shown
from tradefleet_plugins.risk.rules import entry_cut
from tradefleet_runtime.sdk import OrderIntent, RiskContext, RiskDecision, Trade

log = logging.getLogger(__name__)

APPROVE = RiskDecision.approve()

# The key of a hibernation that holds every symbol: the bot's (``scope: bot``), or a restored
# lock whose symbols are not known (an old journal, or one switched from ``scope: bot``).
EVERY = ""

# What ``saved_state`` writes; a state of another version is not taken back.
STATE_VERSION = 1


def rolling_loss(pnls: Sequence[float], equity: float) -> float:
    """Loss of the window as a fraction of the equity before it (0 when it made money)."""
    total = sum(pnls)
    before = equity - total
    if total >= 0.0 or before <= 0.0:
        return 0.0
    return -total / before


def multiplier(loss: float, p: ProbationParams) -> float:
    """Size multiplier for a rolling loss: 1, 0.5, 0.25, or 0 (hibernate, beyond the last)."""
    eps = 1e-12
    if loss > p.hibernate_at + eps:
        return 0.0
    if loss >= p.quarter_at - eps:
        return 0.25
    if loss >= p.half_at - eps:
        return 0.5
    return 1.0


def window_pnls(
    trades: Sequence[Trade], start: int, size: int, symbol: str | None = None
) -> list[float]:
    """Net P&Ls of the last ``size`` trades from index ``start`` on (``symbol``'s only when
    given), oldest first (pure)."""
    count = len(trades)
    if symbol is None:
        return [trades[i].net_pnl for i in range(max(start, count - size), count)]
    found: list[float] = []
    for i in range(count - 1, start - 1, -1):
        if len(found) == size:
            break
        trade = trades[i]
        if trade.symbol == symbol:
            found.append(trade.net_pnl)
    found.reverse()
    return found


def level(loss: float, factor: float, p: ProbationParams) -> str:
    """The rolling loss against the level whose ``factor`` (0.5 or 0.25) it is at, to the
    digits that keep it within that level's band in print too (pure)."""
    at, below = (
        (p.half_at, (LT, p.quarter_at)) if factor == 0.5 else (p.quarter_at, (LE, p.hibernate_at))
    )
    return f"rolling loss {shown(loss, (GE, at), below)} >= {given(at)}"


def _refused(intent: OrderIntent, reason: str, ctx: RiskContext) -> RiskDecision:
    """Hibernation's veto, or for a reversal its shrink to the part closing the position."""
    quantity = intent.quantity
    if quantity is None:
        return RiskDecision.veto(reason, "hibernating")
    return entry_cut(intent, quantity, 0.0, reason, "hibernating", ctx)


class KeptState(NamedTuple):
    """``saved_state`` read back."""

    start: int  # trades before this index no longer count (a person's reset)
    taken_at: int  # trades closed when the hibernation in force was taken
    hibernated: dict[str, str]  # symbol (EVERY: all) -> why


def _count(state: Mapping[str, Any], name: str, trades: int) -> int | str:
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= trades:
        return f"{name} {value!r} is not a count of the {trades} trade(s) the bot has closed"
    return value


def kept_state(state: Mapping[str, Any], trades: int) -> KeptState | str:
    """``saved_state``'s fields read back against the ``trades`` the bot has closed, or what
    is wrong with them, naming the field (pure)."""
    if state.get("version") != STATE_VERSION:
        return f"version {state.get('version')!r} is not {STATE_VERSION}"
    start = _count(state, "from", trades)
    if isinstance(start, str):
        return start
    taken_at = _count(state, "taken_at", trades)
    if isinstance(taken_at, str):
        return taken_at
    hibernated = state.get("hibernated")
    if not isinstance(hibernated, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) and value
        for key, value in hibernated.items()
    ):
        return f"hibernated {hibernated!r} is not a map of symbol to reason"
    return KeptState(start, taken_at, dict(hibernated))


class Probation:
    def __init__(self, params: ProbationParams) -> None:
        self.params = params
        self._by_symbol = params.scope == "symbol"
        self._trades: Sequence[Trade] = ()
        self._from = 0  # trades before this index (a reset) no longer count
        self._hibernated: dict[str, str] = {}  # symbol (EVERY: all) -> why
        self._taken_at = 0  # trades closed when the first hibernation in force was taken
        self._lock_restored = False
        # Each window's P&Ls and their sum (key: the symbol, None for the bot's) by (trade
        # count, reset index): they change only when a trade closes.
        self._windows: dict[str | None, tuple[int, int, list[float], float]] = {}
        # A window that made money is no loss, whatever the equity: its multiplier, once.
        self._at_no_loss = multiplier(0.0, params)

    def bind_trades(self, trades: Sequence[Trade]) -> None:
        self._trades = trades
        self._windows = {}

    # -- the lock ---------------------------------------------------------------------------

    def lock_reason(self) -> str | None:
        return "; ".join(self._hibernated.values()) or None

    def locked_symbols(self) -> frozenset[str] | None:
        """The symbols the lock holds (None: every one), for the engine's gate."""
        if not self._by_symbol or EVERY in self._hibernated:
            return None
        return frozenset(self._hibernated)

    def reset_lock(self) -> str | None:
        # A person accepted the losses: every symbol's window starts after them.
        self._hibernated = {}
        self._from = len(self._trades)
        self._lock_restored = False
        return None

    def restore_lock(self, reason: str, since_ts: int) -> None:
        # Every symbol until ``restore_state`` says which (the journaled lock holds no list).
        # Without a kept state (a journal older than it) the window then counts from the
        # trades restored so far, as before the state was kept.
        self._hibernated = {EVERY: reason}
        self._from = self._taken_at = len(self._trades)
        self._lock_restored = True

    # -- the state a restart takes back -----------------------------------------------------

    def saved_state(self) -> dict[str, Any]:
        """Where the window starts (a person's reset) and what hibernates (``restores-state``);
        it changes only at a hibernation or a reset, when the engine journals it."""
        return {
            "version": STATE_VERSION,
            "from": self._from,
            "taken_at": self._taken_at,
            "hibernated": dict(self._hibernated),
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Take back an earlier run's window start and hibernated symbols. Called after the
        engine restored its locks and the bot's trades: a bot whose journal holds no state
        (an older release) is never called and counts as before. One not as ``saved_state``
        writes it is said and left out (the window then counts every trade: stricter)."""
        kept = kept_state(state, len(self._trades))
        if isinstance(kept, str):
            log.warning("probation: the kept state is left out, %s", kept)
            return
        self._windows = {}
        self._from, self._taken_at = kept.start, kept.taken_at
        if self._lock_restored:
            # The engine's restored lock is the last word on whether it holds; the state
            # says which symbols (a state older than the lock leaves every one held).
            if self._by_symbol and kept.hibernated and EVERY not in kept.hibernated:
                self._hibernated = kept.hibernated
        elif kept.hibernated:
            # Hibernating when last kept, yet no lock holds: a person reset it and the process
            # ended before the state after the reset was journaled. The window starts after
            # the trades closed when it hibernated (ones closed between then and the reset
            # count too: stricter than the lived bot, never looser).
            self._from = max(kept.start, kept.taken_at)

    # -- the risk plugin --------------------------------------------------------------------

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only:
            return APPROVE
        hibernated = self._hibernated
        quantity = intent.quantity
        if hibernated:
            held = hibernated.get(EVERY) or hibernated.get(intent.symbol)
            if held:
                return _refused(intent, f"probation: {held}", ctx)
        symbol = intent.symbol if self._by_symbol else None
        pnls, total = self._window(symbol)
        if total >= 0.0:  # what rolling_loss answers for a window that made money
            loss, factor = 0.0, self._at_no_loss
        else:
            loss = rolling_loss(pnls, ctx.equity)
            factor = multiplier(loss, self.params)
        named = f" {symbol}" if symbol is not None else ""
        if factor == 0.0:
            limit = self.params.hibernate_at
            reason = (
                f"hibernating{named}: rolling loss {shown(loss, (GT, limit))} over "
                f"{len(pnls)} trade(s) beyond {given(limit)}"
            )
            if not hibernated:
                self._taken_at = len(self._trades)
            hibernated[EVERY if symbol is None else symbol] = reason
            return _refused(intent, f"probation: {reason}", ctx)
        if factor == 1.0 or quantity is None:
            return APPROVE
        return entry_cut(
            intent,
            quantity,
            factor,
            f"probation:{named} {level(loss, factor, self.params)}, size x{factor:.10g}",
            "probation",
            ctx,
        )

    def _window(self, symbol: str | None) -> tuple[list[float], float]:
        count, start = len(self._trades), self._from
        window = self._windows.get(symbol)
        if window is None or window[0] != count or window[1] != start:
            pnls = window_pnls(self._trades, start, self.params.window_trades, symbol)
            window = self._windows[symbol] = (count, start, pnls, sum(pnls))
        return window[2], window[3]
