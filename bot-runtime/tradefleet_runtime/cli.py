"""The tradefleet command: backtest, run, serve, control a running bot, report, plugins."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from tradefleet_runtime import logs, terminal
from tradefleet_runtime.cli_auth import auth_group
from tradefleet_runtime.cli_control_commands import control_commands
from tradefleet_runtime.cli_plugins import plugins_group
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.stop_moves import refused_move
from tradefleet_runtime.errors import (
    DataError,
    JournalError,
    PluginError,
    SpecError,
    StrategyError,
    StrategyRefused,
)
from tradefleet_runtime.indicators import Indicator
from tradefleet_runtime.journal import REFUSED_MOVE, Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.bars import BarRecorder
from tradefleet_runtime.report.json_schema import report_json, trades_json
from tradefleet_runtime.report.metrics import Report, ReportInput, build_report
from tradefleet_runtime.report.sources import finish_backtest, from_journal, from_result
from tradefleet_runtime.report.table import report_table
from tradefleet_runtime.report.trades_table import trades_table
from tradefleet_runtime.service.serve_args import serve_command
from tradefleet_runtime.session import (
    Bot,
    BotSession,
    RunOutcome,
    assemble,
    started_warmup,
    wall_clock,
)
from tradefleet_runtime.spec import Mode, load_manifest
from tradefleet_runtime.terminal import labelled
from tradefleet_runtime.trade_log import RunProgress, TradeLogListener
from tradefleet_runtime.vector_backtest import (
    VectorBacktest,
    columns_of,
    vector_backtest,
    vector_refusal,
)

PROGRESS_EVERY = 2048

#: Exit codes of every command.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

# --- commands handed to a function main(argv) -> int -----------------------------------------
#
# A command whose body parses its own arguments (argparse or anything else) is registered as a
# pass-through: the CLI hands it every argument after the command's name, --help included, and
# returns its exit code; it is imported only when it runs. Commands other distributions add
# (the operator adds fleet) arrive the same way through the entry-point group tradefleet.cli,
# whose objects may also be click commands. To register a runtime command, add a line here:
#
#     "optimize": ("tradefleet_runtime.optimize.commands:optimize_main", "Search ..."),
#     "walkforward": ("tradefleet_runtime.optimize.commands:walkforward_main", "Walk ..."),
PASS_THROUGH: dict[str, tuple[str, str]] = {
    "optimize": (
        "tradefleet_runtime.optimize.commands:optimize_main",
        "Search a strategy's params over a space (Optuna, every core).",
    ),
    "walkforward": (
        "tradefleet_runtime.optimize.commands:walkforward_main",
        "Walk-forward analysis: params chosen in-sample, judged out-of-sample only.",
    ),
    "mt5-bridge": (
        "tradefleet_runtime.mt5_bridge.command:main",
        "Serve one MetaTrader 5 terminal over gRPC, for bots on Linux (Windows host or Wine).",
    ),
}

#: One-line help of known extension commands, so that tradefleet --help imports none of them.
EXTENSION_HELP = {
    "fleet": "Act on many TradingBots at once, by label: stop, resume.",
    "funding-history": "Download a perpetual's funding rates into a CSV the paper broker reads.",
}

EXTENSION_GROUP = "tradefleet.cli"


def _call_target(target: Any, name: str, arguments: list[str]) -> int:
    """Run a pass-through target: a click command, or a function ``main(argv) -> int``."""
    saved = sys.argv
    # A main() that falls back to sys.argv[1:] when given no arguments sees these too.
    sys.argv = [f"tradefleet {name}", *arguments]
    try:
        if isinstance(target, click.Command):
            result = target.main(arguments, prog_name=f"tradefleet {name}", standalone_mode=False)
        else:
            result = target(arguments)
    except SystemExit as done:  # argparse's --help (0) and usage errors (2)
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_FAILURE)
    except (click.ClickException, click.Abort):
        raise
    except Exception as error:  # a failure, told in one line (the traceback at debug level)
        logging.getLogger("tradefleet.cli").debug("tradefleet %s failed", name, exc_info=True)
        # The type too: "boom" alone does not say whether a file, a plugin or a bug failed.
        said = str(error) if isinstance(error, StrategyError) else _with_type(error)
        raise click.ClickException(f"tradefleet {name}: {said}") from error
    finally:
        sys.argv = saved
    return result if isinstance(result, int) else EXIT_OK


def _with_type(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def pass_through(name: str, help: str, load: Callable[[], Any], group: str = "") -> click.Command:
    """A command that hands its arguments to what ``load()`` returns (imported when it runs)."""

    def run(arguments: tuple[str, ...]) -> int:
        try:
            target = load()
        except ImportError as error:
            extra = " (install the operator extra: pip install 'tradefleet[operator]')"
            hint = extra if name == "fleet" else ""
            raise click.ClickException(f"tradefleet {name} cannot load: {error}{hint}") from error
        return _call_target(target, name, list(arguments))

    return click.Command(
        name,
        callback=run,
        params=[click.Argument(["arguments"], nargs=-1, type=click.UNPROCESSED)],
        help=help + f"\n\nRun 'tradefleet {name} --help' for its commands and options.",
        short_help=help,
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
        add_help_option=False,
    )


def _first_line(text: str | None) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line.replace("``", "").strip()


class TradefleetGroup(click.Group):
    """The root group: built-in commands, pass-through commands and entry-point commands, the
    last two imported only when they run."""

    def _extensions(self) -> dict[str, metadata.EntryPoint]:
        found: dict[str, metadata.EntryPoint] = {}
        for point in metadata.entry_points(group=EXTENSION_GROUP):
            if point.name not in self.commands and point.name not in PASS_THROUGH:
                found.setdefault(point.name, point)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *PASS_THROUGH, *self._extensions()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in PASS_THROUGH:
            target, help = PASS_THROUGH[cmd_name]
            own = metadata.EntryPoint(cmd_name, target, "")
            return pass_through(cmd_name, help, own.load)
        extension = self._extensions().get(cmd_name)
        if extension is None:
            return None
        help = EXTENSION_HELP.get(cmd_name) or f"Commands of {_dist_name(extension)}."
        return pass_through(cmd_name, help, extension.load)


def _dist_name(point: metadata.EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return str(dist.name) if dist is not None else "an installed package"


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(
    cls=TradefleetGroup,
    context_settings=CONTEXT,
    epilog="Exit codes: 0 done, 1 failed, 2 bad usage or a refused manifest.",
)
@click.version_option(package_name="tradefleet", prog_name="tradefleet")
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    envvar="TRADEFLEET_LOG_LEVEL",
    help="Least severe log level shown (env TRADEFLEET_LOG_LEVEL).",
)
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="auto",
    show_default=True,
    envvar="TRADEFLEET_LOG_FORMAT",
    help="Logs on stderr: text, json (one object a line), or auto: text on a terminal, "
    "json elsewhere (a pod). Env TRADEFLEET_LOG_FORMAT.",
)
def tradefleet(log_level: str, log_format: str) -> None:
    """Run trading bots: backtest, paper-trade, serve, control a running bot, report, plugins.

    A bot is a TradingBot manifest (YAML). Start with:

    \b
      tradefleet backtest examples/bots/eurusd-ema-cross.yaml
      tradefleet plugins list
    """
    logs.choose(log_format, log_level)
    logs.configure_logging()


_MANIFEST = click.Path(path_type=Path, exists=True, dir_okay=False)
_FILE = click.Path(path_type=Path, dir_okay=False)


def _plot_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A --plot file matplotlib can write: it picks the format by the file's suffix, and an
    unknown one failed only after the whole run (a missing suffix made it write NAME.png)."""
    if value is None:
        return None
    from tradefleet_runtime.report.plot import image_formats

    formats = image_formats()
    if formats is None:  # no plot extra: refused as such before the run
        return value
    if value.suffix.lower().lstrip(".") not in formats:
        raise click.BadParameter(
            f"{value}: name a file ending in one of matplotlib's formats:"
            f" {', '.join(sorted(formats))}",
            ctx=ctx,
            param=param,
        )
    return value


@tradefleet.command(context_settings=CONTEXT)
@click.argument("manifest", type=_MANIFEST)
@click.option("--json", "json_", is_flag=True, help="Print the figures as one JSON object.")
@click.option(
    "--plot",
    type=_FILE,
    callback=_plot_file,
    help="Write a candlestick chart (trades, equity, drawdown) to this image file, PNG or"
    " another format matplotlib writes, by its suffix; a second symbol's goes beside it as"
    " NAME-SYMBOL.png (needs the plot extra).",
)
@click.option("--journal", type=_FILE, help="Journal file (default: journals/NAME.sqlite).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--engine",
    "bar_by_bar",
    is_flag=True,
    help="Run bar by bar on the event engine even when the vectorised path could (the same"
    " figures and journal, slower).",
)
def backtest(**options: Any) -> int:
    """Replay a bot's data through its strategy; print the figures.

    A bot whose strategy states its run as target positions (ema-cross without brackets), on
    the paper broker with one sizer, is backtested by the vectorised path: the same figures,
    report and journal rows as the event engine's, many times faster. Any other bot, or
    --plot, or --engine, runs bar by bar.
    """
    return _backtest(_namespace(options), terminal.console(), terminal.console(stderr=True))


@tradefleet.command(context_settings=CONTEXT)
@click.argument("manifest", type=_MANIFEST)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Replay speed of a csv feed: 1 is real time, 3600 plays an hour a second, 0 no waiting.",
)
@click.option("--journal", type=_FILE, help="Journal file (default: journals/NAME.sqlite).")
@click.option(
    "--fresh",
    is_flag=True,
    help="Delete the bot's journal first and start afresh (asks first; --yes does not).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting with --fresh.")
@click.option("--no-progress", is_flag=True, help="No progress line on a terminal.")
def run(**options: Any) -> int:
    """Paper-trade a bot in the foreground, on the wall clock.

    Every order, fill, trade close and risk veto is logged as one line; a terminal also shows
    a progress line. Ctrl-C or SIGTERM stop after the current bar and apply the bot's stop
    policy. A restarted bot continues from its journal unless --fresh.
    """
    return _run(_namespace(options), terminal.console(), terminal.console(stderr=True))


@tradefleet.command(context_settings=CONTEXT)
@click.argument("journal", type=_FILE)
@click.option("--run", "run", help="Run id (default: the latest).")
@click.option("--json", "json_", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--trades", is_flag=True, help="List every trade (times, prices, P&L, reasons).")
def report(**options: Any) -> int:
    """Reprint the report of a run from its journal.

    JOURNAL is the file a run wrote: journals/NAME.sqlite by default, or the --journal file;
    make demo writes build/demo/eurusd-ema-cross.sqlite.
    """
    return _report(_namespace(options), terminal.console())


def _namespace(options: dict[str, Any]) -> argparse.Namespace:
    if "json_" in options:
        options["json"] = options.pop("json_")
    return argparse.Namespace(**options)


tradefleet.add_command(serve_command)
for _command in control_commands():
    tradefleet.add_command(_command)
tradefleet.add_command(plugins_group)
tradefleet.add_command(auth_group)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: run one command, return its exit code (0 ok, 1 failure, 2 usage)."""
    err = terminal.console(stderr=True)
    try:
        result = tradefleet.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="tradefleet",
            standalone_mode=False,
        )
    except click.UsageError as error:
        error.show()
        return EXIT_USAGE
    except click.ClickException as error:
        error.show()
        return EXIT_FAILURE
    except click.Abort:
        err.print("aborted")
        return EXIT_FAILURE
    except SpecError as error:
        err.print(labelled("refused", "bold red", error))
        return EXIT_USAGE
    except (DataError, PluginError, StrategyRefused) as error:
        err.print(labelled("error", "bold red", error))
        return EXIT_USAGE
    except JournalError as error:
        err.print(labelled("error", "bold red", error))
        return EXIT_FAILURE
    except StrategyError as error:
        # A bug in the strategy plugin (the message names it, the hook and the bar): one line,
        # exit 1 as any failed run; the traceback into the plugin's code at debug level.
        logging.getLogger("tradefleet.cli").debug("the strategy failed", exc_info=error)
        err.print(labelled("error", "bold red", error))
        if not logging.getLogger("tradefleet.cli").isEnabledFor(logging.DEBUG):
            err.print("(--log-level debug shows the traceback)", highlight=False)
        return EXIT_FAILURE
    except ConnectionError as error:  # a venue that cannot be reached (serve waits for it)
        err.print(labelled("error", "bold red", error))
        return EXIT_FAILURE
    return result if isinstance(result, int) else EXIT_OK


def print_json(out: Console, document: Any) -> None:
    """A JSON document for programs, as ``json`` writes it: rich's highlighter would cost more
    than a short backtest's whole report (and adds nothing to a pipe)."""
    out.file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


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


def _plot_unavailable(err: Console) -> bool:
    """Say so before a run when --plot cannot be drawn (not as a traceback after it)."""
    from tradefleet_runtime.report.plot import INSTALL_HINT, plotting_missing

    missing = plotting_missing()
    if missing is None:
        return False
    err.print(
        labelled(
            "refused",
            "bold red",
            f"--plot needs the plot extra ({missing} not importable): {INSTALL_HINT}",
        )
    )
    return True


def _backtest(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.plot and _plot_unavailable(err):
        return 2
    manifest = load_manifest(args.manifest)
    if manifest.spec.mode is not Mode.BACKTEST:
        err.print(
            f"note: {args.manifest} is a {manifest.spec.mode.value} bot; backtesting it anyway",
            highlight=False,
        )
    registry = PluginRegistry.discover()
    bot = assemble(manifest, registry, args.manifest.parent, str(args.manifest))
    # Sees the traded bars: first open/last close per symbol and, for a chart, OHLC arrays and
    # each declared indicator's value at those bars.
    recorder = BarRecorder(ohlc=args.plot is not None, indicators=partial(_declared, bot))
    with _run_journal(_journal_path(args.journal, bot.name), batched=True) as journal:
        vectorised, bars = _vectorised(args, bot, journal, registry)
        if vectorised is not None:
            outcome = vectorised.outcome
            ranges = vectorised.ranges
            err.print(
                "note: backtested by the vectorised path (the event engine's figures and "
                "journal rows; --engine runs it bar by bar)",
                highlight=False,
            )
        else:
            session = BotSession(bot, journal, bars=bars)
            pacer = recorder.watch
            if not args.no_progress and not args.json and bot.feed is not None:
                total = bot.feed.report().bars
                pacer = lambda bars: _with_progress(recorder.watch(bars), total, err)  # noqa: E731
            session.pacer = pacer
            outcome = session.run_to_end()
            ranges = recorder.ranges()
        result = outcome.result
        report_input = finish_backtest(journal, result, outcome.open_trades, ranges)
    report = build_report(report_input)
    if args.plot:
        _write_charts(args.plot, bot.name, recorder, report_input)
    if args.json:
        print_json(out, report_json(report, result.currency))
        return 0
    _print_outcome(out, bot.name, outcome, report)
    if args.plot:
        out.print(f"plot: {args.plot}")
    return 0


#: A journal's files: the database, SQLite's write-ahead log and index, a paper bot's lock.
_JOURNAL_SUFFIXES = ("", "-wal", "-shm", ".lock")


@contextmanager
def _run_journal(path: Path, **options: Any) -> Iterator[Journal]:
    """The journal of a run, closed at the end. Files it created are removed again when the
    command fails before a run started in it (a missing data file, a feed that refuses its
    params): a refused backtest leaves no empty journal behind. A journal that was there is
    never removed."""
    files = [path.with_name(path.name + suffix) for suffix in _JOURNAL_SUFFIXES]
    existed = {file for file in files if file.exists()}
    journal = Journal(path, **options)
    try:
        yield journal
    except BaseException:
        journal.close()
        if path not in existed and not journal.run_id:
            for file in files:
                if file not in existed:
                    file.unlink(missing_ok=True)
        raise
    journal.close()


def _vectorised(
    args: argparse.Namespace, bot: Bot, journal: Journal, registry: PluginRegistry
) -> tuple[VectorBacktest | None, Iterable[Bar] | None]:
    """The backtest by the vectorised path when the bot allows it; else the bars read for it
    (None: not read yet), for the event engine. Why the engine runs it is logged. The
    strategy is started first on a bot of its own (``started_warmup``): params its
    ``on_start`` refuses are refused as the engine's run refuses them, never backtested."""
    if args.plot:
        why: str | None = "--plot charts the indicators the engine computes bar by bar"
    elif args.bar_by_bar:
        why = "--engine"
    else:
        why = vector_refusal(bot)
    bars: Iterable[Bar] | None = None
    if why is None and bot.feed is None:
        why = "no data feed"
    elif why is None and bot.feed is not None:
        bars = bot.feed.bars(BotSession(bot, journal).feed_request())
        columns = columns_of(bars, bot)
        if columns is None:
            why = "the feed's bars are not one series of columns"
        else:
            warmup = started_warmup(bot.manifest, registry, bot.base_dir)
            done = vector_backtest(bot, journal, columns, warmup)
            if not isinstance(done, str):
                return done, None
            why = done
    logging.getLogger("tradefleet.cli").info("%s: backtested bar by bar: %s", bot.name, why)
    return None, bars


def _write_charts(path: Path, name: str, recorder: BarRecorder, data: ReportInput) -> None:
    from tradefleet_runtime.report.plot import write_charts

    symbols = recorder.symbols()
    write_charts(
        path,
        name,
        {symbol: recorder.ohlc(symbol) for symbol in symbols},
        data.timeframe_s,
        data.timestamps,
        data.equity,
        data.trades,
        overlays={symbol: recorder.overlays(symbol) for symbol in symbols},
        panels={symbol: recorder.panels(symbol) for symbol in symbols},
    )


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _declared(bot: Bot) -> list[tuple[tuple[str, int], Indicator]]:
    """The indicators the bot's strategy declared (in on_start: asked for after it ran)."""
    book = bot.strategy.indicator_book
    return list(book.indicators) if book is not None else []


def _print_outcome(
    out: Console, name: str, outcome: RunOutcome, report: Report | None = None
) -> None:
    result = outcome.result
    title = f"{name}: {result.bars:,} bars"
    if result.history_bars:
        title += f" (after {result.history_bars:,} bars of warm-up)"
    if report is None:
        report = build_report(from_result(result))
    out.print(report_table(title, report, result.currency))
    if result.feed is not None:
        for note in result.feed.notes:
            out.print(f"data: {note}")
    for position in result.open_positions:
        out.print(
            f"open at the end: {position.symbol} {position.quantity:+.10g}"
            f" @ {position.average_price:.10g}"
        )
    vetoes = sorted(
        ((plugin, REFUSED_MOVE if refused_move(why) else "veto",
          result.veto_reasons[(plugin, why)], count)
         for (plugin, why), count in result.vetoes.items()),
        key=lambda row: (row[0], row[1] == REFUSED_MOVE, -row[3], row[2]),
    )  # fmt: skip
    for line in risk_lines(vetoes):
        out.print(line, highlight=False)
    rejected = sum(result.rejections.values())
    if rejected:
        reasons = "; ".join(f"{n}× {why}" for why, n in result.rejections.most_common(3))
        out.print(f"broker: rejected {rejected} order(s): {reasons}", highlight=False)
    shown = 10  # tier changes can be many over years of bars: the first ones and a count
    for note in result.risk_notes[:shown]:
        stamp, _, message = note.partition(" ")
        out.print(f"risk: {_utc(int(stamp))} {message}", highlight=False)
    if len(result.risk_notes) > shown:
        out.print(f"risk: … and {len(result.risk_notes) - shown} more tier changes and locks")
    for plugin, reason in sorted(result.risk_locks.items()):
        out.print(
            Text.assemble(
                ("risk lock", "bold red"),
                f" in force: {plugin}: {reason} (only `tradefleet reset-risk` on a running bot"
                " clears it)",
            )
        )
    out.print(f"journal: {result.journal_path} (run {result.run_id})")


def _run(args: argparse.Namespace, out: Console, err: Console) -> int:
    manifest = load_manifest(args.manifest)
    if manifest.spec.mode is Mode.BACKTEST:
        err.print(labelled("refused", "bold red", "spec.mode is backtest; use tradefleet backtest"))
        return EXIT_USAGE
    if manifest.spec.mode is Mode.LIVE:
        err.print(labelled("refused", "bold red", "live bots run as a service (tradefleet serve)"))
        return EXIT_USAGE
    journal_path = _journal_path(args.journal, manifest.metadata.name)
    if args.fresh:
        _start_afresh(journal_path, args.yes, err)
    bot = assemble(manifest, PluginRegistry.discover(), args.manifest.parent, str(args.manifest))
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        err.print(f"{signal.Signals(signum).name}: stopping after the current bar")
        stop.set()

    currency = manifest.spec.capital.currency
    trade_log = TradeLogListener(bot.name, currency)
    progress = RunProgress(err, currency) if err.is_terminal and not args.no_progress else None

    pump = _EnginePump()

    def prepare(engine: Engine) -> None:
        pump.attach(engine)
        trade_log.attach(engine)
        if progress is not None:
            progress.prepare(engine)

    # A live feed's bars arrive when they close: pacing them again would leave a restarted
    # bot's caught-up bars one timeframe apart, trading ever later than the market.
    paced = wall_clock(0 if bot.live_feed else args.speed, stop)
    pacer = paced if progress is None else (lambda bars: progress.wrap(paced(bars)))
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _run_journal(journal_path, durable=True) as journal:
            out.print(
                f"{bot.name}: paper trading {', '.join(manifest.spec.market.symbols)} "
                f"(speed {args.speed:.10g}×); Ctrl-C stops"
            )
            session = BotSession(
                bot, journal, pacer=pacer, should_stop=stop.is_set, prepare=prepare, idle=pump
            )
            outcome = session.run_to_end()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print_outcome(out, bot.name, outcome)
    if outcome.result.open_positions:
        names = ", ".join(f"{p.symbol} {p.quantity:+.10g}" for p in outcome.result.open_positions)
        out.print(labelled("warning", "yellow", f"open positions left: {names}"))
    return EXIT_OK


class _EnginePump:
    """``FeedRequest.idle`` for ``tradefleet run``: apply a venue broker's events while a live
    feed waits for its next bar (``serve`` does this, and serves control calls, itself)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self) -> None:
        if self.engine is not None:
            self.engine.pump()


def _start_afresh(journal_path: Path, yes: bool, err: Console) -> None:
    """Delete a paper bot's journal (after asking) so that the run starts a new account."""
    files = [journal_path.with_name(journal_path.name + s) for s in ("", "-wal", "-shm")]
    if not journal_path.exists():
        return
    if not yes:
        click.confirm(
            f"Delete {journal_path} (every run, order, fill and trade of this bot) and start"
            " afresh?",
            abort=True,
            err=True,
        )
    for file in files:
        file.unlink(missing_ok=True)
    err.print(f"deleted {journal_path}: starting afresh")


def _report(args: argparse.Namespace, out: Console) -> int:
    if not args.journal.exists():
        raise DataError(f"{args.journal}: no such journal" + _known_journals())
    # Read-only: a report never creates, migrates or writes a file (a wrong path once became
    # an empty journal, and a running bot's journal is not the report's to change).
    journal = Journal(args.journal, read_only=True)
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
        data = from_journal(journal, run)
        refusals = journal.risk_refusals(run.run_id)
    finally:
        journal.close()
    report = build_report(data)
    if args.json:
        document = report_json(report, run.currency)
        if args.trades:
            document["trade_list"] = trades_json(data.trades)
        print_json(out, document)
        return 0
    title = f"{run.bot} run {run.run_id} ({run.status})"
    out.print(report_table(title, report, run.currency))
    for line in risk_lines(refusals):
        out.print(line, highlight=False)
    if args.trades:
        out.print(trades_table(f"{run.bot} run {run.run_id}: trades", data.trades, run.currency))
    return 0


# A risk decision's action as a summary line says it: a refused MOVE_STOP, journaled as the
# plugin's veto, vetoed no order.
_REFUSAL_SAID = {"veto": "vetoed {} order(s)", REFUSED_MOVE: "had {} stop move(s) refused"}


def risk_lines(refusals: Sequence[tuple[str, str, str, int]], shown: int = 3) -> list[str]:
    """What risk plugins refused, (plugin, action, reason, how many) each plugin's most
    frequent reason first (``Journal.risk_refusals``, a run's vetoes), as a line per plugin and
    action: "risk: PLUGIN vetoed N order(s): 30× <reason>; …", so a chain that vetoes every
    entry says why (a sizer after a rule that needs a size, a lock...) (pure)."""
    grouped: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for plugin, action, reason, count in refusals:
        grouped.setdefault((plugin, action), []).append((reason, count))
    lines = []
    for (plugin, action), reasons in grouped.items():
        total = sum(count for _, count in reasons)
        parts = [f"{count}× {reason or 'no reason given'}" for reason, count in reasons[:shown]]
        if len(reasons) > shown:
            parts.append(f"{len(reasons) - shown} more reason(s) in the journal")
        said = _REFUSAL_SAID.get(action, "shrank {} order(s)").format(total)
        lines.append(f"risk: {plugin} {said}: {'; '.join(parts)}")
    return lines


def _known_journals() -> str:
    found = sorted({*Path("journals").glob("*.sqlite"), *Path("build/demo").glob("*.sqlite")})
    if not found:
        return " (runs write journals/NAME.sqlite unless given --journal)"
    return " (journals here: " + ", ".join(str(p) for p in found[:8]) + ")"


if __name__ == "__main__":
    sys.exit(main())
