"""``tradefleet fleet stop/resume``: three real runtimes, two of them selected by label."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.serve_process import ServeProcess, ema_bot_manifest
from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest
from tests.operator.e2e.test_runtime import token_secret
from tradefleet_runtime import cli

TEAMS = {"a-one": "a", "a-two": "a", "b-one": "b"}


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[dict[str, ServeProcess]]:
    started: dict[str, ServeProcess] = {}
    try:
        for name in TEAMS:
            folder = tmp_path / name
            folder.mkdir()
            started[name] = ServeProcess(folder, ema_bot_manifest(name), speed=3600).start()
        yield started
    finally:
        for serve in started.values():
            serve.kill()


def fleet(*argv: str) -> int:
    """``tradefleet fleet ARGV``, through the CLI's `tradefleet.cli` entry point."""
    return cli.main(["fleet", *argv])


def test_fleet_stop_halts_the_selected_bots_only(
    cluster: Cluster,
    operator: Operator,
    runtimes: dict[str, ServeProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, team in TEAMS.items():
        cluster.create(token_secret(name))
        address = f"127.0.0.1:{runtimes[name].grpc_port}"
        cluster.apply_bot(bot_manifest(name, address=address, labels={"team": team}))
    for name in TEAMS:
        cluster.wait(
            lambda: ((cluster.bot(name) or {}).get("status") or {}).get("phase") == "Running",  # noqa: B023
            message=f"{name} running",
        )

    started = time.monotonic()
    assert fleet("stop", "--selector", "team=a", "--reason", "desk closed", "-n", NS) == 0
    for name in ("a-one", "a-two"):
        halted = runtimes[name].wait_for(lambda s: s.halted, timeout=10, every=0.05)
        assert halted.halt_reason == "desk closed"
    elapsed = time.monotonic() - started
    assert capsys.readouterr().out.count("(halted directly)") == 2  # reachable: called at once
    print(f"fleet stop: both runtimes halted {elapsed:.2f}s after the command started")
    assert elapsed < 5, f"the fleet took {elapsed:.1f}s to halt"
    bot = cluster.bot("a-one")
    assert bot is not None and bot["spec"]["emergencyStop"] == {
        "reason": "desk closed",
        "flatten": False,
    }

    # The third bot keeps trading: not halted, and its bars keep coming.
    other = runtimes["b-one"]
    before = other.wait_for(lambda s: not s.halted).bars
    after = other.wait_for(lambda s: s.bars > before and not s.halted, timeout=10)
    assert not after.halted
    assert (cluster.bot("b-one") or {})["spec"].get("emergencyStop") is None

    assert fleet("resume", "--selector", "team=a", "-n", NS) == 0
    for name in ("a-one", "a-two"):
        runtimes[name].wait_for(lambda s: not s.halted, timeout=10)

    # Without the direct calls the operator alone turns the patched specs into halts.
    assert (
        fleet("stop", "--selector", "team=a", "--reason", "via operator", "-n", NS, "--no-direct")
        == 0
    )
    assert "(halted directly)" not in capsys.readouterr().out
    for name in ("a-one", "a-two"):
        halted = runtimes[name].wait_for(lambda s: s.halted, timeout=15, every=0.05)
        assert halted.halt_reason == "via operator"
    assert fleet("resume", "--selector", "team=a", "-n", NS) == 0
    assert fleet("stop", "--selector", "team=nobody", "--reason", "x", "-n", NS) == 1
