"""A new broker object on the same terminal (a restarted bot) reports what the old one left:
the input of start-up reconciliation. And a credentials folder: used, never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.brokers.mt5.harness import (
    LOGIN,
    Mt5Harness,
    fills,
    updates,
    write_credentials,
)
from tests.venues.mt5 import MT5Terminal, UnknownOutcome
from tradefleet_runtime.sdk import OrderStatus, OrderType, PluginError, ReasonCode, Side

from .harness import gold_pro_symbols

# Every test runs twice: on the emulator, and through the bridge in front of it.
pytestmark = pytest.mark.usefixtures("transport")


def _restart(old: Mt5Harness, **params: object) -> Mt5Harness:
    old.close()
    return Mt5Harness.build(venue=old.terminal, **params).connect()  # type: ignore[arg-type]


@pytest.mark.parametrize("margin_mode", ["netting", "hedging"])
def test_a_new_broker_reports_what_the_old_one_left(margin_mode: str) -> None:
    old = Mt5Harness.build(margin_mode).connect()
    entry = old.order(symbol="XAUUSD", quantity=5.0, stop_loss=2600.0)  # ounces: 0.05 lot
    resting = old.order(order_type=OrderType.LIMIT, price=1.0950)
    sold = old.order(Side.SELL, symbol="EURUSD", quantity=20_000.0)  # euros: 0.2 lot
    for order in (entry, resting, sold):
        old.submit(order)
    before_fills = old.broker.fill_reports(0)
    new = _restart(old)
    try:
        positions = {p.symbol: p.quantity for p in new.broker.position_reports()}
        assert positions == {"XAUUSD": 5.0, "EURUSD": -20_000.0}
        reports = {r.client_order_id: r for r in new.broker.order_reports(0)}
        assert reports[resting.client_order_id].status is OrderStatus.OPEN
        assert reports[resting.client_order_id].price == 1.095
        assert reports[entry.client_order_id].status is OrderStatus.FILLED
        assert reports[entry.client_order_id].symbol == "XAUUSD"
        assert new.broker.fill_reports(0) == before_fills
        assert [f.client_order_id for f in before_fills] == [
            entry.client_order_id,
            sold.client_order_id,
        ]
        query = new.broker.query_order(sold.client_order_id)
        assert query is not None and query.filled_quantity == 20_000.0
        assert new.broker.query_order("tf-never-sent") is None
        # Old fills are reconciliation input, not new events. The resting order's price is
        # reported once: a new broker cannot know the journal's (test_mt5_pending_price_poll).
        events = new.settle()
        assert fills(events) == []
        assert [(u.client_order_id, u.price) for u in updates(events)] == [
            (resting.client_order_id, 1.095)
        ]
        assert new.settle() == []
        # An id the old broker sent is known: re-sent after a restart, it is refused.
        again = new.broker.submit(sold)
        assert again.code is ReasonCode.DUPLICATE_CLIENT_ID
        assert len(new.history_orders(sold.client_order_id)) == 1
        # The resting order keeps being watched: a fill after the restart is an event.
        new.terminal.set_price("EURUSD", 1.0940, 1.0941)
        (fill,) = fills(new.settle())
        assert fill.client_order_id == resting.client_order_id
        # The restarted broker knows the SL of the position the old one opened.
        new.terminal.set_price("GOLD.pro", 2590.0)
        (stop,) = fills(new.settle())
        assert stop.client_order_id == f"{entry.client_order_id}-sl"
    finally:
        new.close()


def test_an_order_in_doubt_at_restart_is_found_not_resent() -> None:
    old = Mt5Harness.netting().connect()
    order = old.order()
    old.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=True)])
    old.submit(order)
    new = _restart(old)
    try:
        report = new.broker.query_order(order.client_order_id)
        assert report is not None and report.status is OrderStatus.FILLED
        assert new.broker.submit(order).code is ReasonCode.DUPLICATE_CLIENT_ID
        assert len(new.history_orders(order.client_order_id)) == 1
    finally:
        new.close()


def test_other_magic_numbers_are_not_ours() -> None:
    # Hedging: each bot's positions are its own (a netting account has one position per
    # symbol, whoever opened it: one bot per symbol there, docs/mt5.md).
    mine = Mt5Harness.hedging().connect()
    other_bot = Mt5Harness.build(venue=mine.terminal)
    other_bot.bot = "default/other"
    other_bot.connect()
    try:
        other_bot.submit(other_bot.order(client_order_id="tfotherbot0001"))
        mine.submit(mine.order())
        assert [p.quantity for p in mine.broker.position_reports()] == [10_000.0]
        assert len(mine.broker.fill_reports(0)) == 1
        assert mine.settle() == []
    finally:
        other_bot.close()
        mine.close()


@pytest.mark.parametrize("owner", ["other bot", "person"])
def test_a_netting_symbol_holding_anothers_position_is_refused_at_start(owner: str) -> None:
    """One position per symbol on a netting account, whoever opened it: a second bot (or a
    person's trade) there would merge with this bot's orders and each book the other's
    fills. Refused at start, naming the symbol's field and the owner."""
    other = Mt5Harness.netting().connect()
    if owner == "person":
        other.broker._magic = 0  # a trade made in the terminal by hand
    try:
        other.submit(other.order(client_order_id="tfotherbot0001"))
        assert other.venue.positions_get(symbol="EURUSD")
        mine = Mt5Harness.build(venue=other.terminal)
        mine.bot = "default/mine"
        with pytest.raises(
            PluginError, match=r"spec\.market\.symbols\[0\]: EURUSD on this netting"
        ) as refused:
            mine.connect()
        assert ("magic 0" in str(refused.value)) == (owner == "person")
        # The same position on a hedging account is no obstacle (test above).
    finally:
        other.close()


def test_credentials_log_in_and_never_show(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_password, secret_server = "Pl4nted-S3cret!", "Planted-Server-Live7"
    term = MT5Terminal(
        margin_mode="netting",
        symbols=gold_pro_symbols(),
        login=LOGIN,
        password=secret_password,
        server=secret_server,
    )
    folder = write_credentials(tmp_path / "creds", password=secret_password, server=secret_server)
    caplog.set_level(logging.DEBUG)
    harness = Mt5Harness.build(venue=term, credentials_dir=folder).connect()
    texts: list[str] = []
    try:
        term.faults.script("order_send", [UnknownOutcome(10012, executed=False), 10019])
        texts += [repr(e) for e in harness.submit(harness.order())]
        texts.append(repr(harness.broker.__dict__))
        texts.append(repr(harness.broker._link.__dict__))  # type: ignore[union-attr]
    finally:
        harness.close()
    # A wrong password: refused at once (retrying it could lock the account), unnamed.
    bad = write_credentials(
        tmp_path / "bad", password="Wr0ng-" + secret_password, server=secret_server
    )
    wrong = Mt5Harness.build(venue=term, credentials_dir=bad)
    with pytest.raises(PluginError) as refused:
        wrong.connect()
    wrong.close()
    texts.append(str(refused.value))
    assert "refused the account" in str(refused.value)
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    for text in texts:
        for secret in (secret_password, secret_server, str(LOGIN)):
            assert secret not in text


def test_unreadable_credentials_name_the_file_not_the_content(tmp_path: Path) -> None:
    folder = write_credentials(tmp_path / "creds")
    (folder / "login").write_text("not-a-number-Pl4nted")
    harness = Mt5Harness.build(credentials_dir=folder)
    with pytest.raises(PluginError, match="login") as error:
        harness.connect()
    harness.close()
    assert "Pl4nted" not in str(error.value)


def test_a_password_changed_while_running_is_not_retried(tmp_path: Path) -> None:
    folder = write_credentials(tmp_path / "creds")
    harness = Mt5Harness.build(credentials_dir=folder).connect()
    try:
        harness.terminal._password = "changed-by-the-broker"  # test-side: the account moved on
        harness.terminal.faults.disconnect("ipc")
        for _ in range(2):
            harness.broker.submit(harness.order())
            with pytest.raises(PluginError, match="refused the account"):
                harness.broker.settle()  # queries fail loudly
            (update,) = harness.broker.drain_events()
            assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
            assert update.code is ReasonCode.AUTHENTICATION  # type: ignore[union-attr]
            assert not harness.broker.is_connected()
        assert harness.terminal.calls["initialize"] == 2  # one refused try, no retry storm
        assert harness.history_orders() == []
    finally:
        harness.close()


def test_an_unknown_symbol_is_a_rejection_not_a_stuck_order(tmp_path: Path) -> None:
    harness = Mt5Harness.netting().connect()
    try:
        (update,) = harness.submit(harness.order(symbol="NOPE"))
        assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
        assert "NOPE" in update.reason  # type: ignore[union-attr]
        assert harness.broker.open_orders() == []
    finally:
        harness.close()


def test_a_terminal_unreachable_at_start_is_a_connection_error_the_runtime_waits_out() -> None:
    # Not a refusal: after its attempts the broker says ConnectionError, which `tradefleet
    # serve` waits out in phase Starting (tests/e2e/test_live_venue_down_at_start.py) instead
    # of exiting into a crash loop; connecting again once the terminal answers works.
    harness = Mt5Harness.build(connect_attempts=3)
    harness.terminal.faults.script("initialize", [-10003] * 3)
    try:
        with pytest.raises(ConnectionError, match="not reachable after 3 attempts"):
            harness.connect()
        harness.connect()
        assert harness.broker.is_connected()
    finally:
        harness.close()
