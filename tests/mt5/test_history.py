"""history_orders_* / history_deals_* and orders_get / positions_get filters."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.mt5.helpers import EPOCH, FAR_FUTURE, market, pending, send_ok
from tests.venues.mt5 import MT5Terminal, TradeDeal, TradeOrder
from tests.venues.mt5 import constants as C

BUY, SELL = C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL


def _trade_day(term: MT5Terminal) -> dict[str, int]:
    """Three hours of activity on three symbols; returns order tickets by label."""
    tickets: dict[str, int] = {}
    tickets["eur_buy"] = send_ok(term, market("EURUSD", BUY, 0.1)).order
    term.advance(3600)
    tickets["jpy_sell"] = send_ok(term, market("USDJPY", SELL, 0.2)).order
    tickets["gold_limit"] = send_ok(
        term, pending("XAUUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 2600.00)
    ).order
    term.advance(3600)
    tickets["eur_close"] = send_ok(
        term, market("EURUSD", SELL, 0.1, position=tickets["eur_buy"])
    ).order
    send_ok(term, {"action": C.TRADE_ACTION_REMOVE, "order": tickets["gold_limit"]})
    return tickets


def test_history_date_ranges(term: MT5Terminal) -> None:
    """history_deals_get(date_from, date_to) / history_deals_total reference: deals whose
    time lies within the (inclusive) range, datetime or integer timestamps; the initial
    deposit is a DEAL_TYPE_BALANCE deal."""
    start = int(term.now.timestamp())
    _trade_day(term)
    deals = term.history_deals_get(EPOCH, FAR_FUTURE)
    assert deals is not None and all(isinstance(d, TradeDeal) for d in deals)
    assert [d.type for d in deals] == [
        C.DEAL_TYPE_BALANCE,
        C.DEAL_TYPE_BUY,
        C.DEAL_TYPE_SELL,
        C.DEAL_TYPE_SELL,
    ]
    assert term.history_deals_total(EPOCH, FAR_FUTURE) == 4
    first_hour = term.history_deals_get(start, start + 3599)
    assert [d.symbol for d in first_hour or ()] == ["", "EURUSD"]
    second = term.history_deals_get(
        datetime.fromtimestamp(start + 3600, UTC), datetime.fromtimestamp(start + 3600, UTC)
    )
    assert [d.symbol for d in second or ()] == ["USDJPY"]
    assert term.history_deals_get(start + 10, start + 20) == ()
    assert term.history_deals_total(start + 7200, start + 7200) == 1


def test_history_orders_ranges_and_states(term: MT5Terminal) -> None:
    """history_orders_get(date_from, date_to) / history_orders_total: filled market orders and
    canceled pending orders, filtered by setup time."""
    start = int(term.now.timestamp())
    tickets = _trade_day(term)
    orders = term.history_orders_get(EPOCH, FAR_FUTURE)
    assert orders is not None and all(isinstance(o, TradeOrder) for o in orders)
    states = {o.ticket: o.state for o in orders}
    assert states[tickets["eur_buy"]] == C.ORDER_STATE_FILLED
    assert states[tickets["gold_limit"]] == C.ORDER_STATE_CANCELED
    assert term.history_orders_total(EPOCH, FAR_FUTURE) == 4
    hour2 = term.history_orders_get(start + 3600, start + 7199)
    assert {o.ticket for o in hour2 or ()} == {tickets["jpy_sell"], tickets["gold_limit"]}


def test_history_group_ticket_position_filters(term: MT5Terminal) -> None:
    """history_*_get(date_from, date_to, group="...") / (ticket=TICKET) / (position=POSITION)
    reference: group uses the symbol mask syntax; ticket is the *order* ticket (for deals: the
    deals whose DEAL_ORDER is that ticket), position the POSITION_ID; neither needs dates."""
    tickets = _trade_day(term)
    usd = term.history_deals_get(EPOCH, FAR_FUTURE, group="*USD*,!EUR*")
    assert [d.symbol for d in usd or ()] == ["USDJPY"]
    by_position = term.history_deals_get(position=tickets["eur_buy"])
    assert [d.entry for d in by_position or ()] == [C.DEAL_ENTRY_IN, C.DEAL_ENTRY_OUT]
    assert {d.order for d in by_position or ()} == {tickets["eur_buy"], tickets["eur_close"]}
    orders = term.history_orders_get(position=tickets["eur_buy"])
    assert [o.ticket for o in orders or ()] == [tickets["eur_buy"], tickets["eur_close"]]
    # history_deals_get(ticket=) selects by order ticket (DEAL_ORDER), not deal ticket
    (close_deal,) = term.history_deals_get(ticket=tickets["eur_close"]) or ()
    assert close_deal.order == tickets["eur_close"] and close_deal.ticket != tickets["eur_close"]
    assert term.history_deals_get(ticket=close_deal.ticket) == ()
    (gold,) = term.history_orders_get(ticket=tickets["gold_limit"]) or ()
    assert gold.symbol == "XAUUSD"
    assert term.history_orders_get(ticket=123) == ()
    assert term.history_deals_get(position=999) == ()
    gold_orders = term.history_orders_get(EPOCH, FAR_FUTURE, group="XAU*")
    assert [o.ticket for o in gold_orders or ()] == [tickets["gold_limit"]]


def test_history_without_arguments_is_an_error(term: MT5Terminal) -> None:
    """history_deals_get() without a date range, ticket or position fails: None and
    RES_E_INVALID_PARAMS."""
    assert term.history_deals_get() is None
    assert term.last_error()[0] == C.RES_E_INVALID_PARAMS
    assert term.history_orders_get(EPOCH) is None


def test_live_filters(term: MT5Terminal) -> None:
    """positions_get / orders_get(symbol=, group=, ticket=) reference: keyword arguments only
    (positional -> None, 'Unnamed arguments not allowed'); empty result is an empty tuple."""
    e = send_ok(term, market("EURUSD", BUY, 0.1)).order
    send_ok(term, market("USDJPY", BUY, 0.1))
    send_ok(term, market("EURGBP", SELL, 0.1))
    send_ok(term, pending("EURUSD", C.ORDER_TYPE_SELL_LIMIT, 0.1, 1.1100))
    assert {p.symbol for p in term.positions_get(group="EUR*") or ()} == {"EURUSD", "EURGBP"}
    assert {p.symbol for p in term.positions_get(group="*,!*JPY*") or ()} == {
        "EURUSD",
        "EURGBP",
    }
    assert [p.ticket for p in term.positions_get(symbol="EURUSD") or ()] == [e]
    assert [p.ticket for p in term.positions_get(ticket=e) or ()] == [e]
    # "If a symbol is specified, the ticket parameter is ignored."
    assert len(term.positions_get(symbol="USDJPY", ticket=e) or ()) == 1
    assert (term.positions_get(symbol="USDJPY", ticket=e) or ())[0].symbol == "USDJPY"
    assert term.positions_get(symbol="XAUUSD") == ()
    assert len(term.orders_get(group="EUR*") or ()) == 1
    assert term.orders_get(symbol="USDJPY") == ()
    assert term.positions_get("EURUSD") is None
    assert term.last_error() == (-2, "Unnamed arguments not allowed")
