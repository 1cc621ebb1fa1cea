"""A live bot's identity: what its order ids (and an MT5 magic number) derive from, drawn once
per journal and kept there.

Two bots of one name — the same manifest in two namespaces, or copied onto the same account —
sent the same client order ids: a venue filled one id twice and both journals booked both
fills. A journal from before identities keeps the bare name, or its orders at the venue would
no longer be the bot's after an upgrade."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import start_test_run
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.order_ids import bot_prefix, child_order_id, client_order_id, new_identity
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import Bot, BotSession, assemble
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.model import Mode

ROOT = Path(__file__).resolve().parents[2]
EURUSD = ROOT / "data" / "EURUSD_H1_2017.csv"
NEW_IDENTITY = re.compile(r"^(?P<namespace>[a-z0-9-]+)/(?P<name>[a-z0-9-]+)#[0-9a-f]{8}$")


def _live_bot(namespace: str = "team-a") -> Bot:
    """A live bot on the paper broker (the spec check would refuse it; the session does not
    ask): what a live run journals and sends, without a venue."""
    manifest = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "eur-trend", "namespace": namespace},
        "spec": {
            "mode": "paper",
            "strategy": {"name": "ema-cross", "params": {"fast": 12, "slow": 48}},
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"leverage": 30}},
            "data": {"name": "csv", "params": {"path": str(EURUSD), "end": "2017-01-10"}},
            "risk": [{"name": "fixed-fractional", "params": {"risk_per_trade": 0.005}}],
            "capital": {"currency": "USD", "initial": 100_000},
        },
    }
    bot = assemble(parse_manifest(manifest), PluginRegistry.discover(), ROOT)
    spec = bot.manifest.spec.model_copy(update={"mode": Mode.LIVE})
    return replace(bot, manifest=bot.manifest.model_copy(update={"spec": spec}))


def _open(bot: Bot, journal: Journal) -> tuple[BotSession, list[BrokerContext]]:
    """A live session opened on ``journal``, and the contexts its broker was connected with."""
    contexts: list[BrokerContext] = []
    connect = bot.broker.connect

    def recording(context: BrokerContext) -> Any:
        contexts.append(context)
        return connect(context)

    bot.broker.connect = recording  # type: ignore[method-assign]
    session = BotSession(bot, journal)
    session.open()
    return session, contexts


def test_a_new_journal_draws_an_identity_and_keeps_it_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite"
    journal = Journal(path, durable=True)
    try:
        session, (context,) = _open(_live_bot(), journal)
        identity = session.identity
        found = NEW_IDENTITY.match(identity)
        assert found and found["namespace"] == "team-a" and found["name"] == "eur-trend"
        # The broker and the engine derive from it: ids, and an MT5 bot's magic number.
        assert context.identity == identity and context.identity_seed == identity
        assert session.engine is not None
        assert session.engine._prefix == bot_prefix(identity)
        session.close("stopped")
    finally:
        journal.close()
    journal = Journal(path, durable=True)
    try:
        session, (context,) = _open(_live_bot(), journal)
        assert session.identity == identity and context.identity == identity
        session.close("stopped")
    finally:
        journal.close()


def test_two_bots_of_one_name_get_different_ids(tmp_path: Path) -> None:
    prefixes = set()
    for n, namespace in enumerate(("team-a", "team-b", "team-a")):  # the last: a copy
        journal = Journal(tmp_path / f"{n}.sqlite", durable=True)
        try:
            session, _ = _open(_live_bot(namespace), journal)
            assert session.engine is not None
            prefixes.add(session.engine._prefix)
            session.close("stopped")
        finally:
            journal.close()
    assert len(prefixes) == 3


def test_a_journal_with_live_runs_from_before_identities_keeps_the_bots_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    journal = Journal(path, durable=True)
    start_test_run(journal, "before", bot="eur-trend", mode="live")
    journal.finish_run("stopped", {})
    journal.close()
    journal = Journal(path, durable=True)
    try:
        session, (context,) = _open(_live_bot(), journal)
        # Its working orders at the venue carry the name's prefix: still the bot's.
        assert session.identity == "eur-trend" and context.identity_seed == "eur-trend"
        assert session.engine is not None
        assert session.engine._prefix == "tf67503c"  # the name's prefix, as it always was
        session.close("stopped")
        assert journal.bot_identity("eur-trend") == "eur-trend"  # kept: chosen once
    finally:
        journal.close()


def test_backtest_and_paper_ids_stay_the_bare_names() -> None:
    # Their ids never reach a venue; reports and the vectorised path compare them as they were.
    assert bot_prefix("eurusd-ema") == "tf07ddfd"
    assert BrokerContext("eurusd-ema", Mode.PAPER, ("EURUSD",), "USD", 1.0).identity_seed == (
        "eurusd-ema"
    )


def test_an_identity_keeps_ids_within_the_venues_limits() -> None:
    prefix = bot_prefix(new_identity("x" * 63, "y" * 63, "ffffffff"))
    assert len(prefix) == 10
    # A risk plugin's own order ("r"), a late sequence and a far bar time, as a bracket child
    # moved by cancel-replace: within an MT5 comment's 31 characters.
    child = child_order_id(client_order_id(prefix + "r", 4_102_444_800, "BTC/USDT", 999), "sl")
    assert len(f"{child}-a1") <= 31


@pytest.mark.parametrize("kept", ["team-a/eur-trend#0badc0de", "eur-trend"])
def test_the_first_identity_kept_stays(tmp_path: Path, kept: str) -> None:
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    try:
        assert journal.bot_identity("eur-trend") is None
        journal.keep_bot_identity("eur-trend", kept)
        journal.keep_bot_identity("eur-trend", "team-a/eur-trend#ffffffff")
        assert journal.bot_identity("eur-trend") == kept
        assert journal.bot_identity("other") is None
    finally:
        journal.close()
