"""The objects a ``TradingBot`` is reconciled into, as pure functions (no I/O, no clock).

Given the TradingBot (the mapping kopf passes as ``body``: ``metadata`` and ``spec``) and the
``OperatorSettings``, each function returns one desired object as a plain dict:

- ``<name>-config``     ConfigMap with ``bot.yaml`` (the runtime's manifest)
- ``<name>-api-token``  Secret with ``control.token`` and ``read.token`` (made once, never rotated
  by a reconcile: the caller generates the tokens, or reads them back with ``tokens_from_secret``)
- ``<name>-journal``    PersistentVolumeClaim for the journal (not with ``journal.ephemeral``)
- ``<name>``            Deployment, one replica, ``Recreate`` (two pods of one bot must never
  trade at the same time), rolled by the ``tradefleet.io/config-hash`` pod annotation
- ``<name>``            headless Service (no cluster IP spent per bot), publishing unready pods

No object carries an owner reference: the caller adopts them (``kopf.adopt``). ``needs_update``
gives the JSON merge patch (RFC 7386, ``application/merge-patch+json``) that brings an object
read from the API server to the desired one, or None, so that an unchanged bot costs no write.

Runtime address: ``<name>.<namespace>.svc:<grpc port>``, unless the TradingBot carries the
annotation ``tradefleet.io/runtime-address: host:port`` (for an operator run outside the
cluster, e.g. against ``kubectl port-forward svc/<name> 50051``).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from tradefleet_operator.settings import (
    APP_NAME,
    AUTH_DIR,
    BOT_LABEL,
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIG_HASH_ANNOTATION,
    CREDENTIALS_DIR,
    JOURNAL_DIR,
    JOURNAL_FILE,
    MANAGED_BY,
    RUNTIME_ADDRESS_ANNOTATION,
    WEBHOOK_DIR,
    OperatorSettings,
)
from tradefleet_runtime.service.auth import CONTROL_TOKEN_FILE, READ_TOKEN_FILE
from tradefleet_runtime.spec import API_VERSION, KIND, BotManifest, parse_manifest
from tradefleet_runtime.spec.checks import config_hash as runner_config_hash

#: Spec fields applied to the running bot over gRPC: changing them must not restart the pod.
LIVE_FIELDS = ("paused", "emergencyStop")

Body = Mapping[str, Any]


@dataclass(frozen=True)
class ApiTokens:
    """The runtime's two bearer tokens: ``control`` (every RPC) and ``read`` (read-only RPCs)."""

    control: str
    read: str

    def __repr__(self) -> str:  # never print a token
        return "ApiTokens(control=***, read=***)"

    @classmethod
    def generate(cls) -> ApiTokens:
        """Two fresh random tokens (the caller does this once per bot)."""
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32))


# --- names -----------------------------------------------------------------------------------


def bot_name(body: Body) -> str:
    return str(body["metadata"]["name"])


def bot_namespace(body: Body) -> str:
    return str(body["metadata"].get("namespace") or "default")


def config_map_name(name: str) -> str:
    return f"{name}-config"


def api_token_secret_name(name: str) -> str:
    return f"{name}-api-token"


def webhook_keys_secret_name(name: str) -> str:
    return f"{name}-webhook-keys"


def journal_pvc_name(name: str) -> str:
    return f"{name}-journal"


def labels(body: Body, settings: OperatorSettings | None = None) -> dict[str, str]:
    """Labels on every object of one bot (the settings' extra labels first, ours win)."""
    name = bot_name(body)
    result = dict(settings.labels) if settings is not None else {}
    result.update(
        {
            "app.kubernetes.io/name": APP_NAME,
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            BOT_LABEL: name,
        }
    )
    return result


def selector(body: Body) -> dict[str, str]:
    """The pod selector of a bot's Deployment and Service (stable: never change it)."""
    return {BOT_LABEL: bot_name(body)}


def _metadata(body: Body, name: str, settings: OperatorSettings | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": bot_namespace(body), "labels": labels(body, settings)}


# --- the runtime's manifest and its hash -----------------------------------------------------


def _manifest(body: Body) -> BotManifest:
    """The TradingBot as the runtime's model (raises ``SpecError`` on an invalid spec)."""
    metadata = body["metadata"]
    document = {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "kind": body.get("kind", KIND),
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata.get("namespace") or "default",
            "labels": dict(metadata.get("labels") or {}),
        },
        "spec": plain(body.get("spec") or {}),
    }
    return parse_manifest(document, f"TradingBot {bot_namespace(body)}/{bot_name(body)}")


def bot_config(body: Body) -> dict[str, Any]:
    """The manifest the runtime pod reads (``bot.yaml``): defaults filled in, no status.

    Raises ``tradefleet_runtime.errors.SpecError`` if the spec is invalid (admission should
    have refused it).
    """
    manifest = _manifest(body)
    spec = manifest.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": manifest.metadata.name,
            "namespace": manifest.metadata.namespace,
            "labels": dict(manifest.metadata.labels),
        },
        "spec": spec,
    }


def config_hash(body: Body) -> str:
    """Hash of what the pod runs: the spec without ``paused``/``emergencyStop`` (applied live).

    ``body`` is the TradingBot or its ``bot_config``. This is the runtime's own
    ``tradefleet_runtime.spec.checks.config_hash`` of the manifest with those two fields at their
    defaults, so a runtime that is neither paused nor halted reports the same hash.
    """
    manifest = _manifest(body)
    neutral = manifest.spec.model_copy(update={"paused": False, "emergency_stop": None})
    return runner_config_hash(manifest.model_copy(update={"spec": neutral}))


def render_config(config: Mapping[str, Any]) -> str:
    """``bot.yaml`` text: stable key order, so an unchanged config renders byte-identical."""
    # libyaml's dumper writes the same text about four times faster (1,000 bots at startup).
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(plain(config), Dumper=dumper, sort_keys=True, default_flow_style=False)


# --- objects ---------------------------------------------------------------------------------


def configmap(
    body: Body, settings: OperatorSettings, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``<name>-config`` with ``bot.yaml``."""
    config = bot_config(body) if config is None else config
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(body, config_map_name(bot_name(body)), settings),
        "data": {CONFIG_FILE: render_config(config)},
    }


def api_token_secret(
    body: Body, tokens: ApiTokens, settings: OperatorSettings | None = None
) -> dict[str, Any]:
    """``<name>-api-token`` with ``control.token`` and ``read.token`` (base64 ``data``, as the
    API server returns it, so that ``needs_update`` compares like with like)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(body, api_token_secret_name(bot_name(body)), settings),
        "type": "Opaque",
        "data": {
            CONTROL_TOKEN_FILE: _b64(tokens.control),
            READ_TOKEN_FILE: _b64(tokens.read),
        },
    }


def tokens_from_secret(secret: Mapping[str, Any] | None) -> ApiTokens | None:
    """The tokens in an existing ``<name>-api-token`` Secret, or None if absent or incomplete."""
    if not secret:
        return None
    data = secret.get("data") or {}
    try:
        control = base64.b64decode(data[CONTROL_TOKEN_FILE], validate=True).decode()
        read = base64.b64decode(data[READ_TOKEN_FILE], validate=True).decode()
    except (KeyError, ValueError, TypeError):
        return None
    if not control or not read:
        return None
    return ApiTokens(control, read)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _spec(body: Body) -> Mapping[str, Any]:
    return body.get("spec") or {}


def _runtime(body: Body) -> Mapping[str, Any]:
    return _spec(body).get("runtime") or {}


def _journal(body: Body) -> Mapping[str, Any]:
    return _runtime(body).get("journal") or {}


def is_ephemeral(body: Body) -> bool:
    return bool(_journal(body).get("ephemeral", False))


def journal_pvc(body: Body, settings: OperatorSettings | None = None) -> dict[str, Any] | None:
    """``<name>-journal`` (ReadWriteOnce), or None when the journal is ephemeral."""
    if is_ephemeral(body):
        return None
    journal = _journal(body)
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(journal.get("size") or "1Gi")}},
    }
    if journal.get("storageClassName"):
        spec["storageClassName"] = str(journal["storageClassName"])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(body, journal_pvc_name(bot_name(body)), settings),
        "spec": spec,
    }


def service(body: Body, settings: OperatorSettings) -> dict[str, Any]:
    """Headless Service ``<name>``: DNS ``<name>.<namespace>.svc`` → the bot's pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(body, bot_name(body), settings),
        "spec": {
            "clusterIP": "None",
            "selector": selector(body),
            # The operator must reach a runtime that is not ready, to ask it why.
            "publishNotReadyAddresses": True,
            "ports": [
                {
                    "name": "grpc",
                    "port": settings.grpc_port,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                },
                {
                    "name": "http",
                    "port": settings.http_port,
                    "targetPort": "http",
                    "protocol": "TCP",
                },
            ],
        },
    }


def runtime_command(body: Body, settings: OperatorSettings) -> list[str]:
    """The runtime container's command line."""
    speed = float(_runtime(body).get("replaySpeed", 1.0))
    command = [
        *settings.runtime_command,
        "serve",
        f"{CONFIG_DIR}/{CONFIG_FILE}",
        "--grpc",
        f"0.0.0.0:{settings.grpc_port}",
        "--http",
        f"0.0.0.0:{settings.http_port}",
        "--auth-dir",
        AUTH_DIR,
        "--journal",
        f"{JOURNAL_DIR}/{JOURNAL_FILE}",
        "--speed",
        format(speed, "g"),
    ]
    if _runtime(body).get("webhook"):
        command += ["--webhook-keys", WEBHOOK_DIR]
    return command


def _credentials_secret(body: Body) -> str | None:
    broker = _spec(body).get("broker") or {}
    ref = broker.get("credentialsSecret") or {}
    name = ref.get("name")
    return str(name) if name else None


def deployment(body: Body, settings: OperatorSettings, config_hash: str) -> dict[str, Any]:
    """The bot's Deployment: one non-root, read-only pod running ``tradefleet serve``."""
    name = bot_name(body)
    runtime = _runtime(body)
    secret_mode = 0o440  # owner root, group fsGroup: readable by the runtime user only
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": config_map_name(name)}},
        {
            "name": "auth",
            "secret": {"secretName": api_token_secret_name(name), "defaultMode": secret_mode},
        },
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
    ]
    credentials = _credentials_secret(body)
    if credentials:
        volumes.append(
            {
                "name": "credentials",
                "secret": {"secretName": credentials, "defaultMode": secret_mode},
            }
        )
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
    if runtime.get("webhook"):
        volumes.append(
            {
                "name": "webhook-keys",
                "secret": {
                    "secretName": webhook_keys_secret_name(name),
                    "defaultMode": secret_mode,
                },
            }
        )
        mounts.append({"name": "webhook-keys", "mountPath": WEBHOOK_DIR, "readOnly": True})
    if is_ephemeral(body):
        volumes.append({"name": "journal", "emptyDir": {}})
    else:
        volumes.append(
            {"name": "journal", "persistentVolumeClaim": {"claimName": journal_pvc_name(name)}}
        )
    mounts.append({"name": "journal", "mountPath": JOURNAL_DIR})
    volumes.append({"name": "tmp", "emptyDir": {}})
    mounts.append({"name": "tmp", "mountPath": "/tmp"})

    env: list[dict[str, Any]] = [
        {"name": "TRADEFLEET_BOT", "value": name},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if credentials:
        env.append({"name": "TRADEFLEET_CREDENTIALS_DIR", "value": CREDENTIALS_DIR})

    resources = plain(runtime.get("resources") or _DEFAULT_RESOURCES)
    container: dict[str, Any] = {
        "name": "runtime",
        "image": runtime.get("image") or settings.runtime_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": runtime_command(body, settings),
        "ports": [
            {"name": "grpc", "containerPort": settings.grpc_port, "protocol": "TCP"},
            {"name": "http", "containerPort": settings.http_port, "protocol": "TCP"},
        ],
        "env": env,
        "resources": resources,
        "volumeMounts": mounts,
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 6,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.fs_group,
            "fsGroup": settings.fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if settings.service_account_name:
        pod_spec["serviceAccountName"] = settings.service_account_name
    pod_labels = labels(body, settings)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(body, name, settings),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(body)},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {CONFIG_HASH_ANNOTATION: config_hash},
                },
                "spec": pod_spec,
            },
        },
    }


_DEFAULT_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}


def desired_objects(
    body: Body, settings: OperatorSettings, config_hash: str, tokens: ApiTokens
) -> list[dict[str, Any]]:
    """Every object of one bot, in creation order (the pod's dependencies first).

    Each has ``metadata.namespace`` and the bot's labels, and no owner reference (adopt them).
    The api-token Secret is meant to be created once: on a later reconcile pass the tokens read
    back with ``tokens_from_secret``, so that ``needs_update`` finds nothing to change.
    """
    objects: list[dict[str, Any]] = [
        configmap(body, settings),
        api_token_secret(body, tokens, settings),
    ]
    pvc = journal_pvc(body, settings)
    if pvc is not None:
        objects.append(pvc)
    objects.append(service(body, settings))
    objects.append(deployment(body, settings, config_hash))
    return objects


def runtime_address(body: Body, settings: OperatorSettings) -> str:
    """``host:port`` of the bot's gRPC API (annotation ``tradefleet.io/runtime-address`` wins)."""
    annotations = body["metadata"].get("annotations") or {}
    override = str(annotations.get(RUNTIME_ADDRESS_ANNOTATION) or "").strip()
    if override:
        return override
    return f"{bot_name(body)}.{bot_namespace(body)}.svc:{settings.grpc_port}"


# --- comparing with what the API server has --------------------------------------------------

#: Top-level fields of an object that the operator does not own.
_NOT_OWNED = frozenset({"apiVersion", "kind", "metadata", "status"})


def needs_update(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch bringing ``actual`` to ``desired``, or None when nothing differs.

    Owned: the labels and annotations ``desired`` sets (others' keys are left alone) and every
    other top-level field of ``desired`` (``spec``, ``data``, ``type``, …). Fields the API server
    adds (defaults, ``status``, ``managedFields``, ``resourceVersion``…) are not differences:
    ``desired`` must be contained in ``actual``. Lists compare element by element with equal
    lengths (so a removed volume is a difference) and are replaced whole in the patch.
    Resource quantities compare by value (``0.5`` equals ``500m``).
    """
    patch: dict[str, Any] = {}
    metadata_patch: dict[str, Any] = {}
    actual_meta = actual.get("metadata") or {}
    for key in ("labels", "annotations"):
        wanted = (desired.get("metadata") or {}).get(key) or {}
        have = actual_meta.get(key) or {}
        changed = {k: v for k, v in wanted.items() if have.get(k) != v}
        if changed:
            metadata_patch[key] = changed
    if metadata_patch:
        patch["metadata"] = metadata_patch
    for key, value in desired.items():
        if key in _NOT_OWNED:
            continue
        diff = _diff(value, actual.get(key), (key,))
        if diff is not _SAME:
            patch[key] = diff
    return patch or None


class _Same:
    pass


_SAME: Any = _Same()


def _diff(desired: Any, actual: Any, path: tuple[str, ...]) -> Any:
    """``_SAME`` if ``desired`` is contained in ``actual``; otherwise the merge-patch value."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return plain(desired)
        out: dict[str, Any] = {}
        for key, value in desired.items():
            sub = _diff(value, actual.get(key), (*path, str(key)))
            if sub is not _SAME:
                out[key] = sub
        return out if out else _SAME
    if isinstance(desired, list):
        if (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(
                _diff(d, a, (*path, "[]")) is _SAME for d, a in zip(desired, actual, strict=True)
            )
        ):
            return _SAME
        return plain(desired)
    if _scalar_equal(desired, actual, path):
        return _SAME
    return desired


def _scalar_equal(desired: Any, actual: Any, path: tuple[str, ...]) -> bool:
    if desired == actual and type(desired) is type(actual):
        return True
    if isinstance(desired, bool) or isinstance(actual, bool):
        return False
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        return float(desired) == float(actual)
    if ("resources" in path or "storage" in path) and desired is not None and actual is not None:
        left, right = parse_quantity(desired), parse_quantity(actual)
        return left is not None and left == right
    return False


_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_SUFFIX = {
    None: Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity (``500m``, ``1Gi``, ``0.5``, ``1e3``) as a number."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    return number * _SUFFIX[match.group(2)]


def plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars (kopf's Body and views are Mappings)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
