"""``tradefleet backtest`` by the vectorised path, journaled as the event engine journals it.

A bot whose strategy states its run as target positions (``target-positions``) and whose other
parts the vectorised path knows (:func:`~tradefleet_runtime.optimize.vector.vector_terms`: one
symbol, the ``paper`` broker without instrument limits, one sizer) is backtested in numpy
(:func:`~tradefleet_runtime.optimize.vector.run_plan`) instead of bar by bar. What a user gets
is the same as from the event engine: the same report, and a journal with the same rows —
orders with their ids, last statuses and tags, the sizer's decisions, fills, the position,
trades, equity, events, the run's summary — so ``tradefleet report`` cannot tell the two apart
(``tests/runtime/test_vector_backtest.py`` compares every table, row for row).

Only the numbers come from the vectorised run. Everything that is a plugin's or the runtime's
own word is asked of it as the engine asks: each order's id is ``order_ids.client_order_id``,
each decision is the bot's sizer's ``check`` on the intent the strategy would have sent (so its
reason is the sizer's text), and a sizer whose quantity differs from the vectorised run's by
one bit sends the backtest back to the engine. Whatever the path cannot state exactly it does
not guess: :func:`vector_refusal` and :func:`vector_backtest` say why, and the caller runs the
event engine.
"""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, cast

import numpy as np

from tradefleet_runtime.accounting import apply_fill
from tradefleet_runtime.bar_columns import BarColumns, ColumnBars
from tradefleet_runtime.contracts import BrokerContext, RiskContext
from tradefleet_runtime.engine.engine import RunResult
from tradefleet_runtime.engine.risk_chain import judge
from tradefleet_runtime.engine.risk_driver import BLANK_CONTEXT
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.journal.run_rows import DecisionColumns, FillColumns, OrderColumns, RunRows
from tradefleet_runtime.model import (
    Fill,
    Instrument,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    RiskAction,
    RiskDecision,
    Side,
)
from tradefleet_runtime.optimize.plan_check import plan_looks_ahead
from tradefleet_runtime.optimize.vector import (
    VectorRun,
    VectorTerms,
    plugin_params,
    run_plan,
    vector_terms,
)
from tradefleet_runtime.order_ids import bot_prefix, client_order_id
from tradefleet_runtime.report.metrics import SymbolRange
from tradefleet_runtime.session import (
    Bot,
    RunOutcome,
    finish_run,
    journal_open_position,
    journal_warm_up,
    start_journal_run,
)
from tradefleet_runtime.spec.model import Mode
from tradefleet_runtime.tracing import tracing_requested

_log = logging.getLogger("tradefleet.vector")

#: As the engine journals equity in a backtest: a packed chunk per this many bars.
EQUITY_CHUNK = 1024

_NAN = float("nan")
_new = tuple.__new__
_APPROVE = RiskAction.APPROVE
_BUY, _SELL = Side.BUY, Side.SELL
_FILLED, _OPEN = OrderStatus.FILLED + "", OrderStatus.OPEN + ""
_MARKET = OrderType.MARKET


@dataclass(frozen=True)
class VectorBacktest:
    """A finished backtest by the vectorised path: what the session's ``close`` returns, and
    the traded range of its symbol (what the CLI's bar recorder gives the report)."""

    outcome: RunOutcome
    ranges: list[SymbolRange]


def vector_terms_of(bot: Bot) -> VectorTerms | str:
    """The vectorised path's terms for ``bot`` (broker, sizer, capital), or why it has none."""
    spec = bot.manifest.spec
    if bot.planner is None:
        return f"strategy {spec.strategy.name!r} does not offer target positions"
    terms = vector_terms(
        tuple(spec.market.symbols),
        (spec.broker.name, plugin_params(bot.broker)),
        [(name, plugin_params(plugin)) for name, plugin in bot.risk],
        initial_capital=spec.capital.initial,
        timeframe_s=spec.market.timeframe_s,
        paused=spec.paused,
    )
    if not isinstance(terms, str):
        # The run books the paper broker's fills without the engine, which is what connects
        # it: connected here as the session would, so whatever it refuses at start (a symbol
        # paying its profit in another currency than the capital's) is refused on this path
        # too (raised, as from the session), not booked.
        bot.broker.connect(
            BrokerContext(
                bot.name,
                spec.mode,
                tuple(spec.market.symbols),
                spec.capital.currency,
                spec.capital.initial,
            )
        )
    return terms


def vector_refusal(bot: Bot) -> str | None:
    """Why ``bot``'s backtest must run on the event engine, decided before any bar is read;
    None when the vectorised path may try."""
    if bot.manifest.spec.mode is not Mode.BACKTEST:
        return f"a {bot.manifest.spec.mode.value} bot (its run continues its journal)"
    terms = vector_terms_of(bot)
    if isinstance(terms, str):
        return terms
    if tracing_requested():
        return "tracing is on (the engine's spans are per order)"
    return None


def columns_of(bars: object, bot: Bot) -> BarColumns | None:
    """The whole series the feed handed over as columns, when it did and nothing was read."""
    spec = bot.manifest.spec
    if (
        isinstance(bars, ColumnBars)
        and bars.untouched
        and bars.symbol == spec.market.symbols[0]
        and bars.timeframe_s == spec.market.timeframe_s
    ):
        return bars.columns
    return None


def vector_backtest(
    bot: Bot, journal: Journal, columns: BarColumns, warmup: int | None = None
) -> VectorBacktest | str:
    """Backtest ``bot`` on ``columns`` by the vectorised path, journaling into ``journal`` what
    the engine would; or why not (nothing is journaled then: the caller runs the engine).
    ``warmup``: what the strategy asks for once started (``session.started_warmup``, which
    also refuses params its ``on_start`` refuses); None: ``bot``'s strategy as it stands."""
    terms = vector_terms_of(bot)
    if isinstance(terms, str):
        return terms
    planner = bot.planner
    assert planner is not None  # vector_terms_of refused a bot without one
    name = bot.manifest.spec.strategy.name
    plan = planner.target_positions(columns)
    if plan is None:
        return f"strategy {name!r} cannot state these params as target positions"
    if warmup is None:
        warmup = bot.strategy.warmup_bars()
    peek = plan_looks_ahead(planner.target_positions, columns, plan.target, warmup)
    if peek is not None:
        # A strategy's bug, which a vectorised backtest would turn into foresight: said
        # louder than the other reasons the engine runs a backtest.
        _log.warning("%s: strategy %r's target_positions looks ahead: %s", bot.name, name, peek)
        return f"strategy {name!r}'s target_positions looks ahead ({peek})"
    run = run_plan(columns, plan, terms, warmup)
    if isinstance(run, str):
        return run
    rows = _rows(
        bot, terms, columns, plan.target, run, (plan.close_tag, plan.buy_tag, plan.sell_tag)
    )
    if isinstance(rows, str):
        return rows
    return _journal(bot, journal, terms, columns, run, rows)


def _rows(
    bot: Bot,
    terms: VectorTerms,
    columns: BarColumns,
    target: Any,
    run: VectorRun,
    tags: tuple[str, str, str],
) -> RunRows | str:
    """The orders, decisions, fills and final position the engine would journal for ``run``
    (the sizer asked for every decision), or why they cannot be stated here.

    An order per fill of the run, in its order, then the orders of a change of target at the
    last bar's close: the engine sends those too, and they never fill (no next open)."""
    symbol, tf = terms.symbol, terms.timeframe_s
    close_tag, buy_tag, sell_tag = tags
    history = run.history_bars
    fills = int(run.fill_bar.size)
    decided = run.fill_bar - 1  # each fill's order was sent at the close before its bar
    buys = run.fill_side > 0
    quantities = run.fill_quantity
    closing = ~run.fill_opening
    position = Position(symbol)
    end = len(columns) - 1
    if end >= max(history, 1) and target[end] != target[end - 1]:
        # The plan's turn at the last bar: close what the target before it holds, then open
        # the new one. Their quantities (NaN here) are the position's and the sizer's, asked
        # in order below as the engine asks them.
        before, wanted = float(target[end - 1]), float(target[end])
        extra: list[tuple[bool, float, bool]] = []
        if before:
            extra.append((before < 0, _NAN, True))
        if wanted:
            extra.append((wanted > 0, _NAN, False))
        if extra:
            decided = np.concatenate((decided, np.full(len(extra), end)))
            buys = np.concatenate((buys, [e[0] for e in extra]))
            quantities = np.concatenate((quantities, [e[1] for e in extra]))
            closing = np.concatenate((closing, [e[2] for e in extra]))
    now = columns.ts[decided] + tf
    repeated = np.concatenate(([False], now[1:] == now[:-1])) if now.size else now.astype(bool)
    prefix = bot_prefix(bot.name)
    now_list = now.tolist()
    order_ids = [
        client_order_id(prefix, at, symbol, second)
        for at, second in zip(now_list, repeated.astype(int).tolist(), strict=True)
    ]
    sides = [_BUY if buy else _SELL for buy in buys.tolist()]
    closing_list = closing.tolist()
    quantity_list = quantities.tolist()
    order_tags = [
        close_tag if shut else (buy_tag if side is _BUY else sell_tag)
        for shut, side in zip(closing_list, sides, strict=True)
    ]
    fill_ts = columns.ts[run.fill_bar].tolist()
    fill_ids = [f"{order_id}-f{n}" for n, order_id in enumerate(order_ids[:fills], 1)]
    # The mark each order was decided at: its bar's close (the engine's mark then).
    marks = columns.close[decided].tolist()
    decisions = _decisions(
        bot,
        terms,
        position,
        (now_list, sides, quantity_list, closing_list, order_tags),
        run.equity[decided - history].tolist(),
        marks,
        (run, fill_ts, fill_ids, order_ids),
    )
    if isinstance(decisions, str):
        return decisions
    actions, quantity_in, quantity_out, reasons, codes = decisions
    side_names = [side + "" for side in sides]
    count = len(order_ids)
    statuses = [_FILLED] * fills + [_OPEN] * (count - fills)
    status_ts = fill_ts + now_list[fills:]
    # The paper broker acknowledges an order under its client id; a fill's status row names
    # no venue id.
    venue_ids: list[str | None] = [None] * fills + order_ids[fills:]
    return RunRows(
        symbol,
        OrderColumns(
            order_ids,
            side_names,
            quantity_list,
            [int(shut) for shut in closing_list],
            now_list,
            order_tags,
            statuses,
            status_ts,
            venue_ids,
            marks,
        ),
        DecisionColumns(
            bot.risk[0][0],
            now_list,
            side_names,
            actions,
            quantity_in,
            quantity_out,
            reasons,
            order_ids,
            codes,
        ),
        FillColumns(
            fill_ids,
            order_ids[:fills],
            side_names[:fills],
            quantity_list[:fills],
            run.fill_price.tolist(),
            run.fill_fee.tolist(),
            fill_ts,
            run.fill_reason,
        ),
        position,
        [],
    )


def _decisions(
    bot: Bot,
    terms: VectorTerms,
    position: Position,
    orders: tuple[list[int], list[Side], list[float], list[bool], list[str]],
    equity: list[float],
    marks: list[float],
    booked: tuple[VectorRun, list[int], list[str], list[str]],
) -> tuple[list[str], list[float | None], list[float | None], list[str], list[str]] | str:
    """Ask the sizer about each order's intent, as the engine's risk chain does, booking each
    fill into ``position`` after its order's decision (as the engine's portfolio does): the
    decisions' columns, or why they are not the run's orders (to the bit).

    A NaN quantity (an order of the last bar, which the run does not fill) is set in
    ``orders`` to what the engine would send: the position, for a closing order; the sizer's
    quantity, for an opening one."""
    symbol = terms.symbol
    sizer_name, sizer = bot.risk[0]
    check = sizer.check
    reads_account = sizer_name not in bot.risk_hooks.intent_only
    # The paper broker's instrument: no limits (the path refuses them), its costs stated.
    instrument = Instrument(symbol, taker_fee=terms.fee_rate, slippage=terms.slippage)
    no_stops = cast("dict[str, tuple[tuple[float, float], ...]]", MappingProxyType({}))
    leverage, initial = terms.leverage, terms.initial_capital
    run, fill_ts, fill_ids, order_ids = booked
    prices, fees = run.fill_price.tolist(), run.fill_fee.tolist()
    fills = len(fill_ids)
    actions: list[str] = []
    quantity_in: list[float | None] = []
    quantity_out: list[float | None] = []
    reasons: list[str] = []
    codes: list[str] = []
    context = BLANK_CONTEXT
    quantities = orders[2]
    for k, (now, side, quantity, shut, tag) in enumerate(zip(*orders, strict=True)):
        if shut and quantity != quantity:
            quantity = abs(position.quantity)
        given = quantity if shut else None
        intent: OrderIntent = _new(
            OrderIntent, (symbol, side, given, _MARKET, None, None, None, shut, tag, None)
        )
        if reads_account:
            # What the sizers this path supports read is exact (equity, the mark, the
            # position, leverage); what the path does not track is NaN, so a sizer that read
            # it would veto (a plugin fault), never decide on a figure that looks real.
            snapshot = Position(
                symbol,
                position.quantity,
                position.average_price,
                position.realized_pnl,
                position.opened_ts,
            )
            context = _new(
                RiskContext,
                (
                    now,
                    equity[k],
                    _NAN,
                    _NAN,
                    _NAN,
                    MappingProxyType({symbol: snapshot}),
                    MappingProxyType({symbol: marks[k]}),
                    instrument,
                    no_stops,
                    leverage,
                    initial,
                    # Each order's fill is booked before the next is decided: no entry nor
                    # exit works then, and the whole position is closable.
                    (),
                    MappingProxyType({symbol: abs(position.quantity)}),
                    0.0,
                ),
            )
        decision = check(intent, context)
        sized = given
        if not (
            type(decision) is RiskDecision
            and decision.action is _APPROVE
            and decision.quantity is None
        ):
            verdict = judge(sizer_name, given, decision)
            if verdict.vetoed or verdict.decision.action is RiskAction.VETO:
                return f"{sizer_name} vetoes the order at {now} (the engine journals the veto)"
            sized, decision = verdict.quantity, verdict.decision
        if sized is None or (sized != quantity and quantity == quantity):
            return f"{sizer_name}'s quantity at {now} is not the vectorised run's"
        quantities[k] = sized
        actions.append(decision.action + "")
        quantity_in.append(given)
        quantity_out.append(decision.quantity)
        reasons.append(decision.reason)
        codes.append(decision.code)
        if k < fills:
            fill: Fill = _new(
                Fill,
                (
                    order_ids[k],
                    symbol,
                    side,
                    quantity,
                    prices[k],
                    fees[k],
                    fill_ts[k],
                    fill_ids[k],
                    run.fill_reason[k],
                ),
            )
            apply_fill(position, fill)
    return actions, quantity_in, quantity_out, reasons, codes


def _journal(
    bot: Bot,
    journal: Journal,
    terms: VectorTerms,
    columns: BarColumns,
    run: VectorRun,
    rows: RunRows,
) -> VectorBacktest:
    """Write what the engine's run, its session's close and the CLI would; the outcome."""
    spec = bot.manifest.spec
    symbol, tf = terms.symbol, terms.timeframe_s
    start_journal_run(bot, journal)
    journal.record_event(0, "run_started", f"{bot.name} started in {spec.mode.value} mode")
    history = run.history_bars
    if history:
        # A plan is flat during warm-up (run_plan refuses it otherwise), as the strategy's
        # on_bar trades: it sends nothing there for the engine to drop.
        ended = int(columns.ts[history - 1]) + tf
        journal_warm_up(journal, ended, history, bot.strategy.warmup_bars(), 0, 0)
    trades = run.trade_list()
    held = rows.position.quantity
    closed, open_trades = (trades[:-1], tuple(trades[-1:])) if held else (trades, ())
    journal.record_run_rows(replace(rows, trades=closed))
    equity_ts = array("q", run.equity_ts.astype(np.int64).tobytes())
    equity = array("d", run.equity.astype(np.float64).tobytes())
    exposure = array("d", run.exposure.astype(np.float64).tobytes())
    for first in range(0, len(equity_ts), EQUITY_CHUNK):
        part = slice(first, first + EQUITY_CHUNK)
        journal.record_equity(equity_ts[part], equity[part], exposure[part])
    now = int(columns.ts[-1]) + tf if len(columns) else 0
    open_positions = [rows.position] if held else []
    for position in open_positions:
        journal_open_position(journal, now, position)
    result = RunResult(
        bot_name=bot.name,
        initial_capital=terms.initial_capital,
        start_equity=terms.initial_capital,
        currency=spec.capital.currency,
        timeframe_s=tf,
        equity_ts=equity_ts,
        equity=equity,
        exposure=exposure,
        trades=closed,
        fees=run.fees,
        bars=len(columns) - history,
        open_positions=open_positions,
        risk_decisions=Counter((rows.decisions.plugin, a) for a in rows.decisions.actions),
        orders=len(rows.orders.order_ids),
        fills=len(rows.fills.fill_ids),
        feed=bot.feed.report() if bot.feed is not None else None,
        history_bars=history,
        run_id=journal.run_id,
        journal_path=journal.path,
    )
    outcome = finish_run(journal, now, result, "completed", open_trades)
    traded = slice(history, None)
    ranges = []
    if len(columns) > history:
        ts, opens, closes = columns.ts[traded], columns.open[traded], columns.close[traded]
        ranges.append(
            SymbolRange(
                symbol, int(ts.size), int(ts[0]), float(opens[0]), int(ts[-1]), float(closes[-1])
            )
        )
    return VectorBacktest(outcome, ranges)


__all__ = ["VectorBacktest", "columns_of", "vector_backtest", "vector_refusal", "vector_terms_of"]
