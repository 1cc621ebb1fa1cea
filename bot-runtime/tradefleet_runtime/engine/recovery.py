"""Picking up where a bot left off: its account and working orders, from its journal.

A paper or live bot that restarts (a rescheduled pod, a crash) must not start over: its journal
holds every fill it ever had and the last status of every order. Replaying the fills rebuilds
cash, positions and open trades exactly; orders still working when the process stopped are
handed to the broker again under their own client order ids, so a venue that still holds them
refuses the duplicate and a simulated venue takes them back. Orders journaled but never
acknowledged (the process died between the two) are unknowable to a simulated venue and are
closed as such; a live broker reconciles them with the venue by client order id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradefleet_runtime.journal.sqlite import Journal
from tradefleet_runtime.model import Fill, Order, OrderType, Side


@dataclass
class CarriedState:
    """What previous runs of a bot left behind."""

    initial_capital: float
    fills: list[Fill] = field(default_factory=list)
    working: list[tuple[Order, float]] = field(default_factory=list)  # (order, filled so far)
    unacknowledged: list[Order] = field(default_factory=list)
    runs: int = 0


def load_carried_state(journal: Journal, bot: str) -> CarriedState | None:
    """The bot's state at the end of its earlier runs in ``journal``, or None if it has none."""
    runs = [r for r in journal.runs() if r.bot == bot and r.run_id != journal.run_id]
    if not runs:
        return None
    previous = tuple(r.run_id for r in runs)
    marks = ",".join("?" * len(previous))
    state = CarriedState(initial_capital=runs[0].initial_capital, runs=len(runs))
    rows = journal.query(
        "SELECT f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.fee, f.ts, f.fill_id,"
        " f.reason FROM fills f JOIN runs r USING (run_id)"
        f" WHERE f.run_id IN ({marks}) ORDER BY r.started_at, f.rowid",
        *previous,
    )
    state.fills = [
        Fill(row[0], row[1], Side(row[2]), row[3], row[4], row[5], row[6], row[7], row[8])
        for row in rows
    ]
    filled: dict[str, float] = {}
    for fill in state.fills:
        filled[fill.client_order_id] = filled.get(fill.client_order_id, 0.0) + fill.quantity
    latest = journal.query(
        "SELECT o.client_order_id, o.symbol, o.side, o.order_type, o.quantity, o.price,"
        " o.stop_loss, o.take_profit, o.reduce_only, o.parent_id, o.created_ts, o.tag, u.status"
        " FROM order_updates u JOIN orders o USING (run_id, client_order_id)"
        " WHERE u.id IN (SELECT MAX(id) FROM order_updates"
        f" WHERE run_id IN ({marks}) GROUP BY client_order_id)"
        " AND u.status IN ('pending', 'open', 'partially_filled') ORDER BY u.id",
        *previous,
    )
    for row in latest:
        order = Order(
            client_order_id=row[0],
            symbol=row[1],
            side=Side(row[2]),
            quantity=row[4],
            order_type=OrderType(row[3]),
            price=row[5],
            stop_loss=row[6],
            take_profit=row[7],
            reduce_only=bool(row[8]),
            parent_id=row[9],
            oco_group=row[9],  # bracket children cancel each other, grouped by their parent
            created_ts=row[10],
            tag=row[11],
        )
        if row[12] == "pending":
            state.unacknowledged.append(order)
        else:
            state.working.append((order, filled.get(order.client_order_id, 0.0)))
    return state
