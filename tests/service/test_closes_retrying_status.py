"""A close the venue keeps refusing reaches a person while the bot keeps sending it: the status
(``closes_retrying``, over gRPC too), ``tradefleet status``'s table and the
``tradefleet_closes_retrying`` gauge name the position, the refusals and the last code; the chart
alerts on the gauge after five minutes (``tests/packaging/alerts/alerts_test.yaml``) and the
operator sets the TradingBot's ``CloseRetrying`` condition
(``tests/operator/test_status_close_retrying.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.runtime.test_risk_flatten_owed_restart import (
    SYMBOL,
    Bot,
    BuyOnce,
    Closes,
    _bars,
    _refused_flatten,
    _venue_answers,  # noqa: F401  (autouse: the shared venue's answers, reset per test)
)
from tests.service.fakes import (
    FakeControlPlane,
    no_leaked_server_threads,  # noqa: F401 - autouse fixture
)
from tests.service.test_closes_stuck_status import _cli_status
from tests.service.test_metrics_labels import LABELS
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import CloseRetrying, Phase, StatusSnapshot
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.grpc_server import status_from_proto, status_to_proto
from tradefleet_runtime.service.metrics import RuntimeMetrics
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

RETRYING = CloseRetrying("BTC/USDT", "venue_unavailable", 0.5, 3, 1_767_225_600)


def _retrying(status: StatusSnapshot, *closes: CloseRetrying) -> StatusSnapshot:
    return dataclasses.replace(status, closes_retrying=closes)


def _gauge(metrics: RuntimeMetrics) -> list[float]:
    text = generate_latest(metrics.registry).decode()
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tradefleet_closes_retrying"
    ]


def _scrape(status: StatusSnapshot) -> list[float]:
    metrics = RuntimeMetrics(LABELS)
    metrics.watch(lambda: status, lambda: 0.0)
    return _gauge(metrics)


def test_the_gauge_is_0_normally_and_counts_the_retrying_closes() -> None:
    status = FakeControlPlane().status
    assert _scrape(status) == [0.0]
    other = CloseRetrying("ETH/USDT", "market_closed", -2.0, 2, 1_767_229_200)
    assert _scrape(_retrying(status, RETRYING, other)) == [2.0]


@pytest.mark.parametrize(
    "change", [{"phase": Phase.STARTING}, {"phase": Phase.STARTING, "last_known": True}]
)
def test_no_gauge_before_an_engine_runs(change: dict[str, object]) -> None:
    status = dataclasses.replace(FakeControlPlane().status, **change)  # type: ignore[arg-type]
    assert _scrape(status) == []


def test_the_grpc_status_carries_the_retrying_closes() -> None:
    status = _retrying(FakeControlPlane().status, RETRYING)
    message = status_to_proto(status)
    assert [
        (c.symbol, c.code, c.position, c.refusals, c.since_ts) for c in message.closes_retrying
    ] == [("BTC/USDT", "venue_unavailable", 0.5, 3, 1_767_225_600)]
    assert status_from_proto(message) == status
    assert status_from_proto(status_to_proto(FakeControlPlane().status)).closes_retrying == ()


def test_the_cli_status_table_names_the_position_and_the_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEFLEET_TOKEN", "any")  # the server checks none
    monkeypatch.setenv("COLUMNS", "250")  # one line a row: the words are not wrapped apart
    control = FakeControlPlane()
    assert "CLOSE RETRYING" not in _cli_status(control)
    control.status = _retrying(control.status, RETRYING)
    out = _cli_status(control)
    assert "CLOSE RETRYING" in out
    assert (
        "0.5 BTC/USDT (refused 3 times in a row since 2026-01-01 00:00:00Z, last: "
        "venue_unavailable)" in out
    )
    assert "tradefleet stop ADDRESS --flatten" in out


@contextlib.contextmanager
def _served(bot: Bot, bars: int) -> Iterator[BotController]:
    """The bot restarted under ``serve``'s controller, its bars paced one a second."""
    manifest = load_manifest(bot.manifest)
    journal = Journal(bot.folder / "journal.sqlite", durable=True)
    controller = BotController(
        assemble(manifest, bot.registry, bot.folder),
        journal,
        bot.registry,
        speed=3600.0,
        bars=_bars(5, bars),
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
        controller.wait(10)
        journal.close()


def test_a_served_bot_whose_venue_keeps_refusing_its_owed_close_reports_it(
    tmp_path: Path,
) -> None:
    """Restarted owing a risk flatten, the venue still down: the resumed close is refused, so
    is the retry at the first bar, and the status and the gauge say so."""
    bot = Bot(tmp_path, BuyOnce)
    _refused_flatten(bot, "killed")  # refused with venue_unavailable, and the venue stays so
    with _served(bot, 3) as controller:
        status = controller.get_status()
        for _ in range(200):
            status = controller.get_status()
            if status.closes_retrying:
                break
            controller.wait(0.05)
        assert status.phase is Phase.RUNNING
        [close] = status.closes_retrying
        assert (close.symbol, close.code, close.position) == (SYMBOL, "venue_unavailable", 1.0)
        assert close.refusals >= 2 and close.since_ts > 0
        assert status.closes_stuck == ()
        assert _gauge(controller.metrics) == [1.0]
        Closes.answer = "accept"  # the venue is back: the next bar's retry closes it
        for _ in range(200):
            if not controller.get_status().closes_retrying:
                break
            controller.wait(0.05)
        assert controller.get_status().closes_retrying == ()
