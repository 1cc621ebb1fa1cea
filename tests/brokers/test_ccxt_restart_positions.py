"""A restarted spot bot's fills are counted from the positions it carries (``restores-positions``).

Binance spot takes a buy's fee from the coin bought; what of a buy the ccxt broker counts
depends on the bot's position before it (``spot_count``): a buy closing a short counts its
whole amount (the fee valued), one crossing to a long takes the fee from the long, one opening
a long counts what the account holds. A new broker object after a restart has seen none of the
earlier fills: told nothing, it counts from flat. After reconciling, the session tells it the
positions the bot books (``restore_positions``), so every count after a restart is the one the
bot would have made without the restart: the same fills, the same fees, the same position.

The cases against the fake Binance spot (its account holds 1 BTC, a buy's fee is 0.1 % of the
coin, the lot step 0.00001 BTC):

- a short of 0.01, then a buy of 0.01001: 0.01 closes the short, the fee (0.00001001) eats the
  one step that would open the long: flat, the rest valued (from flat: 0.00999, a short of one
  step left);
- a long (0.00999 held), a sell of 0.02 crossing to a short of 0.01001, then a buy of 0.02
  crossing back: 0.01001 closes, the long is 0.00999 less the fee (0.01998 in all; from the
  short of 0.02 the broker counted itself: the whole 0.02, a long the account does not hold);
- a fill emitted before the broker is told, not yet applied by the bot, counts on top;
- the session's hand-over: a live bot through ``BotSession``, restarted between the fills.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import SYMBOL, VenueHarness, base_balance, harness_for
from tests.brokers.live_manifests import live_ccxt_manifest
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import (
    Bar,
    Capability,
    Fill,
    OrderStatus,
    PluginKind,
    Position,
    PositionRestorer,
    Side,
    Strategy,
    apply_fill,
)
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

PRICE = 50_000.0  # the fake's start price
# (client order id, side, quantity): each market order is sent once the one before it filled.
Step = tuple[str, Side, float]


@contextmanager
def _spot(folder: Path) -> Iterator[VenueHarness]:
    """A fresh fake Binance spot account (1 BTC, USDT) and a ccxt broker on it."""
    folder.mkdir(exist_ok=True)
    with harness_for("binance-spot", folder, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        yield harness


@pytest.fixture
def spot(tmp_path: Path) -> Iterator[VenueHarness]:
    with _spot(tmp_path) as harness:
        yield harness


def _fill(harness: VenueHarness, step: Step) -> None:
    client_order_id, side, quantity = step
    harness.answer(harness.broker.submit(harness.order(client_order_id, side, quantity=quantity)))
    assert harness.wait_final(client_order_id).status is OrderStatus.FILLED
    harness.collect()


def _booked(fills: Iterable[Fill]) -> dict[str, Position]:
    """The positions ``fills`` leave, as the bot's journal nets them."""
    positions: dict[str, Position] = {}
    for fill in fills:
        apply_fill(positions.setdefault(fill.symbol, Position(fill.symbol)), fill)
    return {symbol: p for symbol, p in positions.items() if p.quantity}


def _fills(harness: VenueHarness) -> list[Fill]:
    return [e for e in harness.events if isinstance(e, Fill)]


def _terms(fills: Iterable[Fill]) -> list[tuple[str, Side, float, float]]:
    """What the bot books of each fill: its order, side, quantity and fee (to the 1e-9)."""
    return [(f.client_order_id, f.side, f.quantity, round(f.fee, 9)) for f in fills]


def _run(harness: VenueHarness, before: list[Step], after: list[Step], restart: bool) -> None:
    """``before``'s orders, then (a restart, the broker told the positions they left)
    ``after``'s."""
    for step in before:
        _fill(harness, step)
    if restart:
        carried = _booked(_fills(harness))
        harness.restart().restore_positions(carried)
    for step in after:
        _fill(harness, step)


def test_the_ccxt_broker_declares_restores_positions() -> None:
    spec = PluginRegistry.discover().get(PluginKind.BROKER, "ccxt").spec
    assert spec.has(Capability.RESTORES_POSITIONS)


def test_a_crossing_buy_after_a_restart_closes_a_carried_short_as_without_one(
    tmp_path: Path,
) -> None:
    before: list[Step] = [("s1", Side.SELL, 0.01)]
    after: list[Step] = [("b1", Side.BUY, 0.01001)]
    booked: list[list[tuple[str, Side, float, float]]] = []
    held: list[dict[str, Position]] = []
    for restart in (False, True):
        with _spot(tmp_path / str(restart)) as harness:
            _run(harness, before, after, restart)
            booked.append(_terms(_fills(harness)))
            held.append(_booked(_fills(harness)))
            assert harness.broker.positions() == held[-1]
            # 1 BTC, 0.01 sold, 0.01001 bought less its fee of 0.00001001: 0.00000001 less.
            assert sum(base_balance(harness)) == Decimal("0.99999999")
    assert booked[1] == booked[0]
    # The buy closed the short whole; the fee ate the step that would have opened a long.
    assert booked[1][-1] == ("b1", Side.BUY, 0.01, round(0.00001001 * PRICE, 9))
    assert held[1] == held[0] == {}


def test_a_long_carried_over_a_restart_crosses_to_a_short_and_back_as_without_one(
    tmp_path: Path,
) -> None:
    before: list[Step] = [("l1", Side.BUY, 0.01)]
    after: list[Step] = [("l2", Side.SELL, 0.02), ("l3", Side.BUY, 0.02)]
    booked: list[list[tuple[str, Side, float, float]]] = []
    for restart in (False, True):
        with _spot(tmp_path / str(restart)) as harness:
            _run(harness, before, after, restart)
            booked.append(_terms(_fills(harness)))
            position = harness.broker.positions()[SYMBOL]
            # What the account gained of the coin since the bot started: the long.
            gained = float(sum(base_balance(harness)) - 1)
            assert position.quantity == pytest.approx(gained, abs=1e-12)
    assert booked[1] == booked[0]
    # 0.01001 closes the short; the long is 0.00999 less the buy's fee of 0.00002.
    assert booked[1][-1][2] == pytest.approx(0.01998, abs=1e-12)


def test_a_fill_the_bot_has_not_applied_yet_counts_on_top_of_what_it_is_told(
    spot: VenueHarness,
) -> None:
    """The engine tells the positions it booked; a fill of this run the broker emitted before
    (an adopted order's, just after reconciliation read the venue) is not among them."""
    _fill(spot, ("p1", Side.BUY, 0.01))
    carried = _booked(_fills(spot))
    broker = spot.restart()
    spot.broker.submit(spot.order("p2", Side.SELL, quantity=0.02))

    def emitted() -> bool:
        with broker._events_lock:  # the fill is emitted, not yet drained by the bot
            return any(isinstance(e, Fill) for e in broker._events)

    deadline = time.monotonic() + 8.0
    while not emitted():
        assert time.monotonic() < deadline, "the sell's fill was never emitted"
        time.sleep(0.02)
    broker.restore_positions(carried)  # the long only: the sell is still on its way
    assert spot.wait_final("p2").status is OrderStatus.FILLED
    spot.collect()
    # The bot is short 0.01001: a buy of 0.01002 closes it, and its fee (0.00001002) eats the
    # one step past flat. Counted from the long alone it would be a long of 0.01 bought.
    _fill(spot, ("p3", Side.BUY, 0.01002))
    assert sum(f.quantity for f in _fills(spot) if f.client_order_id == "p3") == 0.01001
    assert spot.broker.positions() == {}


def test_the_positions_the_broker_keeps_are_copies(spot: VenueHarness) -> None:
    told = {SYMBOL: Position(SYMBOL, -0.01, PRICE)}
    spot.broker.restore_positions(told)
    told[SYMBOL].quantity = 0.0  # the engine's object moves with its fills: not the broker's
    assert spot.broker.positions()[SYMBOL].quantity == -0.01


# -- the session's hand-over --------------------------------------------------------------


@dataclass
class Orders(Strategy):
    """Sends ``orders[ts]``'s first (side, quantity) at the bar of that time, and each next one
    at the fill of the one before (the fake fills a market order in one trade)."""

    orders: dict[int, list[tuple[Side, float]]] = field(default_factory=dict)
    queued: list[tuple[str, Side, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        self.queued = [(bar.symbol, side, q) for side, q in self.orders.get(bar.ts, [])]
        self._next()

    def on_fill(self, fill: Fill) -> None:
        self._next()

    def _next(self) -> None:
        if self.queued:
            symbol, side, quantity = self.queued.pop(0)
            (self.ctx.buy if side is Side.BUY else self.ctx.sell)(symbol, quantity)


def _manifest(folder: Path, harness: VenueHarness) -> Path:
    return live_ccxt_manifest(
        folder, harness, exchange="binance", market_type="spot", initial=50000
    )


def _settled(session: BotSession) -> Callable[[Iterable[Bar]], Iterator[Bar]]:
    """Each bar once the orders before it have filled and the bot applied their fills."""

    def pace(bars: Iterable[Bar]) -> Iterator[Bar]:
        for bar in bars:
            _drain(session)
            yield bar
        _drain(session)

    return pace


def _drain(session: BotSession) -> None:
    """The bot's orders filled and their fills applied; an order the strategy sends on a
    fill (``Orders``) sent at once, before the next bar's position check."""
    engine = session.engine
    assert engine is not None
    deadline = time.monotonic() + 10.0
    while True:
        engine.pump()
        engine.send_queued()
        if not engine.open_orders():
            return
        assert time.monotonic() < deadline, "an order did not fill"
        time.sleep(0.02)


def _session_run(
    folder: Path,
    harness: VenueHarness,
    bars: list[Bar],
    orders: dict[int, list[tuple[Side, float]]],
) -> tuple[Position, list[tuple[Side, float, float]]]:
    """One run of the bot on ``bars`` (the journal in ``folder``): its position after it, and
    every fill of its journal (side, quantity, fee)."""
    bot = assemble(load_manifest(_manifest(folder, harness)), PluginRegistry.discover(), folder)
    assert isinstance(bot.broker, CcxtBroker) and isinstance(bot.broker, PositionRestorer)
    bot.strategy = Orders(orders)
    journal = Journal(folder / "bot.sqlite", durable=False)
    try:
        session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)
        session.pacer = _settled(session)
        engine = session.open()
        assert session.reconciliation is not None and not session.reconciliation.degraded
        assert session.run() == "completed"
        session.close("completed")
        position = engine.position(SYMBOL)
    finally:
        bot.broker.close()
        journal.close()
    db = sqlite3.connect(folder / "bot.sqlite")
    try:
        rows = db.execute("SELECT side, quantity, fee FROM fills ORDER BY ts, rowid").fetchall()
    finally:
        db.close()
    booked = [(Side(side), quantity, round(fee, 9)) for side, quantity, fee in rows]
    return Position(SYMBOL, position.quantity, position.average_price), booked


def test_a_live_bot_restarted_counts_its_crossing_fills_as_without_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hour = 3600
    start = (int(time.time()) // hour - 6) * hour
    bars = [Bar(SYMBOL, hour, start + i * hour, PRICE, PRICE, PRICE, PRICE, 1.0) for i in range(4)]
    # A long (0.00999 held of 0.01 bought); after the restart a sell crossing to a short and,
    # once it filled, a buy crossing back to a long, before the next bar (a spot short held
    # over a bar is a position the venue's balance does not show: the bot would be Degraded).
    orders = {
        bars[0].ts: [(Side.BUY, 0.01)],
        bars[2].ts: [(Side.SELL, 0.02), (Side.BUY, 0.02)],
    }
    outcomes = []
    for restart in (False, True):
        folder = tmp_path / ("restarted" if restart else "through")
        with _spot(folder) as harness:
            monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
            harness.broker.close()  # the harness's own broker: the bot brings its own
            if restart:
                _session_run(folder, harness, bars[:2], orders)
            outcomes.append(_session_run(folder, harness, bars, orders))
            position, _ = outcomes[-1]
            # The bot holds what the account gained of the coin: its long.
            gained = float(sum(base_balance(harness)) - 1)
            assert position.quantity == pytest.approx(gained, abs=1e-12)
    assert outcomes[1] == outcomes[0]
    position, booked = outcomes[1]
    assert [quantity for _, quantity, _ in booked] == pytest.approx([0.00999, 0.02, 0.01998])
    assert position.quantity == pytest.approx(0.00997, abs=1e-12)
