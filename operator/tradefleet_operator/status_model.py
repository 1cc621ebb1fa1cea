"""``TradingBot.status`` as pydantic models: every field the operator writes, and nothing else.

The CRD's status schema is generated from :class:`BotStatus` (``crd.py``), so a field the
operator writes cannot be missing from the schema (the API server would prune it silently).
Field names are camelCase on the wire and snake_case here, as in the spec model.

Reading a stored status is lenient (:meth:`BotStatus.read`): a field that does not validate is
dropped, as if it had never been written, rather than stopping status updates for the bot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)
from pydantic.alias_generators import to_camel

from tradefleet_operator.names import Control, Phase

_DATE_TIME: dict[str, Any] = {"format": "date-time"}


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    def wire(self) -> dict[str, Any]:
        """The JSON form written to the API server (camelCase keys)."""
        return self.model_dump(mode="json", by_alias=True)


class Condition(_Model):
    """One aspect of the bot's state (metav1.Condition)."""

    type: str = Field(max_length=316, description="Condition type, e.g. Ready, Reconciled.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="",
        max_length=1024,
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(
        default="", max_length=32768, description="Human-readable details of the last transition."
    )
    last_transition_time: str | None = Field(
        default=None, description="When the status last changed.", json_schema_extra=_DATE_TIME
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the condition was set for.",
        json_schema_extra={"format": "int64"},
    )


class RiskLock(_Model):
    """A risk plugin that refuses new entries."""

    plugin: str = Field(description="Risk plugin name.")
    reason: str = Field(default="", description="Why it refuses.")


class ControlStatus(_Model):
    """What the operator last brought the runtime to (pause, halt, run)."""

    applied: Control | None = Field(
        default=None, description="Running, Paused or Halted, as the spec asked."
    )
    generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation whose spec asked for it (control only moves "
        "forward: an older spec never undoes it).",
        json_schema_extra={"format": "int64"},
    )
    flattened: bool | None = Field(
        default=None,
        description="The halt applied included spec.emergencyStop.flatten: a flatten asked "
        "after the halt landed is sent once more (the runtime flattens a halted bot).",
    )

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Unset (not a halt): left out, not written as null. A null in the merge patch deletes
        # the key, so the stored status would never equal the written one and every status
        # tick would write again.
        data: dict[str, Any] = handler(self)
        if data.get("flattened") is None:
            data.pop("flattened", None)
        return data


class RiskLockReset(_Model):
    """The last ``tradefleet.io/reset-risk-lock`` annotation acted on, so it is done once."""

    request: str = Field(description="The annotation's value: '<plugin>: <reason>'.")
    result: str = Field(default="", description="done, malformed, or the runtime's refusal.")


class BotStatus(_Model):
    """The bot's observed state, reported by the operator from its runtime."""

    phase: Phase | None = Field(
        default=None, description="Pending, Running, Paused, Halted, Stopped or Failed."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=32,
        description="Current conditions of the bot (Ready, Reconciled, …).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation the operator last reconciled.",
        json_schema_extra={"format": "int64"},
    )
    symbols: str | None = Field(
        default=None,
        description="The spec's symbols, comma-separated (the Symbols column of kubectl get).",
    )
    config_hash: str | None = Field(
        default=None,
        description="Hash of the configuration the running pod was started with.",
    )
    runtime_config_hash: str | None = Field(
        default=None, description="Hash of the configuration the runtime reports it runs."
    )
    runtime_reported_at: str | None = Field(
        default=None,
        description="When the runtime was asked for the runtimeConfigHash it reported: set when "
        "that hash changes, and, while a spec change is not applied (observedGeneration behind "
        "metadata.generation), at the first read after the Reconciled condition last changed.",
        json_schema_extra=_DATE_TIME,
    )
    credentials_secret_in_use: str | None = Field(
        default=None,
        description="While a roll onto spec.broker.credentialsSecret is held (that Secret does "
        "not exist): the Secret the running pod mounts, whose account it still trades on (a "
        "name only). Cleared once the spec is rolled out.",
    )
    equity: float | None = Field(
        default=None, description="Cash plus open positions at their marks, in the currency."
    )
    balance: float | None = Field(default=None, description="Cash balance, in the currency.")
    currency: str | None = Field(default=None, description="The account currency.")
    pnl_today: float | None = Field(
        default=None, description="Profit and loss since 00:00 UTC, in the account currency."
    )
    pnl_total: float | None = Field(
        default=None, description="Profit and loss since the first start, in the currency."
    )
    drawdown_pct: float | None = Field(
        default=None, description="Current drawdown from the equity peak, in percent."
    )
    open_positions: int | None = Field(default=None, ge=0, description="Open positions.")
    open_orders: int | None = Field(default=None, ge=0, description="Working orders.")
    last_bar_time: str | None = Field(
        default=None,
        description="Close time of the last bar the bot processed.",
        json_schema_extra=_DATE_TIME,
    )
    halted: bool | None = Field(
        default=None, description="True while the bot is halted (kill switch or a risk plugin)."
    )
    halt_reason: str | None = Field(default=None, description="Why the bot is halted.")
    paused: bool | None = Field(default=None, description="True while the bot is paused.")
    pause_reason: str | None = Field(default=None, description="Why the bot is paused.")
    risk_locks: list[RiskLock] | None = Field(
        default=None, description="Risk plugins currently refusing new entries."
    )
    risk_tier: int | None = Field(
        default=None,
        ge=0,
        le=3,
        description="Highest circuit-breaker tier in force: 0 normal, 1 warn (sizes cut), "
        "2 new entries halted and exposure cut, 3 flattened and locked until a person resets it.",
    )
    control: ControlStatus | None = Field(
        default=None, description="What the operator last brought the runtime to."
    )
    risk_lock_reset: RiskLockReset | None = Field(
        default=None, description="The last risk-lock reset request acted on."
    )

    @classmethod
    def read(cls, stored: Mapping[str, Any] | None) -> BotStatus:
        """The status as stored; top-level fields that do not validate are left out."""
        data = {str(key): value for key, value in (stored or {}).items()}
        for _ in range(len(data) + 1):
            try:
                return cls.model_validate(data)
            except ValidationError as error:
                bad = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
                if not bad & set(data):
                    break
                data = {key: value for key, value in data.items() if key not in bad}
        return cls()


def status_changes(current: Mapping[str, Any], new: BotStatus) -> dict[str, Any]:
    """The top-level status keys whose value differs from the stored ``current`` (the merge
    patch to send; empty when nothing changed, so an unchanged bot costs no write)."""
    return {key: value for key, value in new.wire().items() if current.get(key) != value}


#: A write of status keys onto the freshest stored object (a kopf patch function).
StatusWrite = Callable[[MutableMapping[str, Any]], None]


def guarded_status_write(current: Mapping[str, Any], new: BotStatus) -> StatusWrite | None:
    """The status keys that differ from ``current`` (what the writer read), as a write that
    sets each only where the stored object still holds what the writer read; None: no change.

    The status timer reads the bot, asks its runtime, and writes later; the change handler may
    write in between. A merge patch replaces the whole ``conditions`` list, so the timer's list
    (built on its earlier read) put back a ``Reconciled=False`` the handler had just made True,
    and nothing wrote it again: a bot rolled out showed ``CredentialsSecretMissing`` for good.
    Applied to the freshest object known (kopf sends the result as a JSON patch that tests
    ``metadata.resourceVersion``, so nothing lands on an object changed since), each key, and
    each condition by its type, is written only if unchanged since the read: a newer value from
    another writer is kept, and the timer decides again on its next tick."""
    changes = status_changes(current, new)
    if not changes:
        return None
    seen = {key: current.get(key) for key in changes}

    def write(body: MutableMapping[str, Any]) -> None:
        stored = body.get("status")
        status: MutableMapping[str, Any] = stored if isinstance(stored, MutableMapping) else {}
        for key, value in changes.items():
            if key == "conditions":
                status[key] = _conditions_written(status.get(key), seen[key], value)
            elif status.get(key) == seen[key]:
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = value
        body["status"] = status

    return write


#: The condition types only the change handler decides: its write sets them whatever the stored
#: list holds. The others (the runtime's view, the account sharing, the credentials Secret) the
#: status timer writes too: the handler sets them only where they still hold what it read.
HANDLER_CONDITIONS = frozenset({"Reconciled"})


def conditions_write(current: Mapping[str, Any], new: BotStatus) -> StatusWrite | None:
    """The change handler's write of the conditions it changed from ``current`` (what it read)
    to ``new``, by type, onto the freshest stored list; None: none changed.

    A merge patch replaces the whole ``conditions`` list: the handler's list, built on its read,
    put back what the status timer had written since to the conditions the handler never
    touched — a ``RiskLocked=True`` the runtime had just reported went back to False, and
    stayed so while the runtime was unreachable (the timer writes nothing new then). The
    handler is the one writer of :data:`HANDLER_CONDITIONS`: each of those it changed is set
    whatever the stored list holds; another it changed (from a runtime answer of its own) only
    where the stored one is still what it read, as the timer writes; the rest is left as
    stored. The handler sends it with the other keys it changed, in one write
    (:func:`handler_status_write`)."""
    seen = current.get("conditions")
    wanted = new.wire().get("conditions")
    if seen == wanted:
        return None

    def write(body: MutableMapping[str, Any]) -> None:
        stored = body.get("status")
        status: MutableMapping[str, Any] = stored if isinstance(stored, MutableMapping) else {}
        status["conditions"] = _conditions_written(
            status.get("conditions"), seen, wanted, owned=HANDLER_CONDITIONS
        )
        body["status"] = status

    return write


def handler_status_write(current: Mapping[str, Any], new: BotStatus) -> StatusWrite | None:
    """The change handler's whole status write, from ``current`` (what it read) to ``new``, as
    one write onto the freshest object; None: nothing changed.

    Each changed key is set (removed for None), as the merge patch set it; the conditions go by
    type (:func:`conditions_write`). Sent as one write: kopf sends a merge patch of the status
    before, and apart from, the JSON patch its functions make, so a merge patch of the other
    keys beside the conditions' function made two writes, and a reader between them saw the
    pass's ``phase: Failed`` without the ``Reconciled`` condition that says why (and for longer
    when the second one was refused for a newer object and waited for kopf's next cycle)."""
    changes = status_changes(current, new)
    if not changes:
        return None
    conditions = conditions_write(current, new) if "conditions" in changes else None
    changes.pop("conditions", None)

    def write(body: MutableMapping[str, Any]) -> None:
        stored = body.get("status")
        status: MutableMapping[str, Any] = stored if isinstance(stored, MutableMapping) else {}
        for key, value in changes.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        body["status"] = status
        if conditions is not None:
            conditions(body)

    return write


def _conditions_written(
    stored: Any, seen: Any, wanted: Any, *, owned: frozenset[str] = frozenset()
) -> list[Any]:
    """``stored`` (the freshest list) with each condition the writer changed (from ``seen`` to
    ``wanted``, by type) set, where ``stored`` still holds what the writer saw — a type in
    ``owned`` whatever it holds —; the rest is left as stored, in its order (a new type is
    appended)."""
    before = _by_type(seen)
    after = _by_type(wanted)
    result = [dict(item) if isinstance(item, Mapping) else item for item in stored or ()]
    present = _by_type(result)
    for kind in list(before) + [k for k in after if k not in before]:
        was, will = before.get(kind), after.get(kind)
        if was == will or (kind not in owned and present.get(kind) != was):
            continue  # not the writer's change, or another writer's newer value: kept
        if will is None:
            result = [item for item in result if _type_of(item) != kind]
        elif kind not in present:
            result.append(dict(will))
        else:
            result = [dict(will) if _type_of(item) == kind else item for item in result]
    return result


def _by_type(conditions: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(conditions, list):
        return {}
    return {
        str(item["type"]): item
        for item in conditions
        if isinstance(item, Mapping) and isinstance(item.get("type"), str)
    }


def _type_of(item: Any) -> str | None:
    kind = item.get("type") if isinstance(item, Mapping) else None
    return kind if isinstance(kind, str) else None
