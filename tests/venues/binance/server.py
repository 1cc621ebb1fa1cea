"""aiohttp server that speaks Binance spot (``/api/v3``) and USDⓈ-M (``/fapi``) REST.

:class:`FakeBinance` owns a :class:`~tests.venues.binance.state.BinanceState`, a
:class:`~tests.venues.binance.faults.FaultInjector` and (once started) an aiohttp
server on ``127.0.0.1`` running in a background thread with its own event loop,
so sync and async clients in the test thread can both reach it.

Response shapes follow Binance's API docs and the recorded responses in ccxt's
``ts/src/test/static/response/binance.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.venues.http_fake import (
    PRE_FAULTS,
    HttpFake,
    Params,
    RequestRecord,
    html_5xx,
    json_response,
)

from . import errors as E
from . import signing
from .errors import BinanceError
from .faults import Fault, FaultInjector
from .state import (
    INTERVAL_MS,
    ZERO,
    Account,
    AlgoOrder,
    BinanceState,
    Candle,
    Engine,
    Income,
    MarketKind,
    Order,
    OrderList,
    SymbolSpec,
    Trade,
    dec,
    fmt,
    fmt8,
    read_ohlcv_csv,
)

DEFAULT_API_KEY = "fakeBinanceApiKey0000000000000000000000000000000000000000000000001"
DEFAULT_SECRET = "fakeBinanceSecret000000000000000000000000000000000000000000000001"
DEFAULT_SPOT_BALANCES: dict[str, object] = {"USDT": 100_000, "BTC": 1, "ETH": 10}
DEFAULT_FUTURES_BALANCES: dict[str, object] = {"USDT": 100_000}

Handler = Callable[["RequestContext"], Any]
Market = MarketKind | str


@dataclass
class RequestContext:
    fake: FakeBinance
    method: str
    path: str
    params: Params
    account: Account | None
    server_time: int

    @property
    def state(self) -> BinanceState:
        return self.fake.state


@dataclass
class Route:
    handler: Handler
    signed: bool
    kind: MarketKind
    weight: int = 1


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------


def _num(kind: MarketKind, value: Decimal) -> str:
    return fmt8(value) if kind == "spot" else fmt(value)


def spot_exchange_info(engine: Engine, now: int, symbols: Iterable[SymbolSpec]) -> dict[str, Any]:
    out = []
    for s in symbols:
        out.append(
            {
                "symbol": s.symbol,
                "status": s.status,
                "baseAsset": s.base,
                "baseAssetPrecision": 8,
                "quoteAsset": s.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": [
                    "LIMIT",
                    "LIMIT_MAKER",
                    "MARKET",
                    "STOP_LOSS",
                    "STOP_LOSS_LIMIT",
                    "TAKE_PROFIT",
                    "TAKE_PROFIT_LIMIT",
                ],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True,
                "cancelReplaceAllowed": True,
                "amendAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": fmt8(s.min_price),
                        "maxPrice": fmt8(s.max_price),
                        "tickSize": fmt8(s.tick_size),
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": fmt8(s.min_qty),
                        "maxQty": fmt8(s.max_qty),
                        "stepSize": fmt8(s.step_size),
                    },
                    {"filterType": "ICEBERG_PARTS", "limit": 10},
                    {
                        "filterType": "MARKET_LOT_SIZE",
                        "minQty": "0.00000000",
                        "maxQty": fmt8(s.market_max_qty),
                        "stepSize": "0.00000000",
                    },
                    {
                        "filterType": "TRAILING_DELTA",
                        "minTrailingAboveDelta": 10,
                        "maxTrailingAboveDelta": 2000,
                        "minTrailingBelowDelta": 10,
                        "maxTrailingBelowDelta": 2000,
                    },
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": fmt8(s.min_notional),
                        "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": s.max_num_orders},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": [
                    "NONE",
                    "EXPIRE_TAKER",
                    "EXPIRE_MAKER",
                    "EXPIRE_BOTH",
                ],
            }
        )
    return {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ],
        "exchangeFilters": [],
        "symbols": out,
    }


def futures_exchange_info(now: int, symbols: Iterable[SymbolSpec]) -> dict[str, Any]:
    out = []
    for s in symbols:
        out.append(
            {
                "symbol": s.symbol,
                "pair": s.symbol,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
                "status": s.status,
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": s.base,
                "quoteAsset": s.quote,
                "marginAsset": s.quote,
                "pricePrecision": s.price_precision,
                "quantityPrecision": s.quantity_precision,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": ["PoW"],
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000,
                "filters": [
                    {
                        "minPrice": fmt(s.min_price),
                        "maxPrice": fmt(s.max_price),
                        "filterType": "PRICE_FILTER",
                        "tickSize": fmt(s.tick_size),
                    },
                    {
                        "stepSize": fmt(s.step_size),
                        "filterType": "LOT_SIZE",
                        "maxQty": fmt(s.max_qty),
                        "minQty": fmt(s.min_qty),
                    },
                    {
                        "stepSize": fmt(s.step_size),
                        "filterType": "MARKET_LOT_SIZE",
                        "maxQty": fmt(s.market_max_qty),
                        "minQty": fmt(s.min_qty),
                    },
                    {"limit": s.max_num_orders, "filterType": "MAX_NUM_ORDERS"},
                    {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
                    {"notional": fmt(s.min_notional), "filterType": "MIN_NOTIONAL"},
                    {
                        "multiplierDown": "0.9500",
                        "multiplierUp": "1.0500",
                        "multiplierDecimal": "4",
                        "filterType": "PERCENT_PRICE",
                    },
                ],
                "orderTypes": [
                    "LIMIT",
                    "MARKET",
                    "STOP",
                    "STOP_MARKET",
                    "TAKE_PROFIT",
                    "TAKE_PROFIT_MARKET",
                    "TRAILING_STOP_MARKET",
                ],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                "permissionSets": ["GRID", "COPY"],
            }
        )
    return {
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 2400,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": out,
    }


def spot_order(order: Order, *, with_time: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "price": fmt8(order.price),
        "origQty": fmt8(order.orig_qty),
        "executedQty": fmt8(order.executed_qty),
        "cummulativeQuoteQty": fmt8(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "stopPrice": fmt8(order.stop_price),
        "icebergQty": "0.00000000",
    }
    if with_time:
        out["time"] = order.time
        out["updateTime"] = order.update_time
        out["isWorking"] = order.working
    out["workingTime"] = order.working_time
    out["origQuoteOrderQty"] = fmt8(order.orig_quote_qty)
    out["selfTradePreventionMode"] = "EXPIRE_MAKER"
    return out


def spot_new_order(order: Order, resp_type: str) -> dict[str, Any]:
    ack = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "transactTime": order.time,
    }
    if resp_type == "ACK":
        return ack
    full = spot_order(order, with_time=False)
    if not order.is_stop:
        full.pop("stopPrice")
    full.pop("icebergQty")
    out = {**ack, **{k: v for k, v in full.items() if k not in ack}}
    if resp_type == "FULL":
        out["fills"] = [
            {
                "price": fmt8(t.price),
                "qty": fmt8(t.qty),
                "commission": fmt8(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.id,
            }
            for t in order.fills
        ]
    return out


def spot_cancel(order: Order, cancel_id: str) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": cancel_id,
        "transactTime": order.update_time,
        "price": fmt8(order.price),
        "origQty": fmt8(order.orig_qty),
        "executedQty": fmt8(order.executed_qty),
        "cummulativeQuoteQty": fmt8(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        **({"stopPrice": fmt8(order.stop_price)} if order.is_stop else {}),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def spot_order_list(
    lst: OrderList, legs: list[Order], reports: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A spot order list (Binance "Query Order list"); placing and cancelling add the legs'
    ``orderReports`` (new-order shapes, resp. cancel shapes)."""
    out: dict[str, Any] = {
        "orderListId": lst.order_list_id,
        "contingencyType": "OCO",
        "listStatusType": lst.status,
        "listOrderStatus": lst.order_status,
        "listClientOrderId": lst.client_id,
        "transactionTime": lst.update_time,
        "symbol": lst.symbol,
        "orders": [
            {"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
            for o in legs
        ],
    }
    if reports is not None:
        out["orderReports"] = reports
    return out


def spot_list_cancel(engine: Engine, lst: OrderList, cancel_id: str) -> dict[str, Any]:
    """A cancelled list: both legs' cancel shapes under the one cancel id (Binance's example
    gives both reports the request's clientOrderId)."""
    legs = engine.list_legs(lst)
    return spot_order_list(lst, legs, [spot_cancel(o, cancel_id) for o in legs])


def futures_order(order: Order, *, with_time: bool = True, ack: bool = False) -> dict[str, Any]:
    executed = ZERO if ack else order.executed_qty
    cum_quote = ZERO if ack else order.cum_quote
    avg = ZERO if ack or not order.executed_qty else order.avg_price
    pdp, qdp = order.price_dp, order.qty_dp
    # fixed decimals as in ccxt's recorded USDⓈ-M responses: "price": "110001.00",
    # "origQty": "0.200", "cumQuote": "0.00000", "avgPrice": "0.00", "stopPrice": "0.00"
    out: dict[str, Any] = {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": "NEW" if ack else order.status,
        "clientOrderId": order.client_order_id,
        "price": f"{order.price:.{pdp}f}",
        "avgPrice": fmt(avg) if avg else f"{ZERO:.{pdp}f}",
        "origQty": f"{order.orig_qty:.{qdp}f}",
        "executedQty": f"{executed:.{qdp}f}",
        "cumQty": f"{executed:.{qdp}f}",
        "cumQuote": f"{cum_quote:.5f}",
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": f"{ZERO:.{pdp}f}",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "updateTime": order.update_time,
    }
    if with_time:
        out["time"] = order.time
    return out


def spot_trade(t: Trade) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "id": t.id,
        "orderId": t.order_id,
        "orderListId": t.order_list_id,
        "price": fmt8(t.price),
        "qty": fmt8(t.qty),
        "quoteQty": fmt8(t.quote_qty),
        "commission": fmt8(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time,
        "isBuyer": t.side == "BUY",
        "isMaker": t.is_maker,
        "isBestMatch": True,
    }


def futures_trade(t: Trade) -> dict[str, Any]:
    return {
        "buyer": t.side == "BUY",
        "commission": fmt(t.commission),
        "commissionAsset": t.commission_asset,
        "id": t.id,
        "maker": t.is_maker,
        "orderId": t.order_id,
        "price": fmt(t.price),
        "qty": fmt(t.qty),
        "quoteQty": fmt(t.quote_qty),
        "realizedPnl": fmt(t.realized_pnl),
        "side": t.side,
        "positionSide": "BOTH",
        "symbol": t.symbol,
        "time": t.time,
    }


def income_json(row: Income) -> dict[str, Any]:
    """A GET /fapi/v1/income row (Binance's "Get Income History" example: ``tranId`` a
    number, ``tradeId`` "" unless a trade made the row, ``info`` the income type)."""
    return {
        "symbol": row.symbol,
        "incomeType": row.income_type,
        "income": f"{row.income:.8f}",
        "asset": row.asset,
        "info": row.income_type,
        "time": row.time,
        "tranId": row.tran_id,
        "tradeId": row.trade_id,
    }


def kline_row(kind: MarketKind, c: Candle, step: int) -> list[Any]:
    n = _num
    return [
        c.open_time,
        n(kind, c.open),
        n(kind, c.high),
        n(kind, c.low),
        n(kind, c.close),
        n(kind, c.volume),
        c.open_time + step - 1,
        n(kind, c.quote_volume),
        c.trades,
        n(kind, ZERO),
        n(kind, ZERO),
        "0",
    ]


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


def _int_param(params: Params, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit():
        raise E.illegal(name)
    return int(raw)


def h_ping(ctx: RequestContext) -> Any:
    return {}


def h_time(ctx: RequestContext) -> Any:
    return {"serverTime": ctx.server_time}


def h_exchange_info(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)
    specs = list(engine.symbols.values())
    wanted: list[str] = []
    if ctx.params.get("symbol"):
        wanted = [ctx.params["symbol"]]
    elif ctx.params.get("symbols"):
        wanted = json.loads(ctx.params["symbols"])
    if wanted and kind == "spot":
        specs = [engine.spec(s) for s in wanted]
    if kind == "spot":
        return spot_exchange_info(engine, ctx.server_time, specs)
    return futures_exchange_info(ctx.server_time, specs)


def h_klines(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)
    p = ctx.params
    interval = p.get("interval")
    if not interval:
        raise E.mandatory("interval")
    limit = _int_param(p, "limit", 500) or 500
    limit = min(limit, 1000 if kind == "spot" else 1500)
    if not p.get("symbol"):
        raise E.mandatory("symbol")
    candles = engine.klines(
        p["symbol"], interval, _int_param(p, "startTime"), _int_param(p, "endTime"), limit
    )
    step = INTERVAL_MS[interval]
    return [kline_row(kind, c, step) for c in candles]


def _ticker_24h(ctx: RequestContext, kind: MarketKind, symbol: str) -> dict[str, Any]:
    engine = ctx.state.engine(kind)
    engine.spec(symbol)
    last = engine.price(symbol)
    since = ctx.server_time - 86_400_000
    window = [c for c in engine.candles[symbol] if c.open_time >= since]
    open_ = window[0].open if window else last
    high = max([c.high for c in window] + [last])
    low = min([c.low for c in window] + [last])
    volume = sum((c.volume for c in window), ZERO)
    quote_volume = sum((c.quote_volume for c in window), ZERO)
    count = sum(c.trades for c in window)
    change = last - open_
    pct = (change / open_ * 100).quantize(Decimal("0.001")) if open_ else ZERO
    n = _num
    out: dict[str, Any] = {
        "symbol": symbol,
        "priceChange": n(kind, change),
        "priceChangePercent": f"{pct:.3f}",
        "weightedAvgPrice": n(kind, quote_volume / volume if volume else last),
    }
    if kind == "spot":
        out["prevClosePrice"] = n(kind, open_)
    out["lastPrice"] = n(kind, last)
    out["lastQty"] = n(kind, ZERO)
    if kind == "spot":
        out.update(
            {
                "bidPrice": n(kind, last),
                "bidQty": n(kind, Decimal(10)),
                "askPrice": n(kind, last + engine.symbols[symbol].tick_size),
                "askQty": n(kind, Decimal(10)),
            }
        )
    out.update(
        {
            "openPrice": n(kind, open_),
            "highPrice": n(kind, high),
            "lowPrice": n(kind, low),
            "volume": n(kind, volume),
            "quoteVolume": n(kind, quote_volume),
            "openTime": since,
            "closeTime": ctx.server_time,
            "firstId": 1 if count else -1,
            "lastId": count if count else -1,
            "count": count,
        }
    )
    return out


def h_ticker_24h(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)
    if ctx.params.get("symbol"):
        return _ticker_24h(ctx, kind, ctx.params["symbol"])
    if ctx.params.get("symbols"):
        return [_ticker_24h(ctx, kind, s) for s in json.loads(ctx.params["symbols"])]
    return [_ticker_24h(ctx, kind, s) for s in engine.symbols]


def h_ticker_price(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)

    def one(sym: str) -> dict[str, Any]:
        engine.spec(sym)
        out: dict[str, Any] = {"symbol": sym, "price": _num(kind, engine.price(sym))}
        if kind == "usdm":
            out["time"] = ctx.server_time
        return out

    if ctx.params.get("symbol"):
        return one(ctx.params["symbol"])
    if ctx.params.get("symbols"):
        return [one(s) for s in json.loads(ctx.params["symbols"])]
    return [one(s) for s in engine.symbols]


def h_book_ticker(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)

    def one(sym: str) -> dict[str, Any]:
        spec = engine.spec(sym)
        last = engine.price(sym)
        out: dict[str, Any] = {
            "symbol": sym,
            "bidPrice": _num(kind, last),
            "bidQty": _num(kind, Decimal(10)),
            "askPrice": _num(kind, last + spec.tick_size),
            "askQty": _num(kind, Decimal(10)),
        }
        if kind == "usdm":
            out["time"] = ctx.server_time
        return out

    if ctx.params.get("symbol"):
        return one(ctx.params["symbol"])
    return [one(s) for s in engine.symbols]


def h_depth(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)
    spec = engine.spec(ctx.params.get("symbol"))
    limit = _int_param(ctx.params, "limit", 100) or 100
    last = engine.price(spec.symbol)
    levels = min(limit, 20)
    bids = [[_num(kind, last - i * spec.tick_size), _num(kind, Decimal(10))] for i in range(levels)]
    asks = [
        [_num(kind, last + (i + 1) * spec.tick_size), _num(kind, Decimal(10))]
        for i in range(levels)
    ]
    out: dict[str, Any] = {"lastUpdateId": ctx.server_time}
    if kind == "usdm":
        out.update({"E": ctx.server_time, "T": ctx.server_time})
    out.update({"bids": bids, "asks": asks})
    return out


def h_premium_index(ctx: RequestContext) -> Any:
    engine = ctx.state.usdm
    funding = ctx.state.funding

    def one(sym: str) -> dict[str, Any]:
        px = fmt(engine.price(sym))
        return {
            "symbol": sym,
            "markPrice": px,
            "indexPrice": px,
            "estimatedSettlePrice": px,
            # the rate the next funding instant pays (set_funding_rate)
            "lastFundingRate": f"{funding.rate(sym):.8f}",
            "interestRate": "0.00010000",
            "nextFundingTime": funding.next_time(ctx.server_time),
            "time": ctx.server_time,
        }

    if ctx.params.get("symbol"):
        engine.spec(ctx.params["symbol"])
        return one(ctx.params["symbol"])
    return [one(s) for s in engine.symbols]


def _acct(ctx: RequestContext) -> Account:
    assert ctx.account is not None
    return ctx.account


def h_spot_account(ctx: RequestContext) -> Any:
    acct = _acct(ctx)
    assets = sorted(set(acct.spot_free) | set(acct.spot_locked))
    balances = [
        {
            "asset": a,
            "free": fmt8(acct.spot_free.get(a, ZERO)),
            "locked": fmt8(acct.spot_locked.get(a, ZERO)),
        }
        for a in assets
    ]
    if ctx.params.get("omitZeroBalances", "false") == "true":
        balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt8(acct.spot_maker_fee),
            "taker": fmt8(acct.spot_taker_fee),
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": acct.update_time,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 354937868,
    }


def h_new_order(ctx: RequestContext, kind: MarketKind, fault: Fault | None) -> Any:
    engine = ctx.state.engine(kind)
    fraction = dec(fault.params.get("fraction", "0.5")) if fault is not None else None
    order = engine.new_order(_acct(ctx), ctx.params, fill_fraction=fraction)
    resp_type = ctx.params.get("newOrderRespType") or (
        "FULL" if kind == "spot" and order.type in ("MARKET", "LIMIT") else "ACK"
    )
    if kind == "spot":
        return spot_new_order(order, resp_type)
    return futures_order(order, with_time=False, ack=resp_type == "ACK")


def h_get_order(ctx: RequestContext, kind: MarketKind) -> Any:
    order = ctx.state.engine(kind).find_order(_acct(ctx), ctx.params)
    return spot_order(order) if kind == "spot" else futures_order(order)


def h_cancel_order(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)
    if kind == "usdm":
        return futures_order(engine.cancel_order(_acct(ctx), ctx.params), with_time=False)
    order, lst = engine.cancel_with_list(_acct(ctx), ctx.params)
    cancel_id = ctx.params.get("newClientOrderId") or f"cancel{order.order_id}"
    return _spot_cancel_answer(engine, order, lst, cancel_id)


def _spot_cancel_answer(
    engine: Engine, order: Order, lst: OrderList | None, cancel_id: str
) -> dict[str, Any]:
    """What cancelling a spot order answers: its cancel shape, or, when it was a leg of an
    executing OCO list (which the cancel ended whole), the list's cancel shape. Binance's
    REST page for DELETE /api/v3/order shows only the single shape; its WebSocket API
    (order.cancel, same matching engine) documents the list answer "When an order list is
    canceled", and DELETE /api/v3/openOrders answers lists that way too: followed here."""
    if lst is not None:
        return spot_list_cancel(engine, lst, cancel_id)
    return spot_cancel(order, cancel_id)


def h_open_orders(ctx: RequestContext, kind: MarketKind) -> Any:
    orders = ctx.state.engine(kind).list_open(_acct(ctx), ctx.params.get("symbol"))
    return [spot_order(o) if kind == "spot" else futures_order(o) for o in orders]


def h_cancel_all(ctx: RequestContext, kind: MarketKind) -> Any:
    engine = ctx.state.engine(kind)
    orders = engine.cancel_all(_acct(ctx), ctx.params.get("symbol"))
    if kind == "spot":
        if not orders:
            raise BinanceError(E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER)
        return _spot_cancel_all_answer(engine, orders)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _spot_cancel_all_answer(engine: Engine, orders: list[Order]) -> list[dict[str, Any]]:
    """One entry per cancelled order, except that the legs of a list cancelled whole are one
    list-shaped entry (Binance's DELETE /api/v3/openOrders example)."""
    canceled = {o.order_id for o in orders}
    out: list[dict[str, Any]] = []
    shown: set[int] = set()
    for order in orders:
        lst = engine.order_lists.get(order.order_list_id)
        if lst is None or not all(oid in canceled for oid in lst.order_ids):
            out.append(spot_cancel(order, f"cancel{order.order_id}"))
        elif lst.order_list_id not in shown:
            shown.add(lst.order_list_id)
            out.append(spot_list_cancel(engine, lst, f"cancel{lst.order_list_id}"))
    return out


def h_all_orders(ctx: RequestContext, kind: MarketKind) -> Any:
    orders = ctx.state.engine(kind).list_all(_acct(ctx), ctx.params)
    return [spot_order(o) if kind == "spot" else futures_order(o) for o in orders]


def h_my_trades(ctx: RequestContext, kind: MarketKind) -> Any:
    trades = ctx.state.engine(kind).list_trades(_acct(ctx), ctx.params)
    return [spot_trade(t) if kind == "spot" else futures_trade(t) for t in trades]


def h_new_order_list(ctx: RequestContext, fault: Fault | None) -> Any:
    """POST /api/v3/orderList/oco: always the list shape; "Response format for
    ``orderReports`` is selected using the ``newOrderRespType`` parameter". The default is
    not documented: RESULT, the shape of every example (the deprecated endpoint's too),
    which carry no ``fills``."""
    engine = ctx.state.spot
    fraction = dec(fault.params.get("fraction", "0.5")) if fault is not None else None
    lst = engine.new_order_list(_acct(ctx), ctx.params, fill_fraction=fraction)
    resp_type = ctx.params.get("newOrderRespType") or "RESULT"
    legs = engine.list_legs(lst)
    return spot_order_list(lst, legs, [spot_new_order(o, resp_type) for o in legs])


def h_cancel_order_list(ctx: RequestContext) -> Any:
    engine = ctx.state.spot
    lst = engine.cancel_order_list(_acct(ctx), ctx.params)
    cancel_id = ctx.params.get("newClientOrderId") or f"cancel{lst.order_list_id}"
    return spot_list_cancel(engine, lst, cancel_id)


def h_get_order_list(ctx: RequestContext) -> Any:
    engine = ctx.state.spot
    lst = engine.find_order_list(_acct(ctx), ctx.params)
    return spot_order_list(lst, engine.list_legs(lst))


def h_order_lists(ctx: RequestContext, open_only: bool) -> Any:
    engine = ctx.state.spot
    lists = engine.list_order_lists(_acct(ctx), ctx.params, open_only)
    return [spot_order_list(lst, engine.list_legs(lst)) for lst in lists]


def _futures_asset(ctx: RequestContext, acct: Account, v3: bool) -> dict[str, Any]:
    tot = ctx.state.futures_totals(acct)
    return {
        "asset": "USDT",
        "walletBalance": fmt(tot["wallet"]),
        "unrealizedProfit": fmt(tot["upnl"]),
        "marginBalance": fmt(tot["margin_balance"]),
        "maintMargin": fmt(tot["maint"]),
        "initialMargin": fmt(tot["initial"]),
        "positionInitialMargin": fmt(tot["position_im"]),
        "openOrderInitialMargin": fmt(tot["order_im"]),
        "crossWalletBalance": fmt(tot["wallet"]),
        "crossUnPnl": fmt(tot["upnl"]),
        "availableBalance": fmt(tot["available"]),
        "maxWithdrawAmount": fmt(max(ZERO, tot["available"])),
        "marginAvailable": True,
        "updateTime": acct.update_time or 1,
    }


def h_futures_balance(ctx: RequestContext) -> Any:
    acct = _acct(ctx)
    tot = ctx.state.futures_totals(acct)
    return [
        {
            "accountAlias": "SgsR",
            "asset": "USDT",
            "balance": fmt(tot["wallet"]),
            "crossWalletBalance": fmt(tot["wallet"]),
            "crossUnPnl": fmt(tot["upnl"]),
            "availableBalance": fmt(tot["available"]),
            "maxWithdrawAmount": fmt(max(ZERO, tot["available"])),
            "marginAvailable": True,
            "updateTime": acct.update_time or 1,
        }
    ]


def _position_entry(ctx: RequestContext, acct: Account, symbol: str, v2: bool) -> dict[str, Any]:
    st = ctx.state
    pos = acct.positions.get(symbol)
    amount = pos.amount if pos else ZERO
    entry = pos.entry_price if pos else ZERO
    mark = st.usdm.prices[symbol]
    lev = st.leverage(acct, symbol)
    upnl = st.unrealized(acct, symbol)
    notional = amount * mark
    isolated = acct.margin_type.get(symbol, "CROSSED") == "ISOLATED"
    pos_im = st.position_margin(acct, symbol)
    iso_wallet = abs(amount) * entry / lev if isolated else ZERO
    iso_margin = iso_wallet + upnl if isolated else ZERO
    out: dict[str, Any] = {
        "symbol": symbol,
        "positionSide": "BOTH",
        "positionAmt": fmt(amount),
        "entryPrice": fmt(entry) if entry else "0.0",
        "breakEvenPrice": fmt(entry) if entry else "0.0",
        "markPrice": fmt(mark),
        "unRealizedProfit": fmt(upnl),
        "liquidationPrice": "0",
        "isolatedMargin": fmt(iso_margin),
        "notional": fmt(notional),
        "marginAsset": "USDT",
        "isolatedWallet": fmt(iso_wallet),
    }
    if v2:
        out.update(
            {
                "leverage": str(lev),
                "maxNotionalValue": "4000000",
                "marginType": "isolated" if isolated else "cross",
                "isAutoAddMargin": "false",
                "isolated": isolated,
                "adlQuantile": 0,
            }
        )
    else:
        out.update(
            {
                "initialMargin": fmt(pos_im + st.open_order_margin(acct, symbol)),
                "maintMargin": fmt(abs(notional) * Decimal("0.004")),
                "positionInitialMargin": fmt(pos_im),
                "openOrderInitialMargin": fmt(st.open_order_margin(acct, symbol)),
                "adl": 0,
                "bidNotional": "0",
                "askNotional": "0",
            }
        )
    out["updateTime"] = pos.update_time if pos else 0
    return out


def h_position_risk(ctx: RequestContext, v2: bool) -> Any:
    acct = _acct(ctx)
    engine = ctx.state.usdm
    symbols = (
        [engine.spec(ctx.params["symbol"]).symbol]
        if ctx.params.get("symbol")
        else list(engine.symbols)
    )
    out = []
    for sym in symbols:
        pos = acct.positions.get(sym)
        has_open = bool(engine.open_orders.get((acct.api_key, sym)))
        if not v2 and not has_open and (pos is None or pos.amount == 0):
            continue  # V3 only lists symbols with a position or open orders
        out.append(_position_entry(ctx, acct, sym, v2))
    return out


def h_futures_account(ctx: RequestContext, v3: bool) -> Any:
    acct = _acct(ctx)
    tot = ctx.state.futures_totals(acct)
    head: dict[str, Any] = {
        "totalInitialMargin": fmt(tot["initial"]),
        "totalMaintMargin": fmt(tot["maint"]),
        "totalWalletBalance": fmt(tot["wallet"]),
        "totalUnrealizedProfit": fmt(tot["upnl"]),
        "totalMarginBalance": fmt(tot["margin_balance"]),
        "totalPositionInitialMargin": fmt(tot["position_im"]),
        "totalOpenOrderInitialMargin": fmt(tot["order_im"]),
        "totalCrossWalletBalance": fmt(tot["wallet"]),
        "totalCrossUnPnl": fmt(tot["upnl"]),
        "availableBalance": fmt(tot["available"]),
        "maxWithdrawAmount": fmt(max(ZERO, tot["available"])),
    }
    if not v3:
        head = {
            "feeTier": 0,
            "feeBurn": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            **head,
        }
    positions = []
    for sym in ctx.state.usdm.symbols:
        pos = acct.positions.get(sym)
        if v3 and (pos is None or pos.amount == 0):
            continue
        entry = _position_entry(ctx, acct, sym, v2=not v3)
        item: dict[str, Any] = {
            "symbol": sym,
            "positionSide": "BOTH",
            "positionAmt": entry["positionAmt"],
            "unrealizedProfit": entry["unRealizedProfit"],
            "isolatedMargin": entry["isolatedMargin"],
            "notional": entry["notional"],
            "isolatedWallet": entry["isolatedWallet"],
            "initialMargin": fmt(ctx.state.position_margin(acct, sym)),
            "maintMargin": fmt(abs(Decimal(entry["notional"])) * Decimal("0.004")),
            "updateTime": entry["updateTime"],
        }
        if not v3:
            item.update(
                {
                    "leverage": entry["leverage"],
                    "entryPrice": entry["entryPrice"],
                    "breakEvenPrice": entry["breakEvenPrice"],
                    "maxNotional": "4000000",
                    "positionInitialMargin": fmt(ctx.state.position_margin(acct, sym)),
                    "openOrderInitialMargin": fmt(ctx.state.open_order_margin(acct, sym)),
                    "isolated": entry["isolated"],
                    "bidNotional": "0",
                    "askNotional": "0",
                }
            )
        positions.append(item)
    return {**head, "assets": [_futures_asset(ctx, acct, v3)], "positions": positions}


def h_income(ctx: RequestContext) -> Any:
    """GET /fapi/v1/income (USDⓈ-M "Get Income History"): symbol, incomeType, startTime and
    endTime (inclusive), page, limit (default 100, at most 1000)."""
    p = ctx.params
    limit = min(max(_int_param(p, "limit", 100) or 100, 1), 1000)
    page = _int_param(p, "page", 1)
    if page is None or page < 1:
        raise E.invalid("page")
    rows = ctx.state.income(
        _acct(ctx),
        p.get("symbol") or None,
        p.get("incomeType") or None,
        (_int_param(p, "startTime"), _int_param(p, "endTime")),
        limit,
        page,
    )
    return [income_json(r) for r in rows]


def h_funding_rate(ctx: RequestContext) -> Any:
    """GET /fapi/v1/fundingRate (USDⓈ-M "Get Funding Rate History", public): symbol (none:
    every symbol's), startTime and endTime (inclusive), limit (default 100, at most 1000),
    oldest first; a row is Binance's ``{symbol, fundingRate, fundingTime, markPrice}``."""
    p = ctx.params
    limit = min(max(_int_param(p, "limit", 100) or 100, 1), 1000)  # guessed: cut, not refused
    rows = ctx.state.funding_rate_history(
        p.get("symbol") or None, (_int_param(p, "startTime"), _int_param(p, "endTime")), limit
    )
    return [
        {
            "symbol": r.symbol,
            "fundingRate": f"{r.rate:.8f}",
            "fundingTime": r.at_ms,
            "markPrice": f"{r.mark:.8f}" if r.mark is not None else "",
        }
        for r in rows
    ]


def h_leverage(ctx: RequestContext) -> Any:
    acct = _acct(ctx)
    lev = ctx.state.set_leverage(acct, ctx.params.get("symbol"), ctx.params.get("leverage"))
    return {
        "leverage": lev,
        "maxNotionalValue": "4000000" if lev > 100 else "10000000",
        "symbol": ctx.params["symbol"],
    }


def h_margin_type(ctx: RequestContext) -> Any:
    ctx.state.set_margin_type(_acct(ctx), ctx.params.get("symbol"), ctx.params.get("marginType"))
    return {"code": 200, "msg": "success"}


def h_leverage_bracket(ctx: RequestContext) -> Any:
    engine = ctx.state.usdm

    def one(sym: str) -> dict[str, Any]:
        spec = engine.spec(sym)
        return {
            "symbol": sym,
            "notionalCoef": 1.0,
            "brackets": [
                {
                    "bracket": 1,
                    "initialLeverage": spec.max_leverage,
                    "notionalCap": 50000,
                    "notionalFloor": 0,
                    "maintMarginRatio": 0.004,
                    "cum": 0.0,
                },
                {
                    "bracket": 2,
                    "initialLeverage": 100,
                    "notionalCap": 600000,
                    "notionalFloor": 50000,
                    "maintMarginRatio": 0.005,
                    "cum": 50.0,
                },
                {
                    "bracket": 3,
                    "initialLeverage": 50,
                    "notionalCap": 3000000,
                    "notionalFloor": 600000,
                    "maintMarginRatio": 0.01,
                    "cum": 3050.0,
                },
            ],
        }

    if ctx.params.get("symbol"):
        return one(ctx.params["symbol"])
    return [one(s) for s in engine.symbols]


def h_dual_side(ctx: RequestContext) -> Any:
    return {"dualSidePosition": False}


def h_multi_assets(ctx: RequestContext) -> Any:
    return {"multiAssetsMargin": False}


def h_commission_rate(ctx: RequestContext) -> Any:
    acct = _acct(ctx)
    spec = ctx.state.usdm.spec(ctx.params.get("symbol"))
    return {
        "symbol": spec.symbol,
        "makerCommissionRate": fmt(acct.futures_maker_fee),
        "takerCommissionRate": fmt(acct.futures_taker_fee),
    }


def algo_order(algo: AlgoOrder, *, query: bool = False) -> dict[str, Any]:
    """USDⓈ-M conditional order, as in ccxt's recorded ``parse_order`` sample."""
    out: dict[str, Any] = {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": "BOTH",
        "timeInForce": algo.time_in_force,
        "quantity": fmt(algo.quantity),
        "algoStatus": algo.status,
        "triggerPrice": fmt(algo.trigger_price),
        "price": fmt(algo.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": algo.working_type,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": False,
        "reduceOnly": algo.reduce_only,
        "createTime": algo.create_time,
        "updateTime": algo.update_time,
        "triggerTime": algo.trigger_time,
        "goodTillDate": 0,
    }
    if query:
        out["actualOrderId"] = str(algo.actual_order_id or "")
    return out


def h_new_algo(ctx: RequestContext) -> Any:
    return algo_order(ctx.state.usdm.new_algo(_acct(ctx), ctx.params))


def h_get_algo(ctx: RequestContext) -> Any:
    return algo_order(ctx.state.usdm.find_algo(_acct(ctx), ctx.params), query=True)


def h_cancel_algo(ctx: RequestContext) -> Any:
    algo = ctx.state.usdm.cancel_algo(_acct(ctx), ctx.params)
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "code": "200",
        "msg": "success",
    }


def h_list_algo(ctx: RequestContext, open_only: bool) -> Any:
    algos = ctx.state.usdm.list_algo(_acct(ctx), ctx.params.get("symbol"), open_only)
    return [algo_order(a, query=True) for a in algos]


def h_cancel_all_algo(ctx: RequestContext) -> Any:
    engine = ctx.state.usdm
    acct = _acct(ctx)
    for algo in engine.list_algo(acct, engine.spec(ctx.params.get("symbol")).symbol, True):
        engine.cancel_algo(acct, {"algoId": str(algo.algo_id)})
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def h_open_order(ctx: RequestContext) -> Any:
    """GET /fapi/v1/openOrder: "Either orderId or origClientOrderId must be sent. If the
    queried order has been filled or cancelled, the error message "Order does not exist"
    will be returned."""
    order = ctx.state.usdm.find_order(_acct(ctx), ctx.params)
    if not order.is_open:
        raise BinanceError(E.NO_SUCH_ORDER, E.MSG_ORDER_NOT_EXIST)
    return futures_order(order)


def h_trade_fee(ctx: RequestContext) -> Any:
    """GET /sapi/v1/asset/tradeFee (spot trading fee per symbol)."""
    acct = _acct(ctx)
    engine = ctx.state.spot
    symbols = (
        [engine.spec(ctx.params["symbol"]).symbol] if ctx.params.get("symbol") else engine.symbols
    )
    return [
        {
            "symbol": sym,
            "makerCommission": fmt(acct.spot_maker_fee),
            "takerCommission": fmt(acct.spot_taker_fee),
        }
        for sym in symbols
    ]


def h_system_status(ctx: RequestContext) -> Any:
    return {"status": 0, "msg": "normal"}


def h_modify_order(ctx: RequestContext) -> Any:
    return futures_order(ctx.state.usdm.modify_order(_acct(ctx), ctx.params), with_time=False)


def h_cancel_replace(ctx: RequestContext) -> Any:
    """POST /api/v3/order/cancelReplace (spot "Cancel an Existing Order and Send a New
    Order"): cancel, then place; -2022 when the cancel fails (STOP_ON_FAILURE), -2021 when
    only the new order fails."""
    engine = ctx.state.spot
    acct = _acct(ctx)
    p = ctx.params
    mode = p.get("cancelReplaceMode")
    if not mode:
        raise E.mandatory("cancelReplaceMode")
    cancel_params = {"symbol": p.get("symbol", "")}
    if p.get("cancelOrderId"):
        cancel_params["orderId"] = p["cancelOrderId"]
    if p.get("cancelOrigClientOrderId"):
        cancel_params["origClientOrderId"] = p["cancelOrigClientOrderId"]
    cancel_resp: dict[str, Any]
    try:
        # a leg of an OCO list: "Like order.cancel, if you cancel an individual order from an
        # order list, the entire order list is canceled" (Binance, order.cancelReplace)
        canceled, lst = engine.cancel_with_list(acct, cancel_params)
        cancel_id = p.get("cancelNewClientOrderId") or "cancelreplace"
        cancel_resp = _spot_cancel_answer(engine, canceled, lst, cancel_id)
        cancel_ok = True
    except BinanceError as exc:
        cancel_resp, cancel_ok = exc.body(), False
    if not cancel_ok and mode == "STOP_ON_FAILURE":
        raise BinanceError(
            -2022,
            "Order cancel-replace failed.",
            data={
                "cancelResult": "FAILURE",
                "newOrderResult": "NOT_ATTEMPTED",
                "cancelResponse": cancel_resp,
                "newOrderResponse": None,
            },
        )
    new_params = {
        k: v
        for k, v in p.items()
        if not k.startswith("cancel") and k not in ("signature", "timestamp", "recvWindow")
    }
    try:
        order = engine.new_order(acct, new_params)
    except BinanceError as exc:
        raise BinanceError(
            -2021,
            "Order cancel-replace partially failed.",
            data={
                "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
                "newOrderResult": "FAILURE",
                "cancelResponse": cancel_resp,
                "newOrderResponse": exc.body(),
            },
        ) from exc
    resp_type = p.get("newOrderRespType") or "FULL"
    return {
        "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
        "newOrderResult": "SUCCESS",
        "cancelResponse": cancel_resp,
        "newOrderResponse": spot_new_order(order, resp_type),
    }


def h_symbol_config(ctx: RequestContext) -> Any:
    """GET /fapi/v1/symbolConfig (USDⓈ-M "Symbol Configuration")."""
    acct = _acct(ctx)
    engine = ctx.state.usdm
    symbols = (
        [engine.spec(ctx.params["symbol"]).symbol] if ctx.params.get("symbol") else engine.symbols
    )
    return [
        {
            "symbol": sym,
            "marginType": acct.margin_type.get(sym, "CROSSED"),
            "isAutoAddMargin": "false",
            "leverage": ctx.state.leverage(acct, sym),
            "maxNotionalValue": "4000000",
        }
        for sym in symbols
    ]


def _routes() -> dict[tuple[str, str], Route]:
    r: dict[tuple[str, str], Route] = {}

    def add(
        method: str, path: str, handler: Handler, signed: bool, kind: MarketKind, weight: int = 1
    ) -> None:
        r[(method, path)] = Route(handler, signed, kind, weight)

    for kind, prefix in (("spot", "/api/v3"), ("usdm", "/fapi/v1")):
        k: MarketKind = "spot" if kind == "spot" else "usdm"
        add("GET", f"{prefix}/ping", h_ping, False, k)
        add("GET", f"{prefix}/time", h_time, False, k)
        add("GET", f"{prefix}/exchangeInfo", partial(h_exchange_info, kind=k), False, k, 20)
        add("GET", f"{prefix}/klines", partial(h_klines, kind=k), False, k, 2)
        add("GET", f"{prefix}/ticker/24hr", partial(h_ticker_24h, kind=k), False, k, 2)
        add("GET", f"{prefix}/ticker/price", partial(h_ticker_price, kind=k), False, k, 2)
        add("GET", f"{prefix}/ticker/bookTicker", partial(h_book_ticker, kind=k), False, k, 2)
        add("GET", f"{prefix}/depth", partial(h_depth, kind=k), False, k, 5)
        add("GET", f"{prefix}/order", partial(h_get_order, kind=k), True, k, 4)
        add("DELETE", f"{prefix}/order", partial(h_cancel_order, kind=k), True, k)
        add("GET", f"{prefix}/openOrders", partial(h_open_orders, kind=k), True, k, 6)
        add("GET", f"{prefix}/allOrders", partial(h_all_orders, kind=k), True, k, 20)
        # POST order is special-cased (partial_fill fault), see dispatch
        add("POST", f"{prefix}/order", h_ping, True, k)
    add("GET", "/api/v3/ticker", partial(h_ticker_24h, kind="spot"), False, "spot", 4)
    add("GET", "/api/v3/account", h_spot_account, True, "spot", 20)
    add("GET", "/api/v3/myTrades", partial(h_my_trades, kind="spot"), True, "spot", 20)
    # spot order lists; POST orderList/oco is special-cased like POST order (partial_fill)
    add("POST", "/api/v3/orderList/oco", h_ping, True, "spot")
    add("DELETE", "/api/v3/orderList", h_cancel_order_list, True, "spot")
    add("GET", "/api/v3/orderList", h_get_order_list, True, "spot", 4)
    add("GET", "/api/v3/openOrderList", partial(h_order_lists, open_only=True), True, "spot", 6)
    add("GET", "/api/v3/allOrderList", partial(h_order_lists, open_only=False), True, "spot", 20)
    add("DELETE", "/api/v3/openOrders", partial(h_cancel_all, kind="spot"), True, "spot")
    add("GET", "/fapi/v1/premiumIndex", h_premium_index, False, "usdm")
    add("GET", "/fapi/v2/ticker/price", partial(h_ticker_price, kind="usdm"), False, "usdm")
    add("DELETE", "/fapi/v1/allOpenOrders", partial(h_cancel_all, kind="usdm"), True, "usdm")
    add("GET", "/fapi/v1/userTrades", partial(h_my_trades, kind="usdm"), True, "usdm", 5)
    add("GET", "/fapi/v1/income", h_income, True, "usdm", 30)
    add("GET", "/fapi/v1/fundingRate", h_funding_rate, False, "usdm")
    add("GET", "/fapi/v2/balance", h_futures_balance, True, "usdm", 5)
    add("GET", "/fapi/v3/balance", h_futures_balance, True, "usdm", 5)
    add("GET", "/fapi/v2/account", partial(h_futures_account, v3=False), True, "usdm", 5)
    add("GET", "/fapi/v3/account", partial(h_futures_account, v3=True), True, "usdm", 5)
    add("GET", "/fapi/v2/positionRisk", partial(h_position_risk, v2=True), True, "usdm", 5)
    add("GET", "/fapi/v3/positionRisk", partial(h_position_risk, v2=False), True, "usdm", 5)
    add("POST", "/fapi/v1/leverage", h_leverage, True, "usdm")
    add("POST", "/fapi/v1/marginType", h_margin_type, True, "usdm")
    add("GET", "/fapi/v1/leverageBracket", h_leverage_bracket, True, "usdm")
    add("GET", "/fapi/v1/positionSide/dual", h_dual_side, True, "usdm", 30)
    add("GET", "/fapi/v1/multiAssetsMargin", h_multi_assets, True, "usdm", 30)
    add("GET", "/fapi/v1/commissionRate", h_commission_rate, True, "usdm", 20)
    add("GET", "/fapi/v1/symbolConfig", h_symbol_config, True, "usdm", 5)
    add("GET", "/fapi/v1/openOrder", h_open_order, True, "usdm")
    add("PUT", "/fapi/v1/order", h_modify_order, True, "usdm")
    add("POST", "/api/v3/order/cancelReplace", h_cancel_replace, True, "spot")
    add("GET", "/sapi/v1/asset/tradeFee", h_trade_fee, True, "spot")
    add("GET", "/sapi/v1/system/status", h_system_status, False, "spot")
    add("POST", "/fapi/v1/algoOrder", h_new_algo, True, "usdm")
    add("GET", "/fapi/v1/algoOrder", h_get_algo, True, "usdm")
    add("DELETE", "/fapi/v1/algoOrder", h_cancel_algo, True, "usdm")
    add("GET", "/fapi/v1/openAlgoOrders", partial(h_list_algo, open_only=True), True, "usdm")
    add("GET", "/fapi/v1/allAlgoOrders", partial(h_list_algo, open_only=False), True, "usdm", 5)
    add("DELETE", "/fapi/v1/algoOpenOrders", h_cancel_all_algo, True, "usdm")
    add("POST", "/api/v3/order/test", h_ping, True, "spot")
    add("POST", "/fapi/v1/order/test", h_ping, True, "usdm")
    return r


ROUTES = _routes()


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------


def _reads_funding(method: str, path: str, params: Params) -> bool:
    """Whether a request reads funding payments (what the ``funding_unavailable`` fault hits):
    GET /fapi/v1/income without incomeType (every type) or with FUNDING_FEE."""
    if method != "GET" or path != "/fapi/v1/income":
        return False
    return params.get("incomeType", "") in ("", "FUNDING_FEE")


class FakeBinance(HttpFake[RequestRecord]):
    """The fake venue: state + faults + an HTTP server in a background thread."""

    venue = "binance"
    pre_fault_names = (*PRE_FAULTS, "ip_ban")

    def __init__(
        self,
        *,
        spot_symbols: Iterable[SymbolSpec] | None = None,
        futures_symbols: Iterable[SymbolSpec] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        default_account: bool = True,
    ) -> None:
        super().__init__(FaultInjector(), host, port)
        self.state = BinanceState(spot_symbols, futures_symbols)
        self.api_key = DEFAULT_API_KEY
        # When set, signed requests' timestamps are checked against this clock (ms) instead of
        # the venue's: a test replaying market time faster than real time keeps the bot's
        # signed requests (stamped with the real time) valid.
        self.signing_clock: Callable[[], int] | None = None
        self.secret = DEFAULT_SECRET
        if default_account:
            self.state.add_account(
                DEFAULT_API_KEY, DEFAULT_SECRET, DEFAULT_SPOT_BALANCES, DEFAULT_FUTURES_BALANCES
            )
        self._weight_minute = 0
        self._weight_used = 0

    # -- test controls ----------------------------------------------------------
    def _engines(self, market: Market) -> list[Engine]:
        if market == "both":
            return [self.state.spot, self.state.usdm]
        if market in ("spot",):
            return [self.state.spot]
        if market in ("usdm", "futures", "linear", "swap"):
            return [self.state.usdm]
        raise ValueError(f"unknown market {market!r}")

    def set_price(self, symbol: str, price: object, market: Market = "both") -> list[Trade]:
        """Move the last price of ``symbol``; resting limits that cross fill."""
        fills: list[Trade] = []
        with self.state.lock:
            for engine in self._engines(market):
                if symbol in engine.symbols:
                    fills += engine.set_price(symbol, dec(price))
        return fills

    def price(self, symbol: str, market: Market = "spot") -> Decimal:
        with self.state.lock:
            return self._engines(market)[0].prices[symbol]

    def load_path(self, symbol: str, prices: Iterable[object], market: Market = "both") -> None:
        """Queue a price path; ``advance()`` steps through it."""
        values = list(prices)
        with self.state.lock:
            for engine in self._engines(market):
                if symbol in engine.symbols:
                    engine.load_path(symbol, values)

    def load_csv(
        self, path: str | Path, symbol: str, market: Market = "both", history: int = 0
    ) -> int:
        """Queue OHLCV rows from a CSV for replay; the first ``history`` become past klines."""
        rows = read_ohlcv_csv(path)
        with self.state.lock:
            for engine in self._engines(market):
                if symbol in engine.symbols:
                    engine.load_candles(
                        symbol,
                        [
                            Candle(c.open_time, c.open, c.high, c.low, c.close, c.volume)
                            for c in rows
                        ],
                        history,
                    )
        return len(rows)

    def advance(self, symbol: str, steps: int = 1, market: Market = "both") -> list[Trade]:
        fills: list[Trade] = []
        with self.state.lock:
            for engine in self._engines(market):
                if symbol in engine.symbols:
                    fills += engine.advance(symbol, steps)
        return fills

    def add_account(
        self,
        api_key: str,
        secret: str,
        spot: dict[str, object] | None = None,
        futures: dict[str, object] | None = None,
        bnb_fees: bool = False,
    ) -> Account:
        return self.state.add_account(api_key, secret, spot, futures, bnb_fees)

    def account(self, api_key: str | None = None) -> Account:
        return self.state.accounts[api_key or self.api_key]

    def orders(self, market: Market = "spot", api_key: str | None = None) -> list[Order]:
        key = api_key or self.api_key
        with self.state.lock:
            engine = self._engines(market)[0]
            return [o for o in engine.orders.values() if o.account == key]

    def order_requests(self, market: Market = "spot") -> list[RequestRecord]:
        path = "/api/v3/order" if market == "spot" else "/fapi/v1/order"
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    # -- funding (USDⓈ-M) ---------------------------------------------------------
    def set_funding_rate(self, symbol: str, rate: object) -> None:
        """The rate ``symbol``'s positions pay at its next funding instants (premiumIndex's
        ``lastFundingRate``); 0 until set (nothing paid)."""
        with self.state.lock:
            self.state.set_funding_rate(symbol, dec(rate))

    def funding_rate(self, symbol: str) -> Decimal:
        with self.state.lock:
            return self.state.funding.rate(symbol)

    def next_funding_time(self) -> int:
        """The next funding instant after the venue's clock (premiumIndex's
        ``nextFundingTime``)."""
        with self.state.lock:
            return self.state.funding.next_time(self.state.clock.now_ms())

    def settle_funding(self) -> list[Income]:
        """Pay every funding instant the venue's clock passed since it was last observed
        (each request and price move does this too); the FUNDING_FEE rows made."""
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

    def funding_income(self, api_key: str | None = None) -> list[Income]:
        """The account's FUNDING_FEE rows, oldest first."""
        with self.state.lock:
            return list(self.account(api_key).income)

    def seed_funding_history(
        self, symbol: str, first_ms: int, rates: Iterable[object], mark: object | None = None
    ) -> list[int]:
        """List ``rates`` in GET /fapi/v1/fundingRate from ``first_ms`` (a funding instant),
        one a funding interval, all before the venue's clock; the instants (ms). Instants the
        clock passes are listed as they are paid, without this."""
        with self.state.lock:
            return self.state.seed_funding_history(symbol, first_ms, rates, mark)

    # -- HTTP -----------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        path = request.path
        query = request.query_string
        body = (await request.text()) if request.can_read_body else ""
        params: Params = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body, keep_blank_values=True))
        record = self.record(RequestRecord(method, path, params))
        route = ROUTES.get((method, path))
        if route is None:
            self.not_found(record)
            # Not a venue answer: a marker error (code -1 is not a Binance code) that ccxt
            # turns into a plain, non-retryable ExchangeError naming the missing endpoint.
            return json_response(
                {"code": -1, "msg": f"fake binance does not implement {method} {path}"},
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
        minute = server_time // 60_000
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0
        self._weight_used += route.weight
        headers = {
            "x-mbx-used-weight": str(self._weight_used),
            "x-mbx-used-weight-1m": str(self._weight_used),
        }
        try:
            with self.state.lock:
                # funding due at the venue's own time (not a clock_skew fault's) is paid first
                self.state.settle_funding()
                account: Account | None = None
                if route.signed:
                    key = signing.verify(
                        api_key=request.headers.get("X-MBX-APIKEY"),
                        secret_for=lambda k: (
                            self.state.accounts[k].secret if k in self.state.accounts else None
                        ),
                        query=query,
                        body=body,
                        params=params,
                        server_time_ms=signing_time,
                    )
                    account = self.state.accounts[key]
                ctx = RequestContext(self, method, path, params, account, server_time)
                if method == "POST" and path in ("/api/v3/order", "/fapi/v1/order"):
                    partial = self.faults.take(method, path, ("partial_fill",))
                    result = h_new_order(ctx, route.kind, partial)
                elif method == "POST" and path == "/api/v3/orderList/oco":
                    partial = self.faults.take(method, path, ("partial_fill",))
                    result = h_new_order_list(ctx, partial)
                elif method == "POST" and path.endswith("/order/test"):
                    self.state.engine(route.kind).new_order(_acct(ctx), params, dry_run=True)
                    result = {}
                else:
                    result = route.handler(ctx)
            response = json_response(result, headers=headers)
            record.status = 200
        except BinanceError as exc:
            record.status = exc.http_status
            response = json_response(exc.body(), status=exc.http_status, headers=headers)
        await self.apply_post_faults(request, record)
        return response

    def fault_response(self, fault: Fault) -> web.StreamResponse:
        p = fault.params
        if fault.name == "rate_limit":
            retry = int(p.get("retry_after", 1))
            return json_response(
                {
                    "code": E.TOO_MANY_REQUESTS,
                    "msg": "Too much request weight used; current limit is 6000 request "
                    "weight per 1 MINUTE. Please use WebSocket Streams for live "
                    "updates to avoid polling the API.",
                },
                status=429,
                headers={"Retry-After": str(retry)},
            )
        if fault.name == "ip_ban":
            retry = int(p.get("retry_after", 120))
            until = int(time.time() * 1000) + retry * 1000
            return json_response(
                {
                    "code": E.TOO_MANY_REQUESTS,
                    "msg": f"Way too much request weight used; IP banned until {until}. "
                    "Please use WebSocket Streams for live updates to avoid bans.",
                },
                status=418,
                headers={"Retry-After": str(retry)},
            )
        if fault.name in ("server_error", "funding_unavailable"):
            status = int(p.get("status", 503))
            if p.get("json_code") is not None:
                return json_response(
                    {
                        "code": int(p["json_code"]),
                        "msg": p.get(
                            "msg",
                            "Internal error; unable to process your request. Please try again.",
                        ),
                    },
                    status=status,
                )
            return html_5xx(status)
        if fault.name == "reject":
            return json_response(
                {
                    "code": int(p.get("code", E.UNKNOWN)),
                    "msg": str(
                        p.get("msg", "An unknown error occurred while processing the request.")
                    ),
                },
                status=int(p.get("status", 400)),
            )
        raise AssertionError(f"unhandled fault {fault.name}")  # pragma: no cover
