"""Issue 18, item 5: money series carry a bounded ``currency``, ``tradefleet_bot_info`` carries
strategy and team, and per-symbol positions are exported from the status snapshot."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.fakes import FakeControlPlane
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.service.api import StatusSnapshot, SymbolExposure
from tradefleet_runtime.service.metric_labels import (
    NO_TEAM,
    OTHER_SYMBOL,
    BotLabels,
    MetricLabelError,
    bot_labels,
    currency_label,
    team_label,
)
from tradefleet_runtime.service.metrics import MONEY_SERIES, RuntimeMetrics
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.model import BotManifest

LABELS = BotLabels(
    bot="btc-ema",
    strategy="ema-cross",
    team="desk-crypto",
    mode="paper",
    broker="paper",
    currency="USDT",
    symbols=("BTC/USDT", "ETH/USDT"),
)


def _document(currency: str = "usdt") -> dict[str, object]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "btc-ema", "labels": {"tradefleet.io/team": "ignored"}},
        "spec": {
            "strategy": {"name": "ema-cross"},
            "market": {"symbols": ["BTC/USDT", "ETH/USDT"]},
            "capital": {"currency": currency, "initial": 1000},
        },
    }


def _manifest(currency: str = "usdt") -> BotManifest:
    return BotManifest.model_validate(_document(currency))


def _scrape(status: StatusSnapshot, labels: BotLabels = LABELS) -> dict[str, list[object]]:
    metrics = RuntimeMetrics(labels)
    metrics.watch(lambda: status, lambda: 0.0)
    metrics.fees.labels(labels.bot, "BTC/USDT", labels.currency).inc(1.25)
    metrics.funding_paid.labels(labels.bot, "BTC/USDT", labels.currency).inc(0.5)
    metrics.funding_received.labels(labels.bot, "BTC/USDT", labels.currency).inc(0.25)
    text = generate_latest(metrics.registry).decode()
    samples: dict[str, list[object]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _status(*exposure: SymbolExposure) -> StatusSnapshot:
    return dataclasses.replace(FakeControlPlane().status, exposure=exposure)


def test_every_money_series_carries_the_account_currency_and_nothing_else_does() -> None:
    samples = _scrape(_status())
    with_currency = {
        name
        for name, rows in samples.items()
        if any("currency" in row.labels for row in rows)  # type: ignore[attr-defined]
    }
    assert with_currency - {"tradefleet_bot_info"} == MONEY_SERIES
    for name in MONEY_SERIES:
        for row in samples[name]:
            assert row.labels["currency"] == "USDT", name  # type: ignore[attr-defined]
    equity = samples["tradefleet_equity"][0]
    assert equity.labels == {"bot": "btc-ema", "currency": "USDT"}  # type: ignore[attr-defined]
    assert equity.value == 10_250.5  # type: ignore[attr-defined]


def test_bot_info_names_strategy_team_mode_broker_and_currency() -> None:
    (info,) = _scrape(_status())["tradefleet_bot_info"]
    assert info.value == 1.0  # type: ignore[attr-defined]
    assert info.labels == {  # type: ignore[attr-defined]
        "bot": "btc-ema", "strategy": "ema-cross", "team": "desk-crypto", "mode": "paper",
        "broker": "paper", "currency": "USDT",
    }  # fmt: skip


def test_positions_per_spec_symbol_zero_when_flat_and_others_summed_under_other() -> None:
    samples = _scrape(
        _status(
            SymbolExposure("BTC/USDT", 0.5, 30_000.0),
            SymbolExposure("SOL/USDT", -2.0, -300.0),  # not in the spec: never its own label
            SymbolExposure("XRP/USDT", 10.0, 5.0),
        )
    )

    def by_symbol(name: str) -> dict[str, float]:
        return {r.labels["symbol"]: r.value for r in samples[name]}  # type: ignore[attr-defined]

    assert by_symbol("tradefleet_position_quantity") == {
        "BTC/USDT": 0.5, "ETH/USDT": 0.0, OTHER_SYMBOL: 8.0,
    }  # fmt: skip
    assert by_symbol("tradefleet_position_notional") == {
        "BTC/USDT": 30_000.0, "ETH/USDT": 0.0, OTHER_SYMBOL: -295.0,
    }  # fmt: skip
    for row in samples["tradefleet_position_notional"]:
        assert row.labels["currency"] == "USDT"  # type: ignore[attr-defined]
    assert "currency" not in samples["tradefleet_position_quantity"][0].labels  # type: ignore[attr-defined]


@given(st.lists(st.text(min_size=1, max_size=12), max_size=40))
def test_positions_never_add_series_beyond_the_spec_symbols_and_other(symbols: list[str]) -> None:
    exposure = tuple(SymbolExposure(s, 1.0, 1.0) for s in symbols)
    rows = _scrape(_status(*exposure))["tradefleet_position_quantity"]
    names = {r.labels["symbol"] for r in rows}  # type: ignore[attr-defined]
    assert names <= {*LABELS.symbols, OTHER_SYMBOL}
    assert sum(r.value for r in rows) == len(symbols)  # type: ignore[attr-defined]


def test_labels_come_from_the_spec_with_the_currency_upper_cased() -> None:
    labels = bot_labels(_manifest(" usdt "), "desk-crypto")
    assert labels == LABELS
    assert bot_labels(_manifest()).team == NO_TEAM  # the k8s label is the operator's business


@pytest.mark.parametrize("code", ["USD", "eur", "USDT", "BTC", "USDC", "XAU", "A1B2C3D4E5F6"])
def test_currency_codes_accepted(code: str) -> None:
    assert currency_label(code) == code.strip().upper()


@pytest.mark.parametrize(
    "text", ["US Dollar", "U", "$", "1INCH", "USD}", 'USD",team="x', "US-D", "€", " "]
)
def test_free_text_currency_refused_naming_the_field(text: str) -> None:
    # By the manifest's model, before any bot starts (a backtest too) ...
    with pytest.raises(SpecError) as refused:
        parse_manifest(_document(text))
    assert [error.field for error in refused.value.errors] == ["spec.capital.currency"]
    # ... and by the label, the same rule, for a value that did not come through the model.
    with pytest.raises(MetricLabelError) as caught:
        currency_label(text)
    assert caught.value.field == "spec.capital.currency"
    assert str(caught.value).startswith("spec.capital.currency: ")


@pytest.mark.parametrize("team", ["desk-fx", "Rates.EU_1", "a", "x" * 63])
def test_team_values_accepted(team: str) -> None:
    assert team_label(team) == team


@pytest.mark.parametrize("team", ["x" * 64, "-lead", "trail-", "two words", 'a"b', "a\nb", "é"])
def test_team_values_refused_naming_the_option(team: str) -> None:
    with pytest.raises(MetricLabelError) as caught:
        team_label(team)
    assert caught.value.field == "--team"


@given(st.text(max_size=80))
def test_a_team_label_is_either_refused_or_a_bounded_safe_value(text: str) -> None:
    try:
        team = team_label(text)
    except MetricLabelError:
        return
    assert team == NO_TEAM or (team == text.strip() and 1 <= len(team) <= 63)
    assert team.isascii() and not set(team) & set('"\\{}=, \n')
