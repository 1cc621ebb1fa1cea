"""Trade signals pushed from outside a bot (the signed webhook or the gRPC ``SubmitSignal``).

A value type of the SDK: strategies that declare the ``takes-signals`` capability receive them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True, slots=True)
class Signal:
    """A trade signal pushed from outside (webhook or ``SubmitSignal``)."""

    symbol: str
    direction: Direction
    entry: float
    stop_loss: float
    take_profit: float
    volume: float | None = None  # None: the bot's sizer decides
    current_price: float | None = None
    timeframe: str = ""
    pattern_type: str = ""
    source: str = ""
    confidence: float | None = None  # 0..1
    signal_id: str = ""  # for replay protection and journaling; set by the front end
    received_at: float = 0.0  # wall clock (epoch seconds) when the front end accepted it


__all__ = ["Direction", "Signal"]
