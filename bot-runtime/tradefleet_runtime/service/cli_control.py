"""The control commands of the ``tradefleet`` CLI, talking to a running bot over gRPC.

::

    tradefleet status ADDRESS [--json]
    tradefleet positions ADDRESS [--json]
    tradefleet orders ADDRESS [--all] [--json]
    tradefleet trades ADDRESS [--page-size N] [--page-token T | --all] [--json]
    tradefleet events ADDRESS [--kind KIND ...] [--count N] [--json]
    tradefleet pause ADDRESS --reason TEXT [--json]
    tradefleet resume ADDRESS --reason TEXT [--json]
    tradefleet stop ADDRESS --reason TEXT [--flatten] [--json]
    tradefleet reset-risk ADDRESS PLUGIN --reason TEXT [--json]

The token comes from ``--token-file`` or ``$TRADEFLEET_TOKEN``; ``--tls`` (or any ``--tls-*``
option) connects with TLS. Output is rich tables, or JSON with ``--json`` (``events --json``
prints one JSON object per line). Exit codes: 0 done, 1 the bot refused or could not be reached
(the gRPC status code is printed), 2 bad usage: among it, an ADDRESS that is not ``host:port``,
``[IPv6]:port`` (a port in 1..65535) or ``unix:PATH``, a ``--timeout`` or ``--duration`` that is
not a finite number of seconds > 0, a ``trades --page-size`` outside 0..1000 (0: the bot's
default), an ``events --count`` below 1, and a token file that cannot be read or holds no
usable token — each said naming it, before anything is dialled.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tradefleet_runtime.service.api import (
    CloseRetrying,
    CloseStuck,
    EventKind,
    OrderView,
    PositionView,
    RuntimeEvent,
    StatusSnapshot,
    TradeView,
)
from tradefleet_runtime.service.client import (
    ApiError,
    ClientTls,
    RuntimeClient,
    TokenError,
    read_token,
)
from tradefleet_runtime.service.control_args import (
    UsageProblem,
    checked_address,
    checked_count,
    checked_page_size,
    checked_seconds,
)
from tradefleet_runtime.terminal import PIPE_WIDTH


def run_control_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the control command parsed into ``args``; the exit code."""
    stream = out if out is not None else sys.stdout
    console = Console(file=stream, highlight=False, markup=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Off a terminal (a pipe, a file, a script) as wide as a row: at rich's default of 80
        # columns an order's id was cut (``tf831…``), and a person could not copy it.
        console = Console(file=stream, highlight=False, markup=False, width=PIPE_WIDTH)
    err = Console(stderr=True, highlight=False)
    try:
        # Before anything is dialled: gRPC would call a wrapped port, or answer bad input as a
        # bot that is down (exit 1).
        address = checked_address(args.address)
        timeout = checked_seconds("--timeout", args.timeout)
        if getattr(args, "duration", None) is not None:
            checked_seconds("--duration", args.duration)
        if getattr(args, "page_size", None) is not None:  # trades
            checked_page_size(args.page_size)
        if getattr(args, "count", None) is not None:  # events
            checked_count(args.count)
    except UsageProblem as error:
        err.print(f"[bold red]error[/]: {escape(str(error))}")
        return 2
    try:
        token = read_token(args.token_file)
    except OSError as error:
        why = error.strerror or str(error)
        err.print(
            f"[bold red]error[/]: cannot read the token file {escape(str(args.token_file))}: "
            f"{escape(why)}"
        )
        return 2
    except TokenError as error:  # refused before any call: gRPC would only say INTERNAL
        err.print(f"[bold red]error[/]: {escape(str(error))}")
        return 2
    tls = None
    if args.tls or args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name:
        tls = ClientTls(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)
    actor = getattr(args, "actor", None)
    try:
        with RuntimeClient(address, token=token, tls=tls, timeout=timeout, actor=actor) as client:
            return _run(client, args, stream, console)
    except ApiError as error:
        field = f" (field {error.field})" if error.field else ""
        err.print(f"[bold red]{error.code}[/]: {escape(error.message + field)}")
        return 1
    except OSError as error:
        err.print(f"[bold red]error[/]: {escape(str(error))}")
        return 1


def _run(client: RuntimeClient, args: argparse.Namespace, out: TextIO, console: Console) -> int:
    command = args.control_command
    if command == "events":
        return _events(client, args, out, console)
    result: Any
    if command == "status":
        result = client.get_status()
    elif command == "positions":
        result = client.list_positions()
    elif command == "orders":
        result = client.list_orders(include_closed=args.all)
    elif command == "trades":
        if args.all:
            result = {"trades": list(client.iter_trades(args.page_size)), "next_page_token": ""}
        else:
            page = client.list_trades(args.page_size, args.page_token)
            result = {"trades": list(page.trades), "next_page_token": page.next_page_token}
    elif command == "pause":
        result = client.pause(args.reason)
    elif command == "resume":
        result = client.resume(args.reason)
    elif command == "stop":
        result = client.emergency_stop(args.reason, flatten=args.flatten)
    elif command == "reset-risk":
        result = client.reset_risk_lock(args.plugin, args.reason)
    else:  # pragma: no cover - argparse only offers the commands above
        raise ValueError(command)
    if args.json:
        print(json.dumps(to_jsonable(result), indent=2), file=out)
    elif isinstance(result, StatusSnapshot):
        _print_status(console, result)
    elif command == "positions":
        console.print(_positions_table(result))
    elif command == "orders":
        console.print(_orders_table(result))
        if result:
            console.print(_order_details_table(result))
    else:
        console.print(_trades_table(result["trades"]))
        if result["trades"]:
            console.print(_trade_reasons_table(result["trades"]))
        if result["next_page_token"]:
            console.print(f"more: --page-token {result['next_page_token']}")
    return 0


def _events(client: RuntimeClient, args: argparse.Namespace, out: TextIO, console: Console) -> int:
    kinds = [EventKind(k) for k in args.kind]
    seen = 0
    with client.events(kinds=kinds, timeout=args.duration, recent=args.recent) as stream:
        try:
            for event in stream:
                if args.json:
                    print(json.dumps(to_jsonable(event)), file=out, flush=True)
                else:
                    console.print(_event_line(event))
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
        except KeyboardInterrupt:
            pass
        except ApiError as error:
            if error.code != "DEADLINE_EXCEEDED":  # --duration ran out
                raise
    return 0


# --- output -----------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Dataclasses (snapshots, views, events) → plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "items"):  # other mappings (event data)
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)  # StrEnum members as their value
    return value


def _ts(seconds: int) -> str:
    """A bot time as UTC, and saying so (Z): read beside a local clock it was taken for one."""
    if not seconds:
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cash_note(status: StatusSnapshot) -> str:
    """Why cash may be below zero: the bot books a position as bought with cash (a spot
    account's way), so on a margin account (a perpetual, MetaTrader 5) a long's whole notional
    is out of it; read as the venue's wallet balance it looked like a debt."""
    if status.open_positions and status.balance < 0.0:
        return " (open positions are paid from it at entry; equity is the account's value)"
    return ""


def _print_status(console: Console, status: StatusSnapshot) -> None:
    table = Table(title=f"{status.bot} ({status.mode})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    phase = status.phase.value
    if status.halted:
        phase += f" — halted: {status.halt_reason}"
    elif status.paused:
        phase += f" — paused: {status.pause_reason}"
    # Before the engine runs: the previous run's figures, which the venue may since have changed.
    last = " (last known: journaled by the previous run)" if status.last_known else ""
    rows = [
        ("phase", phase),
        ("equity", f"{_num(status.equity)} {status.currency}{last}"),
        ("cash", f"{_num(status.balance)} {status.currency}{_cash_note(status)}"),
        ("pnl today / total", f"{_num(status.pnl_today)} / {_num(status.pnl_total)}"),
        ("drawdown", f"{_num(status.drawdown_pct)} %"),
        ("open positions / orders", f"{status.open_positions} / {status.open_orders}{last}"),
        ("bars", f"{status.bars} (last {_ts(status.last_bar_ts)})"),
        (
            "broker",
            "connected"
            if status.broker_connected
            else "DISCONNECTED"
            + (f" — {status.starting_reason}" if status.starting_reason else ""),
        ),
        ("reconciled", "yes" if status.reconciled else "NO"),
        ("config", status.config_hash),
        ("plugins", ", ".join(f"{p.kind} {p.name} {p.version}" for p in status.plugins)),
    ]
    if status.closes_retrying:  # right below the phase: a person may act
        rows.insert(1, ("CLOSE RETRYING", _closes_retrying(status.closes_retrying)))
    if status.closes_stuck:  # right below the phase: each waits for a person
        rows.insert(1, ("CLOSE STUCK", _closes_stuck(status.closes_stuck)))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if status.risk:
        risk = Table(title="risk chain")
        for column in ("plugin", "version", "locked", "reason"):
            risk.add_column(column)
        for r in status.risk:
            risk.add_row(r.name, r.version, "LOCKED" if r.locked else "no", r.reason)
        console.print(risk)
    if status.quality:
        quality = Table(title="execution quality")
        for column in ("measure", "samples", "mean", "stddev", "Cp", "Cpk"):
            quality.add_column(column, justify="left" if column == "measure" else "right")
        for q in status.quality:
            quality.add_row(
                q.name,
                str(q.samples),
                _num(q.mean, 4),
                _num(q.stddev, 4),
                _num(q.cp),
                _num(q.cpk),
            )
        console.print(quality)


def _closes_stuck(closes: Sequence[CloseStuck]) -> str:
    """The positions the bot's own flatten could not close, and what a person does about it."""
    held = "; ".join(
        f"{close.position:.10g} {close.symbol} (refused: {close.code or 'no reason code'})"
        for close in closes
    )
    return f"{held} — a person must close: tradefleet stop ADDRESS --flatten, or at the venue"


def _closes_retrying(closes: Sequence[CloseRetrying]) -> str:
    """The positions whose flatten close the venue keeps refusing, and what a person can do."""
    held = "; ".join(
        f"{close.position:.10g} {close.symbol} (refused {close.refusals} times in a row since "
        f"{_ts(close.since_ts)}, last: {close.code or 'no reason code'})"
        for close in closes
    )
    return (
        f"{held} — sent again at each bar; a person may close: tradefleet stop ADDRESS "
        "--flatten, or at the venue"
    )


def _positions_table(positions: Sequence[PositionView]) -> Table:
    table = Table(title="positions")
    for column in ("symbol", "quantity", "avg price", "mark", "unrealized", "realized", "opened"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for p in positions:
        table.add_row(
            p.symbol,
            f"{p.quantity:.10g}",
            _num(p.average_price, 4),
            _num(p.mark, 4),
            _num(p.unrealized_pnl),
            _num(p.realized_pnl),
            _ts(p.opened_ts),
        )
    return table


def _orders_table(orders: Sequence[OrderView]) -> Table:
    table = Table(title="orders")
    columns = ("id", "symbol", "side", "type", "qty", "filled", "price", "status", "parent")
    for column in columns:
        table.add_column(column)
    for o in orders:
        table.add_row(
            o.client_order_id,
            o.symbol,
            o.side,
            o.order_type + (" (reduce)" if o.reduce_only else ""),
            f"{o.quantity:.10g}",
            f"{o.filled:.10g}",
            _num(o.price, 4),
            # Why it has its status (a cancel's, a rejection's words) beside the status itself.
            o.status + (f": {o.status_reason}" if o.status_reason else ""),
            o.parent_id or "",
        )
    return table


def _ids_table(title: str, columns: Sequence[str], id_columns: frozenset[str]) -> Table:
    """A table whose id columns a narrow terminal folds onto more lines but never cuts: an
    id shown as ``tf0d7fb…`` could not be looked up."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold" if column in id_columns else "ellipsis")
    return table


def _order_details_table(orders: Sequence[OrderView]) -> Table:
    """Why each order was sent, what it filled at and cost, what it protects and the venue's
    id: a table of its own beside ``orders``, so that neither is too wide for a terminal."""
    columns = (
        "id",
        "tag",
        "avg fill",
        "fees",
        "decided at",
        "stop-loss",
        "take-profit",
        "venue id",
    )
    table = _ids_table("order details", columns, frozenset({"id", "venue id"}))
    for o in orders:
        table.add_row(
            o.client_order_id,
            o.tag,
            _num(o.average_fill_price, 4),
            _num(o.fees),
            _num(o.reference_price, 4),
            _num(o.stop_loss, 4),
            _num(o.take_profit, 4),
            o.venue_order_id or "-",
        )
    return table


def _trades_table(trades: Sequence[TradeView]) -> Table:
    table = Table(title="trades")
    # Funding (perpetual futures) only where a trade has some: a spot bot's table stays narrow.
    funded = any(t.funding for t in trades)
    columns = ("#", "symbol", "side", "qty", "entry", "exit", "net pnl", "fees")
    for column in (*columns, *(("funding",) if funded else ()), "closed"):
        table.add_column(column)
    for t in trades:
        table.add_row(
            str(t.seq),
            t.symbol,
            "long" if t.direction > 0 else "short",
            f"{t.quantity:.10g}",
            _num(t.entry_price, 4),
            _num(t.exit_price, 4),
            _num(t.net_pnl),
            _num(t.fees),
            *((_num(t.funding),) if funded else ()),
            _ts(t.exit_ts),
        )
    return table


def _trade_reasons_table(trades: Sequence[TradeView]) -> Table:
    """Why each trade opened and closed — the reasons of its opening and closing fills (the
    order's tag, or untagged, its type) — and by which orders ('-': the journal cannot tell):
    a table of its own beside ``trades``, so that neither is too wide for a terminal."""
    columns = ("#", "entry reason", "entry order", "exit reason", "exit order")
    table = _ids_table("trade reasons", columns, frozenset({"entry order", "exit order"}))
    for t in trades:
        table.add_row(
            str(t.seq),
            t.entry_reason,
            t.entry_order_id or "-",
            t.exit_reason,
            t.exit_order_id or "-",
        )
    return table


def _event_line(event: RuntimeEvent) -> str:
    data = " ".join(f"{k}={v}" for k, v in event.data.items())
    return f"{_ts(event.ts)} #{event.seq} {event.kind.value:<7} {event.message} {data}".rstrip()
