"""A multi-symbol bot killed (or failed) between two symbols' bars of one timestamp trades the
second one at its restart.

A two-symbol paper bot (A, B; the bars of one timestamp come A then B). A timestamp is marked
handled once every symbol's bar at it was (``session._marking_handled``): a kill after A@T and
before B@T leaves T unmarked, and the restart hands T again whole, B@T traded. A mark per bar
(A@T's mark taken for the timestamp's) skipped B@T: given to the strategy as history, its
orders dropped.

Two ways to get there, both within one timestamp:
- the bot is killed after A@T was handled, before B@T was (here: the feed dies handing B@T);
- the strategy raises on B@T (a ``StrategyError`` ends the run): the restart gives B@T again.

B's closes cross up at T4 (ema-cross fast 2 / slow 3): the cross-up buy of B must be sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tradefleet_runtime.errors import StrategyError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
START = 100 * HOUR
FLAT = [100.0] * 7
CROSS = [50_000.0, 50_000.0, 50_000.0, 49_000.0, 51_000.0, 51_000.0, 51_000.0]
KILL_AT = START + 4 * HOUR  # B's cross-up bar


class _Killed(BaseException):
    """SIGKILL while the engine waits for the next bar."""


def _bars(a_closes: list[float] = FLAT, b_closes: list[float] = CROSS) -> list[Bar]:
    """Bars of A and B at each time (A first), each at its close."""
    out: list[Bar] = []
    for i, (a, b) in enumerate(zip(a_closes, b_closes, strict=True)):
        ts = START + i * HOUR
        out.append(Bar("A", HOUR, ts, a, a, a, a, 1.0))
        out.append(Bar("B", HOUR, ts, b, b, b, b, 1.0))
    return out


def _manifest(folder: Path) -> Path:
    path = folder / "bot.yaml"
    path.write_text(
        """
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {name: twosym}
spec:
  mode: paper
  strategy: {name: ema-cross, params: {fast: 2, slow: 3, allow_short: false}}
  market: {symbols: [A, B], timeframe: 1h}
  broker: {name: paper}
  risk:
    - name: fixed-size
      params: {quantity: 0.01}
  capital: {currency: USDT, initial: 100000}
"""
    )
    return path


def _life(
    folder: Path, pace: Callable[[Bar], None], dies: bool
) -> tuple[list[tuple[str, int]], float, list[str]]:
    """One life of the bot (``dies``: killed, or failed, before its bars end); returns the
    live bars the engine was handed, B's position, and the B orders the run journaled."""
    bot = assemble(load_manifest(_manifest(folder)), PluginRegistry.discover(), folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=_bars(), should_stop=threading.Event().is_set)
    seen: list[tuple[str, int]] = []

    def pacer(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            pace(bar)
            seen.append((bar.symbol, bar.ts))
            yield bar

    session.pacer = pacer
    try:
        engine = session.open()
        if dies:
            with pytest.raises((_Killed, StrategyError)):
                session.run()
        else:
            session.close(session.run())
        orders = [
            str(r[0])
            for r in journal.query(
                "SELECT client_order_id FROM orders WHERE run_id = ? AND symbol = 'B'",
                journal.run_id,
            )
        ]
        return seen, engine.position("B").quantity, orders
    finally:
        journal.close()


def _kill_before_b(bar: Bar) -> None:
    if bar.symbol == "B" and bar.ts == KILL_AT:
        raise _Killed


def _nothing(bar: Bar) -> None:
    return None


def test_a_bot_killed_between_two_symbols_bars_of_one_timestamp_trades_the_second_at_restart(
    tmp_path: Path,
) -> None:
    seen, held, _ = _life(tmp_path, _kill_before_b, dies=True)
    assert ("A", KILL_AT) in seen and ("B", KILL_AT) not in seen
    assert held == 0.0
    seen, held, orders = _life(tmp_path, _nothing, dies=False)
    # B@T4 was never handed to the engine in the first life: the restart must trade it.
    assert ("B", KILL_AT) in seen, f"B's bar at T4 was skipped at the restart; live bars: {seen}"
    assert orders, "B's cross-up at T4 was never traded"
    assert held > 0.0


class _Boom(Exception):
    pass


def test_a_strategy_failing_on_the_second_symbols_bar_leaves_that_bar_unhandled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strategy raises on B@T4 (the run fails there); at the restart, B@T4 — never
    handled — must reach the strategy again as a live bar."""
    from tradefleet_plugins.strategies.ema_cross import EmaCross as strategy_class

    original = strategy_class.on_bar
    failing = {"on": True}

    def on_bar(self: strategy_class, bar: Bar) -> None:
        if failing["on"] and bar.symbol == "B" and bar.ts == KILL_AT:
            raise _Boom("transient")
        original(self, bar)

    monkeypatch.setattr(strategy_class, "on_bar", on_bar)
    seen, _, _ = _life(tmp_path, _nothing, dies=True)
    assert ("B", KILL_AT) in seen  # handed, and the strategy failed on it
    failing["on"] = False
    seen, held, orders = _life(tmp_path, _nothing, dies=False)
    assert ("B", KILL_AT) in seen, f"B's bar at T4 was skipped at the restart; live bars: {seen}"
    assert orders and held > 0.0
