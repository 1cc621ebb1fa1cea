"""A bracket child the engine cut to a smaller position stays cut after a restart, while its
entry still rests part-filled: the engine rebuilds the cut from the journal
(``order_book.carried_cuts``) and tells the ccxt broker (``ChildCutter.restore_cuts``) before
it follows the entry, so neither grows the child back over the cut.

A limit buy of 0.1 fills 0.04, a plain sell of 0.01 leaves 0.03 and the children are cut to
0.03 (``test_ccxt_children_cut``); after a kill and a restart the stop-loss and take-profit
are 0.03 at the venue and in the engine.

Against the fake Binance USDⓈ-M with the real ccxt, through a real ``BotSession`` restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import (
    Killed,
    bot_broker,
    hand_to_a_bot,
    hourly_bars,
    life,
    until,
)
from tests.brokers.harness import ORDER_PATH, SYMBOL, VenueHarness, harness_for
from tests.runtime.helpers import Scripted
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import OrderStatus, OrderType
from tradefleet_runtime.session import BotSession

STOP, TARGET, LIMIT = 48_000.0, 52_000.0, 50_500.0
NAME = "binance-usdm"


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with harness_for(NAME, tmp_path) as made:
        assert isinstance(made, VenueHarness)
        hand_to_a_bot(made, monkeypatch)
        yield made


def _venue_size(broker: CcxtBroker, client_order_id: str) -> float | None:
    """What the venue works of ``client_order_id`` (None: not working)."""
    report = broker.query_order(client_order_id)
    if report is None or report.status is not OrderStatus.OPEN:
        return None
    return round(report.quantity - report.filled_quantity, 8)


def _entry_id(engine: Engine) -> str:
    [entry] = [o.client_order_id for o in engine.open_orders() if o.stop_loss is not None]
    return entry


def test_a_cut_child_stays_cut_after_a_restart(harness: VenueHarness, tmp_path: Path) -> None:
    harness.fake.faults.inject("partial_fill", path=ORDER_PATH[NAME], method="POST", fraction=0.4)
    bars = hourly_bars(4)
    strategy = Scripted(
        {
            0: lambda ctx, _bar: ctx.buy(
                SYMBOL,
                0.1,
                order_type=OrderType.LIMIT,
                price=LIMIT,
                stop_loss=STOP,
                take_profit=TARGET,
            ),
            1: lambda ctx, _bar: ctx.sell(SYMBOL, 0.01),
        }
    )
    entries: list[str] = []

    def cut_then_die(session: BotSession, engine: Engine, _journal: Journal) -> None:
        entry = _entry_id(engine)
        entries.append(entry)
        broker = bot_broker(session)
        children = [f"{entry}-sl", f"{entry}-tp"]
        until(
            engine,
            lambda: [_venue_size(broker, c) for c in children] == [0.03, 0.03],
            "the children cut to 0.03 at the venue",
        )
        assert engine.position(SYMBOL).quantity == pytest.approx(0.03)
        raise Killed

    life(
        tmp_path,
        harness,
        bars[:2],
        cut_then_die,
        strategy=strategy,
        exchange="binanceusdm",
        market_type="linear",
        initial=50_000,
    )
    [entry] = entries

    seen: dict[str, object] = {}

    def look(session: BotSession, engine: Engine, _journal: Journal) -> None:
        time.sleep(1.0)  # the restarted broker's own protection of the adopted entry
        engine.pump()
        report = engine.open_orders()
        seen["held"] = engine.position(SYMBOL).quantity
        broker = bot_broker(session)
        seen["venue"] = {c: _venue_size(broker, c) for c in (f"{entry}-sl", f"{entry}-tp")}
        seen["engine"] = {
            w.order.client_order_id: round(w.order.quantity - w.filled, 8)
            for w in engine.book
            if w.order.parent_id == entry
        }
        seen["entry_working"] = any(o.client_order_id == entry for o in report)

    life(
        tmp_path,
        harness,
        bars[:3],
        look,
        strategy=Scripted(),
        exchange="binanceusdm",
        market_type="linear",
        initial=50_000,
    )
    assert seen["entry_working"], seen  # the entry still rests part-filled
    assert seen["held"] == pytest.approx(0.03), seen
    children = [f"{entry}-sl", f"{entry}-tp"]
    # Grown back to the 0.04 filled, they would close more than the position holds (and grow
    # to 0.1 for 0.09 as the entry fills its rest).
    assert seen["venue"] == {c: pytest.approx(0.03) for c in children}, seen
    assert seen["engine"] == {c: pytest.approx(0.03) for c in children}, seen
