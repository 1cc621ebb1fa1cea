"""The ``tradefleet`` command: backtest, run, serve, control a running bot, report, plugins."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tradefleet_runtime.errors import DataError, JournalError, PluginError, SpecError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.metrics import compute_figures
from tradefleet_runtime.report.table import report_table
from tradefleet_runtime.service.control_args import add_control_commands
from tradefleet_runtime.service.serve_args import add_serve_command
from tradefleet_runtime.session import BotSession, RunOutcome, assemble, wall_clock
from tradefleet_runtime.spec import Mode, load_manifest

PROGRESS_EVERY = 2048


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradefleet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    backtest = commands.add_parser("backtest", help="replay a bot's data through its strategy")
    backtest.add_argument("manifest", type=Path)
    backtest.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object"
    )
    backtest.add_argument("--plot", type=Path, help="write the equity curve to this PNG file")
    backtest.add_argument(
        "--journal", type=Path, help="journal file (default journals/NAME.sqlite)"
    )
    backtest.add_argument("--no-progress", action="store_true")

    run = commands.add_parser("run", help="run a paper bot in the foreground on the wall clock")
    run.add_argument("manifest", type=Path)
    run.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="csv replay speed: 1 is real time, 3600 plays an hour a second, 0 no waiting",
    )
    run.add_argument("--journal", type=Path)

    report = commands.add_parser("report", help="reprint the report of a journal's runs")
    report.add_argument("journal", type=Path)
    report.add_argument("--run", help="run id (default: the latest)")
    report.add_argument("--json", action="store_true")

    add_serve_command(commands)
    add_control_commands(commands)
    # Commands other distributions add (the operator adds `fleet`) through the entry-point group
    # `tradefleet.cli`: the runtime never imports them by name, and loads one only when used.
    for extension in metadata.entry_points(group="tradefleet.cli"):
        extra = commands.add_parser(
            extension.name,
            help=f"{extension.name} commands ({extension.value.split(':')[0]})",
            add_help=False,
        )
        extra.add_argument("arguments", nargs=argparse.REMAINDER)
        extra.set_defaults(extension=extension)

    for name, summary in (
        ("optimize", "search a strategy's params (tradefleet optimize MANIFEST --space S.yaml)"),
        ("walkforward", "walk-forward analysis (tradefleet walkforward MANIFEST --space S.yaml)"),
    ):  # listed for --help; main() hands their arguments to tradefleet_runtime.optimize
        commands.add_parser(name, help=summary, add_help=False)

    plugins = commands.add_parser("plugins", help="plugin commands")
    plugin_commands = plugins.add_subparsers(dest="plugins_command", required=True)
    listing = plugin_commands.add_parser("list", help="every plugin with kind, version, source")
    listing.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] in (["optimize"], ["walkforward"]):
        # They parse their own arguments, --help included (tradefleet_runtime.optimize).
        from tradefleet_runtime.optimize import commands as optimize_commands

        run_optimize = getattr(optimize_commands, f"{arguments[0]}_main")
        return int(run_optimize(arguments[1:]))
    args = _parser().parse_args(arguments)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Console()
    err = Console(stderr=True)
    try:
        extension = getattr(args, "extension", None)
        if extension is not None:
            run_extension: Callable[[list[str]], int] = extension.load()
            return run_extension(list(args.arguments))  # main(argv after the command name)
        if getattr(args, "control_command", None):
            # Loaded only when used: grpc is no business of a backtest.
            from tradefleet_runtime.service.cli_control import run_control_command

            return run_control_command(args)
        if args.command == "backtest":
            return _backtest(args, out, err)
        if args.command == "run":
            return _run(args, out, err)
        if args.command == "report":
            return _report(args, out)
        if args.command == "serve":
            from tradefleet_runtime.service.serve import run_serve

            return run_serve(args)
        return _plugins_list(args, out)
    except SpecError as error:
        err.print(f"[bold red]refused[/]: {error}", markup=True, highlight=False)
        return 2
    except (DataError, PluginError) as error:
        err.print(f"[bold red]error[/]: {error}", markup=True, highlight=False)
        return 2
    except JournalError as error:
        err.print(f"[bold red]error[/]: {error}", markup=True, highlight=False)
        return 1


def _journal_path(given: Path | None, bot: str) -> Path:
    return given if given is not None else Path("journals") / f"{bot}.sqlite"


def _with_progress(bars: Iterator[Bar], total: int, console: Console) -> Iterator[Bar]:
    columns = (TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("bars", total=total)
        count = 0
        for bar in bars:
            yield bar
            count += 1
            if count % PROGRESS_EVERY == 0:
                progress.update(task, completed=count)
        progress.update(task, completed=count)


def _backtest(args: argparse.Namespace, out: Console, err: Console) -> int:
    manifest = load_manifest(args.manifest)
    if manifest.spec.mode is not Mode.BACKTEST:
        err.print(
            f"note: {args.manifest} is a {manifest.spec.mode.value} bot; backtesting it anyway"
        )
    bot = assemble(manifest, PluginRegistry.discover(), args.manifest.parent, str(args.manifest))
    journal = Journal(_journal_path(args.journal, bot.name), batched=True)
    try:
        session = BotSession(bot, journal)
        if not args.no_progress and not args.json and bot.feed is not None:
            total = bot.feed.report().bars
            session.pacer = lambda bars: _with_progress(iter(bars), total, err)
        outcome = session.run_to_end()
    finally:
        journal.close()
    if args.plot:
        from tradefleet_runtime.report.plot import write_plot

        write_plot(
            args.plot,
            f"{bot.name} — equity",
            list(outcome.result.equity_ts),
            list(outcome.result.equity),
            outcome.result.trades,
        )
    if args.json:
        out.print_json(json.dumps(_json_figures(outcome)))
        return 0
    _print_outcome(out, bot.name, outcome)
    if args.plot:
        out.print(f"plot: {args.plot}")
    return 0


# The figures `backtest --json` prints, in this order: scripts rely on these keys.
JSON_KEYS = (
    "trades",
    "win_rate",
    "net_pnl",
    "fees",
    "final_equity",
    "return_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "profit_factor",
    "exposure_pct",
)


def _json_figures(outcome: RunOutcome) -> dict[str, object]:
    figures = outcome.figures.as_json()
    return {key: figures[key] for key in JSON_KEYS}


def _print_outcome(out: Console, name: str, outcome: RunOutcome) -> None:
    result = outcome.result
    title = f"{name}: {result.bars:,} bars"
    if result.history_bars:
        title += f" (after {result.history_bars:,} bars of warm-up)"
    out.print(report_table(title, outcome.figures, result.currency))
    if result.feed is not None:
        for note in result.feed.notes:
            out.print(f"data: {note}")
    for position in result.open_positions:
        out.print(
            f"open at the end: {position.symbol} {position.quantity:+g}"
            f" @ {position.average_price:g}"
        )
    vetoes = {k: v for k, v in result.risk_decisions.items() if k[1] == "veto"}
    for (plugin, _action), count in sorted(vetoes.items()):
        out.print(f"risk: {plugin} vetoed {count} order(s)")
    out.print(f"journal: {result.journal_path} (run {result.run_id})")


def _run(args: argparse.Namespace, out: Console, err: Console) -> int:
    manifest = load_manifest(args.manifest)
    if manifest.spec.mode is Mode.BACKTEST:
        err.print("[bold red]refused[/]: spec.mode is backtest; use `tradefleet backtest`")
        return 2
    if manifest.spec.mode is Mode.LIVE:
        err.print("[bold red]refused[/]: live bots run as a service (`tradefleet serve`)")
        return 2
    bot = assemble(manifest, PluginRegistry.discover(), args.manifest.parent, str(args.manifest))
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        err.print(f"{signal.Signals(signum).name}: stopping after the current bar")
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    journal = Journal(_journal_path(args.journal, bot.name), durable=True)
    try:
        out.print(
            f"{bot.name}: paper trading {', '.join(manifest.spec.market.symbols)} "
            f"(speed {args.speed:g}×); Ctrl-C stops"
        )
        session = BotSession(
            bot, journal, pacer=wall_clock(args.speed, stop), should_stop=stop.is_set
        )
        outcome = session.run_to_end()
    finally:
        journal.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print_outcome(out, bot.name, outcome)
    if outcome.result.open_positions:
        names = ", ".join(f"{p.symbol} {p.quantity:+g}" for p in outcome.result.open_positions)
        out.print(f"[yellow]warning[/]: open positions left: {names}")
    return 0


def _report(args: argparse.Namespace, out: Console) -> int:
    if not args.journal.exists():
        raise DataError(f"{args.journal}: no such journal")
    journal = Journal(args.journal)
    try:
        runs = journal.runs()
        if not runs:
            raise DataError(f"{args.journal}: the journal has no runs")
        chosen = [r for r in runs if r.run_id == args.run] if args.run else runs[-1:]
        if not chosen:
            raise DataError(
                f"{args.journal}: no run {args.run!r} (runs: {', '.join(r.run_id for r in runs)})"
            )
        run = chosen[0]
        timestamps, equity, exposure = journal.equity_curve(run.run_id)
        trades = journal.trades(run.run_id)
        fees = journal.fees(run.run_id)
    finally:
        journal.close()
    figures = compute_figures(
        initial=run.initial_capital,
        timestamps=timestamps,
        equity=equity,
        exposure=exposure,
        trades=trades,
        fees=float(fees),
    )
    if args.json:
        out.print_json(json.dumps(figures.as_json()))
        return 0
    out.print(report_table(f"{run.bot} run {run.run_id} ({run.status})", figures, run.currency))
    return 0


def _plugins_list(args: argparse.Namespace, out: Console) -> int:
    registry = PluginRegistry.discover()
    rows = []
    for plugin in registry.all():
        schema = plugin.spec.params_schema()
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        params = ", ".join(
            f"{name}{'*' if name in required else ''}: {_type_of(prop)}"
            for name, prop in properties.items()
        )
        rows.append(
            {
                "kind": plugin.kind.value,
                "name": plugin.name,
                "version": plugin.spec.version,
                "source": plugin.source,
                "summary": plugin.spec.summary,
                "contract": plugin.spec.contract,
                "capabilities": sorted(c.value for c in plugin.spec.declared),
                "params": params,
                "params_schema": schema,
            }
        )
    if args.json:
        out.print_json(json.dumps(rows))
        return 0
    table = Table(title="tradefleet plugins")
    for column in ("kind", "name", "version", "source", "capabilities", "params (* required)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        row["capabilities"] = ", ".join(row["capabilities"]) or "-"
        table.add_row(
            *(
                str(row[key])
                for key in ("kind", "name", "version", "source", "capabilities", "params")
            )
        )
    out.print(table)
    for (kind, name), sources in registry.conflicts.items():
        out.print(f"[yellow]conflict[/]: {kind} {name!r} provided by {', '.join(sources)}")
    for problem in registry.load_errors:
        out.print(f"[red]load error[/]: {problem}", highlight=False)
    return 0


def _type_of(prop: dict[str, object]) -> str:
    if "type" in prop:
        return str(prop["type"])
    if "anyOf" in prop:
        options = prop["anyOf"]
        if isinstance(options, list):
            return "|".join(str(o.get("type", "object")) for o in options if isinstance(o, dict))
    if "$ref" in prop or "allOf" in prop:
        return "object"
    if "enum" in prop:
        return "enum"
    return "any"


if __name__ == "__main__":
    sys.exit(main())
