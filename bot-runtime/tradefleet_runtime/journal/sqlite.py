"""SQLite journal in WAL mode.

Orders, fills, risk decisions and events are committed as they happen: a process killed at any
instant loses no committed fill (WAL makes a commit durable against a process crash; ``durable``
adds an fsync per commit against power loss, for paper and live bots). Per-bar equity snapshots
are buffered and written in batches, because one row per transaction is about 20× slower.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tradefleet_runtime.engine.portfolio import Trade
from tradefleet_runtime.model import Fill, Order, OrderStatus, Position, RiskDecision

SCHEMA_VERSION = "1"
EQUITY_BATCH = 1000


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

    def __init__(self, path: str | Path, *, durable: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is one transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA foreign_keys=ON")
        schema = resources.files("tradefleet_runtime.journal").joinpath("schema.sql").read_text()
        self._db.executescript(schema)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (SCHEMA_VERSION,),
        )
        self._equity: list[tuple[str, int, float, float, float]] = []
        self.run_id = ""

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
        with self._transaction() as db:
            db.execute(
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
        with self._transaction() as db:
            db.execute(
                "INSERT INTO orders (run_id, client_order_id, symbol, side, order_type, quantity,"
                " price, stop_loss, take_profit, reduce_only, parent_id, status, reason,"
                " created_ts, updated_ts, tag)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, client_order_id) DO UPDATE SET status = excluded.status,"
                " reason = excluded.reason, updated_ts = excluded.updated_ts",
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
                    status.value,
                    reason,
                    order.created_ts,
                    ts,
                    order.tag,
                ),
            )

    def update_order(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE orders SET status = ?, reason = ?, updated_ts = ?,"
                " venue_order_id = COALESCE(?, venue_order_id)"
                " WHERE run_id = ? AND client_order_id = ?",
                (status.value, reason, ts, venue_order_id, self.run_id, client_order_id),
            )

    def record_fill(self, fill: Fill, position: Position, order_status: OrderStatus) -> None:
        """A fill, the position it leaves and its order's status, in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO fills (run_id, fill_id, client_order_id, symbol, side,"
                " quantity, price, fee, ts, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.run_id,
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
            )
            db.execute(
                "INSERT INTO positions (run_id, symbol, quantity, average_price, realized_pnl,"
                " updated_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, symbol) DO UPDATE SET"
                " quantity = excluded.quantity, average_price = excluded.average_price,"
                " realized_pnl = excluded.realized_pnl, updated_ts = excluded.updated_ts",
                (
                    self.run_id,
                    position.symbol,
                    position.quantity,
                    position.average_price,
                    position.realized_pnl,
                    fill.ts,
                ),
            )
            db.execute(
                "UPDATE orders SET status = ?, updated_ts = ?"
                " WHERE run_id = ? AND client_order_id = ?",
                (order_status.value, fill.ts, self.run_id, fill.client_order_id),
            )

    def record_trade(self, seq: int, trade: Trade) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.run_id,
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
        with self._transaction() as db:
            db.execute(
                "INSERT INTO risk_decisions (run_id, ts, plugin, symbol, side, action, quantity_in,"
                " quantity_out, reason, client_order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO events (run_id, ts, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (
                    self.run_id,
                    ts,
                    kind,
                    message,
                    json.dumps(data, sort_keys=True) if data else None,
                ),
            )

    def record_equity(self, ts: int, equity: float, cash: float, exposure: float) -> None:
        self._equity.append((self.run_id, ts, equity, cash, exposure))
        if len(self._equity) >= EQUITY_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._equity:
            return
        rows, self._equity = self._equity, []
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO equity VALUES (?, ?, ?, ?, ?)", rows)

    def finish_run(self, status: str, summary: dict[str, Any]) -> None:
        self.flush()
        with self._transaction() as db:
            db.execute(
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

    def equity_curve(self, run_id: str) -> tuple[list[int], list[float], list[float]]:
        rows = self._db.execute(
            "SELECT ts, equity, exposure FROM equity WHERE run_id = ? ORDER BY ts", (run_id,)
        ).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

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
