"""A real ``tradefleet serve`` process for end-to-end tests, and a gRPC stub bound to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
TRADEFLEET = str(Path(sys.executable).parent / "tradefleet")
EURUSD = ROOT / "data" / "EURUSD_H1_2017.csv"

CONTROL_TOKEN = "ctl-PLANTED-SECRET-7f3a9c"
READ_TOKEN = "read-PLANTED-SECRET-2b8e41"
HMAC_KEY = "hmac-PLANTED-SECRET-c0ffee-0123456789"
SECRETS = (CONTROL_TOKEN, READ_TOKEN, HMAC_KEY)


def paper_bot_manifest(name: str, strategy: str, *, flatten_on_stop: bool = False) -> str:
    """A paper TradingBot on the bundled EURUSD hours; ``strategy`` is its YAML flow mapping."""
    flatten = "true" if flatten_on_stop else "false"
    return textwrap.dedent(
        f"""
        apiVersion: tradefleet.io/v1alpha1
        kind: TradingBot
        metadata: {{name: {name}}}
        spec:
          mode: paper
          strategy: {strategy}
          market: {{symbols: [EURUSD], timeframe: 1h}}
          broker: {{name: paper, params: {{fee_bps: 0.2, slippage_bps: 0.3, leverage: 30}}}}
          data: {{name: csv, params: {{path: {EURUSD}}}}}
          risk:
            - name: fixed-fractional
              params: {{risk_per_trade: 0.01, max_leverage: 5}}
          capital: {{currency: USD, initial: 100000}}
          onStop: {{cancelOpenOrders: true, flattenPositions: {flatten}}}
        """
    )


def flat_hours_csv(path: Path, price: float, hours: int = 8) -> Path:
    """Hourly bars at one ``price`` ending at the current hour: a live bot's data that waits
    for the wall clock (its next bar is up to an hour away) while signals drive its orders."""
    now = int(time.time()) // 3600 * 3600
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [
        f"{now - (hours - 2 - i) * 3600},{price},{price},{price},{price},1" for i in range(hours)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def signal_bot_manifest(
    name: str = "signal-bot", entry_order: str = "limit", *, pyramiding: bool = False
) -> str:
    params = f"entry_order: {entry_order}, max_entry_deviation_pct: 3, max_signal_age_s: 30"
    if pyramiding:
        params += ", allow_pyramiding: true"
    return paper_bot_manifest(name, f"{{name: external-signal, params: {{{params}}}}}")


def ema_bot_manifest(name: str = "ema-bot", *, fast: int = 3, flatten_on_stop: bool = False) -> str:
    strategy = f"{{name: ema-cross, params: {{fast: {fast}, slow: 8}}}}"
    return paper_bot_manifest(name, strategy, flatten_on_stop=flatten_on_stop)


@dataclass
class ServeProcess:
    folder: Path
    manifest_text: str
    speed: float = 3600.0
    journal: Path | None = None
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    grpc_port: int = 0
    http_port: int = 0
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _channel: grpc.Channel | None = None

    def __post_init__(self) -> None:
        self.auth = self.folder / "auth"
        self.keys = self.folder / "webhook-keys"
        self.auth.mkdir(exist_ok=True)
        self.keys.mkdir(exist_ok=True)
        (self.auth / "control.token").write_text(CONTROL_TOKEN)
        (self.auth / "read.token").write_text(READ_TOKEN)
        (self.keys / "default").write_text(HMAC_KEY)
        self.manifest = self.folder / "bot.yaml"
        self.manifest.write_text(self.manifest_text)
        self.journal = self.journal or self.folder / "journal.sqlite"

    def start(self, timeout: float = 30.0) -> ServeProcess:
        command = [
            TRADEFLEET, "serve", str(self.manifest),
            "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0",
            "--auth-dir", str(self.auth), "--webhook-keys", str(self.keys),
            "--speed", str(self.speed), "--journal", str(self.journal), "--grace", "10",
            *self.extra,
        ]  # fmt: skip
        self.stdout, self.stderr = [], []
        self.process = subprocess.Popen(
            command,
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        listening = threading.Event()

        def read_stdout() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.stdout.append(line)
                if '"listening"' in line:
                    info = json.loads(line)
                    self.grpc_port, self.http_port = info["grpc"], info["http"]
                    listening.set()

        def read_stderr() -> None:
            assert self.process is not None and self.process.stderr is not None
            for line in self.process.stderr:
                self.stderr.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        if not listening.wait(timeout):
            self.kill()
            raise AssertionError("serve did not start:\n" + "".join(self.stderr))
        self._channel = None
        return self

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        return self._channel

    def stub(self) -> pb_grpc.RuntimeServiceStub:
        return pb_grpc.RuntimeServiceStub(self.channel())

    def wait_for(
        self, predicate: object, timeout: float = 30.0, every: float = 0.1
    ) -> pb.StatusSnapshot:
        """Poll GetStatus until ``predicate(status)`` holds."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.stub().GetStatus(pb.GetStatusRequest(), metadata=control())
            if predicate(status):  # type: ignore[operator]
                return status
            time.sleep(every)
        raise AssertionError(f"condition not met within {timeout}s; last status: {status}")

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._close_channel()
        time.sleep(0.1)  # let the reader threads drain the pipes
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._close_channel()

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def control() -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {CONTROL_TOKEN}"),)


def read_only() -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {READ_TOKEN}"),)


def running(folder: Path, manifest: str, **kwargs: object) -> Iterator[ServeProcess]:
    serve = ServeProcess(folder, manifest, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield serve
    finally:
        serve.kill()
