"""SQLite journal in WAL mode.

Every order, order status change, fill, position, risk decision and event is written; nothing is
updated in place (order statuses are an append-only log), so the journal is also the audit trail.

Paper and live bots commit each event as it happens: a process killed at any instant loses no
committed fill (WAL makes a commit durable against a process crash; ``durable`` adds an fsync
per commit against power loss). Backtests pass ``batched``: rows are grouped into transactions
of ``BATCH_ROWS``, because a replay can be rerun and a commit costs more than the engine's bar.
Per-bar equity snapshots are always buffered and written as packed chunks.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tradefleet_runtime.engine.portfolio import Trade
from tradefleet_runtime.model import Fill, Order, OrderStatus, Position, RiskDecision

SCHEMA_VERSION = "2"
BATCH_ROWS = 4096

_INSERT_ORDER = (
    "INSERT OR IGNORE INTO orders (run_id, client_order_id, symbol, side, order_type, quantity,"
    " price, stop_loss, take_profit, reduce_only, parent_id, created_ts, tag)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_UPDATE = (
    "INSERT INTO order_updates (run_id, client_order_id, ts, status, reason, venue_order_id)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_FILL = (
    "INSERT OR IGNORE INTO fills (run_id, fill_id, client_order_id, symbol, side, quantity,"
    " price, fee, ts, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_POSITION = (
    "INSERT INTO positions (run_id, symbol, quantity, average_price, realized_pnl, updated_ts)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, symbol) DO UPDATE SET"
    " quantity = excluded.quantity, average_price = excluded.average_price,"
    " realized_pnl = excluded.realized_pnl, updated_ts = excluded.updated_ts"
)
_INSERT_TRADE = "INSERT OR REPLACE INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_RISK = (
    "INSERT INTO risk_decisions (run_id, ts, plugin, symbol, side, action, quantity_in,"
    " quantity_out, reason, client_order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = "INSERT INTO events (run_id, ts, kind, message, data) VALUES (?, ?, ?, ?, ?)"
_INSERT_EQUITY = "INSERT OR REPLACE INTO equity_chunks VALUES (?, ?, ?, ?, ?, ?)"


def _packed(values: array[Any]) -> bytes:
    if sys.byteorder != "little":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _unpacked(typecode: str, blob: bytes) -> array[Any]:
    values = array(typecode)
    values.frombytes(blob)
    if sys.byteorder != "little":
        values.byteswap()
    return values


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    bot: str
    mode: str
    started_at: float
    ended_at: float | None
    status: str
    currency: str
    initial_capital: float
    timeframe_s: int
    config_hash: str
    manifest: dict[str, Any]
    summary: dict[str, Any] | None


class Journal:
    """One SQLite journal file (or ``:memory:``)."""

    def __init__(self, path: str | Path, *, durable: bool = False, batched: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a group is one transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        schema = resources.files("tradefleet_runtime.journal").joinpath("schema.sql").read_text()
        self._db.executescript(schema)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (SCHEMA_VERSION,),
        )
        self.batched = batched
        self.run_id = ""
        self._buffer: dict[str, list[tuple[Any, ...]]] = {}
        self._buffered = 0
        self._grouping = False

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Commit every write made inside the block as one transaction, at its end.

        The engine groups an order's risk decisions with the order itself: one commit (one
        fsync for a durable journal) instead of one per row, still before the broker sees it.
        """
        if self.batched or self._grouping:
            yield
            return
        self._grouping = True
        try:
            yield
        finally:
            self._grouping = False
            self.flush()

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """Write rows as one transaction now, or (batched) with the next batch."""
        if self.batched or self._grouping:
            buffer = self._buffer
            for sql, row in statements:
                rows = buffer.get(sql)
                if rows is None:
                    rows = buffer[sql] = []
                rows.append(row)
            self._buffered += len(statements)
            if self._buffered >= BATCH_ROWS and not self._grouping:
                self.flush()
            return
        db = self._db
        db.execute("BEGIN")
        try:
            for sql, row in statements:
                db.execute(sql, row)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def flush(self) -> None:
        """Commit every buffered row (a no-op when nothing is buffered)."""
        if not self._buffered:
            return
        buffer, self._buffer, self._buffered = self._buffer, {}, 0
        db = self._db
        db.execute("BEGIN")
        try:
            for sql, rows in buffer.items():
                db.executemany(sql, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

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
        self.run_id = run_id
        self._db.execute(
            "INSERT INTO runs (run_id, bot, mode, started_at, status, currency,"
            " initial_capital, timeframe_s, config_hash, manifest)"
            " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            (
                run_id,
                bot,
                mode,
                time.time(),
                currency,
                initial_capital,
                timeframe_s,
                config_hash,
                json.dumps(manifest, sort_keys=True),
            ),
        )

    def record_order(self, order: Order, status: OrderStatus, ts: int, reason: str = "") -> None:
        """A new order and its first status, together."""
        self._write(
            (
                _INSERT_ORDER,
                (
                    self.run_id,
                    order.client_order_id,
                    order.symbol,
                    order.side.value,
                    order.order_type.value,
                    order.quantity,
                    order.price,
                    order.stop_loss,
                    order.take_profit,
                    int(order.reduce_only),
                    order.parent_id,
                    order.created_ts,
                    order.tag,
                ),
            ),
            (_INSERT_UPDATE, (self.run_id, order.client_order_id, ts, status.value, reason, None)),
        )

    def update_order(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None:
        self._write(
            (
                _INSERT_UPDATE,
                (self.run_id, client_order_id, ts, status.value, reason, venue_order_id),
            )
        )

    def record_fill(
        self,
        fill: Fill,
        position: Position,
        order_status: OrderStatus,
        trades: Iterable[tuple[int, Trade]] = (),
    ) -> None:
        """A fill, the position it leaves, its order's status and any trade it closed: one
        transaction, so a crash never leaves one without the others."""
        run = self.run_id
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                _INSERT_FILL,
                (
                    run,
                    fill.fill_id,
                    fill.client_order_id,
                    fill.symbol,
                    fill.side.value,
                    fill.quantity,
                    fill.price,
                    fill.fee,
                    fill.ts,
                    fill.reason,
                ),
            ),
            (
                _UPSERT_POSITION,
                (
                    run,
                    position.symbol,
                    position.quantity,
                    position.average_price,
                    position.realized_pnl,
                    fill.ts,
                ),
            ),
            (_INSERT_UPDATE, (run, fill.client_order_id, fill.ts, order_status.value, "", None)),
        ]
        for seq, trade in trades:
            statements.append(
                (
                    _INSERT_TRADE,
                    (
                        run,
                        seq,
                        trade.symbol,
                        trade.direction,
                        trade.quantity,
                        trade.entry_ts,
                        trade.exit_ts,
                        trade.entry_price,
                        trade.exit_price,
                        trade.gross_pnl,
                        trade.fees,
                    ),
                )
            )
        self._write(*statements)

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
        self._write(
            (
                _INSERT_RISK,
                (
                    self.run_id,
                    ts,
                    plugin,
                    symbol,
                    side,
                    decision.action.value,
                    quantity_in,
                    decision.quantity,
                    decision.reason,
                    client_order_id,
                ),
            )
        )

    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        payload = json.dumps(data, sort_keys=True) if data else None
        self._write((_INSERT_EVENT, (self.run_id, ts, kind, message, payload)))

    def record_equity(
        self, timestamps: array[int], equity: array[float], exposure: array[float]
    ) -> None:
        """Equity snapshots of consecutive bars (one packed chunk)."""
        if not timestamps:
            return
        self._write(
            (
                _INSERT_EQUITY,
                (
                    self.run_id,
                    timestamps[0],
                    len(timestamps),
                    _packed(timestamps),
                    _packed(equity),
                    _packed(exposure),
                ),
            )
        )

    def finish_run(self, status: str, summary: dict[str, Any]) -> None:
        self.flush()
        self._db.execute(
            "UPDATE runs SET ended_at = ?, status = ?, summary = ? WHERE run_id = ?",
            (time.time(), status, json.dumps(summary, sort_keys=True), self.run_id),
        )

    def close(self) -> None:
        self.flush()
        self._db.close()

    # -- reading ---------------------------------------------------------------------------

    def runs(self) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT run_id, bot, mode, started_at, ended_at, status, currency, initial_capital,"
            " timeframe_s, config_hash, manifest, summary FROM runs ORDER BY started_at"
        ).fetchall()
        return [
            RunRecord(
                run_id=row[0],
                bot=row[1],
                mode=row[2],
                started_at=row[3],
                ended_at=row[4],
                status=row[5],
                currency=row[6],
                initial_capital=row[7],
                timeframe_s=row[8],
                config_hash=row[9],
                manifest=json.loads(row[10]),
                summary=json.loads(row[11]) if row[11] else None,
            )
            for row in rows
        ]

    def equity_curve(self, run_id: str) -> tuple[array[int], array[float], array[float]]:
        """(close times, equity, gross exposure) of every bar of a run."""
        timestamps: array[int] = array("q")
        equity: array[float] = array("d")
        exposure: array[float] = array("d")
        for ts, eq, ex in self._db.execute(
            "SELECT ts, equity, exposure FROM equity_chunks WHERE run_id = ? ORDER BY first_ts",
            (run_id,),
        ):
            timestamps.extend(_unpacked("q", ts))
            equity.extend(_unpacked("d", eq))
            exposure.extend(_unpacked("d", ex))
        return timestamps, equity, exposure

    def trades(self, run_id: str) -> list[Trade]:
        rows = self._db.execute(
            "SELECT symbol, direction, quantity, entry_ts, exit_ts, entry_price, exit_price,"
            " gross_pnl, fees FROM trades WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [Trade(*row) for row in rows]

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read-only access for reports and tests."""
        return self._db.execute(sql, args).fetchall()

    def order_statuses(self, run_id: str | None = None) -> Sequence[tuple[str, str]]:
        """(client order id, latest status) of every order of a run."""
        return self._db.execute(
            "SELECT client_order_id, status FROM order_status WHERE run_id = ?",
            (run_id or self.run_id,),
        ).fetchall()
