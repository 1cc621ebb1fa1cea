"""Orders to ccxt calls and ccxt answers to the SDK's values: pure functions, no I/O.

Each venue names the same order differently: the client order id is ``newClientOrderId`` on
Binance and ``orderLinkId`` on Bybit (ccxt's unified ``clientOrderId`` maps both); a stop is
Binance spot's ``STOP_LOSS``, a USDⓈ-M algo ``STOP_MARKET`` and a Bybit conditional order with
a trigger direction. Prices and quantities go through ccxt's own ``price_to_precision`` and
``amount_to_precision`` (passed in as callables, so this module stays pure).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from tradefleet_runtime.sdk import (
    STOP_LOSS_TAG,
    TAKE_PROFIT_TAG,
    Fill,
    Instrument,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    PositionReport,
    ReasonCode,
    Side,
    limit_problem,
)


class Dialect(StrEnum):
    """How a venue wants its orders spelled (beyond what ccxt unifies)."""

    BINANCE_SPOT = "binance-spot"
    BINANCE_USDM = "binance-usdm"
    BYBIT = "bybit"
    KRAKEN = "kraken"  # spot

    @property
    def futures(self) -> bool:
        return self in (Dialect.BINANCE_USDM,)

    @property
    def spot(self) -> bool:
        return self in (Dialect.BINANCE_SPOT, Dialect.KRAKEN)

    @property
    def reduce_only_below_min_notional(self) -> bool:
        """Whether the venue takes a reduce-only order below its minimum notional (its
        minimum quantity still holds). Binance USDⓈ-M: "-4164 Order's notional must be no
        smaller than … (unless you choose reduce only)"; Bybit's derivatives trading rules:
        closing orders are exempt from the minimum notional value, not from the minimum order
        size. Spot has no reduce-only order: every order meets the minimum."""
        return self in (Dialect.BINANCE_USDM, Dialect.BYBIT)


def dialect_for(exchange: str, linear: bool) -> Dialect:
    """The dialect of a venue the broker is proven against (``ccxt_params.VERIFIED_VENUES``:
    the params refuse any other, so this never guesses one for an unproven venue)."""
    if exchange == "binance" and not linear:
        return Dialect.BINANCE_SPOT
    if exchange == "binanceusdm" and linear:
        return Dialect.BINANCE_USDM
    if exchange == "bybit" and linear:
        return Dialect.BYBIT
    if exchange == "kraken" and not linear:
        return Dialect.KRAKEN
    raise ValueError(f"exchange: no proven dialect for {exchange!r} (linear={linear})")


# Binance: ``^[\.A-Z\:/a-z0-9_-]{1,36}$`` (spot and USDⓈ-M); Bybit ``orderLinkId``: up to 36
# letters, digits, dashes and underscores.
_ID_RULES: dict[Dialect, tuple[re.Pattern[str], str]] = {
    Dialect.BINANCE_SPOT: (
        re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$"),
        "1-36 of A-Z a-z 0-9 . : / _ -",
    ),
    Dialect.BINANCE_USDM: (
        re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$"),
        "1-36 of A-Z a-z 0-9 . : / _ -",
    ),
    Dialect.BYBIT: (re.compile(r"^[A-Za-z0-9_-]{1,36}$"), "1-36 of A-Z a-z 0-9 _ -"),
    # Kraken's ``cl_ord_id``: a UUID, or free text of at most 18 characters; ours are packed
    # into the free text's letters and digits (``venue_client_id``).
    Dialect.KRAKEN: (re.compile(r"^[A-Za-z0-9_-]{1,18}$"), "1-18 of A-Z a-z 0-9 _ -"),
}

# -- Kraken's 18 characters -------------------------------------------------------------------
# The bot's ids are longer (``order_ids``: bot prefix, ``r`` for a risk plugin's own order, 4 hex
# of the symbol, the bar time in hex, a base-36 sequence, ``-sl``/``-tp`` for a bracket's
# children: 21 characters and more), so on Kraken an id travels packed, reversibly: a row read
# back names the bot's own id, in a restarted broker too, with no table to keep. Kraken amends
# in place, so no replacement id is ever needed there.
# - A plain order of a bot with an 8-character prefix (its bare name's): that prefix as it is,
#   then symbol, bar time, sequence and role in 10 base-62 digits (how every id went before
#   identities: a restarted bot reads its earlier orders so).
# - Any other id of the bot's (a live identity's 10-character prefix, a risk plugin's order):
#   ``u`` and 17 base-62 digits holding a marker, the prefix, the risk flag, symbol, bar time,
#   sequence and role.
_OWN_ID = re.compile(
    r"^tf(?:([0-9a-f]{6})|([0-9a-f]{8}))(r?)([0-9a-f]{4})([1-9a-f][0-9a-f]{7})"
    r"(0|[1-9a-z][0-9a-z]?)(-sl|-tp)?$"
)
_PACKED = re.compile(r"^(tf[0-9a-f]{6})([0-9A-Za-z]{10})$")
_PACKED_WIDE = re.compile(r"^u([0-9A-Za-z]{17})$")
_WIDE_MARKER = 0b1011  # the top bits of a wide packing: an id merely shaped so is not ours
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_ROLES = ("", "-sl", "-tp")
_SEQUENCE_BITS = 9  # at most 512 orders of one symbol in one bar


def _to_base62(value: int, digits: int) -> str:
    out = []
    for _ in range(digits):
        value, rest = divmod(value, 62)
        out.append(_BASE62[rest])
    return "".join(reversed(out))


def _from_base62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + _BASE62.index(char)
    return value


def _base36(number: int) -> str:
    sequence = ""
    while True:
        number, rest = divmod(number, 36)
        sequence = _BASE36[rest] + sequence
        if not number:
            return sequence


def venue_client_id(client_order_id: str, dialect: Dialect) -> str | None:
    """The id the venue knows the bot's order by: the bot's own, but on Kraken packed into 18
    characters (an id of 18 or fewer that is not the bot's goes as it is); None when it
    cannot be (on Kraken: a longer id not the bot's, or a sequence above 511 in one bar)."""
    if dialect is not Dialect.KRAKEN:
        return client_order_id
    if _PACKED.match(client_order_id) or _PACKED_WIDE.match(client_order_id):
        return client_order_id  # packed already
    own = _OWN_ID.match(client_order_id)
    if own is None:
        # Not one of the bot's ids (a person's, a test's): sent as it is when it fits.
        return client_order_id if len(client_order_id) <= 18 else None
    narrow, wide, acting, symbol, ts, sequence, role = own.groups()
    number = int(sequence, 36)
    if number >= 1 << _SEQUENCE_BITS:
        return None
    value = (int(symbol, 16) << 32 | int(ts, 16)) << _SEQUENCE_BITS | number
    value = value << 2 | _ROLES.index(role or "")
    if narrow and not acting:
        return f"tf{narrow}{_to_base62(value, 10)}"
    prefix = int(wide or narrow, 16)
    head = (_WIDE_MARKER << 1 | bool(wide)) << 32 | prefix
    head = head << 1 | bool(acting)
    return "u" + _to_base62(head << 59 | value, 17)


def bot_client_id(venue_cid: str, dialect: Dialect) -> str:
    """The bot's own id of an order the venue names ``venue_cid`` (the inverse of
    ``venue_client_id``); any other id as it is."""
    if dialect is not Dialect.KRAKEN:
        return venue_cid
    packed = _PACKED.match(venue_cid)
    wide = _PACKED_WIDE.match(venue_cid)
    if packed is not None:
        prefix, value = packed.group(1), _from_base62(packed.group(2))
        acting = ""
    elif wide is not None:
        value = _from_base62(wide.group(1))
        head, value = value >> 59, value & ((1 << 59) - 1)
        acting = "r" if head & 1 else ""
        prefix_value, head = (head >> 1) & 0xFFFFFFFF, head >> 33
        if head >> 1 != _WIDE_MARKER:
            return venue_cid  # not one the bot packed
        width = 8 if head & 1 else 6
        if prefix_value >> (4 * width):
            return venue_cid
        prefix = f"tf{prefix_value:0{width}x}"
    else:
        return venue_cid
    role, value = value & 3, value >> 2
    number, value = value & ((1 << _SEQUENCE_BITS) - 1), value >> _SEQUENCE_BITS
    symbol, ts = value >> 32, value & 0xFFFFFFFF
    if role > 2 or symbol > 0xFFFF or ts < 1 << 28:
        return venue_cid  # not one the bot packed
    return f"{prefix}{acting}{symbol:04x}{ts:08x}{_base36(number)}{_ROLES[role]}"


def client_id_problem(client_order_id: str, dialect: Dialect) -> str | None:
    """Why the venue would refuse this client order id (length, characters), or None."""
    pattern, rule = _ID_RULES[dialect]
    if pattern.match(client_order_id):
        return None
    return f"client order id {client_order_id!r} does not fit the venue's rule ({rule})"


@dataclass(frozen=True, slots=True)
class CreateArgs:
    """The arguments of one ``create_order`` call."""

    symbol: str
    type: str
    side: str
    amount: float
    price: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ReasonCode
    reason: str


Precision = Callable[[str, float], str]


def _rounded(fn: Precision, market_symbol: str, value: float) -> float | None:
    try:
        return float(fn(market_symbol, value))
    except Exception:  # ccxt raises when a value rounds below its precision
        return None


def create_args(
    order: Order,
    market_symbol: str,
    dialect: Dialect,
    instrument: Instrument,
    amount_to_precision: Precision,
    price_to_precision: Precision,
) -> CreateArgs | Refusal:
    """``order`` as a ``create_order`` call, or why it must not leave (naming the limit)."""
    venue_cid = venue_client_id(order.client_order_id, dialect)
    if venue_cid is None:
        return Refusal(
            ReasonCode.VENUE_REJECTED,
            f"client order id {order.client_order_id!r} does not fit the venue's 18 characters "
            "(not one of the bot's ids, or more than 512 orders of a symbol in one bar)",
        )
    problem = client_id_problem(venue_cid, dialect)
    if problem is not None:
        return Refusal(ReasonCode.VENUE_REJECTED, problem)
    if not order.quantity > 0.0 or math.isinf(order.quantity):
        return Refusal(
            ReasonCode.INVALID_QUANTITY, f"quantity must be positive, got {order.quantity}"
        )
    amount = _rounded(amount_to_precision, market_symbol, order.quantity)
    if not amount:
        return Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"quantity {order.quantity:.10g} rounds to nothing on {order.symbol}'s lot step "
            f"{instrument.lot_step:.10g}",
        )
    price: float | None = None
    if order.order_type is not OrderType.MARKET:
        if order.price is None or not order.price > 0.0:
            return Refusal(
                ReasonCode.INVALID_PRICE, f"{order.order_type} order needs a positive price"
            )
        price = _rounded(price_to_precision, market_symbol, order.price)
        if not price:
            return Refusal(ReasonCode.INVALID_PRICE, f"price {order.price:.10g} rounds to nothing")
    exempt = order.reduce_only and dialect.reduce_only_below_min_notional
    # A reduce-only order the venue takes below its minimum notional (a close, a bracket's
    # child) is checked for its quantity alone: refused here, a close the venue would take
    # was left to a person.
    limit = limit_problem(instrument, amount, price, exempt)
    if limit is not None:
        return Refusal(limit[0], limit[1])
    params: dict[str, Any] = {"clientOrderId": venue_cid}
    if order.reduce_only and not dialect.spot:
        params["reduceOnly"] = True
    side = order.side.value
    if order.order_type is OrderType.MARKET:
        return CreateArgs(market_symbol, "market", side, amount, None, params)
    assert price is not None
    if order.order_type is OrderType.LIMIT:
        if dialect is Dialect.BINANCE_USDM and order.reduce_only and order.tag == TAKE_PROFIT_TAG:
            # A bracket's take-profit as the venue's native TAKE_PROFIT_MARKET (reduce-only).
            params["takeProfitPrice"] = price
            return CreateArgs(market_symbol, "market", side, amount, None, params)
        return CreateArgs(market_symbol, "limit", side, amount, price, params)
    # A stop: triggers when the market trades through ``price``, then a market order.
    if dialect.spot:
        # Binance's STOP_LOSS, Kraken's stop-loss: a buy above the market, a sell below it (ccxt
        # maps no triggerPrice on Kraken: the order would go in as a plain one).
        params["stopLossPrice"] = price
    elif dialect is Dialect.BINANCE_USDM:
        if order.reduce_only and order.tag == STOP_LOSS_TAG:
            params["stopLossPrice"] = price  # STOP_MARKET, reduce-only
        else:
            params["triggerPrice"] = price
    else:
        params["triggerPrice"] = price
        params["triggerDirection"] = "ascending" if order.side is Side.BUY else "descending"
    return CreateArgs(market_symbol, "market", side, amount, None, params)


def oco_params(
    market_id: str,
    side: str,
    amount: str,
    stop: tuple[str, str],
    target: tuple[str, str],
) -> dict[str, str] | None:
    """A spot bracket's stop-loss and take-profit as one Binance OCO order list
    (``POST /api/v3/orderList/oco``): the coin is held once for both, where two orders would
    each hold it (and the second be refused for the balance on an account holding only the
    position). The take-profit is the list's LIMIT_MAKER above the market, the stop-loss its
    STOP_LOSS below; when one fills or triggers the venue expires the other. None for a buy
    pair (closing a short: no spot bracket here has one), which goes as two orders.

    ``side``: ccxt's ("sell"); ``stop``, ``target``: each leg's (client id, price) as the venue
    writes them."""
    if side != "sell":
        return None
    (stop_cid, stop_price), (target_cid, target_price) = stop, target
    return {
        "symbol": market_id,
        "side": "SELL",
        "quantity": amount,
        "aboveType": "LIMIT_MAKER",
        "aboveClientOrderId": target_cid,
        "abovePrice": target_price,
        "belowType": "STOP_LOSS",
        "belowClientOrderId": stop_cid,
        "belowStopPrice": stop_price,
    }


def replacement_quantity(total: float, executed: float, lot_step: float) -> float:
    """What the new order of a cancel-replace (Binance spot) asks for: ``total``, the whole
    order as the bot counts it (and as venues that amend in place take it), less ``executed``,
    what its earlier copies executed. Binance places the new order for the quantity sent and
    does not subtract the cancelled copy's executed part, which stays executed: sent whole,
    the order would buy or sell that part twice. Computed in decimals and put back on the
    lot step when float noise alone moved it off (1.0 - 0.7 is 0.30000000000000004, and
    ccxt truncates 0.29999999999999993 a whole step down); zero or less when nothing is left."""
    rest = _decimal(total) - _decimal(executed)
    if lot_step > 0.0:
        steps = rest / _decimal(lot_step)
        nearest = steps.to_integral_value()
        if abs(steps - nearest) < Decimal("1e-6"):
            rest = nearest * _decimal(lot_step)
    return float(rest)


def copies_whole_quantity(copies: Sequence[tuple[float, float]]) -> float:
    """The whole quantity of an order amended by cancel-replace (Binance spot), as its copies
    before the newest show it: ``copies`` are (ordered, executed) of each, oldest first (the
    first is the order as the bot sent it). Each copy was sent for the whole less what the
    ones before it executed as last read — never more than they had executed — so the whole
    is at most their executed plus its own quantity, exactly that when no fill raced its
    cancel-replace: the least over the copies. A restart measures the newest copy against it
    (one placed before a raced fill was cut sells or buys that fill twice). An amend that
    raised the quantity cannot be told from such a race by the venue's rows: the lesser whole
    stands. Summed in decimals (no float noise)."""
    whole: Decimal | None = None
    before = Decimal(0)
    for ordered, executed in copies:
        shown = before + _decimal(ordered)
        whole = shown if whole is None else min(whole, shown)
        before += _decimal(executed)
    return float(whole) if whole is not None else 0.0


def target_reached(side: Side, price: float, ticker: Mapping[str, Any]) -> bool:
    """Whether a take-profit of ``side`` at ``price`` would fill now, by ``ticker`` (ccxt's):
    a sell's when the best bid reached it (the last trade without a bid), a buy's when the
    best ask did; never on a ticker without a price."""
    if side is Side.SELL:
        bid = _num(ticker.get("bid")) or _num(ticker.get("last"))
        return bid > 0.0 and bid >= price
    ask = _num(ticker.get("ask")) or _num(ticker.get("last"))
    return ask > 0.0 and ask <= price


# The venue's own words for an order it ended with only a part executed (the rest cancelled
# by the venue: a market order in a thin book, an IOC), which ccxt reads as ``closed`` —
# filled — whatever was left (Bybit v5 ``PartiallyFilledCanceled``: ccxt issue 18685).
_ENDED_PART_FILLED = frozenset({"PartiallyFilledCanceled"})


def ccxt_status(raw: Mapping[str, Any]) -> str | None:
    """ccxt's unified status of order ``raw``, but ``expired`` for one the venue ended with
    only a part executed (``_ENDED_PART_FILLED``): never taken as filled — its fill then
    counting the whole order, and a stop that closed a part read as having closed all."""
    info = raw.get("info")
    if isinstance(info, Mapping) and str(info.get("orderStatus") or "") in _ENDED_PART_FILLED:
        return "expired"
    status = raw.get("status")
    return None if status is None else str(status)


def status_of(ccxt_status: str | None, filled: float) -> tuple[OrderStatus, ReasonCode]:
    """ccxt's unified order status as ours (``expired`` is a cancel with its own code)."""
    if ccxt_status == "closed":
        return OrderStatus.FILLED, ReasonCode.NONE
    if ccxt_status in ("canceled", "cancelled"):
        return OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_USER
    if ccxt_status == "expired":
        return OrderStatus.CANCELLED, ReasonCode.EXPIRED
    if ccxt_status == "rejected":
        return OrderStatus.REJECTED, ReasonCode.VENUE_REJECTED
    return (OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN), ReasonCode.NONE


_NO_DUST = Decimal(0)
_NOISE = Decimal("1e-6")  # of a lot step: what a float sum of on-step amounts is off by
_NO_RATES: Mapping[str, float] = MappingProxyType({})


def _num(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _ts(ms: Any) -> int:
    return int(_num(ms) // 1000)


def trigger_of(raw: Mapping[str, Any]) -> float | None:
    for key in ("triggerPrice", "stopPrice", "stopLossPrice", "takeProfitPrice"):
        value = raw.get(key)
        if value:
            return _num(value)
    return None


def order_type_of(raw: Mapping[str, Any]) -> OrderType:
    kind = str(raw.get("type") or "").lower()
    info = raw.get("info") or {}
    venue_type = str(info.get("type") or info.get("orderType") or "").upper()
    if "TAKE_PROFIT" in venue_type:
        return OrderType.LIMIT  # a bracket's take-profit, whatever the venue calls it
    if trigger_of(raw) is not None or "STOP" in venue_type:
        return OrderType.STOP
    return OrderType.LIMIT if kind == "limit" else OrderType.MARKET


def report_of(raw: Mapping[str, Any], bot_symbol: str) -> OrderReport:
    """A ccxt order dict as an ``OrderReport`` (quantities in the order's own units)."""
    filled = _num(raw.get("filled"))
    status, _code = status_of(ccxt_status(raw), filled)
    order_type = order_type_of(raw)
    price = trigger_of(raw) if order_type is OrderType.STOP else None
    if price is None:
        price = _num(raw.get("price")) or trigger_of(raw) or None
    if order_type is OrderType.MARKET:
        price = None
    info = raw.get("info") or {}
    reduce_only = bool(raw.get("reduceOnly")) or str(info.get("reduceOnly")).lower() == "true"
    average = _num(raw.get("average")) or None
    return OrderReport(
        client_order_id=str(raw.get("clientOrderId") or ""),
        venue_order_id=str(raw.get("id") or ""),
        symbol=bot_symbol,
        side=Side.BUY if raw.get("side") == "buy" else Side.SELL,
        order_type=order_type,
        quantity=_num(raw.get("amount")),
        filled_quantity=filled,
        status=status,
        ts=_ts(raw.get("lastUpdateTimestamp") or raw.get("timestamp")),
        price=price,
        average_price=average if filled else None,
        reduce_only=reduce_only,
    )


def fee_in(
    trade: Mapping[str, Any],
    account_currencies: frozenset[str],
    base: str,
    rate: float | None = None,
) -> tuple[float, bool]:
    """The fee of ``trade`` in the account currency, and whether it could be converted.

    A fee in the account currency (or the market's quote/settle currency, listed in
    ``account_currencies``) is taken as it is; one in the base asset is converted at the fill
    price; one in a third coin (Binance's BNB discount) at ``rate``, that coin's price in the
    market's quote at the trade's time (``third_coin_fee``, ``rate_at``). Without a rate: 0,
    and False so the caller can say so. A negative fee is a rebate the venue paid (a maker
    rebate: Bybit's ``execFee`` below 0, which ccxt passes on as it is): no cost, so 0 here
    (``Fill.fee`` cannot be negative); ``rebate_in`` says how much it was."""
    fee = trade.get("fee") or {}
    cost = _num(fee.get("cost"))
    if not cost > 0.0:
        return 0.0, True
    value = _valued(cost, trade, account_currencies, base, rate)
    return (0.0, False) if value is None else (value, True)


def rebate_in(
    trade: Mapping[str, Any],
    account_currencies: frozenset[str],
    base: str,
    rate: float | None = None,
) -> float:
    """What the venue credited for ``trade`` (a negative fee: a maker rebate), in the account
    currency as ``fee_in`` values a fee; 0 for a fee or none, and when it cannot be valued."""
    fee = trade.get("fee") or {}
    cost = _num(fee.get("cost"))
    if not cost < 0.0:
        return 0.0
    return _valued(-cost, trade, account_currencies, base, rate) or 0.0


def _valued(
    cost: float,
    trade: Mapping[str, Any],
    account_currencies: frozenset[str],
    base: str,
    rate: float | None,
) -> float | None:
    """``cost`` of ``trade``'s fee currency in the account currency (``fee_in``'s rules), or
    None when it is in a third coin without a rate."""
    currency = str((trade.get("fee") or {}).get("currency") or "")
    if currency in account_currencies:
        return cost
    if currency == base:
        return cost * _num(trade.get("price"))
    if rate is not None and rate > 0.0 and math.isfinite(rate):
        return cost * rate
    return None


def third_coin_fee(trade: Mapping[str, Any], rules: FillRules) -> str | None:
    """The coin ``trade``'s fee was taken in when it is none of the market's (Binance takes it
    in BNB when the account pays fees with BNB): its price is needed to book the fee."""
    fee = trade.get("fee") or {}
    currency = str(fee.get("currency") or "")
    if not currency or not _num(fee.get("cost")):
        return None
    if currency in rules.account_currencies or currency == rules.base:
        return None
    return currency


def conversion_pair(currency: str, quote: str, symbols: Collection[str]) -> str | None:
    """The market, among ``symbols``, that prices ``currency`` in ``quote``: its spot pair, or
    on a derivatives venue its linear perpetual; None when the venue lists neither."""
    for pair in (f"{currency}/{quote}", f"{currency}/{quote}:{quote}"):
        if pair in symbols:
            return pair
    return None


def rate_at(candles: Sequence[Sequence[Any]], minute_ms: int) -> float | None:
    """A third coin's price for a trade in the minute starting at ``minute_ms``, from its
    1-minute candles (ccxt's rows) around it: the open of that minute's candle (fixed once the
    minute began, so every later read agrees); without one, the close of the last candle before
    it, or else the open of the first after; None when there is no candle."""
    before: float | None = None
    for candle in sorted((c for c in candles if len(c) > 4), key=lambda c: _num(c[0])):
        opened = _num(candle[0])
        if opened == minute_ms:
            return _price(candle[1])
        if opened < minute_ms:
            before = _price(candle[4])
        else:
            return before if before is not None else _price(candle[1])
    return before


def _price(value: Any) -> float | None:
    price = _num(value)
    return price if price > 0.0 and math.isfinite(price) else None


class Held(NamedTuple):
    """What a spot trade moved of the base asset, as the bot counts it (``held_quantity``)."""

    quantity: float
    # What the account holds of the asset beyond what the bot counts, after this trade: the
    # rests below the lot step its buys left (carried into the next buy's count).
    dust: Decimal


def held_quantity(
    trade: Mapping[str, Any], base: str, lot_step: float, dust: Decimal = _NO_DUST
) -> Held:
    """What a spot ``trade`` moved of the ``base`` asset the bot may trade again.

    A fee taken in the asset itself (Binance takes a buy's commission from the coin bought,
    unless BNB pays it) is not held: a buy of 0.01 BTC leaves 0.00999. The count is on the lot
    step, rounded so the bot never counts more than the account holds (a buy down, a sell whose
    fee came out of the asset too up): a position off the step would leave, after its exit, a
    rest no order can sell that reads as open for ever. A buy's rest below the step is
    ``dust`` and counts in the next buy (``dust`` in: the rests so far; the broker carries them
    within one order), so what the bot leaves uncounted stays under one step an order, not one
    a trade. A trade whose fee is not in the asset moved its amount exactly (``dust``
    unchanged).

    This is the rule for a trade that opens or adds to a long (or a sell that leaves one
    open); ``fill_terms`` decides which part of a trade it applies to."""
    amount = _num(trade.get("amount"))
    cost = _fee_in_asset(trade, base)
    if not cost:
        return Held(amount, dust)
    step = _decimal(lot_step)
    if trade.get("side") != "buy":
        moved, dust = _held_sell(_decimal(amount), _decimal(cost), step, dust)
        return Held(float(moved), dust)
    counted = _held_buy(_decimal(amount), _decimal(cost), step, dust)
    return Held(amount, dust) if counted is None else Held(float(counted[0]), counted[1])


def _decimal(value: float) -> Decimal:
    """A float as the decimal it was written as (``0.01`` is 0.01, not 0.01000000000000000021):
    the venue's amounts are exact decimals, and counts made of them stay on the lot step."""
    return Decimal(repr(value))


def _held_sell(
    gross: Decimal, taken: Decimal, step: Decimal, dust: Decimal
) -> tuple[Decimal, Decimal]:
    """A sell whose fee came out of the asset: it moved its amount and the fee, up to the lot
    step (the rest above what it moved is the account's, uncounted: ``dust``)."""
    moved = gross + taken
    if step > 0:
        moved = (moved / step).to_integral_value(ROUND_CEILING) * step
    return moved, dust + moved - gross - taken


def _held_buy(
    gross: Decimal, taken: Decimal, step: Decimal, dust: Decimal
) -> tuple[Decimal, Decimal] | None:
    """A buy whose fee came out of the coin bought: what of it the bot counts (down to the lot
    step) and the dust after it; None when it nets nothing (the caller counts its amount)."""
    exact = gross - taken + dust
    if step <= 0:
        return (exact, _NO_DUST) if exact > 0 else None
    on_step = (exact / step).to_integral_value(ROUND_FLOOR) * step
    if on_step <= 0:
        # A trade of about one step nets below it: counted exactly rather than as nothing (a
        # fill moves something), the position off the step until its exit.
        return (exact, _NO_DUST) if exact > 0 else None
    return on_step, exact - on_step


def _fee_in_asset(trade: Mapping[str, Any], base: str) -> float:
    """The fee of ``trade`` when the venue took it in the ``base`` asset (else 0). A rebate in
    the asset (a negative fee: Bybit spot pays a sell's maker rebate in the coin) took nothing
    from it: 0, so the bot counts the amount (the coin credited is the account's, uncounted;
    ``rebate_in``)."""
    fee = trade.get("fee") or {}
    if not base or str(fee.get("currency") or "") != base:
        return 0.0
    return max(_num(fee.get("cost")), 0.0)


@dataclass(frozen=True, slots=True)
class FillRules:
    """How one market's trades are booked (``fill_terms``): the currencies a fee is taken as it
    is in, the base asset, the lot step, and whether it is spot (a fee in the base asset then
    is not held)."""

    account_currencies: frozenset[str]
    base: str
    lot_step: float
    spot: bool
    quote: str = ""  # a fee taken in a third coin is priced in it (``FeeRates``)


class FillTerms(NamedTuple):
    """A trade as the bot books it (``fill_terms``)."""

    quantity: float
    fee: float  # in the account currency
    converted: bool  # False: the fee was in a third currency, booked as 0
    dust: Decimal  # ``Held.dust`` after it
    # What the venue credited (a negative fee: a maker rebate), in the account currency: not
    # booked (``Fill.fee`` cannot be negative), for the broker to say.
    rebate: float = 0.0


def fill_terms(
    trade: Mapping[str, Any],
    rules: FillRules,
    dust: Decimal = _NO_DUST,
    fee_rate: float | None = None,
    position: float = 0.0,
    closing: bool = False,
) -> FillTerms:
    """``trade`` as the bot books it: on spot with the fee taken in the asset, the quantity it
    counts (``spot_count``) and as fee the rest of the trade's value at its price and the part
    of the coin fee the count did not take, so the bot's equity moves by what the account's
    did; otherwise its amount and ``fee_in``'s fee (``fee_rate``: a third coin's price).

    ``position``: the bot's signed position in the symbol before the trade, as the caller
    counted it; ``closing``: the trade's order cannot open a position (reduce-only: the
    engine marks every order that only reduces its position so)."""
    amount = _num(trade.get("amount"))
    base = rules.base
    rebate = rebate_in(trade, rules.account_currencies, base, fee_rate)
    taken = _fee_in_asset(trade, base)
    if rules.spot and taken:
        gross = _decimal(amount)
        quantity, valued, dust = spot_count(
            trade.get("side") == "buy",
            gross,
            _decimal(taken),
            _decimal(rules.lot_step),
            dust,
            _decimal(position),
            closing,
        )
        # In decimal: 0.01 - 0.00999 is 1.0000000000000009e-05 in floats. A buy counts at
        # most its amount, a sell at least it (the dust a part takes from earlier parts can
        # make a buy's count its whole amount: its fee was paid by them).
        rest = abs(gross - quantity) + valued
        fee = float(rest * _decimal(_num(trade.get("price"))))
        return FillTerms(float(quantity), fee, True, dust, rebate)
    fee, converted = fee_in(trade, rules.account_currencies, base, fee_rate)
    return FillTerms(amount, fee, converted, dust, rebate)


def spot_count(
    buy: bool,
    gross: Decimal,
    taken: Decimal,
    step: Decimal,
    dust: Decimal,
    position: Decimal,
    closing: bool,
) -> tuple[Decimal, Decimal, Decimal]:
    """What a spot trade of ``gross`` whose fee ``taken`` (> 0) came out of the asset moves of
    the bot's ``position``: (its count, the part of ``taken`` valued as a fee in money instead
    of taken off the count, the dust after it).

    The held rule (``held_quantity``) keeps a long's count within what the account holds, so
    that its exit can sell it; it is for the part of a trade that opens or keeps a long. A buy
    that closes or reduces a short counts its whole amount (the short is of coin the account
    held: closing it must bring the bot back to flat, or a rest below the lot step reads as a
    short no order can close), its fee valued at the fill price; a buy that crosses to a long
    takes the fee from the part that opens the long first (so the long is what the account
    gained of the coin since flat). A sell that takes a known long to flat or beyond counts its
    amount, its fee valued; a sell that leaves a long open counts the fee as sold too, but
    never past flat."""
    held = position
    if step > 0:
        # The bot's count is made of on-step amounts, summed in floats by the caller: float
        # noise (0.1 + 0.2) is snapped to the step; a count off the step for real is kept.
        snapped = (position / step).to_integral_value() * step
        if abs(snapped - position) <= step * _NOISE:
            held = snapped
    if buy:
        short = max(-held, Decimal(0))
        closes = gross if closing else min(gross, short)
        opens = gross - closes
        if not opens:
            return gross, taken, dust
        if not closes:
            counted = _held_buy(gross, taken, step, dust)
            if counted is None:
                return gross, _NO_DUST, dust
            return counted[0], _NO_DUST, counted[1]
        # Crossing to a long: the long is what the account gained of the coin past flat, on the
        # step (a rest below it is dust, never a long no order can sell).
        from_open = min(taken, opens)
        exact = opens - from_open + dust
        on_step = exact
        if step > 0:
            on_step = (exact / step).to_integral_value(ROUND_FLOOR) * step
        return closes + on_step, taken - from_open, exact - on_step
    long = max(held, Decimal(0))
    if long > 0 and gross >= long:
        return gross, taken, dust
    moved, after = _held_sell(gross, taken, step, dust)
    if long > 0 and moved > long:
        # The fee takes the long to flat, not beyond: what it took past it is a cost.
        return long, max(gross + taken - long, Decimal(0)), dust
    return moved, _NO_DUST, after


def terms_by_trade(
    trades: Sequence[Mapping[str, Any]],
    rules: FillRules,
    fee_rates: Mapping[str, float] = _NO_RATES,
    position: float = 0.0,
    closing: Collection[str] = (),
    position_from_ms: int = 0,
) -> dict[str, FillTerms]:
    """``fill_terms`` of each trade (by its id), the dust carried within each order in the
    venue's order of its trades (time, then id): as the broker counts them live, so a
    restart's reports and an adopted order agree with what the journal holds. Each order's
    earlier trades must be among ``trades``. ``fee_rates``: the third coin's price of a trade
    whose fee was taken in one, by trade id. ``position``: the bot's position before the
    first of them at or after ``position_from_ms`` (venue ms), as the caller knows it, moved
    by each trade's count in turn (earlier trades, read only for the dust they leave their
    order, are counted from it too); ``closing``: the venue ids of the orders that cannot
    open a position (reduce-only)."""
    dust: dict[str, Decimal] = {}
    terms: dict[str, FillTerms] = {}
    held = _decimal(position)
    placed = False  # whether ``position`` stands at ``position_from_ms`` yet
    for trade in sorted(trades, key=lambda t: (_num(t.get("timestamp")), str(t.get("id")))):
        if not placed and _num(trade.get("timestamp")) >= position_from_ms:
            held, placed = _decimal(position), True
        order = str(trade.get("order") or "")
        each = fill_terms(
            trade,
            rules,
            dust.get(order, _NO_DUST),
            fee_rates.get(str(trade.get("id"))),
            float(held),
            order in closing,
        )
        dust[order] = each.dust
        terms[str(trade.get("id"))] = each
        moved = _decimal(each.quantity)
        held += moved if trade.get("side") == "buy" else -moved
    return terms


def _positive(value: Any) -> bool:
    """Whether ``value`` is a finite number above zero (a venue's string or ccxt's float)."""
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and number > 0.0


def trade_id_of(trade: Mapping[str, Any]) -> str | None:
    """The venue's id of ``trade`` (the fill id), or None when the row has none: an id-less
    row cannot be told from the next one (two would be one fill, or a second read a new one)."""
    value = trade.get("id")
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text if text and text.lower() not in ("none", "null") else None


def trade_problem(trade: Mapping[str, Any], market: str, side: Side | None = None) -> str | None:
    """Why ``trade`` (a ccxt row of the venue's own trades on ``market``) cannot be booked as a
    fill, naming the field; None when it can. ``side``: the side of the order it belongs to,
    when known.

    A row the venue got wrong is refused, never booked as it reads: a negative amount would
    book a fill that turns the position around, a price of 0 or below a cash movement the
    account never had, and neither could be taken back (a fill is journaled for good)."""
    if trade_id_of(trade) is None:
        return "id: missing"
    if not _positive(trade.get("amount")):
        return f"amount: {trade.get('amount')!r} is not a positive number"
    if not _positive(trade.get("price")):
        return f"price: {trade.get('price')!r} is not a positive number"
    trade_side = trade.get("side")
    if trade_side not in ("buy", "sell"):
        return f"side: {trade_side!r} is neither buy nor sell"
    if side is not None and trade_side != side.value:
        return f"side: {trade_side} on a {side.value} order"
    symbol = trade.get("symbol")
    if symbol != market:
        return f"symbol: {symbol!r}, not {market}"
    info = trade.get("info")
    link = info.get("orderLinkId") if isinstance(info, Mapping) else None
    if not trade.get("order") and not (link or trade.get("clientOrderId")):
        return "order: names no order"
    return None


def trade_owner(
    trade: Mapping[str, Any],
    orders: Mapping[str, str],
    named: Callable[[str], str],
    mine: Callable[[str], bool],
) -> str | None:
    """The bot's id of the order ``trade`` is a fill of; None when what is at hand does not
    make it one of the bot's orders. A person may trade by hand on the bot's account and
    symbol: their trades are never the bot's to book, nor to move the bot's position by (a
    person's sell counted into it would make the bot's next buy close a short it never had).

    The order is the one ``orders`` names by the trade's venue order id (venue id -> its
    client id, in the bot's form), else the one the trade's row names (Bybit's
    ``orderLinkId``, else ccxt's ``clientOrderId``), put in the bot's form by ``named``. It is
    the bot's when ``mine`` says so: the running poller's test is "an order this run follows",
    a restart's also "an id with the bot's prefix" (no run follows its ended orders yet)."""
    venue_id = str(trade.get("order") or "")
    client_id = orders.get(venue_id) if venue_id else None
    if client_id is None:
        info = trade.get("info")
        link = info.get("orderLinkId") if isinstance(info, Mapping) else None
        link = link or trade.get("clientOrderId")
        client_id = named(str(link)) if link else ""
    return client_id if client_id and mine(client_id) else None


def fill_of(
    trade: Mapping[str, Any],
    client_order_id: str,
    bot_symbol: str,
    fee: float,
    reason: str = "",
    quantity: float | None = None,
) -> Fill:
    """A ccxt trade as a ``Fill``; the venue's trade id is the fill id (stable across runs).

    ``reason``: the order's tag, or untagged, its type (``Fill.reason``); without the order (a
    venue report after a restart) the trade's own type, as the venue states it. ``quantity``:
    what the bot holds of it (``held_quantity``) when that is not the trade's amount; ``fee``
    then includes the rest's value at the fill price, so the cash the fill books is what the
    trade paid or received."""
    return Fill(
        client_order_id=client_order_id,
        symbol=bot_symbol,
        side=Side.BUY if trade.get("side") == "buy" else Side.SELL,
        quantity=_num(trade.get("amount")) if quantity is None else quantity,
        price=_num(trade.get("price")),
        fee=fee,
        ts=_ts(trade.get("timestamp")),
        fill_id=str(trade.get("id")),
        reason=reason or str(trade.get("type") or ""),
    )


def position_of(raw: Mapping[str, Any], bot_symbol: str) -> PositionReport | None:
    """A ccxt position as a signed ``PositionReport`` in contracts (None when flat)."""
    contracts = _num(raw.get("contracts"))
    if not contracts:
        return None
    signed = -contracts if raw.get("side") == "short" else contracts
    return PositionReport(
        bot_symbol,
        signed,
        _num(raw.get("entryPrice")),
        _ts(raw.get("timestamp")),
    )


# Binance's spot taker fee at its regular tier (VIP 0), the highest it documents: what a buy's
# fee taken in the coin bought is assumed to be when ccxt's market does not say.
BINANCE_SPOT_WORST_TAKER = 0.001


def coin_fee_rate(dialect: Dialect, market: Mapping[str, Any]) -> tuple[float, bool]:
    """The share of a buy the venue may keep as its fee in the coin bought, known before the
    buy fills, and whether the market said it (False: the worst documented rate is assumed).

    Binance spot takes a buy's fee from the coin bought (``held_quantity``), unless BNB pays
    it — which the bot cannot tell before the fill, so the fee is counted: a bracket's
    children sized on a little less than bought is the safe side. The taker rate is the one
    counted (a limit that rests pays the maker's, never more). Kraken spot takes a buy's fee
    in the quote currency (``fciq``, its default for a buy) and the perpetuals in their
    settlement currency: 0."""
    if dialect is not Dialect.BINANCE_SPOT:
        return 0.0, True
    taker = market.get("taker")
    if isinstance(taker, int | float) and not isinstance(taker, bool) and 0.0 <= taker < 1.0:
        return float(taker), True
    return BINANCE_SPOT_WORST_TAKER, False


def instrument_of(
    bot_symbol: str, market: Mapping[str, Any], decimal_places: bool = False
) -> Instrument:
    """The venue's rules for one symbol from ccxt's market (``load_markets``). ``decimal_places``:
    the exchange gives precision as a number of digits (ccxt's DECIMAL_PLACES mode), not a
    tick."""
    precision = dict(market.get("precision") or {})
    if decimal_places:
        for key in ("price", "amount"):
            if precision.get(key) is not None:
                precision[key] = 10.0 ** -_num(precision[key])
    limits = market.get("limits") or {}
    amount = limits.get("amount") or {}
    cost = limits.get("cost") or {}
    max_quantity = _num(amount.get("max"), float("inf")) or float("inf")
    return Instrument(
        symbol=bot_symbol,
        tick_size=_num(precision.get("price")),
        lot_step=_num(precision.get("amount")),
        min_quantity=_num(amount.get("min")),
        max_quantity=max_quantity,
        min_notional=_num(cost.get("min")),
        # The runtime's quantities are units of the base asset, and this broker sends them as
        # ccxt amounts unconverted: right on the proven venues (spot; USDⓈ-M and Bybit linear,
        # contractSize 1). A market whose contractSize is not 1 (OKX swaps, inverse contracts)
        # counts amounts in contracts, and would need units / contractSize on the way out and
        # × contractSize on the way in, as the MT5 broker does with lots; such venues are not
        # among the proven ones (ccxt_params).
        contract_size=_num(market.get("contractSize"), 1.0) or 1.0,
        quote_currency=str(market.get("quote") or ""),
        # ccxt's taker rate for the market (a fraction of the cost when ``percentage``): what a
        # sizer's leverage cap leaves room for, so a 1x spot entry is not refused by the venue
        # for its own fee. The account's tier may pay less: the room then errs on the safe side.
        taker_fee=_taker_rate(market),
    )


def _taker_rate(market: Mapping[str, Any]) -> float:
    """ccxt's taker fee of ``market`` as a fraction of a fill's cost; 0 when it is not one
    (``percentage`` false: a flat fee) or is unknown."""
    if market.get("percentage") is False:
        return 0.0
    rate = _num(market.get("taker"))
    return rate if 0.0 < rate < 1.0 else 0.0


__all__ = [
    "BINANCE_SPOT_WORST_TAKER",
    "CreateArgs",
    "Dialect",
    "FillRules",
    "FillTerms",
    "Held",
    "Refusal",
    "bot_client_id",
    "client_id_problem",
    "coin_fee_rate",
    "conversion_pair",
    "copies_whole_quantity",
    "create_args",
    "dialect_for",
    "fee_in",
    "fill_of",
    "fill_terms",
    "held_quantity",
    "instrument_of",
    "oco_params",
    "order_type_of",
    "position_of",
    "rate_at",
    "rebate_in",
    "report_of",
    "spot_count",
    "status_of",
    "target_reached",
    "terms_by_trade",
    "third_coin_fee",
    "trade_id_of",
    "trade_owner",
    "trade_problem",
    "trigger_of",
    "venue_client_id",
]
