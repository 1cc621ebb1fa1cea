"""Pure, synchronous model of a Bybit v5 unified account on linear (USDT) perpetuals.

Nothing here knows about HTTP: ``server.py`` parses requests, calls
:class:`BybitState` and renders the returned :class:`Order` / :class:`Execution`
objects in Bybit's JSON shapes.

Matching model (one price path per symbol, moved by the test):

* ``set_price(symbol, p)`` moves the last price.  Resting Buy limits with
  ``price >= p`` and Sell limits with ``price <= p`` fill at their limit price as
  maker; conditional orders whose ``triggerPrice`` is crossed in their
  ``triggerDirection`` (1 = rises to, 2 = falls to) trigger and then execute.
* Market orders (and limits marketable on arrival) fill at once at the last price
  as taker.
* Margin (simplified, cross): initial margin = qty x price / leverage; an order
  whose margin exceeds the available balance is refused with 110007.
* TP/SL attached to an order (``takeProfit``/``stopLoss``) become full-position
  reduce-only conditional market orders when the order fills (``stopOrderType``
  ``TakeProfit``/``StopLoss``); they are deactivated once the position is flat.
* Funding: at each funding instant the venue's clock passes (``state.funding``, a
  :class:`~tests.venues.funding_schedule.FundingSchedule`: every 8 hours, 00:00/08:00/16:00
  UTC), every open position pays ``size × mark × rate`` (the mark is the last price): the
  wallet, the realised pnl and the position's ``cumRealisedPnl`` move by it and an
  execution of ``execType`` Funding is kept (``funding_executions``, apart from the fills).
  The clock is observed on every request and price move (``settle_funding``).

Thread safety: the server thread and the ``FakeBybit`` helpers hold ``state.lock``
(re-entrant) around every call.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from tests.venues.funding_rate_history import FundingRateLog, ListedRate
from tests.venues.funding_schedule import FundingSchedule, check_rate, funding_payment
from tests.venues.price_path import Clock, PricePath

from . import errors as E
from .errors import BybitError

D = Decimal
ZERO = D(0)
_D_0_1 = D("0.1")
_D_0_01 = D("0.01")
_D_0_001 = D("0.001")
_D_5 = D("5")
_D_MAX_PRICE = D("1999999.8")
_D_1190 = D("1190")
_D_119 = D("119")
_D_100 = D("100")
MAKER_FEE = D("0.0002")
TAKER_FEE = D("0.00055")
# the instruments' upperFundingRate / lowerFundingRate (Bybit's v5 docs example): a rate set
# by a test stays within them
FUNDING_RATE_BOUND = D("0.00375")

OPEN_STATUSES = ("New", "PartiallyFilled", "Untriggered")
_NUM_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_LINK_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,36}$")

# Bybit interval -> milliseconds ("M" is not served by the fake)
INTERVAL_MS: dict[str, int] = {
    "1": 60_000,
    "3": 180_000,
    "5": 300_000,
    "15": 900_000,
    "30": 1_800_000,
    "60": 3_600_000,
    "120": 7_200_000,
    "240": 14_400_000,
    "360": 21_600_000,
    "720": 43_200_000,
    "D": 86_400_000,
    "W": 604_800_000,
}


def dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def fmt(value: Decimal) -> str:
    """Plain decimal without exponent or trailing zeros, as Bybit prints most numbers."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def num(params: dict[str, str], name: str, required: bool = True) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise E.missing(name)
        return None
    if not _NUM_RE.match(raw):
        raise E.params(f"params error: {name} invalid")  # guessed wording
    try:
        return Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - regex guards this
        raise E.params(f"params error: {name} invalid") from exc


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


@dataclass
class Instrument:
    """One linear perpetual with Bybit's filters (values from Bybit's v5 docs example)."""

    symbol: str
    base: str
    quote: str = "USDT"
    tick_size: Decimal = _D_0_1
    min_price: Decimal = _D_0_1
    max_price: Decimal = _D_MAX_PRICE
    qty_step: Decimal = _D_0_001
    min_qty: Decimal = _D_0_001
    max_qty: Decimal = _D_1190
    max_mkt_qty: Decimal = _D_119
    min_notional: Decimal = _D_5
    max_leverage: Decimal = _D_100
    leverage_step: Decimal = _D_0_01
    price_scale: int = 2
    max_open_orders: int = 500  # Bybit: 500 active orders per symbol (linear)
    # A test's knob, off (0) as on Bybit: an amend's trigger price is held on this step
    # (nearest), so a test sees a venue hold another price than the one asked.
    trigger_step: Decimal = ZERO
    launch_time: int = 1_585_526_400_000


def default_instruments() -> list[Instrument]:
    return [
        Instrument("BTCUSDT", "BTC"),
        Instrument(
            "ETHUSDT",
            "ETH",
            tick_size=_D_0_01,
            min_price=_D_0_01,
            max_price=D("199999.98"),
            qty_step=_D_0_01,
            min_qty=_D_0_01,
            max_qty=D("7240"),  # guessed (order of magnitude of the live value)
            max_mkt_qty=D("724"),  # guessed
            max_leverage=D("100"),
            price_scale=2,
        ),
    ]


@dataclass
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    turnover: Decimal = ZERO


@dataclass
class Execution:
    exec_id: str
    seq: int
    account: str
    symbol: str
    order_id: str
    link_id: str
    side: str
    order_type: str
    stop_order_type: str
    order_qty: Decimal
    order_price: Decimal
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    is_maker: bool
    closed_size: Decimal
    leaves_qty: Decimal
    mark_price: Decimal
    time: int
    exec_type: str = "Trade"  # "Funding" for a funding payment
    create_type: str = "CreateByUser"  # "" on a funding execution (ccxt's sample)

    @property
    def value(self) -> Decimal:
        return self.price * self.qty


@dataclass
class Order:
    order_id: str
    link_id: str
    account: str
    symbol: str
    side: str  # "Buy" / "Sell"
    order_type: str  # "Market" / "Limit"
    qty: Decimal
    price: Decimal  # 0 for market
    time_in_force: str
    reduce_only: bool
    close_on_trigger: bool
    position_idx: int
    created: int
    updated: int
    seq: int
    status: str = "New"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    trigger_price: Decimal = ZERO
    trigger_direction: int = 0
    trigger_by: str = ""
    stop_order_type: str = ""
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tpsl_mode: str = ""
    last_price_on_created: Decimal = ZERO
    reject_reason: str = "EC_NoError"
    cancel_type: str = "UNKNOWN"
    create_type: str = "CreateByUser"
    fill_cap: Decimal | None = None  # partial_fill fault: quantity allowed to fill now
    im: Decimal = ZERO  # initial margin reserved while resting
    tpsl_done: bool = False

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if not self.is_open else self.qty - self.cum_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_conditional(self) -> bool:
        return self.trigger_direction != 0 and self.status == "Untriggered"

    @property
    def avg_price(self) -> Decimal:
        return self.cum_value / self.cum_qty if self.cum_qty else ZERO


@dataclass
class Position:
    size: Decimal = ZERO  # signed: > 0 long, < 0 short
    avg_price: Decimal = ZERO
    realised: Decimal = ZERO
    created: int = 0
    updated: int = 0
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO

    def apply(self, delta: Decimal, price: Decimal) -> tuple[Decimal, Decimal]:
        """Add ``delta`` at ``price``; returns (realised pnl, closed size)."""
        old = self.size
        new = old + delta
        if old == 0 or (old > 0) == (delta > 0):
            total = abs(old) + abs(delta)
            self.avg_price = (abs(old) * self.avg_price + abs(delta) * price) / total
            self.size = new
            return ZERO, ZERO
        closed = min(abs(old), abs(delta))
        pnl = (price - self.avg_price) * closed * (1 if old > 0 else -1)
        self.size = new
        if new == 0:
            self.avg_price = ZERO
        elif (new > 0) != (old > 0):
            self.avg_price = price  # flipped
        self.realised += pnl
        return pnl, closed


@dataclass
class Account:
    api_key: str
    secret: str
    user_id: int
    wallet: Decimal  # USDT wallet balance
    cum_realised: Decimal = ZERO
    margin_mode: str = "REGULAR_MARGIN"
    position_mode: dict[str, int] = field(default_factory=dict)  # symbol -> 0 / 3
    leverage: dict[str, Decimal] = field(default_factory=dict)
    trade_mode: dict[str, int] = field(default_factory=dict)  # 0 cross, 1 isolated (classic)
    order_im: Decimal = ZERO
    positions: dict[tuple[str, int], Position] = field(default_factory=dict)


DEFAULT_LEVERAGE = D(10)  # guessed: a new account's default on Bybit linear


class BybitState(PricePath[Candle, Execution]):
    """Instruments, accounts, orders, executions and matching for category=linear."""

    candle_type = Candle

    def __init__(self, instruments: Iterable[Instrument] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        items = list(instruments) if instruments is not None else default_instruments()
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in items}
        self.prices: dict[str, Decimal] = {}
        self.candles: dict[str, list[Candle]] = {s: [] for s in self.instruments}
        self.path: dict[str, list[Candle]] = {s: [] for s in self.instruments}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.by_link_id: dict[tuple[str, str], str] = {}  # (account, orderLinkId) -> orderId
        self.open_by_account: dict[str, dict[str, Order]] = {}  # insertion ordered
        self.open_count: dict[tuple[str, str], int] = {}
        self.closed_by_account: dict[str, list[Order]] = {}
        self.executions: dict[str, list[Execution]] = {}
        # execType Funding rows, oldest first; apart from ``executions``, which are the fills
        self.funding_executions: dict[str, list[Execution]] = {}
        self.funding = FundingSchedule(self.clock.now_ms())
        self._funding_ids = itertools.count(1)
        # the rates each settled (or seeded) instant lists: GET /v5/market/funding/history
        self.funding_rates = FundingRateLog()
        self.bids: dict[str, list[tuple[Decimal, int, str]]] = {s: [] for s in self.instruments}
        self.asks: dict[str, list[tuple[Decimal, int, str]]] = {s: [] for s in self.instruments}
        self.trig_up: dict[str, list[tuple[Decimal, int, str]]] = {s: [] for s in self.instruments}
        self.trig_down: dict[str, list[tuple[Decimal, int, str]]] = {
            s: [] for s in self.instruments
        }
        self.partial_markets: dict[str, dict[str, Order]] = {s: {} for s in self.instruments}
        self._order_ids = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._users = itertools.count(100_001)

    # -- helpers -------------------------------------------------------------
    def instrument(self, symbol: str | None) -> Instrument:
        if not symbol:
            raise E.missing("symbol")
        inst = self.instruments.get(symbol)
        if inst is None:
            raise E.bad_symbol()
        return inst

    def price(self, symbol: str) -> Decimal:
        self.instrument(symbol)
        p = self.prices.get(symbol)
        if p is None:
            raise E.params("symbol has no last price yet")  # fake-only: set_price first
        return p

    def add_account(self, api_key: str, secret: str, usdt: object = 100_000) -> Account:
        acct = Account(api_key, secret, next(self._users), dec(usdt))
        self.accounts[api_key] = acct
        self.open_by_account[api_key] = {}
        self.closed_by_account[api_key] = []
        self.executions[api_key] = []
        self.funding_executions[api_key] = []
        return acct

    def leverage(self, acct: Account, symbol: str) -> Decimal:
        return acct.leverage.get(symbol, DEFAULT_LEVERAGE)

    def position(self, acct: Account, symbol: str, idx: int) -> Position:
        pos = acct.positions.get((symbol, idx))
        if pos is None:
            pos = Position(created=self.now, updated=self.now)
            acct.positions[(symbol, idx)] = pos
        return pos

    def position_idxs(self, acct: Account, symbol: str) -> tuple[int, ...]:
        return (1, 2) if acct.position_mode.get(symbol, 0) == 3 else (0,)

    def unrealised(self, acct: Account) -> Decimal:
        total = ZERO
        for (symbol, _), pos in acct.positions.items():
            if pos.size:
                total += (self.prices.get(symbol, pos.avg_price) - pos.avg_price) * pos.size
        return total

    def position_im(self, acct: Account) -> Decimal:
        total = ZERO
        for (symbol, _), pos in acct.positions.items():
            if pos.size:
                total += abs(pos.size) * pos.avg_price / self.leverage(acct, symbol)
        return total

    def available(self, acct: Account) -> Decimal:
        return acct.wallet + self.unrealised(acct) - self.position_im(acct) - acct.order_im

    # -- price path ----------------------------------------------------------
    def set_price(self, symbol: str, price: object, volume: object = 0) -> list[Execution]:
        p = dec(price)
        return self.apply_candle(symbol, Candle(self.now, p, p, p, p, dec(volume)))

    def apply_candle(self, symbol: str, candle: Candle) -> list[Execution]:
        self.instrument(symbol)
        self.settle_funding()  # funding due before this candle is paid at the price before it
        self._record_candle(symbol, candle)
        fills: list[Execution] = []
        for p in (candle.low, candle.high, candle.close):
            self.prices[symbol] = p
            fills += self._trigger(symbol, p)
            fills += self._cross(symbol, p)
        fills += self._continue_partial_markets(symbol, candle.close)
        return fills

    def _record_candle(self, symbol: str, candle: Candle) -> None:
        series = self.candles[symbol]
        minute = candle.open_time - candle.open_time % 60_000
        if series and series[-1].open_time == minute:
            last = series[-1]
            last.high = max(last.high, candle.high)
            last.low = min(last.low, candle.low)
            last.close = candle.close
            last.volume += candle.volume
            last.turnover += candle.volume * candle.close
            return
        new = Candle(
            minute,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.volume * candle.close,
        )
        series.append(new)
        if len(series) > 1 and series[-2].open_time > minute:
            series.sort(key=lambda c: c.open_time)

    def _market(self, name: str) -> str:
        self.instrument(name)
        return name

    def klines(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        """Newest first, like Bybit; the still-forming bucket is included."""
        self.instrument(symbol)
        step = INTERVAL_MS.get(interval)
        if step is None:
            raise E.params("Invalid period!")  # guessed wording
        buckets: dict[int, Candle] = {}
        for c in self.candles[symbol]:
            key = c.open_time - c.open_time % step
            b = buckets.get(key)
            if b is None:
                buckets[key] = Candle(key, c.open, c.high, c.low, c.close, c.volume, c.turnover)
            else:
                b.high = max(b.high, c.high)
                b.low = min(b.low, c.low)
                b.close = c.close
                b.volume += c.volume
                b.turnover += c.turnover
        rows = [
            b
            for k, b in sorted(buckets.items())
            if (start is None or k >= start) and (end is None or k <= end)
        ]
        rows = rows[:limit] if start is not None and end is None else rows[-limit:]
        return list(reversed(rows))

    # -- orders --------------------------------------------------------------
    def _new_order_id(self) -> str:
        n = next(self._order_ids)
        return f"{n:08x}-fake-4000-8000-{n:012x}"

    def _check_qty_price(self, inst: Instrument, qty: Decimal, price: Decimal | None) -> None:
        if qty <= 0:
            raise E.params("params error: qty invalid")  # guessed wording
        if not is_multiple(qty, inst.qty_step):
            raise E.params("Qty invalid")  # guessed wording
        if qty < inst.min_qty:
            raise E.params("The number of contracts exceeds minimum limit allowed")
        if qty > inst.max_qty:
            raise E.params("The number of contracts exceeds maximum limit allowed")
        if price is not None:
            if price < inst.min_price or price > inst.max_price:
                raise BybitError(E.PRICE_RANGE, "Order price is out of permissible range")
            if not is_multiple(price, inst.tick_size):
                raise E.params("price invalid")  # guessed wording

    def _check_link_id(self, acct: Account, link_id: str) -> None:
        if not _LINK_ID_RE.match(link_id):
            raise E.params("params error: orderLinkId invalid")  # guessed wording
        # unique across all of the account's orders, finished ones included  # guessed
        if (acct.api_key, link_id) in self.by_link_id:
            raise E.duplicate_link_id()

    def new_order(self, acct: Account, p: dict[str, str], partial: Decimal | None = None) -> Order:
        category = p.get("category")
        if category != "linear":
            raise E.params("params error: category only support linear in the fake")  # guessed
        inst = self.instrument(p.get("symbol"))
        side = p.get("side", "")
        if side not in ("Buy", "Sell"):
            raise E.params("params error: side invalid")  # guessed wording
        otype = p.get("orderType", "")
        if otype not in ("Market", "Limit"):
            raise E.params("params error: orderType invalid")  # guessed wording
        qty = num(p, "qty")
        assert qty is not None
        price = num(p, "price", required=otype == "Limit") if otype == "Limit" else None
        self._check_qty_price(inst, qty, price)
        if otype == "Market" and qty > inst.max_mkt_qty:
            raise E.params("The number of contracts exceeds maximum limit allowed")
        link_id = p.get("orderLinkId") or ""
        if link_id:
            self._check_link_id(acct, link_id)
        tif = p.get("timeInForce") or ("IOC" if otype == "Market" else "GTC")
        if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
            raise E.params("params error: timeInForce invalid")  # guessed wording
        reduce_only = p.get("reduceOnly", "false").lower() == "true"
        close_on_trigger = p.get("closeOnTrigger", "false").lower() == "true"
        mode = acct.position_mode.get(inst.symbol, 0)
        idx = int(p.get("positionIdx") or 0)
        if (mode == 0 and idx != 0) or (mode == 3 and idx not in (1, 2)):
            raise E.params("position idx not match position mode")
        last = self.price(inst.symbol)
        trig_price = num(p, "triggerPrice", required=False)
        direction = int(p.get("triggerDirection") or 0)
        if trig_price is not None and trig_price > 0:
            if direction not in (1, 2):
                raise E.params("params error: triggerDirection invalid")  # guessed
            if not is_multiple(trig_price, inst.tick_size):
                raise E.params("params error: triggerPrice invalid")  # guessed wording
            if direction == 1 and trig_price <= last:
                raise BybitError(
                    E.TRIGGER_RISING,
                    f"expect Rising, but trigger_price[{fmt(trig_price)}] <= "
                    f"current[{fmt(last)}]??LastPrice",
                )
            if direction == 2 and trig_price >= last:
                raise BybitError(
                    E.TRIGGER_FALLING,
                    f"expect Falling, but trigger_price[{fmt(trig_price)}] >= "
                    f"current[{fmt(last)}]??LastPrice",
                )
        else:
            trig_price, direction = ZERO, 0
        tp = num(p, "takeProfit", required=False) or ZERO
        sl = num(p, "stopLoss", required=False) or ZERO
        base = price if price is not None else last
        for name, level in (("TakeProfit", tp), ("StopLoss", sl)):
            if level and not is_multiple(level, inst.tick_size):
                raise E.params(f"params error: {name} invalid")  # guessed wording
        if tp and ((side == "Buy" and tp <= base) or (side == "Sell" and tp >= base)):
            raise E.params(
                f"TakeProfit:{fmt(tp)} set for {side} position should be "
                f"{'higher' if side == 'Buy' else 'lower'} than base_price:{fmt(base)}??LastPrice"
            )  # guessed wording
        if sl and ((side == "Buy" and sl >= base) or (side == "Sell" and sl <= base)):
            raise E.params(
                f"StopLoss:{fmt(sl)} set for {side} position should be "
                f"{'lower' if side == 'Buy' else 'higher'} than base_price:{fmt(base)}??LastPrice"
            )  # guessed wording
        if not reduce_only and qty * base < inst.min_notional:
            raise E.min_notional(fmt(inst.min_notional))
        if reduce_only and not direction:
            pos = self.position(acct, inst.symbol, idx)
            reducing = (pos.size > 0 and side == "Sell") or (pos.size < 0 and side == "Buy")
            if not reducing:
                raise E.reduce_only()
            qty = min(qty, abs(pos.size))  # trimmed to the position  # guessed
        key = (acct.api_key, inst.symbol)
        if self.open_count.get(key, 0) >= inst.max_open_orders:
            raise BybitError(E.TOO_MANY_ORDERS, "number of active orders greater than 500")
        if not reduce_only and not close_on_trigger:
            lev = self.leverage(acct, inst.symbol)
            im = qty * base / lev
            if im > self.available(acct):
                raise E.insufficient()
        now = self.now
        order = Order(
            order_id=self._new_order_id(),
            link_id=link_id,
            account=acct.api_key,
            symbol=inst.symbol,
            side=side,
            order_type=otype,
            qty=qty,
            price=price if price is not None else ZERO,
            time_in_force=tif,
            reduce_only=reduce_only,
            close_on_trigger=close_on_trigger,
            position_idx=idx,
            created=now,
            updated=now,
            seq=next(self._seq),
            trigger_price=trig_price,
            trigger_direction=direction,
            trigger_by=(p.get("triggerBy") or "LastPrice") if direction else "",
            stop_order_type="Stop" if direction else "",
            take_profit=tp,
            stop_loss=sl,
            tpsl_mode="Full" if (tp or sl) else "",
            last_price_on_created=last,
            fill_cap=None if partial is None else qty * partial,
        )
        if order.fill_cap is not None:
            step = inst.qty_step
            order.fill_cap = max(step, (order.fill_cap // step) * step)
        self.orders[order.order_id] = order
        if link_id:
            self.by_link_id[(acct.api_key, link_id)] = order.order_id
        if direction:
            order.status = "Untriggered"
            self._add_open(order)
            heap = self.trig_up if direction == 1 else self.trig_down
            key_price = trig_price if direction == 1 else -trig_price
            heapq.heappush(heap[inst.symbol], (key_price, order.seq, order.order_id))
            return order
        self._execute(order, acct, last)
        return order

    def _add_open(self, order: Order) -> None:
        self.open_by_account[order.account][order.order_id] = order
        key = (order.account, order.symbol)
        self.open_count[key] = self.open_count.get(key, 0) + 1

    def _close(self, order: Order, status: str) -> None:
        order.status = status
        order.updated = self.now
        self._set_im(order, ZERO)
        if self.open_by_account[order.account].pop(order.order_id, None) is not None:
            key = (order.account, order.symbol)
            self.open_count[key] -= 1
        self.partial_markets[order.symbol].pop(order.order_id, None)
        self.closed_by_account[order.account].append(order)

    def _set_im(self, order: Order, im: Decimal) -> None:
        acct = self.accounts[order.account]
        acct.order_im += im - order.im
        order.im = im

    def _marketable(self, order: Order, last: Decimal) -> bool:
        if order.order_type == "Market":
            return True
        return order.price >= last if order.side == "Buy" else order.price <= last

    def _execute(self, order: Order, acct: Account, last: Decimal) -> list[Execution]:
        """An active order arrives (new or just triggered): take, rest or die."""
        fills: list[Execution] = []
        marketable = self._marketable(order, last)
        if order.time_in_force == "PostOnly" and marketable:
            order.reject_reason = "EC_PostOnlyWillTakeLiquidity"
            order.cancel_type = "CancelByUser"  # guessed
            self._close(order, "Cancelled")
            return fills
        if marketable:
            want = order.qty - order.cum_qty
            if order.fill_cap is not None:
                want = min(want, order.fill_cap)
            price = last if order.order_type == "Market" else min(order.price, last)
            if order.order_type == "Limit" and order.side == "Sell":
                price = max(order.price, last)
            if order.time_in_force == "FOK" and want < order.qty:
                self._close(order, "Cancelled")
                return fills
            fills += self._fill(order, want, price, maker=False)
            if not order.is_open:
                return fills
            if order.order_type == "Market":
                # partial_fill fault: the rest of a market order fills on the next move
                self._add_open(order)
                self.partial_markets[order.symbol][order.order_id] = order
                return fills
            if order.time_in_force in ("IOC", "FOK"):
                self._close(order, "PartiallyFilledCanceled")
                return fills
        elif order.order_type == "Market" or order.time_in_force in ("IOC", "FOK"):
            self._close(order, "Cancelled")
            return fills
        order.fill_cap = None
        if order.order_id not in self.open_by_account[order.account]:
            self._add_open(order)
        self._rest(order)
        return fills

    def _rest(self, order: Order) -> None:
        if not order.reduce_only:
            lev = self.leverage(self.accounts[order.account], order.symbol)
            self._set_im(order, (order.qty - order.cum_qty) * order.price / lev)
        if order.side == "Buy":
            heapq.heappush(self.bids[order.symbol], (-order.price, order.seq, order.order_id))
        else:
            heapq.heappush(self.asks[order.symbol], (order.price, order.seq, order.order_id))

    def _cross(self, symbol: str, price: Decimal) -> list[Execution]:
        fills: list[Execution] = []
        bids, asks = self.bids[symbol], self.asks[symbol]
        while bids and -bids[0][0] >= price:
            _, _, oid = heapq.heappop(bids)
            order = self.orders[oid]
            if order.is_open and order.order_type == "Limit" and order.status != "Untriggered":
                fills += self._fill(order, order.qty - order.cum_qty, order.price, maker=True)
        while asks and asks[0][0] <= price:
            _, _, oid = heapq.heappop(asks)
            order = self.orders[oid]
            if order.is_open and order.order_type == "Limit" and order.status != "Untriggered":
                fills += self._fill(order, order.qty - order.cum_qty, order.price, maker=True)
        return fills

    def _trigger(self, symbol: str, price: Decimal) -> list[Execution]:
        fills: list[Execution] = []
        up, down = self.trig_up[symbol], self.trig_down[symbol]
        fired: list[Order] = []
        while up and up[0][0] <= price:
            fired.append(self.orders[heapq.heappop(up)[2]])
        while down and -down[0][0] >= price:
            fired.append(self.orders[heapq.heappop(down)[2]])
        for order in sorted(fired, key=lambda o: o.seq):
            if order.status != "Untriggered":
                continue
            acct = self.accounts[order.account]
            order.status = "New"  # Triggered -> New/Filled under the same orderId
            order.updated = self.now
            if order.reduce_only or order.close_on_trigger:
                pos = self.position(acct, symbol, order.position_idx)
                reducing = (pos.size > 0 and order.side == "Sell") or (
                    pos.size < 0 and order.side == "Buy"
                )
                if not reducing:
                    self._close(order, "Deactivated")
                    continue
                if order.stop_order_type in ("TakeProfit", "StopLoss"):
                    order.qty = abs(pos.size)
                else:
                    order.qty = min(order.qty, abs(pos.size))
            fills += self._execute(order, acct, price)
        return fills

    def _continue_partial_markets(self, symbol: str, price: Decimal) -> list[Execution]:
        fills: list[Execution] = []
        for order in list(self.partial_markets[symbol].values()):
            if order.is_open:
                fills += self._fill(order, order.qty - order.cum_qty, price, maker=False)
        return fills

    def _fill(self, order: Order, qty: Decimal, price: Decimal, maker: bool) -> list[Execution]:
        if qty <= 0:
            return []
        acct = self.accounts[order.account]
        pos = self.position(acct, order.symbol, order.position_idx)
        if order.reduce_only:
            qty = min(qty, abs(pos.size))
            if qty <= 0:
                self._close(order, "Deactivated" if order.stop_order_type else "Cancelled")
                return []
        rate = MAKER_FEE if maker else TAKER_FEE
        fee = qty * price * rate
        delta = qty if order.side == "Buy" else -qty
        was_flat = pos.size == 0
        pnl, closed = pos.apply(delta, price)
        pos.updated = self.now
        if was_flat:
            pos.created = self.now
        acct.wallet += pnl - fee
        acct.cum_realised += pnl - fee
        pos.realised -= fee
        order.cum_qty += qty
        order.cum_value += qty * price
        order.cum_fee += fee
        order.updated = self.now
        if order.fill_cap is not None:
            order.fill_cap -= qty
            if order.fill_cap <= 0:
                order.fill_cap = None
        ex = Execution(
            exec_id=f"{next(self._exec_ids):08x}-exec-5000-9000-{order.seq:012x}",
            seq=next(self._seq),
            account=acct.api_key,
            symbol=order.symbol,
            order_id=order.order_id,
            link_id=order.link_id,
            side=order.side,
            order_type=order.order_type,
            stop_order_type=order.stop_order_type or "UNKNOWN",
            order_qty=order.qty,
            order_price=order.price,
            price=price,
            qty=qty,
            fee=fee,
            fee_rate=rate,
            is_maker=maker,
            closed_size=closed,
            leaves_qty=order.qty - order.cum_qty,
            mark_price=self.prices.get(order.symbol, price),
            time=self.now,
        )
        self.executions[acct.api_key].append(ex)
        if order.cum_qty >= order.qty:
            self._close(order, "Filled")
        else:
            order.status = "PartiallyFilled"
            if order.im:
                lev = self.leverage(acct, order.symbol)
                self._set_im(order, (order.qty - order.cum_qty) * order.price / lev)
        fills = [ex]
        if (order.take_profit or order.stop_loss) and not order.tpsl_done and pos.size:
            order.tpsl_done = True
            self._attach_tpsl(acct, order, pos)
        if pos.size == 0:
            self._deactivate_tpsl(acct, order.symbol, order.position_idx)
        return fills

    def _attach_tpsl(self, acct: Account, entry: Order, pos: Position) -> None:
        """Full-mode position TP/SL: one reduce-only conditional market order each."""
        self._deactivate_tpsl(acct, entry.symbol, entry.position_idx)
        close_side = "Sell" if pos.size > 0 else "Buy"
        for kind, level in (("TakeProfit", entry.take_profit), ("StopLoss", entry.stop_loss)):
            if not level:
                continue
            rising = (kind == "TakeProfit") == (pos.size > 0)
            order = Order(
                order_id=self._new_order_id(),
                link_id="",
                account=acct.api_key,
                symbol=entry.symbol,
                side=close_side,
                order_type="Market",
                qty=ZERO,  # full position, set at trigger
                price=ZERO,
                time_in_force="IOC",
                reduce_only=True,
                close_on_trigger=True,
                position_idx=entry.position_idx,
                created=self.now,
                updated=self.now,
                seq=next(self._seq),
                status="Untriggered",
                trigger_price=level,
                trigger_direction=1 if rising else 2,
                trigger_by="LastPrice",
                stop_order_type=kind,
                tpsl_mode="Full",
                last_price_on_created=self.prices.get(entry.symbol, ZERO),
                create_type=f"CreateBy{kind}",  # guessed
            )
            if kind == "TakeProfit":
                pos.take_profit = level
            else:
                pos.stop_loss = level
            self.orders[order.order_id] = order
            self._add_open(order)
            heap = self.trig_up if rising else self.trig_down
            heapq.heappush(
                heap[entry.symbol], (level if rising else -level, order.seq, order.order_id)
            )

    def _deactivate_tpsl(self, acct: Account, symbol: str, idx: int) -> None:
        for order in list(self.open_by_account[acct.api_key].values()):
            if (
                order.symbol == symbol
                and order.position_idx == idx
                and order.stop_order_type in ("TakeProfit", "StopLoss")
            ):
                order.cancel_type = "CancelByTpSlTsClear"  # guessed
                self._close(order, "Deactivated")
        pos = acct.positions.get((symbol, idx))
        if pos is not None and pos.size == 0:
            pos.take_profit = pos.stop_loss = ZERO

    # -- funding --------------------------------------------------------------------
    def set_funding_rate(self, symbol: str, rate: Decimal) -> None:
        """The rate ``symbol`` pays at its next funding instants (and tickers show), within
        the instruments' published ±0.00375."""
        if symbol not in self.instruments:
            known = ", ".join(self.instruments)
            raise ValueError(f"symbol {symbol!r} is not an instrument of the fake; known: {known}")
        self.funding.set_rate(symbol, check_rate(symbol, dec(rate), FUNDING_RATE_BOUND))

    def settle_funding(self) -> list[Execution]:
        """Pay the funding of every instant the clock passed since it was last observed."""
        rows: list[Execution] = []
        for at in self.funding.due(self.clock.now_ms()):
            for symbol in self.instruments:
                # what the history lists is what this instant paid
                self.funding_rates.record(symbol, at, self.funding.rate(symbol), None)
            for acct in self.accounts.values():
                for (symbol, _idx), pos in acct.positions.items():
                    if pos.size:
                        rows += self._fund(acct, symbol, pos, at)
        return rows

    def seed_funding_history(
        self, symbol: str, first_ms: int, rates: Iterable[object]
    ) -> list[int]:
        """List ``rates`` in GET /v5/market/funding/history at ``first_ms`` (a funding
        instant) and every funding interval after it, all before the venue's clock (instants
        the fake never paid: nothing was held then), each within ±0.00375; the instants."""
        self.instrument(symbol)
        self.settle_funding()  # the instants passed so far are listed at what they paid
        checked = [check_rate(symbol, dec(r), FUNDING_RATE_BOUND) for r in rates]
        return self.funding_rates.seed(
            symbol, first_ms, checked, None, self.funding.interval_ms, self.clock.now_ms()
        )

    def funding_rate_history(
        self, symbol: str | None, start: int | None, end: int | None, limit: int
    ) -> list[ListedRate]:
        """GET /v5/market/funding/history's rows, newest first: the newest ``limit`` of
        ``[startTime, endTime]`` (both inclusive; guessed: the docs do not say which rows a
        range holding more than ``limit`` gives; ccxt's own pagination walks backwards from
        endTime, which this fits); only endTime: the ``limit`` up to it; neither: up to now;
        only startTime: refused, as the docs say."""
        sym = self.instrument(symbol).symbol
        if start is not None and end is None:
            raise E.params("params error: endTime is required when startTime is set")  # guessed
        if start is not None and end is not None and start > end:
            raise E.params("params error: startTime must be before endTime")  # guessed
        upto = min(end, self.clock.now_ms()) if end is not None else self.clock.now_ms()
        rows = self.funding_rates.between([sym], start if start is not None else 0, upto)
        return list(reversed(rows[-limit:]))

    def _fund(self, acct: Account, symbol: str, pos: Position, at: int) -> list[Execution]:
        """One position's payment as Bybit reports it (ccxt's recorded Funding executions):
        ``execFee`` what the position paid (negative: received), ``side`` the position's,
        ``execQty`` its size, ``execPrice``/``markPrice`` the mark and ``feeRate`` the rate
        from the position's side (guessed: the only reading under which both of ccxt's
        samples, a long and a short, have execFee = execValue × feeRate)."""
        mark = self.prices.get(symbol, pos.avg_price)
        rate = self.funding.rate(symbol)
        paid = funding_payment(pos.size, mark, rate)
        if paid == 0:
            return []  # guessed: no execution for a zero payment (a zero rate)
        acct.wallet -= paid
        acct.cum_realised -= paid
        pos.realised -= paid
        side = "Buy" if pos.size > 0 else "Sell"
        ex = Execution(
            exec_id=f"{next(self._funding_ids):08x}-fund-6000-a000-{at // 1000:012x}",
            seq=next(self._seq),
            account=acct.api_key,
            symbol=symbol,
            # the shape of ccxt's sample "1692316800-VETUSDT-76024047-Buy": the funding
            # instant in seconds, the symbol, the user id and the position's side
            order_id=f"{at // 1000}-{symbol}-{acct.user_id}-{side}",
            link_id="",
            side=side,
            order_type="UNKNOWN",
            stop_order_type="UNKNOWN",
            order_qty=ZERO,
            order_price=ZERO,
            price=mark,
            qty=abs(pos.size),
            fee=paid,
            fee_rate=rate if pos.size > 0 else -rate,
            is_maker=False,
            closed_size=ZERO,
            leaves_qty=ZERO,
            mark_price=mark,
            time=at,
            exec_type="Funding",
            create_type="",
        )
        self.funding_executions[acct.api_key].append(ex)
        return [ex]

    # -- queries / cancel / amend -------------------------------------------------
    def find(self, acct: Account, p: dict[str, str], action: str = "cancel") -> Order:
        oid = p.get("orderId") or ""
        link = p.get("orderLinkId") or ""
        if not oid and not link:
            raise E.params("orderId or orderLinkId is required")  # guessed wording
        if not oid:
            oid = self.by_link_id.get((acct.api_key, link), "")
        order = self.orders.get(oid)
        if order is None or order.account != acct.api_key:
            raise E.not_found(action)
        if link and order.link_id != link:
            raise E.not_found(action)
        symbol = p.get("symbol")
        if symbol and symbol != order.symbol:
            raise E.not_found(action)
        return order

    def cancel(self, acct: Account, p: dict[str, str]) -> Order:
        self.instrument(p.get("symbol"))
        order = self.find(acct, p, "cancel")
        if not order.is_open:
            raise E.not_found("cancel")
        order.cancel_type = "CancelByUser"
        self._close(order, "Deactivated" if order.status == "Untriggered" else "Cancelled")
        return order

    def cancel_all(self, acct: Account, p: dict[str, str]) -> list[Order]:
        symbol = p.get("symbol")
        if symbol:
            self.instrument(symbol)
        elif not p.get("settleCoin") and not p.get("baseCoin"):
            raise E.params("params error: symbol or settleCoin is required")  # guessed
        flt = p.get("orderFilter")
        out: list[Order] = []
        for order in list(self.open_by_account[acct.api_key].values()):
            if symbol and order.symbol != symbol:
                continue
            if flt == "StopOrder" and order.status != "Untriggered":
                continue
            if flt == "Order" and order.status == "Untriggered":
                continue
            order.cancel_type = "CancelByUser"
            self._close(order, "Deactivated" if order.status == "Untriggered" else "Cancelled")
            out.append(order)
        return out

    def amend(self, acct: Account, p: dict[str, str]) -> Order:
        inst = self.instrument(p.get("symbol"))
        order = self.find(acct, p, "replace")
        if not order.is_open or order.stop_order_type in ("TakeProfit", "StopLoss"):
            raise E.not_found("replace")
        qty = num(p, "qty", required=False)
        price = num(p, "price", required=False)
        trig = num(p, "triggerPrice", required=False)
        tp = num(p, "takeProfit", required=False)
        sl = num(p, "stopLoss", required=False)
        changed = False
        if qty is not None and qty != order.qty:
            self._check_qty_price(inst, qty, None)
            if qty <= order.cum_qty:
                raise E.params("params error: qty must be greater than cumExecQty")  # guessed
            order.qty, changed = qty, True
        if price is not None and order.order_type == "Limit" and price != order.price:
            self._check_qty_price(inst, order.qty, price)
            order.price, changed = price, True
        if trig is not None and inst.trigger_step > 0:
            trig = (trig / inst.trigger_step).to_integral_value(ROUND_HALF_EVEN) * inst.trigger_step
        if trig is not None and order.status == "Untriggered" and trig != order.trigger_price:
            order.trigger_price, changed = trig, True
            heap = self.trig_up if order.trigger_direction == 1 else self.trig_down
            kp = trig if order.trigger_direction == 1 else -trig
            heapq.heappush(heap[order.symbol], (kp, order.seq, order.order_id))
        if tp is not None and tp != order.take_profit:
            order.take_profit, changed = tp, True
        if sl is not None and sl != order.stop_loss:
            order.stop_loss, changed = sl, True
        if not changed:
            raise E.params(
                "The order remains unchanged as the parameters entered match the existing ones."
            )  # guessed wording
        order.updated = self.now
        if order.status in ("New", "PartiallyFilled") and order.order_type == "Limit":
            self._set_im(order, ZERO)
            last = self.prices[order.symbol]
            if self._marketable(order, last):
                self._fill(order, order.qty - order.cum_qty, last, maker=False)
            else:
                self._rest(order)  # the old heap entry points at the same id; lazy
        return order

    # -- account settings ----------------------------------------------------
    def has_exposure(self, acct: Account, symbol: str) -> bool:
        if any(o.symbol == symbol for o in self.open_by_account[acct.api_key].values()):
            return True
        return any(s == symbol and p.size for (s, _), p in acct.positions.items())

    def set_leverage(self, acct: Account, p: dict[str, str]) -> None:
        inst = self.instrument(p.get("symbol"))
        buy = num(p, "buyLeverage")
        sell = num(p, "sellLeverage")
        assert buy is not None and sell is not None
        if acct.position_mode.get(inst.symbol, 0) == 0 and buy != sell:
            raise E.params("buy leverage must be equal to sell leverage")  # guessed wording
        for lev in (buy, sell):
            if lev < 1 or not is_multiple(lev, inst.leverage_step):
                raise E.params("leverage invalid")  # guessed wording
            if lev > inst.max_leverage:
                raise BybitError(
                    E.LEVERAGE_RISK,
                    f"cannot set leverage [{int(lev * 100)}] gt maxLeverage "
                    f"[{int(inst.max_leverage * 100)}] by risk limit",
                )  # guessed wording
        if buy == self.leverage(acct, inst.symbol):
            raise BybitError(E.LEVERAGE_SAME, "leverage not modified")
        acct.leverage[inst.symbol] = buy

    def switch_mode(self, acct: Account, p: dict[str, str]) -> None:
        mode = int(p.get("mode") or -1)
        if mode not in (0, 3):
            raise E.params("params error: mode invalid")  # guessed wording
        symbol = p.get("symbol")
        symbols = [self.instrument(symbol).symbol] if symbol else list(self.instruments)
        if not symbol and not p.get("coin"):
            raise E.params("params error: symbol or coin is required")  # guessed wording
        if all(acct.position_mode.get(s, 0) == mode for s in symbols):
            raise BybitError(E.POS_MODE_SAME, "Position mode is not modified")
        if any(self.has_exposure(acct, s) for s in symbols):
            raise BybitError(
                E.POS_MODE_HAS_POSITION,
                "You have an existing position, so position mode cannot be switched",
            )
        for s in symbols:
            acct.position_mode[s] = mode
            for idx in (0, 1, 2):
                acct.positions.pop((s, idx), None)

    def set_margin_mode(self, acct: Account, p: dict[str, str]) -> None:
        mode = p.get("setMarginMode")
        if mode not in ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"):
            raise E.params("params error: setMarginMode invalid")  # guessed wording
        acct.margin_mode = mode  # margin is still computed the simplified (cross) way

    def switch_isolated(self, acct: Account, p: dict[str, str]) -> None:
        inst = self.instrument(p.get("symbol"))
        trade_mode = int(p.get("tradeMode") or 0)
        if acct.trade_mode.get(inst.symbol, 0) == trade_mode:
            raise BybitError(E.MARGIN_MODE_SAME, "Cross/isolated margin mode is not modified")
        acct.trade_mode[inst.symbol] = trade_mode
        lev = num(p, "buyLeverage", required=False)
        if lev is not None:
            acct.leverage[inst.symbol] = lev

    # -- listings ------------------------------------------------------------
    def open_orders(self, acct: Account, p: dict[str, str]) -> list[Order]:
        """``/v5/order/realtime``: open orders, newest first; by id also finished ones
        (ccxt: "the last 500 orders of any status")."""  # guessed
        symbol = p.get("symbol")
        if symbol:
            self.instrument(symbol)
        oid, link = p.get("orderId"), p.get("orderLinkId")
        if oid or link:
            try:
                order = self.find(acct, p, "query")
            except BybitError:
                return []
            return [order]
        flt = p.get("orderFilter")
        out = []
        for order in reversed(self.open_by_account[acct.api_key].values()):
            if symbol and order.symbol != symbol:
                continue
            if flt == "Order" and order.stop_order_type:
                continue
            if flt == "StopOrder" and order.stop_order_type != "Stop":
                continue
            if flt == "tpslOrder" and order.stop_order_type not in ("TakeProfit", "StopLoss"):
                continue
            out.append(order)
        return out

    def history(self, acct: Account, p: dict[str, str]) -> list[Order]:
        """``/v5/order/history``: finished orders, newest first."""
        symbol = p.get("symbol")
        if symbol:
            self.instrument(symbol)
        oid, link = p.get("orderId"), p.get("orderLinkId")
        status = p.get("orderStatus")
        start, end = p.get("startTime"), p.get("endTime")
        flt = p.get("orderFilter")
        out = []
        for order in reversed(self.closed_by_account[acct.api_key]):
            if symbol and order.symbol != symbol:
                continue
            if oid and order.order_id != oid:
                continue
            if link and order.link_id != link:
                continue
            if status and order.status != status:
                continue
            if flt == "StopOrder" and not order.stop_order_type:
                continue
            if start and order.created < int(start):
                continue
            if end and order.created > int(end):
                continue
            out.append(order)
        return out

    def list_executions(self, acct: Account, p: dict[str, str]) -> list[Execution]:
        symbol = p.get("symbol")
        if symbol:
            self.instrument(symbol)
        oid, link = p.get("orderId"), p.get("orderLinkId")
        start, end = _week(p.get("startTime"), p.get("endTime"), self.clock.now_ms())
        out = []
        for ex in self._executions_of_type(acct, p.get("execType") or ""):
            if symbol and ex.symbol != symbol:
                continue
            if oid and ex.order_id != oid:
                continue
            if link and ex.link_id != link:
                continue
            if ex.time < start or ex.time > end:
                continue
            out.append(ex)
        return out

    def _executions_of_type(self, acct: Account, exec_type: str) -> list[Execution]:
        """The account's executions of ``exec_type`` ("" for every type), newest first:
        fills (Trade) and funding payments (Funding); the fake makes no other type."""
        fills = self.executions[acct.api_key] if exec_type in ("", "Trade") else []
        funding = self.funding_executions[acct.api_key] if exec_type in ("", "Funding") else []
        if not funding:
            return list(reversed(fills))
        if not fills:
            return list(reversed(funding))
        return sorted([*fills, *funding], key=lambda x: (x.time, x.seq), reverse=True)


_WEEK_MS = 7 * 86_400_000


def _week(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """``/v5/execution/list``'s time range (Bybit's v5 docs): neither bound, the last 7
    days; only ``startTime``, 7 days from it; only ``endTime``, the 7 days before it;
    both, at most 7 days apart."""
    try:
        first = int(start) if start else None
        last = int(end) if end else None
    except ValueError as exc:
        raise E.params("params error: startTime or endTime invalid") from exc  # guessed
    if first is None and last is None:
        return now_ms - _WEEK_MS, now_ms
    if last is None:
        assert first is not None
        return first, first + _WEEK_MS
    if first is None:
        return last - _WEEK_MS, last
    if last - first > _WEEK_MS:
        # guessed wording
        raise E.params(
            "params error: The time range between startTime and endTime cannot exceed 7 days"
        )
    return first, last
