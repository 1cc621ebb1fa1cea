"""A live bot on a real venue's API, SIGKILLed at the worst moments and started again.

`tradefleet serve` runs a `live` bot (`external-signal`, the `ccxt` broker) against the fake
Binance USDⓈ-M in this process; its credentials are files in a folder, as the operator mounts
the Secret. The process is killed

- between submit and ack: the venue executed the order, its answer never came back;
- before the venue saw the order at all (the request hung unexecuted);
- between ack and fill: a limit order rested, then filled while the bot was down;
- after its entry filled, before the venue took the stop-loss and take-profit;
- with a position and its bracket at the venue: the stop triggered while the bot was down;

and, alive, its stop-loss is refused by the venue (the position is closed, not left bare).

After the restart the bot reconciles with the venue before it trades: afterwards the journal
holds exactly the venue's fills, every order has the venue's final word, and no client order
id was ever placed twice.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serve_process import ServeProcess, control, flat_hours_csv
from tests.venues.binance.server import FakeBinance
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

SYMBOL = "BTC/USDT:USDT"
VENUE_SYMBOL = "BTCUSDT"
PRICE = 50_000.0
NAME = "live-restart"
# The account's credentials, planted: they must appear in no log line, error or journal byte.
# (Binance keys are 64 letters and digits; the fake refuses any other shape.)
API_KEY = "PLANTEDKEY" + "7f3a9c" * 9
API_SECRET = "PLANTEDSECRET" + "2b8e41" * 8 + "abc"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    venue = FakeBinance().start()
    venue.add_account(API_KEY, API_SECRET, futures={"USDT": 1_000_000})
    venue.api_key = API_KEY  # the fake's own views (orders, trades) are of this account
    venue.set_price(VENUE_SYMBOL, PRICE, market="usdm")
    try:
        yield venue
    finally:
        venue.stop()


def _bot(
    folder: Path,
    fake: FakeBinance,
    entry_order: str,
    symbol: str = SYMBOL,
    exchange: str = "binanceusdm",
    market_type: str = "linear",
) -> str:
    """The bot's manifest (Binance USDⓈ-M unless told), its keys and its bars in ``folder``."""
    keys = folder / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "apiKey").write_text(API_KEY)
    (keys / "secret").write_text(API_SECRET)
    flat_hours_csv(folder / "btc.csv", PRICE)
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
            params: {{entry_order: {entry_order}, max_entry_deviation_pct: 3}}
          market: {{symbols: ["{symbol}"], timeframe: 1h}}
          broker:
            name: ccxt
            credentialsSecret: {{name: {NAME}-keys}}
            params:
              exchange: {exchange}
              market_type: {market_type}
              api_url: {fake.url}
              poll_interval_s: 0.05
              timeout_ms: 1500
              backoff_base_s: 0.05
              backoff_max_s: 0.5
          data: {{name: csv, params: {{path: {folder / "btc.csv"}, live_rehearsal: true}}}}
          risk: [{{name: fixed-size, params: {{quantity: 0.01}}}}]
          capital: {{currency: USDT, initial: 100000}}
        """
    )


def _serve(folder: Path, manifest: str, monkeypatch: pytest.MonkeyPatch) -> ServeProcess:
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(folder / "keys"))
    serve = ServeProcess(folder, manifest, speed=1.0).start()
    serve.wait_for(lambda s: s.phase == pb.PHASE_RUNNING and s.reconciled)
    return serve


def _signal(serve: ServeProcess, entry: float, symbol: str = SYMBOL) -> str:
    request = pb.SubmitSignalRequest(
        symbol=symbol,
        direction=pb.DIRECTION_BUY,
        entry=entry,
        stop_loss=entry * 0.96,
        take_profit=entry * 1.04,
        source="e2e",
    )
    deadline = time.monotonic() + 15.0
    while True:
        answer = serve.stub().SubmitSignal(request, metadata=control())
        # Running and reconciled comes before the first bar's price on a loaded machine: the
        # bot refuses a signal it cannot price yet (and says so), so ask again.
        if answer.accepted or "no market price" not in answer.reason:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer.accepted, answer.reason
    return answer.client_order_id


def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _venue_client_ids(fake: FakeBinance) -> list[str]:
    with fake.state.lock:
        algos = list(fake.state.usdm.algo_orders.values())
    # A triggered conditional order places a regular order under the same id: count it once.
    placed = {a.client_algo_id for a in algos if a.actual_order_id is not None}
    ids = [o.client_order_id for o in fake.orders("usdm") if o.client_order_id not in placed]
    return ids + [a.client_algo_id for a in algos]


def _venue_fills(fake: FakeBinance) -> list[str]:
    with fake.state.lock:
        return [
            str(t.id)
            for (account, _symbol), trades in fake.state.usdm.trades.items()
            if account == fake.api_key
            for t in trades
        ]


def _journal(folder: Path) -> tuple[list[str], dict[str, str]]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        fills = [r[0] for r in db.execute("SELECT fill_id FROM fills")]
        statuses = dict(db.execute("SELECT client_order_id, status FROM order_status").fetchall())
    finally:
        db.close()
    return fills, statuses


def _kill(serve: ServeProcess) -> None:
    assert serve.process is not None
    serve.process.send_signal(signal.SIGKILL)
    serve.process.wait(10)
    serve.kill()


def _assert_journal_is_the_venue(folder: Path, fake: FakeBinance) -> dict[str, str]:
    fills, statuses = _journal(folder)
    assert Counter(fills) == Counter(_venue_fills(fake)), "journal fills = venue fills"
    doubled = [i for i, n in Counter(_venue_client_ids(fake)).items() if n > 1]
    assert not doubled, f"client ids placed twice at the venue: {doubled}"
    return statuses


def test_killed_between_submit_and_ack_the_venue_order_is_journaled_once_after_restart(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    serve = _serve(tmp_path, manifest, monkeypatch)
    # The venue executes the order, and its answer never leaves: then the bot dies.
    fake.faults.inject("accept_then_timeout", path="/fapi/v1/order", method="POST")
    order_id = _signal(serve, PRICE)
    _until(lambda: order_id in _venue_client_ids(fake))
    _kill(serve)
    fake.faults.clear()
    assert _journal(tmp_path)[1][order_id] == "pending"

    again = _serve(tmp_path, manifest, monkeypatch)
    try:
        status = again.wait_for(lambda s: s.open_positions == 1 and s.open_orders == 2)
        assert status.reconciled
        # The bracket the restarted bot placed reaches the venue (ccxt spaces orders).
        _until(lambda: {f"{order_id}-sl", f"{order_id}-tp"} <= set(_venue_client_ids(fake)))
    finally:
        assert again.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert statuses[order_id] == "filled"
    assert _venue_client_ids(fake).count(order_id) == 1
    # The entry filled while the bot was down, so it never placed the bracket: the restarted
    # bot did, sized on the fill (the position is not left without its stop).
    assert {f"{order_id}-sl", f"{order_id}-tp"} <= set(_venue_client_ids(fake))
    assert statuses[f"{order_id}-sl"] == "open"
    # The planted credentials: in no log line or error of either process, nor the journal.
    logs = serve.output() + again.output()
    assert "reconciled with the venue" in logs
    journal = b"".join(f.read_bytes() for f in tmp_path.glob("journal.sqlite*"))
    for secret in (API_KEY, API_SECRET):
        assert secret not in logs
        assert secret.encode() not in journal


def test_killed_before_the_venue_saw_the_order_it_is_closed_not_resent(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    serve = _serve(tmp_path, manifest, monkeypatch)
    # The request hangs unexecuted (a network that swallowed it); the bot dies meanwhile.
    fake.faults.inject("timeout", path="/fapi/v1/order", method="POST")
    order_id = _signal(serve, PRICE)
    _until(lambda: bool(fake.order_requests("usdm")))
    _kill(serve)
    fake.faults.clear()

    again = _serve(tmp_path, manifest, monkeypatch)
    try:
        time.sleep(1.0)  # the restarted bot's pollers run: nothing may be sent for this order
        status = again.wait_for(lambda s: s.reconciled)
        assert status.open_positions == 0
    finally:
        assert again.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert statuses[order_id] == "cancelled"
    assert order_id not in _venue_client_ids(fake)


def _resting_limit_then_killed(
    folder: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """A bot whose limit entry (with its bracket) rests below the market is SIGKILLed: its
    manifest and the entry's id."""
    manifest = _bot(folder, fake, "limit")
    serve = _serve(folder, manifest, monkeypatch)
    order_id = _signal(serve, PRICE * 0.99)  # rests below the market
    serve.wait_for(lambda s: s.open_orders == 1)
    _until(lambda: _journal(folder)[1].get(order_id) == "open")
    _kill(serve)
    return manifest, order_id


def test_killed_between_ack_and_fill_the_fill_while_down_is_journaled_after_restart(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, order_id = _resting_limit_then_killed(tmp_path, fake, monkeypatch)
    # While the bot is down the market trades through the limit: it fills at the venue.
    fake.set_price(VENUE_SYMBOL, PRICE * 0.985, market="usdm")
    assert len(_venue_fills(fake)) == 1

    again = _serve(tmp_path, manifest, monkeypatch)
    try:
        again.wait_for(lambda s: s.open_positions == 1 and s.open_orders == 2)
        _until(lambda: {f"{order_id}-sl", f"{order_id}-tp"} <= set(_venue_client_ids(fake)))
    finally:
        assert again.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert statuses[order_id] == "filled"
    assert {f"{order_id}-sl", f"{order_id}-tp"} <= set(_venue_client_ids(fake))


def test_a_stop_hit_while_down_is_a_stop_loss_exit_and_its_target_is_cancelled(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    serve = _serve(tmp_path, manifest, monkeypatch)
    order_id = _signal(serve, PRICE)
    stop, target = f"{order_id}-sl", f"{order_id}-tp"
    _until(lambda: {stop, target} <= set(_venue_client_ids(fake)))
    _until(lambda: _journal(tmp_path)[1].get(target) == "open")
    _kill(serve)
    # While the bot is down the market falls through the stop: the venue closes the position
    # and leaves the target working (Binance does not link the two).
    fake.set_price(VENUE_SYMBOL, PRICE * 0.95, market="usdm")
    assert len(_venue_fills(fake)) == 2
    assert _algo_status(fake, target) == "NEW"

    again = _serve(tmp_path, manifest, monkeypatch)
    try:
        # The target protected the closed position: left working, it would sell out of the
        # next long the bot opens. The restarted bot cancels it at the venue.
        _until(lambda: _algo_status(fake, target) == "CANCELED")
        status = again.wait_for(lambda s: s.open_orders == 0)
        assert status.open_positions == 0
    finally:
        assert again.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert (statuses[stop], statuses[target]) == ("filled", "cancelled")
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        reasons = db.execute(
            "SELECT reason FROM fills WHERE client_order_id = ?", (stop,)
        ).fetchall()
        exits = db.execute("SELECT entry_reason, exit_reason FROM trades").fetchall()
    finally:
        db.close()
    # The stop's fill is a stop-loss exit, as if the bot had seen it (not "reconciled", which
    # the report counted as a strategy's own exit).
    assert reasons == [("stop_loss",)]
    assert exits == [("signal", "stop_loss")]


def _algo_status(fake: FakeBinance, client_id: str) -> str:
    with fake.state.lock:
        for algo in fake.state.usdm.algo_orders.values():
            if algo.client_algo_id == client_id:
                return str(algo.status)
    return ""


def test_killed_after_the_entry_filled_before_the_venue_took_its_stop_the_stop_is_sent(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    serve = _serve(tmp_path, manifest, monkeypatch)
    # The bracket's placement hangs unexecuted: the bot dies with its entry filled, the stop-loss
    # and take-profit journaled but never at the venue.
    fake.faults.inject("timeout", path="/fapi/v1/algoOrder", method="POST", times=None)
    order_id = _signal(serve, PRICE)
    stop, target = f"{order_id}-sl", f"{order_id}-tp"
    _until(lambda: _journal(tmp_path)[1].get(target) == "open")
    _kill(serve)
    fake.faults.clear()
    assert _venue_client_ids(fake) == [order_id]

    again = _serve(tmp_path, manifest, monkeypatch)
    try:
        # Closing them as never sent would leave the position without its stop-loss.
        _until(lambda: _algo_status(fake, stop) == _algo_status(fake, target) == "NEW")
        status = again.wait_for(lambda s: s.open_orders == 2)
        assert (status.open_positions, status.reconciled) == (1, True)
        # The stop acts: the market falls through it and the restarted bot books the exit.
        fake.set_price(VENUE_SYMBOL, PRICE * 0.95, market="usdm")
        again.wait_for(lambda s: s.open_positions == 0 and s.open_orders == 0)
    finally:
        assert again.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert (statuses[stop], statuses[target]) == ("filled", "cancelled")
    assert _venue_client_ids(fake).count(stop) == 1


def test_a_stop_the_venue_refuses_closes_its_position_at_market(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    serve = _serve(tmp_path, manifest, monkeypatch)
    try:
        # The stop-loss is refused (the market already crossed it): the position must not run
        # without it. The take-profit was placed; it goes with the position.
        fake.faults.inject(
            "reject",
            path="/fapi/v1/algoOrder",
            method="POST",
            code=-2021,
            msg="Order would immediately trigger.",
        )
        order_id = _signal(serve, PRICE)
        status = serve.wait_for(lambda s: s.open_positions == 0 and s.open_orders == 0)
        assert status.phase == pb.PHASE_RUNNING
    finally:
        assert serve.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    stop, target = f"{order_id}-sl", f"{order_id}-tp"
    assert (statuses[stop], statuses[target]) == ("rejected", "cancelled")
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        exits = db.execute("SELECT exit_reason FROM trades").fetchall()
        events = [
            r[0] for r in db.execute("SELECT message FROM events WHERE kind = 'stop_refused'")
        ]
    finally:
        db.close()
    assert exits == [("stop-refused",)]
    assert len(events) == 1 and "would immediately trigger" in events[0]


def _working_children(fake: FakeBinance, order_id: str) -> dict[str, float]:
    """The entry's stop-loss and take-profit working at the venue (a resized one is placed
    again under ``<id>-a<n>``), by the bot's ids: their quantities."""
    with fake.state.lock:
        algos = list(fake.state.usdm.algo_orders.values())
    return {
        re.sub(r"-a\d+$", "", a.client_algo_id): float(a.quantity)
        for a in algos
        if a.client_algo_id.startswith(f"{order_id}-") and a.status == "NEW"
    }


def _journaled_quantities(folder: Path, order_id: str) -> dict[str, tuple[float, str]]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        rows = db.execute(
            "SELECT client_order_id, quantity, status FROM order_status WHERE parent_id = ?",
            (order_id,),
        ).fetchall()
    finally:
        db.close()
    return {cid: (quantity, status) for cid, quantity, status in rows}


def test_a_limit_entry_resting_through_a_restart_gets_its_stop_when_it_fills(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The venue keeps the entry, not its stop-loss and take-profit: the restarted bot tells
    its broker (``follows-brackets``), so the fill after the restart is protected at the venue,
    as the journal says."""
    manifest, order_id = _resting_limit_then_killed(tmp_path, fake, monkeypatch)

    again = _serve(tmp_path, manifest, monkeypatch)
    try:
        again.wait_for(lambda s: s.open_orders == 1)
        fake.set_price(VENUE_SYMBOL, PRICE * 0.985, market="usdm")  # the entry fills now
        _until(
            lambda: (
                _working_children(fake, order_id)
                == dict.fromkeys((f"{order_id}-sl", f"{order_id}-tp"), 0.01)
            )
        )
        again.wait_for(lambda s: s.open_positions == 1 and s.open_orders == 2)
    finally:
        assert again.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert statuses[order_id] == "filled"
    assert _journaled_quantities(tmp_path, order_id) == {
        f"{order_id}-sl": (0.01, "open"),
        f"{order_id}-tp": (0.01, "open"),
    }


def test_a_part_filled_entry_keeps_growing_its_stop_after_a_restart(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part of a limit entry filled (its stop and target cover that part at the venue) when
    the bot died; the rest fills after the restart: they grow to all of it, at the venue and in
    the journal."""
    manifest = _bot(tmp_path, fake, "limit")
    serve = _serve(tmp_path, manifest, monkeypatch)
    fake.faults.inject("partial_fill", path="/fapi/v1/order", method="POST", fraction=0.4)
    order_id = _signal(serve, PRICE * 1.01)  # marketable: 40 % fills at once, the rest rests
    children = (f"{order_id}-sl", f"{order_id}-tp")
    _until(lambda: _working_children(fake, order_id) == dict.fromkeys(children, 0.004))
    _until(
        lambda: (
            {c: q for c, (q, _) in _journaled_quantities(tmp_path, order_id).items()}
            == dict.fromkeys(children, 0.004)
        )
    )
    _kill(serve)

    again = _serve(tmp_path, manifest, monkeypatch)
    try:
        again.wait_for(lambda s: s.open_positions == 1 and s.open_orders == 3)
        fake.set_price(VENUE_SYMBOL, PRICE * 0.999, market="usdm")  # the rest fills now
        _until(lambda: _working_children(fake, order_id) == dict.fromkeys(children, 0.01))
        _until(
            lambda: (
                {c: q for c, (q, _) in _journaled_quantities(tmp_path, order_id).items()}
                == dict.fromkeys(children, 0.01)
            )
        )
        again.wait_for(lambda s: s.open_orders == 2)
    finally:
        assert again.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert statuses[order_id] == "filled"


def _venue_order_status(fake: FakeBinance, client_order_id: str) -> str:
    with fake.state.lock:
        return next(o.status for o in fake.orders("usdm") if o.client_order_id == client_order_id)


def test_a_take_profit_filled_while_its_entry_still_rests_ends_the_entry(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A limit entry part-filled, its bracket working for that part; the market runs to the
    take-profit before the rest fills. The trade is over: the rest of the entry is cancelled —
    left working it would open a position its spent bracket could not protect."""
    manifest = _bot(tmp_path, fake, "limit")
    serve = _serve(tmp_path, manifest, monkeypatch)
    try:
        fake.faults.inject("partial_fill", path="/fapi/v1/order", method="POST", fraction=0.4)
        order_id = _signal(serve, PRICE * 1.01)  # marketable: 40 % fills, the rest rests
        children = (f"{order_id}-sl", f"{order_id}-tp")
        _until(lambda: _working_children(fake, order_id) == dict.fromkeys(children, 0.004))
        fake.set_price(VENUE_SYMBOL, PRICE * 1.01 * 1.05, market="usdm")  # through the target
        _until(lambda: _venue_order_status(fake, order_id) == "CANCELED")
        _until(lambda: _journal(tmp_path)[1].get(order_id) == "cancelled")
        fake.set_price(VENUE_SYMBOL, PRICE, market="usdm")  # back below the entry's limit
        time.sleep(0.5)
        serve.wait_for(lambda s: s.open_positions == 0 and s.open_orders == 0)
    finally:
        assert serve.terminate() == 0
    statuses = _assert_journal_is_the_venue(tmp_path, fake)
    assert statuses[f"{order_id}-tp"] == "filled"
    assert statuses[f"{order_id}-sl"] == "cancelled"
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        kinds = [k for (k,) in db.execute("SELECT kind FROM events")]
    finally:
        db.close()
    assert "bracket_entry_cancelled" in kinds


def test_a_part_of_the_entry_filled_after_its_bracket_ended_is_closed(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, but the venue does not take the entry's cancel and the rest of it fills: that
    part has no bracket left (a child's id is sent once), so the bot closes it at market,
    reduce-only (exit reason ``bracket-spent``, a risk exit): no position without its stop."""
    manifest = _bot(tmp_path, fake, "limit")
    serve = _serve(tmp_path, manifest, monkeypatch)
    try:
        fake.faults.inject("partial_fill", path="/fapi/v1/order", method="POST", fraction=0.4)
        order_id = _signal(serve, PRICE * 1.01)
        children = (f"{order_id}-sl", f"{order_id}-tp")
        _until(lambda: _working_children(fake, order_id) == dict.fromkeys(children, 0.004))
        fake.faults.inject(
            "reject",
            path="/fapi/v1/order",
            method="DELETE",
            times=None,
            code=-2011,
            msg="Unknown order sent.",
        )
        fake.set_price(VENUE_SYMBOL, PRICE * 1.01 * 1.05, market="usdm")  # through the target
        _until(lambda: _journal(tmp_path)[1].get(f"{order_id}-tp") == "filled")
        fake.set_price(VENUE_SYMBOL, PRICE, market="usdm")  # the rest of the entry fills
        _until(lambda: _journal(tmp_path)[1].get(order_id) == "filled")
        # The status may answer before the rest's fill reached the bot: wait for the close
        # itself (its order done, its fill journaled) before stopping the bot.
        serve.wait_for(lambda s: s.open_positions == 0 and s.open_orders == 0)
        _until(lambda: len(_journal(tmp_path)[0]) >= len(_venue_fills(fake)) >= 4)
    finally:
        fake.faults.clear()
        assert serve.terminate() == 0
    _assert_journal_is_the_venue(tmp_path, fake)
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        kinds = [k for (k,) in db.execute("SELECT kind FROM events")]
        exits = db.execute(
            "SELECT quantity, status FROM order_status WHERE tag = 'bracket-spent'"
        ).fetchall()
    finally:
        db.close()
    assert "bracket_spent" in kinds
    assert exits == [(pytest.approx(0.006), "filled")]
    with fake.state.lock:
        held = fake.state.accounts[API_KEY].positions.get(VENUE_SYMBOL)
    assert held is None or held.amount == 0  # flat at the venue too
