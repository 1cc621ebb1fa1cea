"""The account a restarted bot's journal last held, for its status before its engine runs.

While a restarted bot waits for its venue (phase Starting) its engine holds nothing yet. The
status and the metrics then show what the previous run journaled — its last equity snapshot,
the positions its fills add up to, the orders it left working — marked as last known, never the
spec's starting capital as if the account were flat (an operator would read "no position" while
the venue holds one). So do the risk locks the journal holds, which the engine restores and which
veto every entry once it runs: shown as none, ``tradefleet_risk_locked`` published no series and
the operator set ``RiskLocked=False`` for as long as the venue was down.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tradefleet_runtime.cash_flows import books_in
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import CloseStuck, PluginInfo, RiskPluginState, SymbolExposure

DAY_S = 86400


@dataclass(frozen=True, slots=True)
class LastKnownAccount:
    """The account as the bot's earlier runs left it in the journal."""

    equity: float
    balance: float  # cash
    peak_equity: float
    day_start_equity: float  # at the first bar of the last journaled (UTC) day
    open_positions: int
    open_orders: int
    # At each position's average price: the journal keeps no mark apart from the equity.
    exposure: tuple[SymbolExposure, ...]
    last_bar_ts: int
    # Positions a flatten could not close and will not send again (the journal's
    # ``close_owed`` refusals of positions still held): a person must close them, and the
    # status says so before the engine runs too.
    closes_stuck: tuple[CloseStuck, ...] = ()


def last_known_account(journal: Journal, bot: str) -> LastKnownAccount | None:
    """What ``journal`` holds of ``bot``'s account from its earlier runs; None when it holds no
    run of the bot (a first start). The same reads the session restores the account from."""
    carried = journal.carried_state(bot)
    if carried is None:
        return None
    portfolio = Portfolio(cash=carried.initial_capital)
    for fill in carried.fills:
        portfolio.apply(fill)
    # The venue's payments outside fills (funding) the earlier runs booked into cash, in the
    # account's currency, as the engine replays them.
    terms = journal.account_terms(bot)
    for flow in carried.cash_flows:
        if terms is not None and books_in(flow, terms[0]) and math.isfinite(flow.amount):
            portfolio.book_cash_flow(flow.amount, flow.symbol)
    stuck = tuple(
        CloseStuck(symbol, code, portfolio.open_positions[symbol].quantity)
        for symbol, (_, code) in sorted(journal.closes_owed(bot).items())
        if code is not None and symbol in portfolio.open_positions
    )
    exposure = tuple(
        SymbolExposure(symbol, position.quantity, position.quantity * position.average_price)
        for symbol, position in portfolio.open_positions.items()
    )
    timestamps, equity = journal.account_equity(bot)
    if timestamps:
        # The day started at its first bar, as the engine takes it when it restores.
        first = bisect.bisect_left(timestamps, timestamps[-1] // DAY_S * DAY_S)
        last, peak, day_start, last_ts = equity[-1], max(equity), equity[first], timestamps[-1]
    else:  # fills but no bar handled: marked at the entry prices, as the engine restores it
        last = peak = day_start = portfolio.equity()
        last_ts = carried.last_bar_ts
    return LastKnownAccount(
        equity=last,
        balance=portfolio.cash,
        peak_equity=peak,
        day_start_equity=day_start,
        open_positions=len(portfolio.open_positions),
        open_orders=len(carried.working) + len(carried.unacknowledged),
        exposure=exposure,
        last_bar_ts=last_ts,
        closes_stuck=stuck,
    )


def held_risk_locks(
    locks: Mapping[str, tuple[str, int]], plugins: Sequence[PluginInfo]
) -> tuple[RiskPluginState, ...]:
    """The risk plugins ``locks`` (``Journal.risk_locks``: plugin → reason, since) hold, as
    the engine's status shows them once it has restored them (``Engine.restore_locks``,
    ``Engine.risk_states``): the spec's chain's in its order with their version, then a lock of
    a plugin no longer in ``spec.risk`` (it still holds until a person resets it) with no
    version; each locked, for the journaled reason. Only the locks: whether another plugin
    locks or what tier one reports is its own to say once it runs, so the tier is 0 here."""
    versions = {info.name: info.version for info in plugins if info.kind == "risk"}
    names = [name for name in versions if name in locks]
    names += [name for name in locks if name not in versions]
    return tuple(
        RiskPluginState(name, versions.get(name, ""), locked=True, reason=locks[name][0])
        for name in names
    )
