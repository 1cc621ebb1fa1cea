"""Regression tests of defects in the manifest loader, plugin params and ``external-signal``.

Each test is named after the defect it pins; each failed before its fix.
"""

from __future__ import annotations

import copy
import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field, ValidationError

from tests.runtime.helpers import flat_bars, make_engine
from tests.runtime.signal_engines import signal_engine as _signal_engine
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.feeds.csv_feed import CsvFeed
from tradefleet_plugins.feeds.csv_params import CsvFeedParams
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import (
    EntryOrder,
    ExternalSignalParams,
)
from tradefleet_runtime.contracts import FeedRequest, PluginParams
from tradefleet_runtime.errors import DataError, SpecError
from tradefleet_runtime.model import Order, Side
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.api import Direction, Signal
from tradefleet_runtime.spec import load_manifest, parse_manifest
from tradefleet_runtime.spec.checks import validate_plugins
from tradefleet_runtime.spec.load import MAX_DOCUMENT_BYTES
from tradefleet_runtime.spec.model import CapitalSpec
from tradefleet_runtime.spec.values import MAX_DEPTH, MAX_VALUES
from tradefleet_runtime.timeframes import MAX_TIMEFRAME_S, parse_timeframe

ROOT = Path(__file__).resolve().parents[2]

# -- external-signal -------------------------------------------------------------------------


def _buy(
    volume: float, sl: float = 0.9, tp: float = 1.1, direction: Direction = Direction.BUY
) -> Signal:
    if direction is Direction.SELL:
        sl, tp = tp, sl
    return Signal("TEST", direction, entry=1.0, stop_loss=sl, take_profit=tp, volume=volume)


def test_pyramiding_signal_adds_to_the_position_and_keeps_its_brackets() -> None:
    engine, sent = _signal_engine(allow_pyramiding=True)
    bars = flat_bars([1.0] * 6)
    engine.run(bars[:2])
    accepted, reason, _ = engine.handle_signal(_buy(4000))
    assert accepted, reason
    engine.run(bars[2:4])  # the entry fills at the next open; its SL/TP children rest
    assert engine.position("TEST").quantity == 4000
    first_children = {o.client_order_id for o in engine.open_orders("TEST")}
    assert len(first_children) == 2  # stop-loss and take-profit of the first entry
    sent.clear()
    accepted, reason, _ = engine.handle_signal(_buy(1000, sl=0.85, tp=1.15))
    assert accepted, reason
    # One order: a buy of 1,000 with its own bracket; nothing closed, nothing cancelled.
    assert [(o.side, o.quantity, o.reduce_only) for o in sent] == [(Side.BUY, 1000, False)]
    assert first_children <= {o.client_order_id for o in engine.open_orders("TEST")}
    engine.run(bars[4:])
    assert engine.position("TEST").quantity == 5000
    working = {o.client_order_id: o for o in engine.open_orders("TEST")}
    assert first_children <= set(working)
    # The first entry's brackets still cover its 4,000; the second's cover its 1,000.
    assert sorted(o.quantity for o in working.values()) == [1000, 1000, 4000, 4000]


def test_opposite_signal_with_reverse_closes_then_enters() -> None:
    engine, sent = _signal_engine(reverse_on_opposite=True)
    bars = flat_bars([1.0] * 6)
    engine.run(bars[:2])
    assert engine.handle_signal(_buy(4000))[0]
    engine.run(bars[2:4])
    sent.clear()
    accepted, reason, _ = engine.handle_signal(_buy(1000, direction=Direction.SELL))
    assert accepted, reason
    assert [(o.side, o.quantity, o.reduce_only) for o in sent] == [
        (Side.SELL, 4000, True),
        (Side.SELL, 1000, False),
    ]
    engine.run(bars[4:])
    assert engine.position("TEST").quantity == -1000


def _working_entries(engine: Any, symbol: str = "TEST") -> list[Order]:
    return [o for o in engine.open_orders(symbol) if not o.reduce_only and o.parent_id is None]


@pytest.mark.parametrize("direction", [Direction.BUY, Direction.SELL])
def test_a_burst_of_signals_before_a_bar_makes_one_entry(direction: Direction) -> None:
    """Without allow_pyramiding, eight same-way signals between two bars stacked eight entries
    (the position held only what filled, and a market entry fills at the next bar)."""
    engine, sent = _signal_engine()
    bars = flat_bars([1.0] * 4)
    engine.run(bars[:2])
    answers = [engine.handle_signal(_buy(1000, direction=direction)) for _ in range(8)]
    assert answers[0][0], answers[0][1]
    first_id = answers[0][2]
    for accepted, reason, order_id in answers[1:]:
        assert not accepted and order_id == ""
        assert reason == (
            f"a {direction.value.lower()} entry for TEST is already working ({first_id}); "
            "allow_pyramiding is off"
        )
    assert [o.client_order_id for o in sent] == [first_id]
    engine.run(bars[2:])  # the one entry fills; more signals now meet the position
    assert engine.position("TEST").quantity == (1000 if direction is Direction.BUY else -1000)
    accepted, reason, _ = engine.handle_signal(_buy(1000, direction=direction))
    assert not accepted
    assert reason == f"already {'long' if direction is Direction.BUY else 'short'} TEST"


def test_a_resting_limit_entry_refuses_a_second_until_it_is_cancelled() -> None:
    """Resting limit buys stacked too (six accumulated); a cancelled one no longer counts."""
    engine, sent = _signal_engine(entry_order="limit")
    bars = flat_bars([1.0] * 6)
    engine.run(bars[:2])
    resting = Signal("TEST", Direction.BUY, entry=0.995, stop_loss=0.9, take_profit=1.1, volume=1e3)
    accepted, reason, first_id = engine.handle_signal(resting)
    assert accepted, reason
    engine.run(bars[2:4])  # bars at 1.0 never reach 0.995: the limit keeps resting
    assert [o.client_order_id for o in _working_entries(engine)] == [first_id]
    accepted, reason, _ = engine.handle_signal(resting)
    assert not accepted and f"already working ({first_id})" in reason
    assert len(sent) == 1
    engine.cancel(first_id)
    assert _working_entries(engine) == []
    accepted, reason, second_id = engine.handle_signal(resting)
    assert accepted, reason
    assert second_id != first_id
    assert [o.client_order_id for o in _working_entries(engine)] == [second_id]


def test_an_entry_rejected_by_the_venue_no_longer_blocks_the_next_signal() -> None:
    engine, _ = _signal_engine()
    bars = flat_bars([1.0] * 6)
    engine.run(bars[:2])
    # 200,000 at 1.0 on a 100,000 account without leverage: the paper venue rejects the fill.
    accepted, reason, _ = engine.handle_signal(_buy(200_000))
    assert accepted, reason
    refused, reason, _ = engine.handle_signal(_buy(1000))
    assert not refused and "already working" in reason
    engine.run(bars[2:4])
    assert engine.stats.rejected == 1  # insufficient margin
    assert engine.position("TEST").quantity == 0 and _working_entries(engine) == []
    accepted, reason, _ = engine.handle_signal(_buy(1000))
    assert accepted, reason


def test_a_paper_bot_reads_a_signal_in_lots_with_its_instruments_contract_size() -> None:
    # A paper rehearsal of an MT5 sender's webhook: 0.01 lot of EURUSD is 1,000 units there.
    lots = {"default_instrument": {"contract_size": 100_000}, "leverage": 30}
    engine, sent = _signal_engine(broker=lots, volume_unit="lots")
    engine.run(flat_bars([1.0] * 2))
    accepted, reason, _ = engine.handle_signal(_buy(0.01))
    assert accepted, reason
    assert [order.quantity for order in sent] == [1_000.0]
    # Unset, a lot is one unit (the paper broker's default contract size).
    engine, sent = _signal_engine(volume_unit="lots")
    engine.run(flat_bars([1.0] * 2))
    assert engine.handle_signal(_buy(0.01))[0]
    assert [order.quantity for order in sent] == [0.01]


def test_a_working_entry_refuses_the_opposite_signal_not_another_symbol() -> None:
    """A second same-way entry on the same symbol is refused, and so is an opposite one while
    reverse_on_opposite is off: filled, it would net the first out and leave both brackets
    working (a zero-length trade, four protective orders). Symbols are apart."""
    strategy = ExternalSignal(ExternalSignalParams(entry_order=EntryOrder.LIMIT))
    engine = make_engine(strategy, symbols=("TEST", "OTHER"), capital=100_000.0)
    engine.signals = strategy
    bars = sorted(flat_bars([1.0] * 3) + flat_bars([1.0] * 3, symbol="OTHER"), key=lambda b: b.ts)
    engine.run(bars)
    buy = Signal("TEST", Direction.BUY, entry=0.995, stop_loss=0.9, take_profit=1.1, volume=1e3)
    assert engine.handle_signal(buy)[0]
    assert not engine.handle_signal(buy)[0]
    accepted, reason, _ = engine.handle_signal(
        Signal("OTHER", Direction.BUY, entry=0.995, stop_loss=0.9, take_profit=1.1, volume=1e3)
    )
    assert accepted, reason
    accepted, reason, _ = engine.handle_signal(
        Signal("TEST", Direction.SELL, entry=1.005, stop_loss=1.1, take_profit=0.9, volume=1e3)
    )
    assert not accepted and "against the working buy entry for TEST" in reason, reason
    assert [o.side for o in _working_entries(engine)] == [Side.BUY]  # TEST's: the first only


def test_the_brackets_of_an_open_position_do_not_refuse_its_reversal() -> None:
    """A long's stop-loss and take-profit are working sells, but reduce-only children: not
    entries. The reversal is accepted; a second sell while the reversal works is refused."""
    engine, sent = _signal_engine(reverse_on_opposite=True)
    bars = flat_bars([1.0] * 6)
    engine.run(bars[:2])
    assert engine.handle_signal(_buy(4000))[0]
    engine.run(bars[2:4])
    assert {o.tag for o in engine.open_orders("TEST")} == {"stop_loss", "take_profit"}
    assert all(o.side is Side.SELL for o in engine.open_orders("TEST"))
    sent.clear()
    accepted, reason, reversal_id = engine.handle_signal(_buy(1000, direction=Direction.SELL))
    assert accepted, reason
    assert [(o.side, o.quantity, o.reduce_only) for o in sent] == [
        (Side.SELL, 4000, True),
        (Side.SELL, 1000, False),
    ]
    again, reason, _ = engine.handle_signal(_buy(1000, direction=Direction.SELL))
    assert not again and f"already working ({reversal_id})" in reason
    engine.run(bars[4:])
    assert engine.position("TEST").quantity == -1000


# -- the manifest loader: inputs that crashed or hung it ---------------------------------------

EXAMPLE = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"


@contextmanager
def _within(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _example(**replacements: str) -> str:
    text = EXAMPLE.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _refusal(tmp_path: Path, text: str) -> dict[str, str]:
    """Load ``text`` as a manifest (and check its plugins); the errors by field."""
    file = tmp_path / "bot.yaml"
    file.write_text(text)
    with _within(10), pytest.raises(SpecError) as caught:
        manifest = load_manifest(file)
        problems = validate_plugins(manifest, PluginRegistry.discover())
        if problems:
            raise SpecError(problems)
    return {error.field: error.message for error in caught.value.errors}


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    errors = _refusal(tmp_path, _example(**{"allow_short: true": f"allow_short: true, x: {deep}"}))
    [(field, message)] = errors.items()
    assert field.startswith("spec.strategy.params.x[0]")
    assert f"nested deeper than {MAX_DEPTH} levels" in message
    # Block style too, and nesting given as Python objects (the operator's JSON).
    block = "a:\n" + "".join(" " * i + "- \n" for i in range(1, 600))
    assert "nested deeper" in next(iter(_refusal(tmp_path, block).values()))
    document: dict[str, Any] = {}
    inner = document
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(SpecError, match="nested deeper"):
        parse_manifest(document)


def test_five_thousand_digit_integer_is_refused_naming_the_field(tmp_path: Path) -> None:
    errors = _refusal(tmp_path, _example(**{"initial: 100000": "initial: " + "9" * 5000}))
    assert "a number of 5,000 characters" in errors["spec.capital.initial"]
    # Under the character limit but over 64 bits: refused by field too.
    errors = _refusal(tmp_path, _example(**{"initial: 100000": "initial: " + "9" * 30}))
    assert "64 bits" in errors["spec.capital.initial"]


def test_huge_timeframe_is_refused_naming_spec_market_timeframe(tmp_path: Path) -> None:
    errors = _refusal(tmp_path, _example(**{"timeframe: 1h": "timeframe: 99999999999999999999d"}))
    assert "longer than 366 days" in errors["spec.market.timeframe"]
    errors = _refusal(tmp_path, _example(**{"timeframe: 1h": "timeframe: 367d"}))
    assert "longer than 366 days" in errors["spec.market.timeframe"]
    assert parse_timeframe("366d") == MAX_TIMEFRAME_S
    assert parse_timeframe("52w") < MAX_TIMEFRAME_S


def test_dev_zero_data_path_is_refused_naming_the_field(tmp_path: Path) -> None:
    errors = _refusal(tmp_path, _example(**{"../../data/EURUSD_H1_2017.csv": "/dev/zero"}))
    assert "not a regular file" in errors["spec.data.params.path"]
    errors = _refusal(tmp_path, _example(**{"../../data/EURUSD_H1_2017.csv": "/"}))
    assert "not a regular file" in errors["spec.data.params.path"]


def test_csv_feed_refuses_a_relative_path_to_a_device(tmp_path: Path) -> None:
    # A relative path is only resolved when the feed runs (against the manifest's folder).
    (tmp_path / "data.csv").symlink_to("/dev/zero")
    feed = CsvFeed(CsvFeedParams(path="data.csv"))
    request = FeedRequest(("EURUSD",), 3600, tmp_path)
    with _within(10), pytest.raises(DataError, match=r"spec\.data\.params\.path: .*regular file"):
        list(feed.bars(request))
    feed = CsvFeed(CsvFeedParams(files={"EURUSD": "."}))
    with pytest.raises(DataError, match=r"spec\.data\.params\.files\.EURUSD: .*regular file"):
        list(feed.bars(request))


def test_manifest_file_that_never_ends_is_refused(tmp_path: Path) -> None:
    with _within(10), pytest.raises(SpecError, match="larger than 256 KiB"):
        load_manifest("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text(_example() + "#" * MAX_DOCUMENT_BYTES)
    with pytest.raises(SpecError, match="larger than 256 KiB"):
        load_manifest(big)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(_example().encode() + b"# caf\xe9\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_manifest(latin1)


def test_alias_bomb_is_refused_by_its_expanded_size(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    bomb = "\n      ".join(lines)
    text = _example(**{"gap_policy: trade": "gap_policy: trade\n      " + bomb})
    with _within(10):
        errors = _refusal(tmp_path, text)
    assert any(f"more than {MAX_VALUES:,} values" in m for m in errors.values())
    # A recursive alias is a cycle: refused by depth, not a RecursionError.
    errors = _refusal(tmp_path, _example(**{"fast: 48": "fast: &r [*r]"}))
    assert any("nested deeper" in m for m in errors.values())


def test_odd_yaml_values_are_refused_naming_the_field(tmp_path: Path) -> None:
    cases = {
        "fast: !!int abc": ("spec.strategy.params.fast", "cannot read int value"),
        "fast: !!set {a, b}": ("spec.strategy.params.fast", "not a JSON value"),
        "fast: !!binary aGk=": ("spec.strategy.params.fast", "not a JSON value"),
        "fast: !!timestamp 2017-13-45": ("spec.strategy.params.fast", "cannot read"),
        "fast: !!timestamp abc": (
            "spec.strategy.params.fast",
            "cannot read timestamp value: 'abc' is not one",
        ),
        "fast: !!bool maybe": ("spec.strategy.params.fast", "cannot read bool"),
        "1: 48": ("spec.strategy.params.1", "is not a string"),
    }
    for replacement, (field, message) in cases.items():
        errors = _refusal(tmp_path, _example(**{"fast: 48": replacement}))
        assert message in errors.get(field, ""), (replacement, errors)


def test_dates_stay_strings_as_kubectl_sends_them(tmp_path: Path) -> None:
    file = tmp_path / "bot.yaml"
    file.write_text(_example(**{"gap_policy: trade": "gap_policy: trade\n      start: 2017-03-01"}))
    manifest = load_manifest(file)
    assert manifest.spec.data is not None and manifest.spec.data.params["start"] == "2017-03-01"
    assert validate_plugins(manifest, PluginRegistry.discover()) == []


# -- the manifest loader: what it accepted and should not -------------------------------------


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    errors = _refusal(tmp_path, _example(**{"mode: backtest": "mode: paper\n  mode: live"}))
    assert errors == {
        "spec.mode": "line 11: duplicate key (first at line 10); a key may appear once in a mapping"
    }
    errors = _refusal(tmp_path, _example(**{"fast: 48": "fast: 48, fast: 5"}))
    assert "duplicate key" in errors["spec.strategy.params.fast"]


def test_infinite_capital_is_refused(tmp_path: Path) -> None:
    for infinite in (".inf", "-.inf", ".nan", "1.0e+999"):
        errors = _refusal(tmp_path, _example(**{"initial: 100000": f"initial: {infinite}"}))
        assert "finite" in errors["spec.capital.initial"], infinite
    errors = _refusal(tmp_path, _example(**{"initial: 100000": "initial: '1e999'"}))
    assert "finite" in errors["spec.capital.initial"]


def test_bool_for_a_number_is_refused(tmp_path: Path) -> None:
    errors = _refusal(tmp_path, _example(**{"fast: 48": "fast: true"}))
    assert errors["spec.strategy.params.fast"].startswith("true is not a number")
    errors = _refusal(tmp_path, _example(**{"initial: 100000": "initial: false"}))
    assert errors["spec.capital.initial"].startswith("false is not a number")


# -- inf/nan and booleans refused by the base models, not per field --------------------------


class _ThirdPartyParams(PluginParams):
    """A plugin's params written with no bounds at all: the base model refuses for it."""

    size: float = 1.0
    period: int = 10
    levels: list[float] = Field(default_factory=list)
    weights: dict[str, float | None] = Field(default_factory=dict)
    enabled: bool = True
    label: str | int = "x"
    extra: Any = None


def test_plugin_params_refuse_inf_nan_and_bools_by_default() -> None:
    refused: list[dict[str, Any]] = [
        {"size": math.inf},
        {"size": math.nan},
        {"size": True},
        {"period": False},
        {"levels": [1.0, True]},
        {"levels": [1.0, -math.inf]},
        {"weights": {"a": True}},
        {"weights": {"a": math.nan}},
        {"label": True},
    ]
    for params in refused:
        with pytest.raises(ValidationError):
            _ThirdPartyParams.model_validate(params)
    # What YAML manifests need still works: ints for floats, bools for bools, anything for Any.
    ok = _ThirdPartyParams.model_validate(
        {"size": 2, "levels": [1, 2.5], "weights": {"a": None}, "enabled": False, "extra": True}
    )
    assert ok.size == 2.0 and ok.levels == [1.0, 2.5] and ok.enabled is False
    error = ExternalSignalParams.model_validate
    with pytest.raises(ValidationError, match="true is not a number"):
        error({"max_signal_age_s": True})
    with pytest.raises(ValidationError, match="finite"):
        PaperBrokerParams.model_validate({"instruments": {"X": {"tick_size": math.inf}}})
    with pytest.raises(ValidationError, match="true is not a number"):
        PaperBrokerParams.model_validate({"default_instrument": {"lot_step": True}})


def test_spec_numbers_refuse_inf_nan_and_bools_by_default() -> None:
    base = yaml.safe_load(_example())
    cases: dict[str, tuple[tuple[str, ...], Any]] = {
        "spec.quality.window": (("spec", "quality", "window"), True),
        "spec.quality.winRate.min": (("spec", "quality", "winRate", "min"), math.nan),
        "spec.runtime.replaySpeed": (("spec", "runtime", "replaySpeed"), math.inf),
        "metadata.generation": (("metadata", "generation"), True),
        "spec.runtime.resources": (("spec", "runtime", "resources"), {"limits": {"cpu": True}}),
    }
    for field, (path, value) in cases.items():
        document = copy.deepcopy(base)
        target = document
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
        with pytest.raises(SpecError) as caught:
            parse_manifest(document)
        assert [e.field for e in caught.value.errors] == [field], caught.value
    # Models built in Python get the same checks (not only documents through the loader).
    with pytest.raises(ValidationError):
        CapitalSpec(initial=math.inf)
    with pytest.raises(ValidationError):
        CapitalSpec(initial=True)
