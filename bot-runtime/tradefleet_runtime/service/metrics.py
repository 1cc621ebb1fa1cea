"""Prometheus metrics of one bot (prometheus_client).

Names start with ``tradefleet_``. Labels take bounded values only (see
:mod:`~tradefleet_runtime.service.metric_labels`): the bot's name, its symbols, its plugins'
names, its account currency, its team, fixed words for states and outcomes, and risk reason
codes filtered to short identifiers (anything else counts as ``other``). Never order ids, prices
or free text. Account figures and positions are read from the latest status snapshot at scrape
time, so the engine pays nothing per bar for them.

Every series that holds an amount of money carries ``currency`` (the bot's account currency,
one value per bot), so a query that adds bots up must keep it: ``sum by (currency) (...)``, never
a bare ``sum``, or USD, USDT and BTC accounts are added together. ``MONEY_SERIES`` lists them.
``tradefleet_bot_info{bot,strategy,team,mode,broker,currency}`` is 1 and is joined to any bot
series to group by strategy or team::

    sum by (team, currency) (
      tradefleet_equity * on (job, instance, bot) group_left (strategy, team) tradefleet_bot_info
    )

Series per bot: a fixed set, plus two per symbol of the spec (position quantity and notional),
plus the counters and histograms per symbol, plugin, operation and outcome.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tradefleet_runtime.service.api import Phase, StatusSnapshot
from tradefleet_runtime.service.metric_labels import BotLabels

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_REASONS_PER_PLUGIN = 32
#: Sample names whose values are amounts of money: each carries the ``currency`` label.
MONEY_SERIES = frozenset(
    {
        "tradefleet_equity",
        "tradefleet_balance",
        "tradefleet_pnl_today",
        "tradefleet_pnl",
        "tradefleet_position_notional",
        "tradefleet_fees_total",
        "tradefleet_fees_created",
        "tradefleet_funding_paid_total",
        "tradefleet_funding_paid_created",
        "tradefleet_funding_received_total",
        "tradefleet_funding_received_created",
    }
)


class SnapshotCollector(Collector):
    """Gauges read from the latest status snapshot when Prometheus scrapes."""

    def __init__(
        self,
        labels: BotLabels,
        snapshot: Callable[[], StatusSnapshot],
        last_bar_wall: Callable[[], float],
        bar_interval_s: float = 0.0,
    ) -> None:
        self._labels = labels
        self._snapshot = snapshot
        self._last_bar_wall = last_bar_wall
        self._bar_interval_s = bar_interval_s

    def collect(self) -> Iterator[Metric]:
        status = self._snapshot()
        labels = self._labels
        bot, currency = labels.bot, labels.currency

        def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, documentation, labels=["bot"])
            family.add_metric([bot], value)
            return family

        def money(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, documentation, labels=["bot", "currency"])
            family.add_metric([bot, currency], value)
            return family

        info = labels.info()
        bot_info = GaugeMetricFamily(
            "tradefleet_bot_info",
            "1, labelled with the bot's strategy, team, mode, broker and account currency: "
            "join it on (job, instance, bot) to group any series by them.",
            labels=list(info),
        )
        bot_info.add_metric(list(info.values()), 1.0)
        yield bot_info
        if status.phase is not Phase.STARTING or status.last_known:
            # A first start has no account figures until its engine runs: the spec's capital
            # is not the account's equity (a restart shows the last journaled ones).
            yield money(
                "tradefleet_equity", "Account equity in the account currency.", status.equity
            )
            yield money(
                "tradefleet_balance", "Cash balance in the account currency.", status.balance
            )
            yield gauge(
                "tradefleet_drawdown_ratio",
                "Fall from the equity peak (0..1).",
                status.drawdown_pct / 100.0,
            )
            yield money("tradefleet_pnl_today", "P&L since the day's first bar.", status.pnl_today)
            # Not ``..._total``: a gauge (it falls too), and that suffix is a counter's.
            yield money(
                "tradefleet_pnl",
                "P&L since the start (equity less the initial capital).",
                status.pnl_total,
            )
            yield from self._exposure(status)
            yield gauge("tradefleet_open_positions", "Open positions.", status.open_positions)
            yield gauge("tradefleet_open_orders", "Working orders.", status.open_orders)
        if status.closes_stuck or (status.phase is not Phase.STARTING and not status.last_known):
            # Before the engine runs, the journal's refusals of positions still held (read as
            # the last-known account): a 0 there would clear the alert of a position still left
            # to a person, so none is said until the engine knows.
            yield gauge(
                "tradefleet_closes_stuck",
                "Positions a risk plugin's or the stop policy's flatten could not close and will "
                "not send again (refused for a reason no retry changes): a person must close them.",
                len(status.closes_stuck),
            )
        if status.phase is not Phase.STARTING and not status.last_known:
            yield gauge(
                "tradefleet_closes_retrying",
                "Positions a risk plugin's or the stop policy's flatten asked to close that the "
                "venue refused at least twice in a row for reasons a later try may pass: the bot "
                "still sends the close at each bar, the position is open meanwhile.",
                len(status.closes_retrying),
            )
        yield gauge("tradefleet_halted", "1 while the emergency stop holds.", float(status.halted))
        yield gauge("tradefleet_paused", "1 while paused.", float(status.paused))
        # A counter (``tradefleet_bars_total``): the bars handled since the process started
        # only grow; rate() of it is the bar rate.
        bars = CounterMetricFamily(
            "tradefleet_bars", "Bars handled since the process started.", labels=["bot"]
        )
        bars.add_metric([bot], status.bars)
        yield bars
        wall = self._last_bar_wall()
        yield gauge(
            "tradefleet_last_bar_age_seconds",
            "Seconds since the last bar arrived from the feed (wall clock, warm-up history "
            "included) or, before the first, since the run began waiting for bars; -1 while "
            "none is awaited (starting; a backtest before its first bar).",
            time.time() - wall if wall else -1.0,
        )
        if self._bar_interval_s > 0:
            yield gauge(
                "tradefleet_expected_bar_interval_seconds",
                "Wall-clock seconds between bars (timeframe / replay speed): for no-bar alerts.",
                self._bar_interval_s,
            )
        yield gauge(
            "tradefleet_last_bar_timestamp_seconds",
            "Close time of the last bar handled (bot time).",
            status.last_bar_ts,
        )
        phase = GaugeMetricFamily(
            "tradefleet_phase", "1 for the bot's current phase.", labels=["bot", "phase"]
        )
        for value in Phase:
            phase.add_metric([bot, value.value], 1.0 if status.phase is value else 0.0)
        yield phase
        locked = GaugeMetricFamily(
            "tradefleet_risk_locked",
            "1 while a risk plugin holds a lock.",
            labels=["bot", "plugin"],
        )
        tier = GaugeMetricFamily(
            "tradefleet_risk_tier",
            "Escalation tier of a risk plugin with tiers (circuit-breaker 0..3; else 0).",
            labels=["bot", "plugin"],
        )
        for state in status.risk:
            locked.add_metric([bot, state.name], float(state.locked))
            tier.add_metric([bot, state.name], float(state.tier))
        yield locked
        yield tier
        cpk = GaugeMetricFamily(
            "tradefleet_quality_cpk",
            "Process capability Cpk per measure.",
            labels=["bot", "measure"],
        )
        cp = GaugeMetricFamily(
            "tradefleet_quality_cp", "Process capability Cp per measure.", labels=["bot", "measure"]
        )
        mean = GaugeMetricFamily(
            "tradefleet_quality_mean", "Rolling mean per measure.", labels=["bot", "measure"]
        )
        for figure in status.quality:
            mean.add_metric([bot, figure.name], figure.mean)
            if figure.cpk is not None:
                cpk.add_metric([bot, figure.name], figure.cpk)
            if figure.cp is not None:
                cp.add_metric([bot, figure.name], figure.cp)
        yield mean
        yield cp
        yield cpk

    def _exposure(self, status: StatusSnapshot) -> Iterator[Metric]:
        """Net position and notional per spec symbol (0 when flat, so the series stay put)."""
        labels = self._labels
        quantities = dict.fromkeys(labels.symbols, 0.0)
        notionals = dict.fromkeys(labels.symbols, 0.0)
        for position in status.exposure:
            symbol = labels.symbol(position.symbol)
            quantities[symbol] = quantities.get(symbol, 0.0) + position.quantity
            notionals[symbol] = notionals.get(symbol, 0.0) + position.notional
        quantity = GaugeMetricFamily(
            "tradefleet_position_quantity",
            "Net position per symbol (signed: > 0 long, < 0 short), in the symbol's units.",
            labels=["bot", "symbol"],
        )
        notional = GaugeMetricFamily(
            "tradefleet_position_notional",
            "Net position per symbol at its mark, signed, in the account currency "
            "(abs() for gross exposure).",
            labels=["bot", "symbol", "currency"],
        )
        for symbol, value in quantities.items():
            quantity.add_metric([labels.bot, symbol], value)
            notional.add_metric([labels.bot, symbol, labels.currency], notionals[symbol])
        yield quantity
        yield notional


class RuntimeMetrics:
    """Every metric of one bot, on its own registry."""

    def __init__(self, labels: BotLabels, registry: CollectorRegistry | None = None) -> None:
        self.labels = labels
        self.bot = labels.bot
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.orders = Counter(
            "tradefleet_orders", "Order status changes.", ["bot", "symbol", "state"], registry=r
        )
        self.fills = Counter("tradefleet_fills", "Fills.", ["bot", "symbol", "side"], registry=r)
        self.fees = Counter(
            "tradefleet_fees",
            "Fees paid, in the account currency.",
            ["bot", "symbol", "currency"],
            registry=r,
        )
        # Funding the venue booked into the account's cash, split by direction: a counter only
        # grows, and a net figure is received - paid.
        self.funding_paid = Counter(
            "tradefleet_funding_paid",
            "Funding payments the account paid, in the account currency.",
            ["bot", "symbol", "currency"],
            registry=r,
        )
        self.funding_received = Counter(
            "tradefleet_funding_received",
            "Funding payments the account received, in the account currency.",
            ["bot", "symbol", "currency"],
            registry=r,
        )
        self.slippage = Histogram(
            "tradefleet_slippage_bps",
            "Fill price against the decision price, basis points (positive: worse).",
            ["bot", "symbol"],
            buckets=(-10, -1, 0, 0.5, 1, 2, 5, 10, 20, 50, 100),
            registry=r,
        )
        self.risk_decisions = Counter(
            "tradefleet_risk_decisions",
            "Risk decisions by plugin, action and reason code.",
            ["bot", "plugin", "action", "reason"],
            registry=r,
        )
        self.bar_to_order = Histogram(
            "tradefleet_bar_to_order_seconds",
            "Wall time from a bar's arrival to its order reaching the broker.",
            ["bot"],
            buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
            registry=r,
        )
        self.broker_latency = Histogram(
            "tradefleet_broker_request_seconds",
            "Broker call latency.",
            ["bot", "operation"],
            buckets=(0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=r,
        )
        self.broker_errors = Counter(
            "tradefleet_broker_errors",
            "Broker calls that failed.",
            ["bot", "operation"],
            registry=r,
        )
        self.webhook_requests = Counter(
            "tradefleet_webhook_requests",
            "Signal webhook requests by outcome.",
            ["bot", "outcome"],
            registry=r,
        )
        self.signals = Counter(
            "tradefleet_signals", "External signals by outcome.", ["bot", "outcome"], registry=r
        )
        self.build = Info("tradefleet_build", "Build information.", registry=r)
        try:
            version = metadata.version("tradefleet")
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.build.info({"version": version})
        self._reasons: dict[str, set[str]] = {}

    def reason_label(self, plugin: str, code: str, action: str) -> str:
        """A bounded label value for a risk reason code."""
        if not code:
            return action
        if not _CODE.match(code):
            return "other"
        seen = self._reasons.setdefault(plugin, set())
        if code not in seen:
            if len(seen) >= MAX_REASONS_PER_PLUGIN:
                return "other"
            seen.add(code)
        return code

    def watch(
        self,
        snapshot: Callable[[], StatusSnapshot],
        last_bar_wall: Callable[[], float],
        bar_interval_s: float = 0.0,
    ) -> None:
        self.registry.register(
            SnapshotCollector(self.labels, snapshot, last_bar_wall, bar_interval_s)
        )
