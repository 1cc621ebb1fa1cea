"""The admission webhook served for real (issue 19, scope 3): the operator process serves its
webhooks over HTTPS with a CA it made, registers them (kopf, managed), and refuses the
bad-manifest set with messages naming the field — asked exactly as the API server asks:
``AdmissionReview`` v1 for CREATE, UPDATE (with ``oldObject``) and dry-run, trusting only the
``caBundle`` of the registered ``ValidatingWebhookConfiguration`` (so the chain and the host
name are checked as the API server checks them).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator.e2e.conftest import NS, Cluster
from tests.operator.test_admission import BAD, expectation

ADMISSION = "/apis/admissionregistration.k8s.io/v1"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def webhook_operator(cluster: Cluster, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    port = _port()
    log = (tmp_path / "operator.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tradefleet_operator.main", "-n", NS, "--standalone",
            "--admission-port", str(port), "--admission-host", "localhost",
            "--liveness", "", "--metrics-port", "0", "--log-format", "plain",
        ],
        stdout=log, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k != "POD_IP"},
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _configuration(cluster: Cluster, kind: str) -> dict[str, Any]:
    found = cluster.request("GET", f"{ADMISSION}/{kind}")
    items = [item for item in (found or {}).get("items") or [] if item.get("webhooks")]
    return items[0] if items else {}


def _review(operation: str, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    old = (
        dict(obj, metadata={**obj["metadata"], "generation": 1}) if operation == "UPDATE" else None
    )
    resource = {"group": "tradefleet.io", "version": "v1alpha1", "resource": "tradingbots"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "tradefleet.io", "version": "v1alpha1", "kind": "TradingBot"},
            "resource": resource,
            "requestKind": {"group": "tradefleet.io", "version": "v1alpha1", "kind": "TradingBot"},
            "requestResource": resource,
            "name": obj["metadata"]["name"],
            "namespace": NS,
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }  # fmt: skip


def _ask(url: str, context: ssl.SSLContext, review: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(review).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    assert answer["response"]["uid"] == review["request"]["uid"]
    return answer["response"]


def test_plugin_typos_refused_at_apply_over_https_with_field_naming_messages(
    cluster: Cluster, webhook_operator: subprocess.Popen[str]
) -> None:
    validating = cluster.wait(
        lambda: _configuration(cluster, "validatingwebhookconfigurations"),
        timeout=30, message="the operator registered its validating webhooks",
    )  # fmt: skip
    # Registered one after the other (kopf's two configuration managers): waited for too.
    mutating = cluster.wait(
        lambda: _configuration(cluster, "mutatingwebhookconfigurations"),
        timeout=30, message="the operator registered its mutating webhook",
    )  # fmt: skip
    hooks = {hook["name"].split(".")[0]: hook for hook in validating["webhooks"]}
    policies = {name: hook["failurePolicy"] for name, hook in hooks.items()}
    # Live and not-yet-labelled bots fail closed; paper and backtest bots fail open.
    assert policies == {
        "validate-live": "Fail", "validate-unlabelled": "Fail",
        "validate-paper": "Ignore", "validate-backtest": "Ignore",
    }, policies  # fmt: skip
    assert [h["failurePolicy"] for h in mutating["webhooks"]] == ["Ignore"]

    # Trust only the registered caBundle, and check the name the API server would dial.
    bundles = {hook["clientConfig"]["caBundle"] for hook in validating["webhooks"]}
    assert len(bundles) == 1
    context = ssl.create_default_context(cadata=base64.b64decode(bundles.pop()).decode())
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    url = hooks["validate-unlabelled"]["clientConfig"]["url"]
    assert url.startswith("https://localhost:")
    with pytest.raises(urllib.error.URLError) as refused:  # trusting the system CAs only
        _ask(url, ssl.create_default_context(), _review("CREATE", {"metadata": {"name": "x"}}))
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)

    for path in BAD:
        field, message = expectation(path)
        obj = yaml.safe_load(path.read_text().split("\n", 1)[1])
        obj["metadata"]["namespace"] = NS
        mode = (obj.get("spec") or {}).get("mode")
        hook = hooks.get(f"validate-{mode}") or hooks["validate-unlabelled"]
        if mode in ("live", "paper", "backtest"):
            obj["metadata"].setdefault("labels", {})["tradefleet.io/mode"] = mode
        for operation, dry_run in (("CREATE", False), ("UPDATE", False), ("CREATE", True)):
            answer = _ask(
                hook["clientConfig"]["url"], context, _review(operation, obj, dry_run=dry_run)
            )
            assert answer["allowed"] is False, (path.name, operation, answer)
            text = answer["status"]["message"]
            assert field in text and message in text, (path.name, text)
            assert answer["status"]["code"] == 422

    # A good bot is admitted; the mutating webhook labels it with its mode.
    good = yaml.safe_load(
        (Path(__file__).parents[3] / "examples/bots/eurusd-paper.yaml").read_text()
    )
    good["metadata"]["namespace"] = NS
    answer = _ask(
        hooks["validate-unlabelled"]["clientConfig"]["url"], context, _review("CREATE", good)
    )
    assert answer["allowed"] is True, answer
    label_url = mutating["webhooks"][0]["clientConfig"]["url"]
    answer = _ask(label_url, context, _review("CREATE", good))
    patch = json.loads(base64.b64decode(answer["patch"]))
    assert any(op["value"] == "paper" or op.get("value", {}).get("tradefleet.io/mode") == "paper"
               for op in patch), patch  # fmt: skip
    # A label that lies about the mode is refused (it would make a live bot fail open).
    liar = dict(good, metadata={**good["metadata"], "labels": {"tradefleet.io/mode": "backtest"}})
    answer = _ask(
        hooks["validate-backtest"]["clientConfig"]["url"], context, _review("CREATE", liar)
    )
    assert answer["allowed"] is False and "spec.mode" in answer["status"]["message"]
