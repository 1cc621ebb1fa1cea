"""A circuit-breaker lock outlives a SIGKILL of `tradefleet serve` and only a person's
ResetRiskLock, after the cooldown, clears it."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import grpc
import pytest

from tests.e2e.serve_process import EURUSD, ServeProcess, control
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

BREAKER = "circuit-breaker"


def breaker_manifest(cooldown_minutes: int) -> str:
    # Tight tiers (1/2/3%) and a 10× sized ema-cross: the breaker locks in the first week.
    return textwrap.dedent(
        f"""
        apiVersion: tradefleet.io/v1alpha1
        kind: TradingBot
        metadata: {{name: breaker-bot}}
        spec:
          mode: paper
          strategy: {{name: ema-cross, params: {{fast: 3, slow: 8, allow_short: true}}}}
          market: {{symbols: [EURUSD], timeframe: 1h}}
          broker: {{name: paper, params: {{fee_bps: 0.2, slippage_bps: 0.3, leverage: 30}}}}
          data: {{name: csv, params: {{path: {EURUSD}, gap_policy: trade}}}}
          risk:
            - name: fixed-fractional
              params: {{risk_per_trade: 0.02, default_stop_pct: 0.002, max_leverage: 10}}
            - name: {BREAKER}
              params: {{warn_drawdown: 0.01, reduce_drawdown: 0.02, lock_drawdown: 0.03,
                        cooldown_minutes: {cooldown_minutes}}}
          capital: {{currency: USD, initial: 100000}}
        """
    )


def _breaker(status: pb.StatusSnapshot) -> pb.RiskPluginState:
    [state] = [r for r in status.risk if r.name == BREAKER]
    return state


def test_breaker_lock_survives_kill_9_and_resets_only_after_cooldown(tmp_path: Path) -> None:
    manifest = breaker_manifest(cooldown_minutes=24 * 60)
    serve = ServeProcess(tmp_path, manifest, speed=36_000).start()
    try:
        # A status read while the bot is still starting lists no risk plugins yet.
        locked = serve.wait_for(
            lambda s: any(r.name == BREAKER and r.locked for r in s.risk), timeout=60
        )
        assert _breaker(locked).tier == 3 and "tier 3" in _breaker(locked).reason
    finally:
        serve.kill()  # SIGKILL: no shutdown code runs
    restarted = ServeProcess(tmp_path, manifest, speed=36_000, journal=serve.journal).start()
    try:
        status = restarted.wait_for(lambda s: s.phase != pb.PHASE_STARTING)
        state = _breaker(status)
        assert state.locked and state.tier == 3 and "tier 3" in state.reason
        with pytest.raises(grpc.RpcError) as refused:
            restarted.stub().ResetRiskLock(
                pb.ResetRiskLockRequest(plugin=BREAKER, reason="too early"), metadata=control()
            )
        assert "cooldown" in str(refused.value.details())
        assert _breaker(restarted.wait_for(lambda s: True)).locked
        since = _since(serve.journal)
        restarted.wait_for(lambda s: s.last_bar_ts >= since + 24 * 3600, timeout=60)
        cleared = restarted.stub().ResetRiskLock(
            pb.ResetRiskLockRequest(plugin=BREAKER, reason="reviewed the losses"),
            metadata=control(),
        )
        assert not _breaker(cleared).locked and _breaker(cleared).tier == 0
        assert restarted.terminate() == 0
    finally:
        restarted.kill()
    assert serve.journal is not None
    with sqlite3.connect(serve.journal) as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM events ORDER BY id")]
        resets = db.execute("SELECT data FROM events WHERE kind = 'risk_lock_reset'").fetchall()
    assert "risk_lock_restored" in kinds and "risk_lock_reset_refused" in kinds
    assert kinds.index("risk_locked") < kinds.index("risk_lock_restored")
    assert len(resets) == 1 and "reviewed the losses" in resets[0][0]


def _since(journal: Path | None) -> int:
    assert journal is not None
    with sqlite3.connect(journal) as db:
        (data,) = db.execute(
            "SELECT data FROM events WHERE kind = 'risk_locked' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    import json

    return int(json.loads(data)["since_ts"])
