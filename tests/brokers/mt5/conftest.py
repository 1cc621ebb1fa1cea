"""Fixtures: an MT5 broker connected to a fresh emulated terminal (netting or hedging)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers.mt5 import harness as harness_module
from tests.brokers.mt5.harness import Mt5Harness


@pytest.fixture(params=["direct", "bridge"])
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test twice: the broker on the emulator, and through an in-process bridge. A test
    module opts in with ``pytestmark = pytest.mark.usefixtures("transport")``; every harness it
    builds then uses that transport."""
    saved = harness_module.TRANSPORT
    harness_module.TRANSPORT = request.param
    yield request.param
    harness_module.TRANSPORT = saved


@pytest.fixture
def netting(request: pytest.FixtureRequest) -> Iterator[Mt5Harness]:
    if "transport" in request.fixturenames:
        request.getfixturevalue("transport")  # the transport is set before the harness
    harness = Mt5Harness.netting().connect()
    yield harness
    harness.close()


@pytest.fixture
def hedging(request: pytest.FixtureRequest) -> Iterator[Mt5Harness]:
    if "transport" in request.fixturenames:
        request.getfixturevalue("transport")
    harness = Mt5Harness.hedging().connect()
    yield harness
    harness.close()
