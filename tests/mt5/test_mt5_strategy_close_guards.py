"""A strategy's ``ctx.close`` of a bracketed MT5 position keeps the position's SL/TP until the
close fills (walkthrough W23), through the real ``BotSession`` on the emulated terminal.

The close cancelled the bracket first: the broker removed the position's SL and TP
(``TRADE_ACTION_SLTP``, answered done) and then sent the close's deal. When the terminal
refused that deal (requotes past the retries, off quotes, the trade server lost), or the bot
was killed while it was in flight (a restart then journals it "never received; not re-sent"),
the position ran on at the terminal with no SL and no TP, and nothing said so. A flatten keeps
the guards until its close fills; so does a strategy's close now.

And a close that waited when the bot was killed, whose position a stop closed while the bot
was down: the restart found it flat and did nothing, leaving working the entry whose cancel the
close had asked (the kill lost it); it later filled and opened a position with no stop. The
restart now cancels the symbol's orders, as the close asked.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.mt5.live_session import (
    LOT,
    SL,
    TP,
    bots_position,
    held_volume,
    hold_jobs,
    start,
    terminal,
)
from tests.venues.mt5 import MT5Terminal
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar, OrderType


def _buy(quantity: float) -> Any:
    def buy(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy("EURUSD", quantity, stop_loss=SL, take_profit=TP)

    return buy


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close("EURUSD")


class _AtTheCloseDeal:
    """Arms one of the emulator's named faults when the next market deal (the close) reaches
    the terminal."""

    def __init__(self, term: MT5Terminal, fault: str) -> None:
        self.term, self.fault, self.armed = term, fault, False
        self.send = term.order_send

    def __call__(self, request: dict[str, Any]) -> Any:
        if self.armed and request.get("action") == self.term.TRADE_ACTION_DEAL:
            self.armed = False
            if self.fault == "requotes":
                self.term.faults.script("order_send", [10004] * 10)
            elif self.fault == "off-quotes":
                self.term.faults.script("order_send", [10021] * 10)
            else:
                self.term.faults.disconnect("server")  # 10031 until it comes back
        return self.send(request)


@pytest.mark.parametrize("fault", ["requotes", "off-quotes", "trade-server-lost"])
@pytest.mark.parametrize("mode", ["netting", "hedging"])
def test_a_refused_close_leaves_the_position_under_its_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, fault: str
) -> None:
    term = terminal(mode)
    at_close = _AtTheCloseDeal(term, fault)
    monkeypatch.setattr(term, "order_send", at_close)
    bot = start(tmp_path, term, monkeypatch, {0: _buy(LOT), 2: _close})
    try:
        bot.step()
        bot.step()
        at_close.armed = True
        bot.step()  # the strategy closes; the terminal refuses the deal
        [(message, _)] = bot.events("order_rejected")
        held = bots_position(term)
        assert held is not None and (held.sl, held.tp) == (SL, TP), message
        assert {o.client_order_id[-3:] for o in bot.engine.open_orders()} == {"-sl", "-tp"}
        statuses = bot.statuses()
        assert [s for i, s in statuses.items() if i.endswith(("-sl", "-tp"))] == ["open"] * 2
    finally:
        bot.stop()


def test_a_close_that_fills_ends_the_stops_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    term = terminal("netting")
    bot = start(tmp_path, term, monkeypatch, {0: _buy(LOT), 2: _close})
    try:
        for _ in range(4):
            bot.step()
        assert bots_position(term) is None and held_volume(term) == 0.0
        assert bot.engine.open_orders() == []
        statuses = bot.statuses()
        assert sorted(s for i, s in statuses.items() if i.endswith(("-sl", "-tp"))) == [
            "cancelled",
            "cancelled",
        ]
    finally:
        bot.stop()


class _CloseInFlight:
    """The terminal takes the close's deal request and does not answer (a slow trade server);
    the process dies meanwhile, and the request never reaches the server."""

    def __init__(self, term: MT5Terminal) -> None:
        self.term, self.send = term, term.order_send
        self.armed = self.dead = False
        self.arrived, self.release = threading.Event(), threading.Event()

    def __call__(self, request: dict[str, Any]) -> Any:
        if self.dead:
            return None
        if self.armed and request.get("action") == self.term.TRADE_ACTION_DEAL:
            self.armed = False
            self.arrived.set()
            self.release.wait(10.0)
            self.dead = True
            return None
        return self.send(request)


@pytest.mark.parametrize("mode", ["netting", "hedging"])
def test_a_close_in_flight_when_killed_leaves_the_position_under_its_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    term = terminal(mode)
    in_flight = _CloseInFlight(term)
    monkeypatch.setattr(term, "order_send", in_flight)
    bot = start(tmp_path, term, monkeypatch, {0: _buy(LOT), 1: _close})
    bot.step()
    in_flight.armed = True
    bot.step(pump=False)
    assert in_flight.arrived.wait(10.0)
    bot.engine.pump()
    in_flight.release.set()  # the process is gone: nothing of what follows is journaled
    bot.kill()
    monkeypatch.undo()
    held = bots_position(term)
    assert held is not None and (held.sl, held.tp) == (SL, TP)  # guarded while the bot is down

    again = start(tmp_path, term, monkeypatch, first_bar=2)
    try:
        again.step()
        again.step()
        held = bots_position(term)
        assert held is None or (held.sl, held.tp) == (SL, TP), again.all_events()
        if held is not None:
            working = {o.client_order_id[-3:] for o in again.engine.open_orders()}
            assert working == {"-sl", "-tp"}
    finally:
        again.stop()


def _rest_both(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell("EURUSD", LOT, order_type=OrderType.LIMIT, price=1.1050)
    ctx.buy("EURUSD", LOT, order_type=OrderType.LIMIT, price=1.0900)  # an add, lower down


def test_a_waiting_close_found_flat_at_restart_cancels_what_it_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Netting: long 0.2 lot with SL/TP, a resting sell and a resting add; the close waits for
    the sell's cancel and the process dies before any cancel goes; the stop closes the position
    while the bot is down."""
    term = terminal("netting")
    bot = start(tmp_path, term, monkeypatch, {0: _buy(2 * LOT), 1: _rest_both, 2: _close})
    bot.step()
    bot.step()
    [entry] = [o.client_order_id for o in bot.engine.open_orders() if o.side.value == "buy"]
    hold_jobs(bot, monkeypatch)  # the close asks every cancel, then the process dies
    bot.step(pump=False)
    assert bot.events("close_waits")
    bot.kill()
    monkeypatch.undo()
    term.set_price("EURUSD", 1.0940, 1.0941)  # the stop closes the position while down

    again = start(tmp_path, term, monkeypatch, first_bar=3)
    try:
        again.step()
        again.step()
        assert bots_position(term) is None
        [(message, data)] = [e for e in again.events("close_waits") if "flat" in e[0]]
        assert entry in data["cancelled"] and "is asked again" in message
        assert entry not in [o.comment for o in term.orders_get() or ()]
        term.set_price("EURUSD", 1.0890, 1.0891)  # where the add would have filled
        again.step()
        assert held_volume(term) == 0.0
    finally:
        again.stop()
