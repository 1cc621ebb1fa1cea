"""Pure, synchronous model of a Kraken spot account: pairs, balances, orders, matching.

Nothing here knows about HTTP: ``server.py`` verifies the signature, parses the form,
calls :class:`KrakenState` and renders the returned :class:`Order` / :class:`Trade`
objects in Kraken's JSON shapes.

Matching model (one price path per pair, moved by the test):

* ``set_price(pair, p)`` moves the last price.  Resting buy limits with ``price >= p``
  and sell limits with ``price <= p`` fill at their limit price as maker.  Trigger
  orders fire when the price reaches them: ``stop-loss`` sells at ``p <= trigger`` and
  buys at ``p >= trigger``, ``take-profit`` sells at ``p >= trigger`` and buys at
  ``p <= trigger``; the plain kinds then fill at the price (taker), the ``-limit``
  kinds become a limit at ``price2``.
* Market orders (and limits marketable on arrival) fill at once at the last price as
  taker.
* Balances: a fill moves base and quote; the fee (:data:`TAKER_FEE` / :data:`MAKER_FEE`,
  Kraken's first tier) is paid in the quote currency (``oflags`` ``fciq``).  An open
  order holds what it may spend (``hold_trade``): a buy its remaining volume times its
  limit (or trigger) price plus the taker fee, a sell its remaining volume.  An order
  whose hold exceeds the free balance is refused ("EOrder:Insufficient funds").
* ``cl_ord_id`` is unique among the account's OPEN orders only (Kraken's documented
  rule): once an order is filled or cancelled its id may be used again.

Thread safety: the server thread and the ``FakeKraken`` helpers hold ``state.lock``
(re-entrant) around every call.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from tests.venues.price_path import Clock, PricePath

from . import errors as E
from .errors import KrakenError

D = Decimal
ZERO = D(0)
TAKER_FEE = D("0.0026")  # Kraken's first fee tier (ccxt's describe() says the same)
MAKER_FEE = D("0.0016")

ORDER_TYPES = (
    "market",
    "limit",
    "stop-loss",
    "take-profit",
    "stop-loss-limit",
    "take-profit-limit",
)
TRIGGER_TYPES = ORDER_TYPES[2:]
# Kraken's OHLC intervals, in minutes
INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
OHLC_MAX_ROWS = 720
PAGE = 50  # ClosedOrders / TradesHistory page size

_NUMBER = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_HEX = "[0-9a-fA-F]"
_LONG_UUID = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")
_SHORT_UUID = re.compile(r"^[0-9a-fA-F]{32}$")
_FREE_TEXT = re.compile(r"^[\x21-\x7e]{1,18}$")  # printable ASCII, no blank  # guessed charset
_USERREF = re.compile(r"^-?[0-9]{1,10}$")
_TXID = re.compile(r"^[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def places(value: Decimal, digits: int) -> str:
    """``value`` with exactly ``digits`` decimals, as Kraken prints amounts and prices."""
    return f"{value.quantize(D(1).scaleb(-digits), rounding=ROUND_DOWN):f}"


def valid_cl_ord_id(value: str) -> bool:
    """Kraken's three ``cl_ord_id`` formats: long UUID (36 characters with hyphens),
    short UUID (32 hex digits) or free text of at most 18 characters."""
    return bool(_LONG_UUID.match(value) or _SHORT_UUID.match(value) or _FREE_TEXT.match(value))


def kraken_id(prefix: str, n: int) -> str:
    """A deterministic id in Kraken's ``OXXXXX-XXXXX-XXXXXX`` form (``T`` for trades)."""
    mixed = (n * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (32**16)
    chars = [_ID_ALPHABET[(mixed >> (5 * i)) & 31] for i in range(16)]
    body = prefix + "".join(chars)
    return f"{body[:6]}-{body[6:11]}-{body[11:17]}"


@dataclass
class Asset:
    id: str  # XXBT
    altname: str  # XBT
    decimals: int
    display_decimals: int


@dataclass
class Pair:
    """One spot pair with Kraken's AssetPairs fields (values: Kraken's live XBT/USD and
    ETH/USD pairs as far as we know them; the minimums are marked guessed)."""

    id: str  # XXBTZUSD
    altname: str  # XBTUSD
    wsname: str  # XBT/USD
    base: str  # XXBT
    quote: str  # ZUSD
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal
    tick_size: Decimal
    status: str = "online"

    @property
    def lot(self) -> Decimal:
        return D(1).scaleb(-self.lot_decimals)


def default_assets() -> list[Asset]:
    return [
        Asset("XXBT", "XBT", 10, 5),
        Asset("XETH", "ETH", 10, 5),
        Asset("ZUSD", "USD", 4, 2),
    ]


def default_pairs() -> list[Pair]:
    return [
        Pair(
            "XXBTZUSD", "XBTUSD", "XBT/USD", "XXBT", "ZUSD",
            pair_decimals=1, lot_decimals=8, cost_decimals=5,
            ordermin=D("0.00005"),  # guessed (the order of magnitude of the live value)
            costmin=D("0.5"),  # guessed
            tick_size=D("0.1"),
        ),
        Pair(
            "XETHZUSD", "ETHUSD", "ETH/USD", "XETH", "ZUSD",
            pair_decimals=2, lot_decimals=8, cost_decimals=5,
            ordermin=D("0.002"),  # guessed
            costmin=D("0.5"),  # guessed
            tick_size=D("0.01"),
        ),
    ]  # fmt: skip


@dataclass
class Candle:
    open_time: int  # ms
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    turnover: Decimal = ZERO
    count: int = 0

    @property
    def vwap(self) -> Decimal:
        return self.turnover / self.volume if self.volume else self.close


@dataclass
class Trade:
    txid: str
    seq: int
    trade_id: int
    account: str
    order_txid: str
    postxid: str
    pair: str
    side: str
    ordertype: str
    price: Decimal
    vol: Decimal
    fee: Decimal
    maker: bool
    time: int  # ms

    @property
    def cost(self) -> Decimal:
        return self.price * self.vol


@dataclass
class Order:
    txid: str
    seq: int
    account: str
    pair: str
    side: str  # buy / sell
    ordertype: str  # one of ORDER_TYPES
    vol: Decimal
    price: Decimal  # Kraken's "price": the limit price, or the trigger price of trigger kinds
    price2: Decimal  # the limit price of the -limit trigger kinds
    opentm: int  # ms
    cl_ord_id: str | None = None
    userref: int | None = None
    oflags: str = "fciq"
    timeinforce: str = "GTC"
    status: str = "open"
    reason: str | None = None
    closetm: int | None = None
    vol_exec: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    trades: list[str] = field(default_factory=list)
    triggered: bool = False
    stopprice: Decimal = ZERO  # the trigger price once triggered
    limitprice: Decimal = ZERO  # the limit of a triggered -limit order
    amended: bool = False
    fill_cap: Decimal | None = None  # partial_fill fault: volume allowed to fill now

    @property
    def is_open(self) -> bool:
        return self.status in ("pending", "open")

    @property
    def is_trigger(self) -> bool:
        return self.ordertype in TRIGGER_TYPES

    @property
    def waiting(self) -> bool:
        """A trigger order that has not fired yet."""
        return self.is_trigger and not self.triggered

    @property
    def limit(self) -> Decimal | None:
        """The limit the order rests at (None: market, or not triggered yet)."""
        if self.ordertype == "limit":
            return self.price
        if self.ordertype.endswith("-limit") and self.triggered:
            return self.price2
        return None

    @property
    def remaining(self) -> Decimal:
        return self.vol - self.vol_exec

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.vol_exec if self.vol_exec else ZERO


@dataclass
class Account:
    api_key: str
    secret: str
    balances: dict[str, Decimal] = field(default_factory=dict)


def parse_amount(raw: str | None, error: str) -> Decimal:
    if raw is None or not _NUMBER.match(raw):
        raise KrakenError(error)
    try:
        return Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - the regex guards this
        raise KrakenError(error) from exc


def parse_userref(raw: str | None) -> int | None:
    """``userref`` is a signed 32-bit integer; anything else is refused."""
    if raw is None or raw == "":
        return None
    if not _USERREF.match(raw) or not -(2**31) <= int(raw) < 2**31:
        raise KrakenError(E.INVALID_USERREF)
    return int(raw)


def flag(raw: str | None) -> bool:
    return (raw or "").lower() == "true"


class KrakenState(PricePath[Candle, Trade]):
    """Pairs, accounts, orders, trades and matching for Kraken spot."""

    candle_type = Candle

    def __init__(
        self, pairs: Iterable[Pair] | None = None, assets: Iterable[Asset] | None = None
    ) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.assets: dict[str, Asset] = {a.id: a for a in (assets or default_assets())}
        items = list(pairs) if pairs is not None else default_pairs()
        self.pairs: dict[str, Pair] = {p.id: p for p in items}
        self.by_name: dict[str, Pair] = {}
        for p in items:
            self.by_name[p.id] = self.by_name[p.altname] = p
        self.prices: dict[str, Decimal] = {}
        self.candles: dict[str, list[Candle]] = {p: [] for p in self.pairs}
        self.path: dict[str, list[Candle]] = {p: [] for p in self.pairs}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.open: dict[str, dict[str, Order]] = {}  # account -> txid -> order (insertion order)
        self.closed: dict[str, list[Order]] = {}  # account -> orders in closing order
        self.trades: dict[str, Trade] = {}
        self.trades_by_account: dict[str, list[Trade]] = {}
        self.partials: dict[str, Order] = {}  # partially filled by the fault, rest pending
        self._order_n = itertools.count(1)
        self._trade_n = itertools.count(1)
        self._seq = itertools.count(1)
        self._trade_ids = itertools.count(60_000_001)
        self._amend_n = itertools.count(1)

    # -- helpers ---------------------------------------------------------------
    def pair(self, name: str | None) -> Pair:
        if not name:
            raise KrakenError(E.INVALID_ARGUMENTS)  # guessed: AddOrder without pair
        found = self.by_name.get(name)
        if found is None:
            raise KrakenError(E.UNKNOWN_PAIR)
        return found

    def price(self, pair: str) -> Decimal:
        p = self.pair(pair)
        last = self.prices.get(p.id)
        if last is None:
            raise KrakenError(E.UNAVAILABLE)  # fake-only: set_price first
        return last

    def add_account(self, api_key: str, secret: str, balances: dict[str, object]) -> Account:
        acct = Account(api_key, secret, {a: dec(v) for a, v in balances.items()})
        self.accounts[api_key] = acct
        self.open[api_key] = {}
        self.closed[api_key] = []
        self.trades_by_account[api_key] = []
        return acct

    def hold_of(self, order: Order) -> tuple[str, Decimal]:
        """(asset, amount) an open order holds: a buy its remaining cost plus taker fee at
        its limit/trigger price (market: the last price), a sell its remaining volume."""
        pair = self.pairs[order.pair]
        if order.side == "sell":
            return pair.base, order.remaining
        ref = order.limit
        if ref is None:
            ref = order.price if order.waiting else self.prices.get(order.pair, ZERO)
        return pair.quote, order.remaining * ref * (1 + TAKER_FEE)  # guessed: fee held too

    def holds(self, acct: Account) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for order in self.open[acct.api_key].values():
            asset, amount = self.hold_of(order)
            out[asset] = out.get(asset, ZERO) + amount
        return out

    def free(self, acct: Account, asset: str) -> Decimal:
        return acct.balances.get(asset, ZERO) - self.holds(acct).get(asset, ZERO)

    # -- price path --------------------------------------------------------------
    def set_price(self, pair: str, price: object, volume: object = 0) -> list[Trade]:
        p = dec(price)
        return self.apply_candle(pair, Candle(self.now, p, p, p, p, dec(volume)))

    def apply_candle(self, pair: str, candle: Candle) -> list[Trade]:
        pid = self.pair(pair).id
        self._record_candle(pid, candle)
        fills: list[Trade] = []
        for p in (candle.low, candle.high, candle.close):
            self.prices[pid] = p
            fills += self._trigger(pid, p)
            fills += self._cross(pid, p)
        fills += self.fill_partials(pid)
        return fills

    def _record_candle(self, pid: str, candle: Candle) -> None:
        series = self.candles[pid]
        minute = candle.open_time - candle.open_time % 60_000
        turnover = candle.volume * candle.close
        count = 1 if candle.volume else 0
        if series and series[-1].open_time == minute:
            last = series[-1]
            last.high = max(last.high, candle.high)
            last.low = min(last.low, candle.low)
            last.close = candle.close
            last.volume += candle.volume
            last.turnover += turnover
            last.count += count
            return
        series.append(
            Candle(minute, candle.open, candle.high, candle.low, candle.close,
                   candle.volume, turnover, count)
        )  # fmt: skip
        if len(series) > 1 and series[-2].open_time > minute:
            series.sort(key=lambda c: c.open_time)

    def _market(self, name: str) -> str:
        return self.pair(name).id

    def ohlc(self, pair: str, interval: int, since_s: int | None) -> list[Candle]:
        """Oldest first, like Kraken; the last row is the still-forming candle."""
        if interval not in INTERVALS:
            raise KrakenError("EGeneral:Invalid arguments:interval")  # guessed
        pid = self.pair(pair).id
        step = interval * 60_000
        buckets: dict[int, Candle] = {}
        for c in self.candles[pid]:
            key = c.open_time - c.open_time % step
            b = buckets.get(key)
            if b is None:
                buckets[key] = Candle(key, c.open, c.high, c.low, c.close, c.volume,
                                      c.turnover, c.count)  # fmt: skip
                continue
            b.high, b.low = max(b.high, c.high), min(b.low, c.low)
            b.close = c.close
            b.volume += c.volume
            b.turnover += c.turnover
            b.count += c.count
        rows = [b for _, b in sorted(buckets.items())]
        if since_s is not None:
            rows = [b for b in rows if b.open_time // 1000 > since_s]  # guessed: exclusive
        return rows[-OHLC_MAX_ROWS:]

    # -- orders: placement -----------------------------------------------------------
    def _check_price(self, pair: Pair, raw: str | None, error: str) -> Decimal:
        if raw is not None and (raw[:1] in ("+", "-") or raw.endswith("%")):
            raise KrakenError(error)  # fake-only: relative prices are not modelled
        price = parse_amount(raw, error)
        if price <= 0:
            raise KrakenError(error)
        if price % pair.tick_size != 0:
            raise KrakenError(E.TICK_SIZE)
        return price

    def _check_volume(self, pair: Pair, raw: str | None) -> Decimal:
        vol = parse_amount(raw, E.INVALID_VOLUME)
        if vol <= 0 or vol % pair.lot != 0:
            raise KrakenError(E.INVALID_VOLUME)  # guessed: more decimals than lot_decimals
        if vol < pair.ordermin:
            raise KrakenError(E.ORDER_MINIMUM)
        return vol

    def open_by_cl_ord_id(self, acct: Account, cl_ord_id: str) -> Order | None:
        # compared as given: a UUID in long and in short form are two ids  # guessed
        for order in self.open[acct.api_key].values():
            if order.cl_ord_id == cl_ord_id:
                return order
        return None

    def add_order(self, acct: Account, p: dict[str, str], partial: Decimal | None = None) -> Order:
        """``AddOrder``; with ``validate=true`` the order is checked and not kept."""
        pair = self.pair(p.get("pair"))
        side = p.get("type", "")
        if side not in ("buy", "sell"):
            raise KrakenError(E.INVALID_TYPE)
        otype = p.get("ordertype", "")
        if otype not in ORDER_TYPES:
            raise KrakenError(E.INVALID_ORDERTYPE)  # trailing/iceberg/settle: not modelled
        oflags = [f for f in (p.get("oflags") or "").split(",") if f]
        if "viqc" in oflags:
            raise KrakenError("EGeneral:Invalid arguments:viqc")  # fake-only: not modelled
        vol = self._check_volume(pair, p.get("volume"))
        price = price2 = ZERO
        if otype != "market":
            price = self._check_price(pair, p.get("price"), E.INVALID_PRICE)
        if otype.endswith("-limit"):
            price2 = self._check_price(pair, p.get("price2"), "EGeneral:Invalid arguments:price2")
        cl_ord_id = p.get("cl_ord_id") or None
        userref = parse_userref(p.get("userref"))
        if cl_ord_id is not None and userref is not None:
            raise KrakenError(E.INVALID_ARGUMENTS)  # documented: exclusive; wording guessed
        if cl_ord_id is not None and not valid_cl_ord_id(cl_ord_id):
            raise KrakenError(E.INVALID_CL_ORD_ID)
        if flag(p.get("reduce_only")):
            raise KrakenError(E.NO_POSITION)  # spot: there is never a margin position
        if (p.get("leverage") or "none") != "none":
            raise KrakenError("EOrder:Cannot open position")  # the fake account has no margin
        tif = (p.get("timeinforce") or "GTC").upper()
        if tif not in ("GTC", "IOC"):
            raise KrakenError("EGeneral:Invalid arguments:timeinforce")  # fake-only: GTD
        last = self.price(pair.id)
        ref = price2 if otype.endswith("-limit") else price if otype != "market" else last
        if vol * ref < pair.costmin:
            raise KrakenError(E.COST_MINIMUM)
        if cl_ord_id is not None and self.open_by_cl_ord_id(acct, cl_ord_id) is not None:
            raise KrakenError(E.DUPLICATE_ORDER)
        if "fcib" not in oflags and "fciq" not in oflags:
            oflags.append("fciq")
        order = Order(
            txid="",
            seq=next(self._seq),
            account=acct.api_key,
            pair=pair.id,
            side=side,
            ordertype=otype,
            vol=vol,
            price=price,
            price2=price2,
            opentm=self.now,
            cl_ord_id=cl_ord_id,
            userref=userref,
            oflags=",".join(oflags),
            timeinforce=tif,
        )
        asset, need = self.hold_of(order)
        if need > self.free(acct, asset):
            raise KrakenError(E.INSUFFICIENT_FUNDS)
        if flag(p.get("validate")):
            return order
        order.txid = kraken_id("O", next(self._order_n))
        if partial is not None:
            cap = (vol * partial).quantize(pair.lot, rounding=ROUND_DOWN)
            order.fill_cap = max(cap, pair.lot)
        self.orders[order.txid] = order
        self.open[acct.api_key][order.txid] = order
        if order.is_trigger:
            self._maybe_trigger(order, last)  # guessed: already crossed -> fires at once
        else:
            self._arrive(order, last)
        return order

    def _marketable(self, order: Order, last: Decimal) -> bool:
        limit = order.limit
        if limit is None:
            return True
        return limit >= last if order.side == "buy" else limit <= last

    def _arrive(self, order: Order, last: Decimal) -> list[Trade]:
        """An active order meets the market (new, triggered or amended): take or rest."""
        if not self._marketable(order, last):
            if order.timeinforce == "IOC":
                self._close(order, "canceled", "Insufficient liquidity")  # guessed reason
            order.fill_cap = None
            return []
        if "post" in order.oflags.split(","):
            self._close(order, "canceled", "Post only order")  # guessed reason
            return []
        want = order.remaining
        if order.fill_cap is not None:
            want = min(want, order.fill_cap)
        limit = order.limit
        price = (
            last if limit is None else min(limit, last) if order.side == "buy" else max(limit, last)
        )
        fills = self._fill(order, want, price, maker=False)
        if order.is_open:
            if order.fill_cap is not None:
                order.fill_cap = None
                self.partials[order.txid] = order
            elif order.timeinforce == "IOC":
                self._close(order, "canceled", "Insufficient liquidity")  # guessed reason
        return fills

    def _fires(self, order: Order, last: Decimal) -> bool:
        stop = order.ordertype.startswith("stop-loss")
        rising = (order.side == "buy") == stop
        return last >= order.price if rising else last <= order.price

    def _maybe_trigger(self, order: Order, last: Decimal) -> list[Trade]:
        if not order.waiting or not self._fires(order, last):
            return []
        order.triggered = True
        order.stopprice = order.price
        if order.ordertype.endswith("-limit"):
            order.limitprice = order.price2
        return self._arrive(order, last)

    def _trigger(self, pid: str, last: Decimal) -> list[Trade]:
        fills: list[Trade] = []
        waiting = [o for o in self._open_on(pid) if o.waiting]
        for order in sorted(waiting, key=lambda o: o.seq):
            fills += self._maybe_trigger(order, last)
        return fills

    def _cross(self, pid: str, last: Decimal) -> list[Trade]:
        fills: list[Trade] = []
        resting = [o for o in self._open_on(pid) if o.limit is not None]
        for order in sorted(resting, key=lambda o: o.seq):
            limit = order.limit
            assert limit is not None
            if order.txid in self.partials or not order.is_open:
                continue
            if (order.side == "buy" and limit >= last) or (order.side == "sell" and limit <= last):
                fills += self._fill(order, order.remaining, limit, maker=True)
        return fills

    def fill_partials(self, pair: str | None = None) -> list[Trade]:
        """The rest of orders the ``partial_fill`` fault left open: market orders fill at
        the last price, limits at their limit if still marketable (else they rest)."""
        fills: list[Trade] = []
        for order in list(self.partials.values()):
            if pair is not None and order.pair != self.pair(pair).id:
                continue
            del self.partials[order.txid]
            last = self.prices[order.pair]
            limit = order.limit
            if not order.is_open:
                continue
            if limit is None:
                fills += self._fill(order, order.remaining, last, maker=False)
            elif self._marketable(order, last):
                fills += self._fill(order, order.remaining, limit, maker=True)
        return fills

    def _open_on(self, pid: str) -> list[Order]:
        return [o for acct in self.open.values() for o in acct.values() if o.pair == pid]

    def _fill(self, order: Order, qty: Decimal, price: Decimal, maker: bool) -> list[Trade]:
        if qty <= 0:
            return []
        pair = self.pairs[order.pair]
        acct = self.accounts[order.account]
        cost = qty * price
        fee = cost * (MAKER_FEE if maker else TAKER_FEE)
        bal = acct.balances
        if order.side == "buy":
            bal[pair.base] = bal.get(pair.base, ZERO) + qty
            bal[pair.quote] = bal.get(pair.quote, ZERO) - cost - fee
        else:
            bal[pair.base] = bal.get(pair.base, ZERO) - qty
            bal[pair.quote] = bal.get(pair.quote, ZERO) + cost - fee
        order.vol_exec += qty
        order.cost += cost
        order.fee += fee
        n = next(self._trade_n)
        trade = Trade(
            txid=kraken_id("T", n),
            seq=next(self._seq),
            trade_id=next(self._trade_ids),
            account=acct.api_key,
            order_txid=order.txid,
            postxid=kraken_id("T", 1_000_000 + n),  # guessed: Kraken's position tx id
            pair=pair.id,
            side=order.side,
            ordertype=order.ordertype,
            price=price,
            vol=qty,
            fee=fee,
            maker=maker,
            time=self.now,
        )
        self.trades[trade.txid] = trade
        self.trades_by_account[acct.api_key].append(trade)
        order.trades.append(trade.txid)
        if order.remaining <= 0:
            self._close(order, "closed", None)
        return [trade]

    def _close(self, order: Order, status: str, reason: str | None) -> None:
        order.status = status
        order.reason = reason
        order.closetm = self.now
        self.open[order.account].pop(order.txid, None)
        self.partials.pop(order.txid, None)
        self.closed[order.account].append(order)

    # -- cancel / amend ---------------------------------------------------------------
    def _find_open(self, acct: Account, txid: str | None, cl_ord_id: str | None) -> Order:
        if cl_ord_id:
            order = self.open_by_cl_ord_id(acct, cl_ord_id)
        elif txid:
            order = self.open[acct.api_key].get(txid)
        else:
            raise KrakenError(E.INVALID_ARGUMENTS)  # guessed: neither id given
        if order is None:  # unknown, or finished: only open orders qualify  # guessed
            raise KrakenError(E.UNKNOWN_ORDER)
        return order

    def cancel(self, acct: Account, p: dict[str, str]) -> int:
        """``CancelOrder`` by ``txid`` (an integer there is a ``userref``: every open order
        with it) or ``cl_ord_id``; only open orders can be cancelled."""
        txid, cl = p.get("txid"), p.get("cl_ord_id")
        if txid and not cl and _USERREF.match(txid):
            ref = int(txid)
            hits = [o for o in self.open[acct.api_key].values() if o.userref == ref]
            if not hits:
                raise KrakenError(E.UNKNOWN_ORDER)
            for order in hits:
                self._close(order, "canceled", "User requested")
            return len(hits)
        order = self._find_open(acct, txid, cl)
        self._close(order, "canceled", "User requested")
        return 1

    def cancel_all(self, acct: Account) -> int:
        orders = list(self.open[acct.api_key].values())
        for order in orders:
            self._close(order, "canceled", "User requested")
        return len(orders)

    def amend(self, acct: Account, p: dict[str, str]) -> tuple[Order, str]:
        """``AmendOrder``: quantity, limit and trigger price change in place; the order
        keeps its ``txid`` and ``cl_ord_id``.  Returns the order and a new ``amend_id``."""
        order = self._find_open(acct, p.get("txid"), p.get("cl_ord_id"))
        pair = self.pairs[order.pair]
        qty_raw, limit_raw, trig_raw = (
            p.get("order_qty"),
            p.get("limit_price"),
            p.get("trigger_price"),
        )
        new_qty = self._check_volume(pair, qty_raw) if qty_raw else None
        new_limit = trig = None
        if limit_raw:
            if order.ordertype not in ("limit", "stop-loss-limit", "take-profit-limit"):
                raise KrakenError(E.INVALID_ARGUMENTS)  # guessed: no limit to amend
            new_limit = self._check_price(pair, limit_raw, E.INVALID_PRICE)
        if trig_raw:
            if not order.waiting:
                raise KrakenError(E.INVALID_ARGUMENTS)  # guessed: no trigger to amend
            trig = self._check_price(pair, trig_raw, E.INVALID_PRICE)
        before = (order.vol, order.price, order.price2)
        asset, held = self.hold_of(order)
        if new_qty is not None:
            order.vol = new_qty
        if new_limit is not None:
            if order.ordertype == "limit":
                order.price = new_limit
            else:
                order.price2 = new_limit
                if order.triggered:
                    order.limitprice = new_limit
        if trig is not None:
            order.price = trig
        if order.remaining <= 0:
            # "If an amend request will reduce the order quantity below the existing filled
            # quantity, the remaining quantity will be cancelled."
            order.vol = max(order.vol, order.vol_exec)
            self._close(order, "canceled", "User requested")  # guessed status and reason
        else:
            _, need = self.hold_of(order)
            if need > held and self.free(acct, asset) < 0:
                order.vol, order.price, order.price2 = before
                raise KrakenError(E.INSUFFICIENT_FUNDS)
        order.amended = True
        amend_id = kraken_id("T", 500_000_000 + next(self._amend_n))  # amend ids look like this
        if order.is_open:
            last = self.prices[order.pair]
            if order.waiting:
                self._maybe_trigger(order, last)
            elif order.limit is not None and order.txid not in self.partials:
                self._arrive(order, last)
        return order, amend_id

    # -- queries ----------------------------------------------------------------------
    def _filtered(self, orders: Iterable[Order], p: dict[str, str]) -> list[Order]:
        userref = parse_userref(p.get("userref"))
        cl = p.get("cl_ord_id")
        return [
            o
            for o in orders
            if (userref is None or o.userref == userref) and (not cl or o.cl_ord_id == cl)
        ]

    def open_orders(self, acct: Account, p: dict[str, str]) -> list[Order]:
        """``OpenOrders`` (filters ``userref``, ``cl_ord_id``), newest first."""  # guessed
        return self._filtered(reversed(self.open[acct.api_key].values()), p)

    def closed_orders(self, acct: Account, p: dict[str, str]) -> tuple[list[Order], int]:
        """``ClosedOrders``: filters ``userref``, ``cl_ord_id``, ``start`` (exclusive) and
        ``end`` (inclusive) in seconds or as a txid, ``closetime`` (open/close/both) and
        ``ofs``; 50 a page, newest first.  Returns (page, count of all matches)."""
        orders = sorted(self.closed[acct.api_key], key=lambda o: (o.closetm or 0, o.seq))
        orders = self._filtered(reversed(orders), p)
        start, end = self._bound(p.get("start")), self._bound(p.get("end"))
        which = p.get("closetime") or "both"
        if which not in ("open", "close", "both"):
            raise KrakenError("EGeneral:Invalid arguments:closetime")  # guessed

        def within(ms: int | None) -> bool:
            if ms is None:
                return False
            return (start is None or ms > start) and (end is None or ms <= end)

        if start is not None or end is not None:
            orders = [
                o
                for o in orders
                if (which in ("open", "both") and within(o.opentm))
                or (which in ("close", "both") and within(o.closetm))
            ]
        ofs = self._offset(p.get("ofs"))
        return orders[ofs : ofs + PAGE], len(orders)

    def _bound(self, raw: str | None) -> int | None:
        """A ``start``/``end`` bound in ms: unix seconds, or a txid (its ``opentm``)."""
        if not raw:
            return None
        order = self.orders.get(raw)
        if order is not None:
            return order.opentm
        trade = self.trades.get(raw)
        if trade is not None:
            return trade.time
        try:
            return int(Decimal(raw) * 1000)
        except InvalidOperation as exc:
            raise KrakenError(E.INVALID_ARGUMENTS) from exc  # guessed wording

    def _offset(self, raw: str | None) -> int:
        if not raw:
            return 0
        if not raw.isdigit():
            raise KrakenError("EGeneral:Invalid arguments:ofs")  # guessed
        return int(raw)

    def query_orders(self, acct: Account, p: dict[str, str]) -> list[Order]:
        """``QueryOrders`` by ``txid`` (comma-separated, at most 50), optionally narrowed by
        ``userref``.  An unknown but well-formed txid is left out of the result."""  # guessed
        userref = parse_userref(p.get("userref"))
        ids = [t for t in (p.get("txid") or "").split(",") if t]
        if not ids or len(ids) > 50 or not all(_TXID.match(t) for t in ids):
            raise KrakenError(E.INVALID_ARGUMENTS)
        out = []
        for txid in ids:
            order = self.orders.get(txid)
            if order is None or order.account != acct.api_key:
                continue
            if userref is not None and order.userref != userref:
                continue
            out.append(order)
        return out

    def trades_history(self, acct: Account, p: dict[str, str]) -> tuple[list[Trade], int]:
        """``TradesHistory``: ``start`` (exclusive) / ``end`` (inclusive) / ``ofs``; 50 a
        page, newest first.  Returns (page, count of all matches)."""
        start, end = self._bound(p.get("start")), self._bound(p.get("end"))
        rows = [
            t
            for t in reversed(self.trades_by_account[acct.api_key])
            if (start is None or t.time > start) and (end is None or t.time <= end)
        ]
        ofs = self._offset(p.get("ofs"))
        return rows[ofs : ofs + PAGE], len(rows)

    def query_trades(self, acct: Account, p: dict[str, str]) -> list[Trade]:
        ids = [t for t in (p.get("txid") or "").split(",") if t]
        if not ids or len(ids) > 20 or not all(_TXID.match(t) for t in ids):
            raise KrakenError(E.INVALID_ARGUMENTS)
        return [
            self.trades[t]
            for t in ids
            if t in self.trades and self.trades[t].account == acct.api_key
        ]
