"""The kinds of the service's runtime events, on their own: the CLI lists them as choices when it
builds its commands, and importing the service's API (pydantic models) for that would cost
every ``tradefleet`` process, backtests included, a tenth of a second."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    ORDER = "order"  # an order was sent or changed status
    FILL = "fill"
    RISK = "risk"  # a risk decision
    STATE = "state"  # phase changes: paused, resumed, halted, stopped
    SIGNAL = "signal"  # an external signal was accepted or refused
    DROPPED = "dropped"  # this subscriber was too slow; `data["count"]` events were dropped


__all__ = ["EventKind"]
