"""A TradingBot as the operator reads it: Kubernetes metadata plus the typed spec (pure).

:meth:`TradingBot.parse` validates the spec with the runtime's own model once; every reader of
a spec field (object builders, the control plan) takes the result, so defaults live only in
``tradefleet_runtime.spec.model`` and no spec field is read as a raw camelCase key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tradefleet_operator.names import API_VERSION, KIND, LIVE_FIELDS
from tradefleet_operator.settings import OperatorSettings, runtime_address
from tradefleet_runtime.spec import BotManifest, BotSpec, parse_manifest
from tradefleet_runtime.spec.model import EmergencyStopSpec


def plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars (kopf's Body and views are Mappings)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class LiveSpec:
    """The spec fields applied to a running bot over gRPC (pause and the kill switch)."""

    paused: bool = False
    emergency_stop: EmergencyStopSpec | None = None

    @classmethod
    def of(cls, spec: BotSpec) -> LiveSpec:
        return cls(spec.paused, spec.emergency_stop)

    @classmethod
    def salvage(cls, raw_spec: Mapping[str, Any]) -> LiveSpec | None:
        """The live fields of a spec the model refuses as a whole, validated field by field
        with the model's own definitions (so a kill switch still works on a broken spec);
        None if they are invalid too."""
        values: dict[str, Any] = {}
        try:
            for name in LIVE_FIELDS:
                info = BotSpec.model_fields[name]
                raw = raw_spec.get(info.alias or name, info.get_default(call_default_factory=True))
                adapter: TypeAdapter[Any] = TypeAdapter(info.annotation)  # type: ignore[arg-type]
                values[name] = adapter.validate_python(plain(raw))
        except ValidationError:
            return None
        return cls(**values)


@dataclass(frozen=True, slots=True)
class TradingBot:
    """One TradingBot: who it is (metadata) and what it asks for (``manifest``, validated)."""

    name: str
    namespace: str
    uid: str
    generation: int | None
    manifest: BotManifest
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> BotSpec:
        return self.manifest.spec

    @property
    def live(self) -> LiveSpec:
        return LiveSpec.of(self.spec)

    @property
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "annotations": self.annotations}

    def runtime_address(self, settings: OperatorSettings) -> str:
        return runtime_address(self.metadata, settings)

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> TradingBot:
        """Validate a TradingBot (kopf's ``body``) with the runtime's model.

        Raises ``tradefleet_runtime.errors.SpecError`` (one error per field) on an invalid spec.
        Annotations are kept out of the manifest: they are not configuration (kopf keeps its
        own state there), and the runtime's ``bot.yaml`` must not change with them.
        """
        metadata = body["metadata"]
        name, namespace = str(metadata["name"]), str(metadata.get("namespace") or "default")
        document = {
            "apiVersion": body.get("apiVersion", API_VERSION),
            "kind": body.get("kind", KIND),
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(metadata.get("labels") or {}),
            },
            "spec": plain(body.get("spec") or {}),
        }
        manifest = parse_manifest(document, f"TradingBot {namespace}/{name}")
        generation = metadata.get("generation")
        return cls(
            name=name,
            namespace=namespace,
            uid=str(metadata.get("uid") or ""),
            generation=int(generation) if generation is not None else None,
            manifest=manifest,
            annotations=dict(metadata.get("annotations") or {}),
        )
