"""The terminal changes under the bot: a person closes (or adds to) the bot's position by hand,
removes its SL while the bot is down, the position's swap, a stop that fired while the bot was
down, SL/TP inside the stops level, a netting position pyramided with another stop. Each runs
the real engine (or the broker alone) on the emulated terminal and ends with the journal
saying what the terminal holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.deal_stubs import deal_stub
from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    bracketed_then_down,
    fills,
    gold_pro_symbols,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
    updates,
)
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_reports import deal_credit, fill_from_deal
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.order_ids import bot_prefix
from tradefleet_runtime.reconcile import position_drift
from tradefleet_runtime.sdk import (
    OUTSIDE_TAG,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
    child_order_id,
)

LOT = 100_000.0  # EURUSD units in one lot


def _harness(margin: str, terminal: MT5Terminal | None = None) -> Mt5Harness:
    harness = Mt5Harness.build(margin, venue=terminal)
    harness.symbols = ("EURUSD",)
    return harness.connect()


@pytest.fixture(params=["netting", "hedging"])
def venue(request: pytest.FixtureRequest) -> Iterator[Mt5Harness]:
    harness = _harness(request.param)
    yield harness
    harness.close()


def _by_hand(term: MT5Terminal, side: int, volume: float, position: int = 0) -> Any:
    """A person's market order in the terminal: magic 0, no comment."""
    request = {
        "action": term.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": volume,
        "type": side,
        "type_filling": term.ORDER_FILLING_IOC,
        "magic": 0,
    }
    if position and term.account_info().margin_mode == term.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING:
        request["position"] = position
    result = term.order_send(request)
    assert result.retcode == term.TRADE_RETCODE_DONE, result
    return result


def _events(journal: Journal, kind: str) -> list[str]:
    return [row[0] for row in journal.query("SELECT message FROM events WHERE kind = ?", kind)]


# -- 1. a position closed by hand while the bot runs ------------------------------------------


@pytest.mark.parametrize("part", [1.0, 0.4])
def test_a_position_closed_by_hand_while_running_is_booked(venue: Mt5Harness, part: float) -> None:
    """A person closes all (or 40%) of the bot's position in the terminal: the bot books the
    close (position, P&L, fee from the deal's commission), journals it as a change made outside
    the bot, and does not trade on a phantom position."""
    term = venue.terminal
    term.update_symbol("EURUSD", commission_per_lot=-3.5)
    strategy = Scripted(
        {0: lambda ctx, bar: ctx.buy("EURUSD", LOT, stop_loss=1.0950, take_profit=1.1100)}
    )
    engine, journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    (position,) = term.positions_get()
    term.set_price("EURUSD", 1.1020, 1.1021)
    _by_hand(term, term.ORDER_TYPE_SELL, round(position.volume * part, 2), int(position.ticket))
    settle_and_pump(engine, venue)

    held = engine.portfolio.position("EURUSD").quantity
    assert held == pytest.approx(LOT * (1 - part))
    close_deal = venue.deals()[-1]
    assert close_deal.magic == 0
    fill_id, cid, reason, quantity, fee = journal.query(
        "SELECT fill_id, client_order_id, reason, quantity, fee FROM fills ORDER BY rowid DESC"
    )[0]
    assert fill_id == str(close_deal.ticket)
    assert cid == f"{bot_prefix(venue.bot)}-outside-{close_deal.ticket}"
    assert reason == OUTSIDE_TAG
    assert quantity == pytest.approx(LOT * part)
    assert fee == pytest.approx(-close_deal.commission)
    (said,) = _events(journal, "position_changed_outside")
    assert f"venue execution {close_deal.ticket}" in said
    assert ("closed" if part == 1.0 else "reduced") in said
    # the money: the bot's realised P&L is the terminal's (profit of the closed part)
    trade = engine.portfolio.trades[-1] if part == 1.0 else None
    if trade is not None:
        assert trade.gross_pnl == pytest.approx(close_deal.profit)
    venue_positions = venue.broker.position_reports()
    assert position_drift(("EURUSD",), {"EURUSD": held}, venue_positions, 500.0) == {}
    if part == 1.0:
        # its SL/TP went with the position: ended, and no "stop cancelled outside" warning
        statuses = dict(journal.order_statuses())
        parent = engine.last_order_id
        assert statuses[f"{parent}-sl"] == statuses[f"{parent}-tp"] == "cancelled"
        assert _events(journal, "stop_cancelled") == []


def test_after_a_close_by_hand_a_reversal_leaves_the_bot_and_the_terminal_agreeing(
    venue: Mt5Harness,
) -> None:
    """The probe's s2b: after a person's close, the bot's own close-and-reverse no longer has a
    phantom long to sell: the terminal and the bot hold the same short."""
    term = venue.terminal
    strategy = Scripted(
        {
            0: lambda ctx, bar: ctx.buy("EURUSD", LOT),
            2: lambda ctx, bar: ctx.sell("EURUSD", LOT),
        }
    )
    engine, _journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    (position,) = term.positions_get()
    _by_hand(term, term.ORDER_TYPE_SELL, position.volume, int(position.ticket))
    engine.run([minute_bar(1, 1.1)])
    settle_and_pump(engine, venue)
    assert engine.portfolio.position("EURUSD").quantity == 0.0
    engine.run([minute_bar(2, 1.1)])
    settle_and_pump(engine, venue)
    at_terminal = sum(
        (1 if p.type == term.POSITION_TYPE_BUY else -1) * p.volume * LOT
        for p in term.positions_get()
    )
    assert engine.portfolio.position("EURUSD").quantity == at_terminal == -LOT


def test_an_add_by_hand_on_a_netting_account_is_not_the_bots_and_is_a_drift() -> None:
    """A person buys more of the bot's netting position: the bot does not take it over (no
    fill), and the running position check sees the difference (the session halts Degraded)."""
    venue = _harness("netting")
    try:
        term = venue.terminal
        engine, journal = live_engine(venue, Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", LOT)}))
        engine.run([minute_bar(0, 1.1)])
        settle_and_pump(engine, venue)
        _by_hand(term, term.ORDER_TYPE_BUY, 0.5)
        settle_and_pump(engine, venue)
        assert engine.portfolio.position("EURUSD").quantity == LOT
        assert _events(journal, "position_changed_outside") == []
        drift = position_drift(
            ("EURUSD",),
            {"EURUSD": LOT},
            venue.broker.position_reports(),
            500.0,
        )
        assert drift == {"EURUSD": (LOT, 1.5 * LOT)}
        # ... and a person then selling that half back is booked as the bot's reduction at
        # most by what the position holds (the bot's side): here it takes it back to 1 lot.
    finally:
        venue.close()


def test_a_reversal_by_hand_books_only_the_bots_part() -> None:
    """A person sells 1.5 lots against the bot's 1-lot netting long (one INOUT deal): the bot
    books the 1 lot that closed its position, never the person's new short."""
    venue = _harness("netting")
    try:
        term = venue.terminal
        engine, journal = live_engine(venue, Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", LOT)}))
        engine.run([minute_bar(0, 1.1)])
        settle_and_pump(engine, venue)
        _by_hand(term, term.ORDER_TYPE_SELL, 1.5)
        settle_and_pump(engine, venue)
        assert engine.portfolio.position("EURUSD").quantity == 0.0
        (quantity,) = journal.query("SELECT quantity FROM fills WHERE reason = ?", OUTSIDE_TAG)[0]
        assert quantity == LOT
        # the person's short is a difference the running check reports
        drift = position_drift(("EURUSD",), {"EURUSD": 0.0}, venue.broker.position_reports(), 1)
        assert drift == {"EURUSD": (0.0, -0.5 * LOT)}
    finally:
        venue.close()


def test_a_close_by_hand_while_the_bot_was_down_is_booked_at_restart(
    venue: Mt5Harness, tmp_path: Path
) -> None:
    """The restart path books what the running path books: the person's close, while the bot
    was down, as an outside fill (not a Degraded mismatch), said in the journal."""
    path = tmp_path / "journal.sqlite"
    term = venue.terminal
    parent = bracketed_then_down(venue, path, LOT)  # its broker object no longer polls
    (position,) = term.positions_get()
    term.set_price("EURUSD", 1.0990, 1.0991)
    _by_hand(term, term.ORDER_TYPE_SELL, position.volume, int(position.ticket))
    close_deal = venue.deals()[-1]
    mode = _mode(term)
    venue.broker.close()

    restarted = _harness(mode, term)
    try:
        second = Journal(path, durable=True)
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        assert plan.degraded is False
        assert [f.fill_id for f in plan.missed_fills] == [str(close_deal.ticket)]
        assert plan.notes == ()  # an outside change is no order of the bot's gone missing
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        assert again.portfolio.position("EURUSD").quantity == 0.0
        assert again.portfolio.trades[-1].gross_pnl == pytest.approx(close_deal.profit)
        (said,) = _events(second, "position_changed_outside")
        assert str(close_deal.ticket) in said
        # the SL/TP that went with the position are closed, not re-sent
        assert plan.resend == ()
        assert {f"{parent}-sl", f"{parent}-tp"} <= set(plan.never_sent)
        # nothing is reported again once running
        settle_and_pump(again, restarted)
        assert len(second.query("SELECT 1 FROM fills WHERE reason = ?", OUTSIDE_TAG)) == 1
        second.close()
    finally:
        restarted.close()


def _mode(term: MT5Terminal) -> str:
    hedging = term.account_info().margin_mode == term.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    return "hedging" if hedging else "netting"


# -- 2. a bracket child re-sent at restart is the position's SL, not a pending order ----------


def test_an_sl_removed_by_hand_while_down_is_set_again_as_the_positions_sl(
    venue: Mt5Harness, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite"
    term = venue.terminal
    parent = bracketed_then_down(venue, path, LOT)  # its broker object no longer polls
    (position,) = term.positions_get()
    removed = term.order_send(
        {
            "action": term.TRADE_ACTION_SLTP,
            "symbol": "EURUSD",
            "position": position.ticket,
            "sl": 0.0,
            "tp": position.tp,
        }
    )
    assert removed.retcode == term.TRADE_RETCODE_DONE
    mode = _mode(term)
    venue.broker.close()

    restarted = _harness(mode, term)
    try:
        second = Journal(path, durable=True)
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        assert plan.resend == (f"{parent}-sl",)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        settle_and_pump(again, restarted)
        # the position's SL again; no pending order, nothing closed at market
        (held,) = term.positions_get()
        assert (held.sl, held.tp) == (1.0950, 1.1100)
        assert term.orders_get() == ()
        assert again.portfolio.position("EURUSD").quantity == LOT
        statuses = dict(second.order_statuses())
        assert statuses[f"{parent}-sl"] == "open"
        assert _events(second, "stop_refused") == []
        # it acts as the bracket's SL: its fill is the child's, the TP is cancelled
        term.set_price("EURUSD", 1.0940)
        settle_and_pump(again, restarted)
        statuses = dict(second.order_statuses())
        assert (statuses[f"{parent}-sl"], statuses[f"{parent}-tp"]) == ("filled", "cancelled")
        assert again.portfolio.position("EURUSD").quantity == 0.0
        # and nothing is left at the terminal to open a position later (netting's orphan)
        assert term.orders_get() == () and term.positions_get() == ()
        second.close()
    finally:
        restarted.close()


def test_a_child_for_a_position_that_is_not_open_is_refused_not_sent(netting: Mt5Harness) -> None:
    order = netting.order(
        Side.SELL,
        order_type=OrderType.STOP,
        price=1.0950,
        reduce_only=True,
        client_order_id=child_order_id("tf1234ab0999x", "sl"),
        parent_id="tf1234ab0999x",
    )
    (update,) = updates(netting.submit(order))
    assert update.status is OrderStatus.REJECTED
    assert "no open position" in update.reason
    assert netting.history_orders() == []


# -- 3. swap ----------------------------------------------------------------------------------


def test_a_charged_swap_is_booked_as_the_trades_funding_not_its_fee() -> None:
    specs = gold_pro_symbols()
    specs["EURUSD"].update(commission_per_lot=-3.5, swap_long=-10.0, swap_short=2.0)
    venue = _harness("netting", MT5Terminal(margin_mode="netting", symbols=specs))
    try:
        strategy = Scripted(
            {0: lambda ctx, bar: ctx.buy("EURUSD", LOT), 2: lambda ctx, bar: ctx.close("EURUSD")}
        )
        engine, journal = live_engine(venue, strategy)
        engine.run([minute_bar(0, 1.1)])
        settle_and_pump(engine, venue)
        venue.terminal.rollover(3)
        engine.run([minute_bar(1, 1.105), minute_bar(2, 1.105)])
        settle_and_pump(engine, venue)
        deals = venue.deals()
        assert [d.swap for d in deals] == [0.0, -30.0]
        assert [row[0] for row in journal.query("SELECT fee FROM fills")] == [3.5, 3.5]
        # the bot's books move as the terminal's balance did
        moved = sum(d.profit + d.commission + d.swap for d in deals)
        trade = engine.portfolio.trades[-1]
        assert trade.funding == pytest.approx(-30.0)  # test_mt5_swaps.py: the swap's CashFlow
        assert trade.net_pnl == pytest.approx(moved)
    finally:
        venue.close()


def _deal(**fields: Any) -> Any:
    return deal_stub(EMULATOR_T0, **fields)


def test_a_swap_credit_is_not_in_the_fee_and_only_a_rebate_is_named() -> None:
    units = lambda _symbol, volume: volume * LOT  # noqa: E731
    small = fill_from_deal(_deal(swap=2.0), "x", "EURUSD", units)
    assert small is not None and small.fee == pytest.approx(3.5)
    assert deal_credit(_deal(swap=10.0)) == 0.0  # booked as its own CashFlow (swap_flow)
    rebate = fill_from_deal(_deal(commission=2.0), "x", "EURUSD", units)
    assert rebate is not None and rebate.fee == 0.0  # Fill.fee is >= 0 by the contract
    assert deal_credit(_deal(commission=2.0)) == pytest.approx(2.0)


# -- 4. a stop that fired while the bot was down ----------------------------------------------


def test_a_stop_that_fired_while_down_is_closed_as_filled_not_never_sent(
    venue: Mt5Harness, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite"
    term = venue.terminal
    parent = bracketed_then_down(venue, path, LOT)  # its broker object no longer polls
    term.set_price("EURUSD", 1.0940)  # the SL fires while the bot is down
    mode = _mode(term)
    venue.broker.close()

    restarted = _harness(mode, term)
    try:
        reports = {r.client_order_id: r for r in restarted.broker.order_reports(EMULATOR_T0 - 3600)}
        assert reports[f"{parent}-sl"].status is OrderStatus.FILLED
        second = Journal(path, durable=True)
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        assert f"{parent}-sl" not in plan.never_sent
        assert f"{parent}-sl" in dict(plan.closed)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        statuses = dict(second.order_statuses())
        assert statuses[f"{parent}-sl"] == "filled"
        second.close()
    finally:
        restarted.close()


# -- 5. stops inside the stops level, on pending orders and SL/TP amends ----------------------


def test_a_pending_orders_stop_inside_the_stops_level_names_the_level(
    netting: Mt5Harness,
) -> None:
    # GOLD.pro: stops level 50 points = 0.50
    order = netting.order(
        symbol="XAUUSD",
        quantity=5.0,
        order_type=OrderType.LIMIT,
        price=2640.0,
        stop_loss=2639.8,
    )
    (update,) = updates(netting.submit(order))
    assert update.status is OrderStatus.REJECTED
    assert update.code is ReasonCode.INVALID_PRICE
    assert "trade_stops_level 50" in update.reason
    assert netting.history_orders() == []


def test_an_sl_amend_inside_the_stops_level_names_the_level(netting: Mt5Harness) -> None:
    entry = netting.order(symbol="XAUUSD", quantity=5.0, stop_loss=2640.0)
    events = netting.submit(entry)
    assert fills(events)
    child = child_order_id(entry.client_order_id, "sl")
    netting.broker.amend(child, None, 2649.9)
    (update,) = updates(netting.settle())
    assert update.status is OrderStatus.OPEN and update.code is ReasonCode.INVALID_PRICE
    assert "trade_stops_level 50" in update.reason
    (position,) = netting.terminal.positions_get()
    assert position.sl == 2640.0


# -- 6. a netting position pyramided with another SL/TP -----------------------------------------


def test_a_second_entry_with_other_stops_on_a_netting_position_is_refused(
    netting: Mt5Harness,
) -> None:
    first = netting.order(stop_loss=1.0950, take_profit=1.1100)
    assert fills(netting.submit(first))
    other = netting.order(stop_loss=1.0900, take_profit=1.1100)
    (update,) = updates(netting.submit(other))
    assert update.status is OrderStatus.REJECTED
    assert "one SL/TP per position" in update.reason
    (position,) = netting.terminal.positions_get()
    assert (position.volume, position.sl, position.tp) == (0.1, 1.0950, 1.1100)
    same = netting.order(stop_loss=1.0950, take_profit=1.1100)
    assert fills(netting.submit(same))
    (position,) = netting.terminal.positions_get()
    assert (position.volume, position.sl) == (0.2, 1.0950)


def test_hedging_pyramids_keep_each_positions_own_stops(hedging: Mt5Harness) -> None:
    assert fills(hedging.submit(hedging.order(stop_loss=1.0950)))
    assert fills(hedging.submit(hedging.order(stop_loss=1.0900)))
    assert sorted(p.sl for p in hedging.terminal.positions_get()) == [1.0900, 1.0950]
