"""The vectorised path finds the first bar at which the paper broker liquidates, as the event
engine does: it refuses the run naming that bar's time, and the engine's run (which simulates
the liquidation) closes the position at that very bar; a run the engine never liquidates, the
vectorised path takes. Checked on random gapped walks, long and short, at a leverage and a
capital that liquidate some of them at their open, some inside a bar, some never."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tradefleet_runtime.bar_columns import bar_columns
from tradefleet_runtime.brackets import LIQUIDATION_TAG
from tradefleet_runtime.optimize.vector import VectorTerms, run_plan, vector_terms
from tradefleet_runtime.optimize.worker import feed_bars, with_params
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import parse_manifest

from .test_vector_path import HOUR, ROOT, _engine_fills, _gapped_csv, _manifest

PARAMS = {"fast": 3, "slow": 8}
# At 20x with a 4 % maintenance margin, these liquidate most walks, some at an open, and
# leave a few whole.
CAPITALS = [16.0, 20.0, 24.0, 30.0, 40.0]


def _document(tmp_path: Path, seed: int, capital: float) -> dict[str, Any]:
    return _manifest(
        _gapped_csv(tmp_path, seed, count=600),
        "SYN",
        broker={
            "name": "paper",
            "params": {"fee_bps": 10, "leverage": 20, "maintenance_margin_rate": 0.04},
        },
        capital={"currency": "USD", "initial": capital},
    )


def _vector(document: dict[str, Any]) -> Any:
    registry = PluginRegistry.discover()
    bot = assemble(parse_manifest(with_params(document, PARAMS)), registry, ROOT)
    columns = bar_columns(feed_bars(document, str(ROOT)))
    plan = bot.strategy.target_positions(columns)  # type: ignore[attr-defined]
    terms = vector_terms(
        ("SYN",),
        ("paper", bot.broker.params.model_dump()),  # type: ignore[attr-defined]
        [(name, plugin.params.model_dump()) for name, plugin in bot.risk],  # type: ignore[attr-defined]
        initial_capital=document["spec"]["capital"]["initial"],
        timeframe_s=HOUR,
    )
    assert isinstance(terms, VectorTerms), terms
    return run_plan(columns, plan, terms, bot.strategy.warmup_bars())


@pytest.mark.parametrize("seed", range(1, 9))
@pytest.mark.parametrize("capital", CAPITALS)
def test_the_vectorised_path_refuses_at_the_engines_liquidation(
    tmp_path: Path, seed: int, capital: float
) -> None:
    document = _document(tmp_path, seed, capital)
    fills = _engine_fills(document, PARAMS)
    liquidations = [fill.ts for fill in fills if fill.reason == LIQUIDATION_TAG]
    run = _vector(document)
    if liquidations:
        assert isinstance(run, str), "the engine liquidated a run the vectorised path took"
        if "liquidated" in run:
            assert f"at {liquidations[0]} " in run
        else:
            # An opening fill the margin check refuses is left to the engine too: the engine's
            # run differs from the plan from there, so its liquidation comes no earlier.
            assert "refused for margin" in run
            assert int(run.split(" at ")[1].split()[0]) <= liquidations[0]
    elif isinstance(run, str):
        assert "refused for margin" in run  # a margin refusal is left to the engine too
    else:
        assert run.fill_bar.size == len(fills)


def test_the_random_walks_liquidate_some_runs_and_not_others(tmp_path: Path) -> None:
    """The check above sees both outcomes: runs taken whole, and runs the vectorised path
    refuses for a liquidation, of a long (closed by a sell) and of a short."""
    sides: list[str] = []
    kept = 0
    for seed in range(1, 9):
        for capital in CAPITALS:
            document = _document(tmp_path, seed, capital)
            run = _vector(document)
            if not isinstance(run, str):
                kept += 1
            elif "liquidated" in run:
                fills = _engine_fills(document, PARAMS)
                sides += [f.side for f in fills if f.reason == LIQUIDATION_TAG][:1]
    assert kept and {"buy", "sell"} <= set(sides), (kept, sides)
