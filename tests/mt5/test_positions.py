"""Positions and orders: netting vs hedging, pending orders, SL/TP, modify/remove."""

from __future__ import annotations

import pytest

from tests.mt5.helpers import EPOCH, FAR_FUTURE, market, pending, send_ok
from tests.venues.mt5 import MT5Terminal, TradeDeal, TradePosition
from tests.venues.mt5 import constants as C

BUY, SELL = C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL


def _deal(term: MT5Terminal, ticket: int) -> TradeDeal:
    """The deal with this *deal* ticket (history_deals_get(ticket=) filters by order)."""
    deals = [d for d in term.history_deals_get(EPOCH, FAR_FUTURE) or () if d.ticket == ticket]
    assert len(deals) == 1
    return deals[0]


def _only_position(term: MT5Terminal, symbol: str = "EURUSD") -> TradePosition:
    positions = term.positions_get(symbol=symbol)
    assert positions is not None and len(positions) == 1
    return positions[0]


def test_netting_increase_reduce_close(netting: MT5Terminal) -> None:
    """ACCOUNT_MARGIN_MODE_RETAIL_NETTING (MQL5 "Position accounting"): one position per
    symbol; same-direction deals increase it (weighted open price, entry IN), opposite deals
    reduce then close it (entry OUT, realised profit booked to balance)."""
    term = netting
    first = send_ok(term, market("EURUSD", BUY, 0.1))
    term.set_price("EURUSD", 1.1010, 1.1011)
    second = send_ok(term, market("EURUSD", BUY, 0.1))
    pos = _only_position(term)
    assert term.positions_total() == 1
    assert pos.ticket == first.order and pos.identifier == first.order
    assert pos.volume == 0.2 and pos.price_open == pytest.approx((1.1001 + 1.1011) / 2)
    assert _deal(term, second.deal).entry == C.DEAL_ENTRY_IN
    assert _deal(term, second.deal).position_id == pos.identifier
    term.set_price("EURUSD", 1.1020, 1.1021)
    reduce = send_ok(term, market("EURUSD", SELL, 0.05))
    deal = _deal(term, reduce.deal)
    assert deal.entry == C.DEAL_ENTRY_OUT and deal.profit == pytest.approx(
        (1.1020 - pos.price_open) / 1e-5 * 0.05, abs=0.01
    )
    assert _only_position(term).volume == 0.15
    close = send_ok(term, market("EURUSD", SELL, 0.15))
    assert _deal(term, close.deal).entry == C.DEAL_ENTRY_OUT
    assert term.positions_total() == 0
    account = term.account_info()
    assert account is not None
    assert account.balance == pytest.approx(10000.0 + (1.1020 - 1.1006) / 1e-5 * 0.2, abs=0.02)


def test_netting_reverse(netting: MT5Terminal) -> None:
    """Netting reversal: an opposite deal larger than the position is one DEAL_ENTRY_INOUT
    deal; the position flips side with the remaining volume and keeps its identifier."""
    term = netting
    opened = send_ok(term, market("EURUSD", BUY, 0.1))
    term.set_price("EURUSD", 1.0990, 1.0991)
    flip = send_ok(term, market("EURUSD", SELL, 0.3))
    deal = _deal(term, flip.deal)
    assert deal.entry == C.DEAL_ENTRY_INOUT and deal.volume == 0.3
    assert deal.profit == pytest.approx((1.0990 - 1.1001) / 1e-5 * 0.1, abs=0.01)
    pos = _only_position(term)
    assert pos.type == C.POSITION_TYPE_SELL and pos.volume == 0.2
    assert pos.identifier == opened.order and pos.price_open == 1.0990
    deals = term.history_deals_get(position=pos.identifier)
    assert [d.entry for d in deals or ()] == [C.DEAL_ENTRY_IN, C.DEAL_ENTRY_INOUT]


def test_hedging_independent_positions_and_close_by_ticket(term: MT5Terminal) -> None:
    """ACCOUNT_MARGIN_MODE_RETAIL_HEDGING: every market order opens its own position (ticket =
    opening order ticket); closing needs ``position=<ticket>`` in the request; partial closes
    keep the ticket; a close volume above the position volume answers 10038; an unknown
    position answers 10036."""
    a = send_ok(term, market("EURUSD", BUY, 0.1))
    b = send_ok(term, market("EURUSD", BUY, 0.2))
    c = send_ok(term, market("EURUSD", SELL, 0.1))
    assert term.positions_total() == 3
    tickets = {p.ticket for p in term.positions_get(symbol="EURUSD") or ()}
    assert tickets == {a.order, b.order, c.order}
    bad = term.order_send(market("EURUSD", SELL, 0.3, position=a.order))
    assert bad is not None and bad.retcode == C.TRADE_RETCODE_INVALID_CLOSE_VOLUME
    part = send_ok(term, market("EURUSD", SELL, 0.05, position=a.order))
    assert _deal(term, part.deal).entry == C.DEAL_ENTRY_OUT
    (pos_a,) = term.positions_get(ticket=a.order) or ()
    assert pos_a.volume == 0.05
    send_ok(term, market("EURUSD", SELL, 0.05, position=a.order))
    assert term.positions_get(ticket=a.order) == ()
    gone = term.order_send(market("EURUSD", SELL, 0.05, position=a.order))
    assert gone is not None and gone.retcode == C.TRADE_RETCODE_POSITION_CLOSED
    assert term.positions_total() == 2
    # the real module's Close() helper closes every position of the symbol
    assert term.Close("EURUSD") is True
    assert term.positions_total() == 0


def test_hedging_close_by(term: MT5Terminal) -> None:
    """TRADE_ACTION_CLOSE_BY (hedging only): two opposite positions close each other; both
    deals have entry DEAL_ENTRY_OUT_BY and the larger position keeps the difference."""
    buy = send_ok(term, market("EURUSD", BUY, 0.3))
    sell = send_ok(term, market("EURUSD", SELL, 0.1))
    result = send_ok(
        term,
        {
            "action": C.TRADE_ACTION_CLOSE_BY,
            "position": buy.order,
            "position_by": sell.order,
        },
    )
    assert _deal(term, result.deal).entry == C.DEAL_ENTRY_OUT_BY
    (left,) = term.positions_get() or ()
    assert left.ticket == buy.order and left.volume == pytest.approx(0.2)


def test_pending_orders_trigger_on_path(term: MT5Terminal) -> None:
    """Pending orders (ORDER_TYPE_BUY_LIMIT / SELL_LIMIT / BUY_STOP / SELL_STOP) rest in
    orders_get with ORDER_STATE_PLACED and execute when the price path crosses them: the order
    moves to history as ORDER_STATE_FILLED and a position opens with its SL/TP."""
    limit = send_ok(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.1, 1.0990, sl=1.0950))
    stop = send_ok(term, pending("EURUSD", C.ORDER_TYPE_SELL_STOP, 0.2, 1.0980, magic=9))
    above = send_ok(term, pending("EURUSD", C.ORDER_TYPE_BUY_STOP, 0.1, 1.1050))
    assert term.orders_total() == 3
    (order,) = term.orders_get(ticket=limit.order) or ()
    assert order.state == C.ORDER_STATE_PLACED and order.price_open == 1.0990
    assert order.volume_current == 0.1 and order.sl == 1.0950
    term.play("EURUSD", [1.0995, (1.0988, 1.0989)])
    assert term.orders_total() == 2
    (pos,) = term.positions_get(ticket=limit.order) or ()
    assert pos.price_open == 1.0989 and pos.sl == 1.0950
    (hist,) = term.history_orders_get(ticket=limit.order) or ()
    assert hist.state == C.ORDER_STATE_FILLED and hist.volume_current == 0.0
    term.set_price("EURUSD", 1.0975, 1.0976)
    (short,) = term.positions_get(ticket=stop.order) or ()
    assert short.type == C.POSITION_TYPE_SELL and short.magic == 9
    assert [o.ticket for o in term.orders_get() or ()] == [above.order]


def test_sl_tp_close_positions(term: MT5Terminal) -> None:
    """Position SL/TP: when Bid (buy) / Ask (sell) crosses the level the position is closed by
    an order with ORDER_REASON_SL / ORDER_REASON_TP and a deal with DEAL_REASON_SL /
    DEAL_REASON_TP (entry OUT)."""
    long_ = send_ok(term, market("EURUSD", BUY, 0.1, sl=1.0950, tp=1.1050))
    short = send_ok(term, market("EURUSD", SELL, 0.1, sl=1.1040, tp=1.0900))
    term.set_price("EURUSD", 1.1045, 1.1046)  # ask >= short SL
    assert {p.ticket for p in term.positions_get() or ()} == {long_.order}
    closing = [d for d in term.history_deals_get(position=short.order) or ()]
    assert [d.entry for d in closing] == [C.DEAL_ENTRY_IN, C.DEAL_ENTRY_OUT]
    assert closing[1].reason == C.DEAL_REASON_SL and closing[1].price == 1.1046
    assert closing[1].profit == pytest.approx(-46.0)
    term.set_price("EURUSD", 1.1051, 1.1052)  # bid >= long TP
    assert term.positions_total() == 0
    out = (term.history_deals_get(position=long_.order) or ())[-1]
    assert out.reason == C.DEAL_REASON_TP and out.comment.startswith("[tp 1.10500")
    orders = term.history_orders_get(position=long_.order) or ()
    assert [o.reason for o in orders] == [C.ORDER_REASON_EXPERT, C.ORDER_REASON_TP]


def test_modify_sltp_modify_and_remove_orders(term: MT5Terminal) -> None:
    """TRADE_ACTION_SLTP (position stops), TRADE_ACTION_MODIFY (pending order) and
    TRADE_ACTION_REMOVE (cancel -> history ORDER_STATE_CANCELED); unchanged values answer
    TRADE_RETCODE_NO_CHANGES (10025); unknown order -> 10035."""
    pos = send_ok(term, market("EURUSD", BUY, 0.1))
    sltp = {"action": C.TRADE_ACTION_SLTP, "position": pos.order, "sl": 1.0900, "tp": 1.1200}
    send_ok(term, sltp)
    (p,) = term.positions_get(ticket=pos.order) or ()
    assert (p.sl, p.tp) == (1.09, 1.12)
    again = term.order_send(sltp)
    assert again is not None and again.retcode == C.TRADE_RETCODE_NO_CHANGES
    wrong = term.order_send({**sltp, "sl": 1.1005})
    assert wrong is not None and wrong.retcode == C.TRADE_RETCODE_INVALID_STOPS
    order = send_ok(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.1, 1.0950))
    send_ok(term, {"action": C.TRADE_ACTION_MODIFY, "order": order.order, "price": 1.0940})
    (o,) = term.orders_get(ticket=order.order) or ()
    assert o.price_open == 1.0940
    send_ok(term, {"action": C.TRADE_ACTION_REMOVE, "order": order.order})
    assert term.orders_total() == 0
    (h,) = term.history_orders_get(ticket=order.order) or ()
    assert h.state == C.ORDER_STATE_CANCELED
    missing = term.order_send({"action": C.TRADE_ACTION_REMOVE, "order": order.order})
    assert missing is not None and missing.retcode == C.TRADE_RETCODE_INVALID_ORDER


def test_pending_expiration(term: MT5Terminal) -> None:
    """ORDER_TIME_SPECIFIED: the order expires at ``expiration`` (ORDER_STATE_EXPIRED); an
    expiration in the past answers TRADE_RETCODE_INVALID_EXPIRATION (10022)."""
    now = int(term.now.timestamp())
    req = pending(
        "EURUSD",
        C.ORDER_TYPE_SELL_LIMIT,
        0.1,
        1.1100,
        type_time=C.ORDER_TIME_SPECIFIED,
        expiration=now + 3600,
    )
    order = send_ok(term, req)
    stale = term.order_send({**req, "expiration": now - 1})
    assert stale is not None and stale.retcode == C.TRADE_RETCODE_INVALID_EXPIRATION
    term.advance(3599)
    assert term.orders_total() == 1
    term.advance(1)
    assert term.orders_total() == 0
    (h,) = term.history_orders_get(ticket=order.order) or ()
    assert h.state == C.ORDER_STATE_EXPIRED


def test_equity_and_margin_follow_positions(term: MT5Terminal) -> None:
    """AccountInfo: profit = floating P/L of open positions at Bid (buy) / Ask (sell); equity
    = balance + profit; margin = sum of position margins; margin_free = equity - margin."""
    send_ok(term, market("EURUSD", BUY, 1.0))
    send_ok(term, market("USDJPY", SELL, 0.5))
    account = term.account_info()
    assert account is not None
    assert account.margin == pytest.approx(1100.1 + 500.0)
    term.set_price("EURUSD", 1.1050, 1.1051)
    account = term.account_info()
    assert account is not None
    assert account.profit == pytest.approx(490.0 - 0.012 / 0.001 * 0.6667 * 0.5, abs=0.01)
    assert account.equity == pytest.approx(account.balance + account.profit, abs=0.01)
    assert account.margin_free == pytest.approx(account.equity - account.margin, abs=0.01)
    assert sum(p.profit for p in term.positions_get() or ()) == pytest.approx(
        account.profit, abs=0.02
    )


def test_commission_and_swap_on_deals() -> None:
    """TradeDeal commission / swap (DEAL_COMMISSION, DEAL_SWAP "cumulative swap on close"):
    per-lot commission is charged on every deal; swap accrues on the open position
    (TradePosition.swap, in equity) and is booked on the closing deal and to the balance."""
    term = MT5Terminal(
        extra_symbols={"EURUSD": {"bid": 1.1, "ask": 1.1001, "commission_per_lot": -3.5}}
    )
    assert term.initialize()
    opened = send_ok(term, market("EURUSD", BUY, 2.0))
    assert _deal(term, opened.deal).commission == -7.0
    term.rollover(days=3)  # swap_long -0.7 points/lot/day on EURUSD
    (pos,) = term.positions_get() or ()
    assert pos.swap == pytest.approx(-0.7 * 2.0 * 3)
    account = term.account_info()
    assert account is not None and account.equity == pytest.approx(
        account.balance + pos.profit + pos.swap, abs=0.01
    )
    closed = send_ok(term, market("EURUSD", SELL, 2.0, position=opened.order))
    deal = _deal(term, closed.deal)
    assert deal.swap == pytest.approx(-4.2) and deal.commission == -7.0
    balance = term.account_info().balance  # type: ignore[union-attr]
    assert balance == pytest.approx(10000.0 - 14.0 - 4.2 + deal.profit, abs=0.01)


def test_ohlc_replay_triggers_orders_and_stops(term: MT5Terminal) -> None:
    """Replaying OHLC rows walks open -> low -> high -> close (bullish bar): a buy limit below
    the open fills on the way down, and its take-profit fills on the way up, within one bar."""
    order = send_ok(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.1, 1.0980, tp=1.1030)).order
    t0 = int(term.now.timestamp()) + 60
    term.replay_rates("EURUSD", [(t0, 1.1000, 1.1040, 1.0970, 1.1020)], spread=5)
    assert term.orders_total() == 0 and term.positions_total() == 0
    deals = term.history_deals_get(position=order) or ()
    assert [(d.entry, d.reason) for d in deals] == [
        (C.DEAL_ENTRY_IN, C.DEAL_REASON_EXPERT),
        (C.DEAL_ENTRY_OUT, C.DEAL_REASON_TP),
    ]
    # the bar jumps from the open to the low: the limit fills at the (better) ask of that tick
    assert deals[0].price == 1.09705 and deals[1].price == 1.104
    bars = term.copy_rates_from_pos("EURUSD", C.TIMEFRAME_M1, 0, 1)
    assert bars is not None and bars["low"][0] == 1.097 and bars["high"][0] == 1.104
