"""Two operator replicas with kopf peering (issue 19, scope 5): one is active, the other
stands by and reconciles nothing; when the active one dies the standby takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import kmock
import pytest

from tests.operator.e2e.conftest import NS, Cluster, bot_manifest


def _active(log: Path) -> bool:
    """What kopf's peering last decided for this replica (it starts frozen, until it knows)."""
    decisions = [
        line for line in log.read_text().splitlines()
        if "Resuming operations" in line or "Pausing operations" in line
    ]  # fmt: skip
    return bool(decisions) and "Resuming operations" in decisions[-1]


def _status(cluster: Cluster, name: str) -> dict[str, object]:
    return dict((cluster.bot(name) or {}).get("status") or {})


@pytest.fixture
def replicas(cluster: Cluster, tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[str]]]:
    emulator = cluster.emulator
    assert emulator is not None

    def declare() -> None:
        emulator.resources["kopf.dev/v1/kopfpeerings"] = kmock.ResourceInfo(
            kind="KopfPeering", singular="kopfpeering", namespaced=True,
            verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
        )  # fmt: skip

    cluster.call(declare)
    cluster.request(
        "POST",
        f"/apis/kopf.dev/v1/namespaces/{NS}/kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "tradefleet"}},
    )
    started: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, priority in (("first", 200), ("second", 100)):
            log = (tmp_path / f"{name}.log").open("w")
            started[name] = subprocess.Popen(
                [
                    sys.executable, "-m", "tradefleet_operator.main", "-n", NS,
                    "--peering", "tradefleet", "--priority", str(priority),
                    "--peering-lifetime", "3", "--status-interval", "1",
                    "--liveness", "", "--metrics-port", "0", "--log-format", "plain",
                ],
                stdout=log, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "POD_ID": name},
            )  # fmt: skip
        yield started
    finally:
        for process in started.values():
            if process.poll() is None:
                process.terminate()
                process.wait(20)


def test_two_replicas_one_active_and_the_standby_takes_over(
    cluster: Cluster, replicas: dict[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    cluster.wait(  # the replicas have seen each other: the lower priority stands by
        lambda: _active(first_log) and not _active(second_log),
        timeout=30,
        message="the first replica active, the second standing by",
    )
    standby_since = len(second_log.read_text())
    cluster.apply_bot(bot_manifest("peered"))
    cluster.wait(lambda: _status(cluster, "peered").get("configHash"), timeout=30)
    created = [e for e in cluster.events("peered") if e["reason"] == "Created"]
    assert len(created) == 1, created  # reconciled once, by one replica
    assert "Handler 'reconcile'" not in second_log.read_text()[standby_since:]  # it did nothing
    assert "Handler 'reconcile' succeeded" in first_log.read_text()

    replicas["first"].send_signal(signal.SIGKILL)  # the active replica dies without a word
    replicas["first"].wait(10)
    cluster.patch_bot("peered", {"spec": {"paused": True}})
    cluster.wait(
        lambda: _status(cluster, "peered").get("observedGeneration") == 2,
        timeout=30,
        message="the standby took over and handled the change",
    )
    assert _active(second_log)
