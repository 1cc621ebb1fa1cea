"""probation ``scope: symbol``: every symbol that hibernates is said, as the first one is.

The lock is one per plugin, but with ``scope: symbol`` it grows: BTC hibernates, later ETH. Each
newly locked symbol gets its own ``risk_locked`` event (journaled, on the event stream and in the
trade log, the one alerting reads) naming it, with the reason the status shows; a restart
restores the lock with every symbol and says nothing new until another symbol hibernates; a
person's reset clears them all, and a symbol hibernating after it is a new lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.plugins.test_probation_per_symbol import BySymbol, _enter, _leave
from tests.runtime.helpers import Action, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_plugins.risk.probation import Probation
from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.trading_state import TradingState
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, Side, Trade
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession

BTC, ETH, ADA = "BTC/USD", "ETH/USD", "ADA/USD"


def _ctx(equity: float, symbol: str) -> RiskContext:
    return RiskContext(0, equity, equity, equity, equity, {}, {}, Instrument(symbol))


def _trade(symbol: str, pnl: float) -> Trade:
    return Trade(symbol, 1, 30.0, 0, 3600, 100.0, 100.0 + pnl / 30.0, pnl, 0.0)


def _buy(symbol: str) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, 1.0)


# -- the engine's trading state and the plugin ------------------------------------------------


def test_a_second_symbol_hibernating_is_a_new_lock_event() -> None:
    probation = Probation(ProbationParams(window_trades=20, scope="symbol"))
    trades = [_trade(BTC, -1_650.0)]
    probation.bind_trades(trades)
    state = TradingState(lock_holders=(("probation", probation),))
    probation.check(_buy(BTC), _ctx(8_350.0, BTC))
    first = state.newly_locked(10)
    assert [name for name, _ in first] == ["probation"]
    assert BTC in first[0][1] and ETH not in first[0][1]
    assert state.newly_locked(11) == []  # said once
    trades.append(_trade(ETH, -1_500.0))
    probation.check(_buy(ETH), _ctx(6_850.0, ETH))
    second = state.newly_locked(12)
    assert [name for name, _ in second] == ["probation"], second
    assert ETH in second[0][1], second
    assert state.newly_locked(13) == []  # said once too
    # The lock is held since BTC hibernated: the second symbol did not start a new one.
    assert state.held["probation"] == (probation.lock_reason(), 10)


def test_a_symbol_hibernating_after_a_reset_is_a_new_lock() -> None:
    probation = Probation(ProbationParams(window_trades=20, scope="symbol"))
    trades = [_trade(BTC, -1_650.0)]
    probation.bind_trades(trades)
    state = TradingState(lock_holders=(("probation", probation),))
    probation.check(_buy(BTC), _ctx(8_350.0, BTC))
    assert len(state.newly_locked(10)) == 1
    assert probation.reset_lock() is None
    state.release("probation")  # what the engine does after a person's reset
    assert state.newly_locked(11) == [] and state.locks() == {}
    trades.append(_trade(ETH, -1_500.0))
    probation.check(_buy(ETH), _ctx(6_850.0, ETH))
    taken = state.newly_locked(12)
    assert len(taken) == 1 and ETH in taken[0][1] and BTC not in taken[0][1], taken
    assert state.held["probation"][1] == 12


# -- a paper bot, restarted -------------------------------------------------------------------

# Each symbol buys 30 at a close of 100 (filled at the next open, 100) and sells at a close of
# 45 (filled at 45): -1,650. Its next entry hibernates it: BTC at bar 2, ETH at bar 5, ADA at
# bar 9, the first bar after the restart (the first life handles bars 0..8: ADA's exit is still
# working when it ends, and fills at bar 9's open). Every symbol asks again at PROBE; when
# ``reset``, a person resets probation after ADA hibernated. ADA's bars come first at each
# bar time: nothing else is asked between the restart and its hibernation.
BARS = {
    BTC: flat_bars([100.0, 45.0] + [100.0] * 10, BTC),
    ETH: flat_bars([100.0] * 4 + [45.0] + [100.0] * 7, ETH),
    ADA: flat_bars([100.0] * 8 + [45.0] + [100.0] * 3, ADA),
}
LIFE_ONE_ENDS = 9
RESET_AFTER = 9
PROBE = 10


ACTIONS: dict[tuple[str, int], Action] = {
    (BTC, 0): _enter,
    (BTC, 1): _leave,
    (BTC, 2): _enter,
    (ETH, 3): _enter,
    (ETH, 4): _leave,
    (ETH, 5): _enter,
    (ADA, 7): _enter,
    (ADA, 8): _leave,
    (ADA, 9): _enter,
    **{(symbol, PROBE): _enter for symbol in BARS},
}


def _life(folder: Path, bars: int, reset: bool = False) -> None:
    document = manifest(
        [
            {"name": "fixed-size", "params": {"quantity": 30}},
            {"name": "probation", "params": {"window_trades": 3, "scope": "symbol"}},
        ],
        mode="paper",
        symbols=tuple(BARS),
        leverage=2.0,  # the three probes' 9,000 fit the 5,050 left
    )
    strategy = BySymbol(actions=dict(ACTIONS))
    bot = bot_with(PluginRegistry.discover(), document, strategy, folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    feed = sorted(
        (bar for series in BARS.values() for bar in series[:bars]), key=lambda b: (b.ts, b.symbol)
    )
    session = BotSession(bot, journal, bars=feed, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            yield bar
            engine = session.engine
            assert engine is not None
            if reset and bar.ts == BARS[ADA][RESET_AFTER].ts and bar.symbol == ADA:
                assert engine.reset_risk_lock("probation", "ops", "losses accepted") == (True, "")

    session.pacer = pace
    try:
        session.open()
        session.close(session.run())
    finally:
        journal.close()


def _events(folder: Path, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
    journal = Journal(folder / "bot.sqlite")
    try:
        rows = journal.query(
            "SELECT kind, data FROM events WHERE kind IN (SELECT value FROM json_each(?))"
            " ORDER BY id",
            json.dumps(kinds),
        )
    finally:
        journal.close()
    return [(str(kind), json.loads(data) if data else {}) for kind, data in rows]


def _filled(folder: Path) -> set[tuple[str, int]]:
    """(symbol, bar index) of each entry that filled."""
    journal = Journal(folder / "bot.sqlite")
    try:
        rows = journal.query(
            "SELECT symbol, created_ts FROM orders WHERE tag = 'entry' AND parent_id IS NULL"
            " AND client_order_id IN (SELECT client_order_id FROM fills)"
        )
    finally:
        journal.close()
    index = {bar.close_ts: i for i, bar in enumerate(BARS[BTC])}
    return {(str(symbol), index[int(ts)]) for symbol, ts in rows}


def _named(reason: str) -> set[str]:
    return {symbol for symbol in BARS if symbol in reason}


def test_each_symbol_that_hibernates_is_journaled_across_a_restart(tmp_path: Path) -> None:
    _life(tmp_path, LIFE_ONE_ENDS)
    _life(tmp_path, len(BARS[BTC]))  # restarted: bars 0..8 are history
    events = _events(tmp_path, "risk_locked", "risk_lock_restored", "risk_lock_reset")
    kinds = [kind for kind, _ in events]
    # BTC, ETH; the restored lock (no new event for what it already held); ADA.
    assert kinds == ["risk_locked", "risk_locked", "risk_lock_restored", "risk_locked"], events
    reasons = [str(data["reason"]) for _, data in events]
    assert [_named(reason) for reason in reasons] == [
        {BTC},
        {BTC, ETH},
        {BTC, ETH},
        {BTC, ETH, ADA},
    ], reasons
    btc_bar = BARS[BTC][2].close_ts
    assert {data["since_ts"] for _, data in events} == {btc_bar}, events  # one lock, one since
    filled = _filled(tmp_path)
    assert not any(key[1] == PROBE for key in filled), filled  # every symbol still hibernates


def test_a_reset_clears_every_hibernated_symbol(tmp_path: Path) -> None:
    _life(tmp_path, LIFE_ONE_ENDS)
    _life(tmp_path, len(BARS[BTC]), reset=True)
    events = _events(tmp_path, "risk_locked", "risk_lock_restored", "risk_lock_reset")
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["risk_locked", "risk_lock_reset"], kinds  # ADA's, then the reset
    filled = _filled(tmp_path)
    assert {key for key in filled if key[1] == PROBE} == {(s, PROBE) for s in BARS}, filled
