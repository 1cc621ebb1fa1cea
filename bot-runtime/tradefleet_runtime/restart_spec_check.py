"""Whether a restarted paper or live bot may take up its journal's account on an edited
``spec.market``.

Editing a running bot rolls its pod (``kubectl apply``), and the new runtime restores what the
journal holds: positions and working orders, an entry's stop-loss and take-profit among them.
Two edits leave that account where the new spec cannot trade it:

- **A held symbol removed from ``spec.market.symbols``.** The feed is no longer asked for its
  bars: the paper broker never works its stop-loss again, the position is marked at its entry
  price for ever, and the engine refuses any order on it, an emergency flatten's close included.
- **Another ``spec.market.timeframe`` at a time that is not a boundary of it** (1h → 4h with
  07:00 last handled). The first new bar holds hours the old run handled and hours it did not;
  the paper broker does not work an order over a bar that began before the order, and the next
  bar begins after the hours not handled: a stop the price crossed in them never fills. A
  venue works its own stop-loss, but the strategy's bars skip those hours all the same.

Both are refused at start, before anything is journaled, sent or cancelled, naming the field,
what the journal holds and how to get out; these are pure decisions on the journal's state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tradefleet_runtime.accounting import apply_fill
from tradefleet_runtime.errors import FieldError
from tradefleet_runtime.model import CarriedState, Position
from tradefleet_runtime.timeframes import bucket_start, format_timeframe


@dataclass(frozen=True, slots=True)
class Holding:
    """What the journal holds on one symbol: its net position (signed) and working orders
    (those not yet acknowledged by the venue included)."""

    symbol: str
    quantity: float = 0.0
    working: int = 0

    def said(self) -> str:
        """``a position of +1000 and 2 working orders``, or either part alone."""
        parts = []
        if self.quantity:
            parts.append(f"a position of {self.quantity:+.10g}")
        if self.working:
            plural = "" if self.working == 1 else "s"
            parts.append(f"{self.working} working order{plural}")
        return " and ".join(parts)


def holdings(state: CarriedState) -> dict[str, Holding]:
    """The symbols on which the journal's account holds a position or a working order, in the
    order the journal first names them."""
    positions: dict[str, Position] = {}
    for fill in state.fills:
        apply_fill(positions.setdefault(fill.symbol, Position(fill.symbol)), fill)
    working: dict[str, int] = {}
    for order in [order for order, _ in state.working] + list(state.unacknowledged):
        working[order.symbol] = working.get(order.symbol, 0) + 1
    held: dict[str, Holding] = {}
    for symbol in [*positions, *working]:
        quantity = positions[symbol].quantity if symbol in positions else 0.0
        count = working.get(symbol, 0)
        if (quantity or count) and symbol not in held:
            held[symbol] = Holding(symbol, quantity, count)
    return held


def removed_symbol_refusals(
    held: Mapping[str, Holding], symbols: Sequence[str]
) -> list[FieldError]:
    """One refusal per held symbol the spec no longer lists: nothing would price it, work its
    orders or be allowed to close it. It names the way out for a venue that closed the
    position while the bot was down (a person, a stop-out not booked as the bot's fill):
    putting the symbol back alone finds the journal's position against a flat venue and stops
    the bot Degraded, and a resume books nothing, so the journal would hold it for ever. The
    start-up reconciliation adopts the venue's position only on a listed symbol, hence both
    edits, and ``adoptVenuePositions`` set back after: it takes over any difference on every
    start."""
    listed = set(symbols)
    return [
        FieldError(
            "spec.market.symbols",
            f"{symbol} is not listed, but the journal's account holds {holding.said()} on "
            f"{symbol}: keep it in spec.market.symbols until it is closed (a symbol not "
            "listed gets no bars, so its orders are never worked, and no order, an emergency "
            "flatten's close included, may be sent on it); a live bot whose venue already "
            f"closed it: list {symbol} again with spec.broker.adoptVenuePositions: true for "
            "one start (the venue's position is booked as a reconciliation fill), then set it "
            f"back to false and remove {symbol}; nothing was sent or cancelled",
        )
        for symbol, holding in held.items()
        if symbol not in listed
    ]


def is_boundary(ts: int, timeframe_s: int) -> bool:
    """Whether a bar of ``timeframe_s`` begins at ``ts`` (the runtime's buckets: UTC epoch
    multiples, weeks from Monday)."""
    return bucket_start(ts, timeframe_s) == ts


def timeframe_refusal(
    journal_timeframe_s: int | None,
    timeframe_s: int,
    last_bar_ts: int,
    held: Iterable[Holding],
) -> FieldError | None:
    """A changed timeframe while the account holds something, when the last handled close is
    not where a bar of the new timeframe begins: its first bar would straddle time handled and
    time not, and nothing (the paper broker, the strategy) sees the part not handled.

    The same timeframe, a flat account with nothing working, nothing handled yet, or a last
    handled close on a boundary of the new timeframe (4h → 1h always; 1h → 4h at 08:00) start
    as before."""
    held = list(held)
    if (
        journal_timeframe_s is None
        or journal_timeframe_s == timeframe_s
        or last_bar_ts <= 0
        or not held
        or is_boundary(last_bar_ts, timeframe_s)
    ):
        return None
    new, old = format_timeframe(timeframe_s), format_timeframe(journal_timeframe_s)
    at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(last_bar_ts))
    what = "; ".join(f"{h.said()} on {h.symbol}" for h in held)
    return FieldError(
        "spec.market.timeframe",
        f"{new}, but the journal's runs were on {old} and last handled the bar closing {at}, "
        f"which is not a {new} boundary, while the account holds {what}: the first {new} bar "
        f"would hold time handled and time not, and its orders would not be worked over the "
        f"part not handled; change the timeframe when flat, or at a time that is a boundary "
        f"of both (set it back to {old} until then); nothing was sent or cancelled",
    )


def restart_refusals(
    state: CarriedState,
    journal_timeframe_s: int | None,
    symbols: Sequence[str],
    timeframe_s: int,
) -> list[FieldError]:
    """Every reason the edited ``spec.market`` may not take up the journal's account (empty:
    it may). ``journal_timeframe_s``: the timeframe of the bot's latest earlier run (None: not
    known)."""
    held = holdings(state)
    refusals = removed_symbol_refusals(held, symbols)
    changed = timeframe_refusal(journal_timeframe_s, timeframe_s, state.last_bar_ts, held.values())
    if changed is not None:
        refusals.append(changed)
    return refusals
