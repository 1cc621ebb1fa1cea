"""Pure, synchronous model of a Binance venue: symbols, accounts, orders, matching.

Nothing here knows about HTTP. ``server.py`` parses requests, calls the methods of
:class:`BinanceState` and its two :class:`Engine` s (``state.spot``, ``state.usdm``) and
renders the returned :class:`Order` / :class:`Trade` objects in Binance's JSON shapes.

Matching model (a single price path per symbol, controlled by the test):

* ``set_price(symbol, p)`` moves the last price. Resting BUY limits with
  ``price >= p`` and SELL limits with ``price <= p`` fill *at their limit price*
  as maker.  ``apply_candle`` does the same with the candle's low/high.
* MARKET orders (and limit orders that are marketable on arrival) fill at once at
  the current price as taker.
* Fees: spot charges the commission in the asset received (base on BUY, quote on
  SELL), like Binance without BNB discounts; an account added with ``bnb_fees`` pays it in
  BNB at 25 % off (BNBUSDT's last price) while it holds the BNB; futures charge it in the
  margin asset.

Klines are kept on a 1-minute grid and aggregated to the requested interval.

Funding (USDⓈ-M): at each funding instant the venue's clock passes (``state.funding``, a
:class:`~tests.venues.funding_schedule.FundingSchedule`: every 8 hours, 00:00/08:00/16:00
UTC), every open position pays ``positionAmt × mark × rate`` (the mark is the last price);
the wallet moves by the income (negative: paid) and a ``FUNDING_FEE`` income row is kept.
The clock is observed on every request and price move (``settle_funding``).

Thread safety: the server thread and the ``FakeBinance`` helpers hold
``state.lock`` (re-entrant) around every call; code that pokes the state directly
while the server runs should hold it too.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from tests.venues.funding_rate_history import FundingRateLog, ListedRate
from tests.venues.funding_schedule import FundingSchedule, check_rate, funding_payment
from tests.venues.price_path import Clock, PricePath

from . import errors as E
from .errors import BinanceError

D = Decimal
ZERO = D(0)
_DEC_0_01 = Decimal("0.01")
_DEC_1000000 = Decimal("1000000")
_DEC_0_00001 = Decimal("0.00001")
_DEC_9000 = Decimal("9000")
_DEC_5 = Decimal("5")
_DEC_0_001 = Decimal("0.001")
_DEC_0_0002 = Decimal("0.0002")
_DEC_0_0005 = Decimal("0.0005")
MarketKind = Literal["spot", "usdm"]

STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
SPOT_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", *STOP_TYPES)
# aboveType / belowType of POST /api/v3/orderList/oco
OCO_LEG_TYPES = ("LIMIT_MAKER", *STOP_TYPES)
# an OCO leg's parameter -> the single-order parameter it stands for ("abovePrice" -> "price")
_LEG_PARAMS = {
    "Price": "price",
    "StopPrice": "stopPrice",
    "TimeInForce": "timeInForce",
    "ClientOrderId": "newClientOrderId",
}
_NUM_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_SPOT_COID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_FUT_COID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}


def dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def fmt8(value: Decimal) -> str:
    """Spot style: fixed 8 decimals (``"0.00100000"``)."""
    return f"{value:.8f}"


def fmt(value: Decimal) -> str:
    """Futures style: plain decimal without exponent or trailing zeros."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def decimals_of(text: str) -> int:
    return len(text.split(".", 1)[1].rstrip("0")) if "." in text else 0


def parse_decimal(params: dict[str, str], name: str, required: bool = True) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise E.mandatory(name)
        return None
    if not _NUM_RE.match(raw):
        raise E.illegal(name)
    try:
        return Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - regex guards this
        raise E.illegal(name) from exc


# ---------------------------------------------------------------------------
# Static data
# ---------------------------------------------------------------------------


@dataclass
class SymbolSpec:
    """One tradable symbol with Binance's filters."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal = _DEC_0_01
    min_price: Decimal = _DEC_0_01
    max_price: Decimal = _DEC_1000000
    step_size: Decimal = _DEC_0_00001
    min_qty: Decimal = _DEC_0_00001
    max_qty: Decimal = _DEC_9000
    market_max_qty: Decimal = _DEC_9000
    min_notional: Decimal = _DEC_5
    max_num_orders: int = 200
    price_precision: int = 2
    quantity_precision: int = 5
    max_leverage: int = 125
    status: str = "TRADING"
    # A test knob (additive; 0: the trigger as sent, Binance's behaviour): the step on which
    # this venue holds a USDⓈ-M conditional order's trigger, rounded to the nearest — a venue
    # whose rules are coarser than the tick its PRICE_FILTER states — so that a moved stop's
    # answer can say another price than the one asked.
    trigger_step: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in (
            "trigger_step",
            "tick_size",
            "min_price",
            "max_price",
            "step_size",
            "min_qty",
            "max_qty",
            "market_max_qty",
            "min_notional",
        ):
            setattr(self, name, dec(getattr(self, name)))


def default_spot_symbols() -> list[SymbolSpec]:
    """Filters copied from Binance spot ``exchangeInfo`` (2024/2025 values)."""
    return [
        SymbolSpec(
            "BTCUSDT",
            "BTC",
            "USDT",
            D("0.01"),
            D("0.01"),
            D("1000000"),
            D("0.00001"),
            D("0.00001"),
            D("9000"),
            D("83"),
            D("5"),
            200,
            2,
            5,
        ),
        SymbolSpec(
            "ETHUSDT",
            "ETH",
            "USDT",
            D("0.01"),
            D("0.01"),
            D("1000000"),
            D("0.0001"),
            D("0.0001"),
            D("9000"),
            D("2400"),
            D("5"),
            200,
            2,
            4,
        ),
        SymbolSpec(
            "BNBUSDT",
            "BNB",
            "USDT",
            D("0.01"),
            D("0.01"),
            D("100000"),
            D("0.001"),
            D("0.001"),
            D("9000"),
            D("9000"),
            D("5"),
            200,
            2,
            3,
        ),
        SymbolSpec(
            "ETHBTC",
            "ETH",
            "BTC",
            D("0.00001"),
            D("0.00001"),
            D("922327"),
            D("0.0001"),
            D("0.0001"),
            D("100000"),
            D("2000"),
            D("0.0001"),
            200,
            5,
            4,
        ),
    ]


def default_futures_symbols() -> list[SymbolSpec]:
    """Filters copied from Binance USDⓈ-M ``fapi/v1/exchangeInfo``."""
    return [
        SymbolSpec(
            "BTCUSDT",
            "BTC",
            "USDT",
            D("0.10"),
            D("556.80"),
            D("4529764"),
            D("0.001"),
            D("0.001"),
            D("1000"),
            D("120"),
            D("100"),
            200,
            2,
            3,
            125,
        ),
        SymbolSpec(
            "ETHUSDT",
            "ETH",
            "USDT",
            D("0.01"),
            D("39.86"),
            D("306177"),
            D("0.001"),
            D("0.001"),
            D("10000"),
            D("2000"),
            D("20"),
            200,
            2,
            3,
            125,
        ),
    ]


# ---------------------------------------------------------------------------
# Dynamic records
# ---------------------------------------------------------------------------


@dataclass
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0


@dataclass
class Trade:
    id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool
    realized_pnl: Decimal = ZERO
    order_list_id: int = -1  # the order's orderListId (spot OCO leg), -1 when none

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass
class Order:
    order_id: int
    account: str
    symbol: str
    side: str  # BUY / SELL
    type: str  # LIMIT / MARKET / LIMIT_MAKER
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    client_order_id: str
    time: int
    kind: MarketKind
    reduce_only: bool = False
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    orig_quote_qty: Decimal = ZERO
    fills: list[Trade] = field(default_factory=list)
    # remaining quote locked on spot BUY limits
    locked: Decimal = ZERO
    # fraction cap from the partial_fill fault: executed may not exceed this
    fill_cap: Decimal | None = None
    seq: int = 0
    # price used for open-order margin (limit price, or last price for MARKET remainders)
    ref_price: Decimal = ZERO
    # spot STOP_LOSS(_LIMIT) / TAKE_PROFIT(_LIMIT): trigger price; working once triggered
    stop_price: Decimal = ZERO
    working: bool = True
    working_time: int = -1
    # decimals the venue prints prices / quantities with (futures pricePrecision etc.)
    price_dp: int = 8
    qty_dp: int = 8
    # spot OCO: the list this order is a leg of (Binance's orderListId), -1 when none
    order_list_id: int = -1
    # whether the order's funds are held on it: an OCO list holds its funds once, on one
    # leg, until a leg executes and holds its own (see Engine._resolve_list)
    holds_funds: bool = True

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES

    @property
    def is_market_like(self) -> bool:
        """Fills at market once working: MARKET, STOP_LOSS, TAKE_PROFIT."""
        return self.type in ("MARKET", "STOP_LOSS", "TAKE_PROFIT")

    @property
    def triggers_upward(self) -> bool:
        """STOP_LOSS BUY and TAKE_PROFIT SELL trigger when the price rises to stopPrice."""
        return (self.type.startswith("STOP_LOSS")) == (self.side == "BUY")

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


@dataclass
class OrderList:
    """A spot order list of contingencyType OCO: two legs, one cancels the other."""

    order_list_id: int
    account: str
    symbol: str
    client_id: str  # listClientOrderId
    # the STOP_LOSS(_LIMIT) leg first, then the other: the order of Binance's examples
    order_ids: tuple[int, int]
    time: int
    update_time: int
    status: str = "EXEC_STARTED"  # listStatusType: EXEC_STARTED -> ALL_DONE
    order_status: str = "EXECUTING"  # listOrderStatus: EXECUTING -> ALL_DONE

    @property
    def is_open(self) -> bool:
        return self.order_status == "EXECUTING"


@dataclass
class _Draft:
    """An order that passed the request's checks (parameters, filters, client id format) but
    not yet the matching engine's (duplicates, prices against the market, funds)."""

    spec: SymbolSpec
    side: str
    otype: str
    tif: str
    qty: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    coid: str
    reduce_only: bool
    last: Decimal
    quote_qty_sent: str | None = None

    @property
    def marketable(self) -> bool:
        """Takes on arrival: a MARKET, or a limit that crosses the last price."""
        if self.otype == "MARKET":
            return True
        if self.stop_price is not None or self.price is None:
            return False
        return self.price >= self.last if self.side == "BUY" else self.price <= self.last

    @property
    def lock_price(self) -> Decimal:
        """The price a resting spot BUY holds quote at: its limit, else its stop."""
        if self.price is not None:
            return self.price
        return self.stop_price if self.stop_price is not None else self.last


def _reaches_stop(otype: str, side: str, stop_price: Decimal, last: Decimal) -> bool:
    """Whether ``last`` already reached a spot stop's trigger ("Order would trigger
    immediately."): STOP_LOSS BUY and TAKE_PROFIT SELL trigger on the way up."""
    upward = otype.startswith("STOP_LOSS") == (side == "BUY")
    return last >= stop_price if upward else last <= stop_price


def _check_oco_types(side: str, above: str, below: str) -> None:
    """Binance's leg types for an OCO: errors.md -1158, -1165/-1166, -1168, -1196..-1199."""
    for otype in (above, below):
        if otype not in OCO_LEG_TYPES:
            raise BinanceError(E.OCO_ORDER_TYPE_REJECTED, E.MSG_OCO_TYPE)
    if above == below == "LIMIT_MAKER":
        raise BinanceError(
            E.BOTH_OCO_ORDERS_CANNOT_BE_LIMIT, "At least one OCO order must be contingent."
        )
    # A sell list's stop goes below and its limit (or take-profit) above; a buy's mirror it.
    profit_leg, stop_leg = (above, below) if side == "SELL" else (below, above)
    stop_misplaced, limit_misplaced, profit_misplaced = _OCO_PLACEMENT_ERRORS[side]
    if profit_leg.startswith("STOP_LOSS"):
        raise BinanceError(*stop_misplaced)
    if stop_leg == "LIMIT_MAKER":
        raise BinanceError(*limit_misplaced)
    if stop_leg.startswith("TAKE_PROFIT"):
        raise BinanceError(*profit_misplaced)


# Per side, (code, message) of a stop, a limit and a take-profit on the wrong side of a list.
_OCO_PLACEMENT_ERRORS: dict[str, tuple[tuple[int, str], tuple[int, str], tuple[int, str]]] = {
    "SELL": (
        (E.SELL_OCO_STOP_LOSS_MUST_BE_BELOW, "A stop loss order in a sell OCO must be below."),
        (E.SELL_OCO_LIMIT_MUST_BE_ABOVE, "A limit order in a sell OCO must be above."),
        (E.SELL_OCO_TAKE_PROFIT_MUST_BE_ABOVE, "A take profit order in a sell OCO must be above."),
    ),
    "BUY": (
        (E.BUY_OCO_STOP_LOSS_MUST_BE_ABOVE, "A stop loss order in a buy OCO must be above."),
        (E.BUY_OCO_LIMIT_MUST_BE_BELOW, "A limit order in a buy OCO must be below."),
        (E.BUY_OCO_TAKE_PROFIT_MUST_BE_BELOW, "A take profit order in a buy OCO must be below."),
    ),
}


def _breaks_oco_prices(leg: _Draft) -> bool:
    """A leg against the last price: no stop reached yet, and a LIMIT_MAKER /
    TAKE_PROFIT_LIMIT limit on its side of the market (it would take otherwise)."""
    if leg.stop_price is not None and _reaches_stop(leg.otype, leg.side, leg.stop_price, leg.last):
        return True
    if leg.otype in ("LIMIT_MAKER", "TAKE_PROFIT_LIMIT") and leg.price is not None:
        return leg.price <= leg.last if leg.side == "SELL" else leg.price >= leg.last
    return False


def _leg_error(exc: BinanceError, leg: str) -> BinanceError:
    """An OCO leg's refusal naming the leg's own parameter ('abovePrice', not 'price')."""
    msg = exc.msg
    for suffix, single in _LEG_PARAMS.items():
        msg = msg.replace(f"'{single}'", f"'{leg}{suffix}'")
    return BinanceError(exc.code, msg, exc.http_status, exc.data)


ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT")


@dataclass
class AlgoOrder:
    """A USDⓈ-M conditional order (``/fapi/v1/algoOrder``, algoType CONDITIONAL)."""

    algo_id: int
    account: str
    client_algo_id: str
    symbol: str
    side: str
    order_type: str  # STOP_MARKET / TAKE_PROFIT_MARKET / STOP / TAKE_PROFIT
    time_in_force: str
    quantity: Decimal
    price: Decimal
    trigger_price: Decimal
    reduce_only: bool
    close_position: bool
    working_type: str
    create_time: int
    update_time: int
    seq: int
    status: str = "NEW"  # NEW -> TRIGGERED / FINISHED, CANCELED, EXPIRED
    trigger_time: int = 0
    actual_order_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"

    @property
    def triggers_upward(self) -> bool:
        """STOP(_MARKET) BUY and TAKE_PROFIT(_MARKET) SELL trigger on a rise to triggerPrice."""
        return self.order_type.startswith("STOP") == (self.side == "BUY")


@dataclass
class Position:
    symbol: str
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    update_time: int = 0


# GET /fapi/v1/income's incomeType values (Binance's "Get Income History" page)
INCOME_TYPES = (
    "TRANSFER",
    "WELCOME_BONUS",
    "REALIZED_PNL",
    "FUNDING_FEE",
    "COMMISSION",
    "INSURANCE_CLEAR",
    "REFERRAL_KICKBACK",
    "COMMISSION_REBATE",
    "API_REBATE",
    "CONTEST_REWARD",
    "CROSS_COLLATERAL_TRANSFER",
    "OPTIONS_PREMIUM_FEE",
    "OPTIONS_SETTLE_PROFIT",
    "INTERNAL_TRANSFER",
    "AUTO_EXCHANGE",
    "DELIVERED_SETTELMENT",
    "COIN_SWAP_DEPOSIT",
    "COIN_SWAP_WITHDRAW",
    "POSITION_LIMIT_INCREASE_FEE",
    "STRATEGY_UMFUTURES_TRANSFER",
    "FEE_RETURN",
    "BFUSD_REWARD",
)
WEEK_MS = 7 * 86_400_000
# tranIds of the income rows a trade makes (REALIZED_PNL, COMMISSION): this base plus the
# trade's id, the same for both types ("trandId is unique in the same incomeType for a user",
# and Binance's example shows one tranId on two types); funding rows count from FUNDING_TRAN_ID
TRADE_TRAN_ID = 1_000_000_000
FUNDING_TRAN_ID = 2_000_000_001


@dataclass
class Income:
    """One row of GET /fapi/v1/income: ``income`` signed (negative: paid by the account)."""

    tran_id: int
    symbol: str
    income_type: str
    income: Decimal
    asset: str
    time: int
    trade_id: str = ""  # the trade behind a REALIZED_PNL / COMMISSION row; "" for funding


@dataclass
class Account:
    api_key: str
    secret: str
    spot_free: dict[str, Decimal] = field(default_factory=dict)
    spot_locked: dict[str, Decimal] = field(default_factory=dict)
    futures_wallet: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)  # CROSSED / ISOLATED
    spot_maker_fee: Decimal = _DEC_0_001
    spot_taker_fee: Decimal = _DEC_0_001
    futures_maker_fee: Decimal = _DEC_0_0002
    futures_taker_fee: Decimal = _DEC_0_0005
    # "Using BNB to pay for fees" (the account's switch): a spot trade's commission is taken in
    # BNB at a 25 % discount, priced at BNBUSDT's last price, while the account has the BNB.
    bnb_fees: bool = False
    update_time: int = 0
    # FUNDING_FEE income rows, oldest first (a trade's REALIZED_PNL / COMMISSION rows are made
    # from its Trade when income is read)
    income: list[Income] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Engine (one per market kind)
# ---------------------------------------------------------------------------


class Engine(PricePath[Candle, Trade]):
    """Order book, price path and matching for one market kind (spot or usdm)."""

    candle_type = Candle

    def __init__(
        self,
        kind: MarketKind,
        symbols: Iterable[SymbolSpec],
        state: BinanceState,
    ) -> None:
        self.kind: MarketKind = kind
        self.state = state
        self.symbols: dict[str, SymbolSpec] = {s.symbol: s for s in symbols}
        self.prices: dict[str, Decimal] = {}
        self.candles: dict[str, list[Candle]] = {s: [] for s in self.symbols}
        self.path: dict[str, list[Candle]] = {s: [] for s in self.symbols}
        self.orders: dict[int, Order] = {}
        # (account, symbol) -> {order_id: order}, insertion ordered
        self.open_orders: dict[tuple[str, str], dict[int, Order]] = {}
        # (account, symbol) -> {clientOrderId: latest order_id}
        self.by_client_id: dict[tuple[str, str], dict[str, int]] = {}
        # account -> {clientOrderId of an open order}
        self.open_client_ids: dict[str, set[str]] = {}
        self.bids: dict[str, list[tuple[Decimal, int, int]]] = {s: [] for s in self.symbols}
        self.asks: dict[str, list[tuple[Decimal, int, int]]] = {s: [] for s in self.symbols}
        # untriggered spot stop orders: (stopPrice, seq, id) rising / (-stopPrice, ...) falling
        self.stops_up: dict[str, list[tuple[Decimal, int, int]]] = {s: [] for s in self.symbols}
        self.stops_down: dict[str, list[tuple[Decimal, int, int]]] = {s: [] for s in self.symbols}
        self.open_count: dict[tuple[str, str], int] = {}
        self.open_notional: dict[tuple[str, str], Decimal] = {}
        self.open_markets: dict[str, dict[int, Order]] = {s: {} for s in self.symbols}
        self.trades: dict[tuple[str, str], list[Trade]] = {}
        self.all_orders: dict[tuple[str, str], list[Order]] = {}
        self._order_ids = itertools.count(1_000_001)
        self._trade_ids = itertools.count(500_001)
        self._seq = itertools.count()
        self.market_trades: dict[str, int] = {s: 0 for s in self.symbols}
        # USDⓈ-M conditional (algo) orders
        self.algo_orders: dict[int, AlgoOrder] = {}
        self.algo_by_client: dict[str, dict[str, int]] = {}  # account -> clientAlgoId -> id
        self.algo_up: dict[str, list[tuple[Decimal, int, int]]] = {s: [] for s in self.symbols}
        self.algo_down: dict[str, list[tuple[Decimal, int, int]]] = {s: [] for s in self.symbols}
        self._algo_ids = itertools.count(3_000_001)
        # spot OCO order lists
        self.order_lists: dict[int, OrderList] = {}
        self.lists_by_client: dict[str, dict[str, int]] = {}  # account -> listClientOrderId -> id
        self._list_ids = itertools.count(20_001)

    # -- helpers ---------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.state.clock.now_ms()

    def spec(self, symbol: str | None) -> SymbolSpec:
        if not symbol:
            raise E.mandatory("symbol")
        spec = self.symbols.get(symbol)
        if spec is None:
            raise BinanceError(E.BAD_SYMBOL, E.MSG_INVALID_SYMBOL)
        return spec

    def price(self, symbol: str) -> Decimal:
        price = self.prices.get(symbol)
        if price is None:
            raise BinanceError(E.BAD_SYMBOL, E.MSG_INVALID_SYMBOL)  # no market yet
        return price

    # -- price path ------------------------------------------------------------
    def set_price(self, symbol: str, price: Decimal, ts: int | None = None) -> list[Trade]:
        p = dec(price)
        return self.apply_candle(symbol, Candle(ts if ts is not None else self.now, p, p, p, p))

    def apply_candle(self, symbol: str, candle: Candle) -> list[Trade]:
        """Move the market through one candle: fill limits crossed by low/high."""
        self.spec(symbol)
        if self.kind == "usdm":
            # funding due before this candle is paid at the price before it
            self.state.settle_funding()
        self._record_candle(symbol, candle)
        fills: list[Trade] = []
        # path order: open -> low -> high -> close is approximated by doing
        # both sides at their limit prices; then settle the last price.
        self.prices[symbol] = candle.low
        fills += self._trigger(symbol, candle.low)
        fills += self._trigger_algo(symbol, candle.low)
        fills += self._cross(symbol, candle.low, buy_side=True)
        self.prices[symbol] = candle.high
        fills += self._trigger(symbol, candle.high)
        fills += self._trigger_algo(symbol, candle.high)
        fills += self._cross(symbol, candle.high, buy_side=False)
        self.prices[symbol] = candle.close
        fills += self._trigger(symbol, candle.close)
        fills += self._trigger_algo(symbol, candle.close)
        fills += self._cross(symbol, candle.close, buy_side=True)
        fills += self._cross(symbol, candle.close, buy_side=False)
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
            last.quote_volume += candle.quote_volume
        elif series and series[-1].open_time > minute:
            # replayed history older than the last candle: keep it sorted
            series.append(
                Candle(
                    minute,
                    candle.open,
                    candle.high,
                    candle.low,
                    candle.close,
                    candle.volume,
                    candle.quote_volume,
                    candle.trades,
                )
            )
            series.sort(key=lambda c: c.open_time)
        else:
            series.append(
                Candle(
                    minute,
                    candle.open,
                    candle.high,
                    candle.low,
                    candle.close,
                    candle.volume,
                    candle.quote_volume,
                    candle.trades,
                )
            )

    def _market(self, name: str) -> str:
        self.spec(name)
        return name

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[Candle]:
        self.spec(symbol)
        step = INTERVAL_MS.get(interval)
        if step is None:
            raise BinanceError(-1120, "Invalid interval.")
        buckets: dict[int, Candle] = {}
        for c in self.candles[symbol]:
            key = c.open_time - c.open_time % step
            b = buckets.get(key)
            if b is None:
                buckets[key] = Candle(
                    key, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades
                )
            else:
                b.high = max(b.high, c.high)
                b.low = min(b.low, c.low)
                b.close = c.close
                b.volume += c.volume
                b.quote_volume += c.quote_volume
        out = [
            b
            for k, b in sorted(buckets.items())
            if (start is None or k >= start) and (end is None or k <= end)
        ]
        return out[:limit] if start is not None else out[-limit:]

    # -- validation --------------------------------------------------------------
    def _client_id(self, params: dict[str, str]) -> str:
        coid = params.get("newClientOrderId")
        if not coid:
            return f"fake{next(self._seq):012d}"
        regex = _SPOT_COID_RE if self.kind == "spot" else _FUT_COID_RE
        if not regex.match(coid):
            if self.kind == "usdm":
                raise BinanceError(-4015, "Client order id is not valid.")
            raise BinanceError(
                E.ILLEGAL_CHARS,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            )
        return coid

    def _check_filters(
        self,
        spec: SymbolSpec,
        otype: str,
        qty: Decimal,
        price: Decimal | None,
        raw_qty: str,
        raw_price: str | None,
    ) -> None:
        if self.kind == "spot":
            if price is not None and (
                price < spec.min_price
                or price > spec.max_price
                or (price - spec.min_price) % spec.tick_size != 0
            ):
                raise E.filter_failure("PRICE_FILTER")
            max_qty = spec.market_max_qty if otype == "MARKET" else spec.max_qty
            if qty < spec.min_qty or qty > max_qty or (qty - spec.min_qty) % spec.step_size != 0:
                raise E.filter_failure(
                    "MARKET_LOT_SIZE"
                    if otype == "MARKET" and qty > spec.market_max_qty
                    else "LOT_SIZE"
                )
            ref = price if price is not None else self.price(spec.symbol)
            if qty * ref < spec.min_notional:
                raise E.filter_failure("NOTIONAL")
            return
        # USDⓈ-M futures use dedicated codes instead of "Filter failure: ..."
        if decimals_of(raw_qty) > spec.quantity_precision:
            raise BinanceError(E.BAD_PRECISION, E.MSG_PRECISION)
        if raw_price is not None and decimals_of(raw_price) > spec.price_precision:
            raise BinanceError(E.BAD_PRECISION, E.MSG_PRECISION)
        if qty <= 0:
            raise BinanceError(E.QTY_LESS_THAN_ZERO, "Quantity less than or equal to zero.")
        if qty < spec.min_qty:
            raise BinanceError(E.QTY_LESS_THAN_MIN_QTY, "Quantity less than min quantity.")
        max_qty = spec.market_max_qty if otype == "MARKET" else spec.max_qty
        if qty > max_qty:
            raise BinanceError(E.QTY_GREATER_THAN_MAX_QTY, "Quantity greater than max quantity.")
        if (qty - spec.min_qty) % spec.step_size != 0:
            raise BinanceError(
                E.QTY_NOT_INCREASED_BY_STEP_SIZE, "Quantity not increased by step size."
            )
        if price is not None:
            if price < spec.min_price:
                raise BinanceError(E.PRICE_LESS_THAN_MIN_PRICE, "Price less than min price.")
            if price > spec.max_price:
                raise BinanceError(
                    E.PRICE_GREATER_THAN_MAX_PRICE,
                    f"Limit price can't be higher than {fmt(spec.max_price)}.",
                )
            if (price - spec.min_price) % spec.tick_size != 0:
                raise BinanceError(
                    E.PRICE_NOT_INCREASED_BY_TICK_SIZE, "Price not increased by tick size."
                )

    # -- orders -------------------------------------------------------------------
    def new_order(
        self,
        account: Account,
        params: dict[str, str],
        fill_fraction: Decimal | None = None,
        dry_run: bool = False,
    ) -> Order:
        """Validate and place an order (``dry_run``: validate only, like ``order/test``)."""
        draft = self._draft(account, params)
        self._check_open(account, draft.spec, [draft.coid], market=draft.otype == "MARKET")
        self._check_arrival(draft)
        self.state.check_funds(
            self,
            account,
            draft.spec,
            draft.side,
            draft.otype,
            draft.qty,
            draft.lock_price,
            draft.reduce_only,
            draft.marketable,
        )
        order = self._make_order(account, draft)
        if dry_run:
            return order
        self._cap(order, draft.spec, fill_fraction)
        self._register(order)
        if draft.marketable:
            self._fill(order, draft.spec, order.remaining, draft.last, maker=False)
        if order.remaining > 0 and order.type == "LIMIT" and draft.tif in ("IOC", "FOK"):
            # immediate-or-cancel: whatever did not fill now expires
            order.status = "EXPIRED"
            order.update_time = order.time
            return order
        if order.remaining > 0:
            self._rest(order, account)
        return order

    def _draft(self, account: Account, params: dict[str, str]) -> _Draft:
        """The request's own checks: parameters, filters, client order id format."""
        spec = self.spec(params.get("symbol"))
        side = params.get("side")
        if not side:
            raise E.mandatory("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(E.INVALID_SIDE, "Invalid side.")
        otype = params.get("type")
        if not otype:
            raise E.mandatory("type")
        allowed = SPOT_TYPES if self.kind == "spot" else ("LIMIT", "MARKET")
        if otype not in allowed:
            raise BinanceError(E.INVALID_ORDER_TYPE, "Invalid orderType.")
        last = self.price(spec.symbol)
        tif = params.get("timeInForce", "")
        price: Decimal | None = None
        qty: Decimal | None
        stop_price: Decimal | None = None
        if otype in STOP_TYPES:
            stop_price = parse_decimal(params, "stopPrice")
        if otype in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            if otype != "LIMIT_MAKER":
                if not tif:
                    raise E.mandatory("timeInForce")
                allowed_tif = (
                    ("GTC", "IOC", "FOK")
                    if self.kind == "spot"
                    else ("GTC", "IOC", "FOK", "GTX", "GTD")
                )  # GTD is accepted and treated like GTC (no expiry modelled)
                if tif not in allowed_tif:
                    raise BinanceError(-1115, "Invalid timeInForce.")
            qty = parse_decimal(params, "quantity")
            price = parse_decimal(params, "price")
        elif otype in ("STOP_LOSS", "TAKE_PROFIT"):
            if tif:
                raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
            qty = parse_decimal(params, "quantity")
        else:
            if tif:
                raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
            qty = parse_decimal(params, "quantity", required=False)
            quote_qty = (
                parse_decimal(params, "quoteOrderQty", required=False)
                if self.kind == "spot"
                else None
            )
            if qty is None and quote_qty is not None and self.kind == "spot":
                qty = (quote_qty / last / spec.step_size).to_integral_value(ROUND_DOWN)
                qty *= spec.step_size
            if qty is None:
                if self.kind == "spot":
                    raise BinanceError(
                        E.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                        "Param 'quantity' or 'quoteOrderQty' must be sent, "
                        "but both were empty/null!",
                    )
                raise E.mandatory("quantity")
        assert qty is not None
        self._check_filters(
            spec,
            otype,
            qty,
            price if price is not None else stop_price,
            params.get("quantity") or fmt(qty),
            params.get("price"),
        )
        if stop_price is not None and (
            stop_price < spec.min_price
            or stop_price > spec.max_price
            or (stop_price - spec.min_price) % spec.tick_size != 0
        ):
            raise E.filter_failure("PRICE_FILTER")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        if self.kind == "usdm" and params.get("positionSide", "BOTH") != "BOTH":
            # the fake runs one-way mode only (GET positionSide/dual -> false)
            raise BinanceError(
                E.POSITION_SIDE_NOT_MATCH, "Order's position side does not match user's setting."
            )
        return _Draft(
            spec=spec,
            side=side,
            otype=otype,
            tif=tif,
            qty=qty,
            price=price,
            stop_price=stop_price,
            coid=self._client_id(params),
            reduce_only=reduce_only,
            last=last,
            quote_qty_sent=params.get("quoteOrderQty") if self.kind == "spot" else None,
        )

    def _check_open(
        self, account: Account, spec: SymbolSpec, coids: list[str], market: bool = False
    ) -> None:
        """Client order ids unique among the account's open orders; MAX_NUM_ORDERS counts
        every new resting order (an OCO list adds two)."""
        open_ids = self.open_client_ids.setdefault(account.api_key, set())
        if any(coid in open_ids for coid in coids) or len(set(coids)) < len(coids):
            if self.kind == "spot":
                raise BinanceError(E.NEW_ORDER_REJECTED, E.MSG_DUPLICATE_ORDER)
            raise BinanceError(E.DUPLICATED_CLIENT_ORDER_ID, E.MSG_FUTURES_DUPLICATE)
        key = (account.api_key, spec.symbol)
        if self.open_count.get(key, 0) + len(coids) > spec.max_num_orders and not market:
            if self.kind == "spot":
                raise E.filter_failure("MAX_NUM_ORDERS")
            raise BinanceError(-4041, "Reach max open order limit.")  # guessed message

    def _check_arrival(self, draft: _Draft) -> None:
        """The engine's checks against the last price (stops, post-only, FOK)."""
        if draft.stop_price is not None and _reaches_stop(
            draft.otype, draft.side, draft.stop_price, draft.last
        ):
            raise BinanceError(E.NEW_ORDER_REJECTED, "Order would trigger immediately.")
        if draft.otype == "LIMIT_MAKER" and draft.marketable:
            raise BinanceError(E.NEW_ORDER_REJECTED, E.MSG_WOULD_TAKE)
        if self.kind == "usdm" and draft.tif == "GTX" and draft.marketable:
            raise BinanceError(
                E.POST_ONLY_REJECT,
                "Due to the order could not be executed as maker, the Post Only order will "
                "be rejected.",
            )
        if self.kind == "usdm" and draft.tif == "FOK" and not draft.marketable:
            raise BinanceError(
                E.FOK_REJECT,
                "Due to the order could not be filled immediately, the FOK order has been "
                "rejected.",
            )

    def _make_order(self, account: Account, draft: _Draft, now: int | None = None) -> Order:
        now = self.now if now is None else now
        spec = draft.spec
        return Order(
            order_id=next(self._order_ids),
            account=account.api_key,
            symbol=spec.symbol,
            side=draft.side,
            type=draft.otype,
            time_in_force=draft.tif or "GTC",
            price=draft.price if draft.price is not None else ZERO,
            orig_qty=draft.qty,
            client_order_id=draft.coid,
            time=now,
            update_time=now,
            kind=self.kind,
            reduce_only=draft.reduce_only,
            seq=next(self._seq),
            orig_quote_qty=D(draft.quote_qty_sent) if draft.quote_qty_sent else ZERO,
            stop_price=draft.stop_price or ZERO,
            working=draft.stop_price is None,
            working_time=now if draft.stop_price is None else -1,
            price_dp=8 if self.kind == "spot" else spec.price_precision,
            qty_dp=8 if self.kind == "spot" else spec.quantity_precision,
        )

    @staticmethod
    def _cap(order: Order, spec: SymbolSpec, fill_fraction: Decimal | None) -> None:
        """partial_fill fault: the order's first fill stops at ``fill_fraction`` of it."""
        if fill_fraction is not None:
            cap = (order.orig_qty * fill_fraction / spec.step_size).to_integral_value(ROUND_DOWN)
            order.fill_cap = cap * spec.step_size

    def _register(self, order: Order) -> None:
        key = (order.account, order.symbol)
        self.orders[order.order_id] = order
        self.by_client_id.setdefault(key, {})[order.client_order_id] = order.order_id
        self.all_orders.setdefault(key, []).append(order)

    def _rest(self, order: Order, account: Account) -> None:
        key = (order.account, order.symbol)
        self.open_orders.setdefault(key, {})[order.order_id] = order
        self.open_client_ids.setdefault(order.account, set()).add(order.client_order_id)
        self.open_count[key] = self.open_count.get(key, 0) + 1
        order.ref_price = order.price if order.price else self.prices[order.symbol]
        self.open_notional[key] = (
            self.open_notional.get(key, ZERO) + order.remaining * order.ref_price
        )
        if order.working and order.is_market_like:
            # remainder of a capped market order; continues on the next price move
            self.open_markets[order.symbol][order.order_id] = order
            return
        self._lock(order, account)
        if not order.working:
            if order.triggers_upward:
                heapq.heappush(
                    self.stops_up[order.symbol], (order.stop_price, order.seq, order.order_id)
                )
            else:
                heapq.heappush(
                    self.stops_down[order.symbol], (-order.stop_price, order.seq, order.order_id)
                )
            return
        book = self.bids if order.side == "BUY" else self.asks
        sort_key = -order.price if order.side == "BUY" else order.price
        heapq.heappush(book[order.symbol], (sort_key, order.seq, order.order_id))

    def _lock(self, order: Order, account: Account) -> None:
        """Hold what a resting spot order needs: the quote at its limit (else its stop) for a
        BUY, the base for a SELL. A capped market remainder holds nothing (it pays from free
        funds as it fills), nor does the leg of an OCO list that does not hold the list's."""
        if self.kind != "spot" or not order.holds_funds:
            return
        if order.working and order.is_market_like:
            return
        spec = self.symbols[order.symbol]
        if order.side == "BUY":
            need = order.remaining * (order.price or order.stop_price)
            self.state.move_spot(account, spec.quote, -need, need)
            order.locked = need
        else:
            self.state.move_spot(account, spec.base, -order.remaining, order.remaining)

    def _unrest(self, order: Order) -> None:
        key = (order.account, order.symbol)
        self.open_orders.get(key, {}).pop(order.order_id, None)
        self.open_client_ids.get(order.account, set()).discard(order.client_order_id)
        self.open_count[key] = self.open_count.get(key, 1) - 1
        self.open_notional[key] = (
            self.open_notional.get(key, ZERO) - order.remaining * order.ref_price
        )
        self.open_markets[order.symbol].pop(order.order_id, None)
        if (
            self.kind == "spot"
            and order.holds_funds
            and not (order.working and order.is_market_like)
        ):
            account = self.state.accounts[order.account]
            spec = self.symbols[order.symbol]
            if order.side == "BUY":
                self.state.move_spot(account, spec.quote, order.locked, -order.locked)
                order.locked = ZERO
            else:
                self.state.move_spot(account, spec.base, order.remaining, -order.remaining)

    def _cross(self, symbol: str, price: Decimal, buy_side: bool) -> list[Trade]:
        book = self.bids[symbol] if buy_side else self.asks[symbol]
        fills: list[Trade] = []
        parked: list[tuple[Decimal, int, int]] = []
        spec = self.symbols[symbol]
        while book:
            key, _seq, oid = book[0]
            limit = -key if buy_side else key
            if (buy_side and limit < price) or (not buy_side and limit > price):
                break
            entry = heapq.heappop(book)
            order = self.orders[oid]
            if not order.is_open or order.seq != _seq:
                continue  # cancelled, filled, or re-queued by a modify
            fills += self._fill(order, spec, order.remaining, order.price, maker=True)
            if order.is_open:
                parked.append(entry)  # capped by the partial_fill fault: keeps resting
        for entry in parked:
            heapq.heappush(book, entry)
        return fills

    def _trigger(self, symbol: str, price: Decimal) -> list[Trade]:
        """Activate spot stop orders whose stopPrice the price has reached."""
        fills: list[Trade] = []
        spec = self.symbols[symbol]
        for heap, upward in ((self.stops_up[symbol], True), (self.stops_down[symbol], False)):
            while heap:
                key, _seq, oid = heap[0]
                stop = key if upward else -key
                if (upward and price < stop) or (not upward and price > stop):
                    break
                heapq.heappop(heap)
                order = self.orders[oid]
                if not order.is_open or order.working:
                    continue
                if order.order_list_id != -1:
                    self._resolve_list(order)  # a triggered leg ends its OCO list
                self._unrest(order)  # releases the funds locked at placement
                order.working = True
                order.working_time = order.update_time = self.now
                limit_type = order.type.endswith("_LIMIT")
                takes = not limit_type or (
                    (order.side == "BUY" and order.price >= price)
                    or (order.side == "SELL" and order.price <= price)
                )
                if takes:
                    fills += self._fill(order, spec, order.remaining, price, maker=False)
                if order.is_open and order.remaining > 0:
                    # a limit that did not take rests in the book; a market-like remainder
                    # (only after a partial_fill cap) keeps filling on later moves
                    self._rest(order, self.state.accounts[order.account])
        return fills

    def _continue_partial_markets(self, symbol: str, price: Decimal) -> list[Trade]:
        fills: list[Trade] = []
        spec = self.symbols[symbol]
        for order in list(self.open_markets[symbol].values()):
            order.fill_cap = None
            fills += self._fill(order, spec, order.remaining, price, maker=False)
        return fills

    def _fill(
        self, order: Order, spec: SymbolSpec, qty: Decimal, price: Decimal, maker: bool
    ) -> list[Trade]:
        if order.fill_cap is not None:
            # partial_fill fault: this fill is capped, later ones are not
            qty = min(qty, order.fill_cap - order.executed_qty)
            order.fill_cap = None
        if qty <= 0:
            if order.executed_qty > 0:
                order.status = "PARTIALLY_FILLED"
            return []
        if order.order_list_id != -1:
            self._resolve_list(order)  # a leg filling, even in part, ends its OCO list
        account = self.state.accounts[order.account]
        was_open_resting = order.order_id in self.open_orders.get((order.account, order.symbol), {})
        trade = self.state.settle(
            self, account, spec, order, qty, price, maker, next(self._trade_ids)
        )
        trade.order_list_id = order.order_list_id
        order.executed_qty += qty
        order.cum_quote += qty * price
        if was_open_resting:
            okey = (order.account, order.symbol)
            self.open_notional[okey] = self.open_notional.get(okey, ZERO) - qty * order.ref_price
        order.fills.append(trade)
        order.update_time = trade.time
        self.trades.setdefault((order.account, order.symbol), []).append(trade)
        self.market_trades[order.symbol] += 1
        series = self.candles[order.symbol]
        if series:
            series[-1].volume += qty
            series[-1].quote_volume += qty * price
            series[-1].trades += 1
        if order.remaining == 0:
            order.status = "FILLED"
            if was_open_resting:
                key = (order.account, order.symbol)
                self.open_orders[key].pop(order.order_id, None)
                self.open_client_ids[order.account].discard(order.client_order_id)
                self.open_count[key] -= 1
                self.open_markets[order.symbol].pop(order.order_id, None)
        else:
            order.status = "PARTIALLY_FILLED"
        return [trade]

    def find_order(self, account: Account, params: dict[str, str]) -> Order:
        spec = self.spec(params.get("symbol"))
        oid = params.get("orderId")
        coid = params.get("origClientOrderId")
        if not oid and not coid:
            raise BinanceError(
                E.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order: Order | None = None
        if oid:
            if not oid.isdigit():
                raise E.illegal("orderId")
            order = self.orders.get(int(oid))
            if order is not None and coid and order.client_order_id != coid:
                order = None
        else:
            found = self.by_client_id.get((account.api_key, spec.symbol), {}).get(coid or "")
            order = self.orders.get(found) if found is not None else None
        if order is None or order.account != account.api_key or order.symbol != spec.symbol:
            raise BinanceError(E.NO_SUCH_ORDER, E.MSG_ORDER_NOT_EXIST)
        return order

    def cancel_order(self, account: Account, params: dict[str, str]) -> Order:
        return self.cancel_with_list(account, params)[0]

    def cancel_with_list(
        self, account: Account, params: dict[str, str]
    ) -> tuple[Order, OrderList | None]:
        """DELETE /api/v3/order: the order, and the OCO list it ended with it if it was a leg
        of an executing one ("If you cancel an order that is a part of an order list, the
        entire order list is canceled.")."""
        try:
            order = self.find_order(account, params)
        except BinanceError as exc:
            if exc.code == E.NO_SUCH_ORDER:
                raise BinanceError(E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER) from exc
            raise
        if not order.is_open:
            raise BinanceError(E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER)
        lst = self.order_lists.get(order.order_list_id)
        if lst is not None and lst.is_open:
            self._cancel_list(lst)
            return order, lst
        self._cancel_one(order)
        return order, None

    def _cancel_one(self, order: Order) -> None:
        self._unrest(order)
        order.status = "CANCELED"
        order.update_time = self.now

    def modify_order(self, account: Account, params: dict[str, str]) -> Order:
        """PUT /fapi/v1/order (USDⓈ-M "Modify Order"): new price/quantity of an open LIMIT
        order, same orderId; the order loses its queue priority."""
        if self.kind != "usdm":
            raise BinanceError(E.INVALID_ORDER_TYPE, "Invalid orderType.")
        spec = self.spec(params.get("symbol"))
        side = params.get("side")
        if not side:
            raise E.mandatory("side")
        qty = parse_decimal(params, "quantity")
        price = parse_decimal(params, "price")
        assert qty is not None and price is not None
        order = self.find_order(account, params)
        if not order.is_open:
            raise BinanceError(E.NO_SUCH_ORDER, E.MSG_ORDER_NOT_EXIST)
        if side != order.side:
            raise BinanceError(E.INVALID_SIDE, "Invalid side.")  # guessed code
        self._check_filters(
            spec, "LIMIT", qty, price, params.get("quantity") or "", params.get("price")
        )
        if qty == order.orig_qty and price == order.price:
            raise BinanceError(-5027, "No need to modify the order.")
        if qty <= order.executed_qty:
            raise BinanceError(-4003, "Quantity less than or equal to zero.")  # guessed
        self._unrest(order)
        order.orig_qty, order.price = qty, price
        order.seq = next(self._seq)
        order.update_time = self.now
        last = self.price(spec.symbol)
        if (side == "BUY" and price >= last) or (side == "SELL" and price <= last):
            self._fill(order, spec, order.remaining, last, maker=False)
        if order.remaining > 0:
            self._rest(order, account)
        return order

    def cancel_all(self, account: Account, symbol: str | None) -> list[Order]:
        spec = self.spec(symbol)
        orders = list(self.open_orders.get((account.api_key, spec.symbol), {}).values())
        lists = {
            o.order_list_id: self.order_lists[o.order_list_id]
            for o in orders
            if o.order_list_id != -1
        }
        for order in orders:
            self._cancel_one(order)
        for lst in lists.values():
            if lst.is_open:  # "This includes orders that are part of an order list."
                self._close_list(lst)
        return orders

    def list_open(self, account: Account, symbol: str | None) -> list[Order]:
        if symbol:
            spec = self.spec(symbol)
            return list(self.open_orders.get((account.api_key, spec.symbol), {}).values())
        out: list[Order] = []
        for (acct, _sym), orders in self.open_orders.items():
            if acct == account.api_key:
                out.extend(orders.values())
        return sorted(out, key=lambda o: o.order_id)

    def list_all(self, account: Account, params: dict[str, str]) -> list[Order]:
        spec = self.spec(params.get("symbol"))
        orders = self.all_orders.get((account.api_key, spec.symbol), [])
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
        from_id = int(params["orderId"]) if params.get("orderId") else None
        limit = min(int(params.get("limit") or 500), 1000)
        out = [
            o
            for o in orders
            if (start is None or o.time >= start)
            and (end is None or o.time <= end)
            and (from_id is None or o.order_id >= from_id)
        ]
        return out[:limit] if (from_id is not None or start is not None) else out[-limit:]

    def list_trades(self, account: Account, params: dict[str, str]) -> list[Trade]:
        spec = self.spec(params.get("symbol"))
        trades = self.trades.get((account.api_key, spec.symbol), [])
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
        from_id = int(params["fromId"]) if params.get("fromId") else None
        order_id = int(params["orderId"]) if params.get("orderId") else None
        limit = min(int(params.get("limit") or 500), 1000)
        out = [
            t
            for t in trades
            if (start is None or t.time >= start)
            and (end is None or t.time <= end)
            and (from_id is None or t.id >= from_id)
            and (order_id is None or t.order_id == order_id)
        ]
        return out[:limit] if (from_id is not None or start is not None) else out[-limit:]

    # -- spot OCO order lists -------------------------------------------------------
    def new_order_list(
        self,
        account: Account,
        params: dict[str, str],
        fill_fraction: Decimal | None = None,
    ) -> OrderList:
        """POST /api/v3/orderList/oco ("New Order list - OCO"): two legs of one quantity,
        the above and the below order; all of it is checked before anything is placed.

        Binance's rules: a SELL list has a LIMIT_MAKER / TAKE_PROFIT(_LIMIT) above and a
        STOP_LOSS(_LIMIT) below; a BUY list the mirror. Each leg passes a single order's
        request checks; against the last price, "LIMIT_MAKER/TAKE_PROFIT_LIMIT price > Last
        Traded Price > STOP_LOSS/STOP_LOSS_LIMIT stopPrice" (SELL, mirrored for BUY), else
        -2010 "The relationship of the prices for the orders is not correct.".
        The list holds its funds once (see :meth:`_list_holder`)."""
        spec = self.spec(params.get("symbol"))
        side = params.get("side")
        if not side:
            raise E.mandatory("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(E.INVALID_SIDE, "Invalid side.")
        list_coid = self._list_client_id(params)
        above_type, below_type = params.get("aboveType"), params.get("belowType")
        if not above_type:
            raise E.mandatory("aboveType")
        if not below_type:
            raise E.mandatory("belowType")
        _check_oco_types(side, above_type, below_type)
        above = self._leg_draft(account, params, "above", side)
        below = self._leg_draft(account, params, "below", side)
        # the STOP_LOSS(_LIMIT) leg first, as in every list Binance's docs show
        legs = [below, above] if below.otype.startswith("STOP_LOSS") else [above, below]
        if self._open_list_id(account, list_coid) is not None:
            raise BinanceError(E.NEW_ORDER_REJECTED, E.MSG_DUPLICATE_ORDER)  # guessed
        self._check_open(account, spec, [d.coid for d in legs])
        if any(_breaks_oco_prices(d) for d in legs):
            raise BinanceError(E.NEW_ORDER_REJECTED, E.MSG_OCO_PRICES)
        # funds once for the list: the larger of what each leg alone would hold
        biggest = max(legs, key=lambda d: d.lock_price)
        self.state.check_funds(
            self, account, spec, side, biggest.otype, biggest.qty, biggest.lock_price, False, False
        )
        now = self.now  # one transaction: the list and both legs share its time
        orders = [self._make_order(account, d, now) for d in legs]
        lst = OrderList(
            next(self._list_ids),
            account.api_key,
            spec.symbol,
            list_coid,
            (orders[0].order_id, orders[1].order_id),
            now,
            now,
        )
        holder = self._list_holder(orders)
        for order in orders:
            order.order_list_id = lst.order_list_id
            order.holds_funds = order is holder
            self._cap(order, spec, fill_fraction)  # whichever leg fills first is capped
            self._register(order)
            self._rest(order, account)  # neither leg is marketable (checked above)
        self.order_lists[lst.order_list_id] = lst
        self.lists_by_client.setdefault(account.api_key, {})[list_coid] = lst.order_list_id
        return lst

    def _leg_draft(self, account: Account, params: dict[str, str], leg: str, side: str) -> _Draft:
        """One leg checked as the single order of its type would be, its refusals naming the
        leg's parameters ("Mandatory parameter 'belowStopPrice' ...")."""
        single = {"symbol": params.get("symbol", ""), "side": side, "type": params[f"{leg}Type"]}
        if params.get("quantity") is not None:
            single["quantity"] = params["quantity"]
        for suffix, name in _LEG_PARAMS.items():
            value = params.get(f"{leg}{suffix}")
            if value is not None:
                single[name] = value
        try:
            return self._draft(account, single)
        except BinanceError as exc:
            raise _leg_error(exc, leg) from None

    def _list_client_id(self, params: dict[str, str]) -> str:
        coid = params.get("listClientOrderId")
        if not coid:
            return f"fakelist{next(self._seq):012d}"
        if not _SPOT_COID_RE.match(coid):  # guessed: the legs' rule
            raise BinanceError(
                E.ILLEGAL_CHARS,
                "Illegal characters found in parameter 'listClientOrderId'; "
                "legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            )
        return coid

    def _open_list_id(self, account: Account, list_coid: str) -> int | None:
        """The executing list of the account under ``list_coid``: "A new order list with the
        same listClientOrderId is accepted only when the previous one is filled or completely
        expired"."""
        found = self.lists_by_client.get(account.api_key, {}).get(list_coid)
        lst = self.order_lists.get(found) if found is not None else None
        return lst.order_list_id if lst is not None and lst.is_open else None

    def _list_holder(self, orders: list[Order]) -> Order:
        """The leg that holds the list's funds: a SELL list holds ``quantity`` of the base once
        (on its first leg), a BUY list the quote for the leg that needs the most (quantity x
        its limit, else its stop), so the list holds max(legs) and never both."""
        if orders[0].side == "SELL":
            return orders[0]
        return max(orders, key=lambda o: o.price or o.stop_price)

    def _resolve_list(self, order: Order) -> None:
        """``order``, a leg of an executing OCO list, fills (even in part) or triggers: the
        other leg expires at once and the list is ALL_DONE. From now on ``order`` holds its
        own funds as a single order would (it may not be the leg that held the list's: then
        the other leg's release frees what it needs)."""
        lst = self.order_lists.get(order.order_list_id)
        if lst is None or not lst.is_open:
            return
        for oid in lst.order_ids:
            other = self.orders[oid]
            if other is not order and other.is_open:
                self._unrest(other)
                other.status = "EXPIRED"
                other.update_time = self.now
        self._close_list(lst)
        if not order.holds_funds:
            order.holds_funds = True
            if order.order_id in self.open_orders.get((order.account, order.symbol), {}):
                self._lock(order, self.state.accounts[order.account])

    def _close_list(self, lst: OrderList) -> None:
        lst.status = lst.order_status = "ALL_DONE"
        lst.update_time = self.now

    def _cancel_list(self, lst: OrderList) -> None:
        for oid in lst.order_ids:
            order = self.orders[oid]
            if order.is_open:
                self._cancel_one(order)
        self._close_list(lst)

    def list_legs(self, lst: OrderList) -> list[Order]:
        return [self.orders[oid] for oid in lst.order_ids]

    def _lookup_list(
        self, account: Account, raw_id: str | None, coid: str | None
    ) -> OrderList | None:
        """By orderListId (then checked against the client id if both are sent, as Binance
        says), else by listClientOrderId; only the account's own lists."""
        lst: OrderList | None
        if raw_id:
            if not raw_id.isdigit():
                raise E.illegal("orderListId")
            lst = self.order_lists.get(int(raw_id))
            if lst is not None and coid and lst.client_id != coid:
                lst = None
        else:
            found = self.lists_by_client.get(account.api_key, {}).get(coid or "")
            lst = self.order_lists.get(found) if found is not None else None
        return lst if lst is not None and lst.account == account.api_key else None

    def find_order_list(self, account: Account, params: dict[str, str]) -> OrderList:
        """GET /api/v3/orderList (no symbol): by orderListId or origClientOrderId (the
        list's listClientOrderId)."""
        raw_id, coid = params.get("orderListId"), params.get("origClientOrderId")
        if not raw_id and not coid:
            raise BinanceError(  # guessed wording, as for GET /api/v3/order
                E.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                "Param 'orderListId' or 'origClientOrderId' must be sent, but both were "
                "empty/null!",
            )
        lst = self._lookup_list(account, raw_id, coid)
        if lst is None:
            raise BinanceError(E.NO_SUCH_ORDER, E.MSG_ORDER_LIST_NOT_EXIST)
        return lst

    def cancel_order_list(self, account: Account, params: dict[str, str]) -> OrderList:
        """DELETE /api/v3/orderList ("Cancel Order list"): both legs CANCELED, ALL_DONE."""
        spec = self.spec(params.get("symbol"))
        raw_id, coid = params.get("orderListId"), params.get("listClientOrderId")
        if not raw_id and not coid:
            raise BinanceError(  # guessed wording
                E.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                "Param 'orderListId' or 'listClientOrderId' must be sent, but both were "
                "empty/null!",
            )
        lst = self._lookup_list(account, raw_id, coid)
        if lst is None or lst.symbol != spec.symbol or not lst.is_open:
            raise BinanceError(E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER_LIST)
        self._cancel_list(lst)
        return lst

    def list_order_lists(
        self, account: Account, params: dict[str, str], open_only: bool
    ) -> list[OrderList]:
        """GET /api/v3/openOrderList (every symbol) and GET /api/v3/allOrderList (fromId,
        startTime, endTime, limit: Default 500; Maximum 1000)."""
        lists = [
            lst
            for lst in self.order_lists.values()
            if lst.account == account.api_key and (lst.is_open or not open_only)
        ]
        if open_only:
            return lists
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
        from_id = int(params["fromId"]) if params.get("fromId") else None
        limit = min(int(params.get("limit") or 500), 1000)
        out = [
            lst
            for lst in lists
            if (start is None or lst.time >= start)
            and (end is None or lst.time <= end)
            and (from_id is None or lst.order_list_id >= from_id)
        ]
        return out[:limit] if (from_id is not None or start is not None) else out[-limit:]

    # -- USDⓈ-M conditional (algo) orders ------------------------------------------
    def new_algo(self, account: Account, params: dict[str, str]) -> AlgoOrder:
        """POST /fapi/v1/algoOrder (USDⓈ-M "New Algo Order", algoType=CONDITIONAL)."""
        if not params.get("algoType"):
            raise E.mandatory("algoType")
        if params["algoType"] != "CONDITIONAL":
            raise BinanceError(-4500, "Invalid algoType.")  # guessed wording
        spec = self.spec(params.get("symbol"))
        side = params.get("side")
        if not side:
            raise E.mandatory("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(E.INVALID_SIDE, "Invalid side.")
        otype = params.get("type")
        if not otype:
            raise E.mandatory("type")
        if otype not in ALGO_TYPES:
            raise BinanceError(E.INVALID_ORDER_TYPE, "Invalid orderType.")
        if params.get("positionSide", "BOTH") != "BOTH":
            raise BinanceError(
                E.POSITION_SIDE_NOT_MATCH, "Order's position side does not match user's setting."
            )
        trigger = parse_decimal(params, "triggerPrice")
        assert trigger is not None
        close_position = params.get("closePosition", "false").lower() == "true"
        qty = parse_decimal(params, "quantity", required=not close_position)
        price = parse_decimal(params, "price", required=otype in ("STOP", "TAKE_PROFIT"))
        tif = params.get("timeInForce") or "GTC"
        raw_trigger = params.get("triggerPrice") or ""
        if decimals_of(raw_trigger) > spec.price_precision:
            raise BinanceError(E.BAD_PRECISION, E.MSG_PRECISION)
        if (trigger - spec.min_price) % spec.tick_size != 0:
            raise BinanceError(
                E.PRICE_NOT_INCREASED_BY_TICK_SIZE, "Price not increased by tick size."
            )
        if qty is not None:
            self._check_filters(
                spec,
                "LIMIT" if price is not None else "MARKET",
                qty,
                price,
                params.get("quantity") or fmt(qty),
                params.get("price"),
            )
        coid = params.get("clientAlgoId") or f"algo{next(self._seq):012d}"
        if not _FUT_COID_RE.match(coid):
            raise BinanceError(-4015, "Client order id is not valid.")
        by_client = self.algo_by_client.setdefault(account.api_key, {})
        previous = self.algo_orders.get(by_client.get(coid, -1))
        if previous is not None and previous.is_open:
            raise BinanceError(-20132, "The client algo id is duplicated.")
        last = self.price(spec.symbol)
        upward = otype.startswith("STOP") == (side == "BUY")
        if (upward and last >= trigger) or (not upward and last <= trigger):
            raise BinanceError(-2021, "Order would immediately trigger.")
        if spec.trigger_step > 0:
            trigger = (trigger / spec.trigger_step).to_integral_value(ROUND_HALF_EVEN)
            trigger *= spec.trigger_step
        now = self.now
        algo = AlgoOrder(
            algo_id=next(self._algo_ids),
            account=account.api_key,
            client_algo_id=coid,
            symbol=spec.symbol,
            side=side,
            order_type=otype,
            time_in_force=tif,
            quantity=qty if qty is not None else ZERO,
            price=price if price is not None else ZERO,
            trigger_price=trigger,
            reduce_only=params.get("reduceOnly", "false").lower() == "true",
            close_position=close_position,
            working_type=params.get("workingType") or "CONTRACT_PRICE",
            create_time=now,
            update_time=now,
            seq=next(self._seq),
        )
        self.algo_orders[algo.algo_id] = algo
        by_client[coid] = algo.algo_id
        if upward:
            heapq.heappush(self.algo_up[spec.symbol], (trigger, algo.seq, algo.algo_id))
        else:
            heapq.heappush(self.algo_down[spec.symbol], (-trigger, algo.seq, algo.algo_id))
        return algo

    def find_algo(self, account: Account, params: dict[str, str]) -> AlgoOrder:
        raw_id = params.get("algoId")
        coid = params.get("clientAlgoId")
        if not raw_id and not coid:
            raise E.mandatory("algoId")
        algo: AlgoOrder | None = None
        if raw_id:
            if not raw_id.isdigit():
                raise E.illegal("algoId")
            algo = self.algo_orders.get(int(raw_id))
        else:
            found = self.algo_by_client.get(account.api_key, {}).get(coid or "")
            algo = self.algo_orders.get(found) if found is not None else None
        if algo is None or algo.account != account.api_key:
            raise BinanceError(E.NO_SUCH_ORDER, E.MSG_ORDER_NOT_EXIST)  # guessed code
        return algo

    def cancel_algo(self, account: Account, params: dict[str, str]) -> AlgoOrder:
        try:
            algo = self.find_algo(account, params)
        except BinanceError as exc:
            if exc.code == E.NO_SUCH_ORDER:
                raise BinanceError(E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER) from exc
            raise
        if not algo.is_open:
            raise BinanceError(E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER)
        algo.status = "CANCELED"
        algo.update_time = self.now
        return algo

    def list_algo(self, account: Account, symbol: str | None, open_only: bool) -> list[AlgoOrder]:
        if symbol:
            self.spec(symbol)
        return [
            a
            for a in self.algo_orders.values()
            if a.account == account.api_key
            and (not symbol or a.symbol == symbol)
            and (a.is_open or not open_only)
        ]

    def _trigger_algo(self, symbol: str, price: Decimal) -> list[Trade]:
        """Place the regular order of every conditional order whose trigger was reached."""
        if self.kind != "usdm":
            return []
        fills: list[Trade] = []
        for heap, upward in ((self.algo_up[symbol], True), (self.algo_down[symbol], False)):
            while heap:
                key, _seq, aid = heap[0]
                trigger = key if upward else -key
                if (upward and price < trigger) or (not upward and price > trigger):
                    break
                heapq.heappop(heap)
                algo = self.algo_orders[aid]
                if not algo.is_open:
                    continue
                fills += self._place_triggered(algo)
        return fills

    def _place_triggered(self, algo: AlgoOrder) -> list[Trade]:
        account = self.state.accounts[algo.account]
        algo.trigger_time = algo.update_time = self.now
        qty = algo.quantity
        reduce_only = algo.reduce_only
        if algo.close_position:
            pos = account.positions.get(algo.symbol)
            closing_side = "SELL" if pos is not None and pos.amount > 0 else "BUY"
            if pos is None or pos.amount == 0 or closing_side != algo.side:
                algo.status = "EXPIRED"
                return []
            qty, reduce_only = abs(pos.amount), True
        params = {
            "symbol": algo.symbol,
            "side": algo.side,
            "type": "LIMIT" if algo.order_type in ("STOP", "TAKE_PROFIT") else "MARKET",
            "quantity": fmt(qty),
            "newClientOrderId": algo.client_algo_id,
            "reduceOnly": "true" if reduce_only else "false",
        }
        if params["type"] == "LIMIT":
            params["price"] = fmt(algo.price)
            params["timeInForce"] = algo.time_in_force
        before = len(self.trades.get((algo.account, algo.symbol), []))
        try:
            order = self.new_order(account, params)
        except BinanceError:
            algo.status = "EXPIRED"  # the triggered order was refused (guessed status)
            return []
        algo.actual_order_id = order.order_id
        algo.status = "TRIGGERED" if order.is_open else "FINISHED"
        return self.trades.get((algo.account, algo.symbol), [])[before:]


# ---------------------------------------------------------------------------
# Whole venue
# ---------------------------------------------------------------------------


class BinanceState:
    """Accounts plus a spot engine and a USDⓈ-M futures engine."""

    def __init__(
        self,
        spot_symbols: Iterable[SymbolSpec] | None = None,
        futures_symbols: Iterable[SymbolSpec] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.funding = FundingSchedule(self.clock.now_ms())
        self._funding_tran_ids = itertools.count(FUNDING_TRAN_ID)
        # the rates each settled (or seeded) instant lists: GET /fapi/v1/fundingRate
        self.funding_rates = FundingRateLog()
        self.accounts: dict[str, Account] = {}
        self.spot = Engine("spot", spot_symbols or default_spot_symbols(), self)
        self.usdm = Engine("usdm", futures_symbols or default_futures_symbols(), self)
        for engine in (self.spot, self.usdm):
            for spec in engine.symbols.values():
                engine.prices[spec.symbol] = D("100") if spec.quote == "USDT" else D("0.05")
        for sym, px in (("BTCUSDT", "50000"), ("ETHUSDT", "3000"), ("ETHBTC", "0.06")):
            for engine in (self.spot, self.usdm):
                if sym in engine.symbols:
                    engine.prices[sym] = D(px)

    def engine(self, kind: MarketKind) -> Engine:
        return self.spot if kind == "spot" else self.usdm

    # -- accounts ----------------------------------------------------------------
    def add_account(
        self,
        api_key: str,
        secret: str,
        spot: dict[str, object] | None = None,
        futures: dict[str, object] | None = None,
        bnb_fees: bool = False,
    ) -> Account:
        with self.lock:
            acct = Account(api_key, secret, bnb_fees=bnb_fees)
            for asset, amount in (spot or {}).items():
                acct.spot_free[asset] = dec(amount)
                acct.spot_locked[asset] = ZERO
            for asset, amount in (futures or {}).items():
                acct.futures_wallet[asset] = dec(amount)
            acct.update_time = self.clock.now_ms()
            self.accounts[api_key] = acct
            return acct

    def move_spot(self, account: Account, asset: str, free: Decimal, locked: Decimal) -> None:
        account.spot_free[asset] = account.spot_free.get(asset, ZERO) + free
        account.spot_locked[asset] = account.spot_locked.get(asset, ZERO) + locked
        account.update_time = self.clock.now_ms()

    # -- futures margin ------------------------------------------------------------
    def leverage(self, account: Account, symbol: str) -> int:
        return account.leverage.get(symbol, 20)

    def position(self, account: Account, symbol: str) -> Position:
        pos = account.positions.get(symbol)
        if pos is None:
            pos = account.positions[symbol] = Position(symbol)
        return pos

    def unrealized(self, account: Account, symbol: str) -> Decimal:
        pos = account.positions.get(symbol)
        if pos is None or pos.amount == 0:
            return ZERO
        return pos.amount * (self.usdm.prices[symbol] - pos.entry_price)

    def position_margin(self, account: Account, symbol: str) -> Decimal:
        pos = account.positions.get(symbol)
        if pos is None or pos.amount == 0:
            return ZERO
        return abs(pos.amount) * self.usdm.prices[symbol] / self.leverage(account, symbol)

    def open_order_margin(self, account: Account, symbol: str) -> Decimal:
        """Initial margin held by open orders (kept incrementally: O(1) per order)."""
        notional = self.usdm.open_notional.get((account.api_key, symbol), ZERO)
        return notional / self.leverage(account, symbol)

    def futures_totals(self, account: Account) -> dict[str, Decimal]:
        wallet = account.futures_wallet.get("USDT", ZERO)
        upnl = sum((self.unrealized(account, s) for s in account.positions), ZERO)
        pos_im = sum((self.position_margin(account, s) for s in self.usdm.symbols), ZERO)
        ord_im = sum((self.open_order_margin(account, s) for s in self.usdm.symbols), ZERO)
        maint = sum(
            (
                abs(p.amount) * self.usdm.prices[s] * D("0.004")
                for s, p in account.positions.items()
            ),
            ZERO,
        )
        available = wallet + upnl - pos_im - ord_im
        return {
            "wallet": wallet,
            "upnl": upnl,
            "margin_balance": wallet + upnl,
            "position_im": pos_im,
            "order_im": ord_im,
            "initial": pos_im + ord_im,
            "maint": maint,
            "available": available,
        }

    def check_funds(
        self,
        engine: Engine,
        account: Account,
        spec: SymbolSpec,
        side: str,
        otype: str,
        qty: Decimal,
        price: Decimal,
        reduce_only: bool,
        marketable: bool,
    ) -> None:
        if engine.kind == "spot":
            if side == "BUY":
                need, asset = qty * price, spec.quote
            else:
                need, asset = qty, spec.base
            if account.spot_free.get(asset, ZERO) < need:
                raise BinanceError(E.NEW_ORDER_REJECTED, E.MSG_INSUFFICIENT_BALANCE)
            return
        pos = account.positions.get(spec.symbol)
        amount = pos.amount if pos else ZERO
        signed = qty if side == "BUY" else -qty
        if reduce_only and (amount == 0 or (amount > 0) == (signed > 0) or qty > abs(amount)):
            raise BinanceError(E.REDUCE_ONLY_REJECT, E.MSG_REDUCE_ONLY)
        if spec.min_notional and qty * price < spec.min_notional and not reduce_only:
            raise BinanceError(
                E.MIN_NOTIONAL,
                f"Order's notional must be no smaller than {fmt(spec.min_notional)} "
                "(unless you choose reduce only).",
            )
        # only the part that increases exposure needs margin
        if amount != 0 and (amount > 0) != (signed > 0):
            increase = max(ZERO, qty - abs(amount))
        else:
            increase = qty
        need = increase * price / self.leverage(account, spec.symbol)
        if marketable:
            need += qty * price * account.futures_taker_fee
        if need > 0 and need > self.futures_totals(account)["available"]:
            raise BinanceError(E.MARGIN_NOT_SUFFICIENT, E.MSG_MARGIN_INSUFFICIENT)

    # -- settlement -------------------------------------------------------------
    def _bnb_commission(
        self, engine: Engine, account: Account, spec: SymbolSpec, quote_fee: Decimal
    ) -> Decimal | None:
        """A spot commission of ``quote_fee`` (in the symbol's quote) taken in BNB instead, at
        25 % off and BNBUSDT's last price: None when the account's switch is off, the symbol
        is BNB's own or not quoted in USDT, BNB has no price, or the account lacks the BNB
        (Binance then takes the commission as without the switch)."""
        if not account.bnb_fees or spec.base == "BNB" or spec.quote != "USDT":
            return None
        price = engine.prices.get("BNBUSDT")
        if not price:
            return None
        fee = (quote_fee * D("0.75") / price).quantize(D("1e-8"))
        if account.spot_free.get("BNB", ZERO) < fee:
            return None
        return fee

    def settle(
        self,
        engine: Engine,
        account: Account,
        spec: SymbolSpec,
        order: Order,
        qty: Decimal,
        price: Decimal,
        maker: bool,
        trade_id: int,
    ) -> Trade:
        now = self.clock.now_ms()
        notional = qty * price
        if engine.kind == "spot":
            rate = account.spot_maker_fee if maker else account.spot_taker_fee
            resting = order.order_id in engine.open_orders.get((order.account, order.symbol), {})
            in_bnb = self._bnb_commission(engine, account, spec, notional * rate)
            if order.side == "BUY":
                if in_bnb is not None:
                    fee, fee_asset = in_bnb, "BNB"
                else:
                    fee, fee_asset = (qty * rate).quantize(D("1e-8")), spec.base
                if resting and not order.is_market_like:
                    # consumes locked quote at the limit price
                    used = qty * order.price
                    order.locked -= used
                    self.move_spot(account, spec.quote, ZERO, -used)
                else:
                    self.move_spot(account, spec.quote, -notional, ZERO)
                self.move_spot(account, spec.base, qty if in_bnb is not None else qty - fee, ZERO)
            else:
                if in_bnb is not None:
                    fee, fee_asset = in_bnb, "BNB"
                else:
                    fee, fee_asset = (notional * rate).quantize(D("1e-8")), spec.quote
                if resting and not order.is_market_like:
                    self.move_spot(account, spec.base, ZERO, -qty)
                else:
                    self.move_spot(account, spec.base, -qty, ZERO)
                received = notional if in_bnb is not None else notional - fee
                self.move_spot(account, spec.quote, received, ZERO)
            if in_bnb is not None:
                self.move_spot(account, "BNB", -fee, ZERO)
            return Trade(
                trade_id,
                order.order_id,
                order.symbol,
                order.side,
                price,
                qty,
                fee,
                fee_asset,
                now,
                maker,
            )
        rate = account.futures_maker_fee if maker else account.futures_taker_fee
        fee = (notional * rate).quantize(D("1e-8"))
        pos = self.position(account, spec.symbol)
        signed = qty if order.side == "BUY" else -qty
        realized = ZERO
        if pos.amount == 0 or (pos.amount > 0) == (signed > 0):
            total = abs(pos.amount) + qty
            pos.entry_price = (abs(pos.amount) * pos.entry_price + qty * price) / total
            pos.amount += signed
        else:
            closing = min(qty, abs(pos.amount))
            direction = D(1) if pos.amount > 0 else D(-1)
            realized = closing * (price - pos.entry_price) * direction
            pos.amount += signed
            if pos.amount == 0:
                pos.entry_price = ZERO
            elif (pos.amount > 0) != (direction > 0):
                pos.entry_price = price  # flipped
        pos.update_time = now
        account.futures_wallet["USDT"] = account.futures_wallet.get("USDT", ZERO) + realized - fee
        account.update_time = now
        return Trade(
            trade_id,
            order.order_id,
            order.symbol,
            order.side,
            price,
            qty,
            fee,
            "USDT",
            now,
            maker,
            realized,
        )

    # -- funding (USDⓈ-M) ----------------------------------------------------------
    def set_funding_rate(self, symbol: str, rate: Decimal) -> None:
        """The rate ``symbol`` pays at its next funding instants (and premiumIndex shows)."""
        if symbol not in self.usdm.symbols:
            known = ", ".join(self.usdm.symbols)
            raise ValueError(
                f"symbol {symbol!r} is not a USDⓈ-M symbol of the fake; known: {known}"
            )
        self.funding.set_rate(symbol, check_rate(symbol, dec(rate)))

    def settle_funding(self) -> list[Income]:
        """Pay the funding of every instant the clock passed since it was last observed."""
        rows: list[Income] = []
        for at in self.funding.due(self.clock.now_ms()):
            for symbol in self.usdm.symbols:
                # what the history lists is what this instant paid, at the mark it paid at
                self.funding_rates.record(
                    symbol, at, self.funding.rate(symbol), self.usdm.prices[symbol]
                )
            for account in self.accounts.values():
                rows += self._fund_account(account, at)
        return rows

    def seed_funding_history(
        self, symbol: str, first_ms: int, rates: Iterable[object], mark: object | None = None
    ) -> list[int]:
        """List ``rates`` in GET /fapi/v1/fundingRate at ``first_ms`` (a funding instant)
        and every funding interval after it, all before the venue's clock (instants the fake
        never paid: nothing was held then); the instants. ``mark`` defaults to the last
        price."""
        self.usdm.spec(symbol)
        self.settle_funding()  # the instants passed so far are listed at what they paid
        checked = [check_rate(symbol, dec(r)) for r in rates]
        price = dec(mark) if mark is not None else self.usdm.prices[symbol]
        return self.funding_rates.seed(
            symbol, first_ms, checked, price, self.funding.interval_ms, self.clock.now_ms()
        )

    def funding_rate_history(
        self, symbol: str | None, window: tuple[int | None, int | None], limit: int
    ) -> list[ListedRate]:
        """GET /fapi/v1/fundingRate's rows, oldest first: ``window`` is (startTime, endTime),
        both inclusive; with a startTime the first ``limit`` rows from it ("return as
        startTime + limit"), else the latest ``limit`` (up to endTime or now: guessed); no
        symbol: every symbol's."""
        symbols = [self.usdm.spec(symbol).symbol] if symbol is not None else list(self.usdm.symbols)
        start, end = window
        if start is not None and end is not None and start > end:
            # guessed: the income endpoint's answer
            raise BinanceError(E.START_AFTER_END, "Start time is greater than end time.")
        upto = min(end, self.clock.now_ms()) if end is not None else self.clock.now_ms()
        rows = self.funding_rates.between(symbols, start if start is not None else 0, upto)
        return rows[:limit] if start is not None else rows[-limit:]

    def _fund_account(self, account: Account, at: int) -> list[Income]:
        rows: list[Income] = []
        for symbol, pos in account.positions.items():
            if pos.amount == 0:
                continue
            mark = self.usdm.prices[symbol]
            paid = funding_payment(pos.amount, mark, self.funding.rate(symbol))
            if paid == 0:
                continue  # guessed: no row for a zero payment (a zero rate)
            row = Income(next(self._funding_tran_ids), symbol, "FUNDING_FEE", -paid, "USDT", at)
            account.futures_wallet["USDT"] = account.futures_wallet.get("USDT", ZERO) - paid
            account.update_time = at
            account.income.append(row)
            rows.append(row)
        return rows

    def income(
        self,
        account: Account,
        symbol: str | None,
        income_type: str | None,
        window: tuple[int | None, int | None],
        limit: int,
        page: int,
    ) -> list[Income]:
        """GET /fapi/v1/income's rows, oldest first: ``window`` is (startTime, endTime), both
        inclusive; neither: the last 7 days; with a startTime, the first ``limit`` rows from
        it ("response will be return as startTime+limit"); else the latest ``limit``.
        ``page`` (1-based) steps ``limit`` rows further on (guessed: the docs name the
        parameter only)."""
        if symbol is not None:
            self.usdm.spec(symbol)
        if income_type is not None and income_type not in INCOME_TYPES:
            raise E.invalid("incomeType")
        start, end = window
        if start is None and end is None:
            start = self.clock.now_ms() - WEEK_MS
            picked = self._income_rows(account, symbol, income_type, start, None)
            return _income_page(picked, limit, page, from_start=False)
        if start is not None and end is not None and start > end:
            raise BinanceError(E.START_AFTER_END, "Start time is greater than end time.")
        picked = self._income_rows(account, symbol, income_type, start, end)
        return _income_page(picked, limit, page, from_start=start is not None)

    def _income_rows(
        self,
        account: Account,
        symbol: str | None,
        income_type: str | None,
        start: int | None,
        end: int | None,
    ) -> list[Income]:
        rows = [*account.income, *self._trade_income(account)]
        return sorted(
            (
                r
                for r in rows
                if (symbol is None or r.symbol == symbol)
                and (income_type is None or r.income_type == income_type)
                and (start is None or r.time >= start)
                and (end is None or r.time <= end)
            ),
            # a trade's two rows share time and tranId: REALIZED_PNL, then COMMISSION (guessed)
            key=lambda r: (r.time, r.tran_id),
        )

    def _trade_income(self, account: Account) -> list[Income]:
        """The REALIZED_PNL (when not zero) and COMMISSION rows of the account's trades."""
        rows: list[Income] = []
        for (key, symbol), trades in self.usdm.trades.items():
            if key != account.api_key:
                continue
            for t in trades:
                tran_id, trade_id = TRADE_TRAN_ID + t.id, str(t.id)
                if t.realized_pnl:
                    rows.append(
                        Income(
                            tran_id,
                            symbol,
                            "REALIZED_PNL",
                            t.realized_pnl,
                            "USDT",
                            t.time,
                            trade_id,
                        )
                    )
                if t.commission:
                    rows.append(
                        Income(
                            tran_id,
                            symbol,
                            "COMMISSION",
                            -t.commission,
                            t.commission_asset,
                            t.time,
                            trade_id,
                        )
                    )
        return rows

    # -- futures settings -----------------------------------------------------
    def set_leverage(self, account: Account, symbol: str | None, raw: str | None) -> int:
        spec = self.usdm.spec(symbol)
        if not raw:
            raise E.mandatory("leverage")
        if not raw.isdigit() or not 1 <= int(raw) <= spec.max_leverage:
            raise BinanceError(E.INVALID_LEVERAGE, f"Leverage {raw} is not valid")
        account.leverage[spec.symbol] = int(raw)
        return int(raw)

    def set_margin_type(self, account: Account, symbol: str | None, raw: str | None) -> None:
        spec = self.usdm.spec(symbol)
        if not raw:
            raise E.mandatory("marginType")
        mode = raw.upper()
        if mode not in ("ISOLATED", "CROSSED"):
            raise BinanceError(-4044, "The margin type is not valid.")  # guessed wording
        if account.margin_type.get(spec.symbol, "CROSSED") == mode:
            raise BinanceError(E.NO_NEED_TO_CHANGE_MARGIN_TYPE, "No need to change margin type.")
        if self.usdm.open_orders.get((account.api_key, spec.symbol)):
            raise BinanceError(
                E.THERE_EXISTS_OPEN_ORDERS,
                "Margin type cannot be changed if there exists open orders.",
            )
        pos = account.positions.get(spec.symbol)
        if pos is not None and pos.amount != 0:
            raise BinanceError(
                E.THERE_EXISTS_QUANTITY, "Margin type cannot be changed if there exists position."
            )
        account.margin_type[spec.symbol] = mode


def _income_page(rows: list[Income], limit: int, page: int, from_start: bool) -> list[Income]:
    """Page ``page`` of ``limit`` rows: counted from the oldest row when a startTime was
    sent, else from the newest (the latest ``limit`` rows, oldest first)."""
    skip = (page - 1) * limit
    if from_start:
        return rows[skip : skip + limit]
    stop = max(0, len(rows) - skip)
    return rows[max(0, stop - limit) : stop]


# ---------------------------------------------------------------------------
# CSV replay
# ---------------------------------------------------------------------------

_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %I-%p",
)


def _parse_time(text: str) -> int:
    text = text.strip()
    if text.replace(".", "", 1).isdigit():
        value = float(text)
        return int(value if value > 1e11 else value * 1000)
    for pattern in _TIME_FORMATS:
        try:
            return int(datetime.strptime(text, pattern).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            continue
    raise ValueError(f"unrecognised timestamp {text!r}")


def read_ohlcv_csv(path: str | Path) -> list[Candle]:
    """Read ``time,open,high,low,close[,volume]`` rows (any column order/case), sorted."""
    rows: list[Candle] = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return rows
        names = {n.lower().strip(): n for n in reader.fieldnames}
        tcol = next(
            names[k] for k in ("timestamp", "time", "date", "datetime", "open_time") if k in names
        )
        vcol = next((names[k] for k in ("volume", "volumefrom", "vol") if k in names), None)
        for row in reader:
            rows.append(
                Candle(
                    _parse_time(row[tcol]),
                    D(row[names["open"]]),
                    D(row[names["high"]]),
                    D(row[names["low"]]),
                    D(row[names["close"]]),
                    D(row[vcol]) if vcol and row[vcol] else ZERO,
                )
            )
    rows.sort(key=lambda c: c.open_time)
    return rows
