"""The operator keeps one series per TradingBot of the phase it records
(``tradefleet_operator_bot_phase{bot_namespace, bot, phase}``): moved when the phase changes,
removed when the bot is deleted. ``TradefleetBotFailed`` reads it, because a failed bot's own
``tradefleet_phase`` is gone with its process before a scrape sees it."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tradefleet_operator.metrics import forget_phase, record_phase


def _phase(namespace: str, bot: str, phase: str) -> float | None:
    return REGISTRY.get_sample_value(
        "tradefleet_operator_bot_phase",
        {"bot_namespace": namespace, "bot": bot, "phase": phase},
    )


def _count(phase: str) -> float:
    return REGISTRY.get_sample_value("tradefleet_operator_bots", {"phase": phase}) or 0.0


def test_a_bots_phase_series_moves_with_its_phase_and_goes_with_it() -> None:
    failed_before = _count("Failed")
    record_phase("uid-metrics-1", "Running", "trading", "eurusd-ema")
    assert _phase("trading", "eurusd-ema", "Running") == 1.0
    record_phase("uid-metrics-1", "Failed", "trading", "eurusd-ema")
    assert _phase("trading", "eurusd-ema", "Failed") == 1.0
    assert _phase("trading", "eurusd-ema", "Running") is None  # moved, not left behind
    assert _count("Failed") == failed_before + 1
    forget_phase("uid-metrics-1")
    assert _phase("trading", "eurusd-ema", "Failed") is None
    assert _count("Failed") == failed_before


def test_two_bots_of_one_name_in_two_namespaces_are_two_series() -> None:
    record_phase("uid-metrics-2", "Running", "team-a", "btc")
    record_phase("uid-metrics-3", "Failed", "team-b", "btc")
    try:
        assert _phase("team-a", "btc", "Running") == 1.0
        assert _phase("team-b", "btc", "Failed") == 1.0
        assert _phase("team-a", "btc", "Failed") is None
    finally:
        forget_phase("uid-metrics-2")
        forget_phase("uid-metrics-3")
