"""A bracket child the engine cuts, amends or cancels while the ccxt broker is still placing its
entry's children: the change reaches the child at the venue, and a refusal the bot journals
means the venue holds no such child, then or later.

The ccxt broker places a bracket's children at its entry's fill, one after the other
(``_keep_protected``), sized on what filled; the engine books them at the same fill and may at
once cut them to a smaller position (``cut_child``). A perpetual trader long 0.1 BTC (with SL
and TP) sells 0.2 with a new SL and TP: short 0.1, the new children are cut from 0.2 to 0.1.
When a child's create answers slowly (a venue under load: a fault delays it here), the cut
reaches the broker with one child in flight and the next not sent yet. Answered as an amend,
that child was "amend: no working order with this client order id" — journaled rejected,
dropped from the bot's book — and placed all the same a moment later, uncut: status, the
journal and ``tradefleet orders`` said the short had no take-profit while one worked at the
venue. The cut now goes to the task placing the children: a child not sent yet goes at its
cut size, one in flight is cut once placed. The same holds on spot (a plain sell cutting a
fresh bracket), for a stop moved while its create is on its way, and for a child cut to
nothing (cancelled once placed, never left working for a flat position).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.harness import (
    BOT,
    ORDER_PATH,
    START_PRICE,
    VenueHarness,
    harness_for,
    updates,
)
from tests.brokers.resting_bracket import resting_bracket
from tests.runtime.helpers import Action, Scripted, start_test_run
from tradefleet_plugins.brokers.ccxt_nonce import TURN_HOLD_S
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus

DELAY_MS = 800
# Where each venue takes a bracket child's create (Binance USDⓈ-M: conditional orders apart;
# Binance spot: both children as one OCO list).
CHILD_PATH = {
    "bybit": ORDER_PATH["bybit"],
    "binance-usdm": "/fapi/v1/algoOrder",
    "kraken": ORDER_PATH["kraken"],
    "binance-spot": "/api/v3/orderList/oco",
}


def _delay_child(harness: VenueHarness, role: str, delay_ms: int = DELAY_MS) -> None:
    """Delay the create of the next bracket's ``role`` child (``sl``/``tp``) by ``delay_ms``,
    the entry's and the other child's answered at once (a path's faults are taken in order;
    Bybit and Kraken take the entry where they take its children). Binance spot places both
    children as one list: that list is delayed."""
    path = CHILD_PATH[harness.name]
    faults = harness.fake.faults
    if harness.name == "binance-spot":
        faults.inject("latency", path=path, method="POST", times=1, delay_ms=delay_ms)
        return
    if path == ORDER_PATH[harness.name]:
        faults.inject("latency", path=path, method="POST", times=1, delay_ms=0)  # the entry
    for child in ("sl", "tp"):
        delay = delay_ms if child == role else 0
        faults.inject("latency", path=path, method="POST", times=1, delay_ms=delay)


def _engine(
    harness: VenueHarness, actions: dict[int, Action]
) -> tuple[Engine, Journal, Callable[[int], None]]:
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    broker = harness.broker
    symbols = (harness.symbol,)
    config = EngineConfig(BOT, "live", symbols, 60, 100_000.0, currency=harness.currency)
    engine = Engine(config, Scripted(actions), broker, journal, venue=broker, brackets=broker)
    start = int(time.time()) // 60 * 60 - 180

    def bar(i: int) -> None:
        p = START_PRICE
        engine.run([Bar(harness.symbol, 60, start + 60 * i, p, p, p, p, 1.0)])

    return engine, journal, bar


def _pump_until(engine: Engine, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out; working: {engine.open_orders()}"
        engine.pump()
        engine.send_queued()
        time.sleep(0.02)


def _entries(journal: Journal) -> dict[str, str]:
    """The bracket entries by side (``buy``/``sell``)."""
    rows = journal.query("SELECT client_order_id, side FROM orders WHERE stop_loss IS NOT NULL")
    return {str(side): str(cid) for cid, side in rows}


def _working(harness: VenueHarness, client_order_id: str) -> float | None:
    """The quantity ``client_order_id`` works for at the venue (or watched by the broker:
    Kraken's take-profit beside its stop); None when it does not work."""
    report = harness.broker.query_order(client_order_id)
    if report is None or report.status is not OrderStatus.OPEN:
        return None
    return float(report.quantity)


def _book(engine: Engine) -> dict[str, float]:
    return {w.order.client_order_id: round(w.order.quantity, 8) for w in engine.book}


def _rejected(journal: Journal) -> list[tuple[str, str]]:
    rows = journal.query(
        "SELECT client_order_id, reason FROM order_updates WHERE status = 'rejected'"
    )
    return [(str(cid), str(reason)) for cid, reason in rows]


def _settled(engine: Engine, journal: Journal, children: list[str], size: float) -> bool:
    """Every answer about ``children`` in: each booked at ``size``, or one refused."""
    book = _book(engine)
    return all(book.get(c) == pytest.approx(size) for c in children) or bool(_rejected(journal))


@contextmanager
def _selling_against_a_long(
    name: str, tmp_path: Path, role: str, sold: float
) -> Iterator[tuple[VenueHarness, Engine, Journal, str]]:
    """On perpetual ``name``: long 0.1 with SL and TP (both children working), then a sell of
    ``sold`` with a new SL and TP sent, the create of its ``role`` child delayed. Yields the
    harness, the engine, the journal and the long's entry."""
    with harness_for(name, tmp_path, leverage=5) as harness:
        assert isinstance(harness, VenueHarness)
        symbol = harness.symbol
        engine, journal, bar = _engine(
            harness,
            {
                0: lambda ctx, _b: ctx.buy(symbol, 0.1, stop_loss=48_000, take_profit=52_000),
                1: lambda ctx, _b: ctx.sell(symbol, sold, stop_loss=52_000, take_profit=47_000),
            },
        )
        bar(0)
        _pump_until(engine, lambda: len(engine.open_orders()) == 2)
        first = _entries(journal)["buy"]
        _pump_until(engine, lambda: all(_working(harness, f"{first}-{r}") for r in ("sl", "tp")))
        _delay_child(harness, role)
        bar(1)
        yield harness, engine, journal, first


@pytest.mark.parametrize("role", ["tp", "sl"])
@pytest.mark.parametrize("name", ["bybit", "binance-usdm"])
def test_a_reversals_children_cut_while_one_is_on_its_way_work_cut_and_booked(
    name: str, role: str, tmp_path: Path
) -> None:
    with _selling_against_a_long(name, tmp_path, role, 0.2) as (harness, engine, journal, first):
        symbol = harness.symbol
        _pump_until(engine, lambda: engine.position(symbol).quantity < 0)
        second = _entries(journal)["sell"]
        children = [f"{second}-sl", f"{second}-tp"]
        _pump_until(engine, lambda: _settled(engine, journal, children, 0.1))
        _pump_until(
            engine, lambda: all(_working(harness, c) == pytest.approx(0.1) for c in children)
        )
        engine.pump()

        assert engine.position(symbol).quantity == pytest.approx(-0.1)
        assert not _rejected(journal), "a cut child was refused while it works at the venue"
        assert _book(engine) == {c: pytest.approx(0.1) for c in children}
        assert all(_working(harness, f"{first}-{r}") is None for r in ("sl", "tp"))


@pytest.mark.parametrize("role", ["tp", "sl"])
@pytest.mark.parametrize("name", ["bybit", "binance-usdm"])
def test_a_reversal_to_flat_cancels_its_children_once_placed(
    name: str, role: str, tmp_path: Path
) -> None:
    """Sold 0.1 with SL and TP against a long of 0.1: flat, the new children are cut to
    nothing (cancelled by the engine) while one of them is on its way: none works after."""
    with _selling_against_a_long(name, tmp_path, role, 0.1) as (harness, engine, journal, _):
        _pump_until(engine, lambda: engine.position(harness.symbol).quantity == 0.0)
        second = _entries(journal)["sell"]
        children = [f"{second}-sl", f"{second}-tp"]
        time.sleep(DELAY_MS / 1000)
        _pump_until(engine, lambda: not engine.open_orders())
        _pump_until(engine, lambda: all(_working(harness, c) is None for c in children))
        # The venue may refuse a reduce-only child placed for a flat position: its refusal.
        refused = [(cid, why) for cid, why in _rejected(journal) if "no working order" in why]
        assert not refused


def _slow_lookup(harness: VenueHarness, seconds: float) -> None:
    """The venue answers the broker's look-up of an order it does not know, then its answer
    takes ``seconds`` more to arrive (the child it asked about may be placed meanwhile)."""
    broker: Any = harness.broker
    adopt = broker._adopt

    async def slow(client_order_id: str, strict: bool = False) -> Any:
        found = await adopt(client_order_id, strict=strict)
        await asyncio.sleep(seconds)
        return found

    broker._adopt = slow


def test_a_child_cancelled_while_its_look_up_waits_is_cancelled_once_placed(
    tmp_path: Path,
) -> None:
    """The engine cancels a child before the broker sent it (its sibling's create in flight);
    the broker looks it up, and the child is placed while the answer is on its way: the
    cancel reaches it all the same."""
    with harness_for("bybit", tmp_path, leverage=5) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        entry = harness.order(
            "tf-flight-cancel", quantity=0.1, stop_loss=48_000.0, take_profit=52_000.0
        )
        _delay_child(harness, "sl")
        broker.submit(entry)
        harness.wait_for(
            lambda e: any(u.status is OrderStatus.FILLED for u in updates(e, entry.client_order_id))
        )
        _slow_lookup(harness, 1.5)
        target = f"{entry.client_order_id}-tp"
        broker.cancel(target)
        final = harness.wait_final(target)
        assert final.status is OrderStatus.CANCELLED, final
        time.sleep(0.3)
        assert _working(harness, target) is None


@pytest.mark.parametrize("name", ["kraken", "binance-spot"])
def test_a_spot_bracket_cut_while_its_stop_is_on_its_way_works_cut_and_booked(
    name: str, tmp_path: Path
) -> None:
    """Spot: a buy of 0.1 with SL and TP, then a plain sell of 0.04 while the stop's create
    (Binance spot: the pair's list) is on its way: both children work for 0.06, as booked."""
    # Kraken: one signed request at a time (its nonce), held at most ``TURN_HOLD_S``: a stop
    # answering slower than that lets the sell and the poller's reads go meanwhile.
    delay_ms = int(TURN_HOLD_S * 1000) + 1000 if name == "kraken" else DELAY_MS
    with harness_for(name, tmp_path, timeout_ms=2 * delay_ms) as harness:
        assert isinstance(harness, VenueHarness)
        symbol = harness.symbol
        engine, journal, bar = _engine(
            harness,
            {
                0: lambda ctx, _b: ctx.buy(symbol, 0.1, stop_loss=48_000, take_profit=52_000),
                1: lambda ctx, _b: ctx.sell(symbol, 0.04),
            },
        )
        _delay_child(harness, "sl", delay_ms)
        bar(0)
        _pump_until(engine, lambda: engine.position(symbol).quantity > 0)
        entry = _entries(journal)["buy"]
        children = [f"{entry}-sl", f"{entry}-tp"]
        bar(1)
        # The sell's fill (Binance spot holds a buy less its fee: 0.0999 before it).
        _pump_until(engine, lambda: engine.position(symbol).quantity < 0.09)
        held = engine.position(symbol).quantity
        _pump_until(engine, lambda: _settled(engine, journal, children, held))
        _pump_until(
            engine, lambda: all(_working(harness, c) == pytest.approx(held) for c in children)
        )
        engine.pump()

        assert not _rejected(journal), "a cut child was refused while it works at the venue"
        assert _book(engine) == {c: pytest.approx(held) for c in children}


def test_a_stop_moved_while_its_create_is_on_its_way_is_moved_once_placed(
    tmp_path: Path,
) -> None:
    """An amend (a new price) of a child not sent yet, its sibling's create in flight: made to
    the child once placed, never answered "no working order"."""
    with harness_for("bybit", tmp_path, leverage=5) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        entry = harness.order("brk-move", quantity=0.1, stop_loss=48_000.0, take_profit=52_000.0)
        target = f"{entry.client_order_id}-tp"
        _delay_child(harness, "sl")
        broker.submit(entry)
        harness.wait_filled(entry.client_order_id)
        broker.amend(target, None, 53_000.0)
        answer = harness.wait_for(
            lambda e: any(u.reason == "amended" or u.status.is_final for u in updates(e, target))
        )
        said = updates(answer, target)
        assert not [u for u in said if u.status is OrderStatus.REJECTED], said
        report = broker.query_order(target)
        assert report is not None and report.status is OrderStatus.OPEN
        assert report.price == pytest.approx(53_000.0)


def test_a_child_whose_amend_was_refused_is_never_placed(tmp_path: Path) -> None:
    """An amend of a child the venue does not hold and nothing is placing is refused: the
    child is then never placed (the bot journals it rejected), its sibling still is."""
    with harness_for("bybit", tmp_path, leverage=5) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        entry, stop, target = resting_bracket(harness, "brk-refused")
        broker.amend(target, None, 53_000.0)
        refused = harness.wait_final(target)
        assert refused.status is OrderStatus.REJECTED
        harness.trade_through(48_900.0)
        harness.wait_filled(entry.client_order_id)
        harness.wait_for(lambda _e: _working(harness, stop) == pytest.approx(0.1))
        time.sleep(0.5)
        harness.collect()
        assert _working(harness, target) is None, "refused to the bot, working at the venue"
        assert updates(harness.events, target) == [refused]
