"""The contract suite runs every case on every broker setup (tests/brokers/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers.harness import SETUPS, Harness, harness_for


@pytest.fixture(params=SETUPS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with harness_for(request.param, tmp_path) as harness:
        yield harness
        if harness.venue:
            harness.assert_venue_matches()


def venue_only(harness: Harness, why: str) -> None:
    if not harness.venue:
        pytest.skip(f"paper: {why}")


def not_on(harness: Harness, applies: bool, why: str) -> None:
    """Skip a case whose rule the setup's venue does not have (a venue limitation, not a bug)."""
    if not applies:
        pytest.skip(f"{harness.name}: {why}")
