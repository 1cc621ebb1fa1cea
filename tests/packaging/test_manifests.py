"""The plain install (``manifests/``): rendered from the chart, up to date, valid, runnable."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import yaml

from tests.packaging.packaging_tools import (
    KUBE_VERSIONS,
    KUBERNETES_VALIDATE,
    ROOT,
    documents,
    run,
    tool,
)
from tradefleet_operator import admission
from tradefleet_runtime.spec import Mode, parse_manifest

MANIFESTS = ROOT / "manifests"
RUNTIME_DOCKERFILE = ROOT / "docker" / "runtime.Dockerfile"
#: The install's cluster-scoped kinds (the admission policy keeps the mode label honest).
CLUSTER_SCOPED = (
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


def render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_manifests", ROOT / "tools" / "render_manifests.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifests_are_not_stale() -> None:
    helm = tool("helm")
    result = run(
        [sys.executable, "tools/render_manifests.py", "--check", "--helm", str(helm)],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_manifest_is_valid_kubernetes() -> None:
    text = (MANIFESTS / "tradefleet.yaml").read_text()
    for version in KUBE_VERSIONS:
        result = run([*KUBERNETES_VALIDATE, "--strict", "-k", version, "-"], stdin=text)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        # Default values render only built-in kinds: nothing may go unvalidated.
        assert "Couldn't find schema" not in output, output
        assert output.count("passed") == len(documents(text)), output


def test_install_manifest_is_namespaced_and_helm_free() -> None:
    docs = documents((MANIFESTS / "tradefleet.yaml").read_text())
    assert docs[0]["kind"] == "Namespace"
    assert docs[0]["metadata"]["name"] == "tradefleet-system"
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs[1:]:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"]["namespace"] == "tradefleet-system", doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubectl"
        assert "helm.sh/hook" not in (doc["metadata"].get("annotations") or {})
        assert doc["kind"] != "CustomResourceDefinition"  # that is manifests/crds/
    assert (MANIFESTS / "crds" / "tradingbots.tradefleet.io.yaml").is_file()


def _image_data_dir() -> str:
    """Where the runtime image keeps the bundled data (its COPY of data/*.csv)."""
    match = re.search(r"^COPY data/\*\.csv .* (\S+)/$", RUNTIME_DOCKERFILE.read_text(), re.M)
    assert match, "docker/runtime.Dockerfile no longer copies data/*.csv"
    return match.group(1)


def test_examples_run_in_a_cluster() -> None:
    render = render_module()
    assert _image_data_dir() == render.IMAGE_DATA_DIR
    sources = sorted((ROOT / "examples" / "bots").glob("*.yaml"))
    examples = sorted((MANIFESTS / "examples").glob("*.yaml"))
    assert [p.name for p in examples] == [p.name for p in sources]
    for path in examples:
        document = yaml.safe_load(path.read_text())
        manifest = parse_manifest(document, str(path))
        assert manifest.spec.mode is Mode.PAPER
        params = document["spec"]["data"]["params"]
        paths = [params["path"]] if "path" in params else list(params["files"].values())
        for data_path in paths:
            # An absolute path inside the image, to a file the image gets from data/.
            assert data_path.startswith(render.IMAGE_DATA_DIR + "/"), data_path
            assert (ROOT / "data" / Path(data_path).name).is_file(), data_path
        assert document["spec"]["runtime"]["replaySpeed"] > 1
        # The operator's admission webhook accepts it (plugin names and params included).
        body = {**document, "metadata": {**document["metadata"], "namespace": "tradefleet-system"}}
        admission.admit(body, admission.default_registry())
