"""Real paper bots on the bundled EURUSD hours, for the service tests that drive a
``BotController``: the manifest, the controller, a signal, waiting for its bars, and its
journaled events. A test's ``journal`` fixture is in ``conftest.py``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from tests.service.fakes import running_server
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.api import Direction, Phase, Signal
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import BotManifest, parse_manifest

ROOT = Path(__file__).resolve().parents[2]
EURUSD = ROOT / "data" / "EURUSD_H1_2017.csv"
# An external-signal bot that takes every signal its risk chain lets through.
SIGNALS = {
    "name": "external-signal",
    "params": {"max_signal_age_s": 3600, "allow_pyramiding": True},
}
FIXED_SIZE = {"name": "fixed-size", "params": {"quantity": 1000}}


def short_eurusd(folder: Path, bars: int = 40) -> Path:
    """The first ``bars`` hours of the EURUSD file: a feed that ends within seconds."""
    path = folder / "short.csv"
    with EURUSD.open() as source:
        path.write_text("".join(next(source) for _ in range(bars + 1)))
    return path


def paper_manifest(
    name: str,
    strategy: dict[str, Any],
    data: Path = EURUSD,
    risk: tuple[dict[str, Any], ...] = (FIXED_SIZE,),
) -> BotManifest:
    return parse_manifest(
        {
            "apiVersion": "tradefleet.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": name},
            "spec": {
                "mode": "paper",
                "strategy": strategy,
                "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
                "broker": {"name": "paper"},
                "data": {"name": "csv", "params": {"path": str(data), "gap_policy": "trade"}},
                "risk": list(risk),
                "capital": {"currency": "USD", "initial": 100000},
            },
        }
    )


def paper_controller(
    manifest: BotManifest, journal: Journal, speed: float = 0.0001
) -> BotController:
    """The bot's controller (not started); at the default speed its next bar is an hour of
    wall clock after its first."""
    registry = PluginRegistry.discover()
    return BotController(assemble(manifest, registry, ROOT), journal, registry, speed=speed)


def signals_bot(name: str, journal: Journal, folder: Path) -> BotController:
    """An external-signal bot ``name`` on the first hours of EURUSD (written to ``folder``),
    not started; its next bar is an hour of wall clock after its first."""
    return paper_controller(paper_manifest(name, SIGNALS, short_eurusd(folder)), journal)


def eurusd_signal(signal_id: str, direction: Direction = Direction.BUY) -> Signal:
    buy = direction is Direction.BUY
    return Signal(
        symbol="EURUSD",
        direction=direction,
        entry=1.0500,
        stop_loss=1.0000 if buy else 1.1000,
        take_profit=1.1000 if buy else 1.0000,
        signal_id=signal_id,
        received_at=time.time(),
    )


def wait_until(condition: Callable[[], bool], controller: BotController) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, controller.failure or controller.phase
        time.sleep(0.02)


def wait_for_a_bar(controller: BotController) -> None:
    wait_until(lambda: controller.get_status().bars >= 1, controller)


@contextmanager
def at_first_bar(controller: BotController) -> Iterator[BotController]:
    """``controller`` started and at its first bar; stopped on leaving."""
    controller.start()
    try:
        wait_for_a_bar(controller)
        yield controller
    finally:
        controller.stop()
        controller.wait(20)


@contextmanager
def served_at_first_bar(controller: BotController) -> Iterator[pb_grpc.RuntimeServiceStub]:
    """``controller`` started and at its first bar, behind its gRPC API; stopped on leaving."""
    with (
        at_first_bar(controller),
        running_server(controller) as endpoint,  # type: ignore[arg-type]
        grpc.insecure_channel(f"127.0.0.1:{endpoint.port}") as channel,
    ):
        yield pb_grpc.RuntimeServiceStub(channel)


def event_kinds(journal: Journal) -> list[str]:
    """The kinds of the events in ``journal``, oldest first."""
    return [kind for (kind,) in journal.query("SELECT kind FROM events ORDER BY id")]


def run_until_the_data_ends(controller: BotController, timeout: float = 60) -> None:
    """Start ``controller`` and wait until its feed ran out (or it failed); stop it."""
    controller.start()
    try:
        deadline = time.monotonic() + timeout
        while controller.phase not in (Phase.STOPPED, Phase.FAILED):
            assert time.monotonic() < deadline, controller.phase
            time.sleep(0.05)
    finally:
        controller.stop()
        controller.wait(20)
