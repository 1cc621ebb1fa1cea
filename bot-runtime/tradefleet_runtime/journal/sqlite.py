"""SQLite journal in WAL mode.

Every order, order status change, fill, position, risk decision and event is written; nothing is
updated in place (order statuses are an append-only log), so the journal is also the audit trail.

Paper and live bots commit each event as it happens: a process killed at any instant loses no
committed fill (WAL makes a commit durable against a process crash; ``durable`` adds an fsync
per commit against power loss). Backtests pass ``batched``: rows are grouped into transactions
of ``BATCH_ROWS``, because a replay can be rerun and a commit costs more than the engine's bar.
A batch also keeps only the last position row of each symbol: a position row is an upsert, so
the rows an earlier fill of the same batch would have written are overwritten before anyone
could read them (the file holds the same rows after each commit as with one commit per fill).
And it keeps only each order's last status of the batch: a backtest's order is pending and
then open at its ``created_ts`` (the simulated venue answers at once), so those steps of the
status log are derivable from the order row and are not written; the last status, its time
and reason — what ``order_status``, the reports and a rerun read — are. About two rows of six
an order fewer, a tenth of a backtest's cost per order. Paper and live bots keep every step.
Per-bar equity snapshots are always buffered and written as packed chunks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import sqlite3
import sys
import time
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any, Final

from tradefleet_runtime.errors import JournalError
from tradefleet_runtime.journal import versions
from tradefleet_runtime.journal.column_insert import ROWS_PER_INSERT, Same, insert_columns
from tradefleet_runtime.journal.run_rows import RunRows
from tradefleet_runtime.model import (
    CarriedState,
    CashFlow,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    RiskAction,
    RiskDecision,
    Side,
    Trade,
)

_log = logging.getLogger(__name__)

SCHEMA_VERSION = str(versions.CURRENT)

BATCH_ROWS = 4096

# An order already journaled in the run keeps its first row (the same id recorded again). Only
# that conflict is ignored: ``OR IGNORE`` would also drop, silently, a row breaking NOT NULL (a
# NaN quantity binds NULL), leaving its status log without its order.
_INSERT_ORDER = (
    "INSERT INTO orders (run_id, client_order_id, symbol, side, order_type, quantity,"
    " price, stop_loss, take_profit, reduce_only, parent_id, created_ts, tag, reference_price)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, client_order_id) DO NOTHING"
)
_DO_NOTHING = " ON CONFLICT (run_id, client_order_id) DO NOTHING"
_INSERT_UPDATE = (
    "INSERT INTO order_updates (run_id, client_order_id, ts, status, reason, venue_order_id)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
# A working order's quantity changed at the venue (a bracket child grown with its entry's
# fills): the order's row says what works now; the status log says when and why.
_RESIZE_ORDER = "UPDATE orders SET quantity = ? WHERE run_id = ? AND client_order_id = ?"
_REPRICE_ORDER = "UPDATE orders SET price = ? WHERE run_id = ? AND client_order_id = ?"
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
# Columns named: a migrated file has the reason columns last, a new one too, but say so.
_INSERT_TRADE = (
    "INSERT OR REPLACE INTO trades (run_id, seq, symbol, direction, quantity, entry_ts, exit_ts,"
    " entry_price, exit_price, gross_pnl, fees, entry_reason, exit_reason, funding)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_RUN_SYMBOL = (
    "INSERT OR REPLACE INTO run_symbols (run_id, symbol, bars, first_ts, first_open, last_ts,"
    " last_close) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# ``risk_refusals``' action of a MOVE_STOP refused: a veto of no order.
REFUSED_MOVE = "refused move"
_INSERT_RISK = (
    "INSERT INTO risk_decisions (run_id, ts, plugin, symbol, side, action, quantity_in,"
    " quantity_out, reason, client_order_id, code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CASH_FLOW = (
    "INSERT INTO cash_flows (run_id, flow_id, kind, symbol, currency, amount, ts, booked)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The ``meta`` key prefix of a run's last handled bar (``record_bar_handled``).
_BAR_HANDLED = "bar_handled:"
#: The ``meta`` key prefix of the time a restarted run came back (``record_came_back``).
_CAME_BACK = "came_back:"
#: Its value's markers: the market's time (trusted), the host's clock (never trusted).
_CAME_BACK_MARKET = "market:"
_CAME_BACK_HOST = "host:"
#: A run's ``mode`` that is never carried into a restart (``_earlier_runs``, ``_control_runs``).
_BACKTEST_MODE = "backtest"
#: ``Journal._control_runs``'s condition on a ``run_id`` column: not a run other than the
#: current one that is another bot's or a backtest.
_CONTROL_RUNS = (
    "run_id NOT IN (SELECT run_id FROM runs WHERE run_id != ?"
    f" AND (bot != ? OR mode = '{_BACKTEST_MODE}'))"
)
_INSERT_EVENT = "INSERT INTO events (run_id, ts, kind, message, data) VALUES (?, ?, ?, ?, ?)"
_INSERT_EQUITY = "INSERT OR REPLACE INTO equity_chunks VALUES (?, ?, ?, ?, ?, ?)"


# The enum members of a row (side, order type, status, risk action) are bound as exact str,
# ``member + ""``: the sqlite3 module binds an exact str directly, but a str subclass goes
# through its adaptation lookup first, which fails on two attribute lookups and costs about
# a microsecond per value (measured: 1.54 against 0.58 µs per bound value), five per order.
#
# None takes the same slow path (the module skips adaptation only for exact int, float, str and
# bytearray), and an order binds about six (no price, no stops, no venue id yet). An adapter
# registered for None is found by the lookup's first step, a dict look-up, and binds NULL as
# before: ``{}.get(None)`` is None (measured: 1.18 against 0.70 µs per bound None). Adapters
# are the sqlite3 module's, for the whole process; this one changes no value anywhere.
_NOTHING: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NOTHING.get)


@functools.cache
def _many_rows(sql: str) -> str | None:
    """``sql`` (an insert of one row, its values last, or followed by the orders' ``ON
    CONFLICT ... DO NOTHING``) made to insert ``ROWS_PER_INSERT`` rows; None for any other
    statement (an upsert that updates, say: one by one)."""
    head, found, values = sql.partition(" VALUES ")
    tail = _DO_NOTHING if values.endswith(_DO_NOTHING) else ""
    values = values[: len(values) - len(tail)]
    if not found or not values.startswith("(") or values.index(")") != len(values) - 1:
        return None
    return f"{head} VALUES {', '.join([values] * ROWS_PER_INSERT)}{tail}"


def _insert_rows(db: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` in their order: whole groups through the many-row statement, the rest
    one by one. (Not by columns, as ``record_run_rows``: for the engine's batches of rows, made
    as tuples, turning them into columns cost more than binding fewer values saved — the
    flushes of a 1M-bar backtest took 2.0-2.1 s against 1.8-1.9.)"""
    many, step = _many_rows(sql), ROWS_PER_INSERT
    grouped = 0
    if many is not None:
        grouped = len(rows) - len(rows) % step
        if grouped:
            flat = [tuple(chain.from_iterable(rows[i : i + step])) for i in range(0, grouped, step)]
            db.executemany(many, flat)
    if grouped < len(rows):
        db.executemany(sql, rows[grouped:])


def _packed(values: array[Any]) -> bytes:
    if sys.byteorder != "little":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _unpacked(typecode: str, blob: bytes, path: Path | str = "") -> array[Any]:
    values = array(typecode)
    try:
        values.frombytes(blob)
    except (TypeError, ValueError) as error:  # not a whole number of items: a damaged row
        raise JournalError(f"journal {path}: an equity row is damaged ({error})") from None
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


def _lock(path: str) -> int | None:
    """An exclusive ``flock`` on ``<path>.lock`` (no lock for ``:memory:``), held until the
    descriptor is closed — also released by the kernel when the process dies, so a crashed
    runtime never leaves a stale lock. JournalError naming the holder while another has it."""
    if path == ":memory:":
        return None
    # Beside the file the path leads to: a symlink to a journal (alias.sqlite) locks the
    # journal's own lock, or two runtimes would trade on one journal.
    lock_path = os.path.realpath(path) + ".lock"
    try:
        Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise JournalError(f"journal {path}: cannot open its lock file: {error}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise JournalError(
                f"journal {path} is in use by {holder} (it holds {lock_path}); two runtimes "
                "of one bot must never trade at once: stop the other one first"
            ) from None
        raise JournalError(f"journal {path}: cannot lock {lock_path}: {error}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)
    return fd


class Journal:
    """One SQLite journal file (or ``:memory:``)."""

    def __init__(
        self,
        path: str | Path,
        *,
        durable: bool = False,
        batched: bool = False,
        exclusive: bool | None = None,
        read_only: bool = False,
    ) -> None:
        """``exclusive`` (default: ``durable``, i.e. a paper or live bot's journal): hold an
        exclusive lock on ``<path>.lock`` for the journal's whole life and refuse to open while
        another process holds it — two runtimes of one bot must never both send orders.
        ``read_only``: read an existing journal and never create, migrate or write a file (see
        ``_open_read_only``)."""
        self.path = str(path)
        self._durable = durable
        self._lock_fd: int | None = None
        if not read_only and (exclusive if exclusive is not None else durable):
            self._lock_fd = _lock(self.path)
        try:
            self._db = _open_read_only(Path(self.path)) if read_only else self._open(durable)
        except JournalError as error:
            self._unlock()
            raise JournalError(f"journal {self.path}: {error}") from None
        except (sqlite3.Error, OSError) as error:
            self._unlock()
            raise JournalError(f"journal {self.path}: {_explain(error)}") from None
        except BaseException:
            self._unlock()
            raise
        self.batched = batched
        self.run_id = ""
        # Rows waiting for the next commit, by statement. The lists live as long as the journal
        # (a flush empties them in place), so the per-order methods append to them directly.
        self._buffer: dict[str, list[tuple[Any, ...]]] = {}
        self._order_rows = self._rows(_INSERT_ORDER)
        self._fill_rows = self._rows(_INSERT_FILL)
        self._risk_rows = self._rows(_INSERT_RISK)
        self._buffered = 0
        # Batched: the latest position row of each (run, symbol) since the last commit.
        self._positions: dict[tuple[str, str], tuple[Any, ...]] = {}
        # Batched: the latest status row of each (run, order) since the last commit.
        self._statuses: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._grouping = False
        # The reference price (the mark it was decided at) of each order earlier runs left
        # working (``carried_state``): the row this run writes for it again — re-armed,
        # carried over, adopted, resent — keeps it, so its fills are still measured.
        self._carried_refs: dict[str, float] = {}

    def _open(self, durable: bool) -> sqlite3.Connection:
        if self.path != ":memory:":
            target = Path(self.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() and not target.is_file():
                raise JournalError("it is not a regular file")
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a group is one transaction.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            version = versions.stored_version(db)
            versions.check_openable(version)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            schema = (
                resources.files("tradefleet_runtime.journal").joinpath("schema.sql").read_text()
            )
            if version is None:
                db.executescript(schema)
                db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(versions.CURRENT),),
                )
            elif version < versions.CURRENT:
                versions.migrate(db, version, schema)
                # One way: a release before this one refuses the file from now on (a rollback
                # must start a new journal), so say it where a person sees it.
                _log.warning(
                    "journal %s: migrated from schema version %d to %d; releases that read up "
                    "to version %d can no longer open it",
                    self.path,
                    version,
                    versions.CURRENT,
                    version,
                )
            # Fail now, naming the file, rather than at the first fill: can we write at all?
            # (SQLite opens a file it may not write read-only, without a word; a write in a
            # transaction rolled back is the reliable test.)
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
            finally:
                db.execute("ROLLBACK")
        except BaseException:
            db.close()
            raise
        return db

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

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        rows = self._buffer.get(sql)
        if rows is None:
            rows = self._buffer[sql] = []
        return rows

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """Write rows as one transaction now, or (batched) with the next batch."""
        if self.batched or self._grouping:
            for sql, row in statements:
                self._rows(sql).append(row)
            self._buffered += len(statements)
            if self._buffered >= BATCH_ROWS and not self._grouping:
                self.flush()
            return
        with self._transaction() as db:
            for sql, row in statements:
                db.execute(sql, row)

    def _batched(self, rows: int) -> None:
        """Count ``rows`` appended to the batch; commit it when full."""
        self._buffered += rows
        if self._buffered >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Commit every buffered row (a no-op when nothing is buffered)."""
        if not self._buffered:
            return
        self._buffered = 0
        positions, self._positions = self._positions, {}
        statuses, self._statuses = self._statuses, {}
        try:
            with self._transaction() as db:
                for sql, rows in self._buffer.items():
                    if rows:
                        _insert_rows(db, sql, rows)
                if positions:
                    db.executemany(_UPSERT_POSITION, positions.values())
                if statuses:
                    _insert_rows(db, _INSERT_UPDATE, list(statuses.values()))
        finally:
            for rows in self._buffer.values():
                rows.clear()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; an SQLite failure (disk full, read-only) names the file."""
        db = self._db
        try:
            db.execute("BEGIN")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as error:
            raise JournalError(f"journal {self.path}: {_explain(error)}") from None

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
            # A run of this bot still 'running' died without ending (SIGKILL, a lost node): the
            # journal is one process's at a time (its lock), so none runs now. Said so, with
            # its last word, instead of 'running' for ever; when it died is unknown.
            db.execute(
                "UPDATE runs SET status = 'interrupted', summary = ?"
                " WHERE bot = ? AND status = 'running' AND run_id != ?",
                (json.dumps({"error": "the process ended without ending the run"}), bot, run_id),
            )
            self._insert_run(
                db, run_id, bot, mode, currency, initial_capital, timeframe_s, config_hash, manifest
            )

    @staticmethod
    def _insert_run(
        db: sqlite3.Connection,
        run_id: str,
        bot: str,
        mode: str,
        currency: str,
        initial_capital: float,
        timeframe_s: int,
        config_hash: str,
        manifest: dict[str, Any],
    ) -> None:
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

    def record_order(
        self,
        order: Order,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        mark: float | None = None,
    ) -> None:
        """A new order and its first status, together. ``mark``: the symbol's mark when the
        order was decided, its reference price when it has no price of its own."""
        run = self.run_id
        order_id = order.client_order_id
        if mark is None and self._carried_refs:
            mark = self._carried_refs.get(order_id)
        order_row = _order_row(run, order, mark)
        status_row = (run, order_id, ts, status + "", reason, None)
        if self.batched:
            self._statuses[(run, order_id)] = status_row
            self._order_rows.append(order_row)
            self._batched(2)
            return
        self._write((_INSERT_ORDER, order_row), (_INSERT_UPDATE, status_row))

    def update_order(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None:
        run = self.run_id
        row = (run, client_order_id, ts, status + "", reason, venue_order_id)
        if self.batched:
            # The order's latest status replaces the batch's earlier one (see the module).
            self._statuses[(run, client_order_id)] = row
            self._batched(1)
            return
        self._write((_INSERT_UPDATE, row))

    def resize_order(self, client_order_id: str, quantity: float, ts: int, reason: str) -> None:
        """A working order's quantity is now ``quantity`` (its status log says so, with
        ``reason``), in one transaction."""
        run = self.run_id
        status_row = (run, client_order_id, ts, OrderStatus.OPEN + "", reason, None)
        if self.batched:
            # As every status of a batch: the order's latest replaces its earlier ones.
            self._statuses[(run, client_order_id)] = status_row
            self._rows(_RESIZE_ORDER).append((quantity, run, client_order_id))
            self._batched(2)
            return
        self._write((_RESIZE_ORDER, (quantity, run, client_order_id)), (_INSERT_UPDATE, status_row))

    def reprice_order(
        self,
        client_order_id: str,
        price: float,
        ts: int,
        reason: str,
        status: OrderStatus = OrderStatus.OPEN,
    ) -> None:
        """A working order's price is now ``price`` (a stop moved: its status log says so,
        with ``reason``, under the order's ``status``: a child filled in part stays so), in one
        transaction: a restart re-arms it at this price."""
        run = self.run_id
        status_row = (run, client_order_id, ts, status + "", reason, None)
        if self.batched:
            self._statuses[(run, client_order_id)] = status_row
            self._rows(_REPRICE_ORDER).append((price, run, client_order_id))
            self._batched(2)
            return
        self._write((_REPRICE_ORDER, (price, run, client_order_id)), (_INSERT_UPDATE, status_row))

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
        """A fill, the position it leaves, its order's status and any trade it closed: one
        transaction, so a crash never leaves one without the others. The status row says no
        reason of a fill the bot saw as it came; ``reason`` (and ``venue_order_id``): what a
        restart found the fill with (``reconcile.fill_statuses``)."""
        run = self.run_id
        fill_row = _fill_row(run, fill)
        position_row = _position_row(run, position, fill.ts)
        update_row = (
            run,
            fill.client_order_id,
            fill.ts,
            order_status + "",
            reason,
            venue_order_id,
        )
        if self.batched:
            # The position's and the order's latest rows replace the batch's earlier ones (see
            # the module).
            self._positions[(run, position.symbol)] = position_row
            self._statuses[(run, fill.client_order_id)] = update_row
            self._fill_rows.append(fill_row)
            if trades:
                self._write(
                    *((_INSERT_TRADE, _trade_row(run, seq, trade)) for seq, trade in trades)
                )
            self._batched(3)
            return
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (_INSERT_FILL, fill_row),
            (_UPSERT_POSITION, position_row),
            (_INSERT_UPDATE, update_row),
        ]
        for seq, trade in trades:
            statements.append((_INSERT_TRADE, _trade_row(run, seq, trade)))
        self._write(*statements)

    def record_trades(self, trades: Iterable[tuple[int, Trade]]) -> None:
        """Trades that no fill closed: positions open when a backtest's data ended."""
        run = self.run_id
        self._write(*((_INSERT_TRADE, _trade_row(run, seq, trade)) for seq, trade in trades))

    def record_run_symbols(self, rows: Iterable[tuple[str, int, int, float, int, float]]) -> None:
        """Per symbol traded: (symbol, bars, first ts, first open, last ts, last close)."""
        run = self.run_id
        self._write(*((_INSERT_RUN_SYMBOL, (run, *row)) for row in rows))

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
        row = (
            self.run_id,
            ts,
            plugin,
            symbol,
            side + "",
            decision.action + "",
            quantity_in,
            decision.quantity,
            decision.reason,
            client_order_id,
            decision.code,
        )
        if self.batched:
            self._risk_rows.append(row)
            self._batched(1)
            return
        self._write((_INSERT_RISK, row))

    # -- a whole run's rows at once (the vectorised backtest) ----------------------------------

    def record_run_rows(self, rows: RunRows) -> None:
        """A whole run's orders (with each one's last status), risk decisions, fills, position
        and round trips, in one transaction: the rows the engine's calls would leave (see
        ``RunRows``), inserted from their columns with each value the run repeats bound once
        per statement (``column_insert``)."""
        self.flush()
        run, symbol = Same(self.run_id), Same(rows.symbol)
        orders, decisions, fills, trades = rows.orders, rows.decisions, rows.fills, rows.trades
        nothing = Same(None)
        with self._transaction() as db:
            insert_columns(
                db,
                "INSERT OR IGNORE",
                "orders",
                {
                    "run_id": run,
                    "client_order_id": orders.order_ids,
                    "symbol": symbol,
                    "side": orders.sides,
                    "order_type": Same(OrderType.MARKET + ""),
                    "quantity": orders.quantities,
                    "price": nothing,
                    "stop_loss": nothing,
                    "take_profit": nothing,
                    "reduce_only": orders.reduce_only,
                    "parent_id": nothing,
                    "created_ts": orders.created_ts,
                    "tag": orders.tags,
                    "reference_price": orders.marks,
                },
                len(orders.order_ids),
            )
            insert_columns(
                db,
                "INSERT",
                "order_updates",
                {
                    "run_id": run,
                    "client_order_id": orders.order_ids,
                    "ts": orders.status_ts,
                    "status": orders.statuses,
                    "reason": Same(""),
                    "venue_order_id": orders.venue_order_ids,
                },
                len(orders.order_ids),
            )
            insert_columns(
                db,
                "INSERT",
                "risk_decisions",
                {
                    "run_id": run,
                    "ts": decisions.ts,
                    "plugin": Same(decisions.plugin),
                    "symbol": symbol,
                    "side": decisions.sides,
                    "action": decisions.actions,
                    "quantity_in": decisions.quantity_in,
                    "quantity_out": decisions.quantity_out,
                    "reason": decisions.reasons,
                    "client_order_id": decisions.order_ids,
                    "code": decisions.codes,
                },
                len(decisions.ts),
            )
            insert_columns(
                db,
                "INSERT OR IGNORE",
                "fills",
                {
                    "run_id": run,
                    "fill_id": fills.fill_ids,
                    "client_order_id": fills.order_ids,
                    "symbol": symbol,
                    "side": fills.sides,
                    "quantity": fills.quantities,
                    "price": fills.prices,
                    "fee": fills.fees,
                    "ts": fills.ts,
                    "reason": fills.reasons,
                },
                len(fills.fill_ids),
            )
            insert_columns(
                db,
                "INSERT OR REPLACE",
                "trades",
                {
                    "run_id": run,
                    "seq": range(len(trades)),
                    "symbol": [t.symbol for t in trades],
                    "direction": [t.direction for t in trades],
                    "quantity": [t.quantity for t in trades],
                    "entry_ts": [t.entry_ts for t in trades],
                    "exit_ts": [t.exit_ts for t in trades],
                    "entry_price": [t.entry_price for t in trades],
                    "exit_price": [t.exit_price for t in trades],
                    "gross_pnl": [t.gross_pnl for t in trades],
                    "fees": [t.fees for t in trades],
                    "entry_reason": [t.entry_reason for t in trades],
                    "exit_reason": [t.exit_reason for t in trades],
                },
                len(trades),
            )
            if fills.fill_ids:
                db.execute(
                    _UPSERT_POSITION, _position_row(self.run_id, rows.position, fills.ts[-1])
                )

    def record_cash_flow(self, flow: CashFlow, booked: bool) -> None:
        row = (
            self.run_id,
            flow.flow_id,
            flow.kind,
            flow.symbol,
            flow.currency,
            flow.amount,
            flow.ts,
            1 if booked else 0,
        )
        self._write((_INSERT_CASH_FLOW, row))

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
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET ended_at = ?, status = ?, summary = ? WHERE run_id = ?",
                (time.time(), status, json.dumps(summary, sort_keys=True), self.run_id),
            )

    def end_run_elsewhere(self, ts: int, status: str, reason: str) -> bool:
        """Journal the run as ended — ``status``, ``reason`` as its summary's error and a
        ``run_<status>`` event — from a thread that is not the one writing this journal, while
        that one is stuck (``serve``'s grace period ran out with the engine still running).

        Through a connection of its own: the journal's connection belongs to the engine thread,
        which may be inside a transaction on it, and two threads' statements on one connection
        would interleave; SQLite's file locks keep two connections apart (a write transaction
        of the engine's is waited for a second). Only a run still ``running`` is ended: a
        thread that ends it after all writes its own end over this one. Returns whether the run
        was ended here.
        """
        if not self.run_id or self.path == ":memory:":
            return False
        try:
            db = sqlite3.connect(self.path, timeout=1.0, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    ended = db.execute(
                        "UPDATE runs SET ended_at = ?, status = ?, summary = ?"
                        " WHERE run_id = ? AND status = 'running'",
                        (time.time(), status, json.dumps({"error": reason}), self.run_id),
                    ).rowcount
                    if ended:
                        db.execute(
                            _INSERT_EVENT,
                            (self.run_id, ts, f"run_{status}", f"{status}: {reason}", None),
                        )
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as error:
            raise JournalError(f"journal {self.path}: {_explain(error)}") from None
        return bool(ended)

    def close(self) -> None:
        try:
            self.flush()
            self._db.close()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)  # releases the flock (the file stays: removing it would race)

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
                manifest=self._run_json(row[0], "manifest", row[10]),
                summary=self._run_json(row[0], "summary", row[11]) if row[11] else None,
            )
            for row in rows
        ]

    def _run_json(self, run_id: str, column: str, text: str) -> Any:
        """A run row's JSON column; one that is not JSON (a hand edit, a damaged copy) is a
        ``JournalError`` naming the file, the run and the column, not a traceback."""
        try:
            return json.loads(text)
        except (TypeError, ValueError) as error:
            raise JournalError(
                f"journal {self.path}: run {run_id}'s {column} is damaged (not JSON: {error})"
            ) from None

    def equity_curve(self, run_id: str) -> tuple[array[int], array[float], array[float]]:
        """(close times, equity, gross exposure) of every bar of a run."""
        timestamps: array[int] = array("q")
        equity: array[float] = array("d")
        exposure: array[float] = array("d")
        for ts, eq, ex in self._db.execute(
            "SELECT ts, equity, exposure FROM equity_chunks WHERE run_id = ? ORDER BY first_ts",
            (run_id,),
        ):
            timestamps.extend(_unpacked("q", ts, self.path))
            equity.extend(_unpacked("d", eq, self.path))
            exposure.extend(_unpacked("d", ex, self.path))
        return timestamps, equity, exposure

    def trades(self, run_id: str) -> list[Trade]:
        rows = self._db.execute(
            "SELECT symbol, direction, quantity, entry_ts, exit_ts, entry_price, exit_price,"
            " gross_pnl, fees, entry_reason, exit_reason, funding FROM trades WHERE run_id = ?"
            " ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [Trade(*row) for row in rows]

    def run_symbols(self, run_id: str) -> list[tuple[str, int, int, float, int, float]]:
        """What ``record_run_symbols`` wrote for a run (empty for runs that wrote none)."""
        rows = self.query(
            "SELECT symbol, bars, first_ts, first_open, last_ts, last_close FROM run_symbols"
            " WHERE run_id = ? ORDER BY symbol",
            run_id,
        )
        return [
            (str(r[0]), int(r[1]), int(r[2]), float(r[3]), int(r[4]), float(r[5])) for r in rows
        ]

    def fees(self, run_id: str) -> float:
        """Every fee a run paid, in the account currency."""
        rows = self.query("SELECT COALESCE(SUM(fee), 0) FROM fills WHERE run_id = ?", run_id)
        return float(rows[0][0])

    def funding(self, run_id: str) -> float:
        """The venue's payments outside fills a run booked into cash (+ received, - paid)."""
        rows = self.query(
            "SELECT COALESCE(SUM(amount), 0) FROM cash_flows WHERE run_id = ? AND booked = 1",
            run_id,
        )
        return float(rows[0][0])

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read-only access for reports and tests."""
        return self._db.execute(sql, args).fetchall()

    def order_statuses(self, run_id: str | None = None) -> Sequence[tuple[str, str]]:
        """(client order id, latest status) of every order of a run."""
        return self._db.execute(
            "SELECT client_order_id, status FROM order_status WHERE run_id = ?",
            (run_id or self.run_id,),
        ).fetchall()

    # -- what earlier runs left (recovery) -------------------------------------------------

    def _earlier_runs(self, bot: str) -> tuple[list[RunRecord], str, tuple[str, ...]]:
        """The bot's earlier paper and live runs (oldest first), the SQL placeholders for
        their ids, and the ids: the account a restart continues. A backtest run written into
        the same journal (``tradefleet backtest --journal``, same bot name) is never a restart
        point: its fills, working orders, equity and bars are a simulation's, and carried they
        would hand the paper or live account positions it never held."""
        runs = [
            r
            for r in self.runs()
            if r.bot == bot and r.run_id != self.run_id and r.mode != _BACKTEST_MODE
        ]
        ids = tuple(r.run_id for r in runs)
        return runs, ",".join("?" * len(ids)), ids

    def run_timeframe(self, bot: str) -> int | None:
        """The timeframe of the bot's latest earlier paper or live run (the runs
        ``carried_state`` reads: not the current one, never a backtest's, which the same
        journal may hold on another timeframe and would hide the account's change of it); None
        when the journal holds no such run of it."""
        runs, _, _ = self._earlier_runs(bot)
        return int(runs[-1].timeframe_s) if runs else None

    def _control_runs(self, bot: str) -> tuple[str, tuple[str, str]]:
        """The runs whose halts, resumes, flattens, closes owed, risk locks and lock resets a
        restart of ``bot`` takes, as a condition on a ``run_id`` column and its parameters.

        Left out: another bot's runs sharing the file, whose resume would end this bot's halt,
        and backtests (``tradefleet backtest --journal``, same bot name), whose lock only a
        person could clear and whose reset would clear a real one. Taken: the bot's paper and
        live runs, the current one among them (a halt given while it waits for its venue); the
        journal's current run whatever its mode (what this very process journaled is its own;
        no restart reads a backtest's); and an event under no run row (written outside any
        run, by hand or by a tool that opened the file without starting one), as before: no
        bot can be told from it, and a halt or lock dropped is the unsafe side. Every writer
        of these events writes under its own run (the engine; ``HeldControl`` while the run
        waits for its venue), so a person's command given while the bot was down is found by
        that run row's bot."""
        return _CONTROL_RUNS, (self.run_id, bot)

    def bot_identity(self, bot: str) -> str | None:
        """What the bot's order ids derive from in this journal (``keep_bot_identity``);
        None before one was kept."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", f"identity:{bot}")
        return str(rows[0][0]) if rows else None

    def record_bar_handled(self, close_ts: int) -> None:
        """A paper or live run handled every one of its symbols' bars closing at ``close_ts``
        (the strategy, the orders it sent, the risk chain after each): committed now, after
        every row those bars wrote, as the run's ``bar_handled:<run>`` meta row. A restart
        resumes after it: the timestamp's equity snapshot comes after the mark (or, a symbol's
        bar missing, when the next timestamp begins), and a restart that took the snapshots
        alone for what was handled gave the strategy that timestamp again — holding what it had
        bought on it, it traded again (a second entry under a new id). Per timestamp, not per bar: a
        timestamp handled in part is handled again whole, so its orders get the same ids.

        Committed without waiting for the disk (``synchronous=NORMAL``, safe from a killed
        process in WAL mode; a power cut may lose the last mark, and the timestamp is then
        handled again as before): a mark a bar must not double what a paper replay costs."""
        self.flush()
        durable = self._durable
        if durable:
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (f"{_BAR_HANDLED}{self.run_id}", str(close_ts)),
                )
        finally:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")

    def record_came_back(self, at: float, *, market: bool) -> None:
        """This run is a restart that came back at ``at``: the market's clock (``market``), or
        the host's until the feed tells it (a later call replaces it). Committed now, before
        any order the run sends at its start, as the run's ``came_back:<run>`` meta row
        (``market:<time>`` or ``host:<time>``; a key of the ``meta`` table: no schema change).
        The orders it sends before its first live bar — a close owed, a decision on a bar that
        closed while it was down, all stamped with an earlier bar time — reached the venue
        then, and a later restart handed the same missed bars again works them only from
        there (``came_back_of``)."""
        self.flush()
        marker = _CAME_BACK_MARKET if market else _CAME_BACK_HOST
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (f"{_CAME_BACK}{self.run_id}", f"{marker}{float(at)!r}"),
            )

    def came_back_of(self, bot: str, client_order_ids: Iterable[str]) -> dict[str, float | None]:
        """Of ``client_order_ids`` (orders working before this run): those whose first run —
        the one that sent it; a restart journals the orders it re-arms again — was a restart
        (``record_came_back``), each with the market's time it was on the venue's book by:
        that run's time of coming back, or, that one taken from the host's clock (the run was
        killed before its feed told the market's), the first later run that journaled it and
        came back at a market time. None: no such run — not known, the order is worked on
        no bar that closed while the bot was down. An order a first start sent, or a run of
        an older runtime, is not among them."""
        runs, marks, previous = self._earlier_runs(bot)
        wanted = list(dict.fromkeys(client_order_ids))
        if not runs or not wanted:
            return {}
        back: dict[str, float | None] = {}
        for key, value in self.query(
            f"SELECT key, value FROM meta WHERE key IN ({marks})",
            *(_CAME_BACK + r for r in previous),
        ):
            back[str(key)[len(_CAME_BACK) :]] = _market_came_back(str(value))
        if not back:
            return {}
        rank = {run.run_id: at for at, run in enumerate(runs)}  # oldest first
        journaled: dict[str, list[str]] = {}  # each order's runs, oldest first
        for start in range(0, len(wanted), 500):  # under SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            for order_id, run_id in self.query(
                "SELECT DISTINCT client_order_id, run_id FROM orders WHERE client_order_id IN"
                f" ({','.join('?' * len(chunk))}) AND run_id IN ({marks})",
                *chunk,
                *previous,
            ):
                journaled.setdefault(str(order_id), []).append(str(run_id))
        sent: dict[str, float | None] = {}
        for order_id, run_ids in journaled.items():
            run_ids.sort(key=rank.__getitem__)
            if run_ids[0] not in back:
                continue  # a first start's (or an older runtime's): from its creation
            # A later run that re-armed it came back after it was sent: an upper bound.
            known = (back.get(r) for r in run_ids)
            sent[order_id] = next((t for t in known if t is not None), None)
        return sent

    def keep_bot_identity(self, bot: str, identity: str) -> None:
        """Keep the bot's identity for good: a restart must send and recognise the same ids.
        The first one kept stays (a second call cannot change it)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                (f"identity:{bot}", identity),
            )

    def params_left(self, bot: str) -> dict[str, Any] | None:
        """The strategy params the bot's latest earlier run ended with when an UpdateParams
        changed them in that run (every value of the newest ``params_updated`` event); None
        when that run changed none."""
        runs, _, _ = self._earlier_runs(bot)
        if not runs:
            return None
        rows = self.query(
            "SELECT data FROM events WHERE run_id = ? AND kind = 'params_updated'"
            " ORDER BY id DESC LIMIT 1",
            runs[-1].run_id,
        )
        if not rows or not rows[0][0]:
            return None
        params = json.loads(rows[0][0]).get("params")
        return params if isinstance(params, dict) else None

    def account_terms(self, bot: str) -> tuple[str, float] | None:
        """The currency and capital the bot's latest earlier run kept its account in (its
        spec.capital then); None before any run."""
        runs, _, _ = self._earlier_runs(bot)
        if not runs:
            return None
        return runs[-1].currency, runs[-1].initial_capital

    def run_modes(self, bot: str) -> frozenset[str]:
        """The modes of the bot's earlier runs in this journal (backtest, paper, live)."""
        rows = self.query(
            "SELECT DISTINCT mode FROM runs WHERE bot = ? AND run_id != ?", bot, self.run_id or ""
        )
        return frozenset(row[0] for row in rows)

    def carried_state(self, bot: str) -> CarriedState | None:
        """The bot's account and orders at the end of its earlier paper and live runs, or None
        if none (a backtest's are never carried: ``_earlier_runs``)."""
        runs, marks, previous = self._earlier_runs(bot)
        if not runs:
            return None
        state = CarriedState(initial_capital=runs[0].initial_capital, runs=len(runs))
        rows = self.query(
            "SELECT f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.fee, f.ts,"
            " f.fill_id, f.reason FROM fills f JOIN runs r USING (run_id)"
            f" WHERE f.run_id IN ({marks}) ORDER BY r.started_at, f.rowid",
            *previous,
        )
        state.fills = [
            Fill(row[0], row[1], Side(row[2]), row[3], row[4], row[5], row[6], row[7], row[8])
            for row in rows
        ]
        filled: dict[str, float] = {}
        for fill in state.fills:
            filled[fill.client_order_id] = filled.get(fill.client_order_id, 0.0) + fill.quantity
        latest = self.query(
            "SELECT o.client_order_id, o.symbol, o.side, o.order_type, o.quantity, o.price,"
            " o.stop_loss, o.take_profit, o.reduce_only, o.parent_id, o.created_ts, o.tag,"
            " u.status, o.reference_price FROM order_updates u"
            " JOIN orders o USING (run_id, client_order_id)"
            " WHERE u.id IN (SELECT MAX(id) FROM order_updates"
            f" WHERE run_id IN ({marks}) GROUP BY client_order_id)"
            " AND u.status IN ('pending', 'open', 'partially_filled') ORDER BY u.id",
            *previous,
        )
        for row in latest:
            order = Order(
                client_order_id=row[0],
                symbol=row[1],
                side=Side(row[2]),
                quantity=row[4],
                order_type=OrderType(row[3]),
                price=row[5],
                stop_loss=row[6],
                take_profit=row[7],
                reduce_only=bool(row[8]),
                parent_id=row[9],
                oco_group=row[9],  # bracket children cancel each other, grouped by their parent
                created_ts=row[10],
                tag=row[11],
            )
            if row[13] is not None:
                self._carried_refs[order.client_order_id] = float(row[13])
            if row[12] == "pending":
                state.unacknowledged.append(order)
            else:
                state.working.append((order, filled.get(order.client_order_id, 0.0)))
        state.known_order_ids = frozenset(
            row[0]
            for row in self.query(
                f"SELECT DISTINCT client_order_id FROM orders WHERE run_id IN ({marks})",
                *previous,
            )
        )
        # The first decision row of each vetoed id: what was asked, before any plugin shrank it.
        state.vetoed_intents = {
            str(order_id): (str(symbol), str(side), quantity)
            for order_id, symbol, side, quantity in self.query(
                "SELECT client_order_id, symbol, side, quantity_in FROM risk_decisions"
                " WHERE id IN (SELECT MIN(id) FROM risk_decisions"
                f" WHERE run_id IN ({marks}) AND client_order_id IS NOT NULL"
                " GROUP BY client_order_id HAVING SUM(action = ?) > 0)",
                *previous,
                RiskAction.VETO.value,
            )
            if order_id not in state.known_order_ids
        }
        state.last_bar_ts = self._last_bar_ts(marks, previous)
        state.cash_flows = [
            CashFlow(row[0], row[1], row[2], row[3], row[4], row[5])
            for row in self.query(
                "SELECT c.flow_id, c.symbol, c.amount, c.currency, c.ts, c.kind"
                " FROM cash_flows c JOIN runs r USING (run_id)"
                f" WHERE c.run_id IN ({marks}) ORDER BY r.started_at, c.id",
                *previous,
            )
        ]
        for (value,) in self.query("SELECT value FROM meta WHERE key = 'cash_flows_from'"):
            state.cash_flows_from = int(value)
        return state

    def _last_bar_ts(self, marks: str, runs: tuple[str, ...]) -> int:
        """Close time of the last timestamp an earlier run handled: the later of its last
        committed equity snapshot and its last ``record_bar_handled`` mark."""
        last = 0
        for (value,) in self.query(
            f"SELECT value FROM meta WHERE key IN ({marks})", *(_BAR_HANDLED + r for r in runs)
        ):
            with contextlib.suppress(ValueError):
                last = max(last, int(value))
        for (blob,) in self.query(
            "SELECT ts FROM equity_chunks WHERE (run_id, first_ts) IN"
            " (SELECT run_id, MAX(first_ts) FROM equity_chunks"
            f" WHERE run_id IN ({marks}) GROUP BY run_id)",
            *runs,
        ):
            stamps = _unpacked("q", blob, self.path)
            if stamps:
                last = max(last, max(stamps))
        return last

    def start_equity(self, run: RunRecord) -> float:
        """The equity ``run`` started from: its capital, or, for a run that continued the
        account of earlier ones, the equity it took over (journaled when it was restored)."""
        rows = self.query(
            "SELECT data FROM events WHERE run_id = ? AND kind IN"
            " ('restored', 'reconciled', 'degraded') AND data IS NOT NULL ORDER BY id",
            run.run_id,
        )
        for (data,) in rows:
            value = json.loads(data).get("start_equity")
            if isinstance(value, int | float):
                return float(value)
        return run.initial_capital

    def account_equity(self, bot: str) -> tuple[array[int], array[float]]:
        """Every equity snapshot the bot's earlier runs journaled, oldest first: the account
        a restarted bot continues, for the risk plugins whose limits start from its past."""
        _, marks, previous = self._earlier_runs(bot)
        timestamps: array[int] = array("q")
        equity: array[float] = array("d")
        if not previous:
            return timestamps, equity
        for ts, values in self.query(
            f"SELECT ts, equity FROM equity_chunks WHERE run_id IN ({marks}) ORDER BY first_ts",
            *previous,
        ):
            timestamps.extend(_unpacked("q", ts, self.path))
            equity.extend(_unpacked("d", values, self.path))
        return timestamps, equity

    def risk_refusals(self, run_id: str) -> list[tuple[str, str, str, int]]:
        """What risk plugins vetoed or shrank in a run: (plugin, action, reason, how many),
        each plugin's most frequent reasons first. A veto of no order is a MOVE_STOP refused
        (the engine journals it as the plugin's veto): its action is ``REFUSED_MOVE``."""
        rows = self.query(
            "SELECT plugin, CASE WHEN action = ? AND COALESCE(client_order_id, '') = ''"
            " THEN ? ELSE action END AS kind, reason, COUNT(*) FROM risk_decisions"
            " WHERE run_id = ? AND action IN (?, ?) GROUP BY plugin, kind, reason"
            " ORDER BY plugin, kind = ?, kind DESC, COUNT(*) DESC, reason",
            RiskAction.VETO.value,
            REFUSED_MOVE,
            run_id,
            RiskAction.VETO.value,
            RiskAction.SHRINK.value,
            REFUSED_MOVE,
        )
        return [(str(p), str(a), str(r or ""), int(n)) for p, a, r, n in rows]

    def measured_fills(self, bot: str, limit: int) -> list[tuple[Fill, float]]:
        """The last ``limit`` fills of the bot's earlier runs whose order has a reference price,
        each with it, oldest first: the execution a restarted bot's quality is measured on."""
        runs, marks, previous = self._earlier_runs(bot)
        if not runs or limit <= 0:
            return []
        rows = self.query(
            "SELECT f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.fee, f.ts,"
            " f.fill_id, f.reason, o.reference_price FROM fills f"
            " JOIN orders o USING (run_id, client_order_id) JOIN runs r USING (run_id)"
            f" WHERE f.run_id IN ({marks}) AND o.reference_price IS NOT NULL"
            " ORDER BY r.started_at DESC, f.rowid DESC LIMIT ?",
            *previous,
            limit,
        )
        return [
            (
                Fill(row[0], row[1], Side(row[2]), row[3], row[4], row[5], row[6], row[7], row[8]),
                float(row[9]),
            )
            for row in reversed(rows)
        ]

    def plugin_states(self, bot: str) -> dict[str, dict[str, Any]]:
        """Plugin → the newest state it journaled (``plugin_state`` events) in the bot's
        earlier paper or live runs: what a ``restores-state`` plugin is handed back after a
        restart. A backtest's never carries over; an event without a plugin's name or a state
        object (written by hand, or damaged) is skipped."""
        _, marks, previous = self._earlier_runs(bot)
        if not previous:
            return {}
        states: dict[str, dict[str, Any]] = {}
        # The newest event of each plugin only: a live bot journals one at most bars.
        for (data,) in self.query(
            "SELECT data FROM events WHERE id IN (SELECT MAX(id) FROM events"
            f" WHERE kind = 'plugin_state' AND run_id IN ({marks}) AND run_id IN"
            " (SELECT run_id FROM runs WHERE mode != 'backtest')"
            " GROUP BY json_extract(data, '$.plugin')) ORDER BY id",
            *previous,
        ):
            fields = json.loads(data) if data else {}
            plugin, state = fields.get("plugin"), fields.get("state")
            if isinstance(plugin, str) and plugin and isinstance(state, dict):
                states[plugin] = state
        return states

    def lock_resets(self, bot: str) -> dict[str, int]:
        """Plugin → bar time of the newest reset of its lock a person made, in the bot's runs
        (``_control_runs``)."""
        runs, ids = self._control_runs(bot)
        resets: dict[str, int] = {}
        for ts, data in self.query(
            f"SELECT ts, data FROM events WHERE kind = 'risk_lock_reset' AND {runs} ORDER BY id",
            *ids,
        ):
            plugin = str((json.loads(data) if data else {}).get("plugin", ""))
            if plugin:
                resets[plugin] = int(ts)
        return resets

    def last_control_event(self, bot: str) -> tuple[str, str] | None:
        """The newest halt or resume journaled in the bot's runs (``_control_runs``): (kind,
        message)."""
        runs, ids = self._control_runs(bot)
        rows = self.query(
            "SELECT kind, message FROM events WHERE kind IN ('halted', 'resumed')"
            f" AND {runs} ORDER BY id DESC LIMIT 1",
            *ids,
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def halt_events(self, bot: str) -> list[tuple[str, str, dict[str, Any]]]:
        """The halts in force, as their events: (kind, message, data) of every ``halted``,
        ``halt_joined`` (another holder's halt of the bot already halted) and ``halt_lifted``
        (one holder's halt lifted, another's kept) since the newest ``resumed``, oldest first;
        empty when there is none. ``trading_state.restored_halts`` makes the holders' halts of
        them: a halt lifted is not in force (its ``halted`` row may still be the newest halt or
        resume, :meth:`last_control_event`), and a ``halt_joined`` after a ``resumed`` is (a
        person's halt of a bot a Degraded stop held, which is never journaled as a halt). Of
        the bot's runs only (``_control_runs``): another bot's resume ends none of its halts."""
        runs, ids = self._control_runs(bot)
        since = self.query(f"SELECT MAX(id) FROM events WHERE kind = 'resumed' AND {runs}", *ids)
        after = since[0][0] if since and since[0][0] is not None else 0
        rows = self.query(
            "SELECT kind, message, data FROM events WHERE id > ?"
            f" AND kind IN ('halted', 'halt_joined', 'halt_lifted') AND {runs}"
            " ORDER BY id",
            after,
            *ids,
        )
        return [(str(k), str(m), json.loads(d) if d else {}) for k, m, d in rows]

    def _halt_row(self, bot: str) -> tuple[Any, ...] | None:
        """(id, kind, message, data) of the row the flatten readers take for the halt in
        force: the newest ``halted`` since the halt began, else its first ``halt_joined``; None
        when no journaled halt is in force. A halt ends with a ``resumed``, or with a
        ``halt_lifted`` that left only holders no restart restores (the Degraded stop's: the
        reconciliation decides it again) — the lifted holder's flatten is not owed either.
        Of the bot's runs only (``_control_runs``)."""
        runs, ids = self._control_runs(bot)
        rows = self.query(
            "SELECT id, kind, message, data FROM events"
            " WHERE kind IN ('halted', 'halt_joined', 'halt_lifted', 'resumed')"
            f" AND {runs} ORDER BY id",
            *ids,
        )
        halted: tuple[Any, ...] | None = None
        joined: tuple[Any, ...] | None = None
        for row in rows:
            kind = row[1]
            if kind == "resumed" or (kind == "halt_lifted" and _lifts_the_last(row[3])):
                halted = joined = None
            elif kind == "halted":
                halted = row
            elif kind == "halt_joined" and joined is None:
                joined = row
        return halted or joined

    def flatten_owed(self, bot: str) -> tuple[str, str] | None:
        """(who, reason) of the emergency stop in force whose flatten is still owed; None when
        no flatten is owed.

        Owed: the halt in force (no newer ``resumed``) asked for a flatten — its ``halted``
        event says ``flatten`` (or ``flatten_when_connected``: given while the bot waited for
        its venue at start) — and no ``flattened`` event after it says the flatten finished.
        The newest ``flattened`` event finishes it only when every close it names filled and
        it names no symbol left unclosed: a close the venue never received, or that the
        process died before it filled, leaves the position open, and a halt's flatten must
        not be forgotten by a restart. A ``flattened`` event with nothing to close (the
        account was flat once reconciled) ends the debt; so does a newer resume, and a
        ``halt_lifted`` that lifted the last journaled halt (:meth:`_halt_row`). Of the bot's
        runs only (``_control_runs``)."""
        runs, ids = self._control_runs(bot)
        row = self._halt_row(bot)
        if row is None:
            return None
        fields = json.loads(row[3]) if row[3] else {}
        done = self.query(
            f"SELECT data FROM events WHERE kind = 'flattened' AND id > ? AND {runs}"
            " ORDER BY id DESC LIMIT 1",
            row[0],
            *ids,
        )
        if not done:
            if not (fields.get("flatten") or fields.get("flatten_when_connected")):
                return None
            return str(fields.get("who", "")), str(fields.get("reason", ""))
        # A flatten asked of the already-halted bot is journaled as ``flattened`` alone: it is
        # the ask as well as the record of the closes sent.
        flattened = json.loads(done[0][0]) if done[0][0] else {}
        # Events written before the closes were named (an older runtime) hold no ``closes``:
        # taken as finished, as that runtime did.
        closes = [str(order_id) for order_id in flattened.get("closes", ())]
        if flattened.get("left") or any(self._latest_status(bot, c) != "filled" for c in closes):
            return str(flattened.get("who", "")), str(flattened.get("reason", ""))
        return None

    def flatten_in_force(self, bot: str) -> tuple[str, str] | None:
        """(who, reason) of the emergency stop in force when it asked for a flatten — in its
        ``halted`` event, or as a ``flattened`` one after it (a flatten asked of the halted
        bot) —, done or not; None without one (no halt in force, or a halt that keeps its
        positions). A restarted bot keeps its promise of a flat account: a fill booked after
        the flatten (reconciled at the start) is closed too. A halt lifted is not in force
        (:meth:`_halt_row`). Of the bot's runs only (``_control_runs``)."""
        runs, ids = self._control_runs(bot)
        row = self._halt_row(bot)
        if row is None:
            return None
        fields = json.loads(row[3]) if row[3] else {}
        if fields.get("flatten") or fields.get("flatten_when_connected"):
            return str(fields.get("who", "")), str(fields.get("reason", ""))
        later = self.query(
            f"SELECT data FROM events WHERE kind = 'flattened' AND id > ? AND {runs}"
            " ORDER BY id LIMIT 1",
            row[0],
            *ids,
        )
        if not later:
            return None
        asked = json.loads(later[0][0]) if later[0][0] else {}
        return str(asked.get("who", "")), str(asked.get("reason", ""))

    def closes_owed(self, bot: str) -> dict[str, tuple[str, str | None]]:
        """The closes risk plugins' and the stop policy's flattens still owe: symbol -> (their
        closes' tag, ``risk:<plugin>`` or ``stop-flatten``; the code of a refusal no retry
        changes — a person must close the position — or None: the close is to be sent).

        The newest ``close_owed`` event of a symbol, in the bot's runs (``_control_runs``:
        its paper and live ones, never another bot's nor a backtest's), says: owed from the
        flatten's first close (journaled before it leaves) until the position is flat, or an
        emergency stop's flatten took it over (whose own record ``flatten_owed`` reads)."""
        runs, ids = self._control_runs(bot)
        owed: dict[str, tuple[str, str | None]] = {}
        for (data,) in self.query(
            f"SELECT data FROM events WHERE kind = 'close_owed' AND {runs} ORDER BY id",
            *ids,
        ):
            fields = json.loads(data) if data else {}
            symbol = str(fields.get("symbol", ""))
            if not symbol:
                continue
            if not fields.get("owed"):
                owed.pop(symbol, None)
                continue
            refused = fields.get("refused")
            owed[symbol] = (str(fields.get("by", "")), None if refused is None else str(refused))
        return owed

    def strategy_closes_waiting(self, bot: str) -> dict[str, str]:
        """The strategy's closes that waited for the venue's cancel answers when the bot's last
        paper or live run stopped: symbol -> the close's tag. The newest ``close_waits`` event
        of a symbol that names what it waits for (``waiting_for``) and none since that says
        it ended (``ended``: sent, nothing left, or resumed by a later start)."""
        runs, ids = self._control_runs(bot)
        waiting: dict[str, str] = {}
        for (data,) in self.query(
            f"SELECT data FROM events WHERE kind = 'close_waits' AND {runs} ORDER BY id",
            *ids,
        ):
            fields = json.loads(data) if data else {}
            symbol = str(fields.get("symbol", ""))
            if not symbol:
                continue
            if "waiting_for" in fields:
                waiting[symbol] = str(fields.get("tag") or "close")
            elif "ended" in fields:
                waiting.pop(symbol, None)
        return waiting

    def _latest_status(self, bot: str, client_order_id: str) -> str | None:
        """An order's newest status in the bot's runs (``_control_runs``): a close sent by one
        run is given its venue's word (filled while down, never received) by the reconciliation
        of the next, journaled in that run. A backtest of the same bot name can send the same ids
        (a bare name's prefix, the same bar time): its fill of one is not the close's."""
        runs, ids = self._control_runs(bot)
        rows = self.query(
            f"SELECT status FROM order_updates WHERE client_order_id = ? AND {runs}"
            " ORDER BY id DESC LIMIT 1",
            client_order_id,
            *ids,
        )
        return str(rows[0][0]) if rows else None

    def risk_locks(self, bot: str) -> dict[str, tuple[str, int]]:
        """The bot's risk locks still in force: plugin → (reason, bar time locked).

        A lock is the newest ``risk_locked`` event of a plugin with no ``risk_lock_reset``
        after it, in the bot's runs (``_control_runs``): it outlives restarts until a person
        resets it. A backtest's lock (same bot name, same file) is a simulation's and holds
        nothing; neither a backtest's reset nor another bot's clears one of this bot's.
        """
        held: dict[str, tuple[str, int]] = {}
        for kind, plugin, fields in self._lock_events(bot):
            if kind == "risk_locked":
                held[plugin] = (str(fields.get("reason", "")), int(fields.get("since_ts", 0)))
            else:
                held.pop(plugin, None)
        return held

    def _lock_events(self, bot: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """The bot's ``risk_locked`` and ``risk_lock_reset`` events, oldest first: (kind,
        plugin, data); those naming no plugin left out."""
        runs, ids = self._control_runs(bot)
        for kind, data in self.query(
            "SELECT kind, data FROM events WHERE kind IN ('risk_locked', 'risk_lock_reset')"
            f" AND {runs} ORDER BY id",
            *ids,
        ):
            fields = json.loads(data) if data else {}
            plugin = str(fields.get("plugin", ""))
            if plugin:
                yield str(kind), plugin, fields

    def risk_lock_symbols(self, bot: str) -> dict[str, frozenset[str] | None]:
        """The symbols each lock in force (``risk_locks``) was journaled holding: the union of
        its ``risk_locked`` events since its last reset (None: every symbol). A lock journaled
        before the symbols were (an older runtime) is left out: its plugin says them."""
        held: dict[str, frozenset[str] | None] = {}
        for kind, plugin, fields in self._lock_events(bot):
            if kind != "risk_locked":
                held.pop(plugin, None)
            elif "symbols" in fields:
                listed = fields["symbols"]
                if listed is None or (plugin in held and held[plugin] is None):
                    held[plugin] = None
                else:
                    held[plugin] = frozenset(map(str, listed)) | (held.get(plugin) or frozenset())
        return held

    def order_rows(
        self, run_id: str | None = None, only: Collection[str] | None = None
    ) -> list[tuple[Any, ...]]:
        """Every order of a run (or ``only`` those ids) with its fills so far and latest status:
        (client order id, symbol, side, type, quantity, filled, price, status, reduce_only,
        parent id, created, tag, stop-loss, take-profit, reference price, fees, average fill
        price or None, the latest status's reason, venue order id or None).

        ``only`` reads those orders and their fills alone (the orders index): a bot's working
        orders out of a long run's tens of thousands, read on the engine's thread."""
        run = run_id or self.run_id
        if only is not None:
            # One parameter whatever the count (SQLite's variables are limited).
            ids = json.dumps(sorted(only))
            chosen = " AND client_order_id IN (SELECT value FROM json_each(?))"
            return self.query(
                _ORDER_ROWS.format(fills=chosen, orders=chosen.replace(" AND ", " AND s.")),
                run,
                ids,
                run,
                ids,
            )
        return self.query(_ORDER_ROWS.format(fills="", orders=""), run, run)

    def order_page(
        self, start: int, size: int, run_id: str | None = None
    ) -> tuple[list[tuple[Any, ...]], bool]:
        """Orders ``start`` to ``start + size`` of a run, oldest first, as ``order_rows`` gives
        them, and whether more follow: a long run's orders a page at a time, each page read
        with its own orders' fills alone (the engine's thread reads it between bars).

        Pages are cut in the orders' creation order: an order created while a reader pages
        comes after every older one, so nothing is skipped (at worst, one created in the same
        second with a lower id is listed twice)."""
        run = run_id or self.run_id
        ids = [
            row[0]
            for row in self._db.execute(
                "SELECT client_order_id FROM orders WHERE run_id = ?"
                " ORDER BY created_ts, client_order_id LIMIT ? OFFSET ?",
                (run, size + 1, start),
            )
        ]
        rows = self.order_rows(run, only=ids[:size]) if ids else []
        return rows, len(ids) > size

    def fills_at(self, bot: str, stamps: Sequence[int]) -> list[tuple[Any, ...]]:
        """(symbol, ts, side, reason, client order id) of each fill of the bot's runs at one of
        ``stamps`` (bot times): which orders opened and closed its trades (the trades table
        keeps only the fills' reasons)."""
        if not stamps:
            return []
        marks = ",".join("?" * len(stamps))
        return self.query(
            "SELECT f.symbol, f.ts, f.side, f.reason, f.client_order_id FROM fills f"
            f" JOIN runs r USING (run_id) WHERE r.bot = ? AND f.ts IN ({marks})",
            bot,
            *stamps,
        )

    def signal_outcome(self, signal_id: str) -> tuple[bool, str, str] | None:
        """The journaled outcome of an external signal id: (accepted, reason, order id)."""
        rows = self.query(
            "SELECT accepted, reason, client_order_id FROM signals WHERE signal_id = ?", signal_id
        )
        return (bool(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    def signal_digest(self, signal_id: str) -> str | None:
        """The content digest journaled with an external signal id ('' for one journaled before
        schema version 6); None when the id is unknown."""
        rows = self.query("SELECT digest FROM signals WHERE signal_id = ?", signal_id)
        return str(rows[0][0]) if rows else None

    def begin_signal(self, signal_id: str, ts: int, digest: str) -> None:
        """Journal ``signal_id`` as pending, before the engine handles it (and sends its order).

        A process killed between the order and :meth:`record_signal` leaves the row pending;
        :meth:`pending_signal_order` then finds the order it led to, so a retry after the
        restart is answered with that order instead of sending another. The row remembers the
        newest order status journaled so far (the sequence of ``order_updates``): the signal's
        orders come after it, in this run, at its engine time ``ts``. No schema change:
        a pending row is ``accepted`` 0, no order id, and a reason starting with
        :data:`SIGNAL_PENDING` (a refusal's reason never does). A pending row of an earlier
        attempt that sent nothing is taken over (its run, time and mark replaced).
        """
        self._write(
            (
                "INSERT INTO signals (signal_id, run_id, ts, accepted, reason, client_order_id,"
                " digest) SELECT ?, ?, ?, 0, ? || COALESCE(MAX(id), 0), '', ? FROM order_updates"
                " WHERE true ON CONFLICT (signal_id) DO UPDATE SET run_id = excluded.run_id,"
                " ts = excluded.ts, reason = excluded.reason WHERE " + _PENDING,
                (signal_id, self.run_id, ts, SIGNAL_PENDING, digest),
            )
        )

    def pending_signal_run(self, signal_id: str) -> str | None:
        """The run that journaled ``signal_id`` pending (:meth:`begin_signal`) and never its
        outcome; None when the signal is not pending (unknown, or its outcome recorded)."""
        rows = self.query(
            "SELECT run_id FROM signals WHERE signal_id = ? AND " + _PENDING, signal_id
        )
        return str(rows[0][0]) if rows else None

    def signal_written_by(self, signal_id: str) -> float | None:
        """The latest wall-clock time (epoch seconds) the row of ``signal_id`` can have been
        written at: its run's end, else (a run killed before it ended) the start of the run
        after it, the journal being one process's at a time. None: no bound (its run is still
        the latest, or the id is unknown)."""
        rows = self.query(
            "SELECT COALESCE(r.ended_at, (SELECT MIN(n.started_at) FROM runs n"
            " WHERE n.started_at > r.started_at)) FROM signals s JOIN runs r USING (run_id)"
            " WHERE s.signal_id = ?",
            signal_id,
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def pending_signal_order(self, signal_id: str) -> str | None:
        """For a signal journaled pending (:meth:`begin_signal`) and never recorded: the order
        the engine named for it ('' when there is none: nothing was sent, since an order is
        journaled before the broker sees it). None when the signal is not pending.
        :class:`SignalOrderUnknown` when the journal cannot tell its order from another
        alert's: never a guess.

        Its orders are the entry orders (no parent) its run journaled after the pending mark
        whose first status carries the signal's own engine time (the row's ``ts``: the engine
        stamps every order it journals while handling a signal with that time). Every signal
        handled in the same bar shares that time, so another signal's orders are set apart:
        the order another signal row of the run names, and every order after one, or after
        another pending mark of the run (signals are handled one at a time: those came after
        this signal ended). Of what is left, the last, as ``Engine.handle_signal`` names it (a
        reversal: its entry, not its close) — unless another signal began after it, whose
        orders before the one it names (its reversal's reduce-only close) cannot be told from
        this signal's: more than one left, or one that is reduce-only (this signal placing
        nothing and the next reversing leaves the very rows of this signal closing and the
        next entering) — or another run's signal names one of them (order ids repeat across
        runs).
        Asked right after the engine raised handling it (nothing else ran since), or for a
        run that ended (a kill); a running process answers its own signals from what it knows.
        """
        rows = self.query(
            "SELECT run_id, ts, reason FROM signals WHERE signal_id = ? AND " + _PENDING,
            signal_id,
        )
        if not rows:
            return None
        run_id, ts, reason = str(rows[0][0]), int(rows[0][1]), str(rows[0][2])
        mark = _pending_mark(reason)
        orders = self.query(
            "SELECT client_order_id, first, reduce_only FROM (SELECT o.client_order_id,"
            " o.reduce_only, (SELECT MIN(u.id) FROM order_updates u WHERE u.run_id = o.run_id"
            " AND u.client_order_id = o.client_order_id) AS first FROM orders o"
            " WHERE o.run_id = ? AND o.parent_id IS NULL) f"
            " WHERE first > ? AND (SELECT ts FROM order_updates WHERE id = f.first) = ?"
            " ORDER BY first",
            run_id,
            mark,
            ts,
        )
        others = self.query(
            "SELECT run_id = ?, client_order_id, reason FROM signals WHERE signal_id != ?"
            " AND (client_order_id != '' OR (run_id = ? AND " + _PENDING + "))",
            run_id,
            signal_id,
            run_id,
        )
        candidates = [(str(order), int(first)) for order, first, _ in orders]
        closes = {str(order) for order, _, reduce_only in orders if reduce_only}
        try:
            return signal_order(candidates, mark, others, closes)
        except SignalOrderUnknown:
            raise SignalOrderUnknown(signal_id) from None

    def record_signal(
        self,
        signal_id: str,
        ts: int,
        accepted: bool,
        reason: str,
        client_order_id: str,
        digest: str = "",
    ) -> None:
        """The outcome of ``signal_id``: a new row, or the pending one :meth:`begin_signal`
        wrote completed. A recorded outcome is never replaced (the first one stands)."""
        self._write(
            (
                "INSERT INTO signals (signal_id, run_id, ts, accepted, reason,"
                " client_order_id, digest) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (signal_id) DO UPDATE SET run_id = excluded.run_id,"
                " ts = excluded.ts, accepted = excluded.accepted, reason = excluded.reason,"
                " client_order_id = excluded.client_order_id WHERE " + _PENDING,
                (signal_id, self.run_id, ts, int(accepted), reason, client_order_id, digest),
            )
        )


#: The holders of halts no restart restores (``trading_state.DEGRADED_HOLDER``: a Degraded
#: stop is never journaled as a halt; the start's reconciliation decides it again).
_RESTART_DECIDES: Final = frozenset({"degraded"})


def _lifts_the_last(data: str | None) -> bool:
    """Whether a ``halt_lifted`` row (its ``data``) left no journaled halt in force: every
    holder it names as left (``left``) is one no restart restores."""
    fields = json.loads(data) if data else {}
    left = fields.get("left")
    if not isinstance(left, list):
        return False  # not said: the halt is taken as still in force (the safe side)
    return all(str(holder) in _RESTART_DECIDES for holder in left)


class SignalOrderUnknown(Exception):
    """The journal holds orders a pending signal may have led to but cannot tell them from
    another alert's (:meth:`Journal.pending_signal_order`); the signal's id is the message."""


def signal_order(
    candidates: Sequence[tuple[str, int]],
    mark: int,
    others: Sequence[Sequence[Any]],
    closes: Collection[str] | None = None,
) -> str:
    """Which of ``candidates`` (entry orders of a pending signal's run and engine time after its
    ``mark``: id and first ``order_updates.id``, in order) the signal led to, '' for none.
    ``others``: the other signal rows (same run?, order id named, reason); pending ones are
    of the same run. ``closes``: the candidates that are reduce-only, which a reversal's close
    is; None when not known (any can be one). See :meth:`Journal.pending_signal_order`."""
    named_here = {str(order) for same, order, _ in others if same and order}
    named_elsewhere = {str(order) for same, order, _ in others if not same and order}
    marks = [_pending_mark(str(reason)) for same, order, reason in others if same and not order]
    if candidates and mark in marks:
        raise SignalOrderUnknown  # handed over at the same point: which came first is unknown
    # The first status another signal of the run that began after this one can have: after
    # its pending mark, or (recorded, its mark gone) no later than the order it names.
    began = min((m + 1 for m in marks if m > mark), default=None)
    named = min((first for order, first in candidates if order in named_here), default=None)
    bound = min((b for b in (began, named) if b is not None), default=None)
    own = [order for order, first in candidates if bound is None or first < bound]
    if any(order in named_elsewhere for order in own) or (bound is not None and len(own) > 1):
        raise SignalOrderUnknown
    if own and _may_be_next_close(own[-1], began, named, closes):
        raise SignalOrderUnknown
    return own[-1] if own else ""


def _may_be_next_close(
    order: str, began: int | None, named: int | None, closes: Collection[str] | None
) -> bool:
    """Whether ``order``, the one order left to a pending signal, can be the reduce-only close
    of a reversal by the next signal of its run. Not when a later pending mark (``began``: the
    first update after it) comes no later than the first status of the order a recorded signal
    names (``named``): orders before the mark preceded every later signal (a recorded one that
    ended before the mark would have put ``named`` first). Otherwise a recorded signal's close
    comes just before ``named``, and this signal sending nothing while the next reverses leaves
    the rows of this one closing and the next entering. ``closes`` None: any can be a close."""
    if named is None or (began is not None and began <= named):
        return False
    return closes is None or order in closes


def _pending_mark(reason: str) -> int:
    """The order update id a pending signal row was journaled after (:data:`SIGNAL_PENDING`)."""
    try:
        return int(reason.removeprefix(SIGNAL_PENDING))
    except ValueError:  # pragma: no cover - a hand-edited row: take every order of its run
        return 0


#: How a pending signal's reason starts (:meth:`Journal.begin_signal`); the number after it is
#: the newest ``order_updates.id`` when the signal was handed to the engine.
SIGNAL_PENDING: Final = "pending: handed to the engine after order update #"
# A signal row still pending (an upsert's condition, or a query's): its reason starts with
# SIGNAL_PENDING (GLOB is case-sensitive; the text holds no GLOB metacharacters).
_PENDING: Final = (
    "signals.accepted = 0 AND signals.client_order_id = ''"
    f" AND signals.reason GLOB '{SIGNAL_PENDING}*'"
)


# A run's orders with their fills so far and latest status (``Journal.order_rows``); ``{fills}``
# and ``{orders}`` narrow both to some ids, or are empty.
_ORDER_ROWS = (
    "SELECT s.client_order_id, s.symbol, s.side, s.order_type, s.quantity,"
    " COALESCE(f.filled, 0), s.price, s.status, s.reduce_only, s.parent_id,"
    " s.created_ts, s.tag, s.stop_loss, s.take_profit, s.reference_price,"
    " COALESCE(f.fees, 0), f.notional / f.filled, s.reason,"
    # The newest venue id of its status log, not the latest status's: a fill's status row
    # carries none, and the order keeps the id the venue gave it.
    " (SELECT u.venue_order_id FROM order_updates u WHERE u.run_id = s.run_id"
    " AND u.client_order_id = s.client_order_id AND u.venue_order_id IS NOT NULL"
    " ORDER BY u.id DESC LIMIT 1)"
    " FROM order_status s LEFT JOIN (SELECT client_order_id, SUM(quantity) AS filled,"
    " SUM(quantity * price) AS notional, SUM(fee) AS fees FROM fills WHERE run_id = ?{fills}"
    " GROUP BY client_order_id) f ON f.client_order_id = s.client_order_id"
    " WHERE s.run_id = ?{orders} ORDER BY s.created_ts, s.client_order_id"
)


def _market_came_back(value: str) -> float | None:
    """The market's time a ``came_back:<run>`` meta value says the run came back at; None
    when it is not the market's: the host's clock (its run killed before its feed told the
    market's, and a host clock behind the market's would let an order fill before it was
    sent), a bare number (the host's clock or the market's: the first runtime that wrote
    the row did not say) or a value it cannot read."""
    if not value.startswith(_CAME_BACK_MARKET):
        return None
    try:
        return float(value[len(_CAME_BACK_MARKET) :])
    except ValueError:
        return None


def _order_row(run: str, order: Order, mark: float | None) -> tuple[Any, ...]:
    # Enum members are bound as exact str (``member + ""``: see _NOTHING).
    price = order.price
    return (
        run,
        order.client_order_id,
        order.symbol,
        order.side + "",
        order.order_type + "",
        order.quantity,
        price,
        order.stop_loss,
        order.take_profit,
        int(order.reduce_only),
        order.parent_id,
        order.created_ts,
        order.tag,
        price if price is not None else (mark if mark and mark == mark else None),
    )


def _fill_row(run: str, fill: Fill) -> tuple[Any, ...]:
    return (
        run,
        fill.fill_id,
        fill.client_order_id,
        fill.symbol,
        fill.side + "",
        fill.quantity,
        fill.price,
        fill.fee,
        fill.ts,
        fill.reason,
    )


def _position_row(run: str, position: Position, ts: int) -> tuple[Any, ...]:
    return (
        run,
        position.symbol,
        position.quantity,
        position.average_price,
        position.realized_pnl,
        ts,
    )


def _trade_row(run: str, seq: int, trade: Trade) -> tuple[Any, ...]:
    return (
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
        trade.entry_reason,
        trade.exit_reason,
        trade.funding,
    )


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that reads ``path`` and leaves every file as it was (``tradefleet report``).

    SQLite's ``mode=ro`` still creates ``-wal`` and ``-shm`` beside a WAL file and cannot remove
    them. A journal without a ``-wal`` has no writer (the last connection to close removes it),
    so it is opened ``immutable`` (no side files); with one, a bot may be writing, and
    ``mode=ro`` reads through its log. An older schema is migrated in a copy in memory."""
    if not path.is_file():
        raise JournalError("it is not a regular file" if path.exists() else "no such file")
    if path.stat().st_size == 0:
        raise JournalError("it is empty: not a tradefleet journal")
    live = path.with_name(path.name + "-wal").exists()
    uri = f"{path.resolve().as_uri()}?{'mode=ro' if live else 'immutable=1'}"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        version = versions.stored_version(db)
        if version is None:
            raise JournalError("it holds no tables: not a tradefleet journal")
        versions.check_openable(version)
        if version < versions.CURRENT:
            db = _migrated_copy(db, version)
    except BaseException:
        db.close()
        raise
    return db


def _migrated_copy(db: sqlite3.Connection, version: int) -> sqlite3.Connection:
    """An in-memory copy of ``db`` (closed) brought to the current schema."""
    copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        db.backup(copy)
        db.close()
        schema = resources.files("tradefleet_runtime.journal").joinpath("schema.sql").read_text()
        versions.migrate(copy, version, schema)
    except BaseException:
        copy.close()
        raise
    return copy


def _explain(error: BaseException) -> str:
    """What an SQLite or OS error means for a journal, in words an operator can act on."""
    text = str(error)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return "it is read-only for this process (check the volume's permissions and mount)"
    if "unable to open" in lowered:
        return "it cannot be opened or created (does the folder exist, and is it writable?)"
    if "disk is full" in lowered or "disk i/o" in lowered:
        return f"the disk failed or is full ({text})"
    if "not a database" in lowered:
        return "it is not an SQLite journal (or it is damaged)"
    if "locked" in lowered or "busy" in lowered:
        return "another process holds it locked (is another runtime using this journal?)"
    if isinstance(error, PermissionError):
        return "permission denied (check the volume's permissions)"
    return text
