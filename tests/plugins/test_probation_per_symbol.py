"""probation's ``scope``: the bot's trades (the default) or each symbol's own.

With ``scope: symbol`` a symbol's window holds its own trades, its multiplier and hibernation
hold its entries only, the lock names the symbols it holds and the engine's gate lets the
others trade; a person's reset clears every symbol's, and a restart keeps what hibernates.
With ``scope: bot`` a loss on one symbol hibernates the bot, as documented before the scope.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.runtime.helpers import Action, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_plugins.risk.probation import Probation
from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_runtime.contracts import RiskContext, Strategy, StrategyContext
from tradefleet_runtime.engine.trading_state import TradingState
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, RiskAction, Side, Trade
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession

BTC, ETH = "BTC/USD", "ETH/USD"


def _ctx(equity: float, symbol: str) -> RiskContext:
    return RiskContext(0, equity, equity, equity, equity, {}, {}, Instrument(symbol))


def _trade(symbol: str, pnl: float) -> Trade:
    return Trade(symbol, 1, 30.0, 0, 3600, 100.0, 100.0 + pnl / 30.0, pnl, 0.0)


def _buy(symbol: str, quantity: float = 1.0) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, quantity)


# -- the plugin alone -----------------------------------------------------------------------


def test_a_loss_on_one_asset_hibernates_that_asset_not_the_others() -> None:
    probation = Probation(ProbationParams(window_trades=20, scope="symbol"))
    trades = [_trade(BTC, -1_650.0)]
    probation.bind_trades(trades)
    btc = probation.check(_buy(BTC), _ctx(8_350.0, BTC))
    assert btc.action is RiskAction.VETO  # the asset that lost 16.5% hibernates
    assert btc.code == "hibernating" and BTC in btc.reason
    eth = probation.check(_buy(ETH), _ctx(8_350.0, ETH))
    assert eth.action is RiskAction.APPROVE, eth.reason
    reason = probation.lock_reason()
    assert reason is not None and BTC in reason and ETH not in reason
    assert probation.locked_symbols() == frozenset({BTC})


def test_the_bot_scope_hibernates_every_symbol_as_documented() -> None:
    """The control: the default sums every symbol's trades and stops the bot."""
    probation = Probation(ProbationParams(window_trades=20))
    probation.bind_trades([_trade(BTC, -1_650.0)])
    assert probation.check(_buy(BTC), _ctx(8_350.0, BTC)).code == "hibernating"
    assert probation.check(_buy(ETH), _ctx(8_350.0, ETH)).code == "hibernating"
    assert probation.lock_reason() == "hibernating: rolling loss 16.50% over 1 trade(s) beyond 15%"


def test_each_symbol_is_sized_on_its_own_window() -> None:
    probation = Probation(ProbationParams(window_trades=2, scope="symbol"))
    # BTC: -600 then -600 (12% of the 10,000 before them): quartered. ETH: its one trade is
    # a gain, and BTC's older loss left BTC's window: full size. The bot's window would
    # halve both (-600 + 100 over 9,500).
    trades = [_trade(BTC, -600.0), _trade(ETH, 100.0), _trade(BTC, -600.0)]
    probation.bind_trades(trades)
    btc = probation.check(_buy(BTC, 8.0), _ctx(8_900.0, BTC))
    assert btc.action is RiskAction.SHRINK and btc.quantity == 2.0 and BTC in btc.reason
    assert probation.check(_buy(ETH, 8.0), _ctx(8_900.0, ETH)).action is RiskAction.APPROVE
    trades.append(_trade(BTC, 0.0))  # BTC's window is now -600, 0: 6.3%, halved
    assert probation.check(_buy(BTC, 8.0), _ctx(8_900.0, BTC)).quantity == 4.0


def test_a_reset_clears_every_symbols_hibernation_and_window() -> None:
    probation = Probation(ProbationParams(window_trades=20, scope="symbol"))
    trades = [_trade(BTC, -1_650.0), _trade(ETH, -1_500.0)]
    probation.bind_trades(trades)
    assert probation.check(_buy(BTC), _ctx(6_850.0, BTC)).code == "hibernating"
    assert probation.check(_buy(ETH), _ctx(6_850.0, ETH)).code == "hibernating"
    reason = probation.lock_reason() or ""
    assert BTC in reason and ETH in reason
    assert probation.reset_lock() is None and probation.lock_reason() is None
    for symbol in (BTC, ETH):
        assert probation.check(_buy(symbol), _ctx(6_850.0, symbol)).action is RiskAction.APPROVE


def test_exits_of_a_hibernated_symbol_pass() -> None:
    probation = Probation(ProbationParams(window_trades=20, scope="symbol"))
    probation.bind_trades([_trade(BTC, -1_650.0)])
    probation.check(_buy(BTC), _ctx(8_350.0, BTC))
    exit_ = OrderIntent(BTC, Side.SELL, 1.0, reduce_only=True)
    assert probation.check(exit_, _ctx(8_350.0, BTC)).action is RiskAction.APPROVE


def test_the_gate_holds_a_symbols_lock_on_that_symbol_only() -> None:
    probation = Probation(ProbationParams(window_trades=20, scope="symbol"))
    trades = [_trade(BTC, -1_650.0)]
    probation.bind_trades(trades)
    state = TradingState(lock_holders=(("probation", probation),))
    probation.check(_buy(BTC), _ctx(8_350.0, BTC))
    assert state.newly_locked(10) == [("probation", probation.lock_reason())]
    btc = state.gate(_buy(BTC))
    assert btc is not None and btc[0] == "engine.locked" and BTC in btc[1].reason
    assert state.gate(_buy(ETH)) is None
    assert state.refusal() == ""  # signals reach the strategy; their orders meet the gate
    # A symbol hibernating after the lock was recorded is held and shown too.
    trades.append(_trade(ETH, -1_500.0))
    probation.check(_buy(ETH), _ctx(6_850.0, ETH))
    eth = state.gate(_buy(ETH))
    assert eth is not None and ETH in eth[1].reason
    assert ETH in state.locks()["probation"]


def test_the_gate_still_holds_every_symbol_for_a_bot_lock() -> None:
    probation = Probation(ProbationParams(window_trades=20))
    probation.bind_trades([_trade(BTC, -1_650.0)])
    state = TradingState(lock_holders=(("probation", probation),))
    probation.check(_buy(BTC), _ctx(8_350.0, BTC))
    state.newly_locked(10)
    assert state.gate(_buy(ETH)) is not None
    assert state.refusal().startswith("risk lock in force")


# -- a paper bot ----------------------------------------------------------------------------

# BTC/USD buys 30 at a close of 100 (fills at the next open, 100) and closes at a close of 45
# (fills at 45): -1,650, 16.5% of 10,000. Its next entry hibernates it (bar 2). ETH/USD stays
# at 100 and trades flat (bars 3-4). A person resets after bar 5; both buy at bar 6.
BTC_BARS = flat_bars([100.0, 45.0] + [100.0] * 8, BTC)
ETH_BARS = flat_bars([100.0] * 10, ETH)
RESET_AFTER = 5
PROBE = 6


@dataclass
class BySymbol(Strategy):
    """Runs ``actions[(symbol, i)]`` on the i-th bar of that symbol."""

    actions: dict[tuple[str, int], Action]
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        index = self.counts.get(bar.symbol, 0)
        self.counts[bar.symbol] = index + 1
        action = self.actions.get((bar.symbol, index))
        if action is not None:
            action(self.ctx, bar)


def _enter(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol, tag="entry")


def _leave(ctx: StrategyContext, bar: Bar) -> None:
    ctx.close(bar.symbol, tag="exit")


ACTIONS: dict[tuple[str, int], Action] = {
    (BTC, 0): _enter,
    (BTC, 1): _leave,
    (BTC, 2): _enter,
    (ETH, 3): _enter,
    (ETH, 4): _leave,
    (BTC, PROBE): _enter,
    (ETH, PROBE): _enter,
}


def _life(folder: Path, scope: str, bars: int, reset: bool = False) -> list[str]:
    """Run the bot on the first ``bars`` bars of each symbol; the lock reasons seen after
    bar RESET_AFTER (when ``reset``, a person then resets probation)."""
    params: dict[str, object] = {"window_trades": 3}
    if scope != "bot":  # the default left unset, as a manifest written before the scope
        params["scope"] = scope
    document = manifest(
        [
            {"name": "fixed-size", "params": {"quantity": 30}},
            {"name": "probation", "params": params},
        ],
        mode="paper",
        symbols=(BTC, ETH),
        leverage=1.0,
    )
    strategy = BySymbol(actions=dict(ACTIONS))
    bot = bot_with(PluginRegistry.discover(), document, strategy, folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    feed = sorted(BTC_BARS[:bars] + ETH_BARS[:bars], key=lambda b: (b.ts, b.symbol))
    session = BotSession(bot, journal, bars=feed, should_stop=threading.Event().is_set)
    seen: list[str] = []

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            yield bar
            engine = session.engine
            assert engine is not None
            if bar.ts == BTC_BARS[RESET_AFTER].ts and bar.symbol == ETH:
                seen.extend(r for n, locked, r, _ in engine.risk_states() if locked)
                if reset:
                    assert engine.reset_risk_lock("probation", "ops", "loss accepted") == (
                        True,
                        "",
                    )

    session.pacer = pace
    try:
        session.open()
        session.close(session.run())
    finally:
        journal.close()
    return seen


def _filled(folder: Path) -> dict[tuple[str, int], float]:
    """(symbol, bar index) → quantity of each entry that filled."""
    journal = Journal(folder / "bot.sqlite")
    try:
        rows = journal.query(
            "SELECT symbol, created_ts, quantity FROM orders WHERE tag = 'entry'"
            " AND parent_id IS NULL AND client_order_id IN (SELECT client_order_id FROM fills)"
        )
    finally:
        journal.close()
    index = {bar.close_ts: i for i, bar in enumerate(BTC_BARS)}
    return {(str(s), index[int(ts)]): float(q) for s, ts, q in rows}


def test_a_paper_bot_keeps_trading_the_other_symbol(tmp_path: Path) -> None:
    locks = _life(tmp_path, "symbol", len(BTC_BARS))
    filled = _filled(tmp_path)
    assert filled.get((ETH, 3)) == 30.0, filled  # ETH trades while BTC hibernates
    assert (BTC, 2) not in filled and (BTC, PROBE) not in filled
    assert filled.get((ETH, PROBE)) == 30.0, filled
    assert len(locks) == 1 and BTC in locks[0], locks  # the status names the symbol


def test_a_paper_bot_of_the_bot_scope_stops_every_symbol(tmp_path: Path) -> None:
    """The control: the default scope's hibernation stops ETH too."""
    _life(tmp_path, "bot", len(BTC_BARS))
    filled = _filled(tmp_path)
    assert set(filled) == {(BTC, 0)}, filled


def test_a_reset_lets_the_hibernated_symbol_trade_again(tmp_path: Path) -> None:
    _life(tmp_path, "symbol", len(BTC_BARS), reset=True)
    filled = _filled(tmp_path)
    assert filled.get((BTC, PROBE)) == 30.0 and filled.get((ETH, PROBE)) == 30.0, filled


@pytest.mark.parametrize("reset", [False, True])
def test_a_restart_keeps_what_hibernates(tmp_path: Path, reset: bool) -> None:
    _life(tmp_path, "symbol", RESET_AFTER + 1, reset=reset)
    _life(tmp_path, "symbol", len(BTC_BARS))  # restarted: bars up to 5 are history
    filled = _filled(tmp_path)
    assert filled.get((ETH, PROBE)) == 30.0, filled  # the restored lock holds BTC only
    assert ((BTC, PROBE) in filled) is reset, filled
