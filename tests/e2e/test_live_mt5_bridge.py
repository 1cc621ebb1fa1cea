"""A live EURUSD bot on MetaTrader 5 from a Linux process, end to end through the bridge.

`tradefleet serve` runs a `live` bot whose `mt5` broker reaches the terminal through
`tradefleet mt5-bridge` (served here in-process in front of the terminal emulator, with a token),
its credentials Secret mounted as files (login, password, server, the bridge's token). Signals
become orders at the terminal, the terminal's deals become the journal's fills, the status and
the metrics say so — and the account's planted login and password appear in no output. The
same strategy also backtests on the bundled EURUSD hours: only broker and feed change.
"""

from __future__ import annotations

import sqlite3
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.brokers.mt5.harness import (
    PLANTED_LOGIN,
    PLANTED_PASSWORD,
    PLANTED_SERVER,
    planted_terminal,
    write_credentials,
)
from tests.e2e.serve_process import EURUSD, ServeProcess, control, flat_hours_csv
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_link import forget_bridge
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.mt5_bridge.server import build_bridge_server
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.auth import TokenAuth
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

ROOT = Path(__file__).resolve().parents[2]
NAME = "eurusd-mt5-live"
BRIDGE_TOKEN = "bridge-token-PLANTED-5d1e"
PRICE = 1.1  # the emulator's EURUSD quote


@pytest.fixture
def terminal() -> MT5Terminal:
    return planted_terminal()


@pytest.fixture
def bridge(tmp_path: Path, terminal: MT5Terminal) -> Iterator[int]:
    auth = tmp_path / "bridge-auth"
    auth.mkdir()
    (auth / "control.token").write_text(BRIDGE_TOKEN)
    endpoint = build_bridge_server(terminal, address="127.0.0.1:0", auth=TokenAuth(auth)).start()
    try:
        yield endpoint.port
    finally:
        forget_bridge(f"127.0.0.1:{endpoint.port}")
        endpoint.stop(0)


def _manifest(folder: Path, port: int) -> str:
    keys = write_credentials(folder / "keys", PLANTED_LOGIN, PLANTED_PASSWORD, PLANTED_SERVER)
    (keys / "mt5-bridge.token").write_text(BRIDGE_TOKEN + "\n")
    flat_hours_csv(folder / "eurusd.csv", PRICE)
    return textwrap.dedent(
        f"""
        apiVersion: tradefleet.io/v1alpha1
        kind: TradingBot
        metadata: {{name: {NAME}}}
        spec:
          mode: live
          liveConfirmation: {NAME}
          strategy:
            name: external-signal
            params: {{entry_order: market, max_entry_deviation_pct: 3}}
          market: {{symbols: [EURUSD], timeframe: 1h}}
          broker:
            name: mt5
            credentialsSecret: {{name: {NAME}}}
            params:
              bridge_address: 127.0.0.1:{port}
              bridge_tls: false
          data: {{name: csv, params: {{path: {folder / "eurusd.csv"}, live_rehearsal: true}}}}
          risk: [{{name: fixed-size, params: {{quantity: 10000}}}}]  # euros: 0.1 lot
          capital: {{currency: USD, initial: 10000}}
        """
    )


def test_a_live_eurusd_bot_trades_through_the_bridge_orders_fills_status_and_metrics(
    tmp_path: Path, bridge: int, terminal: MT5Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _manifest(tmp_path, bridge)
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(tmp_path / "keys"))
    serve = ServeProcess(tmp_path, manifest, speed=1.0).start()
    try:
        # And a bar handled: external-signal refuses a signal before it knows the symbol's
        # price ("no market price for EURUSD yet"), which a loaded machine showed.
        serve.wait_for(lambda s: s.phase == pb.PHASE_RUNNING and s.reconciled and s.bars >= 1)
        answer = serve.stub().SubmitSignal(
            pb.SubmitSignalRequest(
                symbol="EURUSD",
                direction=pb.DIRECTION_BUY,
                entry=PRICE,
                stop_loss=1.09,
                take_profit=1.12,
                source="e2e",
            ),
            metadata=control(),
        )
        assert answer.accepted, answer.reason
        status = serve.wait_for(lambda s: s.open_positions == 1)
        assert status.broker_connected and status.mode == "live"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{serve.http_port}/metrics").read()
        assert b"tradefleet_fills_total" in metrics or b"tradefleet_orders_total" in metrics
    finally:
        assert serve.terminate() == 0
    # Journal = terminal: the entry's deal, under the client order id in its comment.
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        fills = db.execute("SELECT client_order_id, quantity FROM fills").fetchall()
    finally:
        db.close()
    deals = [d for d in terminal.history_deals_get(0, 2**31 - 1) if d.symbol]
    # The bot's 10,000 euros are 0.1 lot at the terminal.
    assert fills == [(answer.client_order_id, 10_000.0)]
    assert [(d.comment, d.volume) for d in deals] == [(answer.client_order_id, 0.1)]
    (position,) = terminal.positions_get()
    assert (position.sl, position.tp) == (1.09, 1.12), "the bracket rides on the position"
    output = serve.output()
    for secret in (PLANTED_PASSWORD, PLANTED_SERVER, str(PLANTED_LOGIN), BRIDGE_TOKEN):
        assert secret not in output


def test_the_same_strategy_backtests_on_the_bundled_eurusd_hours(tmp_path: Path) -> None:
    """The example live manifest as a backtest: only broker and feed change."""
    document = yaml.safe_load((ROOT / "examples" / "mt5" / "eurusd-mt5-bridge.yaml").read_text())
    spec = document["spec"]
    # The retail FX account of examples/bots/eurusd-ema-cross.yaml, simulated.
    paper = {"fee_bps": 0.2, "slippage_bps": 0.3, "leverage": 30}
    spec.update(mode="backtest", broker={"name": "paper", "params": paper})
    spec.pop("liveConfirmation")
    spec["data"] = {"name": "csv", "params": {"path": str(EURUSD)}}
    path = tmp_path / "backtest.yaml"
    path.write_text(yaml.safe_dump(document))
    bot = assemble(load_manifest(path), PluginRegistry.discover(), tmp_path)
    journal = Journal(tmp_path / "backtest.sqlite")
    try:
        outcome = BotSession(bot, journal).run_to_end()
    finally:
        journal.close()
    assert outcome.status == "completed"
    assert len(outcome.result.trades) > 10
    assert {t.exit_reason for t in outcome.result.trades} & {"stop_loss", "take_profit"}
