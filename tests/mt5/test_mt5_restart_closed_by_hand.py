"""A position a person closed at the terminal while the bot was down (walkthrough W23): the
restart books the close once, and the position's SL/TP, which the terminal held until then, are
journaled as gone from the venue — not "the venue never received it", nor counted in the
restart's summary as never reaching the venue (they were acknowledged and worked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mt5.live_session import LOT, SL, TP, by_hand, start, terminal
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy("EURUSD", 2 * LOT, stop_loss=SL, take_profit=TP)


@pytest.mark.parametrize("mode", ["netting", "hedging"])
def test_the_stops_of_a_position_closed_by_hand_while_down_are_said_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    term = terminal(mode)
    bot = start(tmp_path, term, monkeypatch, {0: _buy})
    bot.step()
    entry = bot.engine.last_order_id
    bot.step()
    bot.kill()
    monkeypatch.undo()
    [position] = term.positions_get() or ()
    by_hand(term, term.ORDER_TYPE_SELL, 0.2, position.ticket if mode == "hedging" else 0)

    again = start(tmp_path, term, monkeypatch, first_bar=2)
    try:
        [(said, _)] = again.events("position_changed_outside")
        assert "closed outside the bot" in said
        assert again.engine.position("EURUSD").quantity == 0.0
        reasons = again.reasons()
        for role in ("sl", "tp"):
            status, reason = reasons[f"{entry}-{role}"]
            assert status == "cancelled" and reason.startswith("gone from the venue"), reason
        [(summary, _)] = again.events("reconciled")[-1:]
        assert "0 never reached the venue" in summary, summary
        assert "2 acknowledged order(s) gone from the venue without a report" in summary
    finally:
        again.stop()
