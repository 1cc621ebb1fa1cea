"""A live bot's first run is refused when its capital is more than the MT5 account's equity: a
bot claiming 100,000 on a 10,000 account sizes every trade (risk per trade, a prop firm's loss
limits) on money that is not there — ten times the risk its owner set. A restart, whose equity
has legitimately moved away from the capital, is never refused; the runtime tells the broker
which it is from the bot's journal."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.brokers.mt5.harness import (
    LOGIN,
    PASSWORD,
    SERVER,
    Mt5Harness,
    gold_pro_symbols,
    write_credentials,
)
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers import mt5_broker
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, BrokerContext, PluginError
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

NAME = "capital-bot"
HOUR = 3600


def _context(capital: float, first_run: bool) -> BrokerContext:
    return BrokerContext(
        "default/gold-bot",
        "live",
        ("EURUSD",),
        "USD",
        capital,
        first_run=first_run,
    )


def _harness(balance: float) -> Mt5Harness:
    terminal = MT5Terminal(margin_mode="hedging", symbols=gold_pro_symbols(), balance=balance)
    return Mt5Harness.build(venue=terminal)


@pytest.mark.usefixtures("transport")  # direct, and through the bridge
def test_a_first_run_claiming_more_than_the_equity_is_refused_naming_both_figures() -> None:
    harness = _harness(10_000.0)
    try:
        with pytest.raises(PluginError) as raised:
            harness.broker.connect(_context(100_000.0, first_run=True))
        assert str(raised.value).startswith(
            "spec.capital.initial: 100,000 USD is more than the account holds (10,000 USD): "
            "sizing on money the account does not have multiplies every trade's risk"
        )
        assert not harness.terminal.history_orders_get(0, 2**31 - 1)
    finally:
        harness.close()


@pytest.mark.usefixtures("transport")  # direct, and through the bridge
def test_a_first_run_within_the_equity_connects_credit_counted() -> None:
    harness = _harness(9_000.0)
    try:
        harness.terminal.update_account(credit=1_000.0)  # equity = balance + credit + profit
        harness.broker.connect(_context(10_000.0, first_run=True))
        assert harness.broker.is_connected()
    finally:
        harness.close()


@pytest.mark.usefixtures("transport")  # direct, and through the bridge
def test_a_restart_is_never_refused_whatever_the_equity() -> None:
    harness = _harness(2_500.0)
    try:
        harness.broker.connect(_context(100_000.0, first_run=False))
        assert harness.broker.is_connected()
    finally:
        harness.close()


# -- the runtime decides from the journal ----------------------------------------------------


def _manifest(folder: Path, capital: int) -> Path:
    write_credentials(folder / "keys", LOGIN, PASSWORD, SERVER)
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{1_736_121_600 - (9 - i) * HOUR},1.1,1.1,1.1,1.1,1" for i in range(10)]
    (folder / "eurusd.csv").write_text("\n".join(rows) + "\n")
    path = folder / "bot.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: {NAME}}}
            spec:
              mode: live
              liveConfirmation: {NAME}
              strategy: {{name: external-signal}}
              market: {{symbols: [EURUSD], timeframe: 1h}}
              broker:
                name: mt5
                credentialsSecret: {{name: {NAME}}}
                params: {{terminal: capital-test-terminal}}
              data:
                name: csv
                params: {{path: {folder / "eurusd.csv"}, live_rehearsal: true}}
              capital: {{currency: USD, initial: {capital}}}
            """
        )
    )
    return path


def _session(folder: Path, capital: int) -> tuple[BotSession, Journal]:
    bot = assemble(load_manifest(_manifest(folder, capital)), PluginRegistry.discover(), folder)
    journal = Journal(folder / "journal.sqlite", durable=True)
    bar = Bar("EURUSD", HOUR, 1_736_121_600 - HOUR, 1.1, 1.1, 1.1, 1.1, 1.0)
    return BotSession(bot, journal, bars=[bar]), journal


def test_the_session_checks_the_first_run_only_and_a_refused_start_stays_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = MT5Terminal(margin_mode="hedging", balance=10_000.0)
    monkeypatch.setattr(mt5_broker, "load_terminal", lambda spec: terminal)
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(tmp_path / "keys"))
    # Refused twice: a run refused at connect left nothing, so the next start (a pod
    # restarted in a loop) is still a first run.
    for _ in range(2):
        session, journal = _session(tmp_path, 100_000)
        try:
            with pytest.raises(PluginError, match=r"100,000 USD is more than .*\(10,000 USD\)"):
                session.open()
        finally:
            journal.close()
    # Lowered, it starts and handles a bar.
    session, journal = _session(tmp_path, 10_000)
    try:
        session.open()
        session.run()
        session.close("stopped")
    finally:
        journal.close()
    # The account lost money since: the restart (same capital) is not refused.
    terminal.update_account(balance=4_000.0)
    session, journal = _session(tmp_path, 10_000)
    try:
        session.open()
        session.close("stopped")
    finally:
        journal.close()
