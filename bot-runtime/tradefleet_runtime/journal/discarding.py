"""A journal that keeps nothing, for a backtest whose journal nobody reads: an optimiser's trial.

A trial is a backtest run for its figures, and they come from the engine's ``RunResult``
(equity, trades, fees, the counts of orders, fills and risk decisions), never from its journal:
neither the engine nor a backtest's session reads a journal back. So a trial's journal used to be
an in-memory SQLite file, created with the whole schema, written and closed unread. Building,
binding and inserting an order's rows is about 40% of what an order costs in a backtest
(``engine_journal_instructions_per_order`` in ``bench/results/instructions.json``): work whose
result was thrown away, for every order of every trial.

Only a backtest may run on it: :meth:`DiscardingJournal.start_run` refuses a paper or live run,
whose journal is its durable account, audit trail and restart point. ``tradefleet backtest``
keeps its SQLite journal: its report and ``tradefleet report`` read it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tradefleet_runtime.errors import JournalError
from tradefleet_runtime.model import (
    CarriedState,
    CashFlow,
    Fill,
    Order,
    OrderStatus,
    Position,
    RiskDecision,
    Trade,
)

BACKTEST = "backtest"


class DiscardingJournal:
    """Takes every write of a backtest's run and keeps none of it."""

    #: As a backtest's SQLite journal: no write-ahead group to enter per order.
    batched = True

    def __init__(self) -> None:
        self.run_id = ""
        self.path = ""  # no file: the run's result names none

    @contextmanager
    def grouped(self) -> Iterator[None]:
        yield

    def start_run(
        self,
        *,
        run_id: str,
        bot: str,
        mode: str,
        currency: str,
        initial_capital: float,
        timeframe_s: int,
        config_hash: str,
        manifest: dict[str, Any],
    ) -> None:
        if mode != BACKTEST:
            raise JournalError(
                f"bot {bot}: a {mode} run needs its journal (its account, its audit trail and "
                "where a restart resumes); only a backtest may run without one"
            )
        self.run_id = run_id

    def record_order(
        self,
        order: Order,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        mark: float | None = None,
    ) -> None:
        pass

    def resize_order(self, client_order_id: str, quantity: float, ts: int, reason: str) -> None:
        pass

    def reprice_order(
        self,
        client_order_id: str,
        price: float,
        ts: int,
        reason: str,
        status: OrderStatus = OrderStatus.OPEN,
    ) -> None:
        pass

    def update_order(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None:
        pass

    def record_fill(
        self,
        fill: Fill,
        position: Position,
        order_status: OrderStatus,
        trades: Iterable[tuple[int, Trade]] = (),
        *,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None:
        pass

    def record_risk(
        self,
        *,
        ts: int,
        plugin: str,
        symbol: str,
        side: str,
        decision: RiskDecision,
        quantity_in: float | None,
        client_order_id: str | None = None,
    ) -> None:
        pass

    def record_cash_flow(self, flow: CashFlow, booked: bool) -> None:
        pass

    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        pass

    def record_equity(
        self, timestamps: array[int], equity: array[float], exposure: array[float]
    ) -> None:
        pass

    def flush(self) -> None:
        pass

    def finish_run(self, status: str, summary: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass

    # What earlier runs left: a backtest starts afresh, and a discarding journal holds none.

    def last_control_event(self, bot: str) -> tuple[str, str] | None:
        return None

    def halt_events(self, bot: str) -> list[tuple[str, str, dict[str, Any]]]:
        return []

    def flatten_owed(self, bot: str) -> tuple[str, str] | None:
        return None

    def flatten_in_force(self, bot: str) -> tuple[str, str] | None:
        return None

    def closes_owed(self, bot: str) -> dict[str, tuple[str, str | None]]:
        return {}

    def strategy_closes_waiting(self, bot: str) -> dict[str, str]:
        return {}

    def risk_lock_symbols(self, bot: str) -> dict[str, frozenset[str] | None]:
        return {}

    def risk_locks(self, bot: str) -> dict[str, tuple[str, int]]:
        return {}

    def account_terms(self, bot: str) -> tuple[str, float] | None:
        return None

    def params_left(self, bot: str) -> dict[str, Any] | None:
        return None

    def run_modes(self, bot: str) -> frozenset[str]:
        return frozenset()

    def bot_identity(self, bot: str) -> str | None:
        return None

    def keep_bot_identity(self, bot: str, identity: str) -> None:
        pass

    def record_bar_handled(self, close_ts: int) -> None:
        pass

    def record_came_back(self, at: float, *, market: bool) -> None:
        pass

    def came_back_of(self, bot: str, client_order_ids: Iterable[str]) -> dict[str, float | None]:
        return {}

    def carried_state(self, bot: str) -> CarriedState | None:
        return None

    def run_timeframe(self, bot: str) -> int | None:
        return None

    def account_equity(self, bot: str) -> tuple[Sequence[int], Sequence[float]]:
        return (), ()

    def lock_resets(self, bot: str) -> dict[str, int]:
        return {}

    def measured_fills(self, bot: str, limit: int) -> list[tuple[Fill, float]]:
        return []

    def plugin_states(self, bot: str) -> dict[str, dict[str, Any]]:
        return {}


__all__ = ["DiscardingJournal"]
