"""A live ccxt bot started by `tradefleet serve` without `TRADEFLEET_CREDENTIALS_DIR` (outside a
cluster, where nothing mounts the Secret) is refused in one line that names the variable, what
the folder holds and the manifest's Secret field: no traceback, and the exit code of any failed
bot (1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.errors import PluginError
from tradefleet_runtime.sdk import BrokerContext
from tradefleet_runtime.spec.model import Mode

BOT = "krak-spot"
# What the refusal names: the variable, the files the folder holds, the manifest's field.
NAMED = ("TRADEFLEET_CREDENTIALS_DIR", "apiKey", "secret", "spec.broker.credentialsSecret")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _live_kraken_bot(folder: Path) -> Path:
    (folder / "btc.csv").write_text("timestamp,open,high,low,close,volume\n")
    manifest = folder / "bot.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: {BOT}}}
            spec:
              mode: live
              liveConfirmation: {BOT}
              strategy: {{name: ema-cross, params: {{fast: 2, slow: 3}}}}
              market: {{symbols: ["BTC/USD"], timeframe: 1h}}
              broker:
                name: ccxt
                credentialsSecret: {{name: {BOT}-keys}}
                params: {{exchange: kraken, api_url: "http://127.0.0.1:{_closed_port()}"}}
              data: {{name: csv, params: {{path: {folder / "btc.csv"}, live_rehearsal: true}}}}
              capital: {{currency: USD, initial: 1000}}
            """
        )
    )
    return manifest


def test_a_live_start_without_the_credentials_folder_names_the_variable_in_one_line(
    tmp_path: Path,
) -> None:
    manifest = _live_kraken_bot(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "TRADEFLEET_CREDENTIALS_DIR"}
    failure = tmp_path / "failure.txt"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "tradefleet"),
            *("--log-format", "text", "serve", str(manifest), "--insecure-no-auth"),
            *("--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"),
            *("--journal", str(tmp_path / "j.sqlite"), "--failure-file", str(failure)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said, said
    (refusal,) = [line for line in said.splitlines() if f"bot {BOT} failed: TRADEFLEET" in line]
    for named in NAMED:
        assert named in refusal, refusal
    assert "TRADEFLEET_CREDENTIALS_DIR" in failure.read_text()


def test_the_broker_refuses_a_live_connect_without_credentials_before_any_request() -> None:
    broker = CcxtBroker(CcxtBrokerParams(exchange="kraken", api_url="http://127.0.0.1:9"))
    with pytest.raises(PluginError, match="TRADEFLEET_CREDENTIALS_DIR is not set"):
        broker.connect(BrokerContext(BOT, Mode.LIVE, ("BTC/USD",), "USD", 10_000.0, None))
