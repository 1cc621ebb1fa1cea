"""An order -> the ``order_send`` request dict MetaTrader 5 wants. Pure functions.

What real MT5 demands, in one place:
- the broker's symbol name (``mt5_params.SymbolMap``);
- a filling mode the symbol allows: FOK/IOC from its ``filling_mode`` flags, RETURN only outside
  market execution for market orders (``filling_modes``; 10030 moves to the next one);
- volume in lots: the runtime's quantities are units whose profit is one unit of money per unit
  of price move (euros of EURUSD, ounces of XAUUSD), so an order's quantity is divided by the
  symbol's units per lot on the way out and a terminal's volume multiplied by it on the way in
  (``units_per_lot``, ``to_lots``, ``to_units``), here and nowhere else; then rounded *down* to
  ``volume_step`` and within ``volume_min``/``volume_max`` (an order never grows: below the
  minimum it is refused, never rounded up). Units per lot follow the symbol's calc mode, as the
  terminal's profit does: ``trade_contract_size`` in the contract-size modes (Forex, CFD,
  stocks), ``trade_tick_value / trade_tick_size`` in the tick-value modes (futures), where the
  contract size plays no part in profit (``calc_mode_problem`` refuses the rest);
- prices on ``trade_tick_size`` and ``digits``, never worse for the bot than asked (the
  runtime's ``round_price`` rules);
- stops at least ``trade_stops_level`` points from the price they are measured from;
- a limit or stop order's own price as far from the market (``pending_price_problem``), and
  one already through the market sent as a deal instead (``through_market``,
  ``limit_deviation``);
- the bot's magic number, and the client order id in the comment: the terminal keeps 31
  characters, so a longer id is replaced by a deterministic hash (``comment_for``).

The numeric constants are the ``MetaTrader5`` package's own (pinned by a test against the
emulator, whose constants are generated from the real wheel), so this module needs no terminal.
"""

from __future__ import annotations

import decimal
import functools
import hashlib
import math
from collections.abc import Collection
from typing import Any, NamedTuple

from tradefleet_runtime.sdk import (
    Order,
    OrderType,
    ReasonCode,
    Side,
    round_price,
    round_quantity,
)

# -- the MetaTrader5 package's constants -----------------------------------------------------
ORDER_TYPE_BUY = 0
ORDER_TYPE_SELL = 1
ORDER_TYPE_BUY_LIMIT = 2
ORDER_TYPE_SELL_LIMIT = 3
ORDER_TYPE_BUY_STOP = 4
ORDER_TYPE_SELL_STOP = 5
ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
ORDER_TIME_GTC = 0
TRADE_ACTION_DEAL = 1
TRADE_ACTION_PENDING = 5
TRADE_ACTION_SLTP = 6
TRADE_ACTION_MODIFY = 7
TRADE_ACTION_REMOVE = 8
SYMBOL_TRADE_EXECUTION_REQUEST = 0
SYMBOL_TRADE_EXECUTION_INSTANT = 1
SYMBOL_TRADE_EXECUTION_MARKET = 2
# SYMBOL_FILLING_* exist in MQL5 only (not in the Python package): bits of symbol filling_mode.
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
# ENUM_SYMBOL_CALC_MODE (trade_calc_mode). The MQL5 documentation's profit formulas:
# (close - open) × contract size × lots in the contract-size modes, (close - open) × tick value /
# tick size × lots in the tick-value modes. EXCH_FUTURES_FORTS is not in the Python package, so
# its number is unknown here and refused as any unknown mode is.
SYMBOL_CALC_MODE_FOREX = 0
SYMBOL_CALC_MODE_FUTURES = 1
SYMBOL_CALC_MODE_CFD = 2
SYMBOL_CALC_MODE_CFDINDEX = 3
SYMBOL_CALC_MODE_CFDLEVERAGE = 4
SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE = 5
SYMBOL_CALC_MODE_EXCH_STOCKS = 32
SYMBOL_CALC_MODE_EXCH_FUTURES = 33
SYMBOL_CALC_MODE_EXCH_OPTIONS = 34
SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN = 36
SYMBOL_CALC_MODE_EXCH_BONDS = 37
SYMBOL_CALC_MODE_EXCH_STOCKS_MOEX = 38
SYMBOL_CALC_MODE_EXCH_BONDS_MOEX = 39
SYMBOL_CALC_MODE_SERV_COLLATERAL = 64

CALC_MODE_NAMES = {
    SYMBOL_CALC_MODE_FOREX: "SYMBOL_CALC_MODE_FOREX",
    SYMBOL_CALC_MODE_FUTURES: "SYMBOL_CALC_MODE_FUTURES",
    SYMBOL_CALC_MODE_CFD: "SYMBOL_CALC_MODE_CFD",
    SYMBOL_CALC_MODE_CFDINDEX: "SYMBOL_CALC_MODE_CFDINDEX",
    SYMBOL_CALC_MODE_CFDLEVERAGE: "SYMBOL_CALC_MODE_CFDLEVERAGE",
    SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE: "SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE",
    SYMBOL_CALC_MODE_EXCH_STOCKS: "SYMBOL_CALC_MODE_EXCH_STOCKS",
    SYMBOL_CALC_MODE_EXCH_FUTURES: "SYMBOL_CALC_MODE_EXCH_FUTURES",
    SYMBOL_CALC_MODE_EXCH_OPTIONS: "SYMBOL_CALC_MODE_EXCH_OPTIONS",
    SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN: "SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN",
    SYMBOL_CALC_MODE_EXCH_BONDS: "SYMBOL_CALC_MODE_EXCH_BONDS",
    SYMBOL_CALC_MODE_EXCH_STOCKS_MOEX: "SYMBOL_CALC_MODE_EXCH_STOCKS_MOEX",
    SYMBOL_CALC_MODE_EXCH_BONDS_MOEX: "SYMBOL_CALC_MODE_EXCH_BONDS_MOEX",
    SYMBOL_CALC_MODE_SERV_COLLATERAL: "SYMBOL_CALC_MODE_SERV_COLLATERAL",
}
# Profit = price move × contract size × lots.
CONTRACT_SIZE_MODES = frozenset(
    {
        SYMBOL_CALC_MODE_FOREX,
        SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE,
        SYMBOL_CALC_MODE_CFD,
        SYMBOL_CALC_MODE_CFDINDEX,
        SYMBOL_CALC_MODE_CFDLEVERAGE,
        SYMBOL_CALC_MODE_EXCH_STOCKS,
        SYMBOL_CALC_MODE_EXCH_STOCKS_MOEX,
    }
)
# Profit = price move / tick size × tick value × lots (the contract size plays no part).
TICK_VALUE_MODES = frozenset({SYMBOL_CALC_MODE_FUTURES, SYMBOL_CALC_MODE_EXCH_FUTURES})

COMMENT_MAX = 31  # MqlTradeRequest.comment: a 32-character buffer, 31 survive
LEG_MARK = "#"  # comment of the k-th request of one order (hedging closes): "<id>#k"
# At most this many requests carry one order (legs 0..9): "<id>#9" of a 29-character id still
# fits the comment as it is, so a restarted broker finds every leg by its comment (a longer one
# would be hashed, and only the broker that sent it knows the hash's id).
MAX_LEGS = 10
_HASH_MARK = "h:"


class SymbolSpec(NamedTuple):
    """What an order must obey at the broker, read from ``symbol_info``."""

    name: str  # the broker's name
    digits: int
    point: float
    tick_size: float
    volume_min: float
    volume_max: float
    volume_step: float
    stops_level: int
    filling_flags: int
    execution_mode: int
    contract_size: float = 1.0
    currency_profit: str = ""
    calc_mode: int = SYMBOL_CALC_MODE_FOREX
    # The money one tick of price move makes on one lot, in the account's currency (the
    # terminal converts from the profit currency); _profit/_loss: for a winning/losing move,
    # which differ only where a cross rate converts it.
    tick_value: float = 0.0
    tick_value_profit: float = 0.0
    tick_value_loss: float = 0.0


def spec_from_info(info: Any) -> SymbolSpec:
    """A ``SymbolInfo`` (any object with its fields) -> ``SymbolSpec``."""
    return SymbolSpec(
        name=str(info.name),
        digits=int(info.digits),
        point=float(info.point),
        tick_size=float(info.trade_tick_size) or float(info.point),
        volume_min=float(info.volume_min),
        volume_max=float(info.volume_max),
        volume_step=float(info.volume_step),
        stops_level=int(info.trade_stops_level),
        filling_flags=int(info.filling_mode),
        execution_mode=int(info.trade_exemode),
        contract_size=float(info.trade_contract_size),
        currency_profit=str(info.currency_profit),
        calc_mode=int(info.trade_calc_mode),
        tick_value=float(info.trade_tick_value),
        tick_value_profit=float(info.trade_tick_value_profit),
        tick_value_loss=float(info.trade_tick_value_loss),
    )


def calc_mode_name(mode: int) -> str:
    return CALC_MODE_NAMES.get(mode, f"trade_calc_mode {mode}")


# A tick value agrees with tick size × contract size within this fraction (the terminal's own
# float arithmetic, a broker's rounding of the figure it shows).
_TICK_VALUE_TOLERANCE = 1e-6


def calc_mode_problem(spec: SymbolSpec) -> str | None:
    """Why the runtime cannot book this symbol's profit as the terminal does; None if it can.

    The runtime books quantity × price move in units (``units_per_lot`` per lot): right for
    the contract-size modes when the contract size is what the terminal also pays per lot and
    price unit (its tick value says so: tick value = tick size × contract size in the account's
    currency), and for the tick-value modes when one tick is worth the same money whichever
    way the price moved (no cross rate). Options (a premium, not a price move), bonds (face
    value, accrued interest), collateral (not traded) and modes this module does not know are
    refused: the runtime would book figures the terminal does not."""
    mode = spec.calc_mode
    name = calc_mode_name(mode)
    if mode in CONTRACT_SIZE_MODES:
        if not spec.contract_size > 0:
            size = spec.contract_size
            return (
                f"{name} pays (close - open) × contract size, and its contract size is {size:.10g}"
            )
        if spec.tick_value > 0 and spec.tick_size > 0:
            expected = spec.tick_size * spec.contract_size
            if abs(spec.tick_value - expected) > _TICK_VALUE_TOLERANCE * expected:
                return (
                    f"{name} pays (close - open) × contract size {spec.contract_size:.10g}, i.e. "
                    f"{expected:.10g} a tick of {spec.tick_size:.10g}, but the terminal says a "
                    f"tick is worth {spec.tick_value:.10g} (a profit currency other than the "
                    "account's?)"
                )
        return None
    if mode in TICK_VALUE_MODES:
        if not (spec.tick_value > 0 and spec.tick_size > 0):
            return (
                f"{name} pays (close - open) / tick size × tick value, and its tick value is "
                f"{spec.tick_value:.10g} a tick of {spec.tick_size:.10g} (no quote yet?)"
            )
        for field, value in (
            ("trade_tick_value_profit", spec.tick_value_profit),
            ("trade_tick_value_loss", spec.tick_value_loss),
        ):
            if value and abs(value - spec.tick_value) > _TICK_VALUE_TOLERANCE * spec.tick_value:
                return (
                    f"{name} pays (close - open) / tick size × tick value, and its {field} "
                    f"{value:.10g} differs from trade_tick_value {spec.tick_value:.10g}: the "
                    "money a tick makes varies with a conversion rate, which the runtime "
                    "cannot book"
                )
        return None
    return (
        f"{name}: the runtime books profit as quantity × price move, which this mode does not pay"
    )


# -- comments: the client order id the terminal keeps -----------------------------------------


def comment_for(client_order_id: str, leg: int = 0) -> str:
    """The comment carrying ``client_order_id`` (leg > 0: the k-th request of one order).

    tradefleet's own ids are at most 28 characters and go in as they are; a longer one (a
    third-party plugin's) becomes ``h:`` + a hash of it, the same every time, so the order is
    still found by its comment after a restart."""
    text = client_order_id if leg == 0 else f"{client_order_id}{LEG_MARK}{leg}"
    if len(text) <= COMMENT_MAX:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=14).hexdigest()
    return _HASH_MARK + digest[: COMMENT_MAX - len(_HASH_MARK)]


def base_comment(comment: str) -> str:
    """The comment of an order's first request, from any of its legs' comments."""
    head, mark, leg = comment.rpartition(LEG_MARK)
    return head if mark and leg.isdigit() and head else comment


def next_leg(client_order_id: str, used: Collection[str]) -> int:
    """The first leg of ``client_order_id`` after every one whose comment is in ``used`` (the
    comments sent so far, this run's and, after a restart, the terminal's history's): a new
    request of an order that already went out (the rest of a resting order moved through the
    market) carries a comment no earlier request of it had, so the look-up by comment before
    a resend finds only that request, and never takes an earlier one for it."""
    last = max((k for k in range(MAX_LEGS) if comment_for(client_order_id, k) in used), default=0)
    return last + 1


# -- volume and prices -----------------------------------------------------------------------

_EPS = 1e-9


# At most this many decimals in a unit quantity (units per lot from a division that does not
# end, 1/3 of something, would have dozens).
_MAX_UNIT_DECIMALS = 8


@functools.cache
def _per_lot(tick_value: float, tick_size: float) -> decimal.Decimal:
    """tick value / tick size as written (12.5 / 0.25 is 50, 5 / 0.01 is 500, exactly)."""
    return decimal.Decimal(repr(tick_value)) / decimal.Decimal(repr(tick_size))


def _units_per_lot(spec: SymbolSpec) -> decimal.Decimal:
    if spec.calc_mode in TICK_VALUE_MODES and spec.tick_value > 0 and spec.tick_size > 0:
        return _per_lot(spec.tick_value, spec.tick_size)
    return decimal.Decimal(repr(spec.contract_size if spec.contract_size > 0 else 1.0))


def units_per_lot(spec: SymbolSpec) -> float:
    """The units in one of the terminal's lots: the quantity whose profit, at one unit of money
    per unit of price move, is the terminal's profit on one lot. The contract size in the
    contract-size modes (100,000 euros of EURUSD); tick value / tick size in the tick-value
    modes (an ES future at $12.50 a 0.25 tick: 50, whatever its contract size says)."""
    return float(_units_per_lot(spec))


@functools.cache
def _unit_decimals(volume_step: float, per_lot: decimal.Decimal) -> int:
    """Decimals of one volume step in units (0.01 lot × 100,000: 1000, 0 decimals; 0.1 lot × 1:
    0.1, 1 decimal), from the numbers as written (0.1 × 3 is not 0.30000000000000004 here)."""
    if volume_step <= 0:
        return _MAX_UNIT_DECIMALS
    step = decimal.Decimal(repr(volume_step)) * per_lot
    return min(_MAX_UNIT_DECIMALS, max(0, -int(step.normalize().as_tuple().exponent)))


def to_lots(quantity: float, spec: SymbolSpec) -> float:
    """The runtime's ``quantity`` (units) in the terminal's lots, not rounded (``round_volume``
    rounds it down to the step)."""
    return quantity / units_per_lot(spec)


def to_units(volume: float, spec: SymbolSpec) -> float:
    """The terminal's ``volume`` (lots) in units, on the unit step's decimals: 0.07 lot of
    EURUSD is exactly 7000, not 7000.000000000001 (nor is 0.3 - 0.1 lot 19999.999999999996)."""
    per_lot = _units_per_lot(spec)
    return round(volume * float(per_lot), _unit_decimals(spec.volume_step, per_lot))


def unit_limits(spec: SymbolSpec) -> tuple[float, float, float]:
    """(lot step, minimum, maximum) in units: the symbol's volume step and limits × units per
    lot."""
    return (
        to_units(spec.volume_step, spec),
        to_units(spec.volume_min, spec),
        to_units(spec.volume_max, spec),
    )


def round_volume(volume: float, spec: SymbolSpec) -> float:
    """``volume`` (lots) rounded down to the volume step (never up: an order never grows): the
    runtime's lot-step rounding (``round_quantity``), on the symbol's step."""
    return round_quantity(volume, spec.volume_step)


def volume_problem(
    volume: float, spec: SymbolSpec, quantity: float | None = None
) -> tuple[ReasonCode, str] | None:
    """Why ``volume`` (lots, already rounded) cannot be sent, naming the limit in lots and in
    units; None if it can. ``quantity``: the units the bot asked for (else ``volume``'s)."""
    asked = to_units(volume, spec) if quantity is None else quantity
    what = f"quantity {asked:.10g} ({volume:.10g} lots)"
    if volume <= 0:
        step = spec.volume_step
        return ReasonCode.INVALID_QUANTITY, (
            f"quantity {asked:.10g} rounds to nothing on {spec.name}'s volume step "
            f"{step:.10g} lots "
            f"({to_units(step, spec):.10g} units)"
        )
    if volume < spec.volume_min - _EPS:
        vmin = spec.volume_min
        return ReasonCode.BELOW_MIN_QUANTITY, (
            f"{what} is below {spec.name}'s volume_min {vmin:.10g} lots "
            f"({to_units(vmin, spec):.10g} units)"
        )
    if volume > spec.volume_max + _EPS:
        vmax = spec.volume_max
        return ReasonCode.INVALID_QUANTITY, (
            f"{what} is above {spec.name}'s volume_max {vmax:.10g} lots "
            f"({to_units(vmax, spec):.10g} units)"
        )
    return None


def on_tick(price: float, spec: SymbolSpec, side: Side, order_type: OrderType) -> float:
    """``price`` on the tick (never worse for the bot), printed to the symbol's digits."""
    return round(round_price(price, spec.tick_size, side, order_type), spec.digits)


def stops_problem(
    side: Side, reference: float, stop_loss: float, take_profit: float, spec: SymbolSpec
) -> str | None:
    """Why SL/TP of a position opened on ``side`` cannot be set ``reference`` being the price
    they are measured from (the close side of the market, or a pending order's price)."""
    level = spec.stops_level * spec.point
    for name, value, below in (
        ("stop_loss", stop_loss, side is Side.BUY),
        ("take_profit", take_profit, side is Side.SELL),
    ):
        if not value:
            continue
        distance = (reference - value) if below else (value - reference)
        if distance <= 0:
            where = "below" if below else "above"
            return f"{name} {value:.10g} must be {where} {reference:.10g} for a {side} position"
        if distance < level - spec.point * 1e-3:
            return (
                f"{name} {value:.10g} is {distance / spec.point:.0f} points from {reference:.10g}; "
                f"{spec.name} needs at least trade_stops_level {spec.stops_level} points"
            )
    return None


# -- a limit or stop order's own price against the market ------------------------------------
#
# MetaTrader 5 measures a pending order's price from the side of the market it would trade
# against ("Requirements and Limitations in Making Trades"): a buy limit must be at least
# trade_stops_level points below the ask, a sell limit above the bid, a buy stop above the ask,
# a sell stop below the bid; anything else is refused (10015, invalid price) without a word on
# why. These functions decide that before anything is sent, on the tick the broker reads anyway.


def _sent_price(order: Order, spec: SymbolSpec) -> float:
    """The order's price as it would be sent (on the tick, never worse for the bot)."""
    assert order.price is not None
    return on_tick(order.price, spec, order.side, order.order_type)


def _beyond(order: Order, spec: SymbolSpec, bid: float, ask: float) -> float:
    """How far (price) the order's own price is on the far side of the market it is measured
    from: > 0 when a limit would trade now (a buy limit above the ask) or a stop has already
    triggered (a buy stop below the ask); 0 at the market; < 0 on the side it rests on."""
    price = _sent_price(order, spec)
    buy = order.side is Side.BUY
    market = ask if buy else bid
    above = (price - market) if buy else (market - price)  # the buyer's "above"
    return above if order.order_type is OrderType.LIMIT else -above


def through_market(order: Order, spec: SymbolSpec, bid: float, ask: float) -> bool:
    """Whether a limit or stop order is already beyond the market: a buy limit above the ask
    or a sell limit below the bid (it would fill now, as a taker, as the paper broker fills
    it), a buy stop below the ask or a sell stop above the bid (already triggered: a market
    order). The terminal refuses it as a pending order (10015); the broker sends it as a
    market deal. One exactly at the market is not through: the terminal takes it as a pending
    order where trade_stops_level is 0 (and activates it at once), and ``pending_price_problem``
    refuses it elsewhere, naming the level."""
    return _beyond(order, spec, bid, ask) > spec.point * 1e-3


def limit_deviation(order: Order, spec: SymbolSpec, bid: float, ask: float) -> int:
    """The ``deviation`` (points) of a limit through the market sent as a deal: from the
    market to the limit, rounded down, so a server that honours deviation (instant and
    request execution) never fills it beyond the limit. 0 when it is not through."""
    points = _beyond(order, spec, bid, ask) / spec.point
    return max(0, math.floor(points + 1e-6))


def beyond_limit(order: Order, spec: SymbolSpec, price: float) -> bool:
    """Whether a limit order's fill at ``price`` is worse than its limit (a server in market
    execution ignores the deviation a through-the-market limit was sent with)."""
    if order.order_type is not OrderType.LIMIT or order.price is None:
        return False
    limit = _sent_price(order, spec)
    worse = (price - limit) if order.side is Side.BUY else (limit - price)
    return worse > spec.point * 1e-3


def pending_price_problem(order: Order, spec: SymbolSpec, bid: float, ask: float) -> str | None:
    """Why the terminal would refuse a limit or stop order resting at its price (10015): closer
    than trade_stops_level points to the market it is measured from. The error names the
    level and the nearest price allowed (on the tick, away from the market). None if it can
    rest (an order through the market is not a pending order: ``through_market``)."""
    buy = order.side is Side.BUY
    limit = order.order_type is OrderType.LIMIT
    level = spec.stops_level * spec.point
    distance = -_beyond(order, spec, bid, ask)
    if distance >= level - spec.point * 1e-3:
        return None
    market, quote = (ask, "ask") if buy else (bid, "bid")
    below = buy == limit  # a buy limit and a sell stop rest below the market
    nearest = on_tick(
        market - level if below else market + level, spec, order.side, order.order_type
    )
    digits = spec.digits
    kind = f"{order.side} {'limit' if limit else 'stop'}"
    return (
        f"a {kind} on {order.symbol} must be at least {spec.stops_level} points "
        f"({level:.{digits}f}) {'below' if below else 'above'} the {quote} {market:.{digits}f} "
        f"({spec.name}'s trade_stops_level {spec.stops_level}): {nearest:.{digits}f} at "
        f"{'most' if below else 'least'}, not {_sent_price(order, spec):.{digits}f}"
    )


def resting_problem(order: Order, spec: SymbolSpec, bid: float, ask: float) -> str | None:
    """Why the terminal would refuse ``order`` resting at its price (10015, 10016): its price
    inside trade_stops_level (``pending_price_problem``), then its SL/TP, measured from that
    price as the terminal measures them (``stops_problem``). None if it can rest. A submit's
    pending order and an amend's move are decided alike, before anything is sent."""
    bad = pending_price_problem(order, spec, bid, ask)
    if bad is not None or not (order.stop_loss or order.take_profit):
        return bad
    at = _sent_price(order, spec)
    return stops_problem(order.side, at, order.stop_loss or 0.0, order.take_profit or 0.0, spec)


# -- filling modes ---------------------------------------------------------------------------


def filling_modes(spec: SymbolSpec, pending: bool) -> tuple[int, ...]:
    """Filling modes to try, best first. Market orders: FOK (all or nothing), then IOC, then
    RETURN where the execution mode allows it (not in market execution). Pending orders:
    RETURN (the remainder keeps working), then FOK/IOC if the symbol allows them."""
    flags = spec.filling_flags
    fok = (ORDER_FILLING_FOK,) if flags & SYMBOL_FILLING_FOK else ()
    ioc = (ORDER_FILLING_IOC,) if flags & SYMBOL_FILLING_IOC else ()
    if pending:
        return (ORDER_FILLING_RETURN, *fok, *ioc)
    ret = (ORDER_FILLING_RETURN,) if spec.execution_mode != SYMBOL_TRADE_EXECUTION_MARKET else ()
    modes = (*fok, *ioc, *ret)
    # No flag at all (a broker that leaves the field 0): let the terminal say which it takes.
    return modes or (ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN)


def needs_price(spec: SymbolSpec) -> bool:
    """Instant and request execution quote a price: the request must carry one."""
    return spec.execution_mode in (SYMBOL_TRADE_EXECUTION_INSTANT, SYMBOL_TRADE_EXECUTION_REQUEST)


# -- request dicts ---------------------------------------------------------------------------


def _pending_type(order: Order) -> int:
    buy = order.side is Side.BUY
    if order.order_type is OrderType.LIMIT:
        return ORDER_TYPE_BUY_LIMIT if buy else ORDER_TYPE_SELL_LIMIT
    return ORDER_TYPE_BUY_STOP if buy else ORDER_TYPE_SELL_STOP


def deal_request(
    order: Order,
    spec: SymbolSpec,
    *,
    magic: int,
    volume: float,
    price: float,
    deviation: int,
    filling: int,
    position: int = 0,
    leg: int = 0,
) -> dict[str, Any]:
    """A market order (``position``: close that hedging position by ticket; no SL/TP then)."""
    request: dict[str, Any] = {
        "action": TRADE_ACTION_DEAL,
        "symbol": spec.name,
        "volume": volume,
        "type": ORDER_TYPE_BUY if order.side is Side.BUY else ORDER_TYPE_SELL,
        "price": round(price, spec.digits),
        "deviation": deviation,
        "magic": magic,
        "comment": comment_for(order.client_order_id, leg),
        "type_time": ORDER_TIME_GTC,
        "type_filling": filling,
    }
    if position:
        request["position"] = position
    else:
        _add_stops(request, order, spec)
    return request


def pending_request(
    order: Order, spec: SymbolSpec, *, magic: int, volume: float, filling: int, leg: int = 0
) -> dict[str, Any]:
    """A limit or stop order resting at the broker (``leg`` > 0: a later request of the order,
    the rest of a limit's deal that filled in part)."""
    assert order.price is not None
    request: dict[str, Any] = {
        "action": TRADE_ACTION_PENDING,
        "symbol": spec.name,
        "volume": volume,
        "type": _pending_type(order),
        "price": on_tick(order.price, spec, order.side, order.order_type),
        "magic": magic,
        "comment": comment_for(order.client_order_id, leg),
        "type_time": ORDER_TIME_GTC,
        "type_filling": filling,
    }
    _add_stops(request, order, spec)
    return request


def _add_stops(request: dict[str, Any], order: Order, spec: SymbolSpec) -> None:
    exit_side = order.side.opposite
    if order.stop_loss:
        request["sl"] = on_tick(order.stop_loss, spec, exit_side, OrderType.STOP)
    if order.take_profit:
        request["tp"] = on_tick(order.take_profit, spec, exit_side, OrderType.LIMIT)


def sltp_request(
    spec: SymbolSpec, *, position: int, stop_loss: float, take_profit: float, magic: int
) -> dict[str, Any]:
    """Set a position's SL/TP (0: none), by ticket."""
    return {
        "action": TRADE_ACTION_SLTP,
        "symbol": spec.name,
        "position": position,
        "sl": round(stop_loss, spec.digits),
        "tp": round(take_profit, spec.digits),
        "magic": magic,
    }


def remove_request(ticket: int) -> dict[str, Any]:
    return {"action": TRADE_ACTION_REMOVE, "order": ticket}


def modify_request(
    spec: SymbolSpec, *, ticket: int, price: float, stop_loss: float, take_profit: float
) -> dict[str, Any]:
    return {
        "action": TRADE_ACTION_MODIFY,
        "order": ticket,
        "symbol": spec.name,
        "price": round(price, spec.digits),
        "sl": round(stop_loss, spec.digits),
        "tp": round(take_profit, spec.digits),
        "type_time": ORDER_TIME_GTC,
    }


__all__ = [
    "COMMENT_MAX",
    "MAX_LEGS",
    "SymbolSpec",
    "base_comment",
    "beyond_limit",
    "calc_mode_name",
    "calc_mode_problem",
    "comment_for",
    "deal_request",
    "filling_modes",
    "limit_deviation",
    "modify_request",
    "needs_price",
    "next_leg",
    "on_tick",
    "pending_price_problem",
    "pending_request",
    "remove_request",
    "resting_problem",
    "round_volume",
    "sltp_request",
    "spec_from_info",
    "stops_problem",
    "through_market",
    "to_lots",
    "to_units",
    "unit_limits",
    "units_per_lot",
    "volume_problem",
]
