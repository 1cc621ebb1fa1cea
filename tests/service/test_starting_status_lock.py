"""A restarted bot waiting for its venue shows the risk locks its journal holds (W18).

The rollback journey: under spec v2 the circuit-breaker locked the bot and a person halted it;
the pod rolls back to v1 (the circuit-breaker gone from spec.risk) while the exchange is in
maintenance, so the new runtime waits in phase Starting. docs/operations.md says a lock "holds
across restarts until a person runs `tradefleet reset-risk`" and that until its engine runs the
status shows the account "as its journal last held it". Before: the halt showed, but the risk
chain was empty (``_starting_snapshot`` set no ``risk``): `tradefleet status` showed no lock,
``tradefleet_risk_locked`` published no series (TradefleetRiskLockHeld resolved) and the operator
set ``RiskLocked=False`` for as long as the venue was down, although the lock still held and
vetoed every entry once the engine ran. Now the Starting status lists each lock as the running
engine's status does once it restored it (``Engine.restore_locks``, ``Engine.risk_states``).
The journal's events are written in the shape the engine writes them (as
tests/runtime/test_restart_controls_of_this_bot.py does).
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.paper_bots import FIXED_SIZE, ROOT, paper_controller, paper_manifest
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.api import Phase, PluginInfo, RiskPluginState
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.last_known import held_risk_locks
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest
from tradefleet_runtime.spec.model import EmergencyStopSpec

BOT = "w18-roll"
T0 = 1_700_000_000
LOCK = "circuit breaker tier 3: daily drawdown 0.004% >= 0.003%"
ALICE = "alice@desk (grpc, control token, peer)"


def _v1_manifest(folder: Path) -> Path:
    """Spec v1: a live Binance USDⓈ-M bot, fixed-size only; its venue does not answer (the
    exchange's maintenance: a port nothing listens on)."""
    (folder / "btc.csv").write_text("timestamp,open,high,low,close,volume\n")
    path = folder / "bot.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: {BOT}}}
            spec:
              mode: live
              liveConfirmation: {BOT}
              strategy: {{name: ema-cross, params: {{fast: 2, slow: 3}}}}
              market: {{symbols: ["BTCUSDT"], timeframe: 1h}}
              broker:
                name: ccxt
                credentialsSecret: {{name: {BOT}-keys}}
                params:
                  exchange: binanceusdm
                  market_type: linear
                  api_url: http://127.0.0.1:9
                  timeout_ms: 300
              data: {{name: csv, params: {{path: {folder / "btc.csv"}, live_rehearsal: true}}}}
              risk:
                - {{name: fixed-size, params: {{quantity: 0.01}}}}
              capital: {{currency: USDT, initial: 50000}}
            """
        )
    )
    return path


def _locked_run(path: Path, bot: str, mode: str, locks: dict[str, str], halt: bool) -> None:
    """An earlier run of ``bot``: each plugin of ``locks`` locked it (plugin → reason), then,
    with ``halt``, a person halted it; it stopped."""
    journal = Journal(path)
    journal.start_run(
        run_id="v2", bot=bot, mode=mode, currency="USDT", initial_capital=50_000.0,
        timeframe_s=3600, config_hash="v2", manifest={},
    )  # fmt: skip
    for plugin, reason in locks.items():
        journal.record_event(
            T0,
            "risk_locked",
            f"{plugin} locked trading until a person resets it: {reason}",
            {"plugin": plugin, "reason": reason, "since_ts": T0},
        )
    if halt:
        journal.record_event(
            T0,
            "halted",
            f"emergency stop by {ALICE}: desk drill under v2",
            {"who": ALICE, "reason": "desk drill under v2", "flatten": False, "holder": "person"},
        )
    journal.finish_run("stopped", {})
    journal.close()


def _risk_locked_series(controller: BotController) -> dict[str, float]:
    """``tradefleet_risk_locked`` as /metrics publishes it: plugin → value."""
    text = generate_latest(controller.metrics.registry).decode()
    return {
        str(sample.labels["plugin"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tradefleet_risk_locked"
    }


def test_the_status_of_a_bot_waiting_for_its_venue_shows_the_lock_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "apiKey").write_text("k" * 64)
    (credentials / "secret").write_text("s" * 64)
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(credentials))
    path = tmp_path / "bot.sqlite"
    _locked_run(path, BOT, "live", {"circuit-breaker": LOCK}, halt=True)
    registry = PluginRegistry.discover()
    bot = assemble(load_manifest(_v1_manifest(tmp_path)), registry, tmp_path)
    journal = Journal(path, durable=True)
    controller = BotController(bot, journal, registry)
    controller.start()
    try:
        deadline = time.monotonic() + 20
        while not controller.get_status().starting_reason:
            assert controller.failure == "" and time.monotonic() < deadline, controller.failure
            time.sleep(0.05)
        status = controller.get_status()
        series = _risk_locked_series(controller)
    finally:
        controller.stop()
        controller.wait(20)
        journal.close()
    assert status.phase is Phase.STARTING
    assert status.halted and "desk drill" in status.halt_reason
    # As the engine shows a restored lock of a plugin no longer in spec.risk: no version.
    assert status.risk == (RiskPluginState("circuit-breaker", "", True, LOCK, 0),), (
        f"while waiting for the venue the status shows risk {status.risk!r}: no lock, "
        "though the journal's lock holds and vetoes every entry once the engine runs"
    )
    assert series == {"circuit-breaker": 1.0}, series  # TradefleetRiskLockHeld stays firing


def test_the_starting_status_shows_the_locks_as_the_running_engine_restores_them(
    tmp_path: Path,
) -> None:
    """A lock of a plugin in the chain (with its version) and one of a plugin no longer in it,
    each with its journaled reason: what the engine's status says once it has restored them."""
    name = "locks-restart"
    breaker = {"name": "circuit-breaker", "params": {"cooldown_minutes": 120}}
    manifest = paper_manifest(name, {"name": "ema-cross"}, risk=(FIXED_SIZE, breaker))
    path = tmp_path / "bot.sqlite"
    gone = "quality-guard stopped: slippage Cpk 0.41 < 1.00"
    _locked_run(path, name, "paper", {"quality-guard": gone, "circuit-breaker": LOCK}, halt=False)
    journal = Journal(path)
    try:
        starting = paper_controller(manifest, journal).get_status()
        engine = BotSession(assemble(manifest, PluginRegistry.discover(), ROOT), journal).open()
        running = [(name, locked, reason) for name, locked, reason, _ in engine.risk_states()]
    finally:
        journal.close()
    assert starting.phase is Phase.STARTING and starting.last_known
    shown = [(risk.name, risk.locked, risk.reason) for risk in starting.risk]
    assert shown == [entry for entry in running if entry[1]], (shown, running)
    versions = {plugin.name: plugin.version for plugin in starting.plugins}
    assert [risk.version for risk in starting.risk] == [versions["circuit-breaker"], ""]


def test_held_risk_locks_in_chain_order_then_the_removed_plugins() -> None:
    plugins = (
        PluginInfo("strategy", "ema-cross", "1.0"),
        PluginInfo("risk", "fixed-size", "1.0"),
        PluginInfo("risk", "probation", "1.2"),
        PluginInfo("risk", "circuit-breaker", "2.0"),
    )
    locks = {"gone": ("old lock", 5), "circuit-breaker": ("tier 3", 7), "probation": ("lost", 9)}
    assert held_risk_locks(locks, plugins) == (
        RiskPluginState("probation", "1.2", True, "lost"),
        RiskPluginState("circuit-breaker", "2.0", True, "tier 3"),
        RiskPluginState("gone", "", True, "old lock"),
    )
    assert held_risk_locks({}, plugins) == ()


@pytest.mark.parametrize("resumed", [False, True])
def test_the_starting_status_of_a_restarted_bot_shows_its_halt(
    tmp_path: Path, resumed: bool
) -> None:
    """W34: a person halted the bot; it restarts. Until its engine ran, the Starting status said
    ``halted=False`` (the halt showed only while the bot waited for its venue): the halt's
    alert cleared and fired again, and the operator wrote ``halted: false`` into the
    TradingBot. A halt a newer resume lifted is not shown."""
    name = "halt-restart"
    manifest = paper_manifest(name, {"name": "ema-cross"}, risk=(FIXED_SIZE,))
    path = tmp_path / "bot.sqlite"
    _locked_run(path, name, "paper", {}, halt=True)
    if resumed:
        journal = Journal(path)
        journal.record_event(T0 + 60, "resumed", f"resumed by {ALICE}: drill over", {})
        journal.close()
    journal = Journal(path)
    try:
        starting = paper_controller(manifest, journal).get_status()
    finally:
        journal.close()
    assert starting.phase is Phase.STARTING
    assert starting.halted is not resumed
    assert ("desk drill under v2" in starting.halt_reason) is not resumed


def test_the_starting_status_of_a_bot_whose_spec_holds_its_emergency_stop_shows_it(
    tmp_path: Path,
) -> None:
    """R51: the halt the start applies from ``spec.emergencyStop`` (a first start, or a journal
    that is gone) said ``halted=False`` while Starting and ``halted=True`` once the engine ran,
    the same flap as a journaled halt's. The engine's words for it are shown."""
    manifest = paper_manifest("spec-stop", {"name": "ema-cross"}, risk=(FIXED_SIZE,))
    stop = EmergencyStopSpec(reason="fleet stop:  venue\\nincident")
    manifest = manifest.model_copy(
        update={"spec": manifest.spec.model_copy(update={"emergency_stop": stop})}
    )
    journal = Journal(tmp_path / "bot.sqlite")
    try:
        starting = paper_controller(manifest, journal).get_status()
        engine = BotSession(assemble(manifest, PluginRegistry.discover(), ROOT), journal).open()
        running_reason = engine.state.halt_reason
    finally:
        journal.close()
    assert starting.phase is Phase.STARTING
    assert starting.halted
    assert starting.halt_reason == running_reason == "fleet stop: venue\\nincident"
