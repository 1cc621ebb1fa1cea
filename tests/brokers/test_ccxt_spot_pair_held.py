"""Binance spot places a bracket's stop-loss and take-profit only together, as one OCO list.

While an entry works, a first part whose stop-loss is below the venue's minimum but whose
take-profit is not holds the take-profit back (``test_ccxt_spot_oco_pair_waits``): the broker
says so once, naming the symbol, the part held and why, and says again when the pair goes.

When the entry ends there (filled in part, then cancelled), the pair rule still holds: the
stop-loss is refused before it leaves (below the minimum) and the take-profit is not placed
alone either — it would hold the coin the bot's close at market has to sell. The position falls
to what ``test_ccxt_spot_small_position_protected`` shows for a position too small to protect:
closed at market, or, below the minimum too, a close stuck for a person."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import coinless_spot_for_a_bot, hourly_bars, life, until
from tests.brokers.harness import SYMBOL, VenueHarness
from tests.brokers.test_ccxt_spot_oco_pair_waits import _first_part, _until, _working_children
from tests.brokers.test_ccxt_spot_small_position_protected import BracketBuy, _events, _kinds
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.session import BotSession

LOGGER = "tradefleet.brokers.ccxt"


def _said(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and words in r.getMessage()]


def test_a_take_profit_held_for_its_stop_is_said_once_and_again_when_both_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with _first_part(tmp_path) as (harness, engine, entry):
        # The broker's protecting step says it (on a loaded machine later than the set-up's
        # wait for it), and more steps (polls) in the wait say it no more.
        _until(engine, lambda: bool(_said(caplog, "is held, not placed")))
        time.sleep(0.5)
        engine.pump()
        [held] = _said(caplog, "is held, not placed")
        assert held.levelno == logging.WARNING
        message = held.getMessage()
        assert message.startswith(f"ccxt broker: {harness.symbol}: the take-profit of {entry} ")
        assert "its stop-loss is below the venue's minimum (" in message
        assert "minimum notional 5" in message
        assert "one OCO list" in message
        assert _said(caplog, "go now as one OCO list") == []

        harness.trade_through(50_400.0)  # the entry's rest fills: both fit now
        _until(
            engine,
            lambda: any(cid.startswith(f"{entry}-sl") for cid in _working_children(harness, entry)),
        )
        [goes] = _said(caplog, "go now as one OCO list")
        assert goes.getMessage().startswith(
            f"ccxt broker: {harness.symbol}: the stop-loss and take-profit of {entry} go now"
        )
        assert len(_said(caplog, "is held, not placed")) == 1


@pytest.fixture(name="spot")
def _spot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        yield harness


def _venue_orders(spot: VenueHarness) -> list[str]:
    with spot.fake.state.lock:
        return [o.client_order_id for o in spot.fake.state.spot.orders.values()]


def test_an_entry_ended_early_places_no_take_profit_without_its_stop(
    tmp_path: Path, spot: VenueHarness
) -> None:
    """A limit buy of 0.00012 fills 0.0001 and is cancelled: 0.00009 held after the fee, its
    stop-loss at 46,000 (4.14) under the 5 USDT minimum, its take-profit at 60,000 (5.4) over
    it, its close at 50,000 (4.5) under it."""
    spot.fake.faults.inject("partial_fill", path="/api/v3/order", method="POST", fraction=0.85)
    bars = hourly_bars(2)
    seen: dict[str, object] = {}
    said: dict[str, list[str]] = {}
    target: list[tuple[object, ...]] = []

    def after(session: BotSession, engine: Engine, journal: Journal) -> None:
        until(engine, lambda: engine.portfolio.position(SYMBOL).quantity > 0, "the part fill")
        [entry] = [o.client_order_id for o in engine.open_orders() if not o.reduce_only]
        seen["entry"] = entry
        engine.cancel(entry)
        until(engine, lambda: "stop_refused" in str(_kinds(journal)), "the stop's refusal")
        until(engine, lambda: not engine.open_orders(), "the bracket's end")
        time.sleep(0.5)  # anything the broker would still place for the bracket
        engine.pump()
        seen["held"] = engine.portfolio.position(SYMBOL).quantity
        seen["stuck"] = engine.closes_stuck()
        target[:] = journal.query(
            "SELECT status, reason FROM order_updates WHERE client_order_id = ? "
            "ORDER BY rowid DESC LIMIT 1",
            f"{entry}-tp",
        )
        for kind in ("stop_refused", "flatten_failed"):
            said[kind] = _events(journal, kind)

    strategy = BracketBuy(
        at=bars[0].ts, quantity=0.00012, stop=46_000.0, target=60_000.0, limit=50_500.0
    )
    life(tmp_path, spot, bars, after, strategy=strategy, initial=10_000)
    entry = str(seen["entry"])
    assert _venue_orders(spot) == [entry]  # neither child ever reached the venue
    assert seen["held"] == pytest.approx(0.00009)  # open at the venue, nothing protects it
    assert seen["stuck"] == {SYMBOL: ("below_min_notional", pytest.approx(0.00009))}
    [refused] = said["stop_refused"]
    assert "below the venue's minimum, not sent" in refused
    [(status, reason)] = target  # said cancelled, never placed
    assert status == "cancelled", reason
    assert "its stop-loss is below the venue's minimum" in str(reason)
    [failed] = said["flatten_failed"]
    assert "refused before it was sent" in failed
