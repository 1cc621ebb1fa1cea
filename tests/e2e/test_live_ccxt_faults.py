"""Each venue fault, through the whole bot: engine, `ccxt` broker, journal, fake USDⓈ-M.

A live bot (`external-signal`, a market entry with its bracket) is handed one signal while the
fake venue misbehaves in one named way. When the dust settles the journal holds exactly the
venue's fills, no client order id was placed twice at the venue, and the order has an answer.
(The broker-level fault tests in `tests/brokers/test_ccxt_faults.py` check the broker's reports
against the venue; these check the journal.)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.serve_process import flat_hours_csv
from tests.e2e.test_live_ccxt_restart import (
    API_KEY,
    API_SECRET,
    PRICE,
    SYMBOL,
    VENUE_SYMBOL,
    _assert_journal_is_the_venue,
    _venue_fills,
)
from tests.venues.binance.server import FakeBinance
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.order_ids import original_order_id
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.signals import Direction, Signal
from tradefleet_runtime.spec import load_manifest

ORDER_PATH = "/fapi/v1/order"
NAME = "live-faults"

FAULTS: dict[str, dict[str, Any]] = {
    "accept_then_timeout": {"hold_s": 3},
    "accept_then_drop": {},
    "drop_connection": {},
    "server_error": {"status": 503, "times": 3},
    "rate_limit": {"retry_after": 1, "times": 2},
    "ip_ban": {"retry_after": 1},
    "partial_fill": {"fraction": 0.3},
    "reject": {"code": -2019, "msg": "Margin is insufficient.", "status": 400},
}


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    venue = FakeBinance().start()
    venue.add_account(API_KEY, API_SECRET, futures={"USDT": 1_000_000})
    venue.api_key = API_KEY
    venue.set_price(VENUE_SYMBOL, PRICE, market="usdm")
    try:
        yield venue
    finally:
        venue.stop()


def _session(folder: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch) -> BotSession:
    keys = folder / "keys"
    keys.mkdir()
    (keys / "apiKey").write_text(API_KEY)
    (keys / "secret").write_text(API_SECRET)
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(keys))
    manifest = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": NAME},
        "spec": {
            "mode": "live",
            "liveConfirmation": NAME,
            "strategy": {"name": "external-signal", "params": {"max_entry_deviation_pct": 3}},
            "market": {"symbols": [SYMBOL], "timeframe": "1h"},
            "broker": {
                "name": "ccxt",
                "credentialsSecret": {"name": f"{NAME}-keys"},
                "params": {
                    "exchange": "binanceusdm",
                    "market_type": "linear",
                    "api_url": fake.url,
                    "poll_interval_s": 0.05,
                    "timeout_ms": 1500,
                    "backoff_base_s": 0.05,
                    "backoff_max_s": 0.5,
                },
            },
            "data": {
                "name": "csv",
                "params": {
                    "path": str(flat_hours_csv(folder / "btc.csv", PRICE)),
                    "live_rehearsal": True,
                },
            },
            "risk": [{"name": "fixed-size", "params": {"quantity": 0.01}}],
            "capital": {"currency": "USDT", "initial": 100000},
        },
    }
    path = folder / "bot.yaml"
    path.write_text(yaml.safe_dump(manifest))
    bot = assemble(load_manifest(path), PluginRegistry.discover(), folder)
    return BotSession(bot, Journal(folder / "journal.sqlite", durable=True))


@pytest.mark.parametrize("fault", FAULTS)
def test_a_venue_fault_ends_with_the_journal_equal_to_the_venue(
    fault: str, tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(tmp_path, fake, monkeypatch)
    engine = session.open()
    try:
        session.run()  # the bars up to now: nothing is asked of the venue yet
        fake.faults.inject(fault, path=ORDER_PATH, method="POST", **FAULTS[fault])
        signal = Signal(SYMBOL, Direction.BUY, PRICE, PRICE * 0.96, PRICE * 1.04, source="e2e")
        accepted, reason, order_id = engine.handle_signal(signal)
        assert accepted, reason
        deadline = time.monotonic() + 30
        settled = False
        children = {f"{order_id}-sl", f"{order_id}-tp"}
        part_protected = False  # the first part's stop and target seen at the venue
        while time.monotonic() < deadline and not settled:
            engine.pump()
            if fault == "partial_fill" and _venue_fills(fake) and not part_protected:
                part = _venue_traded(fake)
                part_protected = _venue_quantities(fake, children) == dict.fromkeys(children, part)
                if part_protected:  # the rest of the entry trades later
                    fake.set_price(VENUE_SYMBOL, PRICE, market="usdm")
            working = {o.client_order_id for o in engine.open_orders()}
            settled = order_id not in working and (
                fault == "reject"
                or (
                    children <= working
                    and _venue_quantities(fake, children)
                    == dict.fromkeys(children, _venue_traded(fake))
                )
            )
            time.sleep(0.05)
        assert settled, f"{fault}: the order never settled"
        assert part_protected or fault != "partial_fill"
        session.close("completed")
    finally:
        session.bot.broker.close()
        session.journal.close()
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    if fault == "reject":
        assert statuses[order_id] == "rejected" and not _venue_fills(fake)
    else:
        assert statuses[order_id] == "filled"
        assert sum(1 for _ in _venue_fills(fake)) >= 1
        # The bracket covers all the entry executed, in the journal as at the venue (the
        # broker places the children at the entry's first fill and resizes them as it fills).
        entry, children = _quantities(tmp_path, order_id)
        assert children == {f"{order_id}-sl": entry, f"{order_id}-tp": entry}
        assert _venue_quantities(fake, children) == children


def _quantities(folder: Path, order_id: str) -> tuple[float, dict[str, float]]:
    """What the entry executed, and its children's quantities, as the journal has them."""
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        (filled,) = db.execute(
            "SELECT SUM(quantity) FROM fills WHERE client_order_id = ?", (order_id,)
        ).fetchone()
        children = dict(
            db.execute(
                "SELECT client_order_id, quantity FROM orders WHERE parent_id = ?", (order_id,)
            )
        )
    finally:
        db.close()
    return filled, children


def _venue_traded(fake: FakeBinance) -> float:
    """What the account traded at the venue (the entry's part, before any child fills)."""
    with fake.state.lock:
        return sum(
            float(t.qty)
            for (account, _symbol), trades in fake.state.usdm.trades.items()
            if account == fake.api_key
            for t in trades
        )


def _venue_quantities(fake: FakeBinance, ids: Iterable[str]) -> dict[str, float]:
    """The working conditional orders of these ids at the venue (a child resized as its entry
    filled is the one placed again under ``<id>-a<n>``, its first copy cancelled)."""
    wanted = set(ids)
    with fake.state.lock:
        return {
            original_order_id(a.client_algo_id): float(a.quantity)
            for a in fake.state.usdm.algo_orders.values()
            if original_order_id(a.client_algo_id) in wanted and a.status == "NEW"
        }
