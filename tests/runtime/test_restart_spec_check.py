"""The pure decisions of a restart on an edited spec.market (``restart_spec_check``): what the
journal's account holds per symbol, a held symbol no longer listed, and a timeframe changed
off a boundary of the new one while something is held."""

from __future__ import annotations

from datetime import UTC, datetime

from tradefleet_runtime.errors import FieldError
from tradefleet_runtime.model import CarriedState, Fill, Order, OrderType, Side
from tradefleet_runtime.restart_spec_check import (
    Holding,
    holdings,
    removed_symbol_refusals,
    restart_refusals,
    timeframe_refusal,
)

HOUR = 3600
MONDAY = int(datetime(2017, 1, 2, tzinfo=UTC).timestamp())  # 2017-01-02 was a Monday


def _fill(symbol: str, side: Side, quantity: float, ts: int = MONDAY) -> Fill:
    return Fill(f"{symbol}-{side}-{ts}", symbol, side, quantity, 1.05, 0.0, ts, f"f-{ts}")


def _order(oid: str, symbol: str, side: Side = Side.SELL) -> Order:
    return Order(oid, symbol, side, 1000, OrderType.STOP, price=1.04, reduce_only=True)


def _held_eurusd(last_bar_ts: int = MONDAY + 7 * HOUR) -> CarriedState:
    """A long of 1000 EURUSD with its stop-loss and take-profit working; GBPUSD bought and
    sold back (flat)."""
    return CarriedState(
        initial_capital=100_000,
        fills=[
            _fill("EURUSD", Side.BUY, 1000),
            _fill("GBPUSD", Side.BUY, 500, MONDAY + HOUR),
            _fill("GBPUSD", Side.SELL, 500, MONDAY + 2 * HOUR),
        ],
        working=[(_order("sl", "EURUSD"), 0.0), (_order("tp", "EURUSD"), 0.0)],
        last_bar_ts=last_bar_ts,
    )


def test_holdings_are_the_open_positions_and_the_working_orders_per_symbol() -> None:
    state = _held_eurusd()
    state.unacknowledged.append(_order("entry", "USDJPY", Side.BUY))
    held = holdings(state)
    assert held == {
        "EURUSD": Holding("EURUSD", 1000.0, 2),
        "USDJPY": Holding("USDJPY", 0.0, 1),  # an order the venue had not acknowledged
    }  # GBPUSD is flat with nothing working: not held
    assert held["EURUSD"].said() == "a position of +1000 and 2 working orders"
    assert held["USDJPY"].said() == "1 working order"
    assert Holding("X", -0.5).said() == "a position of -0.5"


def test_a_held_symbol_no_longer_listed_is_refused_naming_the_field_and_what_it_holds() -> None:
    held = holdings(_held_eurusd())
    (refusal,) = removed_symbol_refusals(held, ["GBPUSD"])
    assert refusal.field == "spec.market.symbols"
    assert refusal.message.startswith(
        "EURUSD is not listed, but the journal's account holds a position of +1000 and 2 "
        "working orders on EURUSD: keep it in spec.market.symbols until it is closed"
    )
    assert "nothing was sent or cancelled" in refusal.message
    # Listed still, or flat with nothing working (GBPUSD): nothing to refuse.
    assert removed_symbol_refusals(held, ["EURUSD"]) == []
    assert removed_symbol_refusals(held, ["EURUSD", "USDJPY"]) == []


def test_a_timeframe_changed_off_a_boundary_while_holding_is_refused() -> None:
    held = holdings(_held_eurusd()).values()
    refusal = timeframe_refusal(HOUR, 4 * HOUR, MONDAY + 7 * HOUR, held)
    assert isinstance(refusal, FieldError)
    assert refusal.field == "spec.market.timeframe"
    assert refusal.message.startswith(
        "4h, but the journal's runs were on 1h and last handled the bar closing "
        "2017-01-02 07:00 UTC, which is not a 4h boundary, while the account holds a "
        "position of +1000 and 2 working orders on EURUSD"
    )
    assert "change the timeframe when flat, or at a time that is a boundary of both" in (
        refusal.message
    )
    assert "set it back to 1h" in refusal.message


def test_a_timeframe_change_starts_as_before_when_nothing_is_skipped() -> None:
    held = list(holdings(_held_eurusd()).values())
    seven = MONDAY + 7 * HOUR
    assert timeframe_refusal(HOUR, HOUR, seven, held) is None  # the same timeframe
    assert timeframe_refusal(None, 4 * HOUR, seven, held) is None  # no earlier run listed
    assert timeframe_refusal(HOUR, 4 * HOUR, seven, []) is None  # flat, nothing working
    assert timeframe_refusal(HOUR, 4 * HOUR, 0, held) is None  # nothing handled yet
    assert timeframe_refusal(HOUR, 4 * HOUR, MONDAY + 8 * HOUR, held) is None  # 08:00
    assert timeframe_refusal(4 * HOUR, HOUR, MONDAY + 4 * HOUR, held) is None  # 4h -> 1h
    # A week begins on Monday 00:00 UTC (the runtime's buckets), not at an epoch multiple.
    assert timeframe_refusal(86400, 7 * 86400, MONDAY, held) is None
    assert timeframe_refusal(86400, 7 * 86400, MONDAY + 86400, held) is not None


def test_restart_refusals_lists_both_fields() -> None:
    refusals = restart_refusals(_held_eurusd(), HOUR, ["GBPUSD"], 4 * HOUR)
    assert [r.field for r in refusals] == ["spec.market.symbols", "spec.market.timeframe"]
    assert restart_refusals(_held_eurusd(), HOUR, ["EURUSD", "GBPUSD"], HOUR) == []
