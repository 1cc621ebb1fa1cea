"""Where a report's input comes from: a backtest just run, or a run read back from a journal.

Both give the same ``ReportInput`` for the same run (``tradefleet backtest --json`` and
``tradefleet report --json`` print the same object): a backtest journals, at its end, the two
things the engine's rows lack — positions still open (as trades ending with the reason "end of
data") and each symbol's first open and last close (the buy-and-hold benchmark). An end-of-data
trade ends at its own symbol's last bar (``end_of_data_at_symbol_ends``): journaled so, and
read so from a journal written before it was (stamped at the run's end).
"""

from __future__ import annotations

from collections.abc import Sequence

from tradefleet_runtime.engine.engine import RunResult
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.journal.sqlite import RunRecord
from tradefleet_runtime.model import Trade
from tradefleet_runtime.report.metrics import (
    ReportInput,
    SymbolRange,
    end_of_data_at_symbol_ends,
)


def finish_backtest(
    journal: Journal,
    result: RunResult,
    open_trades: Sequence[Trade],
    symbols: Sequence[SymbolRange],
) -> ReportInput:
    """Journal the end-of-data trades and symbol ranges of a backtest; its report's input."""
    # The session ends them all at the run's last close; a symbol whose data ended before
    # the others' ended at its own.
    open_trades = end_of_data_at_symbol_ends(open_trades, symbols, result.timeframe_s)
    first_seq = len(result.trades)
    journal.record_trades((first_seq + i, trade) for i, trade in enumerate(open_trades))
    journal.record_run_symbols(symbols)
    return ReportInput(
        initial=result.start_equity,
        currency=result.currency,
        timeframe_s=result.timeframe_s,
        timestamps=result.equity_ts,
        equity=result.equity,
        exposure=result.exposure,
        trades=[*result.trades, *open_trades],
        fees=result.fees,
        symbols=tuple(symbols),
        funding=result.cash_flows,
    )


def from_result(result: RunResult) -> ReportInput:
    """A run's report without end-of-data trades or a benchmark (a paper run, left open)."""
    return ReportInput(
        initial=result.start_equity,
        currency=result.currency,
        timeframe_s=result.timeframe_s,
        timestamps=result.equity_ts,
        equity=result.equity,
        exposure=result.exposure,
        trades=result.trades,
        fees=result.fees,
        funding=result.cash_flows,
    )


def from_journal(journal: Journal, run: RunRecord) -> ReportInput:
    timestamps, equity, exposure = journal.equity_curve(run.run_id)
    symbols = tuple(SymbolRange(*row) for row in journal.run_symbols(run.run_id))
    # A journal written before end-of-data trades were stamped per symbol reads as one
    # written since (a paper or live run journals no symbol ranges: left as it is).
    trades = end_of_data_at_symbol_ends(journal.trades(run.run_id), symbols, run.timeframe_s)
    return ReportInput(
        initial=journal.start_equity(run),
        currency=run.currency,
        timeframe_s=run.timeframe_s,
        timestamps=timestamps,
        equity=equity,
        exposure=exposure,
        trades=trades,
        fees=journal.fees(run.run_id),
        symbols=symbols,
        funding=journal.funding(run.run_id),
    )
