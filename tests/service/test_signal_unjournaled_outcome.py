"""A signal whose outcome the journal could not take is never answered with another order.

``BotController.submit_signal`` journals a signal pending, lets the engine handle it, then
journals its outcome. When that last write fails (``database or disk is full``) and the bot
goes on, its run journals later orders (another alert's). A retry of the first signal is
answered from what this process kept, never from those orders; a pending row of a run that
ended (a kill) counts only orders stamped with the signal's own engine time.
"""

from __future__ import annotations

import dataclasses
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
from tests.service.test_webhook import running
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, OrderStatus, Side
from tradefleet_runtime.service.api import NotNow, Signal, SignalResult

FULL = "database or disk is full"


def test_a_refused_signal_whose_outcome_failed_to_journal_keeps_its_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    bot = paper_controller(paper_manifest("sig-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    # An alert the strategy refuses (its entry is far from the market): no order.
    far = dataclasses.replace(
        eurusd_signal("default:sig-far"), entry=1.0900, stop_loss=1.0000, take_profit=1.2000
    )
    real_record = journal.record_signal
    failures = [sqlite3.OperationalError(FULL)]

    def flaky(*args: object, **kwargs: object) -> None:
        if failures:
            raise failures.pop()
        real_record(*args, **kwargs)  # type: ignore[arg-type]

    with at_first_bar(bot):
        monkeypatch.setattr(journal, "record_signal", flaky)
        with pytest.raises(sqlite3.OperationalError):
            bot.submit_signal(far)  # refused by the strategy; its outcome not journaled
        other = bot.submit_signal(eurusd_signal("default:sig-other"))  # another alert
        assert other.accepted, other
        retry = bot.submit_signal(far)  # the sender resends the first request
    outcome = journal.signal_outcome("default:sig-far")
    journal.close()

    assert not retry.accepted and retry.client_order_id == "", retry
    assert retry.client_order_id != other.client_order_id
    assert outcome is not None and not outcome[0], outcome  # journaled once the journal took it


def test_a_signal_whose_engine_and_journal_failed_is_answered_unknown_never_as_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine raised handling it and the journal failed too: what it did is not known.
    A retry is refused naming ``tradefleet orders`` (409 at the webhook), never handled again
    nor answered with a later order of the run."""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    bot = paper_controller(paper_manifest("sig-bot", SIGNALS, short_eurusd(tmp_path)), journal)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the engine failed")

    def full(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError(FULL)

    with at_first_bar(bot):
        engine = bot.engine
        assert engine is not None
        with monkeypatch.context() as patch:
            patch.setattr(engine, "handle_signal", broken)
            patch.setattr(journal, "pending_signal_order", full)
            with pytest.raises(RuntimeError):
                bot.submit_signal(eurusd_signal("default:sig-lost"))
        assert bot.submit_signal(eurusd_signal("default:sig-other")).accepted
        with pytest.raises(NotNow, match="tradefleet orders") as unknown:
            bot.submit_signal(eurusd_signal("default:sig-lost"))
    journal.close()
    assert unknown.value.field == "signal_id"


def _order(order_id: str) -> Order:
    return Order(order_id, "EURUSD", Side.BUY, 1000.0)


def test_a_pending_row_of_an_ended_run_takes_only_orders_of_its_engine_time(
    tmp_path: Path,
) -> None:
    """The run went on after the failed write (another alert's order, a later engine time),
    then was killed: the retry after the restart finds no order of its own (nothing was sent
    for it), not the later one."""
    journal = Journal(tmp_path / "j.sqlite")
    start_test_run(journal, "run-1")
    journal.begin_signal("default:sig-a", 1000, "d")
    journal.record_order(_order("later"), OrderStatus.PENDING, 1060)
    journal.flush()
    assert journal.pending_signal_order("default:sig-a") == ""
    journal.begin_signal("default:sig-b", 2000, "d")
    journal.record_order(_order("own"), OrderStatus.PENDING, 2000)
    journal.record_order(_order("after"), OrderStatus.PENDING, 2060)
    journal.flush()
    assert journal.pending_signal_order("default:sig-b") == "own"
    journal.close()


async def test_the_webhook_answers_an_unknown_outcome_409_naming_the_orders(
    tmp_path: Path,
) -> None:
    """The controller's refusal about this signal (not the bot's state) is answered as said,
    not as "the bot takes no signals now"."""

    async def unknown(signal: Signal) -> SignalResult:
        raise NotNow(
            f"signal {signal.signal_id!r} was handled but its outcome could not be journaled; "
            "it is not sent again: check `tradefleet orders` for what it placed",
            "signal_id",
        )

    async with running(tmp_path) as h:
        h.answer = unknown
        reply = await h.send()
    assert reply.status == 409, reply.body
    assert reply.body["outcome"] == "refused"
    assert "tradefleet orders" in reply.body["reason"], reply.body
    assert "takes no signals now" not in reply.body["reason"], reply.body
