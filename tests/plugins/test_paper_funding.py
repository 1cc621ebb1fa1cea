"""The paper broker charges perpetual-futures funding, so a backtest or a paper bot of a perp
strategy is not flattered by the funding it never paid.

At each funding time (00:00 UTC and every ``funding_interval_h`` after) a position pays
``quantity × price × rate`` (a long pays a positive rate, a short receives it), settled on the
symbol's first bar opening at or after that time, before that bar's fills, at its open. Each
payment is a ``CashFlow`` the engine books once by its id (``funding:<symbol>:<time>``): into
cash, the trade holding the position, the journal's ``cash_flows`` and the report.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest
import yaml

from tests.plugin_hooks import registry_with
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.cli import main
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, CashFlow, Fill, Order, OrderType, Side
from tradefleet_runtime.optimize.vector import vector_terms
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import PluginKind, PluginParams, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest
from tradefleet_runtime.spec.checks import validate_plugins

HOUR = 3600
DAY = 24 * HOUR
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
BTC, ETH = "BTCUSDT", "ETHUSDT"
VECTOR_NOTE = "backtested by the vectorised path"


class HoldParams(PluginParams):
    direction: Literal[-1, 0, 1] = 1


class Hold(Strategy):
    """Opens ``direction`` × 1 of each symbol at market on its first bar and holds it."""

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        direction = self.params.direction
        held = ctx.position(bar.symbol).quantity
        if direction and not held and not ctx.open_orders(bar.symbol):
            (ctx.buy if direction > 0 else ctx.sell)(bar.symbol, 1)


HOOKS = SimpleNamespace(
    tradefleet_strategies=hookimpl(
        lambda: [
            PluginSpec(
                kind=PluginKind.STRATEGY,
                name="hold",
                version="1.0.0",
                factory=Hold,
                params=HoldParams,
            )
        ]
    )
)


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return registry_with(HOOKS)


@pytest.fixture
def cli_registry(registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    """``tradefleet backtest`` in this process, finding the test's ``hold`` strategy."""
    monkeypatch.setattr(PluginRegistry, "discover", classmethod(lambda cls: registry))
    return registry


def _hourly(start: int, count: int, price: float, skip: range = range(0)) -> list[Bar]:
    """Flat hourly bars at ``price`` from ``start``, but the hours whose index is in ``skip``."""
    return [
        Bar(BTC, HOUR, start + i * HOUR, price, price, price, price, 1.0)
        for i in range(count)
        if i not in skip
    ]


def _csv(path: Path, bars: list[Bar]) -> Path:
    rows = ["time,open,high,low,close,volume"]
    rows += [f"{b.ts},{b.open!r},{b.high!r},{b.low!r},{b.close!r},{b.volume!r}" for b in bars]
    path.write_text("\n".join(rows) + "\n")
    return path


def _manifest(
    folder: Path,
    files: dict[str, Path],
    broker: dict[str, Any],
    *,
    strategy: dict[str, Any] | None = None,
    mode: str = "backtest",
) -> Path:
    """A bot on ``files`` (one CSV a symbol) and the paper broker's ``broker`` params: the
    ``hold`` strategy (its own quantities) unless ``strategy`` (then sized 1 by fixed-size)."""
    data = (
        {"path": str(files[BTC])}
        if list(files) == [BTC]
        else {"files": {s: str(p) for s, p in files.items()}}
    )
    spec: dict[str, Any] = {
        "mode": mode,
        "strategy": strategy or {"name": "hold"},
        "market": {"symbols": list(files), "timeframe": "1h"},
        "broker": {"name": "paper", "params": broker},
        "data": {"name": "csv", "params": {**data, "gap_policy": "trade"}},
        "capital": {"currency": "USDT", "initial": 1_000_000},
    }
    if strategy is not None:
        spec["risk"] = [{"name": "fixed-size", "params": {"quantity": 1}}]
    path = folder / "bot.yaml"
    document = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "perp-bot"},
        "spec": spec,
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _set(manifest: Path, key: str, value: Any) -> None:
    """``spec.<key>`` of the manifest file set to ``value`` (None: removed)."""
    document = yaml.safe_load(manifest.read_text())
    if value is None:
        document["spec"].pop(key)
    else:
        document["spec"][key] = value
    manifest.write_text(yaml.safe_dump(document))


def _backtest(
    capsys: pytest.CaptureFixture[str], manifest: Path, journal: Path, *extra: str
) -> tuple[dict[str, Any], str]:
    """(the JSON report, stderr) of ``tradefleet backtest --json``."""
    capsys.readouterr()
    code = main(["backtest", str(manifest), "--json", "--journal", str(journal), *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out), out.err


def _flows(journal: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(journal)
    try:
        return db.execute(
            "SELECT flow_id, kind, symbol, currency, amount, ts, booked FROM cash_flows ORDER BY id"
        ).fetchall()
    finally:
        db.close()


def _report(capsys: pytest.CaptureFixture[str], journal: Path, *extra: str) -> str:
    """``tradefleet report`` of the journal's run: its output."""
    capsys.readouterr()
    code = main(["report", str(journal), *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


# Three days of hourly bars from 22:00 the day before: the buy decided at the first close fills
# at 23:00, and the position is held over 00:00, 08:00 and 16:00 of each of the three days.
START = T0 - 2 * HOUR
INSTANTS = [T0 + day * DAY + hour * HOUR for day in range(3) for hour in (0, 8, 16)]


@pytest.mark.parametrize(("direction", "each"), [(1, -5.0), (-1, 5.0)])
def test_a_position_held_three_days_pays_nine_fundings(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_registry: PluginRegistry,
    direction: int,
    each: float,
) -> None:
    """1 BTC at 50,000 at 0.01 % an 8-hour interval: 9 payments of 5.0, paid by a long and
    received by a short: in the journal, the trade, the report's JSON and its table."""
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 72, 50_000.0))
    hold = {"name": "hold", "params": {"direction": direction}}
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_rate": 0.0001})
    _set(manifest, "strategy", hold)
    journal = tmp_path / "j.sqlite"
    backtest, _ = _backtest(capsys, manifest, journal)
    assert _flows(journal) == [
        (f"funding:{BTC}:{t}", "funding", BTC, "USDT", each, t, 1) for t in INSTANTS
    ]
    # Flat prices, no fee: the whole net P&L is the funding, on the one (end-of-data) trade.
    assert backtest["net_pnl"] == pytest.approx(9 * each) and backtest["trades"] == 1
    report = json.loads(_report(capsys, journal, "--json", "--trades"))
    assert report["funding"] == pytest.approx(9 * each)
    (trade,) = report["trade_list"]
    assert trade["funding"] == pytest.approx(9 * each)
    assert trade["net_pnl"] == pytest.approx(9 * each)
    assert re.search(rf"funding\s+│\s+{each * 9:,.2f} USDT", _report(capsys, journal))


def test_the_backtest_report_shows_its_funding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 72, 50_000.0))
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_rate": 0.0001})
    backtest, _ = _backtest(capsys, manifest, tmp_path / "j.sqlite")
    assert backtest["funding"] == pytest.approx(-45.0)


def test_a_flat_account_pays_no_funding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 72, 50_000.0))
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_rate": 0.0001})
    _set(manifest, "strategy", {"name": "hold", "params": {"direction": 0}})
    report, _ = _backtest(capsys, manifest, tmp_path / "j.sqlite")
    assert _flows(tmp_path / "j.sqlite") == []
    assert report["trades"] == 0


def test_funding_times_in_a_gap_are_paid_once_each_at_the_next_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """The data has no bar from 06:00 to 17:00 (a hole over 08:00 and 16:00); the bar at 18:00
    opens at 60,000. Each time in the hole is paid once, at that open: the first price after
    it, never one of a later bar. 16:00 of the days after is paid at its own bar's open."""
    bars = _hourly(START, 72, 50_000.0, skip=range(8, 20))  # indexes 8-19: 06:00-17:00
    bars = [b._replace(open=60_000.0, high=60_000.0) if b.ts == T0 + 18 * HOUR else b for b in bars]
    manifest = _manifest(tmp_path, {BTC: _csv(tmp_path / "btc.csv", bars)}, {"funding_rate": 1e-4})
    _backtest(capsys, manifest, tmp_path / "j.sqlite")
    flows = _flows(tmp_path / "j.sqlite")
    assert [(ts, amount) for _, _, _, _, amount, ts, _ in flows] == [
        (T0, -5.0),
        (T0 + 8 * HOUR, -6.0),
        (T0 + 16 * HOUR, -6.0),
        *((t, -5.0) for t in INSTANTS[3:]),
    ]
    assert len({flow[0] for flow in flows}) == len(flows)


def test_rates_per_symbol_override_the_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """BTC pays the bot-wide 0.01 %, ETH receives its own −0.03 % (a long on a negative rate)."""
    btc = _hourly(START, 26, 50_000.0)
    eth = [b._replace(symbol=ETH, open=3_000.0, high=3_000.0, low=3_000.0, close=3_000.0)
           for b in btc]  # fmt: skip
    manifest = _manifest(
        tmp_path,
        {BTC: _csv(tmp_path / "btc.csv", btc), ETH: _csv(tmp_path / "eth.csv", eth)},
        {"funding_rate": 0.0001, "funding_rate_per_symbol": {ETH: -0.0003}},
    )
    _backtest(capsys, manifest, tmp_path / "j.sqlite")
    paid = {
        (symbol, ts): amount for _, _, symbol, _, amount, ts, _ in _flows(tmp_path / "j.sqlite")
    }
    assert paid == pytest.approx(
        {
            **{(BTC, t): -5.0 for t in (T0, T0 + 8 * HOUR, T0 + 16 * HOUR)},
            **{(ETH, t): 0.9 for t in (T0, T0 + 8 * HOUR, T0 + 16 * HOUR)},
        }
    )
    report = json.loads(_report(capsys, tmp_path / "j.sqlite", "--json"))
    assert report["funding"] == pytest.approx(3 * (0.9 - 5.0))


def test_a_symbol_at_rate_zero_pays_nothing(tmp_path: Path) -> None:
    broker = PaperBroker(PaperBrokerParams(funding_rate=0.0001, funding_rate_per_symbol={ETH: 0.0}))
    broker.connect(BrokerContext("b", "paper", (BTC, ETH), "USDT", 1e6))  # type: ignore[arg-type]
    for symbol in (BTC, ETH):
        broker.submit(Order(f"o-{symbol}", symbol, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0))
    events: list[object] = []
    for ts in range(T0, T0 + 10 * HOUR, HOUR):
        for symbol in (BTC, ETH):
            events += broker.on_bar(Bar(symbol, HOUR, ts, 100.0, 100.0, 100.0, 100.0, 1.0))
    flows = [e for e in events if isinstance(e, CashFlow)]
    assert [(f.symbol, f.ts, f.amount) for f in flows] == [(BTC, T0 + 8 * HOUR, -0.01)]


def test_a_funding_time_at_a_bars_open_is_paid_on_the_position_before_its_fills() -> None:
    """An order filling at the open of the 08:00 bar did not hold the position at 08:00; the
    cash moves with each payment (the margin check reads it)."""
    broker = PaperBroker(PaperBrokerParams(funding_rate=0.001, funding_interval_h=4))
    broker.connect(BrokerContext("b", "paper", (BTC,), "USDT", 1_000.0))  # type: ignore[arg-type]
    broker.submit(Order("buy", BTC, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0 + 8 * HOUR))

    def bar(ts: int, price: float) -> list[object]:
        return list(broker.on_bar(Bar(BTC, HOUR, ts, price, price, price, price, 1.0)))

    assert [type(e).__name__ for e in bar(T0 + 8 * HOUR, 100.0)] == ["Fill"]
    assert broker.balance() == pytest.approx(900.0)
    assert bar(T0 + 9 * HOUR, 100.0) == []
    (flow,) = bar(T0 + 12 * HOUR, 200.0)
    assert flow == CashFlow(f"funding:{BTC}:{T0 + 12 * HOUR}", BTC, -0.2, "USDT", T0 + 12 * HOUR)
    assert broker.balance() == pytest.approx(899.8)


KEYED = "spec.broker.params.funding_rate_per_symbol"
BOUND = "Input should be less than or equal to 0.01"


def _flat(symbol: str, ts: int, price: float) -> Bar:
    return Bar(symbol, HOUR, ts, price, price, price, price, 1.0)


def test_each_symbol_pays_at_its_own_first_bar_after_a_funding_time() -> None:
    """ETH's data has a hole over 08:00 while BTC's goes on: BTC pays 08:00 at its 08:00 open,
    ETH at the open of its next bar (10:00), once; neither waits for or pays twice for the
    other."""
    broker = PaperBroker(PaperBrokerParams(funding_rate=0.001))
    broker.connect(BrokerContext("b", "paper", (BTC, ETH), "USDT", 1e6))  # type: ignore[arg-type]
    for symbol in (BTC, ETH):
        broker.submit(Order(f"o-{symbol}", symbol, Side.SELL, 2.0, OrderType.MARKET, created_ts=T0))
    paid: list[tuple[str, int, int, float]] = []
    for ts in range(T0 + HOUR, T0 + 12 * HOUR, HOUR):
        for symbol, price in ((BTC, 100.0), (ETH, 10.0 + ts // HOUR % 24)):
            if symbol == ETH and T0 + 7 * HOUR <= ts <= T0 + 9 * HOUR:
                continue
            for event in broker.on_bar(_flat(symbol, ts, price)):
                if isinstance(event, CashFlow):
                    paid.append((event.symbol, event.ts, ts, event.amount))
    assert paid == [
        (BTC, T0 + 8 * HOUR, T0 + 8 * HOUR, pytest.approx(0.2)),
        (ETH, T0 + 8 * HOUR, T0 + 10 * HOUR, pytest.approx(2.0 * 20.0 * 0.001)),
    ]


def test_a_restored_account_owes_only_the_funding_times_it_did_not_pay() -> None:
    """Rebuilt from the journal: its fills, then the funding it paid (00:00, 08:00) into the
    cash. A bar at 08:00 handed again pays nothing; 16:00, passed while the bot was down, is
    paid once at the first bar after it."""
    broker = PaperBroker(PaperBrokerParams(funding_rate=0.0001))
    broker.connect(BrokerContext("b", "paper", (BTC,), "USDT", 1e6))  # type: ignore[arg-type]
    broker.restore_account([Fill("o", BTC, Side.BUY, 1.0, 50_000.0, 1.0, START + HOUR, "f")])
    paid = [CashFlow(f"funding:{BTC}:{t}", BTC, -5.0, "USDT", t) for t in INSTANTS[:2]]
    broker.restore_cash_flows(paid)
    assert broker.balance() == pytest.approx(1e6 - 50_000.0 - 1.0 - 10.0)
    assert not broker.on_bar(_flat(BTC, T0 + 8 * HOUR, 50_000.0))
    (late,) = broker.on_bar(_flat(BTC, T0 + 20 * HOUR, 40_000.0))
    assert late == CashFlow(f"funding:{BTC}:{T0 + 16 * HOUR}", BTC, -4.0, "USDT", T0 + 16 * HOUR)
    assert broker.balance() == pytest.approx(1e6 - 50_000.0 - 1.0 - 14.0)
    # Without any funding journaled, the times after the last fill are owed.
    fresh = PaperBroker(PaperBrokerParams(funding_rate=0.0001))
    fresh.connect(BrokerContext("b", "paper", (BTC,), "USDT", 1e6))  # type: ignore[arg-type]
    fresh.restore_account([Fill("o", BTC, Side.BUY, 1.0, 50_000.0, 0.0, T0 + 8 * HOUR, "f")])
    fresh.restore_cash_flows([])
    assert not fresh.on_bar(_flat(BTC, T0 + 8 * HOUR, 50_000.0))
    assert [f.ts for f in fresh.on_bar(_flat(BTC, T0 + 16 * HOUR, 50_000.0))] == [T0 + 16 * HOUR]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"funding_rate": 0.02}, f"spec.broker.params.funding_rate: {BOUND}"),
        ({"funding_rate": -0.011},
         "spec.broker.params.funding_rate: Input should be greater than or equal to -0.01"),
        ({"funding_rate_per_symbol": {BTC: 0.05}}, f"{KEYED}.{BTC}: {BOUND}"),
        ({"funding_rate_per_symbol": {"BTCUSTD": 0.0001}},
         f"{KEYED}.BTCUSTD: not one of the bot's symbols"),
        ({"funding_interval_h": 5},
         "spec.broker.params.funding_interval_h: must divide 24"),
        ({"funding_interval_h": 0},
         "spec.broker.params.funding_interval_h: Input should be greater than or equal to 1"),
    ],
)  # fmt: skip
def test_funding_params_are_refused_naming_the_field(
    tmp_path: Path, registry: PluginRegistry, params: dict[str, Any], expected: str
) -> None:
    manifest = _manifest(tmp_path, {BTC: _csv(tmp_path / "btc.csv", _hourly(T0, 3, 1.0))}, params)
    (error,) = [str(e) for e in validate_plugins(load_manifest(manifest), registry)]
    assert error.startswith(expected), error


def test_the_funding_params_pass_within_bounds(tmp_path: Path, registry: PluginRegistry) -> None:
    params = {"funding_rate": -0.01, "funding_rate_per_symbol": {BTC: 0.00375},
              "funding_interval_h": 4}  # fmt: skip
    manifest = _manifest(tmp_path, {BTC: _csv(tmp_path / "btc.csv", _hourly(T0, 3, 1.0))}, params)
    assert validate_plugins(load_manifest(manifest), registry) == []


def _ema_bot(tmp_path: Path, broker: dict[str, Any]) -> Path:
    """An ema-cross bot the vectorised path can take, on a few days of moving prices."""
    bars = [
        Bar(BTC, HOUR, START + i * HOUR, p, p * 1.01, p * 0.99, p, 1.0)
        for i, p in enumerate(50_000.0 + 500.0 * ((i * 7) % 11 - 5) + 20.0 * i for i in range(200))
    ]
    csv = _csv(tmp_path / "btc.csv", bars)
    strategy = {"name": "ema-cross", "params": {"fast": 3, "slow": 8}}
    return _manifest(tmp_path, {BTC: csv}, broker, strategy=strategy)


def test_default_params_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """Funding off (the default): no payment, and the engine's figures are still the
    vectorised path's, which knows no funding."""
    manifest = _ema_bot(tmp_path, {"fee_bps": 5, "slippage_bps": 2})
    vector, vector_err = _backtest(capsys, manifest, tmp_path / "vector.sqlite")
    engine, engine_err = _backtest(capsys, manifest, tmp_path / "engine.sqlite", "--engine")
    assert VECTOR_NOTE in vector_err and VECTOR_NOTE not in engine_err
    assert engine == vector and engine["trades"]
    assert _flows(tmp_path / "engine.sqlite") == []


def test_the_vectorised_path_refuses_funding_and_the_engine_runs_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_registry: PluginRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manifest = _ema_bot(tmp_path, {"fee_bps": 5, "slippage_bps": 2, "funding_rate": 0.0001})
    with caplog.at_level(logging.INFO, logger="tradefleet.cli"):
        report, err = _backtest(capsys, manifest, tmp_path / "j.sqlite")
    assert VECTOR_NOTE not in err
    assert "funding_rate 0.0001 (the vectorised path pays no funding)" in caplog.text
    assert _flows(tmp_path / "j.sqlite") and report["trades"]
    sizer = [("fixed-size", {"quantity": 1.0})]
    common = {"initial_capital": 1e6, "timeframe_s": HOUR}
    keyed = vector_terms(
        (BTC,), ("paper", {"funding_rate_per_symbol": {BTC: -0.0002}}), sizer, **common
    )
    assert keyed == f"funding_rate_per_symbol.{BTC} -0.0002 (the vectorised path pays no funding)"
    exempt = {"funding_rate": 0.0001, "funding_rate_per_symbol": {BTC: 0.0}}
    assert not isinstance(vector_terms((BTC,), ("paper", exempt), sizer, **common), str)


def _paper_session(
    folder: Path, registry: PluginRegistry, bars: list[Bar]
) -> tuple[BotSession, Journal]:
    manifest = _manifest(folder, {BTC: folder / "unread.csv"}, {"funding_rate": 1e-4}, mode="paper")
    _set(manifest, "data", None)  # the bars are handed to the session
    bot = assemble(load_manifest(manifest), registry, folder)
    journal = Journal(folder / "paper.sqlite", durable=True)
    return BotSession(bot, journal, bars=bars), journal


def test_a_restarted_paper_bot_keeps_its_funding_in_the_brokers_cash(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """Run 1 holds 1 BTC over 00:00 and 08:00 (two payments). The restarted broker rebuilds its
    account from the journal: its cash is the engine's, funding included; the bar at 08:00
    handed again pays nothing twice, and 16:00 is paid once."""
    bars = _hourly(START, 72, 50_000.0)
    session, journal = _paper_session(tmp_path, registry, bars[:12])  # 22:00 to 09:00
    session.open()
    session.run()
    journal.close()
    assert [row[5] for row in _flows(tmp_path / "paper.sqlite")] == INSTANTS[:2]

    session, journal = _paper_session(tmp_path, registry, bars[10:20])  # 08:00 again to 17:00
    engine = session.open()
    try:
        broker = session.bot.broker
        assert engine.portfolio.cash_flows == pytest.approx(-10.0)
        assert broker.balance() == pytest.approx(engine.portfolio.cash)
        session.run()
        assert broker.balance() == pytest.approx(engine.portfolio.cash)
    finally:
        journal.close()
    flows = _flows(tmp_path / "paper.sqlite")
    assert [row[5] for row in flows] == INSTANTS[:3]
    assert engine.portfolio.cash_flows == pytest.approx(-15.0)


def test_the_generated_reference_lists_the_funding_params() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    paper = text.split("## `paper` (broker)")[1].split("\n## ")[0]
    for name in ("funding_rate", "funding_rate_per_symbol", "funding_interval_h"):
        assert f"| `{name}` |" in paper
