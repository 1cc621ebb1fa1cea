"""aiohttp server that speaks Bybit v5 REST for category=linear (USDT perpetuals).

:class:`FakeBybit` owns a :class:`~tests.venues.bybit.state.BybitState`, a
:class:`~tests.venues.bybit.faults.FaultInjector` and (once started) an aiohttp
server on ``127.0.0.1`` running in a background thread with its own event loop,
so sync and async ccxt clients in the test thread can both reach it.

Every answer is Bybit's envelope ``{"retCode", "retMsg", "result", "retExtInfo",
"time"}``; the shapes inside follow ccxt's recorded Bybit responses
(``ts/src/test/static/response/bybit.json``; samples in ``recorded/``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.venues.http_fake import HttpFake, Params, flatten, html_5xx, json_response
from tests.venues.http_fake import RequestRecord as BaseRecord

from . import errors as E
from . import signing
from .errors import BybitError
from .faults import Fault, FaultInjector
from .state import (
    FUNDING_RATE_BOUND,
    ZERO,
    Account,
    BybitState,
    Candle,
    Execution,
    Instrument,
    Order,
    dec,
    fmt,
)

DEFAULT_API_KEY = "fakeBybitApiKey00001"
DEFAULT_SECRET = "fakeBybitSecret0000000000000000000001"
DEFAULT_USDT = 100_000
RATE_LIMIT = 10  # guessed: X-Bapi-Limit per second for order endpoints

Handler = Callable[["RequestContext"], Any]


@dataclass
class RequestRecord(BaseRecord):
    ret_code: int | None = None


@dataclass
class RequestContext:
    fake: FakeBybit
    method: str
    path: str
    params: Params
    account: Account | None
    server_time: int
    partial: Decimal | None = None

    @property
    def state(self) -> BybitState:
        return self.fake.state

    @property
    def acct(self) -> Account:
        assert self.account is not None
        return self.account


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------


def instrument_info(inst: Instrument, funding_interval_ms: int) -> dict[str, Any]:
    """Shape of Bybit's v5 docs example for ``/v5/market/instruments-info`` (linear)."""
    return {
        "symbol": inst.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": inst.base,
        "quoteCoin": inst.quote,
        "launchTime": str(inst.launch_time),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(inst.price_scale),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{inst.max_leverage:.2f}",
            "leverageStep": fmt(inst.leverage_step),
        },
        "priceFilter": {
            "minPrice": fmt(inst.min_price),
            "maxPrice": fmt(inst.max_price),
            "tickSize": fmt(inst.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": fmt(inst.max_qty),
            "minOrderQty": fmt(inst.min_qty),
            "qtyStep": fmt(inst.qty_step),
            "postOnlyMaxOrderQty": fmt(inst.max_qty),
            "maxMktOrderQty": fmt(inst.max_mkt_qty),
            "minNotionalValue": fmt(inst.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": funding_interval_ms // 60_000,  # minutes
        "settleCoin": inst.quote,
        "copyTrading": "both",
        "upperFundingRate": fmt(FUNDING_RATE_BOUND),
        "lowerFundingRate": fmt(-FUNDING_RATE_BOUND),
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "displayName": "",
    }


def ticker(state: BybitState, symbol: str) -> dict[str, Any]:
    """Shape of the recorded ``fetchTicker`` (swap) response."""
    last = state.prices.get(symbol, ZERO)
    day = [c for c in state.candles[symbol] if c.open_time >= state.now - 86_400_000]
    high = max((c.high for c in day), default=last)
    low = min((c.low for c in day), default=last)
    prev = day[0].open if day else last
    vol = sum((c.volume for c in day), ZERO)
    turnover = sum((c.turnover for c in day), ZERO)
    pct = (last - prev) / prev if prev else ZERO
    tick = state.instruments[symbol].tick_size
    return {
        "symbol": symbol,
        "lastPrice": fmt(last),
        "indexPrice": fmt(last),
        "markPrice": fmt(last),
        "prevPrice24h": fmt(prev),
        "price24hPcnt": f"{pct:.6f}",
        "highPrice24h": fmt(high),
        "lowPrice24h": fmt(low),
        "prevPrice1h": fmt(prev),
        "openInterest": "0",
        "openInterestValue": "0",
        "turnover24h": fmt(turnover),
        "volume24h": fmt(vol),
        "fundingRate": fmt(state.funding.rate(symbol)),  # what the next funding instant pays
        "nextFundingTime": str(state.funding.next_time(state.now)),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "ask1Size": "1",
        "bid1Price": fmt(last - tick) if last else "0",
        "ask1Price": fmt(last),
        "bid1Size": "1",
        "basis": "",
    }


def order_json(o: Order) -> dict[str, Any]:
    """Shape of the recorded linear ``fetchOpenOrder``/``fetchClosedOrder`` rows."""
    avg = o.avg_price
    return {
        "symbol": o.symbol,
        "orderType": o.order_type,
        "orderLinkId": o.link_id,
        "slLimitPrice": "0",
        "orderId": o.order_id,
        "cancelType": o.cancel_type,
        "avgPrice": fmt(avg) if o.cum_qty else "",
        "stopOrderType": o.stop_order_type,
        "lastPriceOnCreated": fmt(o.last_price_on_created),
        "orderStatus": o.status,
        "createType": o.create_type,
        "takeProfit": fmt(o.take_profit) if o.take_profit else "",
        "cumExecValue": fmt(o.cum_value),
        "tpslMode": o.tpsl_mode,
        "smpType": "None",
        "triggerDirection": o.trigger_direction,
        "blockTradeId": "",
        "cumFeeDetail": {"USDT": fmt(o.cum_fee)} if o.cum_fee else {},
        "isLeverage": "",
        "rejectReason": o.reject_reason,
        "price": fmt(o.price),
        "orderIv": "",
        "createdTime": str(o.created),
        "tpTriggerBy": "LastPrice" if o.take_profit else "",
        "positionIdx": o.position_idx,
        "timeInForce": o.time_in_force,
        "leavesValue": fmt(o.leaves_qty * o.price),
        "updatedTime": str(o.updated),
        "side": o.side,
        "smpGroup": 0,
        "triggerPrice": fmt(o.trigger_price) if o.trigger_price else "",
        "tpLimitPrice": "0",
        "cumExecFee": fmt(o.cum_fee),
        "leavesQty": fmt(o.leaves_qty),
        "slTriggerBy": "LastPrice" if o.stop_loss else "",
        "closeOnTrigger": o.close_on_trigger,
        "placeType": "",
        "cumExecQty": fmt(o.cum_qty),
        "reduceOnly": o.reduce_only,
        "qty": fmt(o.qty),
        "stopLoss": fmt(o.stop_loss) if o.stop_loss else "",
        "marketUnit": "",
        "smpOrderId": "",
        "triggerBy": o.trigger_by,
    }


def execution_json(x: Execution) -> dict[str, Any]:
    """Shape of the recorded swap ``fetchMyTrades`` row; a funding payment's (execType
    Funding) as ccxt's ``parse_income`` sample."""
    return {
        "symbol": x.symbol,
        "orderType": x.order_type,
        "underlyingPrice": "",
        "orderLinkId": x.link_id,
        "orderId": x.order_id,
        "stopOrderType": x.stop_order_type,
        "execTime": str(x.time),
        "feeCurrency": "",
        "createType": x.create_type,
        "feeRate": fmt(x.fee_rate),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": fmt(x.mark_price),
        "execPrice": fmt(x.price),
        "markIv": "",
        "orderQty": fmt(x.order_qty),
        "orderPrice": fmt(x.order_price),
        "execValue": fmt(x.value),
        "closedSize": fmt(x.closed_size),
        "execType": x.exec_type,
        "seq": x.seq,
        "side": x.side,
        "indexPrice": "",
        "leavesQty": fmt(x.leaves_qty),
        "isMaker": x.is_maker,
        "execFee": fmt(x.fee),
        "execId": x.exec_id,
        "marketUnit": "",
        "execQty": fmt(x.qty),
    }


def kline_row(c: Candle) -> list[str]:
    return [
        str(c.open_time),
        fmt(c.open),
        fmt(c.high),
        fmt(c.low),
        fmt(c.close),
        fmt(c.volume),
        fmt(c.turnover),
    ]


def _page(items: list[Any], params: Params, default: int, maximum: int) -> tuple[list[Any], str]:
    """Cursor pagination; the cursor is an opaque offset string (Bybit's are opaque too)."""
    try:
        limit = min(max(int(params.get("limit") or default), 1), maximum)
        offset = int(params.get("cursor") or 0)
    except ValueError as exc:
        raise E.params("params error: limit or cursor invalid") from exc  # guessed wording
    chunk = items[offset : offset + limit]
    nxt = str(offset + limit) if offset + limit < len(items) else ""
    return chunk, nxt


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


def _linear(ctx: RequestContext) -> None:
    if ctx.params.get("category") != "linear":
        raise E.params("params error: category only support linear in the fake")  # guessed


def h_time(ctx: RequestContext) -> Any:
    t = ctx.server_time
    return {"timeSecond": str(t // 1000), "timeNano": str(t * 1_000_000)}


def h_instruments(ctx: RequestContext) -> Any:
    _linear(ctx)
    p = ctx.params
    if p.get("status") and p["status"] != "Trading":
        items: list[Instrument] = []
    elif p.get("symbol"):
        items = [ctx.state.instrument(p["symbol"])]
    else:
        items = list(ctx.state.instruments.values())
    return {
        "category": "linear",
        "list": [instrument_info(i, ctx.state.funding.interval_ms) for i in items],
        "nextPageCursor": "",
    }


def h_tickers(ctx: RequestContext) -> Any:
    _linear(ctx)
    sym = ctx.params.get("symbol")
    symbols = [ctx.state.instrument(sym).symbol] if sym else list(ctx.state.instruments)
    return {
        "category": "linear",
        "list": [ticker(ctx.state, s) for s in symbols if s in ctx.state.prices],
    }


def h_kline(ctx: RequestContext) -> Any:
    _linear(ctx)
    p = ctx.params
    symbol = ctx.state.instrument(p.get("symbol")).symbol
    interval = p.get("interval")
    if not interval:
        raise E.missing("interval")
    limit = min(max(int(p.get("limit") or 200), 1), 1000)
    start = int(p["start"]) if p.get("start") else None
    end = int(p["end"]) if p.get("end") else None
    rows = ctx.state.klines(symbol, interval, start, end, limit)
    return {"symbol": symbol, "category": "linear", "list": [kline_row(c) for c in rows]}


def h_funding_history(ctx: RequestContext) -> Any:
    """GET /v5/market/funding/history (public): category, symbol (both required), startTime
    and endTime (ms, inclusive; startTime alone is refused), limit (1-200, default 200);
    ``result.list`` newest first, rows ``{symbol, fundingRate, fundingRateTimestamp}``."""
    _linear(ctx)
    p = ctx.params
    try:
        limit = min(max(int(p.get("limit") or 200), 1), 200)  # guessed: cut, not refused
        start = int(p["startTime"]) if p.get("startTime") else None
        end = int(p["endTime"]) if p.get("endTime") else None
    except ValueError as exc:
        raise E.params("params error: limit, startTime or endTime invalid") from exc  # guessed
    rows = ctx.state.funding_rate_history(p.get("symbol"), start, end, limit)
    return {
        "category": "linear",
        "list": [
            {
                "symbol": r.symbol,
                "fundingRate": fmt(r.rate),
                "fundingRateTimestamp": str(r.at_ms),
            }
            for r in rows
        ],
    }


def h_query_api(ctx: RequestContext) -> Any:
    a = ctx.acct
    perms = {
        "ContractTrade": ["Order", "Position"],
        "Spot": ["SpotTrade"],
        "Wallet": ["AccountTransfer", "SubMemberTransfer"],
        "Options": ["OptionsTrade"],
        "Derivatives": ["DerivativesTrade"],
        "CopyTrading": [],
        "BlockTrade": [],
        "Exchange": [],
        "NFT": [],
        "Affiliate": [],
    }
    return {
        "id": str(a.user_id * 10),
        "note": "fake bybit",
        "apiKey": a.api_key,
        "readOnly": 0,
        "secret": "",
        "permissions": perms,
        "ips": ["*"],
        "type": 1,
        "deadlineDay": 83,
        "expiredAt": "",
        "createdAt": "2024-01-01T00:00:00Z",
        "unified": 0,
        "uta": 1,
        "userID": a.user_id,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
        "parentUid": "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }


def h_account_info(ctx: RequestContext) -> Any:
    return {
        "unifiedMarginStatus": 5,  # UTA 2.0
        "marginMode": ctx.acct.margin_mode,
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
        "updatedTime": str(ctx.server_time),
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
    }


def h_wallet(ctx: RequestContext) -> Any:
    """Shape of the recorded ``fetchBalance`` (UNIFIED) response; one coin, USDT."""
    st, a = ctx.state, ctx.acct
    account_type = ctx.params.get("accountType")
    if account_type != "UNIFIED":
        raise E.params("accountType only support UNIFIED")  # guessed wording
    upl = st.unrealised(a)
    pos_im = st.position_im(a)
    pos_mm = pos_im / 20  # guessed: maintenance margin as 5% of IM
    equity = a.wallet + upl
    avail = st.available(a)
    coin = {
        "availableToBorrow": "",
        "bonus": "0",
        "accruedInterest": "0",
        "availableToWithdraw": "",
        "totalOrderIM": fmt(a.order_im),
        "equity": fmt(equity),
        "totalPositionMM": fmt(pos_mm),
        "usdValue": fmt(equity),
        "unrealisedPnl": fmt(upl),
        "collateralSwitch": True,
        "spotHedgingQty": "0",
        "borrowAmount": "0.000000000000000000",
        "totalPositionIM": fmt(pos_im),
        "walletBalance": fmt(a.wallet),
        "cumRealisedPnl": fmt(a.cum_realised),
        "locked": "0",
        "marginCollateral": True,
        "coin": "USDT",
    }
    coins = ctx.params.get("coin")
    listed = [coin] if not coins or "USDT" in coins.split(",") else []
    return {
        "list": [
            {
                "totalEquity": fmt(equity),
                "accountIMRate": fmt((pos_im + a.order_im) / equity) if equity else "0",
                "totalMarginBalance": fmt(equity),
                "totalInitialMargin": fmt(pos_im + a.order_im),
                "accountType": "UNIFIED",
                "totalAvailableBalance": fmt(avail),
                "accountMMRate": fmt(pos_mm / equity) if equity else "0",
                "totalPerpUPL": fmt(upl),
                "totalWalletBalance": fmt(a.wallet),
                "accountLTV": "0",
                "totalMaintenanceMargin": fmt(pos_mm),
                "coin": listed,
            }
        ]
    }


def _position_json(ctx: RequestContext, symbol: str, idx: int) -> dict[str, Any]:
    st, a = ctx.state, ctx.acct
    pos = a.positions.get((symbol, idx))
    size = pos.size if pos is not None else ZERO
    avg = pos.avg_price if pos is not None else ZERO
    mark = st.prices.get(symbol, avg)
    lev = st.leverage(a, symbol)
    value = abs(size) * avg
    im = value / lev
    side = "Buy" if size > 0 else "Sell" if size < 0 else ""
    return {
        "symbol": symbol,
        "leverage": fmt(lev),
        "autoAddMargin": 0,
        "avgPrice": fmt(avg),
        "liqPrice": "",
        "riskLimitValue": "2000000",
        "takeProfit": fmt(pos.take_profit) if pos is not None and pos.take_profit else "",
        "positionValue": fmt(value) if size else "",
        "isReduceOnly": False,
        "tpslMode": "Full",
        "riskId": 1,
        "trailingStop": "0",
        "unrealisedPnl": fmt((mark - avg) * size) if size else "",
        "markPrice": fmt(mark),
        "adlRankIndicator": 2 if size else 0,
        "cumRealisedPnl": fmt(pos.realised) if pos is not None else "0",
        "positionMM": fmt(im / 20),  # guessed: 5% of IM
        "createdTime": str(pos.created if pos is not None else ctx.server_time),
        "positionIdx": idx,
        "positionIM": fmt(im),
        "seq": 1,
        "updatedTime": str(pos.updated if pos is not None else ctx.server_time),
        "side": side,
        "bustPrice": "",
        "positionBalance": fmt(im),
        "leverageSysUpdatedTime": "",
        "size": fmt(abs(size)),
        "positionStatus": "Normal",
        "mmrSysUpdatedTime": "",
        "stopLoss": fmt(pos.stop_loss) if pos is not None and pos.stop_loss else "",
        "tradeMode": a.trade_mode.get(symbol, 0),
    }


def h_positions(ctx: RequestContext) -> Any:
    _linear(ctx)
    st, a, p = ctx.state, ctx.acct, ctx.params
    sym = p.get("symbol")
    rows: list[dict[str, Any]] = []
    if sym:
        symbol = st.instrument(sym).symbol
        rows = [_position_json(ctx, symbol, idx) for idx in st.position_idxs(a, symbol)]
    else:
        if not p.get("settleCoin") and not p.get("baseCoin"):
            raise E.params("params error: symbol or settleCoin is required")  # guessed
        for (symbol, idx), pos in sorted(a.positions.items()):
            if pos.size:
                rows.append(_position_json(ctx, symbol, idx))
    chunk, nxt = _page(rows, p, 20, 200)
    return {"list": chunk, "nextPageCursor": nxt, "category": "linear"}


def h_create(ctx: RequestContext) -> Any:
    o = ctx.state.new_order(ctx.acct, ctx.params, ctx.partial)
    return {"orderId": o.order_id, "orderLinkId": o.link_id}


def h_cancel(ctx: RequestContext) -> Any:
    _linear(ctx)
    o = ctx.state.cancel(ctx.acct, ctx.params)
    return {"orderId": o.order_id, "orderLinkId": o.link_id}


def h_cancel_all(ctx: RequestContext) -> Any:
    _linear(ctx)
    orders = ctx.state.cancel_all(ctx.acct, ctx.params)
    return {
        "list": [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in orders],
        "success": "1",
    }


def h_amend(ctx: RequestContext) -> Any:
    _linear(ctx)
    o = ctx.state.amend(ctx.acct, ctx.params)
    return {"orderId": o.order_id, "orderLinkId": o.link_id}


def h_realtime(ctx: RequestContext) -> Any:
    _linear(ctx)
    p = ctx.params
    scoped = p.get("symbol") or p.get("settleCoin") or p.get("baseCoin")
    if not scoped and not p.get("orderId") and not p.get("orderLinkId"):
        raise E.params("params error: symbol or settleCoin is required")  # guessed
    orders = ctx.state.open_orders(ctx.acct, p)
    chunk, nxt = _page(orders, p, 20, 50)
    return {"list": [order_json(o) for o in chunk], "nextPageCursor": nxt, "category": "linear"}


def h_history(ctx: RequestContext) -> Any:
    _linear(ctx)
    orders = ctx.state.history(ctx.acct, ctx.params)
    chunk, nxt = _page(orders, ctx.params, 20, 50)
    return {"list": [order_json(o) for o in chunk], "nextPageCursor": nxt, "category": "linear"}


def h_executions(ctx: RequestContext) -> Any:
    _linear(ctx)
    rows = ctx.state.list_executions(ctx.acct, ctx.params)
    chunk, nxt = _page(rows, ctx.params, 50, 100)
    return {
        "list": [execution_json(x) for x in chunk],
        "nextPageCursor": nxt,
        "category": "linear",
    }


def h_set_leverage(ctx: RequestContext) -> Any:
    _linear(ctx)
    ctx.state.set_leverage(ctx.acct, ctx.params)
    return {}


def h_switch_mode(ctx: RequestContext) -> Any:
    _linear(ctx)
    ctx.state.switch_mode(ctx.acct, ctx.params)
    return {}


def h_switch_isolated(ctx: RequestContext) -> Any:
    _linear(ctx)
    ctx.state.switch_isolated(ctx.acct, ctx.params)
    return {}


def h_set_margin_mode(ctx: RequestContext) -> Any:
    ctx.state.set_margin_mode(ctx.acct, ctx.params)
    return {"reasons": []}


@dataclass
class Route:
    handler: Handler
    signed: bool
    ok_msg: str = "OK"


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/v5/market/time"): Route(h_time, False),
    ("GET", "/v5/market/instruments-info"): Route(h_instruments, False),
    ("GET", "/v5/market/tickers"): Route(h_tickers, False),
    ("GET", "/v5/market/kline"): Route(h_kline, False),
    ("GET", "/v5/market/funding/history"): Route(h_funding_history, False),
    ("GET", "/v5/user/query-api"): Route(h_query_api, True),
    ("GET", "/v5/account/info"): Route(h_account_info, True, "success"),
    ("GET", "/v5/account/wallet-balance"): Route(h_wallet, True),
    ("GET", "/v5/position/list"): Route(h_positions, True),
    ("POST", "/v5/order/create"): Route(h_create, True),
    ("POST", "/v5/order/cancel"): Route(h_cancel, True),
    ("POST", "/v5/order/cancel-all"): Route(h_cancel_all, True),
    ("POST", "/v5/order/amend"): Route(h_amend, True),
    ("GET", "/v5/order/realtime"): Route(h_realtime, True),
    ("GET", "/v5/order/history"): Route(h_history, True),
    ("GET", "/v5/execution/list"): Route(h_executions, True),
    ("POST", "/v5/position/set-leverage"): Route(h_set_leverage, True),
    ("POST", "/v5/position/switch-mode"): Route(h_switch_mode, True),
    ("POST", "/v5/position/switch-isolated"): Route(h_switch_isolated, True),
    ("POST", "/v5/account/set-margin-mode"): Route(h_set_margin_mode, True, "Request accepted"),
}

ORDER_PATHS = ("/v5/order/create", "/v5/order/cancel", "/v5/order/amend", "/v5/order/cancel-all")


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------


def _reads_funding(method: str, path: str, params: Params) -> bool:
    """Whether a request reads funding payments (what the ``funding_unavailable`` fault hits):
    GET /v5/execution/list without execType (every type) or with Funding, as ccxt's
    ``fetch_funding_history`` sends it; ``fetch_my_trades`` (execType Trade) is not hit."""
    if method != "GET" or path != "/v5/execution/list":
        return False
    return params.get("execType", "") in ("", "Funding")


def _envelope(code: int, msg: str, result: Any, now: int) -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now}


class FakeBybit(HttpFake[RequestRecord]):
    """The fake venue: state + faults + an HTTP server in a background thread."""

    venue = "bybit"

    def __init__(
        self,
        *,
        instruments: Iterable[Instrument] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        default_account: bool = True,
        prices: dict[str, object] | None = None,
    ) -> None:
        super().__init__(FaultInjector(), host, port)
        self.state = BybitState(instruments)
        self.api_key = DEFAULT_API_KEY
        # When set, signed requests' timestamps are checked against this clock (ms) instead of
        # the venue's: a test replaying market time faster than real time keeps the bot's
        # signed requests (stamped with the real time) valid.
        self.signing_clock: Callable[[], int] | None = None
        self.secret = DEFAULT_SECRET
        if default_account:
            self.state.add_account(DEFAULT_API_KEY, DEFAULT_SECRET, DEFAULT_USDT)
        for symbol, price in (prices or {"BTCUSDT": 50_000, "ETHUSDT": 3_000}).items():
            if symbol in self.state.instruments:
                self.state.set_price(symbol, price)
        self._limit_window = 0
        self._limit_used = 0

    # -- test controls ----------------------------------------------------------
    def set_price(self, symbol: str, price: object, volume: object = 0) -> list[Execution]:
        """Move the last price of ``symbol``; crossed limits fill, triggers fire."""
        with self.state.lock:
            return self.state.set_price(symbol, price, volume)

    def price(self, symbol: str) -> Decimal:
        with self.state.lock:
            return self.state.price(symbol)

    def load_path(self, symbol: str, prices: Iterable[object]) -> None:
        with self.state.lock:
            self.state.load_path(symbol, prices)

    def load_candles(self, symbol: str, rows: Iterable[Candle], history: int = 0) -> None:
        with self.state.lock:
            self.state.load_candles(symbol, rows, history)

    def advance(self, symbol: str, steps: int = 1) -> list[Execution]:
        with self.state.lock:
            return self.state.advance(symbol, steps)

    def add_account(self, api_key: str, secret: str, usdt: object = DEFAULT_USDT) -> Account:
        with self.state.lock:
            return self.state.add_account(api_key, secret, usdt)

    def account(self, api_key: str | None = None) -> Account:
        return self.state.accounts[api_key or self.api_key]

    def orders(self, api_key: str | None = None) -> list[Order]:
        key = api_key or self.api_key
        with self.state.lock:
            return [o for o in self.state.orders.values() if o.account == key]

    def order_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v5/order/create"]

    # -- funding ------------------------------------------------------------------
    def set_funding_rate(self, symbol: str, rate: object) -> None:
        """The rate ``symbol``'s positions pay at its next funding instants (tickers'
        ``fundingRate``), within the instruments' ±0.00375; 0 until set (nothing paid)."""
        with self.state.lock:
            self.state.set_funding_rate(symbol, dec(rate))

    def funding_rate(self, symbol: str) -> Decimal:
        with self.state.lock:
            return self.state.funding.rate(symbol)

    def next_funding_time(self) -> int:
        """The next funding instant after the venue's clock (tickers' ``nextFundingTime``)."""
        with self.state.lock:
            return self.state.funding.next_time(self.state.clock.now_ms())

    def settle_funding(self) -> list[Execution]:
        """Pay every funding instant the venue's clock passed since it was last observed
        (each request and price move does this too); the Funding executions made."""
        with self.state.lock:
            return self.state.settle_funding()

    def pass_funding_time(self, after_ms: int = 1) -> int:
        """Freeze the venue's clock ``after_ms`` past its next funding instant and settle it;
        returns that instant.  The venue's time then runs apart from the real one: unless a
        test set its own ``signing_clock``, signed requests are checked on the wall clock
        from then on (as in a replayed test), so the client's timestamps stay valid."""
        with self.state.lock:
            self.state.settle_funding()  # what was due where the clock stood
            clock = self.state.clock
            at = self.state.funding.next_time(clock.now_ms())
            clock.frozen_ms = at + after_ms - clock.offset_ms
            if self.signing_clock is None:
                self.signing_clock = lambda: time.time_ns() // 1_000_000
            self.state.settle_funding()
            return at

    def seed_funding_history(
        self, symbol: str, first_ms: int, rates: Iterable[object]
    ) -> list[int]:
        """List ``rates`` in GET /v5/market/funding/history from ``first_ms`` (a funding
        instant), one a funding interval, all before the venue's clock; the instants (ms).
        Instants the clock passes are listed as they are paid, without this."""
        with self.state.lock:
            return self.state.seed_funding_history(symbol, first_ms, rates)

    def funding_executions(self, api_key: str | None = None) -> list[Execution]:
        """The account's Funding executions, oldest first."""
        with self.state.lock:
            return list(self.state.funding_executions[api_key or self.api_key])

    # -- HTTP -----------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method, path, query = request.method, request.path, request.query_string
        body = (await request.text()) if request.can_read_body else ""
        params: Params = dict(parse_qsl(query, keep_blank_values=True))
        bad_json = False
        if body:
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded, bad_json = None, True
            if isinstance(decoded, dict):
                params.update({k: flatten(v) for k, v in decoded.items() if v is not None})
            elif not bad_json:
                bad_json = True
        record = self.record(RequestRecord(method, path, params))
        route = ROUTES.get((method, path))
        if route is None:
            self.not_found(record)
            # Not a venue answer: a marker (retCode -1 is not a Bybit code) that ccxt
            # raises as a plain, non-retryable ExchangeError naming the missing endpoint.
            return json_response(
                _envelope(-1, f"fake bybit does not implement {method} {path}", {}, 0),
                status=404,
            )
        skew, answered = await self.apply_pre_faults(request, record)
        if answered is not None:
            return answered
        if _reads_funding(method, path, params):
            fault = self.faults.take(method, path, ("funding_unavailable",))
            if fault is not None:
                record.status = -1
                return self.fault_response(fault)
        server_time = self.state.clock.now_ms() + skew
        signing_time = (
            self.signing_clock() + skew if self.signing_clock is not None else server_time
        )
        headers: dict[str, str] = {}
        if route.signed:
            second = server_time // 1000
            if second != self._limit_window:
                self._limit_window, self._limit_used = second, 0
            self._limit_used += 1
            headers = {
                "X-Bapi-Limit": str(RATE_LIMIT),
                "X-Bapi-Limit-Status": str(max(RATE_LIMIT - self._limit_used, 0)),
                "X-Bapi-Limit-Reset-Timestamp": str((second + 1) * 1000),
            }
        try:
            with self.state.lock:
                # funding due at the venue's own time (not a clock_skew fault's) is paid first
                self.state.settle_funding()
                account: Account | None = None
                if route.signed:
                    key = signing.verify(
                        request.headers,
                        lambda k: (
                            self.state.accounts[k].secret if k in self.state.accounts else None
                        ),
                        body if method == "POST" else query,
                        signing_time,
                    )
                    account = self.state.accounts[key]
                if bad_json:
                    raise E.params("params error: request body is not JSON")  # guessed
                ctx = RequestContext(self, method, path, params, account, server_time)
                if method == "POST" and path == "/v5/order/create":
                    fault = self.faults.take(method, path, ("partial_fill",))
                    if fault is not None:
                        ctx.partial = dec(fault.params.get("fraction", 0.5))
                result = route.handler(ctx)
            data = _envelope(0, route.ok_msg, result, server_time)
            record.ret_code = 0
        except BybitError as exc:
            record.ret_code = exc.code
            data = _envelope(exc.code, exc.msg, {}, server_time)
        record.status = 200
        response = json_response(data, headers=headers)
        await self.apply_post_faults(request, record)
        return response

    def fault_response(self, fault: Fault) -> web.StreamResponse:
        p = fault.params
        now = self.state.clock.now_ms()
        if fault.name == "rate_limit":
            if int(p.get("status", 200)) == 403:
                # IP-level limit: plain-text 403 from the edge
                return web.Response(
                    status=403, text="access too frequent", content_type="text/plain"
                )
            reset = now - now % 1000 + 1000 * int(p.get("retry_after", 1))
            return json_response(
                _envelope(E.TOO_MANY, "Too many visits!", {}, now),
                headers={
                    "X-Bapi-Limit": str(RATE_LIMIT),
                    "X-Bapi-Limit-Status": "0",
                    "X-Bapi-Limit-Reset-Timestamp": str(reset),
                },
            )
        if fault.name in ("server_error", "funding_unavailable"):
            status = int(p.get("status", 503))
            if p.get("json_code") is not None:
                return json_response(
                    _envelope(
                        int(p["json_code"]),
                        str(p.get("msg", "Internal System Error.")),
                        {},
                        now,
                    ),
                    status=status,
                )
            return html_5xx(status)
        if fault.name == "reject":
            return json_response(
                _envelope(
                    int(p.get("code", E.PARAMS)),
                    str(p.get("msg", "params error")),
                    {},
                    now,
                ),
                status=int(p.get("status", 200)),
            )
        raise AssertionError(f"unhandled fault {fault.name}")  # pragma: no cover


def read_ohlcv_csv(path: str | Path) -> list[Candle]:
    """Rows ``open_time_ms,open,high,low,close,volume`` (header optional)."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split(",")
        if len(parts) < 6 or not parts[0].strip().isdigit():
            continue
        t, o, h, low, c, v = (x.strip() for x in parts[:6])
        out.append(Candle(int(t), dec(o), dec(h), dec(low), dec(c), dec(v)))
    return out
