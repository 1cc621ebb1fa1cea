"""What the MT5 broker does with each trade-server return code: a pure table.

The rule that matters for money: a code that does not say for sure whether the order reached
the market (timeout, no connection, and every code this table does not name) is *reconciled*
through the terminal's history (by magic number and comment) before anything else is sent,
so an order in doubt never becomes two orders. Codes that say the request was refused and
will be refused again (no money, invalid volume/price/stops) are typed rejections, never
retried.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from tradefleet_runtime.sdk import ReasonCode


class Action(StrEnum):
    DONE = "done"  # executed in full
    PLACED = "placed"  # accepted, working (a pending order, or a market order filled later)
    DONE_PARTIAL = "done_partial"  # part executed, the rest is gone (IOC)
    RETRY_PRICE = "retry_price"  # requote family: send again at a fresh price
    RECONCILE = "reconcile"  # outcome unknown: look in history before anything else
    NEXT_FILLING = "next_filling"  # the filling mode is refused: try the next allowed one
    BACK_OFF = "back_off"  # the server is busy: wait, then send again
    REJECT = "reject"  # refused for good: a typed rejection, never retried


class Verdict(NamedTuple):
    action: Action
    code: ReasonCode = ReasonCode.NONE
    words: str = ""


# Codes and their meanings from the MQL5 reference ("Trade Server Return Codes").
_TABLE: dict[int, Verdict] = {
    10008: Verdict(Action.PLACED, words="order placed"),
    10009: Verdict(Action.DONE, words="request executed"),
    10010: Verdict(Action.DONE_PARTIAL, words="request executed partially"),
    10004: Verdict(Action.RETRY_PRICE, words="requote"),
    10020: Verdict(Action.RETRY_PRICE, words="prices changed"),
    10021: Verdict(Action.RETRY_PRICE, words="no quotes to process the request (off quotes)"),
    10012: Verdict(Action.RECONCILE, ReasonCode.UNKNOWN_OUTCOME, "request timeout"),
    10031: Verdict(Action.RECONCILE, ReasonCode.VENUE_UNAVAILABLE, "no connection"),
    10011: Verdict(Action.RECONCILE, ReasonCode.UNKNOWN_OUTCOME, "request processing error"),
    10030: Verdict(Action.NEXT_FILLING, ReasonCode.VENUE_REJECTED, "unsupported filling mode"),
    10024: Verdict(Action.BACK_OFF, ReasonCode.RATE_LIMITED, "too many requests"),
    10019: Verdict(Action.REJECT, ReasonCode.INSUFFICIENT_FUNDS, "not enough money"),
    10014: Verdict(Action.REJECT, ReasonCode.INVALID_QUANTITY, "invalid volume"),
    10015: Verdict(Action.REJECT, ReasonCode.INVALID_PRICE, "invalid price"),
    10016: Verdict(Action.REJECT, ReasonCode.INVALID_STOPS, "invalid stops"),
    # Refusals that say so: the request did not reach the market and would be refused again.
    10006: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "request rejected"),
    10007: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "request canceled by trader"),
    10013: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "invalid request"),
    10017: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "trade disabled"),
    10018: Verdict(Action.REJECT, ReasonCode.MARKET_CLOSED, "market closed"),
    10022: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "invalid order expiration"),
    10026: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "autotrading disabled by server"),
    10027: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "autotrading disabled by terminal"),
    10029: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "order or position frozen"),
    10032: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "only real accounts allowed"),
    10033: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "pending orders limit reached"),
    10034: Verdict(Action.REJECT, ReasonCode.INVALID_QUANTITY, "volume limit reached"),
    10035: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "invalid or prohibited order type"),
    10036: Verdict(Action.REJECT, ReasonCode.REDUCE_ONLY, "position already closed"),
    10038: Verdict(Action.REJECT, ReasonCode.INVALID_QUANTITY, "close volume above position"),
    10039: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "a close order already exists"),
    10040: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "positions limit reached"),
    10042: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "only long positions allowed"),
    10043: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "only short positions allowed"),
    10044: Verdict(Action.REJECT, ReasonCode.REDUCE_ONLY, "only position closing allowed"),
    10045: Verdict(Action.REJECT, ReasonCode.VENUE_REJECTED, "FIFO rule: close older first"),
}

_UNNAMED = Verdict(Action.RECONCILE, ReasonCode.UNKNOWN_OUTCOME, "unexpected answer")


def verdict(retcode: int) -> Verdict:
    """What to do with ``retcode``; any code the table does not name is reconciled."""
    found = _TABLE.get(retcode)
    if found is not None:
        return found
    return _UNNAMED._replace(words=f"unexpected answer {retcode}")


def named_codes() -> frozenset[int]:
    """The codes the table names (for tests and the docs)."""
    return frozenset(_TABLE)


__all__ = ["Action", "Verdict", "named_codes", "verdict"]
