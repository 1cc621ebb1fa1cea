"""A paper bot restarted on an edited spec.market (the pod rolled by ``kubectl apply``) while its
journal holds a position with its stop-loss and take-profit (W16).

- A held symbol removed from ``spec.market.symbols``: the restarted runtime would restore the
  position and its bracket but never ask the feed for that symbol again (the stop never
  worked, the position marked at its entry for ever) and refuse every order on it, an
  emergency flatten's close included.
- ``spec.market.timeframe`` changed from 1h to 4h after a run that handled up to 07:00: the
  04:00-08:00 bar began before the stop-loss was placed (the paper broker does not work it
  for it) and the next begins at 08:00, so a dip through the stop at 07:00 was never shown to
  the broker and the long stayed open.

Both are refused at start naming the field and what is held, before anything is journaled,
sent or cancelled; the same spec, a flat account or an aligned boundary start as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.service.paper_bots import (
    FIXED_SIZE,
    SIGNALS,
    eurusd_signal,
    paper_controller,
    short_eurusd,
    wait_for_a_bar,
    wait_until,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Direction, Phase, Signal
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.spec import BotManifest, parse_manifest

STOP = 1.0400
DIP_HOUR = 7  # in the 04:00-08:00 bar of 4h, after the hours the 1h run handled
START = datetime(2017, 1, 2, tzinfo=UTC)


def _manifest(
    symbols: Sequence[str], timeframe: str, files: dict[str, Path], name: str
) -> BotManifest:
    return parse_manifest(
        {
            "apiVersion": "tradefleet.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": name},
            "spec": {
                "mode": "paper",
                "strategy": SIGNALS,
                "market": {"symbols": list(symbols), "timeframe": timeframe},
                "broker": {"name": "paper"},
                "data": {
                    "name": "csv",
                    "params": {
                        "files": {s: str(files[s]) for s in symbols},
                        "gap_policy": "trade",
                    },
                },
                "risk": [FIXED_SIZE],
                "capital": {"currency": "USD", "initial": 100000},
            },
        }
    )


def _start(bot: BotController) -> bool:
    """Start the edited bot; False when it refused to start (its failure says why)."""
    bot.start()
    wait_until(lambda: bool(bot.failure) or bot.get_status().bars >= 1, bot)
    return not bot.failure


def _counts(journal: Journal) -> tuple[int, ...]:
    """(runs, orders, order updates) the journal holds: a refused start adds none."""
    return tuple(
        int(journal.query(f"SELECT COUNT(*) FROM {table}")[0][0])
        for table in ("runs", "orders", "order_updates")
    )


def _refused(journal: Journal, bot: BotController) -> str:
    """The refused start's failure, after checking it is journaled and shown as a start
    refusal is (phase Failed, not ready); the bot is stopped."""
    try:
        assert not _start(bot)
        wait_until(lambda: bot.get_status().phase is Phase.FAILED, bot)
        assert bot.readiness() == (False, "phase Failed")
    finally:
        bot.stop()
        bot.wait(20)
    failure = str(bot.failure)
    failed = [
        str(message)
        for (message,) in journal.query("SELECT message FROM events WHERE kind = 'run_failed'")
    ]
    assert any(failure.split(": ", 1)[1] in message for message in failed), failed
    return failure


# -- a held symbol removed from spec.market.symbols ------------------------------------------


def _hold_eurusd(tmp_path: Path) -> tuple[dict[str, Path], Path]:
    """Run 1 on EURUSD and GBPUSD: a signal opens EURUSD with a bracket; the bot is stopped
    (the default stop policy keeps the position and its SL/TP). Returns (files, journal)."""
    data = short_eurusd(tmp_path, 80)
    files = {"EURUSD": data, "GBPUSD": data}
    path = tmp_path / "j.sqlite"
    journal = Journal(path, durable=True)
    bot = paper_controller(_manifest(["EURUSD", "GBPUSD"], "1h", files, "w16"), journal, 1800)
    bot.start()
    try:
        wait_for_a_bar(bot)
        assert bot.submit_signal(eurusd_signal("w16-long")).accepted
        wait_until(lambda: any(p.quantity > 0 for p in bot.list_positions()), bot)
    finally:
        bot.stop()
        bot.wait(20)
        journal.close()
    return files, path


def test_a_restart_without_a_held_symbol_is_refused_naming_it_and_spec_market_symbols(
    tmp_path: Path,
) -> None:
    files, path = _hold_eurusd(tmp_path)
    journal = Journal(path, durable=True)
    try:
        before = _counts(journal)
        edited = paper_controller(_manifest(["GBPUSD"], "1h", files, "w16"), journal, 1800)
        failure = _refused(journal, edited)
        after = _counts(journal)
    finally:
        journal.close()
    assert (
        "spec.market.symbols: EURUSD is not listed, but the journal's account holds a position "
        "of +1000 and 2 working orders on EURUSD: keep it in spec.market.symbols until it is "
        "closed"
    ) in failure, failure
    assert after == before  # no run, no order sent, none cancelled


def test_after_the_refusal_the_symbol_put_back_restores_it_and_a_flatten_closes_it(
    tmp_path: Path,
) -> None:
    """The way out the refusal names: the position and its bracket are as the journal held
    them, and with EURUSD listed again an emergency flatten closes it (W16 asked that the
    position can be closed, by the refusal or by a flatten that works)."""
    files, path = _hold_eurusd(tmp_path)
    journal = Journal(path, durable=True)
    try:
        _refused(journal, paper_controller(_manifest(["GBPUSD"], "1h", files, "w16"), journal))
        bot = paper_controller(_manifest(["EURUSD", "GBPUSD"], "1h", files, "w16"), journal, 1800)
        try:
            assert _start(bot), bot.failure
            held = [(p.symbol, p.quantity) for p in bot.list_positions() if p.quantity]
            assert held == [("EURUSD", 1000.0)]
            assert len([o for o in bot.list_orders() if o.symbol == "EURUSD"]) == 2
            bot.emergency_stop("w16", "get out of EURUSD", flatten=True)
            closes = [
                o.client_order_id
                for o in bot.list_orders(True)
                if o.symbol == "EURUSD" and o.reduce_only and not o.parent_id
            ]
        finally:
            bot.stop()
            bot.wait(20)
        refused = journal.query("SELECT message FROM events WHERE kind = 'order_refused'")
    finally:
        journal.close()
    assert not refused, refused
    assert closes, "the emergency flatten sent no close for the EURUSD position it holds"


def test_a_restart_without_a_symbol_that_holds_nothing_starts(tmp_path: Path) -> None:
    data = short_eurusd(tmp_path, 80)
    files = {"EURUSD": data, "GBPUSD": data}
    path = tmp_path / "j.sqlite"
    journal = Journal(path, durable=True)
    try:
        first = paper_controller(_manifest(["EURUSD", "GBPUSD"], "1h", files, "w16"), journal)
        try:
            assert _start(first), first.failure
        finally:
            first.stop()
            first.wait(20)
        bot = paper_controller(_manifest(["GBPUSD"], "1h", files, "w16"), journal)
        try:
            assert _start(bot), bot.failure
        finally:
            bot.stop()
            bot.wait(20)
    finally:
        journal.close()


# -- spec.market.timeframe changed -----------------------------------------------------------


def _hours(path: Path, hours: int, dip: bool = True) -> Path:
    """``hours`` hours at 1.0500 from 2017-01-02 00:00; with ``dip`` the 07:00 hour dips to
    1.0300 (through the stop) and closes back at 1.0500."""
    rows = ["Time,Open,High,Low,Close,Volume"]
    for hour in range(hours):
        low = 1.0300 if dip and hour == DIP_HOUR else 1.0500
        ts = (START + timedelta(hours=hour)).strftime("%d.%m.%Y %H:%M:%S.000")
        rows.append(f"{ts},1.0500,1.0500,{low:.4f},1.0500,1000")
    path.write_text("\n".join(rows) + "\n")
    return path


def _at(hour: int) -> int:
    return int((START + timedelta(hours=hour)).timestamp())


def _hourly_run(tmp_path: Path, hours: int, *, buy: bool) -> Path:
    """A 1h run over the first ``hours`` hours (its last handled close: ``hours``:00), with a
    long and its bracket bought at the third hour when ``buy``. Returns the journal."""
    path = tmp_path / "j.sqlite"
    data = _hours(tmp_path / "first.csv", hours, dip=False)
    journal = Journal(path, durable=True)
    hourly = paper_controller(
        _manifest(["EURUSD"], "1h", {"EURUSD": data}, "w16-timeframe"), journal, speed=1800
    )
    hourly.start()
    try:
        if buy:
            wait_until(lambda: hourly.get_status().last_bar_ts >= _at(2), hourly)
            signal = Signal(
                symbol="EURUSD",
                direction=Direction.BUY,
                entry=1.0500,
                stop_loss=STOP,
                take_profit=1.1000,
                signal_id="w16-tf",
                received_at=datetime.now(UTC).timestamp(),
            )
            assert hourly.submit_signal(signal).accepted
            wait_until(lambda: any(p.quantity > 0 for p in hourly.list_positions()), hourly)
        wait_until(lambda: hourly.feed_done, hourly)  # every hour of the file handled
    finally:
        hourly.stop()
        hourly.wait(20)
    journal.close()
    journal = Journal(path, durable=True)
    try:
        state = journal.carried_state("w16-timeframe")
    finally:
        journal.close()
    assert state is not None and state.last_bar_ts == _at(hours), state
    return path


def _four_hourly(tmp_path: Path, journal: Journal) -> BotController:
    data = _hours(tmp_path / "all.csv", 48)
    manifest = _manifest(["EURUSD"], "4h", {"EURUSD": data}, "w16-timeframe")
    return paper_controller(manifest, journal, speed=14400)


def test_a_timeframe_change_off_a_boundary_while_holding_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    """1h -> 4h with 07:00 last handled and a long with its bracket: refused naming
    spec.market.timeframe, the journal's 1h and what is held (a running bot would have been
    stopped out by the 07:00 dip the 4h run never shows the broker)."""
    path = _hourly_run(tmp_path, 7, buy=True)
    journal = Journal(path, durable=True)
    try:
        before = _counts(journal)
        failure = _refused(journal, _four_hourly(tmp_path, journal))
        after = _counts(journal)
    finally:
        journal.close()
    assert (
        "spec.market.timeframe: 4h, but the journal's runs were on 1h and last handled the bar "
        "closing 2017-01-02 07:00 UTC, which is not a 4h boundary, while the account holds a "
        "position of +1000 and 2 working orders on EURUSD"
    ) in failure, failure
    assert "change the timeframe when flat, or at a time that is a boundary of both" in failure
    assert after == before  # no run, no order sent, none cancelled


def test_a_timeframe_change_at_a_boundary_of_both_starts(tmp_path: Path) -> None:
    path = _hourly_run(tmp_path, 8, buy=True)  # 08:00 last handled: a 4h boundary
    journal = Journal(path, durable=True)
    bot = _four_hourly(tmp_path, journal)
    try:
        assert _start(bot), bot.failure
        assert [p.quantity for p in bot.list_positions() if p.quantity] == [1000.0]
    finally:
        bot.stop()
        bot.wait(20)
        journal.close()


def test_a_timeframe_change_when_flat_starts(tmp_path: Path) -> None:
    path = _hourly_run(tmp_path, 7, buy=False)  # 07:00, but nothing held nor working
    journal = Journal(path, durable=True)
    bot = _four_hourly(tmp_path, journal)
    try:
        assert _start(bot), bot.failure
    finally:
        bot.stop()
        bot.wait(20)
        journal.close()


def test_a_restart_on_the_same_timeframe_while_holding_starts(tmp_path: Path) -> None:
    path = _hourly_run(tmp_path, 7, buy=True)  # 07:00 is no boundary of 4h, but it stays 1h
    journal = Journal(path, durable=True)
    data = _hours(tmp_path / "all.csv", 48)
    manifest = _manifest(["EURUSD"], "1h", {"EURUSD": data}, "w16-timeframe")
    bot = paper_controller(manifest, journal, speed=1800)
    try:
        assert _start(bot), bot.failure
        # The stop is worked over the 07:00 dip, as a running bot would have.
        wait_until(lambda: bot.get_status().last_bar_ts >= _at(DIP_HOUR), bot)
        wait_until(lambda: not any(p.quantity for p in bot.list_positions()), bot)
    finally:
        bot.stop()
        bot.wait(20)
        journal.close()
