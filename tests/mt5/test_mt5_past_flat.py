"""What a reduce-only fill takes past flat on MT5 (review R43; the emulated terminal, the real
broker and ``BotSession``).

The strategy closes its long 0.1 lot (SL/TP kept as the position's attributes); between the
broker's plan of the close (it reads the bot's positions) and the deal's send, the market
trades through the SL and the terminal closes the position.

- Netting: the terminal knows no reduce-only; the close's deal (sized on the position it read)
  sells 0.1 more, a short. The engine sees the close's fill past flat and buys 0.1 back
  (``past-flat``): the terminal ends with no position of the bot's, one buy-back deal.
- Hedging: the close names the SL's ticket, which is gone: the terminal refuses it. The engine
  never sees anything past flat and sends no needless order (no buy deal at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mt5.live_session import LOT, SL, TP, bots_position, start, terminal
from tests.venues.mt5 import MT5Terminal
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar

THROUGH_SL = 1.0940


class _StopFiresBeforeTheClose:
    """Right before the next market sell deal reaches the terminal (the strategy's close),
    the market trades through the position's SL: the terminal closes the position first."""

    def __init__(self, term: MT5Terminal) -> None:
        self.term, self.armed = term, False
        self.send = term.order_send
        self.deals: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> Any:
        term = self.term
        if request.get("action") == term.TRADE_ACTION_DEAL:
            self.deals.append(dict(request))
            if self.armed and request.get("type") == term.ORDER_TYPE_SELL:
                self.armed = False
                term.set_price("EURUSD", THROUGH_SL, THROUGH_SL + 0.0001)
        return self.send(request)


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy("EURUSD", LOT, stop_loss=SL, take_profit=TP)


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close("EURUSD")


def _bot_deals(term: MT5Terminal, deal_type: int) -> list[float]:
    deals = term.history_deals_get(0, 2**31) or ()
    return [round(float(d.volume), 8) for d in deals if d.magic != 0 and d.type == deal_type]


@pytest.mark.parametrize("mode", ["netting", "hedging"])
def test_sl_fires_between_the_close_plan_and_its_deal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    term = terminal(mode)
    hook = _StopFiresBeforeTheClose(term)
    monkeypatch.setattr(term, "order_send", hook)
    bot = start(tmp_path, term, monkeypatch, {0: _buy, 2: _close})
    try:
        bot.step()
        bot.step()
        assert bots_position(term) is not None
        hook.armed = True
        bot.step(THROUGH_SL)  # the close: the SL closes the position first
        for _ in range(3):
            bot.step(THROUGH_SL)
        events = bot.all_events()
        past_flat = bot.events("reduce_only_past_flat")
        assert bots_position(term) is None, (mode, events)
        assert bot.engine.position("EURUSD").quantity == 0.0, events
        buys = _bot_deals(term, term.DEAL_TYPE_BUY)
        if mode == "netting":
            assert len(past_flat) == 1, events
            assert buys == [0.1, 0.1], (buys, events)  # the entry, then one buy-back
        else:
            assert past_flat == [], events
            assert buys == [0.1], (buys, events)  # the entry only: nothing needless sent
        assert bot.engine.open_orders() == [], events
    finally:
        bot.stop()
