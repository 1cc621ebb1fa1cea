"""A pending signal is never answered with another signal's reversal close (R27, a59f467).

``Journal.pending_signal_order`` sets apart the orders of a signal that began after the pending
one: the order its row names and every order after it. Its orders *before* the one it names —
its reversal's reduce-only close — cannot be told from the pending signal's. A pending signal S1
that placed nothing (its outcome could not be journaled, the bot went on), then in the same bar
S2, a reversal recorded naming its entry, leaves one candidate: S2's close. Had S1 placed a
reduce-only order and S2 been a plain entry, the journal would hold the same rows. So that
single candidate is answered 'unknown' (409 naming ``signal_id``), never as S1's order; a
candidate that is no reduce-only order cannot be a reversal's close and stays S1's.
"""

from __future__ import annotations

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
from tradefleet_runtime.journal.sqlite import SIGNAL_PENDING, SignalOrderUnknown, signal_order
from tradefleet_runtime.model import Order, OrderStatus, Side
from tradefleet_runtime.service.api import NotNow, signal_digest


def test_a_single_candidate_before_a_later_signals_named_entry_is_unknown() -> None:
    mark = 5
    candidates = [("close-2", 10), ("entry-2", 11)]  # same run, same bar time, after S1's mark
    others = [(True, "entry-2", "")]  # S2, recorded: names its entry (its mark is gone)
    with pytest.raises(SignalOrderUnknown):
        answered = signal_order(candidates, mark, others)
        pytest.fail(f"S1 answered with {answered!r}, another signal's reversal close")


def test_a_reduce_only_single_candidate_before_a_later_named_entry_is_unknown() -> None:
    """The journal says which candidates are reduce-only: this one is, so it can be S2's close."""
    candidates = [("close-2", 10), ("entry-2", 11)]
    with pytest.raises(SignalOrderUnknown):
        signal_order(candidates, 5, [(True, "entry-2", "")], closes={"close-2"})


def test_a_single_entry_before_a_later_named_entry_stays_the_pending_signals() -> None:
    """Control: an order that is not reduce-only is no reversal's close: S1's, as before."""
    candidates = [("entry-1", 10), ("entry-2", 11)]
    assert signal_order(candidates, 5, [(True, "entry-2", "")], closes=set()) == "entry-1"


def test_the_same_rows_with_another_pending_mark_still_answer_unambiguous_orders() -> None:
    """Control: S2 still pending (its mark at 10) leaves S1 its own order before it."""
    candidates = [("entry-1", 7), ("close-2", 11), ("entry-2", 12)]
    others = [(True, "", f"{SIGNAL_PENDING}10")]
    assert signal_order(candidates, 5, others) == "entry-1"


def test_a_reduce_only_order_before_a_later_pending_mark_stays_the_pending_signals() -> None:
    """Control: S2's mark (10) comes before S3's named entry: orders up to it precede both."""
    candidates = [("close-1", 7), ("close-3", 11), ("entry-3", 12)]
    others = [(True, "", f"{SIGNAL_PENDING}10"), (True, "entry-3", "")]
    assert signal_order(candidates, 5, others, closes={"close-1", "close-3"}) == "close-1"


def _order(order_id: str, reduce_only: bool = False) -> Order:
    return Order(order_id, "EURUSD", Side.BUY, 1000.0, reduce_only=reduce_only)


def _nothing_then_a_reversal_in_the_same_bar(journal: Journal, digest: str = "d") -> None:
    """A pending, nothing sent for it; B, a reversal in the same bar: its reduce-only close,
    then its entry, the one its outcome names."""
    start_test_run(journal, "run-1")
    journal.begin_signal("key-x:sig-a", 1000, digest)
    journal.begin_signal("key-x:sig-b", 1000, "d")
    journal.record_order(_order("close-b", reduce_only=True), OrderStatus.PENDING, 1000)
    journal.record_order(_order("entry-b"), OrderStatus.PENDING, 1000)
    journal.record_signal("key-x:sig-b", 1000, True, "", "entry-b", "d")
    journal.flush()


def test_the_journal_does_not_answer_a_pending_signal_with_a_later_reversals_close(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    _nothing_then_a_reversal_in_the_same_bar(journal)
    try:
        with pytest.raises(SignalOrderUnknown, match="sig-a"):
            found = journal.pending_signal_order("key-x:sig-a")
            pytest.fail(f"sig-a answered with {found!r}, sig-b's reversal close")
    finally:
        journal.close()


def test_a_retry_after_a_restart_is_refused_not_answered_with_a_reversals_close(
    tmp_path: Path,
) -> None:
    """Controller level: the restarted bot refuses the retry (409 naming ``signal_id`` at the
    webhook), neither answering with B's close nor trading it again."""
    path = tmp_path / "j.sqlite"
    signal = eurusd_signal("key-x:sig-a")
    journal = Journal(path, durable=True)
    _nothing_then_a_reversal_in_the_same_bar(journal, signal_digest(signal))
    journal.close()
    journal = Journal(path, durable=True)
    bot = paper_controller(paper_manifest("sig-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    try:
        with at_first_bar(bot), pytest.raises(NotNow, match="tradefleet orders") as unknown:
            answered = bot.submit_signal(signal)
            pytest.fail(f"the retry was answered {answered!r}")
        orders = journal.query("SELECT client_order_id FROM orders WHERE parent_id IS NULL")
    finally:
        journal.close()
    assert unknown.value.field == "signal_id"
    assert sorted(str(row[0]) for row in orders) == ["close-b", "entry-b"], orders
