"""Request validation of order_send / order_check, like the terminal and trade server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.mt5.helpers import market, pending, send_ok
from tests.venues.mt5 import MT5Terminal, OrderCheckResult, OrderSendResult, TradeRequest
from tests.venues.mt5 import constants as C


def _code(term: MT5Terminal, request: dict[str, Any]) -> int:
    result = term.order_send(request)
    assert result is not None, term.last_error()
    return result.retcode


BUY, SELL = C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL
FOK, IOC, RETURN, BOC = (
    C.ORDER_FILLING_FOK,
    C.ORDER_FILLING_IOC,
    C.ORDER_FILLING_RETURN,
    C.ORDER_FILLING_BOC,
)


@pytest.mark.parametrize(
    ("symbol", "filling", "expected"),
    [
        # EURUSD: filling_mode = FOK|IOC, market execution
        ("EURUSD", FOK, 10009),
        ("EURUSD", IOC, 10009),
        ("EURUSD", RETURN, 10030),  # RETURN refused for market orders in Market execution
        ("EURUSD", BOC, 10030),  # BOC is for pending limit orders only
        # USDJPY: IOC only
        ("USDJPY", FOK, 10030),
        ("USDJPY", IOC, 10009),
        # US500: IOC|BOC, exchange execution -> RETURN allowed whatever the mask
        ("US500", RETURN, 10009),
        ("US500", FOK, 10030),
        ("US500", IOC, 10009),
    ],
)
def test_filling_mode_rules_market_orders(
    term: MT5Terminal, symbol: str, filling: int, expected: int
) -> None:
    """MQL5 ENUM_ORDER_TYPE_FILLING / SYMBOL_FILLING_MODE: FOK and IOC need their bit in the
    symbol's filling_mode mask (SYMBOL_FILLING_FOK=1, IOC=2, BOC=4); RETURN depends on the
    execution mode (not allowed for Market execution, allowed for request/instant/exchange);
    an unsupported policy answers TRADE_RETCODE_INVALID_FILL (10030)."""
    volume = term.symbol_info(symbol).volume_min  # type: ignore[union-attr]
    assert _code(term, market(symbol, BUY, volume, filling=filling)) == expected


def test_filling_omitted_means_fok(term: MT5Terminal) -> None:
    """MqlTradeRequest.type_filling defaults to 0 = ORDER_FILLING_FOK: omitting it on an
    IOC-only symbol fails with 10030 ('Unsupported filling mode')."""
    request = market("USDJPY", BUY, 0.01)
    del request["type_filling"]
    result = term.order_send(request)
    assert result is not None and result.retcode == C.TRADE_RETCODE_INVALID_FILL
    assert result.comment == "Unsupported filling mode" and result.request_id == 0


def test_filling_rules_instant_and_pending(term: MT5Terminal) -> None:
    """Fill policy for instant execution (GBPUSD, FOK only: RETURN allowed, IOC refused) and
    for pending orders (RETURN always; BOC only for limit orders with the BOC bit)."""
    term.symbol_select("GBPUSD")
    ask = term.symbol_info_tick("GBPUSD").ask  # type: ignore[union-attr]
    assert _code(term, market("GBPUSD", BUY, 0.01, filling=RETURN, price=ask)) == 10009
    assert _code(term, market("GBPUSD", BUY, 0.01, filling=IOC, price=ask)) == 10030
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.09)) == 10009
    assert _code(term, pending("US500", C.ORDER_TYPE_BUY_LIMIT, 0.1, 5800.0, filling=BOC)) == (
        10009
    )
    assert _code(term, pending("US500", C.ORDER_TYPE_BUY_STOP, 0.1, 6000.0, filling=BOC)) == (10030)
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.09, filling=BOC)) == (
        10030
    )


@pytest.mark.parametrize(
    ("symbol", "volume", "expected"),
    [
        ("EURUSD", 0.01, 10009),
        ("EURUSD", 0.1 + 0.2, 10009),  # float noise on a step multiple is accepted
        ("EURUSD", 0.015, 10014),  # not a multiple of volume_step
        ("EURUSD", 0.001, 10014),  # below volume_min
        ("EURUSD", 0.0, 10014),
        ("EURUSD", 500.01, 10014),  # above volume_max
        ("US500", 0.3, 10009),
        ("US500", 0.15, 10014),  # step 0.1
        ("US500", 0.05, 10014),  # min 0.1
    ],
)
def test_volume_rules(term: MT5Terminal, symbol: str, volume: float, expected: int) -> None:
    """SymbolInfo volume_min / volume_max / volume_step: the terminal does not round the lot
    size, it rejects it with TRADE_RETCODE_INVALID_VOLUME (10014)."""
    term.update_account(balance=10_000_000.0)
    assert _code(term, market(symbol, BUY, volume)) == expected


def test_price_grid_and_side(term: MT5Terminal) -> None:
    """Pending order price must lie on the trade_tick_size grid (and within digits) and on the
    correct side of the market (BUY_LIMIT below Ask, SELL_STOP below Bid, ...): otherwise
    TRADE_RETCODE_INVALID_PRICE (10015)."""
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.099995)) == 10015
    assert _code(term, pending("US500", C.ORDER_TYPE_BUY_LIMIT, 0.1, 5899.10)) == 10015
    assert _code(term, pending("US500", C.ORDER_TYPE_BUY_LIMIT, 0.1, 5899.25)) == 10009
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.1050)) == 10015
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_SELL_LIMIT, 0.01, 1.0950)) == 10015
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_BUY_STOP, 0.01, 1.0950)) == 10015
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_SELL_STOP, 0.01, 1.1050)) == 10015
    assert _code(term, pending("EURUSD", C.ORDER_TYPE_SELL_STOP, 0.01, 1.0950)) == 10009
    # stops level also applies to the distance of a pending price (GBPUSD: 10 points)
    term.symbol_select("GBPUSD")
    assert _code(term, pending("GBPUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.25005)) == 10015
    assert _code(term, pending("GBPUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.25002)) == 10009


def test_instant_execution_price_and_requote(term: MT5Terminal) -> None:
    """Instant execution (GBPUSD): the request price is required (10015 without it) and a
    price further than ``deviation`` points from the market is requoted (10004) with the
    current bid/ask in the result."""
    term.symbol_select("GBPUSD")
    assert _code(term, market("GBPUSD", BUY, 0.01, filling=FOK)) == 10015
    result = term.order_send(market("GBPUSD", BUY, 0.01, filling=FOK, price=1.2490, deviation=5))
    assert result is not None and result.retcode == C.TRADE_RETCODE_REQUOTE
    assert (result.bid, result.ask) == (1.25, 1.25012) and result.order == 0
    assert term.positions_total() == 0
    ok = term.order_send(market("GBPUSD", BUY, 0.01, filling=FOK, price=1.25010, deviation=5))
    assert ok is not None and ok.retcode == C.TRADE_RETCODE_DONE and ok.price == 1.25012


def test_stops_rules(term: MT5Terminal) -> None:
    """ "Requirements and Limitations in Making Trading Operations": for a buy, Bid-SL and
    TP-Bid must be >= SYMBOL_TRADE_STOPS_LEVEL points (sell: SL-Ask, Ask-TP); stops on the
    wrong side, too close or off the tick grid answer TRADE_RETCODE_INVALID_STOPS (10016)."""
    assert _code(term, market("EURUSD", BUY, 0.01, sl=1.1005)) == 10016  # SL above bid
    assert _code(term, market("EURUSD", BUY, 0.01, tp=1.0995)) == 10016  # TP below bid
    assert _code(term, market("EURUSD", SELL, 0.01, sl=1.0990)) == 10016
    assert _code(term, market("EURUSD", BUY, 0.01, sl=1.0990005)) == 10016  # off grid
    assert _code(term, market("EURUSD", BUY, 0.01, sl=1.099, tp=1.101)) == 10009
    assert _code(term, market("EURUSD", SELL, 0.01, sl=1.102, tp=1.098)) == 10009
    # XAUUSD: stops level 50 points = 0.50; bid 2650.00 / ask 2650.30
    assert _code(term, market("XAUUSD", BUY, 0.01, sl=2649.70)) == 10016
    assert _code(term, market("XAUUSD", BUY, 0.01, sl=2649.50)) == 10009
    assert _code(term, market("XAUUSD", SELL, 0.01, tp=2649.90)) == 10016
    assert _code(term, market("XAUUSD", SELL, 0.01, tp=2649.80)) == 10009


def test_money_and_permissions(term: MT5Terminal) -> None:
    """Trade server return codes: margin above free margin -> 10019 (no money); symbol
    trade_mode DISABLED or account trading off -> 10017; AutoTrading off in the terminal ->
    10027; session closed -> 10018; LONGONLY/SHORTONLY/CLOSEONLY -> 10042/10043/10044."""
    assert _code(term, market("EURUSD", BUY, 100.0)) == C.TRADE_RETCODE_NO_MONEY
    assert _code(term, market("EURUSD", BUY, 9.0)) == C.TRADE_RETCODE_DONE  # 9,900 margin
    assert _code(term, market("EURUSD", BUY, 1.0)) == C.TRADE_RETCODE_NO_MONEY
    term.update_symbol("USDJPY", trade_mode=C.SYMBOL_TRADE_MODE_DISABLED)
    assert _code(term, market("USDJPY", BUY, 0.01)) == C.TRADE_RETCODE_TRADE_DISABLED
    term.update_symbol("USDJPY", trade_mode=C.SYMBOL_TRADE_MODE_LONGONLY)
    assert _code(term, market("USDJPY", SELL, 0.01)) == C.TRADE_RETCODE_LONG_ONLY
    term.update_symbol("USDJPY", trade_mode=C.SYMBOL_TRADE_MODE_SHORTONLY)
    assert _code(term, market("USDJPY", BUY, 0.01)) == C.TRADE_RETCODE_SHORT_ONLY
    term.update_symbol("USDJPY", trade_mode=C.SYMBOL_TRADE_MODE_CLOSEONLY)
    assert _code(term, market("USDJPY", BUY, 0.01)) == C.TRADE_RETCODE_CLOSE_ONLY
    term.set_market_open("XAUUSD", False)
    assert _code(term, market("XAUUSD", BUY, 0.01)) == C.TRADE_RETCODE_MARKET_CLOSED
    term.update_terminal(trade_allowed=False)
    assert _code(term, market("EURUSD", SELL, 0.01)) == C.TRADE_RETCODE_CLIENT_DISABLES_AT
    term.update_terminal(trade_allowed=True)
    term.update_account(trade_allowed=False)
    assert _code(term, market("EURUSD", SELL, 0.01)) == C.TRADE_RETCODE_TRADE_DISABLED


def test_close_only_still_closes(term: MT5Terminal) -> None:
    """SYMBOL_TRADE_MODE_CLOSEONLY allows closing an existing position."""
    ticket = send_ok(term, market("EURUSD", BUY, 0.1)).order
    term.update_symbol("EURUSD", trade_mode=C.SYMBOL_TRADE_MODE_CLOSEONLY)
    assert _code(term, market("EURUSD", SELL, 0.1)) == C.TRADE_RETCODE_CLOSE_ONLY
    assert _code(term, market("EURUSD", SELL, 0.1, position=ticket)) == C.TRADE_RETCODE_DONE


def test_invalid_requests(term: MT5Terminal) -> None:
    """order_send reference: an unknown action, an order type that does not fit the action or
    an unknown symbol -> TRADE_RETCODE_INVALID (10013); a field of the wrong type or a
    non-dict request -> None with last_error (-2, 'Invalid "<field>" argument')."""
    assert _code(term, {"action": 99, "symbol": "EURUSD", "volume": 0.1}) == 10013
    assert _code(term, market("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.1)) == 10013
    assert _code(term, market("NOPE", BUY, 0.1)) == 10013
    assert term.order_send(market("EURUSD", BUY, "0.1")) is None  # type: ignore[arg-type]
    assert term.last_error() == (-2, 'Invalid "volume" argument')
    assert term.order_send(market("EURUSD", BUY, 0.1, magic=1.5)) is None
    assert term.last_error() == (-2, 'Invalid "magic" argument')
    assert term.order_send("buy") is None  # type: ignore[arg-type]
    assert term.last_error()[0] == C.RES_E_INVALID_PARAMS
    assert term.positions_total() == 0


def test_order_check_semantics(term: MT5Terminal) -> None:
    """order_check reference / MqlTradeCheckResult: success is retcode 0 with comment 'Done'
    (not 10009); margin, margin_free, margin_level are the values after the operation; a
    failing check returns the same validation code; nothing is executed."""
    check = term.order_check(market("EURUSD", BUY, 1.0))
    assert isinstance(check, OrderCheckResult)
    assert check.retcode == 0 and check.comment == "Done"
    assert check.balance == 10000.0 and check.equity == 10000.0
    assert check.margin == 1100.1 and check.margin_free == 8899.9  # buy margin at the ask
    assert check.margin_level == pytest.approx(10000.0 / 1100.1 * 100)
    assert isinstance(check.request, TradeRequest) and check.request.volume == 1.0
    assert term.order_check(market("EURUSD", BUY, 0.015)).retcode == 10014  # type: ignore[union-attr]
    assert term.order_check(market("USDJPY", BUY, 0.01, filling=FOK)).retcode == 10030  # type: ignore[union-attr]
    assert term.order_check(market("EURUSD", BUY, 100.0)).retcode == 10019  # type: ignore[union-attr]
    assert term.positions_total() == 0 and term.orders_total() == 0


def test_order_send_result_and_comment_magic(term: MT5Terminal) -> None:
    """MqlTradeResult / OrderSendResult: retcode, deal, order, volume, price, bid, ask,
    comment, request_id, retcode_external, request (the TradeRequest echo).  Comments keep 31
    characters (MqlTradeRequest.comment buffer) on the order, deal and position; magic is kept."""
    comment = "0123456789abcdefghijklmnopqrstuvwxyz"
    result = term.order_send(market("EURUSD", SELL, 0.2, magic=4242, comment=comment))
    assert isinstance(result, OrderSendResult)
    assert result.retcode == C.TRADE_RETCODE_DONE and result.comment == "Request executed"
    assert result.deal > 0 and result.order > 0 and result.deal != result.order
    assert result.volume == 0.2 and result.price == 1.1
    assert result.request_id > 0 and result.retcode_external == 0
    assert result.request is not None and result.request.magic == 4242
    (position,) = term.positions_get()  # type: ignore[misc]
    (deal,) = term.history_deals_get(ticket=result.order)  # type: ignore[misc]
    assert deal.ticket == result.deal and deal.order == result.order
    (order,) = term.history_orders_get(ticket=result.order)  # type: ignore[misc]
    for record in (position, deal, order):
        assert record.comment == comment[:31] and record.magic == 4242
    assert len(position.comment) == 31


def test_freeze_level_and_order_limit(term: MT5Terminal) -> None:
    """SYMBOL_TRADE_FREEZE_LEVEL: a pending order (or SL/TP) closer to the market than the
    freeze distance cannot be modified or removed -> TRADE_RETCODE_FROZEN (10029); the
    account's limit_orders caps pending orders -> TRADE_RETCODE_LIMIT_ORDERS (10033)."""
    term.update_symbol("EURUSD", trade_freeze_level=20)
    near = send_ok(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.0999))
    far = send_ok(term, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.0990))
    frozen = term.order_send({"action": C.TRADE_ACTION_REMOVE, "order": near.order})
    assert frozen is not None and frozen.retcode == C.TRADE_RETCODE_FROZEN
    send_ok(term, {"action": C.TRADE_ACTION_REMOVE, "order": far.order})
    pos = send_ok(term, market("EURUSD", BUY, 0.01, sl=1.0999)).order
    moved = term.order_send({"action": C.TRADE_ACTION_SLTP, "position": pos, "sl": 1.0950})
    assert moved is not None and moved.retcode == C.TRADE_RETCODE_FROZEN
    limited = MT5Terminal(limit_orders=2)
    assert limited.initialize()
    for price in (1.09, 1.08):
        send_ok(limited, pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, price))
    third = limited.order_send(pending("EURUSD", C.ORDER_TYPE_BUY_LIMIT, 0.01, 1.07))
    assert third is not None and third.retcode == C.TRADE_RETCODE_LIMIT_ORDERS
