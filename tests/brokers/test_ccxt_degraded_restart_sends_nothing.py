"""A live ccxt futures bot restarted Degraded sends nothing (walkthrough W26).

The bot died between a bracketed entry's fill and its children's placing, and the position was
liquidated or closed by hand while it was down: the restart goes Degraded (the journal holds the
position, the venue none) but placed the stop-loss and take-profit it found never sent ("2
protective order(s) ... sent again") — on Binance USDⓈ-M both rested at the venue, on Bybit the
stop — which would act on whatever position the account holds next. docs/operations.md
(TradefleetBotDegraded): a Degraded bot sends nothing. A real ``BotSession`` on the fake venues
(``tests/brokers/ccxt_restart_life``), killed and started again on the same journal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.brokers.ccxt_restart_life import (
    Killed,
    all_acked,
    hand_to_a_bot,
    hourly_bars,
    life,
    until,
)
from tests.brokers.ccxt_venue_reads import (
    FUTURES,
    SL,
    TP,
    pump_for,
    venue_orders,
    venue_position,
)
from tests.brokers.harness import QUANTITY, SYMBOL, VenueHarness, harness_for
from tests.runtime.helpers import Scripted
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import OrderType, Strategy
from tradefleet_runtime.session import BotSession

EXCHANGE = {"binance-usdm": "binanceusdm", "bybit": "bybit"}
CHILD_PATH = {"binance-usdm": "/fapi/v1/algoOrder", "bybit": "/v5/order/create"}
LIMIT = 49_900.0  # a limit entry's price, the market at 50,000
BARS = hourly_bars(4)


def _life(tmp_path: Path, harness: VenueHarness, bars: int, step: Any, strategy: Strategy) -> None:
    life(
        tmp_path,
        harness,
        BARS[:bars],
        step,
        strategy=strategy,
        exchange=EXCHANGE[harness.name],
        market_type="linear",
        initial=50_000,
    )


def _children_at_venue(harness: VenueHarness) -> dict[str, str]:
    """The bot's bracket children the venue ever took: client id -> venue status."""
    return {
        cid: status
        for cid, _side, status, _x in venue_orders(harness)
        if cid.endswith(("-sl", "-tp"))
    }


def _working_at_venue(harness: VenueHarness) -> list[str]:
    working = {"NEW", "Untriggered", "New", "PartiallyFilled", "PARTIALLY_FILLED"}
    return sorted(cid for cid, _s, status, _x in venue_orders(harness) if status in working)


def _look(seen: dict[str, Any], seconds: float = 4.0) -> Any:
    def look(_session: BotSession, engine: Engine, journal: Journal) -> None:
        pump_for(engine, seconds)
        seen["held"] = engine.position(SYMBOL).quantity
        seen["working"] = sorted(o.client_order_id for o in engine.open_orders())
        seen["degraded"] = engine.degraded_reason
        seen["events"] = [
            (str(k), str(m)) for k, m in journal.query("SELECT kind, message FROM events")
        ]
        seen["fills"] = [
            (str(c), str(f)) for c, f in journal.query("SELECT client_order_id, fill_id FROM fills")
        ]
        seen["flows"] = journal.query("SELECT flow_id, amount FROM cash_flows")
        seen["cash_flows"] = engine.portfolio.cash_flows

    return look


def _bracketed_then_die(harness: VenueHarness, strategy: Scripted, *, children: bool) -> Any:
    """A life's step: a bracketed limit entry fills; ``children``: its stop-loss and take-profit
    reach the venue before the process dies; else their requests never do."""

    def step(_session: BotSession, engine: Engine, journal: Journal) -> None:
        strategy.ctx.buy(
            SYMBOL, QUANTITY, order_type=OrderType.LIMIT, price=LIMIT, stop_loss=SL, take_profit=TP
        )
        engine.send_queued()
        until(engine, all_acked(engine, journal), "the entry resting")
        if not children:
            harness.fake.faults.inject(
                "timeout", path=CHILD_PATH[harness.name], method="POST", hold_s=30, times=None
            )
        harness.trade_through(LIMIT - 100)
        until(engine, lambda: engine.position(SYMBOL).quantity > 0.0, "the entry's fill")
        if children:
            until(engine, lambda: len(_working_at_venue(harness)) == 2, "the guards")
            until(engine, all_acked(engine, journal), "acks")
        pump_for(engine, 0.5)
        raise Killed

    return step


def _closed_at_venue_while_down(harness: VenueHarness) -> None:
    """The position is closed at the venue by no order of the bot's (the venue's liquidation
    engine, or a person who saw it with no stop), and the venue ends the account's open orders
    on the symbol (as a liquidation does)."""
    state = harness.fake.state
    with state.lock:
        account = state.accounts[harness.fake.api_key]
        if harness.name == "bybit":
            state.new_order(
                account,
                {
                    "category": "linear",
                    "symbol": SYMBOL,
                    "side": "Sell",
                    "orderType": "Market",
                    "qty": str(QUANTITY),
                    "reduceOnly": "true",
                },
            )
            for order in list(state.open_by_account[account.api_key].values()):
                state.cancel(account, {"symbol": SYMBOL, "orderId": order.order_id})
            return
        usdm = state.usdm
        usdm.new_order(
            account,
            {
                "symbol": SYMBOL,
                "side": "SELL",
                "type": "MARKET",
                "quantity": str(QUANTITY),
                "newClientOrderId": "autoclose-1700000000000",
                "reduceOnly": "true",
            },
        )
        for algo in list(usdm.algo_orders.values()):
            if algo.is_open and algo.account == account.api_key:
                usdm.cancel_algo(account, {"symbol": SYMBOL, "clientAlgoId": algo.client_algo_id})


@pytest.mark.parametrize("children", [True, False], ids=["guards-placed", "guards-never-placed"])
@pytest.mark.parametrize("venue", FUTURES)
def test_a_position_closed_at_the_venue_while_down_halts_degraded_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, venue: str, children: bool
) -> None:
    """docs/operations.md (TradefleetBotDegraded): a position the venue no longer holds halts
    the restart Degraded, "and it sends nothing"; docs/live-crypto.md: "A Degraded restart
    closes nothing: the position is a person's to settle". ``guards-never-placed``: the bot
    died between the entry's fill and its children's placing, and the position was liquidated
    or closed by hand while it was down; the Degraded restart sends no stop-loss nor
    take-profit for a position the venue does not hold."""
    with harness_for(venue, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        hand_to_a_bot(harness, monkeypatch)
        strategy = Scripted()
        step = _bracketed_then_die(harness, strategy, children=children)
        _life(tmp_path, harness, 1, step, strategy)
        harness.fake.faults.clear()
        before = _children_at_venue(harness)
        _closed_at_venue_while_down(harness)
        assert venue_position(harness) == 0
        seen: dict[str, Any] = {}
        _life(tmp_path, harness, 2, _look(seen, 2.0), Scripted())
        assert seen["degraded"], "the restart did not see the position gone"
        sent = {cid: s for cid, s in _children_at_venue(harness).items() if cid not in before}
        assert sent == {}, f"a Degraded restart sent {sent}"
        assert _working_at_venue(harness) == []
