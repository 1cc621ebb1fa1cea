"""A whole backtest's rows as columns: what the vectorised path hands the journal at once.

Column by column, because a run of a million bars has tens of thousands of orders and the
journal turns columns into rows in C (``zip``), where an object per row would cost more than
the run. The values are the rows' own: sides, actions and statuses as their exact ``str``
values, ``reduce_only`` as 0 or 1; every order is a market order of the run's one symbol, as
the vectorised path trades (``optimize/vector.py``). ``Journal.record_run_rows`` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tradefleet_runtime.model import Position, Trade


@dataclass(frozen=True)
class OrderColumns:
    """Market orders and each one's last status (its time, e.g. the fill's)."""

    order_ids: Sequence[str]
    sides: Sequence[str]
    quantities: Sequence[float]
    reduce_only: Sequence[int]
    created_ts: Sequence[int]
    tags: Sequence[str]
    statuses: Sequence[str]
    status_ts: Sequence[int]
    venue_order_ids: Sequence[str | None]  # of the last status (the venue's answer, if any)
    marks: Sequence[float]  # each order's reference price: the close it was decided at


@dataclass(frozen=True)
class DecisionColumns:
    """One plugin's risk decisions, in the order they were made."""

    plugin: str
    ts: Sequence[int]
    sides: Sequence[str]
    actions: Sequence[str]
    quantity_in: Sequence[float | None]
    quantity_out: Sequence[float | None]
    reasons: Sequence[str]
    order_ids: Sequence[str]
    codes: Sequence[str]  # each decision's fixed word (RiskDecision.code)


@dataclass(frozen=True)
class FillColumns:
    fill_ids: Sequence[str]
    order_ids: Sequence[str]
    sides: Sequence[str]
    quantities: Sequence[float]
    prices: Sequence[float]
    fees: Sequence[float]
    ts: Sequence[int]
    reasons: Sequence[str]


@dataclass(frozen=True)
class RunRows:
    """One symbol's orders, decisions, fills, the position left after the last fill, and the
    round trips the fills closed (numbered from 0)."""

    symbol: str
    orders: OrderColumns
    decisions: DecisionColumns
    fills: FillColumns
    position: Position
    trades: Sequence[Trade]


__all__ = ["DecisionColumns", "FillColumns", "OrderColumns", "RunRows"]
