"""A close no retry can pass reaches a person: the status (``closes_stuck``, over gRPC too),
``tradefleet status``'s table and the ``tradefleet_closes_stuck`` gauge say which positions the
bot's own flatten could not close and leaves to a person; the chart alerts on the gauge
(``tests/packaging/alerts/alerts_test.yaml``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
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
    running_server,
)
from tests.service.test_metrics_labels import LABELS
from tradefleet_runtime import cli
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import ReasonCode
from tradefleet_runtime.service.api import CloseStuck, Phase, StatusSnapshot
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.grpc_server import status_from_proto, status_to_proto
from tradefleet_runtime.service.last_known import last_known_account
from tradefleet_runtime.service.metrics import RuntimeMetrics
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

STUCK = CloseStuck("BTC/USDT", "below_min_quantity", 0.0004)


def _stuck(status: StatusSnapshot, *closes: CloseStuck) -> StatusSnapshot:
    return dataclasses.replace(status, closes_stuck=closes)


def _gauge(metrics: RuntimeMetrics) -> list[tuple[dict[str, str], float]]:
    text = generate_latest(metrics.registry).decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tradefleet_closes_stuck"
    ]


def _scrape(status: StatusSnapshot) -> list[tuple[dict[str, str], float]]:
    metrics = RuntimeMetrics(LABELS)
    metrics.watch(lambda: status, lambda: 0.0)
    return _gauge(metrics)


def test_the_gauge_is_0_normally_and_counts_the_stuck_closes() -> None:
    status = FakeControlPlane().status
    assert _scrape(status) == [({"bot": LABELS.bot}, 0.0)]
    assert _scrape(_stuck(status, STUCK)) == [({"bot": LABELS.bot}, 1.0)]
    other = CloseStuck("ETH/USDT", "", -0.5)
    assert _scrape(_stuck(status, STUCK, other)) == [({"bot": LABELS.bot}, 2.0)]


@pytest.mark.parametrize(
    "change", [{"phase": Phase.STARTING}, {"phase": Phase.STARTING, "last_known": True}]
)
def test_no_gauge_before_an_engine_runs(change: dict[str, object]) -> None:
    """With nothing stuck in the journal, no figure until the engine runs: a 0 before would
    say all clear (and resolve the alert) for a position still left to a person."""
    status = dataclasses.replace(FakeControlPlane().status, **change)  # type: ignore[arg-type]
    assert _scrape(status) == []


def test_the_grpc_status_carries_the_stuck_closes() -> None:
    status = _stuck(FakeControlPlane().status, STUCK, CloseStuck("ETH/USDT", "", -0.5))
    message = status_to_proto(status)
    assert [(c.symbol, c.code, c.position) for c in message.closes_stuck] == [
        ("BTC/USDT", "below_min_quantity", 0.0004),
        ("ETH/USDT", "", -0.5),
    ]
    assert status_from_proto(message) == status
    # An older runtime sends none: nothing is stuck as far as the client can tell.
    assert status_from_proto(status_to_proto(FakeControlPlane().status)).closes_stuck == ()


def _cli_status(control: FakeControlPlane) -> str:
    with running_server(control) as endpoint:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["status", f"127.0.0.1:{endpoint.port}"])
    assert code == 0, out.getvalue()
    return out.getvalue()


def test_the_cli_status_table_says_what_a_person_must_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEFLEET_TOKEN", "any")  # the server checks none
    monkeypatch.setenv("COLUMNS", "250")  # one line a row: the words are not wrapped apart
    control = FakeControlPlane()
    assert "CLOSE STUCK" not in _cli_status(control)
    control.status = _stuck(control.status, STUCK)
    out = _cli_status(control)
    assert "CLOSE STUCK" in out
    assert "0.0004 BTC/USDT (refused: below_min_quantity)" in out
    assert "tradefleet stop ADDRESS --flatten" in out


@contextlib.contextmanager
def _served(bot: Bot) -> Iterator[BotController]:
    """The bot restarted under ``serve``'s controller: its first bar at once, the next an hour
    later (it stays up)."""
    manifest = load_manifest(bot.manifest)
    journal = Journal(bot.folder / "journal.sqlite", durable=True)
    controller = BotController(
        assemble(manifest, bot.registry, bot.folder),
        journal,
        bot.registry,
        speed=1.0,
        bars=_bars(5, 2),
    )
    controller.start()
    try:
        for _ in range(200):
            if controller.get_status().bars >= 1:
                break
            controller.wait(0.05)
        yield controller
    finally:
        controller.stop()
        controller.wait(10)
        journal.close()


def test_a_served_bot_restarted_with_a_stuck_close_reports_it_and_counts_it(
    tmp_path: Path,
) -> None:
    bot = Bot(tmp_path, BuyOnce)
    _refused_flatten(bot, "killed", ReasonCode.BELOW_MIN_QUANTITY)
    Closes.answer = "accept"  # the venue would take it now: only a person decides
    with _served(bot) as controller:
        status = controller.get_status()
        assert status.bars >= 1 and status.phase is Phase.RUNNING
        assert status.closes_stuck == (CloseStuck(SYMBOL, "below_min_quantity", 1.0),)
        assert [value for _, value in _gauge(controller.metrics)] == [1.0]


def test_a_served_bot_with_nothing_stuck_counts_0(tmp_path: Path) -> None:
    bot = Bot(tmp_path, BuyOnce)
    _refused_flatten(bot, "killed", ReasonCode.VENUE_UNAVAILABLE)  # a retry passes it
    with _served(bot) as controller:
        status = controller.get_status()
        assert status.bars >= 1 and status.closes_stuck == ()
        assert [value for _, value in _gauge(controller.metrics)] == [0.0]


def test_a_restarted_bot_waiting_for_its_venue_says_its_stuck_close(tmp_path: Path) -> None:
    """While Starting (the venue down, say), the status is the journal's last-known account:
    it names the close a person must make, and the gauge counts it, so the alert holds
    through the restart instead of resolving until the engine runs."""
    bot = Bot(tmp_path, BuyOnce)
    _refused_flatten(bot, "killed", ReasonCode.BELOW_MIN_QUANTITY)
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        name = load_manifest(bot.manifest).metadata.name
        known = last_known_account(journal, name)
    finally:
        journal.close()
    assert known is not None
    assert known.closes_stuck == (CloseStuck(SYMBOL, "below_min_quantity", 1.0),)
    starting = dataclasses.replace(
        FakeControlPlane().status,
        phase=Phase.STARTING,
        last_known=True,
        closes_stuck=known.closes_stuck,
    )
    assert _scrape(starting) == [({"bot": LABELS.bot}, 1.0)]
