"""The paper broker's reason for a cancelled bracket child says what happened to its sibling.

A bracket's stop-loss and take-profit are one-cancels-other. When something else closed the
position first (a risk plugin's flatten, a close) and the stop-loss then triggers, it finds no
position to reduce and is cancelled; its take-profit was cancelled as "one-cancels-other sibling
filled", so the order log told the risk manager the stop-loss had filled, while the journal said
it was cancelled and the position closed by the flatten. The take-profit's reason now says the
position was already at 0 and the sibling was cancelled, not filled (the engine's words for a
child it cuts to nothing: "nothing left to close"); when a reversal left the position on the
other side, the reason names it (short 1, not long), never a flat account. A cancel the bot
asks for says so (the journal keeps the reason, not the code).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.model import Bar, Fill, Order, OrderStatus, OrderUpdate, Side
from tradefleet_runtime.spec.model import Mode

ROOT = Path(__file__).resolve().parents[2]
TRADEFLEET = str(ROOT / ".venv" / "bin" / "tradefleet")
HOUR, T0, BTC = 3_600, 1_700_000_000 - 1_700_000_000 % 3_600, "BTCUSDT"


def _venue() -> PaperBroker:
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("paper-oco", Mode.PAPER, (BTC,), "USD", 10_000.0))
    return broker


def _updates(events: Sequence[object]) -> dict[str, OrderUpdate]:
    return {e.client_order_id: e for e in events if isinstance(e, OrderUpdate)}


def test_a_take_profit_whose_stop_found_no_position_is_not_said_cancelled_for_a_fill() -> None:
    broker = _venue()
    entry = Order("e1", BTC, Side.BUY, 1.0, stop_loss=95.0, take_profit=110.0, created_ts=T0)
    assert broker.submit(entry).status is OrderStatus.OPEN
    broker.on_bar(Bar(BTC, HOUR, T0, 100.0, 100.0, 100.0, 100.0, 1.0))  # filled, bracketed
    close = Order("c1", BTC, Side.SELL, 1.0, reduce_only=True, created_ts=T0 + HOUR)
    assert broker.submit(close).status is OrderStatus.OPEN
    # The close fills at the open; the same bar then trades through the stop-loss.
    events = list(broker.on_bar(Bar(BTC, HOUR, T0 + HOUR, 100.0, 100.0, 90.0, 92.0, 1.0)))
    assert [e.client_order_id for e in events if isinstance(e, Fill)] == ["c1"]
    updates = _updates(events)
    stop, target = updates["e1-sl"], updates["e1-tp"]
    assert stop.status is OrderStatus.CANCELLED and "no position to reduce" in stop.reason
    assert target.status is OrderStatus.CANCELLED
    assert "filled" not in target.reason.replace("not filled", ""), target.reason
    assert target.reason.startswith("nothing left to close: the BTCUSDT position is at 0")
    assert "e1-sl" in target.reason


def test_a_take_profit_cancelled_while_a_reversal_left_the_account_short_names_the_short() -> None:
    """A long's stop-loss that triggers after a reversal (sell 2 against a long 1) finds a
    short, nothing to reduce: the take-profit's reason names the short, never a flat account."""
    broker = _venue()
    entry = Order("e1", BTC, Side.BUY, 1.0, stop_loss=95.0, take_profit=110.0, created_ts=T0)
    broker.submit(entry)
    broker.on_bar(Bar(BTC, HOUR, T0, 100.0, 100.0, 100.0, 100.0, 1.0))  # long 1, bracketed
    # The reversal fills at the next open; the same bar trades through the long's stop-loss.
    broker.submit(Order("r1", BTC, Side.SELL, 2.0, created_ts=T0 + HOUR))
    events = list(broker.on_bar(Bar(BTC, HOUR, T0 + HOUR, 100.0, 100.0, 90.0, 92.0, 1.0)))
    updates = _updates(events)
    assert updates["e1-sl"].status is OrderStatus.CANCELLED, updates
    target = updates["e1-tp"]
    assert target.status is OrderStatus.CANCELLED
    assert broker.positions()[BTC].quantity == -1.0
    assert target.reason.startswith(
        "nothing left to close: the BTCUSDT position is short 1, not long: nothing of it to "
        "reduce (one-cancels-other sibling e1-sl triggered"
    ), target.reason
    assert "position is at 0" not in target.reason


def test_a_short_s_take_profit_cancelled_while_the_account_is_long_names_the_long() -> None:
    """The mirror: a short's stop-loss (a reduce-only buy) finding a long."""
    broker = _venue()
    entry = Order("e1", BTC, Side.SELL, 1.0, stop_loss=105.0, take_profit=90.0, created_ts=T0)
    broker.submit(entry)
    broker.on_bar(Bar(BTC, HOUR, T0, 100.0, 100.0, 100.0, 100.0, 1.0))  # short 1, bracketed
    broker.submit(Order("r1", BTC, Side.BUY, 2.5, created_ts=T0 + HOUR))
    events = list(broker.on_bar(Bar(BTC, HOUR, T0 + HOUR, 100.0, 110.0, 100.0, 108.0, 1.0)))
    target = _updates(events)["e1-tp"]
    assert target.status is OrderStatus.CANCELLED
    assert broker.positions()[BTC].quantity == 1.5
    assert "the BTCUSDT position is long 1.5, not short: nothing of it to reduce" in (
        target.reason
    ), target.reason


def test_a_take_profit_whose_stop_filled_still_says_so() -> None:
    broker = _venue()
    entry = Order("e1", BTC, Side.BUY, 1.0, stop_loss=95.0, take_profit=110.0, created_ts=T0)
    broker.submit(entry)
    broker.on_bar(Bar(BTC, HOUR, T0, 100.0, 100.0, 100.0, 100.0, 1.0))
    events = list(broker.on_bar(Bar(BTC, HOUR, T0 + HOUR, 100.0, 100.0, 90.0, 92.0, 1.0)))
    assert [e.client_order_id for e in events if isinstance(e, Fill)] == ["e1-sl"]
    assert _updates(events)["e1-tp"].reason == "one-cancels-other sibling filled"


def test_a_cancel_the_bot_asks_for_says_who_asked() -> None:
    broker = _venue()
    broker.submit(Order("o1", BTC, Side.BUY, 1.0, created_ts=T0))
    update = broker.cancel("o1")
    assert update is not None and update.status is OrderStatus.CANCELLED
    assert update.reason == "cancelled at the bot's request"


MANIFEST = f"""\
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata:
  name: chain
spec:
  mode: backtest
  strategy:
    name: ema-cross
    params: {{fast: 12, slow: 48, stop_loss_pct: 0.004, take_profit_pct: 0.008}}
  market:
    symbols: [EURUSD]
    timeframe: 1h
  broker:
    name: paper
    params: {{fee_bps: 0.2, slippage_bps: 0.3, leverage: 30}}
  data:
    name: csv
    params: {{path: {ROOT / "data" / "EURUSD_H1_2017.csv"}}}
  risk:
    - name: fixed-fractional
      params: {{risk_per_trade: 0.02, max_leverage: 10}}
    - name: circuit-breaker
      params: {{warn_drawdown: 0.01, reduce_drawdown: 0.02, lock_drawdown: 0.03,
               max_drawdown: 0.05, weekly_loss: 0.04, cooldown_minutes: 60}}
    - name: pre-trade
      params: {{max_order_quantity: 500000, max_order_notional: 600000, max_leverage: 8,
               max_gross_exposure: 8}}
    - name: prop-firm
      params: {{preset: ftmo-2step}}
    - name: probation
      params: {{window_trades: 10, half_at: 0.02, quarter_at: 0.04, hibernate_at: 0.06}}
    - name: exits
      params: {{trailing_pct: 0.003}}
    - name: quality-guard
      params: {{}}
  capital: {{currency: USD, initial: 100000}}
"""


def test_no_child_of_a_chain_backtest_is_said_cancelled_for_a_fill_that_never_happened(
    tmp_path: Path,
) -> None:
    """The walkthrough's chain on the bundled EURUSD 2017 hours reaches bars where the exits
    plugin's flatten closes a long before its stop-loss triggers with nothing to reduce."""
    manifest = tmp_path / "chain.yaml"
    manifest.write_text(MANIFEST)
    journal = tmp_path / "chain.sqlite"
    done = subprocess.run(
        [TRADEFLEET, "backtest", str(manifest), "--journal", str(journal)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(journal) as db:
        said = db.execute(
            "SELECT o.client_order_id, o.parent_id FROM order_updates u JOIN orders o"
            " USING (client_order_id) WHERE u.reason = 'one-cancels-other sibling filled'"
        ).fetchall()
        wrong = []
        for child, parent in said:
            filled = db.execute(
                "SELECT COUNT(*) FROM fills f JOIN orders o USING (client_order_id)"
                " WHERE o.parent_id = ? AND o.client_order_id != ?",
                (parent, child),
            ).fetchone()[0]
            if not filled:
                wrong.append(child)
        flat = db.execute(
            "SELECT COUNT(*) FROM order_updates WHERE reason LIKE 'nothing left to close: %'"
        ).fetchone()[0]
    assert said, "no take-profit or stop-loss was cancelled for its sibling's fill"
    assert not wrong, f"said cancelled for a sibling's fill, but no sibling filled: {wrong}"
    assert flat, "the bar where a flatten closes before the stop-loss is no longer reached"
