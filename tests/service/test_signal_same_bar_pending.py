"""A pending signal is never matched to another alert's order of the same bar.

``Journal.pending_signal_order`` finds the order a signal left pending by a kill led to, from
the orders its run journaled at its engine time. Every signal handled between two bars shares
that time: another signal's orders are set apart (the order its row names, every order after
it), and what cannot be told apart is answered unknown, never guessed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.runtime.helpers import start_test_run
from tests.service.paper_bots import (
    SIGNALS,
    at_first_bar,
    eurusd_signal,
    paper_controller,
    paper_manifest,
    short_eurusd,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.journal.sqlite import SignalOrderUnknown
from tradefleet_runtime.model import Order, OrderStatus, Side
from tradefleet_runtime.service.api import NotNow, signal_digest


def _root_orders(journal: Journal) -> list[str]:
    rows = journal.query(
        "SELECT client_order_id FROM orders WHERE parent_id IS NULL ORDER BY created_ts, rowid"
    )
    return [str(row[0]) for row in rows]


def _order(order_id: str, reduce_only: bool = False) -> Order:
    return Order(order_id, "EURUSD", Side.BUY, 1000.0, reduce_only=reduce_only)


def test_a_pending_signal_is_not_matched_to_a_later_alert_of_the_same_bar(
    tmp_path: Path,
) -> None:
    """Journal level: A journaled pending at bar time 1000, its order; A's outcome write
    failed (the row stays pending); B, handled in the same bar, its order and outcome. Run
    killed. A's order is ``own-a``, never B's."""
    journal = Journal(tmp_path / "j.sqlite")
    start_test_run(journal, "run-1")
    journal.begin_signal("key-x:sig-a", 1000, "d")
    journal.record_order(_order("own-a"), OrderStatus.PENDING, 1000)
    journal.begin_signal("key-x:sig-b", 1000, "d")
    journal.record_order(_order("own-b"), OrderStatus.PENDING, 1000)
    journal.record_signal("key-x:sig-b", 1000, True, "", "own-b", "d")
    journal.flush()
    found = journal.pending_signal_order("key-x:sig-a")
    journal.close()
    assert found == "own-a", found


def test_a_retry_after_a_restart_is_not_answered_with_another_alert_of_the_same_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Controller level: the same through ``submit_signal`` and a restart."""
    path = tmp_path / "j.sqlite"
    journal = Journal(path, durable=True)
    bot = paper_controller(paper_manifest("sig-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    real_record = journal.record_signal
    failures = [sqlite3.OperationalError("database or disk is full")]

    def flaky(*args: object, **kwargs: object) -> None:
        if failures:
            raise failures.pop()
        real_record(*args, **kwargs)  # type: ignore[arg-type]

    first = eurusd_signal("key-x:sig-first")
    with at_first_bar(bot):
        monkeypatch.setattr(journal, "record_signal", flaky)
        with pytest.raises(sqlite3.OperationalError):
            bot.submit_signal(first)  # traded; its outcome not journaled
        other = bot.submit_signal(eurusd_signal("key-x:sig-other"))  # same bar, another alert
        assert other.accepted, other
    monkeypatch.undo()
    first_order = _root_orders(journal)[0]
    journal.close()

    journal = Journal(path, durable=True)  # the restarted pod
    bot = paper_controller(paper_manifest("sig-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    with at_first_bar(bot):
        retry = bot.submit_signal(first)  # the sender's retry of the same request
    journal.close()
    assert retry.client_order_id != other.client_order_id, (retry, other)
    assert retry.client_order_id == first_order, (retry, first_order)


def _a_then_a_reversal_in_the_same_bar(journal: Journal, digest: str = "d") -> None:
    """A pending with its order; B, a reversal in the same bar: its close, then its entry, the
    one its outcome names. Which of the two orders before B's entry is A's is not known."""
    start_test_run(journal, "run-1")
    journal.begin_signal("key-x:sig-a", 1000, digest)
    journal.record_order(_order("own-a"), OrderStatus.PENDING, 1000)
    journal.begin_signal("key-x:sig-b", 1000, "d")
    journal.record_order(_order("close-b", reduce_only=True), OrderStatus.PENDING, 1000)
    journal.record_order(_order("entry-b"), OrderStatus.PENDING, 1000)
    journal.record_signal("key-x:sig-b", 1000, True, "", "entry-b", "d")
    journal.flush()


def test_orders_that_cannot_be_told_apart_are_answered_unknown(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    _a_then_a_reversal_in_the_same_bar(journal)
    with pytest.raises(SignalOrderUnknown, match="sig-a"):
        journal.pending_signal_order("key-x:sig-a")
    journal.close()


def test_a_pending_signal_after_another_alert_pending_too_keeps_its_own_order(
    tmp_path: Path,
) -> None:
    """B left pending too (its mark stays): orders after B's mark are B's."""
    journal = Journal(tmp_path / "j.sqlite")
    start_test_run(journal, "run-1")
    journal.begin_signal("key-x:sig-a", 1000, "d")
    journal.record_order(_order("own-a"), OrderStatus.PENDING, 1000)
    journal.begin_signal("key-x:sig-b", 1000, "d")
    journal.record_order(_order("own-b"), OrderStatus.PENDING, 1000)
    journal.flush()
    assert journal.pending_signal_order("key-x:sig-a") == "own-a"
    assert journal.pending_signal_order("key-x:sig-b") == "own-b"
    journal.close()


def test_a_retry_whose_order_cannot_be_told_apart_is_refused_naming_the_signal(
    tmp_path: Path,
) -> None:
    """Controller level: the restarted bot refuses the retry (409 at the webhook), neither
    answering with another alert's order nor trading it again."""
    path = tmp_path / "j.sqlite"
    signal = eurusd_signal("key-x:sig-a")
    journal = Journal(path, durable=True)
    _a_then_a_reversal_in_the_same_bar(journal, signal_digest(signal))
    journal.close()
    journal = Journal(path, durable=True)
    bot = paper_controller(paper_manifest("sig-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    with at_first_bar(bot), pytest.raises(NotNow, match="tradefleet orders") as unknown:
        bot.submit_signal(signal)
    orders = _root_orders(journal)
    journal.close()
    assert unknown.value.field == "signal_id"
    assert orders == ["own-a", "close-b", "entry-b"], orders


def test_two_signals_handed_over_at_the_same_point_are_answered_unknown(tmp_path: Path) -> None:
    """B handed over with no order update since A's: one of them sent nothing, which one is
    not known; the order is neither A's for sure nor B's."""
    journal = Journal(tmp_path / "j.sqlite")
    start_test_run(journal, "run-1")
    journal.begin_signal("key-x:sig-a", 1000, "d")
    journal.begin_signal("key-x:sig-b", 1000, "d")
    journal.record_order(_order("one"), OrderStatus.PENDING, 1000)
    journal.flush()
    with pytest.raises(SignalOrderUnknown):
        journal.pending_signal_order("key-x:sig-a")
    with pytest.raises(SignalOrderUnknown):
        journal.pending_signal_order("key-x:sig-b")
    journal.close()
