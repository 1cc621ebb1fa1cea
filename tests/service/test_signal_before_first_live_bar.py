"""A reversal signal a restarted live bot serves before its first new bar (walkthrough W24).

A live feed restarted mid-hour hands the journaled bars again as history, then waits for the
next candle, calling the runtime's idle hook (``FeedRequest.idle``) so that signals and
control calls are served meanwhile — inside ``Engine.catch_up``. The strategy's ``ctx.close``
there dropped its cancels as a history bar's are (``BotContext.replaying`` stayed on for the
whole catch-up): ``external-signal`` answered a reversal "accepted" while the opposite entry
it was meant to end kept working beside the new one, and both could fill. Only a bar shown
to the strategy is history now.

The feed is a generator that calls the controller's idle hook while it waits, as the ccxt
and MT5 feeds do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.service.paper_bots import ROOT, paper_manifest, wait_until
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.api import Direction, Phase, Signal
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble

HOUR = 3600
T0 = (int(time.time()) // HOUR - 3) * HOUR
BAR = Bar("EURUSD", HOUR, T0, 1.05, 1.0505, 1.0495, 1.05, 1)
# Limit entries that rest (a SELL above the market, a BUY below), reversals on.
STRATEGY = {
    "name": "external-signal",
    "params": {"max_signal_age_s": 3600, "entry_order": "limit", "reverse_on_opposite": True},
}


def _signal(signal_id: str, direction: Direction) -> Signal:
    buy = direction is Direction.BUY
    return Signal(
        symbol="EURUSD",
        direction=direction,
        entry=1.049 if buy else 1.051,
        stop_loss=1.04 if buy else 1.06,
        take_profit=1.06 if buy else 1.04,
        volume=1000.0,
        signal_id=signal_id,
        received_at=time.time(),
    )


@contextmanager
def _live_bot(folder: Path) -> Iterator[BotController]:
    """The paper signals bot on a live-like feed: ``BAR``, then a wait for the next candle
    that serves the runtime's idle hook. Resting orders stay on stop (as after a kill)."""
    journal = Journal(folder / "j.sqlite", durable=True)
    registry = PluginRegistry.discover()
    manifest = paper_manifest("tv-bot", STRATEGY)
    on_stop = manifest.spec.on_stop.model_copy(update={"cancel_open_orders": False})
    manifest = manifest.model_copy(
        update={"spec": manifest.spec.model_copy(update={"on_stop": on_stop})}
    )
    bot = assemble(manifest, registry, ROOT)
    bot.live_feed = True  # as a feed declaring `live-feed` would make it
    release = threading.Event()
    holder: list[BotController] = []

    def feed() -> Iterator[Bar]:
        yield BAR
        while not release.wait(0.02):
            holder[0]._idle()  # FeedRequest.idle: a no-op off the engine thread

    controller = BotController(bot, journal, registry, speed=1.0, bars=feed())
    holder.append(controller)
    controller.start()
    try:
        wait_until(lambda: controller.phase is Phase.RUNNING, controller)
        yield controller
    finally:
        release.set()
        controller.stop()
        controller.wait(20)
        journal.close()


def _working(controller: BotController) -> list[tuple[str, float | None]]:
    return sorted((o.side, o.price) for o in controller.list_orders() if o.parent_id is None)


def test_a_reversal_in_one_run_cancels_the_opposite_resting_entry(tmp_path: Path) -> None:
    """Without a restart the reversal ends the working SELL before entering."""
    with _live_bot(tmp_path) as bot:
        wait_until(lambda: bot.get_status().bars >= 1, bot)
        assert bot.submit_signal(_signal("sell-1", Direction.SELL)).accepted
        assert _working(bot) == [("sell", 1.051)]
        assert bot.submit_signal(_signal("buy-1", Direction.BUY)).accepted
        assert _working(bot) == [("buy", 1.049)]


def test_a_reversal_before_the_restarted_bots_first_bar_cancels_the_opposite_entry(
    tmp_path: Path,
) -> None:
    """After the restart the SELL limit is re-armed from the journal; a BUY reversal served
    while the feed waits for the first new candle ends it before entering."""
    with _live_bot(tmp_path) as bot:
        wait_until(lambda: bot.get_status().bars >= 1, bot)
        assert bot.submit_signal(_signal("sell-1", Direction.SELL)).accepted
    with _live_bot(tmp_path) as bot:
        assert _working(bot) == [("sell", 1.051)]  # re-armed from the journal
        result = bot.submit_signal(_signal("buy-1", Direction.BUY))
        assert result.accepted, result
        assert _working(bot) == [("buy", 1.049)], "the reversal left the opposite entry working"
