"""A bot's credentials Secret that does not exist, through the real operator (review W17).

Day two, following docs/live-crypto.md: a live bot's ``spec.broker.credentialsSecret`` is
edited to a new Secret's name before that Secret is made (or with a typo), or the old Secret is
deleted under the running bot. The operator rolled the Deployment at once (``ConfigChanged``,
Recreate: the running runtime stopped first) onto a Secret no pod can mount, said
``Reconciled=True, UpToDate``, and nothing else: a live bot holding positions became no bot.
Now it asks whether the Secret exists (its metadata only, never its data), rolls nothing onto a
missing one, says so naming the field and the Secret, and rolls once the Secret is made, with
no other edit. The Secret's values appear nowhere: not in events, status or logs, and the
operator never reads the Secret whole (``Emulator.secret_reads``).

A person's emergency stop (or resume) of a bot held back so reaches its runtime at once (review
R30c): kopf runs no newer edit while the held pass waits out its retry delay, and that delay
grew to 30 s; a running bot's held pass is now looked at every 2 s.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serve_process import ServeProcess, control, ema_bot_manifest
from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest
from tests.operator.e2e.test_runtime import token_secret
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

KEY = "QUtJQXcxN2tleTAxMjM0NQ=="  # base64 of a fake key; never to appear anywhere
SECRET = "dzE3c2VjcmV0dmFsdWU5ODc2NTQ="
#: Each value as stored (base64) and as the runtime would read it.
VALUES = (KEY, SECRET, base64.b64decode(KEY).decode(), base64.b64decode(SECRET).decode())


def live_bot(name: str, secret: str) -> dict[str, Any]:
    """A live ccxt bot (Binance spot) whose credentials are the Secret ``secret``."""
    bot = bot_manifest(name)
    bot["spec"].update(
        mode="live",
        liveConfirmation=name,
        broker={
            "name": "ccxt",
            "credentialsSecret": {"name": secret},
            "params": {"exchange": "binance", "market_type": "spot"},
        },
        market={"symbols": ["BTCUSDT"], "timeframe": "1h"},
        data={"name": "ccxt", "params": {"exchange": "binance"}},
        capital={"currency": "USDT", "initial": 1000},
    )
    return bot


def keys(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": {"apiKey": KEY, "secret": SECRET},
    }


def said(cluster: Cluster, bot: str, secret: str) -> list[str]:
    """Warning events and non-True conditions of ``bot`` that name ``secret`` and the field."""
    found = [
        str(event.get("message", ""))
        for event in cluster.events(bot)
        if event.get("type") == "Warning"
    ]
    status = (cluster.bot(bot) or {}).get("status") or {}
    found += [
        str(cond.get("message", ""))
        for cond in status.get("conditions") or []
        if cond.get("status") != "True"
    ]
    return [m for m in found if f"'{secret}'" in m and "spec.broker.credentialsSecret" in m]


def condition(cluster: Cluster, bot: str, kind: str) -> dict[str, Any] | None:
    status = (cluster.bot(bot) or {}).get("status") or {}
    for cond in status.get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return None


def warnings(cluster: Cluster, bot: str, reason: str) -> list[dict[str, Any]]:
    return [
        e for e in cluster.events(bot) if e.get("type") == "Warning" and e.get("reason") == reason
    ]


def settled(cluster: Cluster, name: str) -> None:
    # The operator looks at a held bot again at most 30 s apart (a bot never made backs off to
    # 30 s, as does a running one whose runtime did not take a control call, as under load): a
    # Secret created just after a look is rolled onto at the next, up to 30 s later.
    cluster.wait(
        lambda: (condition(cluster, name, "Reconciled") or {}).get("status") == "True",
        timeout=45,
        message=f"{name} reconciled",
    )


def credentials_volume(cluster: Cluster, name: str) -> str:
    deployment = cluster.get("apps/v1", "deployments", name)
    (volume,) = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "credentials"
    ]
    return str(volume["secret"]["secretName"])


def assert_no_secret_data(cluster: Cluster, bot: str, caplog: pytest.LogCaptureFixture) -> None:
    """The Secret's values are nowhere: events, status, logs; and the operator read each
    credentials Secret for its metadata only."""
    assert caplog.records, "the operator's log lines were not captured"
    seen = json.dumps(cluster.events(bot)) + json.dumps(cluster.bot(bot) or {}) + caplog.text
    for value in VALUES:
        assert value not in seen
    assert cluster.emulator is not None
    emulator = cluster.emulator
    reads = cluster.call(lambda: list(emulator.secret_reads))
    credentials = [(path, partial) for path, partial in reads if "-api-token" not in path]
    assert credentials, "the credentials Secret was never asked for"
    assert all(partial for _, partial in credentials), credentials


def test_the_spec_edited_to_a_secret_that_does_not_exist_is_said_and_not_rolled(
    cluster: Cluster, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every line the operator logs, kopf's own included
    cluster.create(keys("binance-keys"))
    cluster.apply_bot(live_bot("btc-live", "binance-keys"))
    settled(cluster, "btc-live")
    # Wrong order: the spec names the new Secret before anyone created it.
    cluster.patch_bot("btc-live", {"spec": {"broker": {"credentialsSecret": {"name": "keys-v2"}}}})
    cluster.wait(
        lambda: (cluster.bot("btc-live") or {}).get("status", {}).get("observedGeneration") == 2,
        message="the edit observed",
    )
    reconciled = condition(cluster, "btc-live", "Reconciled") or {}
    assert reconciled.get("status") == "False", reconciled
    assert reconciled.get("reason") == "CredentialsSecretMissing", reconciled
    assert (
        "its pod runs on as it was rolled out (credentials from Secret 'binance-keys')"
        in (reconciled["message"])
    )
    time.sleep(4)  # retries and status passes: the pod is never rolled meanwhile
    assert said(cluster, "btc-live", "keys-v2")
    assert credentials_volume(cluster, "btc-live") == "binance-keys"
    assert not [e for e in cluster.events("btc-live") if e.get("reason") == "ConfigChanged"]
    assert len(warnings(cluster, "btc-live", "CredentialsSecretMissing")) == 1  # not per retry
    # The Secret the running pod mounts exists: the status timer says so.
    assert (condition(cluster, "btc-live", "CredentialsSecretFound") or {}).get("status") == "True"

    # Made now: the bot is rolled onto it with no other edit.
    cluster.create(keys("keys-v2"))
    cluster.wait(
        lambda: credentials_volume(cluster, "btc-live") == "keys-v2",
        timeout=40,
        message="rolled onto keys-v2",
    )
    settled(cluster, "btc-live")
    assert [e for e in cluster.events("btc-live") if e.get("reason") == "ConfigChanged"]
    assert_no_secret_data(cluster, "btc-live", caplog)


def test_the_old_secret_deleted_under_a_running_bot_is_said(
    cluster: Cluster, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every line the operator logs, kopf's own included
    cluster.create(keys("binance-keys"))
    cluster.apply_bot(live_bot("btc-live", "binance-keys"))
    settled(cluster, "btc-live")
    cluster.wait(
        lambda: (
            (condition(cluster, "btc-live", "CredentialsSecretFound") or {}).get("status") == "True"
        ),
        message="CredentialsSecretFound=True",
    )
    deployments_before = [w for w in cluster.writes() if "/deployments" in w[1]]
    # Wrong order: the old Secret deleted first, the spec still naming it.
    cluster.request("DELETE", f"/api/v1/namespaces/{NS}/secrets/binance-keys")
    found = cluster.wait(
        lambda: (
            (condition(cluster, "btc-live", "CredentialsSecretFound") or {}).get("status")
            == "False"
        ),
        message="CredentialsSecretFound=False",
    )
    assert found
    missing = condition(cluster, "btc-live", "CredentialsSecretFound") or {}
    assert missing["reason"] == "CredentialsSecretMissing"
    assert "will not start" in missing["message"], missing
    time.sleep(3)  # a few status passes: one Warning, not one per tick
    assert said(cluster, "btc-live", "binance-keys")
    assert len(warnings(cluster, "btc-live", "CredentialsSecretMissing")) == 1
    # The running pod is left alone: no Deployment write.
    assert [w for w in cluster.writes() if "/deployments" in w[1]] == deployments_before

    cluster.create(keys("binance-keys"))
    cluster.wait(
        lambda: (
            (condition(cluster, "btc-live", "CredentialsSecretFound") or {}).get("status") == "True"
        ),
        message="found again",
    )
    assert [e for e in cluster.events("btc-live") if e.get("reason") == "CredentialsSecretFound"]
    assert_no_secret_data(cluster, "btc-live", caplog)


def test_a_bot_created_before_its_secret_gets_no_pod_until_the_secret_exists(
    cluster: Cluster, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every line the operator logs, kopf's own included
    cluster.apply_bot(live_bot("eth-live", "eth-keys"))
    cluster.wait(
        lambda: (
            (condition(cluster, "eth-live", "Reconciled") or {}).get("reason")
            == "CredentialsSecretMissing"
        ),
        message="Reconciled=False, CredentialsSecretMissing",
    )
    bot = cluster.bot("eth-live") or {}
    # Nothing failed: it waits for the Secret, and says so.
    assert bot["status"]["phase"] == "Pending", bot["status"]
    assert said(cluster, "eth-live", "eth-keys")
    # Its other objects are made; no Deployment whose pod could never start.
    assert cluster.get("v1", "configmaps", "eth-live-config") is not None
    assert cluster.get("v1", "secrets", "eth-live-api-token") is not None
    assert cluster.get("v1", "services", "eth-live") is not None
    assert cluster.get("apps/v1", "deployments", "eth-live") is None

    cluster.create(keys("eth-keys"))
    cluster.wait(
        lambda: cluster.get("apps/v1", "deployments", "eth-live") is not None,
        timeout=40,
        message="the Deployment made once the Secret exists",
    )
    assert credentials_volume(cluster, "eth-live") == "eth-keys"
    settled(cluster, "eth-live")
    assert_no_secret_data(cluster, "eth-live", caplog)


# --- a person's live controls while the change is held back (review R30c) ------------------------

HELD = "held-bot"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ServeProcess]:
    """A real ``tradefleet serve`` (paper) the operator reaches through the address annotation."""
    serve = ServeProcess(tmp_path, ema_bot_manifest(HELD), speed=3600).start()
    try:
        yield serve
    finally:
        serve.kill()


def held_retries(cluster: Cluster) -> int:
    """How many times the reconcile handler has failed on the ongoing change (kopf's progress
    record, an annotation): each held pass is one."""
    annotations = ((cluster.bot(HELD) or {}).get("metadata") or {}).get("annotations") or {}
    record = json.loads(annotations.get("tradefleet.io/reconcile") or "{}")
    return int(record.get("retries") or 0)


def just_retried(cluster: Cluster) -> int:
    """Wait for the next held pass and return as soon as it has failed: its retry delay has
    only just started (polled every 0.1 s)."""
    before = held_retries(cluster)
    return int(
        cluster.wait(
            lambda: held_retries(cluster) > before and held_retries(cluster),
            timeout=40,
            message="the next held pass",
        )
    )


def halted_within(runtime: ServeProcess, seconds: float, *, halted: bool) -> bool:
    """Whether the runtime reports ``halted`` within ``seconds``."""
    stub = runtime.stub()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stub.GetStatus(pb.GetStatusRequest(), metadata=control()).halted == halted:
            return True
        time.sleep(0.05)
    return False


def test_a_persons_stop_and_resume_of_a_held_bot_reach_its_runtime_at_once(
    cluster: Cluster, operator: Operator, runtime: ServeProcess
) -> None:
    cluster.create(token_secret(HELD))
    cluster.create(keys("keys"))
    bot = bot_manifest(HELD, address=f"127.0.0.1:{runtime.grpc_port}")
    bot["spec"]["broker"]["credentialsSecret"] = {"name": "keys"}
    cluster.apply_bot(bot)
    cluster.wait(
        lambda: ((cluster.bot(HELD) or {}).get("status") or {}).get("phase") == "Running",
        message="running",
    )
    # The rename done in the wrong order: the spec names a Secret not made yet.
    cluster.patch_bot(HELD, {"spec": {"broker": {"credentialsSecret": {"name": "keys-v2"}}}})
    cluster.wait(
        lambda: (
            (condition(cluster, HELD, "Reconciled") or {}).get("reason")
            == "CredentialsSecretMissing"
        ),
        message="held",
    )
    # The hold has lasted: 4 held passes (the backoff before had grown to 8 s and more, up to
    # 30 s); the edit lands just as a held pass has begun its wait.
    cluster.wait(lambda: held_retries(cluster) >= 4, timeout=60, message="a lasting hold")
    just_retried(cluster)
    cluster.patch_bot(HELD, {"spec": {"emergencyStop": {"reason": "fills look wrong"}}})
    assert halted_within(runtime, 3.0, halted=True), "the stop waited for the held pass's retry"

    # Lifted as promptly (a Resume: sent only from the newest spec, as ever).
    just_retried(cluster)
    cluster.patch_bot(HELD, {"spec": {"emergencyStop": None}})
    assert halted_within(runtime, 3.0, halted=False), "the resume waited for the retry"

    # Stopped again, then the Secret made: the held change was kept and rolls, never onto a
    # missing Secret, and the stop holds.
    cluster.patch_bot(HELD, {"spec": {"emergencyStop": {"reason": "before the roll"}}})
    assert halted_within(runtime, 3.0, halted=True)
    assert credentials_volume(cluster, HELD) == "keys"
    cluster.create(keys("keys-v2"))
    cluster.wait(
        lambda: credentials_volume(cluster, HELD) == "keys-v2",
        timeout=10,
        message="rolled onto keys-v2",
    )
    settled(cluster, HELD)
    assert halted_within(runtime, 1.0, halted=True)
