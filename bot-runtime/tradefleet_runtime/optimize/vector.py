"""The vectorised sweep path: a whole backtest of a target-position strategy in numpy.

A strategy with the ``target-positions`` capability states its run as the position it wants
after each bar (:class:`~tradefleet_runtime.capabilities.TargetPlan`). :func:`run_plan` turns
that into what the event engine with the ``paper`` broker and the ``fixed-size`` sizer would
produce — fills, fees, cash, the equity and exposure of every traded bar, round-trip trades —
with the same arithmetic in the same order, so the results agree to the last bits (tested
against the engine to 1e-9, on real data and on data whose opens jump away from the closes):

- the first ``warmup`` bars are history: no orders (the plan must be flat there);
- a change of target decided at bar ``i``'s close is filled at bar ``i + 1``'s open: first a
  market order closing what is held, then one opening the new target; buys pay
  ``open × (1 + slippage)``, sells get ``open × (1 − slippage)``, each fill pays
  ``quantity × price × fee``; orders of the last bar never fill;
- a position still held when the data ends is one more trade, closed at the last close without
  an exit fee (reason ``end of data``), as a backtest's figures and report count it;
- an opening fill needs ``notional / leverage <= cash − fee`` (the paper broker's margin check):
  a plan that would be refused there is not evaluated here (None: run the engine).

- the opening order's size is the sizer's: ``fixed-size``'s quantity, or ``fixed-fractional``'s
  (``tradefleet_runtime.sizing``, the function the plugin calls) on the equity and close at the
  deciding bar, the stop at ``default_stop_pct`` (a plan's orders carry no stop-loss), its
  leverage cap leaving room for the fill's fee and slippage (as the paper broker's instrument
  states them to the plugin) and for those of the turn's closing fill before it (the exit the
  plugin sees working, ``RiskContext.closable``). That equity depends on every earlier fill,
  so these sizes are found by a loop over the plan's turns (a few hundred), with the engine's
  arithmetic; everything per bar stays in numpy.

:func:`vector_terms` says whether a bot can take this path at all, and why not when it
cannot: one symbol, the ``paper`` broker without instrument limits or funding, exactly one
risk plugin and it ``fixed-size`` or ``fixed-fractional``, not paused. Anything else is
evaluated by the event engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tradefleet_runtime.accounting import FLAT_QUANTITY
from tradefleet_runtime.bar_columns import BarColumns
from tradefleet_runtime.capabilities import TargetPlan
from tradefleet_runtime.model import END_OF_DATA, Trade
from tradefleet_runtime.sizing import fixed_fractional_quantity

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FractionalSizing:
    """The ``fixed-fractional`` sizer's params: each opening order risks a share of equity."""

    risk_per_trade: float
    default_stop_pct: float
    max_leverage: float


@dataclass(frozen=True)
class VectorTerms:
    """What the broker and the sizer do to every order, and the account it starts with."""

    symbol: str
    quantity: float  # the fixed size of every opening order (unless ``fractional``)
    fee_rate: float  # fraction of the notional
    slippage: float  # fraction of the open, against the taker
    leverage: float
    initial_capital: float
    timeframe_s: int
    fractional: FractionalSizing | None = None  # sized from equity at each turn instead
    # The paper broker's liquidation (its ``maintenance_margin_rate``; 0: none): a run that
    # reaches it is the event engine's to simulate.
    maintenance_margin_rate: float = 0.0


@dataclass(frozen=True)
class VectorRun:
    """What :func:`run_plan` produced: the engine's ``RunResult`` figures, as arrays."""

    fill_bar: Ints  # the bar (index into the columns) each fill happened at
    fill_side: Floats  # +1 buy, -1 sell
    fill_quantity: Floats
    fill_price: Floats
    fill_fee: Floats
    fill_reason: list[str]
    fill_opening: npt.NDArray[np.bool_]  # the fill opens the turn's target (else it closes)
    equity_ts: Ints  # close time of each traded bar
    equity: Floats
    exposure: Floats
    # Of each round trip, oldest first, then of a position held at the end (``end of data``).
    trade_net_pnl: Floats
    trade_columns: tuple[Any, ...]  # what trade_list() builds Trade objects from
    fees: float
    history_bars: int
    orders: int = 0
    notes: list[str] = field(default_factory=list)

    def trade_list(self) -> list[Trade]:
        """The round trips as the engine's ``Trade`` objects (built on demand: a sweep needs
        only their P&L)."""
        symbol, *columns = self.trade_columns
        return [Trade(symbol, *row) for row in zip(*(c.tolist() for c in columns), strict=True)]


def plugin_params(plugin: object) -> dict[str, Any]:
    """A plugin's validated params as a dict (empty when it keeps none): what
    :func:`vector_terms` takes of a built broker or sizer."""
    params = getattr(plugin, "params", None)
    dump = getattr(params, "model_dump", None)
    return dict(dump()) if callable(dump) else {}


def vector_terms(
    symbols: tuple[str, ...],
    broker: tuple[str, Mapping[str, Any]],
    risk: list[tuple[str, Mapping[str, Any]]],
    *,
    initial_capital: float,
    timeframe_s: int,
    paused: bool = False,
) -> VectorTerms | str:
    """The terms of the vectorised path for this bot, or why it must use the event engine.

    ``broker`` and ``risk`` are (plugin name, validated params as a dict) pairs.
    """
    if len(symbols) != 1:
        return f"{len(symbols)} symbols (the vectorised path trades one)"
    if paused:
        return "the bot starts paused"
    name, params = broker
    if name != "paper":
        return f"broker {name!r} (the vectorised path knows the paper broker's fills)"
    symbol = symbols[0]
    instrument = dict(params.get("instruments", {})).get(symbol, params.get("default_instrument"))
    # contract_size is information (what a lot holds), no limit: the vectorised fills hold.
    limits = {k: v for k, v in dict(instrument or {}).items() if k != "contract_size"}
    if any(float(value or 0.0) for value in limits.values()):
        return f"instrument limits for {symbol} (lot step, tick size or minimums)"
    funding = _funding_param(params, symbol)
    if funding:
        return f"{funding} (the vectorised path pays no funding)"
    names = [n for n, _ in risk]
    if names not in (["fixed-size"], ["fixed-fractional"]):
        listed = ", ".join(names) or "none"
        return (
            f"risk chain {listed} (the vectorised path supports exactly one sizer, "
            "fixed-size or fixed-fractional)"
        )
    sizer = risk[0][1]
    quantity = 0.0
    fractional = None
    if names == ["fixed-size"]:
        quantity = float(dict(sizer.get("per_symbol", {})).get(symbol, sizer["quantity"]))
    else:
        fractional = FractionalSizing(
            risk_per_trade=float(sizer["risk_per_trade"]),
            default_stop_pct=float(sizer["default_stop_pct"]),
            max_leverage=float(sizer["max_leverage"]),
        )
    return VectorTerms(
        symbol=symbol,
        quantity=quantity,
        fee_rate=float(params.get("fee_bps", 0.0)) / 10_000.0,
        slippage=float(params.get("slippage_bps", 0.0)) / 10_000.0,
        leverage=float(params.get("leverage", 1.0)),
        initial_capital=initial_capital,
        timeframe_s=timeframe_s,
        fractional=fractional,
        maintenance_margin_rate=float(params.get("maintenance_margin_rate") or 0.0),
    )


def _funding_param(params: Mapping[str, Any], symbol: str) -> str:
    """The paper broker's param that makes ``symbol`` pay funding, with its value ('' for
    none): the engine settles it at funding times, which a plan's fills do not state."""
    history = dict(params.get("funding_history") or {})
    if symbol in history:
        return f"funding_history.{symbol} {history[symbol]}"
    per_symbol = dict(params.get("funding_rate_per_symbol") or {})
    if symbol in per_symbol:
        name, rate = f"funding_rate_per_symbol.{symbol}", float(per_symbol[symbol])
    else:
        name, rate = "funding_rate", float(params.get("funding_rate") or 0.0)
    return f"{name} {rate:.10g}" if rate else ""


def run_plan(
    columns: BarColumns, plan: TargetPlan, terms: VectorTerms, warmup: int
) -> VectorRun | str:
    """The backtest of ``plan`` on ``columns`` (see the module), or why it cannot be done here."""
    count = len(columns)
    target = np.asarray(plan.target, dtype=np.float64)
    if target.shape != (count,):
        return f"the plan has {target.size} targets for {count} bars"
    history = min(warmup, count)
    if np.any(target[:history] != 0.0):
        return "the plan holds a position during warm-up"
    # Decisions at the closes of traded bars, but the last (its orders never fill).
    decided = np.arange(history, count - 1)
    if history:
        before = target[history - 1 : count - 2]
    else:
        before = np.concatenate(([0.0], target[: count - 2]))[: decided.size]
    turn = decided[target[history : count - 1] != before]
    if terms.fractional is None:
        sizes: Floats = np.full(turn.size, terms.quantity)
    else:
        found = _fractional_sizes(columns, target, turn, terms, terms.fractional)
        if isinstance(found, str):
            return found
        sizes = found
    tiny = sizes[(sizes > 0.0) & (sizes <= FLAT_QUANTITY)]
    if tiny.size:
        # The engine holds a position that small as none (its close sends nothing): another
        # run than the one stated here.
        return (
            f"a size of {float(tiny[0]):.3g} is flat to the event engine (a position within "
            f"{FLAT_QUANTITY:g} of 0)"
        )
    wanted = target[turn] * sizes
    # The position after the first k turns' fills, k = 0 (flat) to all: indexed by a count of
    # turns, never by a turn, so a run without a turn (nothing traded after warm-up) indexes
    # only the flat start instead of an empty ``wanted``.
    after_turns = np.concatenate(([0.0], wanted))
    # What each turn's closing order closes: the position the turn before opened.
    held = after_turns[:-1]
    # Two order slots a turn: close what is held, then open the target.
    closes, opens = held != 0.0, wanted != 0.0
    slots = np.empty(turn.size * 2, dtype=bool)
    slots[0::2], slots[1::2] = closes, opens
    bar = np.repeat(turn + 1, 2)[slots]
    side = np.empty(turn.size * 2)
    side[0::2], side[1::2] = -np.sign(held), np.sign(wanted)
    side = side[slots]
    quantity = np.empty(turn.size * 2)
    quantity[0::2], quantity[1::2] = np.abs(held), np.abs(wanted)
    quantity = quantity[slots]
    opening = np.empty(turn.size * 2, dtype=bool)
    opening[0::2], opening[1::2] = False, True
    opening = opening[slots]
    price = columns.open[bar] * np.where(side > 0, 1.0 + terms.slippage, 1.0 - terms.slippage)
    fee = quantity * price * terms.fee_rate
    # Cash after each fill, summed in the engine's order (a sequential running sum).
    flows = np.empty(bar.size + 1)
    flows[0] = terms.initial_capital
    flows[1:] = -(side * quantity * price + fee)
    cash = np.cumsum(flows)
    # The paper broker's margin check on opening fills (from flat: the position is closed).
    margin = np.abs(quantity) * price / terms.leverage
    refused = opening & ~(margin <= cash[:-1] - fee)
    # The paper broker's market fills: the order's tag, or "market" untagged.
    reasons = np.where(
        opening,
        np.where(side > 0, plan.buy_tag or "market", plan.sell_tag or "market"),
        plan.close_tag or "market",
    ).astype(object)
    # Equity at each traded bar's close: cash after its fills + position × close. The traded
    # bars are ``history:`` of the columns: slices of them are views, where indexing copies.
    traded = np.arange(history, count)
    # The position at each traded bar's close: what the turns filled by then left.
    position = after_turns[np.searchsorted(turn + 1, traded, side="right")]
    last_fill = np.searchsorted(bar, traded, side="right")
    value = position * columns.close[history:]
    equity = cash[last_fill] + value
    exposure = np.abs(value)
    # The position after each count of fills (0: flat), as ``after_turns`` holds it: a turn's
    # closing fill leaves it flat, its opening fill at the turn's target.
    held_after = np.empty(turn.size * 2)
    held_after[0::2], held_after[1::2] = 0.0, wanted
    held_by_fills = np.concatenate(([0.0], held_after[slots]))
    liquidated = _liquidated_at(columns, history, held_by_fills, cash, last_fill, terms)
    # Either leaves the run to the engine; the earlier is why (after it the plan is not what
    # the engine trades, so a later one may never happen there). On one bar, the refused fill
    # at its open comes before a liquidation over its range by the position it would open.
    first_refused = int(bar[np.argmax(refused)]) if refused.any() else None
    if first_refused is not None and (liquidated is None or first_refused <= liquidated):
        at = int(columns.ts[first_refused])
        return f"an opening fill at {at} would be refused for margin (the engine rejects it)"
    if liquidated is not None:
        at = int(columns.ts[liquidated])
        return f"the position would be liquidated at {at} (the engine simulates it)"
    # A position still held at the end is a trade closed at the last close, as a backtest's
    # figures and report count it (the engine's ``end_of_data_trades``).
    end = (int(columns.ts[-1]) + terms.timeframe_s, float(columns.close[-1])) if count else (0, 0.0)
    trade_columns, net = _trades(
        terms.symbol, columns.ts, bar, side, quantity, price, fee, opening, reasons, end
    )
    fees = float(np.cumsum(fee)[-1]) if fee.size else 0.0
    return VectorRun(
        fill_bar=bar,
        fill_side=side,
        fill_quantity=quantity,
        fill_price=price,
        fill_fee=fee,
        fill_reason=[str(r) for r in reasons],
        fill_opening=opening,
        equity_ts=columns.ts[history:] + terms.timeframe_s,
        equity=equity,
        exposure=exposure,
        trade_net_pnl=net,
        trade_columns=trade_columns,
        fees=fees,
        history_bars=history,
        orders=int(bar.size),
    )


def _liquidated_at(
    columns: BarColumns,
    history: int,
    held_by_fills: Floats,
    cash: Floats,
    last_fill: Ints,
    terms: VectorTerms,
) -> int | None:
    """The first bar at which the paper broker would liquidate the run's position (its equity
    at the maintenance margin: ``paper_liquidation``'s rule, one symbol), or None: at its
    open, with the position held before its fills, and over its range, with the one after.
    The vectorised path does not simulate a liquidation; finding one, it leaves the run to the
    event engine. The price is ``paper_liquidation.liquidation_price`` for one symbol, written
    here over arrays (the runtime imports no plugin); ``tests/plugins/test_paper_liquidation``
    holds the two together.

    The account changes only at fills, so the price is worked out once per count of fills
    (``held_by_fills`` and ``cash``, a few per turn) and looked up for each traded bar (from
    ``history`` on; ``last_fill``: the fills done by its close): the same division on the same
    numbers as per bar, at a fraction of the cost (this runs in every vectorised backtest)."""
    rate = terms.maintenance_margin_rate
    if rate <= 0.0 or not last_fill.size:
        return None
    q = held_by_fills
    with np.errstate(divide="ignore", invalid="ignore"):
        long_at = np.where(q > 0.0, -cash / (q * (1.0 - rate)), -np.inf)
        short_at = np.where(q < 0.0, cash / (-q * (1.0 + rate)), np.inf)
    # Over its range: the position after the bar's fills. At its open: the one before them,
    # which the previous traded bar's close left (flat with the initial cash before the first).
    before = np.concatenate(([0], last_fill[:-1]))
    opens = columns.open[history:]
    hit = (columns.low[history:] <= long_at[last_fill]) | (
        columns.high[history:] >= short_at[last_fill]
    )
    hit |= (opens <= long_at[before]) | (opens >= short_at[before])
    if not hit.any():
        return None
    return history + int(np.argmax(hit))


def _fractional_sizes(
    columns: BarColumns,
    target: Floats,
    turn: Ints,
    terms: VectorTerms,
    sizing: FractionalSizing,
) -> Floats | str:
    """The ``fixed-fractional`` size of each turn's opening order, or why there is none.

    The sizer reads the account's equity when the turn is decided, at its bar's close: cash
    after every fill so far plus the held position at that close. Cash moves by the fills, which
    depend on the sizes before: hence a loop over turns, with the engine's arithmetic in its
    order (the same operations on the same float64 values give the same bits as numpy's)."""
    sizes = np.empty(turn.size)
    opens, closes = columns.open.tolist(), columns.close.tolist()
    buy_at, sell_at = 1.0 + terms.slippage, 1.0 - terms.slippage
    fee_rate = terms.fee_rate
    cash = terms.initial_capital
    held = 0.0
    for k, (at, wants) in enumerate(zip(turn.tolist(), target[turn].tolist(), strict=True)):
        size = 0.0  # a turn to flat opens nothing: the sizer is not asked
        if wants:
            close = closes[at]
            equity = cash + held * close if held else cash
            # The paper broker's fee and slippage: the cap leaves room for them, as the
            # sizer does with the instrument the broker states (``Instrument.taker_fee``),
            # and for the costs of closing ``held`` first: the engine's sizer sees that close
            # working (the whole position, at a market close's slippage and at the mark, the
            # worse of it and the entry's price: both are the close here) and does the same.
            size = fixed_fractional_quantity(
                equity,
                close,
                close * sizing.default_stop_pct,
                sizing.risk_per_trade,
                sizing.max_leverage,
                fee_rate,
                terms.slippage,
                abs(held),
                terms.slippage,
                close,
            )
            if size <= 0:
                return f"the sizer vetoes the entry at {int(columns.ts[at])} (equity {equity:.10g})"
        sizes[k] = size
        wanted = wants * size
        # The turn's fills at the next bar's open: close what is held, then open ``wanted``.
        for quantity in (-held, wanted):
            if quantity:
                side = 1.0 if quantity > 0 else -1.0
                amount = abs(quantity)
                price = opens[at + 1] * (buy_at if side > 0 else sell_at)
                fee = amount * price * fee_rate
                cash = cash + -(side * amount * price + fee)
        held = wanted
    return sizes


def _trades(
    symbol: str,
    ts: Ints,
    bar: Ints,
    side: Floats,
    quantity: Floats,
    price: Floats,
    fee: Floats,
    opening: npt.NDArray[np.bool_],
    reasons: npt.NDArray[Any],
    end: tuple[int, float],
) -> tuple[tuple[Any, ...], Floats]:
    """Round trips as the engine's portfolio books them (each close ends the last opening),
    then a position still held, closed at ``end`` (the last bar's close time and close) without
    an exit fee, as ``end_of_data_trades`` does: the columns of their ``Trade`` fields, and
    their net P&L."""
    entry = np.flatnonzero(opening)
    exit_ = np.flatnonzero(~opening)
    held = entry[exit_.size :]  # the last opening, when nothing closed it
    entry = entry[: exit_.size]
    # The portfolio's arithmetic: values over quantities, realised P&L against the average.
    entry_price = (quantity[entry] * price[entry]) / quantity[entry]
    exit_price = (quantity[exit_] * price[exit_]) / quantity[exit_]
    direction = side[entry]
    gross = quantity[exit_] * (price[exit_] - entry_price) * direction
    fees = fee[entry] + fee[exit_] * (quantity[exit_] / quantity[exit_])
    exit_ts, exit_reasons = ts[bar[exit_]], reasons[exit_]
    if held.size:
        ended, mark = end
        size = quantity[held]
        opened = (size * price[held]) / size
        entry, direction = np.concatenate((entry, held)), np.concatenate((direction, side[held]))
        entry_price = np.concatenate((entry_price, opened))
        exit_price = np.concatenate((exit_price, (size * mark) / size))
        gross = np.concatenate((gross, side[held] * size * (mark - opened)))
        fees = np.concatenate((fees, fee[held]))
        exit_ts = np.concatenate((exit_ts, [ended]))
        exit_reasons = np.concatenate((exit_reasons, np.array([END_OF_DATA], dtype=object)))
    columns = (
        symbol,
        direction.astype(int),
        quantity[entry],
        ts[bar[entry]],
        exit_ts,
        entry_price,
        exit_price,
        gross,
        fees,
        reasons[entry],
        exit_reasons,
    )
    net: Floats = gross - fees
    return columns, net


__all__ = [
    "FractionalSizing",
    "VectorRun",
    "VectorTerms",
    "plugin_params",
    "run_plan",
    "vector_terms",
]
