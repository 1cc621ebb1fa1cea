"""Pure helpers the sizers share: confidence scaling, the leverage cap, the instrument's step."""

from __future__ import annotations

from tradefleet_runtime.sdk import (
    Instrument,
    OrderIntent,
    OrderType,
    RiskContext,
    RiskDecision,
    leverage_cap_quantity,
)

_APPROVE = RiskDecision.approve()


def scaled(quantity: float, intent: OrderIntent, by_confidence: bool) -> float:
    """``quantity`` scaled by the intent's confidence (clamped to 0..1) when it carries one."""
    if not by_confidence or intent.confidence is None:
        return quantity
    return quantity * min(max(intent.confidence, 0.0), 1.0)


def fill_costs(intent: OrderIntent, instrument: Instrument) -> tuple[float, float]:
    """The fee and slippage (fractions) the instrument says ``intent``'s fill pays: its taker
    fee (the worst case: a limit may rest and pay less), and its slippage unless it is a limit
    order, which never fills past its price."""
    slippage = 0.0 if intent.order_type is OrderType.LIMIT else instrument.slippage
    return instrument.taker_fee, slippage


def closed_by_exits(intent: OrderIntent, ctx: RiskContext) -> float:
    """How much of ``intent``'s symbol's position the exits already working on it close
    (``ctx.close`` sent before a reversal's entry): the position less ``ctx.closable``. 0
    without a position, or when ``closable`` is not told (a context built by hand). An exit
    that rests (a strategy's own limit) is counted too: its costs may come first."""
    closable = ctx.closable
    held = ctx.positions.get(intent.symbol)
    if closable is None or held is None or not held.quantity:
        return 0.0
    return max(abs(held.quantity) - closable.get(intent.symbol, 0.0), 0.0)


def closing_price(intent: OrderIntent, ctx: RiskContext, price: float) -> float:
    """The price the costs of what closes before (or with) an entry at ``price`` are taken at:
    the worse (higher: the costs grow with it) of the mark and ``price``. An exit working
    ahead of it (``ctx.close``, a market order) fills at the mark whatever the entry's price:
    a short of 500 at mark 100 closed behind a buy limit at 80 paid its fee and slippage on
    50,000, not 40,000, and the entry the cap sized came over the margin the close left; the
    order's own closing part fills at its price (a stop's may be over the mark)."""
    mark = ctx.mark(intent.symbol)
    return mark if mark > price else price


def leverage_cap(
    intent: OrderIntent, ctx: RiskContext, price: float, max_leverage: float, closing: float = 0.0
) -> float:
    """The most ``intent`` may open at ``price`` under ``max_leverage``, with room for its own
    fill's fee and slippage (``leverage_cap_quantity``): the one cut of every sizer. Without
    the room a spot (1x) entry the cap sized came to the broker at equity ÷ last close, its
    fill's slippage and fee took it over the cash, and it was refused whole.

    Room too for the costs of what the same fills close first: ``closing`` (the order's own
    closing part) and what the exits working on the position close (``closed_by_exits``), at
    the instrument's fee and slippage (a market close's) and at ``closing_price``. Without it
    a reversal's entry sized at the cap (``ctx.close`` + an entry, on a 5x perpetual at
    max_leverage 5) came a few units over the equity the close's fee and slippage left, and
    the broker refused it: the bot ended flat instead of reversed.

    And room for what the order's own closing part loses at its stop (``loss_to_trigger``):
    the equity the opening part's margin stands on at the fill. Without it a buy stop of 900
    at 110 reversing a short of 400 at mark 100 opened 454 on 10,000 at max_leverage 5, 8.3x
    the 6,000 the close left."""
    instrument = ctx.instrument
    return leverage_cap_quantity(
        ctx.equity,
        price,
        max_leverage,
        *fill_costs(intent, instrument),
        closing + closed_by_exits(intent, ctx),
        instrument.slippage,
        closing_price(intent, ctx, price),
        loss_to_trigger(intent, ctx, price, closing),
    )


def loss_to_trigger(intent: OrderIntent, ctx: RiskContext, price: float, closing: float) -> float:
    """What ``closing``, the order's own closing part, loses filling at ``price`` rather than
    the mark the equity was read at: the position's move from the mark to a stop on its losing
    side (a buy stop above the mark closing a short, a sell stop below it closing a long), a
    loss booked before what the order opens needs its margin. 0 for a market or limit order (a
    marketable limit fills at the mark, a resting one on the position's winning side), a stop
    on the winning side, no closing part, or no mark. The exits working ahead (``ctx.close``)
    fill at the mark: nothing to count for them."""
    if closing <= 0.0 or intent.order_type is not OrderType.STOP:
        return 0.0
    mark = ctx.mark(intent.symbol)
    move = (price - mark) * intent.side.sign
    if not (mark > 0.0 and move > 0.0):
        return 0.0
    return closing * move


def loss_text(loss: float, price: float) -> str:
    """What a cap's reason adds when it counted ``loss_to_trigger`` (an empty text otherwise)."""
    return f" (its close loses {loss:.10g} to {price:.10g} first)" if loss > 0.0 else ""


def leverage_capped(
    by_risk: float,
    by_leverage: float,
    max_leverage: float,
    costs: tuple[float, float] = (0, 0),
    closing: float = 0.0,
) -> str:
    """What a sizer's reason adds when ``max_leverage`` and not the risk set the size: the cap,
    the fill's costs it left room for (``costs``: fee, slippage; and those of ``closing``, what
    the fills close first), and the share of the asked risk left (an empty text otherwise).
    Without it a decision read "risk 1.00% of 10000.00" while a 1x cap had cut an FX order to
    a fifth of that risk, and a trader took the journal's word for the risk each trade ran."""
    if by_leverage >= by_risk or by_risk <= 0.0:
        return ""
    fee, slippage = costs
    room = f" with its fill's {fee:.2%} fee and {slippage:.2%} slippage" if fee or slippage else ""
    if room and closing > 0.0:
        room += f", and those of closing {closing:.10g} first,"
    return (
        f", capped by max_leverage {max_leverage:.10g} (notional{room} at most "
        f"{max_leverage:.10g}x "
        f"equity) to {by_leverage / by_risk:.0%} of that risk"
    )


def sized_within_leverage(
    intent: OrderIntent, ctx: RiskContext, max_leverage: float, plugin: str
) -> RiskDecision:
    """An order that came sized (a strategy's or a webhook signal's own quantity, which no sizer
    sets) held to the sizer's ``max_leverage``: shrunk to that notional, on the lot step, or
    vetoed when nothing is left. The cap reads as a bound on any order the bot sends, and a
    signal's ``"volume": 100`` typed for 0.01 went to the venue as 500x the equity, stopped only
    by the venue's margin check. Exits (reduce-only) always pass, and so does the part of an
    order that closes an opposite position (``RiskContext.closing``): only what it opens is
    bounded. A position an exit already works for (``ctx.close`` before a reversal's entry)
    is closed by that exit, not by this order, whose whole quantity then opens. The cap leaves
    room for the fill's fee and slippage, and for those of the closing part and of the exit
    (``leverage_cap``), and for what the closing part loses at its stop (``loss_to_trigger``)."""
    quantity = intent.quantity
    if quantity is None or intent.reduce_only:
        return _APPROVE
    closing = ctx.closing(intent, quantity)
    price = intent.price or ctx.mark(intent.symbol)
    cap = leverage_cap(intent, ctx, price, max_leverage, closing)
    if quantity - closing <= cap:
        return _APPROVE
    capped = to_step(closing + cap, ctx.instrument)
    loss = loss_to_trigger(intent, ctx, price, closing)
    why = (
        f"{plugin}: {quantity - closing:.10g} {intent.symbol} opened is "
        f"{(quantity - closing) * price / ctx.equity:.2f}x equity{loss_text(loss, price)}"
        if cap > 0 or (loss > 0.0 and ctx.equity > 0.0)
        else f"{plugin}: no price or equity to bound {quantity:.10g} {intent.symbol}"
    )
    if capped <= 0.0 or capped < ctx.instrument.min_quantity:
        return RiskDecision.veto(f"{why}, over max_leverage {max_leverage:.10g}", "max_leverage")
    return RiskDecision.shrink(
        capped, f"{why}, over max_leverage {max_leverage:.10g}: {quantity:.10g} -> {capped:.10g}"
    )


def to_step(quantity: float, instrument: Instrument) -> float:
    """Round down to the instrument's lot step (never up: a sizer must not over-size)."""
    step = instrument.lot_step
    if step <= 0.0:
        return quantity
    return round(int(quantity / step + 1e-9) * step, 12)


def sized(quantity: float, instrument: Instrument, reason: str) -> RiskDecision:
    """The sizer's answer: the quantity on the instrument's step, or a veto below its minimum."""
    rounded = to_step(quantity, instrument)
    if rounded <= 0.0 or rounded < instrument.min_quantity:
        return RiskDecision.veto(
            f"size {quantity:.10g} rounds to {rounded:.10g}, below the minimum "
            f"{instrument.min_quantity:.10g} of {instrument.symbol}",
            "below_minimum",
        )
    return RiskDecision.approve(rounded, reason)
