"""aiohttp server that speaks Kraken's spot REST API (``/0/public/*``, ``/0/private/*``).

:class:`FakeKraken` owns a :class:`~tests.venues.kraken.state.KrakenState`, a
:class:`~tests.venues.kraken.faults.FaultInjector` and (once started) an aiohttp server
on ``127.0.0.1`` served from a background thread with its own event loop, so sync and
async ccxt clients in the test thread can both reach it.

Every answer is Kraken's envelope ``{"error": [...], "result": ...}`` with HTTP 200,
refusals included; the shapes inside follow ccxt's recorded Kraken responses
(``ts/src/test/static/response/kraken.json``; samples in ``recorded/``) and, where
ccxt recorded none, Kraken's API reference examples.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.venues.http_fake import HttpFake, Params, flatten, json_response
from tests.venues.http_fake import RequestRecord as BaseRecord

from . import errors as E
from . import signing
from .errors import KrakenError
from .faults import Fault, FaultInjector
from .state import (
    INTERVALS,
    MAKER_FEE,
    TAKER_FEE,
    ZERO,
    Account,
    Asset,
    Candle,
    KrakenState,
    Order,
    Pair,
    Trade,
    dec,
    places,
)

DEFAULT_API_KEY = "fakeKrakenApiKey0000000000000000000000000000000000000001"
# Kraken's secrets are 64 random bytes, base64-encoded (88 characters)
DEFAULT_SECRET = base64.b64encode(bytes(range(7, 71))).decode()
DEFAULT_BALANCES: dict[str, object] = {"ZUSD": 100_000, "XXBT": 1, "XETH": 10}
DEFAULT_PRICES: dict[str, object] = {"XXBTZUSD": 50_000, "XETHZUSD": 3_000}

PUBLIC = "/0/public/"
PRIVATE = "/0/private/"
ADD_ORDER = PRIVATE + "AddOrder"

# Kraken's published fee schedule (starter tiers), as AssetPairs lists it: [volume, percent]
TAKER_TIERS = [[0, 0.26], [50000, 0.24], [100000, 0.22], [250000, 0.2], [500000, 0.18],
               [1000000, 0.16], [2500000, 0.14], [5000000, 0.12], [10000000, 0.1]]  # fmt: skip
MAKER_TIERS = [[0, 0.16], [50000, 0.14], [100000, 0.12], [250000, 0.1], [500000, 0.08],
               [1000000, 0.06], [2500000, 0.04], [5000000, 0.02], [10000000, 0]]  # fmt: skip


@dataclass
class RequestRecord(BaseRecord):
    error: str | None = None  # the first error string answered, if any


@dataclass
class Call:
    """One request as a handler sees it."""

    fake: FakeKraken
    params: Params
    account: Account | None
    server_ms: int
    partial: Decimal | None = None

    @property
    def state(self) -> KrakenState:
        return self.fake.state

    @property
    def acct(self) -> Account:
        assert self.account is not None
        return self.account


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------


def seconds(ms: int) -> float:
    return ms / 1000


def asset_info(a: Asset) -> dict[str, Any]:
    """Shape of Kraken's ``Assets`` entries (ccxt's ``fetch_currencies`` comment)."""
    return {
        "aclass": "currency",
        "altname": a.altname,
        "decimals": a.decimals,
        "display_decimals": a.display_decimals,
        "collateral_value": 1,
        "status": "enabled",
    }


def pair_info(p: Pair) -> dict[str, Any]:
    """Shape of Kraken's ``AssetPairs`` entries (API reference example; spot only, so
    ``leverage_buy``/``leverage_sell`` are empty)."""
    return {
        "altname": p.altname,
        "wsname": p.wsname,
        "aclass_base": "currency",
        "base": p.base,
        "aclass_quote": "currency",
        "quote": p.quote,
        "lot": "unit",
        "cost_decimals": p.cost_decimals,
        "pair_decimals": p.pair_decimals,
        "lot_decimals": p.lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": TAKER_TIERS,
        "fees_maker": MAKER_TIERS,
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": f"{p.ordermin:f}",
        "costmin": f"{p.costmin:f}",
        "tick_size": f"{p.tick_size:f}",
        "status": p.status,
    }


def ticker(st: KrakenState, pid: str) -> dict[str, Any]:
    """Shape of the recorded ``fetchTicker`` response (a/b/c/v/p/t/l/h/o)."""
    p = st.pairs[pid]
    last = st.prices.get(pid, ZERO)
    now = st.now
    midnight = now - now % 86_400_000
    day = [c for c in st.candles[pid] if c.open_time >= now - 86_400_000]
    today = [c for c in day if c.open_time >= midnight]

    def stats(rows: list[Candle]) -> tuple[Decimal, Decimal, int, Decimal, Decimal]:
        vol = sum((c.volume for c in rows), ZERO)
        turnover = sum((c.turnover for c in rows), ZERO)
        vwap = turnover / vol if vol else last
        high = max((c.high for c in rows), default=last)
        low = min((c.low for c in rows), default=last)
        return vol, vwap, sum(c.count for c in rows), low, high

    tv, tw, tc, tl, th = stats(today)
    dv, dw, dc, dl, dh = stats(day)
    px = p.pair_decimals
    return {
        "a": [places(last, px), "1", "1.000"],
        "b": [places(last - p.tick_size if last else ZERO, px), "1", "1.000"],
        "c": [places(last, px), places(ZERO, p.lot_decimals)],
        "v": [places(tv, p.lot_decimals), places(dv, p.lot_decimals)],
        "p": [places(tw, px + 4), places(dw, px + 4)],
        "t": [tc, dc],
        "l": [places(tl, px), places(dl, px)],
        "h": [places(th, px), places(dh, px)],
        "o": places(today[0].open if today else last, px),
    }


def ohlc_row(p: Pair, c: Candle) -> list[Any]:
    """``[time, open, high, low, close, vwap, volume, count]`` as in the recording."""
    px = p.pair_decimals
    return [
        c.open_time // 1000,
        places(c.open, px),
        places(c.high, px),
        places(c.low, px),
        places(c.close, px),
        places(c.vwap, px),
        places(c.volume, p.lot_decimals),
        c.count,
    ]


_SPOKEN = {"stop-loss": "stop loss", "take-profit": "take profit"}


def description(p: Pair, o: Order) -> str:
    """Kraken's order sentence, e.g. ``buy 0.10000000 XBTUSD @ limit 50000.0``."""
    head = f"{o.side} {places(o.vol, p.lot_decimals)} {p.altname} @ "
    px = p.pair_decimals
    if o.ordertype == "market":
        return head + "market"
    if o.ordertype == "limit":
        return head + f"limit {places(o.price, px)}"
    kind = o.ordertype.removesuffix("-limit")
    text = head + f"{_SPOKEN[kind]} {places(o.price, px)}"
    if o.ordertype.endswith("-limit"):
        text += f" -> limit {places(o.price2, px)}"
    return text


def order_row(st: KrakenState, o: Order, *, listing: str, trades: bool) -> dict[str, Any]:
    """An order as ``OpenOrders`` (``listing="open"``), ``ClosedOrders`` (``"closed"``) and
    ``QueryOrders`` (``"query"``) show it: the recorded rows' keys, plus ``cl_ord_id`` when
    the order has one, ``reason`` outside ``OpenOrders``, ``closetm`` once closed and
    ``trades`` when asked for and there are some."""
    p = st.pairs[o.pair]
    px, cx = p.pair_decimals, p.cost_decimals
    userref: int | None = o.userref
    if userref is None and o.cl_ord_id is None:
        userref = 0  # as recorded ("0"); some of ccxt's examples show null  # guessed
    row: dict[str, Any] = {"refid": None, "userref": userref}
    if o.cl_ord_id is not None:
        row["cl_ord_id"] = o.cl_ord_id
    row["status"] = o.status
    if listing != "open":
        row["reason"] = o.reason
    row["opentm"] = seconds(o.opentm)
    if o.closetm is not None and not o.is_open:
        row["closetm"] = seconds(o.closetm)
    row.update(
        {
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": p.altname,
                "type": o.side,
                "ordertype": o.ordertype,
                "price": places(o.price, px) if o.ordertype != "market" else "0",
                "price2": places(o.price2, px) if o.ordertype.endswith("-limit") else "0",
                "leverage": "none",
                "order": description(p, o),
                "close": "",
            },
            "vol": places(o.vol, p.lot_decimals),
            "vol_exec": places(o.vol_exec, p.lot_decimals),
            "cost": places(o.cost, cx),
            "fee": places(o.fee, cx),
            "price": places(o.avg_price, px),
            "stopprice": places(o.stopprice, px),
            "limitprice": places(o.limitprice, px),
            "misc": "",
            "oflags": o.oflags,
        }
    )
    if trades and o.trades:
        row["trades"] = list(o.trades)
    return row


def trade_row(st: KrakenState, t: Trade) -> dict[str, Any]:
    """A ``TradesHistory``/``QueryTrades`` row (ccxt's ``fetch_my_trades`` comment; spot,
    so no ``leverage``)."""  # guessed: leverage left out on spot
    p = st.pairs[t.pair]
    return {
        "ordertxid": t.order_txid,
        "postxid": t.postxid,
        "pair": p.id,
        "time": seconds(t.time),
        "type": t.side,
        "ordertype": t.ordertype,
        "price": places(t.price, p.pair_decimals),
        "cost": places(t.cost, p.cost_decimals),
        "fee": places(t.fee, p.cost_decimals),
        "vol": places(t.vol, p.lot_decimals),
        "margin": places(ZERO, p.cost_decimals),
        "misc": "",
        "trade_id": t.trade_id,
        "maker": t.maker,
    }


def rfc1123(ms: int) -> str:
    """Kraken's ``Time`` format: ``Sun,  7 Jun 20 04:07:53 +0000``."""
    t = time.gmtime(ms // 1000)
    return time.strftime("%a, ", t) + f"{t.tm_mday:>2}" + time.strftime(" %b %y %H:%M:%S +0000", t)


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


def _names(raw: str | None) -> list[str]:
    return [n for n in (raw or "").split(",") if n]


def h_time(c: Call) -> Any:
    return {"unixtime": c.server_ms // 1000, "rfc1123": rfc1123(c.server_ms)}


def h_system_status(c: Call) -> Any:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.server_ms // 1000))
    return {"status": "online", "timestamp": stamp}


def h_assets(c: Call) -> Any:
    wanted = _names(c.params.get("asset"))
    assets = c.state.assets
    by_alt = {a.altname: a for a in assets.values()}
    out: dict[str, Any] = {}
    for name in wanted or list(assets):
        a = assets.get(name) or by_alt.get(name)
        if a is None:
            raise KrakenError("EQuery:Unknown asset")
        out[a.id] = asset_info(a)
    return out


def h_asset_pairs(c: Call) -> Any:
    names = _names(c.params.get("pair"))
    pairs = [c.state.pair(n) for n in names] if names else list(c.state.pairs.values())
    return {p.id: pair_info(p) for p in pairs}


def h_ticker(c: Call) -> Any:
    names = _names(c.params.get("pair"))
    pairs = [c.state.pair(n) for n in names] if names else list(c.state.pairs.values())
    return {p.id: ticker(c.state, p.id) for p in pairs if p.id in c.state.prices}


def h_ohlc(c: Call) -> Any:
    p = c.state.pair(c.params.get("pair"))
    raw = c.params.get("interval") or "1"
    if not raw.isdigit() or int(raw) not in INTERVALS:
        raise KrakenError("EGeneral:Invalid arguments:interval")  # guessed
    interval = int(raw)
    since_raw = c.params.get("since")
    since = int(Decimal(since_raw)) if since_raw else None
    rows = c.state.ohlc(p.id, interval, since)
    # "last": the id to poll from for committed (closed) candles, i.e. the one before the
    # still-forming last row (as in the recording: last = forming row - interval)
    last = rows[-1].open_time // 1000 - interval * 60 if rows else since or 0
    return {p.id: [ohlc_row(p, r) for r in rows], "last": last}


def h_balance_ex(c: Call) -> Any:
    st, a = c.state, c.acct
    holds = st.holds(a)
    out: dict[str, Any] = {}
    for asset in sorted(set(a.balances) | set(holds)):
        digits = st.assets[asset].decimals if asset in st.assets else 8
        out[asset] = {
            "balance": places(a.balances.get(asset, ZERO), digits),
            "credit": places(ZERO, digits),
            "credit_used": places(ZERO, digits),
            "hold_trade": places(holds.get(asset, ZERO), digits),
        }
    return out


def h_balance(c: Call) -> Any:
    st, a = c.state, c.acct
    return {
        asset: places(v, st.assets[asset].decimals if asset in st.assets else 8)
        for asset, v in sorted(a.balances.items())
    }


def h_add_order(c: Call) -> Any:
    o = c.state.add_order(c.acct, c.params, c.partial)
    descr = {"order": description(c.state.pairs[o.pair], o)}
    if not o.txid:  # validate=true: checked, not placed
        return {"descr": descr}
    return {"descr": descr, "txid": [o.txid]}


def h_amend_order(c: Call) -> Any:
    _, amend_id = c.state.amend(c.acct, c.params)
    return {"amend_id": amend_id}


def h_cancel_order(c: Call) -> Any:
    return {"count": c.state.cancel(c.acct, c.params)}


def h_cancel_all(c: Call) -> Any:
    return {"count": c.state.cancel_all(c.acct)}


def _trades_flag(c: Call) -> bool:
    return (c.params.get("trades") or "").lower() == "true"


def h_open_orders(c: Call) -> Any:
    orders = c.state.open_orders(c.acct, c.params)
    wt = _trades_flag(c)
    return {"open": {o.txid: order_row(c.state, o, listing="open", trades=wt) for o in orders}}


def h_closed_orders(c: Call) -> Any:
    orders, count = c.state.closed_orders(c.acct, c.params)
    wt = _trades_flag(c)
    out: dict[str, Any] = {
        "closed": {o.txid: order_row(c.state, o, listing="closed", trades=wt) for o in orders}
    }
    if (c.params.get("without_count") or "").lower() != "true":
        out["count"] = count
    return out


def h_query_orders(c: Call) -> Any:
    orders = c.state.query_orders(c.acct, c.params)
    wt = _trades_flag(c)
    return {o.txid: order_row(c.state, o, listing="query", trades=wt) for o in orders}


def h_trades_history(c: Call) -> Any:
    rows, count = c.state.trades_history(c.acct, c.params)
    return {"trades": {t.txid: trade_row(c.state, t) for t in rows}, "count": count}


def h_query_trades(c: Call) -> Any:
    return {t.txid: trade_row(c.state, t) for t in c.state.query_trades(c.acct, c.params)}


Handler = Callable[[Call], Any]

PUBLIC_ROUTES: dict[str, Handler] = {
    "Time": h_time,
    "SystemStatus": h_system_status,
    "Assets": h_assets,
    "AssetPairs": h_asset_pairs,
    "Ticker": h_ticker,
    "OHLC": h_ohlc,
}
PRIVATE_ROUTES: dict[str, Handler] = {
    "Balance": h_balance,
    "BalanceEx": h_balance_ex,
    "AddOrder": h_add_order,
    "AmendOrder": h_amend_order,
    "CancelOrder": h_cancel_order,
    "CancelAll": h_cancel_all,
    "OpenOrders": h_open_orders,
    "ClosedOrders": h_closed_orders,
    "QueryOrders": h_query_orders,
    "TradesHistory": h_trades_history,
    "QueryTrades": h_query_trades,
}


def route(method: str, path: str) -> tuple[Handler, bool] | None:
    """(handler, private) for a served endpoint: public GET (POST also works on Kraken),
    private POST only."""
    if path.startswith(PUBLIC) and method in ("GET", "POST"):
        h = PUBLIC_ROUTES.get(path[len(PUBLIC) :])
        return (h, False) if h is not None else None
    if path.startswith(PRIVATE) and method == "POST":
        h = PRIVATE_ROUTES.get(path[len(PRIVATE) :])
        return (h, True) if h is not None else None
    return None


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------


def envelope(result: Any = None, error: str | None = None) -> dict[str, Any]:
    if error is not None:
        return {"error": [error], "result": {}}
    return {"error": [], "result": result}


def cloudflare_page(status: int) -> web.Response:
    titles = {500: "Internal Server Error", 502: "Bad gateway", 503: "Service unavailable",
              504: "Gateway time-out", 520: "Web server is returning an unknown error"}  # fmt: skip
    title = f"{status}: {titles.get(status, 'Error')}"
    return web.Response(
        status=status,
        content_type="text/html",
        text=f"<!DOCTYPE html><html><head><title>api.kraken.com | {title}</title></head>"
        f"<body><h1>{title}</h1><p>cloudflare</p></body></html>",
    )


def _form(body: str, content_type: str) -> tuple[Params, bool]:
    """The body's fields (flattened to strings) and whether it parsed."""
    if not body:
        return {}, True
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return {}, False
        if not isinstance(data, dict):
            return {}, False
        return {k: flatten(v) for k, v in data.items() if v is not None}, True
    return dict(parse_qsl(body, keep_blank_values=True)), True


class FakeKraken(HttpFake[RequestRecord]):
    """The fake venue: state + faults + an HTTP server in a background thread."""

    venue = "kraken"

    def __init__(
        self,
        *,
        pairs: Iterable[Pair] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        default_account: bool = True,
        balances: dict[str, object] | None = None,
        prices: dict[str, object] | None = None,
    ) -> None:
        super().__init__(FaultInjector(), host, port)
        self.state = KrakenState(pairs)
        self.nonces = signing.NonceBook()
        self.api_key, self.secret = DEFAULT_API_KEY, DEFAULT_SECRET
        if default_account:
            self.state.add_account(self.api_key, self.secret, balances or DEFAULT_BALANCES)
        for pair, price in (prices or DEFAULT_PRICES).items():
            if pair in self.state.by_name:
                self.state.set_price(pair, price)

    # -- test controls ----------------------------------------------------------------------
    def set_price(self, pair: str, price: object, volume: object = 0) -> list[Trade]:
        """Move the last price of ``pair`` (id or altname); crossed limits fill, triggers fire."""
        with self.state.lock:
            return self.state.set_price(pair, price, volume)

    def price(self, pair: str) -> Decimal:
        with self.state.lock:
            return self.state.price(pair)

    def fill_partials(self, pair: str | None = None) -> list[Trade]:
        """Fill now what the ``partial_fill`` fault left open (see KrakenState.fill_partials)."""
        with self.state.lock:
            return self.state.fill_partials(pair)

    def load_path(self, pair: str, prices: Iterable[object]) -> None:
        with self.state.lock:
            self.state.load_path(pair, prices)

    def load_candles(self, pair: str, rows: Iterable[Candle], history: int = 0) -> None:
        with self.state.lock:
            self.state.load_candles(pair, rows, history)

    def advance(self, pair: str, steps: int = 1) -> list[Trade]:
        with self.state.lock:
            return self.state.advance(pair, steps)

    def add_account(self, api_key: str, secret: str, balances: dict[str, object]) -> Account:
        with self.state.lock:
            return self.state.add_account(api_key, secret, balances)

    def account(self, api_key: str | None = None) -> Account:
        return self.state.accounts[api_key or self.api_key]

    def balance(self, asset: str, api_key: str | None = None) -> Decimal:
        with self.state.lock:
            return self.account(api_key).balances.get(asset, ZERO)

    def orders(self, api_key: str | None = None) -> list[Order]:
        key = api_key or self.api_key
        with self.state.lock:
            return [o for o in self.state.orders.values() if o.account == key]

    def order_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.path == ADD_ORDER]

    # -- HTTP ---------------------------------------------------------------------------------
    def _secret_of(self, api_key: str) -> str | None:
        acct = self.state.accounts.get(api_key)
        return acct.secret if acct is not None else None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        body = (await request.text()) if request.can_read_body else ""
        form, parsed = _form(body, request.content_type)
        params: Params = {**dict(parse_qsl(request.query_string, keep_blank_values=True)), **form}
        record = self.record(RequestRecord(method, path, params))
        found = route(method, path)
        if found is None:
            self.not_found(record)
            # Not a venue answer: a marker ccxt raises as a plain ExchangeError naming it
            # (no ccxt exact/broad key matches "EFake:").
            marker = f"EFake:fake kraken does not serve {method} {path}"
            return json_response(envelope(error=marker), 404)
        handler, private = found
        skew, answered = await self.apply_pre_faults(request, record)
        if answered is not None:
            return answered
        try:
            with self.state.lock:
                account = None
                if private:
                    if not parsed:
                        raise KrakenError(E.INVALID_ARGUMENTS)  # guessed: a body not JSON
                    key = signing.verify(
                        request.headers,
                        self._secret_of,
                        path,
                        params.get("nonce", ""),
                        body,
                        self.nonces,
                    )
                    account = self.state.accounts[key]
                call = Call(self, params, account, self.state.now + skew)
                if path == ADD_ORDER:
                    pf = self.faults.take(method, path, ("partial_fill",))
                    if pf is not None:
                        call.partial = dec(pf.params.get("fraction", 0.5))
                data = envelope(handler(call))
        except KrakenError as exc:
            record.error = exc.message
            data = envelope(error=exc.message)
        record.status = 200
        response = json_response(data)
        await self.apply_post_faults(request, record)
        return response

    def fault_response(self, fault: Fault) -> web.StreamResponse:
        p = fault.params
        if fault.name == "rate_limit":
            if int(p.get("status", 200)) == 429:
                return web.Response(status=429, text="Too Many Requests", content_type="text/plain")
            return json_response(envelope(error=str(p.get("error", E.RATE_LIMIT))))
        if fault.name == "server_error":
            if p.get("error") is not None:
                return json_response(envelope(error=str(p["error"])), int(p.get("status", 200)))
            return cloudflare_page(int(p.get("status", 503)))
        if fault.name == "reject":
            return json_response(envelope(error=str(p.get("error", E.INVALID_ARGUMENTS))))
        raise AssertionError(f"unhandled fault {fault.name}")  # pragma: no cover


def read_ohlcv_csv(path: str | Path) -> list[Candle]:
    """Rows ``open_time_ms,open,high,low,close,volume`` (header optional)."""
    out = []
    for line in Path(path).read_text().splitlines():
        cells = [x.strip() for x in line.split(",")]
        if len(cells) >= 6 and cells[0].isdigit():
            o, h, low, c, v = (dec(x) for x in cells[1:6])
            out.append(Candle(int(cells[0]), o, h, low, c, v, v * c, 1 if v else 0))
    return out


__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "MAKER_FEE",
    "TAKER_FEE",
    "FakeKraken",
    "RequestRecord",
    "read_ohlcv_csv",
]
