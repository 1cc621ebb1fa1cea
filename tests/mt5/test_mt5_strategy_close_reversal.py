"""A strategy's reversal (``close`` + ``sell`` with its own SL/TP) on MT5 while the close keeps
the old position's stop-loss and take-profit (walkthrough W23, review R42).

The close is refused by the terminal (a final refusal, 10006) while the sell goes: on a netting
account the sell then reverses the long in one deal (the position keeps its ticket), and the
old long's SL/TP children, kept by the close, are still in the bot's book. Their end must not
take the new short's SL/TP away at the terminal. A close filled in part keeps the SL/TP, cut to
what is left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mt5.live_session import LOT, SL, TP, bots_position, start, terminal
from tests.venues.mt5 import MT5Terminal
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar

SHORT_SL, SHORT_TP = 1.1050, 1.0900


class _RefuseTheCloseDeal:
    """The terminal refuses the next market deal (the close) for good (10006); later ones go."""

    def __init__(self, term: MT5Terminal) -> None:
        self.term, self.armed = term, False
        self.send = term.order_send

    def __call__(self, request: dict[str, Any]) -> Any:
        if self.armed and request.get("action") == self.term.TRADE_ACTION_DEAL:
            self.armed = False
            self.term.faults.script("order_send", [10006])
        return self.send(request)


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy("EURUSD", LOT, stop_loss=SL, take_profit=TP)


def _reverse(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close("EURUSD")
    ctx.sell("EURUSD", 2 * LOT, stop_loss=SHORT_SL, take_profit=SHORT_TP)


@pytest.mark.parametrize("mode", ["netting", "hedging"])
def test_refused_close_then_reversal_keeps_the_new_positions_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    term = terminal(mode)
    refuse = _RefuseTheCloseDeal(term)
    monkeypatch.setattr(term, "order_send", refuse)
    bot = start(tmp_path, term, monkeypatch, {0: _buy, 2: _reverse})
    try:
        bot.step()
        bot.step()
        refuse.armed = True
        bot.step()  # close refused, the sell reverses the long
        for _ in range(3):
            bot.step()
        held = bots_position(term)
        events = bot.all_events()
        assert held is not None, events
        assert held.type == term.POSITION_TYPE_SELL, events
        # Whatever the size, the short the bot holds must carry the sell's SL/TP at the
        # terminal, and the bot's book must show that stop working.
        assert (held.sl, held.tp) == (SHORT_SL, SHORT_TP), (
            f"the short's SL/TP at the terminal: {(held.sl, held.tp)}; events {events}"
        )
        working = sorted(
            (o.side.value, o.order_type.value, o.price)
            for o in bot.engine.open_orders()
            if o.parent_id is not None
        )
        assert ("buy", "stop", SHORT_SL) in working, working
        assert bot.engine.position("EURUSD").quantity < 0.0
    finally:
        bot.stop()


class _PartTheCloseDeal:
    """The terminal fills the next market deal (the close) in part (10010); with
    ORDER_FILLING_RETURN its rest works on and fills at a later tick."""

    def __init__(self, term: MT5Terminal) -> None:
        self.term, self.armed = term, False
        self.send = term.order_send
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> Any:
        if request.get("action") == self.term.TRADE_ACTION_DEAL:
            self.requests.append(dict(request))
        if self.armed and request.get("action") == self.term.TRADE_ACTION_DEAL:
            self.armed = False
            self.term.faults.script("order_send", [10010])
        return self.send(request)


def _buy_two(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy("EURUSD", 2 * LOT, stop_loss=SL, take_profit=TP)


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close("EURUSD")


@pytest.mark.parametrize("mode", ["netting", "hedging"])
def test_close_filled_in_part_then_closed_again_is_one_exit_and_never_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Long 0.2 lot with SL/TP. The close fills in part (0.1 lot); the next bar the strategy
    closes again. The position keeps its SL/TP while any of it is held, ends flat (never
    short), and the bot's guards end cancelled."""
    term = terminal(mode)
    part = _PartTheCloseDeal(term)
    monkeypatch.setattr(term, "order_send", part)
    bot = start(tmp_path, term, monkeypatch, {0: _buy_two, 2: _close, 3: _close})
    try:
        bot.step()
        bot.step()
        part.armed = True
        bot.step(pump=False)  # the close: filled in part
        bot.pump()
        held = bots_position(term)
        assert held is not None and round(held.volume, 8) == 0.1
        assert (held.sl, held.tp) == (SL, TP), bot.all_events()
        # the kept guards are cut to what the part left, not cancelled
        assert sorted(o.quantity for o in bot.engine.open_orders()) == [LOT, LOT]
        bot.step()  # the strategy closes again
        for _ in range(3):
            bot.step()
        events = bot.all_events()
        assert bots_position(term) is None, events
        assert bot.engine.position("EURUSD").quantity == 0.0, events
        assert bot.engine.open_orders() == [], events
        deals = term.history_deals_get(0, 2**31) or ()
        sold = [float(d.volume) for d in deals if d.magic != 0 and d.type == term.DEAL_TYPE_SELL]
        assert round(sum(sold), 8) == 0.2, (sold, events)  # what was held, sold once
        statuses = bot.statuses()
        assert sorted(s for i, s in statuses.items() if i.endswith(("-sl", "-tp"))) == [
            "cancelled",
            "cancelled",
        ], statuses
    finally:
        bot.stop()
