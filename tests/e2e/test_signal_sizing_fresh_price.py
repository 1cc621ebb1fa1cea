"""A webhook signal's market entry on a live bot is sized at the market it fills at.

`tradefleet serve` against the fake Binance USDⓈ-M, `fixed-fractional` risking 1% of 100,000
USDT: hourly bars closed at 50,000 (the bot's mark), then the venue's market moved to 50,700
and a signal BUY entry 50,700, stop 49,700 arrived between bars. Sized on the last close the
stop would be 300 away (3.33 BTC, 3,333 USDT at risk at the fill); sized at the broker's
current price (``quotes-prices``) it is 1,000 away: 1 BTC, 1% of the capital.
"""

from __future__ import annotations

import sqlite3
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.serve_process import ServeProcess, control, flat_hours_csv
from tests.venues.binance.server import FakeBinance
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

SYMBOL, VENUE_SYMBOL = "BTC/USDT:USDT", "BTCUSDT"
MARK, MARKET, STOP = 50_000.0, 50_700.0, 49_700.0
CAPITAL, RISK = 100_000.0, 0.01
NAME = "signal-sizing"


@pytest.fixture(name="fake")
def _fake() -> Iterator[FakeBinance]:
    venue = FakeBinance().start()
    venue.set_price(VENUE_SYMBOL, MARK, market="usdm")
    try:
        yield venue
    finally:
        venue.stop()


def _manifest(folder: Path, fake: FakeBinance) -> str:
    keys = folder / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "apiKey").write_text(fake.api_key)
    (keys / "secret").write_text(fake.secret)
    flat_hours_csv(folder / "btc.csv", MARK)
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
          market: {{symbols: ["{SYMBOL}"], timeframe: 1h}}
          broker:
            name: ccxt
            credentialsSecret: {{name: {NAME}-keys}}
            params:
              exchange: binanceusdm
              market_type: linear
              api_url: {fake.url}
              poll_interval_s: 0.05
              timeout_ms: 1500
          data: {{name: csv, params: {{path: {folder / "btc.csv"}, live_rehearsal: true}}}}
          risk: [{{name: fixed-fractional, params: {{risk_per_trade: {RISK}, max_leverage: 5}}}}]
          capital: {{currency: USDT, initial: {CAPITAL:.0f}}}
        """
    )


def _fills(folder: Path) -> list[tuple[float, float]]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        return [(float(q), float(p)) for q, p in db.execute("SELECT quantity, price FROM fills")]
    finally:
        db.close()


def _price_decisions(folder: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        rows = db.execute("SELECT action, reason FROM risk_decisions WHERE plugin = 'engine.price'")
        return [(str(action), str(reason)) for action, reason in rows]
    finally:
        db.close()


def test_a_signals_market_entry_risks_risk_per_trade_at_the_price_it_fills(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(tmp_path / "keys"))
    serve = ServeProcess(tmp_path, _manifest(tmp_path, fake), speed=1.0).start()
    try:
        serve.wait_for(lambda s: s.phase == pb.PHASE_RUNNING and s.reconciled)
        fake.set_price(VENUE_SYMBOL, MARKET, market="usdm")  # the market moves between bars
        time.sleep(3.0)  # the broker reads its ticker every 2 s: it has seen the move since
        request = pb.SubmitSignalRequest(
            symbol=SYMBOL,
            direction=pb.DIRECTION_BUY,
            entry=MARKET,
            stop_loss=STOP,
            take_profit=MARKET + 3_000,
            source="e2e",
        )
        deadline = time.monotonic() + 15.0
        while True:
            answer = serve.stub().SubmitSignal(request, metadata=control())
            if answer.accepted or "no market price" not in answer.reason:
                break
            assert time.monotonic() < deadline, answer.reason
            time.sleep(0.1)
        assert answer.accepted, answer.reason
        deadline = time.monotonic() + 15.0
        while not _fills(tmp_path):
            assert time.monotonic() < deadline, "the entry never filled"
            time.sleep(0.05)
    finally:
        serve.kill()
    [(quantity, price)] = _fills(tmp_path)
    assert price == pytest.approx(MARKET)  # filled at the market, as a market order does
    assert quantity == pytest.approx(RISK * CAPITAL / (MARKET - STOP))  # 1 BTC, not 3.33
    [(action, reason)] = _price_decisions(tmp_path)
    assert action == "approve"
    assert f"sized at the current price to buy {SYMBOL}, 50700 (last close 50000" in reason
    at_risk = quantity * (price - STOP)
    allowed = RISK * CAPITAL
    assert at_risk <= allowed * 1.01, (
        f"{quantity} BTC filled at {price:,.0f} with its stop at {STOP:,.0f}: {at_risk:,.0f} USDT "
        f"at risk ({at_risk / CAPITAL:.2%} of equity) where risk_per_trade allows {allowed:,.0f}"
    )
