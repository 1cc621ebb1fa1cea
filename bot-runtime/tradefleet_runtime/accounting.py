"""Netting a fill into a position: the one accounting rule the engine and simulated venues share.

Pure functions on the runtime's value types, so a simulated broker books its own account with
exactly the arithmetic the engine's portfolio uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from tradefleet_runtime.model import Fill, Position

# A position this close to 0 is flat (a float sum of fills): the engine's netting of what is
# held, and the vectorised path, which refuses a size the engine would hold as nothing.
FLAT_QUANTITY = 1e-12


class FillEffect(NamedTuple):
    """What one fill did to a position (a named tuple: one is made per fill, and a frozen
    dataclass costs several times more to build)."""

    realized_pnl: float
    closed_quantity: float
    opened_quantity: float


def netted_quantity(held: float, signed: float) -> float:
    """The signed quantity after executing ``signed`` on ``held``: a close that leaves only
    float residue (1e-12 of the position) is flat. The one netting rule: a simulated venue that
    books quantities alone uses it to agree with the portfolio to the bit."""
    remaining = held + signed
    if held and (held > 0.0) != (signed > 0.0) and abs(remaining) < 1e-12 * max(abs(held), 1.0):
        return 0.0
    return remaining


def apply_fill(position: Position, fill: Fill) -> FillEffect:
    """Update ``position`` in place with ``fill`` (netting) and say what it realized."""
    signed = fill.quantity if fill.side == "buy" else -fill.quantity
    held = position.quantity
    if held == 0.0 or (held > 0.0) == (signed > 0.0):
        total = abs(held) + abs(signed)
        position.average_price = (
            abs(held) * position.average_price + abs(signed) * fill.price
        ) / total
        if held == 0.0:
            position.opened_ts = fill.ts
        position.quantity = held + signed
        return FillEffect(0.0, 0.0, abs(signed))
    closed = min(abs(signed), abs(held))
    direction = 1.0 if held > 0.0 else -1.0
    realized = closed * (fill.price - position.average_price) * direction
    position.realized_pnl += realized
    remaining = netted_quantity(held, signed)
    opened = 0.0
    if remaining == 0.0:
        position.average_price = 0.0
    elif (remaining > 0.0) != (held > 0.0):  # reversed through flat
        position.average_price = fill.price
        position.opened_ts = fill.ts
        opened = abs(remaining)
    position.quantity = remaining
    return FillEffect(realized, closed, opened)


def equity_made(fill: Fill, marks: Mapping[str, float]) -> float:
    """What ``fill`` added to equity at ``marks``: its quantity's move from its price to the
    mark (its own price where the symbol has none), less its fee."""
    mark = marks.get(fill.symbol, fill.price)
    return fill.quantity * fill.side.sign * (mark - fill.price) - fill.fee
