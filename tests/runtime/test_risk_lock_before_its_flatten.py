"""A risk plugin's lock and the close its flatten owes are journaled in one commit before the
flatten's close is sent (walkthrough W27): sending takes network round trips, and a process
killed meanwhile left the flatten journaled and the lock not — restarted after the day (and
the week) turned, the circuit breaker started afresh and the strategy traded again, a tier-3
lock lost without a person's reset.

The breaker's tier 3 (a 15% daily loss) flattens and locks on the Sunday 22:00 bar; the
process dies as the flatten's close reaches the broker; the bot comes back on Monday.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, Scripted
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Order
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession

# Sunday 2024-06-09 20:00 UTC: the lock is taken at the 23:00 close, the ISO week's last hour.
SUNDAY_20 = int(datetime(2024, 6, 9, 20, tzinfo=UTC).timestamp())
MONDAY_01 = SUNDAY_20 + 5 * HOUR
CAME_BACK = MONDAY_01 + HOUR // 2  # the live feed's market time when the bot came back


class Killed(BaseException):
    """What SIGKILL is to the process: nothing after it runs."""


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def _bars(start: int, prices: list[float]) -> list[Bar]:
    out, previous = [], prices[0]
    for i, close in enumerate(prices):
        ts = start + i * HOUR
        out.append(
            Bar("TEST", HOUR, ts, previous, max(previous, close), min(previous, close), close, 1.0)
        )
        previous = close
    return out


def _document() -> dict[str, Any]:
    breaker = {"name": "circuit-breaker", "params": {"cooldown_minutes": 0}}
    return manifest([breaker], mode="paper", capital=10_000.0)


def _killed_while_flattening(registry: PluginRegistry, path: Path, tmp: Path) -> None:
    """A paper bot buys 500 at 100; the 22:00 bar closes at 96.8 (16% down on the day). The
    process dies as the breaker's close reaches the broker: what was committed stays."""
    journal = Journal(path, durable=True)
    bot = bot_with(registry, _document(), Scripted({0: lambda ctx, b: ctx.buy("TEST", 500)}), tmp)
    submit = bot.broker.submit

    def dying_submit(order: Order) -> Any:
        if order.tag.startswith("risk:"):
            raise Killed(order.client_order_id)
        return submit(order)

    bot.broker.submit = dying_submit  # type: ignore[method-assign]
    session = BotSession(bot, journal, bars=_bars(SUNDAY_20, [100.0, 100.0, 96.8, 96.8]))
    with pytest.raises(Killed):
        session.run_to_end()
    journal._db.close()
    if journal._lock_fd is not None:
        os.close(journal._lock_fd)


class MarketAt:
    """A live feed's market clock (``MarketClock``): the bot came back at ``now``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def market_time(self) -> float | None:
        return self.now


def _restarted(registry: PluginRegistry, path: Path, tmp: Path) -> tuple[BotSession, Journal]:
    """The same bot on Monday, buying at every bar; its bars from the one the kill cut off on
    (those before the market's time it came back at are history)."""
    journal = Journal(path, durable=True)
    buyer = Scripted({i: (lambda ctx, b: ctx.buy("TEST", 10)) for i in range(8)})
    bot = dataclasses.replace(
        bot_with(registry, _document(), buyer, tmp), market_clock=MarketAt(CAME_BACK)
    )
    session = BotSession(bot, journal, bars=_bars(SUNDAY_20 + 2 * HOUR, [96.8] * 6))
    session.run_to_end()
    return session, journal


def _events(path: Path, kind: str) -> list[dict[str, Any]]:
    journal = Journal(path, read_only=True)
    try:
        rows = journal.query("SELECT data FROM events WHERE kind = ?", kind)
    finally:
        journal.close()
    return [json.loads(d) if d else {} for (d,) in rows]


def test_the_lock_and_the_close_it_owes_are_journaled_before_the_close_is_sent(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite"
    _killed_while_flattening(registry, path, tmp_path)
    assert [e["plugin"] for e in _events(path, "risk_locked")] == ["circuit-breaker"]
    owed = [e for e in _events(path, "close_owed") if e.get("owed")]
    assert [(e["symbol"], e["by"]) for e in owed] == [("TEST", "risk:circuit-breaker")]


def test_a_restart_on_the_next_day_holds_the_lock_and_closes_what_it_owed(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite"
    _killed_while_flattening(registry, path, tmp_path)
    session, journal = _restarted(registry, path, tmp_path)
    assert session.engine is not None
    assert "circuit-breaker" in journal.risk_locks("risk-bot")
    entries = journal.query(
        "SELECT client_order_id FROM orders WHERE reduce_only = 0 AND created_ts >= ?", MONDAY_01
    )
    assert entries == [], "the strategy's buys went: the lock was lost"
    assert session.engine.portfolio.open_positions == {}, "the flatten owed was not resumed"
