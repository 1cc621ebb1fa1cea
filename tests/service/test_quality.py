"""Execution-quality capability indices (Cp, Cpk) against the spec's limits."""

from __future__ import annotations

import math

import pytest

from tradefleet_runtime.process_capability import capability_indices as capability
from tradefleet_runtime.service.quality import RollingQuality
from tradefleet_runtime.spec.model import QualityLimit, QualitySpec


def test_two_sided_capability_matches_the_textbook_formulas() -> None:
    samples = [9.0, 10.0, 11.0, 10.0, 10.0]
    count, mean, sigma, cp, cpk = capability(samples, lower=7.0, upper=16.0)
    expected_sigma = math.sqrt(sum((x - 10.0) ** 2 for x in samples) / 4)
    assert (count, mean) == (5, 10.0)
    assert sigma == pytest.approx(expected_sigma)
    assert cp == pytest.approx(9.0 / (6 * expected_sigma))
    assert cpk == pytest.approx(min(16.0 - 10.0, 10.0 - 7.0) / (3 * expected_sigma))


def test_one_sided_limits_give_cpk_only() -> None:
    _, mean, sigma, cp, cpk = capability([1.0, 2.0, 3.0], lower=None, upper=5.0)
    assert cp is None
    assert cpk == pytest.approx((5.0 - mean) / (3 * sigma))


def test_no_limits_or_no_spread_give_no_indices() -> None:
    assert capability([1.0, 2.0], None, None)[3:] == (None, None)
    assert capability([2.0, 2.0, 2.0], 0.0, 5.0)[3:] == (None, None)
    assert capability([], 0.0, 1.0) == (0, 0.0, 0.0, None, None)


def test_rolling_window_forgets_old_samples_and_waits_for_enough() -> None:
    spec = QualitySpec(window=5, min_samples=3, slippage_bps=QualityLimit(max=5.0))
    quality = RollingQuality(spec)
    quality.add("slippage_bps", 100.0)
    for value in (1.0, 2.0):
        quality.add("slippage_bps", value)
    early = {f.name: f for f in quality.figures()}["slippage_bps"]
    assert early.cpk is not None  # 3 samples: enough
    for value in (1.0, 2.0, 1.0, 2.0, 1.0):
        quality.add("slippage_bps", value)
    figure = {f.name: f for f in quality.figures()}["slippage_bps"]
    assert figure.samples == 5 and figure.mean == pytest.approx(1.4)  # the 100 bp fell out
    assert figure.cpk is not None and figure.cpk > early.cpk
    quality.add("slippage_bps", float("nan"))  # ignored, never poisons the window
    assert {f.name: f for f in quality.figures()}["slippage_bps"].samples == 5
