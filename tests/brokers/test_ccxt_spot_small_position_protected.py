"""A small Binance spot bracket entry is never left open without its stop, and never silently.

A buy's fee is taken in the coin bought, so the position holds a little less than the entry
(``ccxt_orders.held_quantity``), and a long's stop-loss is worth less than the entry at its
own price: an entry just over the venue's 5 USDT minimum notional gets a stop-loss under it,
which the venue would refuse once the entry filled. Such an entry is refused before it leaves
(``instruments.bracket_problem``, the fee at the market's taker rate). A position left bare
anyway (here a part fill, cancelled, below the stop's minimum) whose close is below the
minimum too is reported as a close stuck for a person, as TradefleetCloseStuck pages on.

The fake Binance spot account holds USDT only, and the bot runs through ``BotSession``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import (
    coinless_spot_for_a_bot,
    hourly_bars,
    life,
    until,
)
from tests.brokers.harness import SYMBOL, VenueHarness
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Bar, OrderType, Strategy
from tradefleet_runtime.session import BotSession


@dataclass
class BracketBuy(Strategy):
    """A buy of ``quantity`` with a stop-loss and a take-profit at the bar of time ``at``: a
    market order, or a limit at ``limit``."""

    at: int = 0
    quantity: float = 0.0
    stop: float = 0.0
    target: float = 0.0
    limit: float | None = None

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        if bar.ts != self.at:
            return
        self.ctx.buy(
            bar.symbol,
            self.quantity,
            order_type=OrderType.MARKET if self.limit is None else OrderType.LIMIT,
            price=self.limit,
            stop_loss=self.stop,
            take_profit=self.target,
        )


@pytest.fixture(name="spot")
def _spot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        yield harness


def _venue_orders(spot: VenueHarness) -> list[str]:
    with spot.fake.state.lock:
        return [o.client_order_id for o in spot.fake.state.spot.orders.values()]


def _events(journal: Journal, kind: str) -> list[str]:
    return [str(m) for (m,) in journal.query("SELECT message FROM events WHERE kind = ?", kind)]


def test_an_entry_whose_stop_the_venue_would_refuse_after_the_fee_never_leaves(
    tmp_path: Path, spot: VenueHarness
) -> None:
    """0.00011 BTC at 50,000 (5.5 USDT) with its stop-loss at 48,000: 0.00011 × 48,000 = 5.28
    would pass, but the fee (0.1 % in BTC) leaves 0.0001 held, and 0.0001 × 48,000 = 4.8 is
    under the minimum. Refused by the engine, journaled and counted; nothing reaches the venue."""
    bars = hourly_bars(2)
    seen: dict[str, object] = {}
    decisions: list[tuple[str, str, str, str]] = []

    def after(session: BotSession, engine: Engine, journal: Journal) -> None:
        engine.pump()
        seen["held"] = engine.portfolio.position(SYMBOL).quantity
        seen["orders"] = engine.stats.orders
        seen["vetoes"] = dict(engine.stats.vetoes)
        rows = journal.query(
            "SELECT plugin, action, code, reason FROM risk_decisions WHERE action = 'veto'"
        )
        decisions.extend((str(p), str(a), str(c), str(r)) for p, a, c, r in rows)

    strategy = BracketBuy(at=bars[0].ts, quantity=0.00011, stop=48_000.0, target=52_000.0)
    life(tmp_path, spot, bars, after, strategy=strategy, initial=10_000)
    assert seen["held"] == 0.0
    assert seen["orders"] == 0
    assert _venue_orders(spot) == []
    assert seen["vetoes"] == {("engine.instrument", "below_min_notional"): 1}
    [(plugin, action, code, reason)] = decisions
    assert (plugin, action, code) == ("engine.instrument", "veto", "below_min_notional")
    assert reason == (
        "its stop-loss at 48000 could not be placed once the entry fills: the position would "
        "hold 0.0001 (0.00011 less the venue's 0.1% fee taken in the coin bought, down to the "
        "lot step 1e-05), and notional 4.8 (0.0001 × 48000) is below BTCUSDT's minimum "
        "notional 5"
    )


def test_a_position_left_bare_by_a_part_fill_is_reported_as_a_stuck_close(
    tmp_path: Path, spot: VenueHarness
) -> None:
    """A limit buy of 0.00012 (its bracket passes: 0.00011 held × 46,000 = 5.06) fills
    0.0001 and is cancelled: 0.00009 held after the fee, its stop-loss (4.14) and its close at
    50,000 (4.5) both under the minimum. The bot says so, and the position is a close stuck."""
    spot.fake.faults.inject("partial_fill", path="/api/v3/order", method="POST", fraction=0.85)
    bars = hourly_bars(2)
    seen: dict[str, object] = {}
    said: dict[str, list[str]] = {}

    def after(session: BotSession, engine: Engine, journal: Journal) -> None:
        until(engine, lambda: engine.portfolio.position(SYMBOL).quantity > 0, "the part fill")
        [entry] = [o.client_order_id for o in engine.open_orders() if not o.reduce_only]
        engine.cancel(entry)
        until(engine, lambda: "stop_refused" in str(_kinds(journal)), "the stop's refusal")
        until(engine, lambda: not engine.open_orders(), "the bracket's end")
        seen["held"] = engine.portfolio.position(SYMBOL).quantity
        seen["stuck"] = engine.closes_stuck()
        seen["retrying"] = engine.closes_retrying()
        seen["owed"] = journal.closes_owed(engine.config.bot_name)
        for kind in ("stop_refused", "flatten_failed", "close_owed"):
            said[kind] = _events(journal, kind)

    strategy = BracketBuy(
        at=bars[0].ts, quantity=0.00012, stop=46_000.0, target=52_000.0, limit=50_500.0
    )
    life(tmp_path, spot, bars, after, strategy=strategy, initial=10_000)
    assert seen["held"] == pytest.approx(0.00009)  # open at the venue, nothing protects it
    assert seen["stuck"] == {SYMBOL: ("below_min_notional", pytest.approx(0.00009))}
    assert seen["retrying"] == {}
    assert seen["owed"] == {SYMBOL: ("stop-refused", "below_min_notional")}  # a restart's too
    [refused] = said["stop_refused"]
    assert "below the venue's minimum, not sent" in refused
    assert "the venue refused" not in refused
    [failed] = said["flatten_failed"]
    assert "refused before it was sent" in failed
    advice = (
        "below the venue's minimum notional 5 USDT: close at the venue by hand or add to the "
        "position"
    )
    assert advice in failed
    assert any(advice in message for message in said["close_owed"])


def _kinds(journal: Journal) -> list[str]:
    return [str(k) for (k,) in journal.query("SELECT kind FROM events")]
