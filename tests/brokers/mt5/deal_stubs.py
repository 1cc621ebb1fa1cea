"""A terminal's deal as the MetaTrader5 package returns it, with only the fields the broker's
pure readers use (``mt5_reports.fill_from_deal``, ``deal_credit``, ``swap_flow``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def deal_stub(time: int, **fields: Any) -> Any:
    """A closing sell deal of 1 lot of EURUSD at 1.1 with a 3.5 commission, ``fields`` over it."""
    base: dict[str, Any] = dict(
        type=1,
        reason=0,
        commission=-3.5,
        fee=0.0,
        swap=0.0,
        symbol="EURUSD",
        volume=1.0,
        price=1.1,
        time=time,
        ticket=7,
    )
    base.update(fields)
    return SimpleNamespace(**base)
