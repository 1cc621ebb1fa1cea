"""End to end: metrics, webhook, shutdown and secrets of a real ``tradefleet serve``."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.serve_process import (
    HMAC_KEY,
    SECRETS,
    TRADEFLEET,
    ServeProcess,
    control,
    ema_bot_manifest,
    read_only,
    signal_bot_manifest,
)
from tests.service.webhook_client import WEBHOOK_PATH, sign, signal_body
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.model import OrderStatus
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.quality import MEASURES
from tradefleet_runtime.service.webhook import OUTCOMES

EXPECTED_SERIES = {
    "tradefleet_equity", "tradefleet_balance", "tradefleet_drawdown_ratio", "tradefleet_pnl_today",
    "tradefleet_pnl", "tradefleet_open_positions", "tradefleet_open_orders",
    "tradefleet_orders", "tradefleet_fills", "tradefleet_fees", "tradefleet_slippage_bps",
    "tradefleet_risk_decisions", "tradefleet_halted", "tradefleet_paused",
    "tradefleet_bar_to_order_seconds", "tradefleet_broker_request_seconds",
    "tradefleet_last_bar_age_seconds", "tradefleet_webhook_requests", "tradefleet_build_info",
    "tradefleet_phase", "tradefleet_quality_mean", "tradefleet_bot_info",
    "tradefleet_position_quantity", "tradefleet_position_notional",
}  # fmt: skip
REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _http(serve: ServeProcess, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{serve.http_port}{path}",
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _post_signal(serve: ServeProcess, **overrides: object) -> tuple[int, dict[str, object]]:
    body = signal_body(**overrides)
    headers = sign(HMAC_KEY.encode(), body, int(time.time()))
    status, text = _http(serve, WEBHOOK_PATH, body, headers)
    return status, json.loads(text)


MARKET_BUY = {
    "symbol": "EURUSD",
    "direction": "BUY",
    "price_levels": {
        "entry": 1.052,
        "stop_loss": 1.040,
        "take_profit": 1.070,
        "current_price": 1.052,
    },
    "volume": None,
}


def test_a_signed_webhook_signal_becomes_an_order_through_the_risk_chain(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, signal_bot_manifest(entry_order="market"), speed=600).start()
    try:
        serve.wait_for(lambda s: s.bars >= 1)
        status, answer = _post_signal(serve, **MARKET_BUY)
        assert status == 202, answer
        order_id = answer["client_order_id"]
        orders = serve.stub().ListOrders(
            pb.ListOrdersRequest(include_closed=True), metadata=control()
        )
        assert order_id in {o.client_order_id for o in orders.orders}
        forged = signal_body(**MARKET_BUY)
        bad = sign(b"not-the-key", forged, int(time.time()))
        assert _http(serve, WEBHOOK_PATH, forged, bad)[0] == 401
        assert serve.terminate() == 0
    finally:
        serve.kill()
    with sqlite3.connect(serve.journal) as db:
        decisions = db.execute(
            "SELECT plugin, action FROM risk_decisions WHERE client_order_id = ?", (order_id,)
        ).fetchall()
        tags = db.execute(
            "SELECT tag FROM orders WHERE client_order_id = ?", (order_id,)
        ).fetchall()
    assert decisions == [("fixed-fractional", "approve")]  # sized by the bot's sizer
    assert tags == [("M5_BOS",)]


def test_metrics_parse_and_every_label_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEFLEET_TEAM", "desk-fx")  # as the operator sets it in the pod
    manifest = signal_bot_manifest(entry_order="market")
    serve = ServeProcess(tmp_path, manifest, speed=36000).start()
    try:
        serve.wait_for(lambda s: s.bars >= 2)
        assert _post_signal(serve, **MARKET_BUY)[0] == 202
        assert _post_signal(serve, symbol="GBPUSD")[0] == 422
        serve.wait_for(lambda s: s.open_positions >= 1 or s.bars > 100)
        status, text = _http(serve, "/metrics")
        assert status == 200
    finally:
        serve.kill()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    missing = EXPECTED_SERIES - set(families)
    assert not missing, missing
    allowed = {
        "bot": {"signal-bot"},
        "symbol": {"EURUSD"},
        "plugin": {"fixed-fractional", "engine.paused", "engine.halted", "engine.sizing"},
        "state": {s.value for s in OrderStatus},
        "side": {"buy", "sell"},
        "action": {"approve", "shrink", "veto"},
        "outcome": set(OUTCOMES),
        "operation": {"submit", "cancel", "submit_rejected"},
        "phase": {p.value for p in Phase},
        "measure": set(MEASURES),
        "currency": {"USD"},
        "strategy": {"external-signal"},
        "team": {"desk-fx"},
        "mode": {"paper"},
        "broker": {"paper"},
        "version": None,  # the package version
        "le": None,  # histogram buckets
    }
    for family in families.values():
        for sample in family.samples:
            for label, value in sample.labels.items():
                assert label in allowed or label == "reason", (family.name, label)
                if label == "reason":
                    assert REASON_CODE.match(value), (family.name, value)
                elif allowed[label] is not None:
                    assert value in allowed[label], (family.name, label, value)
    fills = sum(s.value for s in families["tradefleet_fills"].samples if s.name.endswith("_total"))
    assert fills >= 1
    webhook = {s.labels["outcome"]: s.value for s in families["tradefleet_webhook_requests"].samples
               if s.name.endswith("_total")}  # fmt: skip
    assert webhook["accepted"] == 1 and webhook["unknown_symbol"] == 1
    # Issue 18, item 5: the desk's labels and the position held, read from the snapshot.
    (info,) = families["tradefleet_bot_info"].samples
    assert info.labels["team"] == "desk-fx" and info.labels["strategy"] == "external-signal"
    (held,) = families["tradefleet_position_quantity"].samples
    (notional,) = families["tradefleet_position_notional"].samples
    assert held.labels == {"bot": "signal-bot", "symbol": "EURUSD"} and held.value > 0
    assert notional.labels["currency"] == "USD"
    assert notional.value == pytest.approx(held.value * 1.05, rel=0.1)  # EURUSD near 1.05
    for name in ("tradefleet_equity", "tradefleet_fees"):
        assert all(s.labels["currency"] == "USD" for s in families[name].samples), name


def test_serve_refuses_a_team_that_is_not_a_label_value(tmp_path: Path) -> None:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(signal_bot_manifest())
    failure = tmp_path / "termination-log"
    result = subprocess.run(
        [TRADEFLEET, "serve", str(manifest), "--insecure-no-auth", "--team", "two words",
         "--failure-file", str(failure)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "TRADEFLEET_TEAM": ""},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "refused: --team: not a valid team name" in result.stderr
    assert failure.read_text().startswith("--team: ")


def test_sigterm_while_trading_names_every_open_position(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, ema_bot_manifest(), speed=360000).start()
    try:
        serve.wait_for(lambda s: s.open_positions >= 1, timeout=60, every=0.02)
        assert serve.terminate() == 0
    finally:
        serve.kill()
    with sqlite3.connect(serve.journal) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (status,) = db.execute("SELECT status FROM runs").fetchone()
        open_rows = db.execute("SELECT symbol FROM positions WHERE quantity != 0").fetchall()
        signed = db.execute(
            "SELECT SUM(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) FROM fills"
        ).fetchone()[0]
        held = db.execute("SELECT SUM(quantity) FROM positions").fetchone()[0]
        events = [
            m for (m,) in db.execute("SELECT message FROM events WHERE kind = 'open_position'")
        ]
    assert status == "stopped"
    assert held == pytest.approx(signed, abs=1e-9)
    assert open_rows, "the bot should have held a position when stopped"
    for (symbol,) in open_rows:
        assert any(symbol in message for message in events)
        assert f"open position at shutdown: {symbol}" in serve.output()
    assert '"event": "stopped"' in serve.output()
    for line in serve.stderr:  # structured logs: one JSON object a line
        entry = json.loads(line)
        assert entry["bot"] == "ema-bot" and entry["level"] and entry["message"]


def test_no_planted_secret_appears_in_any_output(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, signal_bot_manifest(entry_order="market"), speed=3600).start()
    seen: list[str] = []
    try:
        serve.wait_for(lambda s: s.bars >= 1)
        stub = serve.stub()
        events = stub.StreamEvents(pb.StreamEventsRequest(max_queue=50), metadata=read_only())
        seen.append(str(stub.GetStatus(pb.GetStatusRequest(), metadata=read_only())))
        seen.append(json.dumps(_post_signal(serve, **MARKET_BUY)[1]))
        for headers in (
            {},
            sign(b"wrong", b"{}", int(time.time())),
            {"X-Tradefleet-Key-Id": "nope"},
        ):
            seen.append(_http(serve, WEBHOOK_PATH, b'{"symbol": 1}', headers)[1])
        for metadata in ((("authorization", "Bearer wrong-token"),), read_only()):
            try:
                stub.EmergencyStop(pb.EmergencyStopRequest(reason="x"), metadata=metadata)
            except grpc.RpcError as error:
                seen.append(f"{error.code()} {error.details()}")
        stub.EmergencyStop(pb.EmergencyStopRequest(reason="secret test"), metadata=control())
        seen.append(
            str(stub.ListOrders(pb.ListOrdersRequest(include_closed=True), metadata=control()))
        )
        seen.append(_http(serve, "/metrics")[1])
        seen.append(_http(serve, "/readyz")[1])
        deadline = time.monotonic() + 3
        for event in events:
            seen.append(str(event))
            if time.monotonic() > deadline or event.kind == pb.EVENT_KIND_STATE:
                break
        events.cancel()
        assert serve.terminate() == 0
    finally:
        serve.kill()
    seen.append(serve.output())
    journal = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite*"))
    with sqlite3.connect(serve.journal) as db:
        for (table,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        ).fetchall():
            seen.append(str(db.execute(f"SELECT * FROM {table}").fetchall()))
    everything = "\n".join(seen)
    assert "secret test" in everything  # the outputs were really collected
    for secret in SECRETS:
        assert secret not in everything
        assert secret.encode() not in journal
