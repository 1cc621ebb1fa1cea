"""A restarted paper bot and the orders that rested on its book while it was down
(docs/operations.md, "Disruptions", item 3). The paper broker is its own venue: it works them
over the bars that closed meanwhile (``MissedBarMatcher``) before the strategy is shown those
bars as history, as a venue would have — a stop the price crossed fills at its price, or at the
open of a bar that gapped through it, journaled at that bar's time — while an order sent at the
restart waits for the first live bar.

The bot: a paper bot on hourly bars (no fees, no slippage) that buys 1 on a bar closing at
exactly 110 while flat, with a stop-loss at 104.5 and a take-profit at 115, and does nothing
else. Its first life buys at bar 2's close (filled at 108, bar 3's open); it is down for five
hours (bars 4 to 8) and comes back 30 s after bar 8 closed: bars 4 to 7 closed while it was
down, bar 8 is the newest and traded.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runtime.test_restart_missed_bars import (
    told_clock_life,
    told_clock_manifest,
    told_clock_registry,
)
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.capabilities import MissedBarMatcher
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.model import Fill, Order, OrderType, Side
from tradefleet_runtime.sdk import Bar, Strategy
from tradefleet_runtime.spec.model import Mode

HOUR = 3600
T0 = 1_700_000_000 // HOUR * HOUR
SYMBOL = "BTC/USDT"
OHLC = tuple[float, float, float, float]
# Life 1: the buy at bar 2 (close 110), filled at bar 3's open, 108.
LIFE1: list[OHLC] = [(100.0, 100.0, 100.0, 100.0), (100.0, 100.0, 100.0, 100.0)]
LIFE1 += [(110.0, 110.0, 110.0, 110.0), (108.0, 108.0, 108.0, 108.0)]
QUIET: OHLC = (106.0, 107.0, 105.0, 106.0)  # reaches neither the stop nor the take-profit


class BuyAt110(Strategy):
    """Buys 1 with a stop at 104.5 and a take-profit at 115 on a bar closing at exactly 110
    while flat; nothing else (its own orders would blur what the broker did)."""

    def on_bar(self, bar: Bar) -> None:
        if bar.close == 110.0 and not self.ctx.position(bar.symbol).quantity:
            self.ctx.buy(bar.symbol, 1.0, stop_loss=104.5, take_profit=115.0, tag="in")


def _bars(ohlc: list[OHLC]) -> list[Bar]:
    return [
        Bar(SYMBOL, HOUR, T0 + i * HOUR, o, h, low, c, 1.0) for i, (o, h, low, c) in enumerate(ohlc)
    ]


@dataclass
class Life:
    held: float  # the position the life ended with
    fills: list[tuple[str, int, float]]  # (reason, ts, price) of the life's fills
    said: list[tuple[int, str]]  # its ``filled_while_down`` events (ts, message)


def _life(folder: Path, ohlc: list[OHLC], told: bool) -> Life:
    bars = _bars(ohlc)
    now = bars[-1].close_ts + 30
    manifest = told_clock_manifest(folder, "paper-stop", "{name: buy-at-110}")
    registry = told_clock_registry(("buy-at-110", BuyAt110))
    run_id, held = told_clock_life(
        folder, manifest, registry, bars, now, told=now if told else None
    )
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        fills = db.execute(
            "SELECT reason, ts, price FROM fills WHERE run_id = ? ORDER BY ts", (run_id,)
        ).fetchall()
        said = db.execute(
            "SELECT ts, message FROM events WHERE run_id = ? AND kind = 'filled_while_down'",
            (run_id,),
        ).fetchall()
    return Life(held, [tuple(f) for f in fills], [tuple(s) for s in said])


def _restart(folder: Path, outage: list[OHLC], told: bool = True) -> Life:
    first = _life(folder, LIFE1, told=False)
    assert first.held == 1.0 and first.fills == [("in", T0 + 3 * HOUR, 108.0)], first
    return _life(folder, LIFE1 + outage, told=told)


def test_a_stop_crossed_during_the_outage_has_closed_the_position_at_the_restart(
    tmp_path: Path,
) -> None:
    # Bar 5 trades down to 100 and back (the stop at 104.5 inside it); the price is at 106
    # when the bot returns.
    dip = (106.0, 106.5, 100.0, 105.0)
    life = _restart(tmp_path, [QUIET, dip, QUIET, QUIET, QUIET])
    assert life.held == 0.0, "a venue would have stopped the position out during the outage"
    # At the stop's price, stamped with the bar it filled on (not the restart's first bar).
    assert life.fills == [("stop_loss", T0 + 5 * HOUR, 104.5)]
    ((ts, message),) = life.said
    assert ts == T0 + 5 * HOUR
    assert "filled while the bot was down" in message and "104.5" in message, message


def test_a_bar_that_gapped_through_the_stop_during_the_outage_fills_it_at_its_open(
    tmp_path: Path,
) -> None:
    gap = (100.0, 101.0, 99.0, 100.5)
    life = _restart(tmp_path, [QUIET, QUIET, gap, QUIET, QUIET])
    assert life.held == 0.0
    assert life.fills == [("stop_loss", T0 + 6 * HOUR, 100.0)]


def test_a_take_profit_reached_during_the_outage_fills_at_its_price(tmp_path: Path) -> None:
    spike = (110.0, 116.0, 109.0, 112.0)
    life = _restart(tmp_path, [QUIET, spike, QUIET, QUIET, QUIET])
    assert life.held == 0.0
    assert life.fills == [("take_profit", T0 + 5 * HOUR, 115.0)]


def test_a_missed_bar_reaching_both_the_stop_and_the_take_profit_takes_the_stop(
    tmp_path: Path,
) -> None:
    # The path inside the bar is unknown: the paper broker's rule on any bar, the worse one.
    both = (110.0, 116.0, 103.0, 110.0)
    life = _restart(tmp_path, [QUIET, QUIET, both, QUIET, QUIET])
    assert life.fills == [("stop_loss", T0 + 6 * HOUR, 104.5)]


def test_a_stop_the_outage_never_reached_keeps_working(tmp_path: Path) -> None:
    life = _restart(tmp_path, [QUIET] * 5)
    assert (life.held, life.fills, life.said) == (1.0, [], [])


def test_without_the_market_time_every_bar_is_live_and_fills_as_before(tmp_path: Path) -> None:
    # A feed that does not tell the market's time: no bar is missed, the broker sees them all.
    dip = (106.0, 106.5, 100.0, 105.0)
    life = _restart(tmp_path, [QUIET, dip, QUIET, QUIET, QUIET], told=False)
    assert life.fills == [("stop_loss", T0 + 5 * HOUR, 104.5)]
    assert life.said == []


# -- the broker alone -------------------------------------------------------------------------


def _paper() -> PaperBroker:
    broker = PaperBroker(PaperBrokerParams(fee_bps=0.0, slippage_bps=0.0))
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    return broker


def _order(order_id: str, side: Side, kind: OrderType, price: float | None = None) -> Order:
    return Order(
        order_id, "TEST", side, 1.0, kind, price, reduce_only=side is Side.SELL,
        created_ts=T0,
    )  # fmt: skip


def test_a_missed_bar_works_only_the_orders_that_rested_before_the_restart() -> None:
    broker = _paper()
    assert isinstance(broker, MissedBarMatcher)
    broker.restore_account([Fill("entry", "TEST", Side.BUY, 1.0, 100.0, 0.0, T0 - HOUR, "f1")])
    broker.submit(_order("stop", Side.SELL, OrderType.STOP, 95.0))  # re-armed: it rested
    broker.submit(_order("close", Side.SELL, OrderType.MARKET))  # sent at the restart
    missed = Bar("TEST", HOUR, T0, 100.0, 100.0, 90.0, 92.0, 1.0)
    events = broker.match_missed_bar(missed, frozenset({"stop"}))
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.client_order_id, f.price, f.ts) for f in fills] == [("stop", 95.0, T0)]
    # The close, held back, is still working: not filled on the missed bar, not dropped.
    assert [o.client_order_id for o in broker.open_orders()] == ["close"]
    live = Bar("TEST", HOUR, T0 + HOUR, 93.0, 94.0, 92.0, 93.0, 1.0)
    answered = broker.on_bar(live)
    # Reduce-only, and the stop left nothing to reduce: the venue cancels it.
    assert [getattr(e, "status", None) for e in answered] == ["cancelled"]


@pytest.mark.parametrize("resting", [frozenset({"entry"}), frozenset()])
def test_the_children_of_a_resting_entry_filled_on_a_missed_bar_are_worked_on_it(
    resting: frozenset[str],
) -> None:
    broker = _paper()
    broker.restore_account([])
    entry = Order(
        "entry", "TEST", Side.BUY, 1.0, OrderType.LIMIT, 100.0, stop_loss=95.0,
        created_ts=T0 - HOUR,
    )  # fmt: skip
    broker.submit(entry)
    # Fills at 100 inside the bar, then falls through its stop-loss at 95 in the same bar.
    missed = Bar("TEST", HOUR, T0, 101.0, 101.0, 94.0, 94.0, 1.0)
    events = broker.match_missed_bar(missed, resting)
    filled = [(e.client_order_id, e.price) for e in events if isinstance(e, Fill)]
    if resting:
        assert [price for _, price in filled] == [100.0, 95.0], filled
    else:  # sent at the restart: not on the venue's book at that bar
        assert filled == []
        assert [o.client_order_id for o in broker.open_orders()] == ["entry"]
