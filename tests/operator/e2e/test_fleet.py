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
    out = capsys.readouterr().out
    # Reachable runtimes: the direct call answered before the spec changed, so it halted them.
    assert out.count(": halted directly") == 2, out
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
    out = capsys.readouterr().out
    assert "halted directly" not in out and out.count("the operator halts it") == 2, out
    for name in ("a-one", "a-two"):
        halted = runtimes[name].wait_for(lambda s: s.halted, timeout=15, every=0.05)
        assert halted.halt_reason == "via operator"
    assert fleet("resume", "--selector", "team=a", "-n", NS) == 0
    assert fleet("stop", "--selector", "team=nobody", "--reason", "x", "-n", NS) == 1


def test_fleet_stop_imports_only_what_the_first_emergency_stop_needs() -> None:
    """Fleet stop took 3.5 s, a second of it importing kopf and friends before sending
    anything (issue 19, item 9): the command's module loads none of them."""
    import subprocess
    import sys

    code = (
        "import sys, tradefleet_operator.fleet as f\n"
        "f._Direct('r', False, 1.0)\n"  # what it imports while the bots are listed
        "heavy = {'kopf', 'aiohttp', 'pydantic', 'numpy', 'tradefleet_runtime.spec',\n"
        "         'google.protobuf'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out


def test_fleet_constants_match_the_operators_names() -> None:
    from tradefleet_operator import fleet, names

    assert (fleet.API_VERSION, fleet.PLURAL) == (names.API_VERSION, names.PLURAL)


def test_the_hand_written_emergency_stop_request_matches_the_generated_one() -> None:
    from tradefleet_operator import fleet
    from tradefleet_runtime.api.v1 import runtime_pb2 as pb

    for reason, flatten in (("desk closed", False), ("news ünïcode", True), ("", True)):
        raw = fleet.emergency_stop_request(reason, flatten, fleet.ACTOR)
        parsed = pb.EmergencyStopRequest.FromString(raw)
        assert (parsed.reason, parsed.flatten, parsed.actor) == (reason, flatten, fleet.ACTOR)
        expected = pb.EmergencyStopRequest(reason=reason, flatten=flatten, actor=fleet.ACTOR)
        assert raw == expected.SerializeToString()
    method = pb.DESCRIPTOR.services_by_name["RuntimeService"].methods_by_name["EmergencyStop"]
    assert f"/{method.containing_service.full_name}/EmergencyStop" == fleet.EMERGENCY_STOP_METHOD
