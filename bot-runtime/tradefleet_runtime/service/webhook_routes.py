"""Wiring the signal webhook to a running bot: one code path with gRPC ``SubmitSignal``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from aiohttp import web

from tradefleet_runtime.service.api import Signal, SignalResult
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.webhook import WebhookConfig, add_webhook_routes


def signal_symbols(controller: BotController) -> Callable[[], Collection[str]]:
    """The symbols the bot trades: the webhook and gRPC ``SubmitSignal`` refuse others."""
    return lambda: controller.bot.manifest.spec.market.symbols


def webhook_routes(
    controller: BotController,
    keys_dir: Path,
    allow_from: Sequence[str] = (),
    rate_per_minute: int = 60,
    *,
    trust_forwarded_for: bool = False,
) -> Callable[[web.Application], None]:
    config = WebhookConfig(
        keys_dir=keys_dir,
        allow_from=list(allow_from),
        rate_per_minute=rate_per_minute,
        trust_forwarded_for=trust_forwarded_for,
    )

    async def submit(signal: Signal) -> SignalResult:
        # The controller queues the signal for the engine thread and waits for its answer.
        return await asyncio.get_running_loop().run_in_executor(
            None, controller.submit_signal, signal
        )

    async def submit_former(signal: Signal, former_ids: tuple[str, ...]) -> SignalResult:
        # The same, told the ids older releases journaled this request under: a request the
        # bot took just before an upgrade is answered with its first outcome, not traded again.
        return await asyncio.get_running_loop().run_in_executor(
            None, controller.submit_signal, signal, former_ids
        )

    def add(app: web.Application) -> None:
        add_webhook_routes(
            app,
            config=config,
            submit=submit,
            submit_former=submit_former,
            known_symbols=signal_symbols(controller),
            requests_total=controller.metrics.webhook_requests,
            bot=controller.bot.name,
        )

    return add
