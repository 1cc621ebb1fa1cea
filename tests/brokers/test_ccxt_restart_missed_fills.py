"""A restarted spot bot counts the fills made while it was down from the positions it held.

Binance spot takes a buy's fee from the coin bought, and what of a buy the ccxt broker counts
depends on the position before it (``spot_count``): a buy closing a short counts its whole
amount (its fee valued at the fill price), one opening a long only what the account holds.
The start-up reconciliation reads the fills made while the bot was down (``fill_reports``)
from the bot's last journaled fill on. Before the fix the broker counted them from flat: a
buy closing a short the bot had opened before that last fill was counted as if it opened a
long, one lot step short of closing it, and the restarted bot held a short the venue's
balance does not show — Degraded, trading nothing. Now the session tells the broker, before
the reports, the positions the journal held before them (``positions_before``).

Against the fake Binance spot (its account holds 1 BTC and 100,000 USDT; a buy's fee is 0.1 %
of the coin; the lot step 0.00001 BTC).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import SYMBOL, VenueHarness, base_balance, coinless_spot
from tests.brokers.live_manifests import live_ccxt_manifest
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_orders import FillRules, terms_by_trade
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.reconcile import ADOPTED_REASON
from tradefleet_runtime.sdk import (
    Bar,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionRestorer,
    Side,
    Strategy,
)
from tradefleet_runtime.session import BotSession, assemble, positions_before
from tradefleet_runtime.spec import load_manifest

PRICE = 50_000.0  # the fake's start price
LIMIT = 49_000.0  # where the resting buy waits
HOUR = 3600
CLOSE = "close"  # a step closing the bot's position at market
# (side or CLOSE, quantity, limit price or None for a market order)
Step = tuple[Side | str, float, float | None]


@dataclass
class Orders(Strategy):
    """Sends ``orders[n]``'s first order at its n-th bar, and each next one at the fill of the
    one before (the fake fills a market order in one trade)."""

    orders: list[list[Step]] = field(default_factory=list)
    queued: list[tuple[str, Step]] = field(default_factory=list)
    handled: int = 0  # bars seen, warm-up and resumed ones included

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        steps = self.orders[self.handled] if self.handled < len(self.orders) else []
        self.handled += 1
        self.queued = [(bar.symbol, step) for step in steps]
        self._next()

    def on_fill(self, fill: Fill) -> None:
        self._next()

    def _next(self) -> None:
        if not self.queued:
            return
        symbol, (side, quantity, price) = self.queued.pop(0)
        if not isinstance(side, Side):
            self.ctx.close(symbol)
            return
        send = self.ctx.buy if side is Side.BUY else self.ctx.sell
        if price is None:
            send(symbol, quantity)
        else:
            send(symbol, quantity, order_type=OrderType.LIMIT, price=price)


def _settled(session: BotSession) -> Callable[[Iterable[Bar]], Iterator[Bar]]:
    """Each bar once the bot's market orders have filled and it applied their fills (a limit
    order may rest: it is the one left working, acknowledged by the venue)."""

    def settle() -> None:
        engine = session.engine
        assert engine is not None
        deadline = time.monotonic() + 10.0
        while True:
            engine.pump()
            engine.send_queued()
            working = engine.open_orders()
            resting = [o for o in working if o.order_type is OrderType.LIMIT]
            if len(working) == len(resting) and all(_acked(session, o) for o in resting):
                return
            assert time.monotonic() < deadline, f"orders did not settle: {working}"
            time.sleep(0.02)

    def pace(bars: Iterable[Bar]) -> Iterator[Bar]:
        source = iter(bars)
        while True:
            settle()  # before the next bar is made (``_live_bars``)
            bar = next(source, None)
            if bar is None:
                return
            # A live bar is handled once it closed: the orders it sends are stamped with its
            # close, later than the fills of the bars before it.
            wait = bar.close_ts - time.time()
            if 0 < wait < 10:
                time.sleep(wait)
            yield bar

    return pace


def _acked(session: BotSession, order: Order) -> bool:
    broker = session.bot.broker
    assert isinstance(broker, CcxtBroker)
    report = broker.query_order(order.client_order_id)
    return report is not None and report.status is OrderStatus.OPEN


@dataclass
class Outcome:
    position: float
    degraded: str
    # Every fill of the journal: (side, quantity, fee to the 1e-9).
    fills: list[tuple[Side, float, float]]


def _run(
    folder: Path,
    harness: VenueHarness,
    bars: Iterable[Bar],
    orders: list[list[Step]],
    exchange: str = "binance",
    market_type: str = "spot",
) -> Outcome:
    """One run of the bot on ``bars`` (its journal in ``folder``), left as a crash leaves it:
    no stop policy, its resting orders working at the venue. Binance spot unless ``exchange``
    and ``market_type`` name another market (``test_ccxt_restart_person_trades`` runs USDⓈ-M)."""
    manifest = live_ccxt_manifest(
        folder, harness, exchange=exchange, market_type=market_type, initial=50000
    )
    bot = assemble(load_manifest(manifest), PluginRegistry.discover(), folder)
    assert isinstance(bot.broker, CcxtBroker) and isinstance(bot.broker, PositionRestorer)
    bot.strategy = Orders(orders)
    journal = Journal(folder / "bot.sqlite", durable=False)
    try:
        session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)
        session.pacer = _settled(session)
        engine = session.open()
        assert session.run() == "completed"
        session.close("completed")
        outcome_position = engine.position(SYMBOL).quantity
        degraded = engine.degraded_reason or ""
    finally:
        bot.broker.close()
        journal.close()
    db = sqlite3.connect(folder / "bot.sqlite")
    try:
        rows = db.execute("SELECT side, quantity, fee FROM fills ORDER BY ts, rowid").fetchall()
    finally:
        db.close()
    fills = [(Side(side), quantity, round(fee, 9)) for side, quantity, fee in rows]
    return Outcome(outcome_position, degraded, fills)


def _bar(close_ts: int) -> Bar:
    return Bar(SYMBOL, HOUR, close_ts - HOUR, PRICE, PRICE, PRICE, PRICE, 1.0)


def _live_bars(made: list[Bar]) -> Iterator[Bar]:
    """Two hourly bars as a live feed gives them, each kept in ``made``: the first closed a
    moment ago; the second, made once the first one's orders filled, closes a second or two
    later (the pacer waits for it), so the fills of the first are older than its close."""
    for seconds_from_now in (-10, 2):
        made.append(_bar(int(time.time()) + seconds_from_now))
        yield made[-1]


def test_a_buy_made_while_the_bot_was_down_is_counted_from_the_long_it_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot buys 0.02 (a long of 0.01998: the fee took 0.00002). At the next bar it sells
    0.01 and leaves a limit buy of 0.01 resting; it stops, the price falls through the limit,
    and it starts again. The reconciliation reads the fills from that bar on (the sell, then
    the buy). Counted from flat, the sell reads as a short the buy closes whole: 0.01, one
    lot step more than the account gained (0.00999), and the bot's exit then sells coin the
    account does not hold, which a USDT-only account refuses. Counted from the long the
    journal held before that bar, the buy adds 0.00999: the bot holds what the account gained
    and its exit sells it all."""
    # The n-th bar's orders, whatever its time.
    orders: list[list[Step]] = [
        [(Side.BUY, 0.02, None)],
        [(Side.SELL, 0.01, None), (Side.BUY, 0.01, LIMIT)],
        [(CLOSE, 0.0, None)],
    ]
    with coinless_spot(tmp_path) as harness:
        monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
        harness.broker.close()  # the harness's own broker: the bot brings its own
        bars: list[Bar] = []
        first = _run(tmp_path, harness, _live_bars(bars), orders)
        assert first.position == pytest.approx(0.00998, abs=1e-12)
        bars.append(_bar(bars[-1].close_ts + HOUR))
        harness.trade_through(LIMIT - 100)  # the resting buy fills while the bot is down
        _wait_venue_filled(harness)
        assert sum(base_balance(harness)) == Decimal("0.01997")
        second = _run(tmp_path, harness, bars, orders)
        # Its exit sold everything the account gained: nothing is left on either side.
        assert sum(base_balance(harness)) == Decimal(0)
    assert second.degraded == ""
    assert [(side, quantity) for side, quantity, _fee in second.fills] == [
        (Side.BUY, 0.01998),
        (Side.SELL, 0.01),
        (Side.BUY, 0.00999),  # made while the bot was down: the fee's coin not held
        (Side.SELL, 0.01997),
    ]
    assert second.position == 0.0


def _wait_venue_filled(harness: VenueHarness) -> None:
    deadline = time.monotonic() + 5.0
    while True:
        with harness.fake.state.lock:
            working = ("NEW", "PARTIALLY_FILLED")
            open_orders = [o for o in harness.fake.orders("spot") if o.status in working]
        if not open_orders:
            return
        assert time.monotonic() < deadline, f"the resting order did not fill: {open_orders}"
        time.sleep(0.02)


# -- the pure helper ----------------------------------------------------------------------


def _f(fill_id: str, side: Side, quantity: float, ts: int, reason: str = "") -> Fill:
    return Fill("o-" + fill_id, SYMBOL, side, quantity, PRICE, 0.0, ts, fill_id, reason)


def test_positions_before_nets_the_journal_fills_older_than_the_reports() -> None:
    fills = [
        _f("1", Side.SELL, 0.01, 100),
        _f("2", Side.SELL, 0.005, 200),  # at the reports' start: they list it again
        _f("3", Side.BUY, 0.002, 300),
    ]
    assert positions_before(fills, 200) == {SYMBOL: Position(SYMBOL, -0.01, PRICE, 0.0, 100)}
    assert positions_before(fills, 100) == {}
    assert positions_before([], 100) == {}


def test_positions_before_keeps_an_adopted_venue_position_the_venue_does_not_list() -> None:
    """A reconciliation fill (a venue position adopted at an earlier start) is no trade of the
    venue's: the reports never list it, so it counts whatever its time."""
    fills = [_f("1", Side.BUY, 0.01, 100), _f("2", Side.BUY, 0.003, 300, ADOPTED_REASON)]
    assert positions_before(fills, 200)[SYMBOL].quantity == pytest.approx(0.013)


def _trade(trade_id: str, ts_ms: int, amount: float) -> dict[str, object]:
    """A Binance spot buy of order A, its fee (0.1 %) taken in the coin bought."""
    fee = {"currency": "BTC", "cost": round(amount * 0.001, 8)}
    return {
        "id": trade_id,
        "order": "A",
        "timestamp": ts_ms,
        "side": "buy",
        "amount": amount,
        "price": PRICE,
        "fee": fee,
    }


def test_the_told_position_stands_at_the_reports_start_not_at_the_earlier_trades() -> None:
    """A report's trades may begin before its start: the earlier trades of an order it lists
    carry their rests below the lot step into its later ones. The position the bot held at
    the start is the one told, whatever those earlier trades (journaled already) did."""
    rules = FillRules(frozenset({"USDT"}), "BTC", 0.00001, spot=True, quote="USDT")
    trades = [_trade("1", 1_000, 0.005), _trade("2", 2_000, 0.01)]
    counted = terms_by_trade(trades, rules, position=-0.01, position_from_ms=2_000)
    assert counted["2"].quantity == 0.01  # closes the short of 0.01 whole
    # Counted on from the first trade, the short would be 0.005 by then, and the buy would
    # open a long of 0.005 less its fee.
    assert terms_by_trade(trades, rules, position=-0.01)["2"].quantity == pytest.approx(0.00999)
