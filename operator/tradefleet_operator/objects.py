"""The objects a ``TradingBot`` is reconciled into, as pure functions (no I/O, no clock).

Given the parsed TradingBot (:class:`~tradefleet_operator.bot_api.TradingBot`: metadata and the
typed spec) and the ``OperatorSettings``, each function returns one desired object as a plain
dict:

- ``<name>-config``     ConfigMap with ``bot.yaml`` (the runtime's manifest)
- ``<name>-api-token``  Secret with ``control.token`` and ``read.token`` (made once, never rotated
  by a reconcile: the caller generates the tokens, or reads them back with
  ``tokens.tokens_from_secret``)
- ``<name>-journal``    PersistentVolumeClaim for the journal (not with ``journal.ephemeral``)
- ``<name>``            Deployment, one replica, ``Recreate`` (two pods of one bot must never
  trade at the same time), rolled by the ``tradefleet.io/config-hash`` pod annotation
- ``<name>``            headless Service (no cluster IP spent per bot), publishing unready pods

No object carries an owner reference: the caller adopts them (``kopf.adopt``). Every spec field
is read from the typed model, so its defaults are the model's. Comparing with what the API
server has is :mod:`tradefleet_operator.object_diff`.
"""

from __future__ import annotations

import copy
import datetime
import enum
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from tradefleet_operator.bot_api import LiveSpec, TradingBot, plain
from tradefleet_operator.names import (
    API_VERSION,
    KIND,
    LIVE_FIELDS,
    api_token_secret_name,
    config_map_name,
    journal_pvc_name,
    webhook_keys_secret_name,
)
from tradefleet_operator.settings import (
    APP_NAME,
    AUTH_DIR,
    BOT_LABEL,
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIG_HASH_ANNOTATION,
    CONFIG_REPAIRED_ANNOTATION,
    CREDENTIALS_DIR,
    JOURNAL_DIR,
    JOURNAL_FILE,
    MANAGED_BY,
    ROLLED_OUT_CONFIG_ANNOTATION,
    ROLLED_OUT_HASH_ANNOTATION,
    WEBHOOK_DIR,
    OperatorSettings,
)
from tradefleet_operator.tokens import ApiTokens, secret_data
from tradefleet_runtime.api.conventions import CREDENTIALS_DIR_ENV
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.spec import BotManifest, BotSpec, parse_manifest
from tradefleet_runtime.spec.checks import config_hash as runner_config_hash
from tradefleet_runtime.spec.checks import spec_document
from tradefleet_runtime.spec.load import parse_yaml
from tradefleet_runtime.spec.model import EmergencyStopSpec, RuntimeSpec

#: Where the runtime writes why it failed (the kubelet's default termination message path).
TERMINATION_LOG = "/dev/termination-log"


def labels(bot: TradingBot, settings: OperatorSettings | None = None) -> dict[str, str]:
    """Labels on every object of one bot (the settings' extra labels first, ours win)."""
    result = dict(settings.labels) if settings is not None else {}
    result.update(
        {
            "app.kubernetes.io/name": APP_NAME,
            "app.kubernetes.io/instance": bot.name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            BOT_LABEL: bot.name,
        }
    )
    return result


def selector(bot: TradingBot) -> dict[str, str]:
    """The pod selector of a bot's Deployment and Service (stable: never change it)."""
    return {BOT_LABEL: bot.name}


def _metadata(
    bot: TradingBot, name: str, settings: OperatorSettings | None = None
) -> dict[str, Any]:
    return {"name": name, "namespace": bot.namespace, "labels": labels(bot, settings)}


# --- the runtime's manifest and its hash -----------------------------------------------------


def bot_config(bot: TradingBot) -> dict[str, Any]:
    """The manifest the runtime pod reads (``bot.yaml``): no status, and no field at its default.

    Defaults are left to the runtime (``spec_document``): a field added since the runtime's
    release, at its default, would make a runtime pinned to that release
    (``spec.runtime.image``) refuse the whole manifest as an unknown field."""
    manifest = bot.manifest
    spec = spec_document(manifest.spec)
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


def config_hash(bot: TradingBot) -> str:
    """Hash of what the pod runs: the spec without ``paused``/``emergencyStop`` (applied live).

    This is the runtime's own ``tradefleet_runtime.spec.checks.config_hash`` of the manifest with
    those two fields at their defaults, so a runtime that is neither paused nor halted reports
    the same hash. It hashes only the fields off their defaults, so an operator release that
    adds an optional field does not roll the pod of a bot whose spec did not change (a runtime
    of a release before that rule reports its own, different hash in ``runtimeConfigHash``).
    """
    return _manifest_hash(bot.manifest)


def _manifest_hash(manifest: BotManifest) -> str:
    defaults = {name: BotSpec.model_fields[name].get_default() for name in LIVE_FIELDS}
    neutral = manifest.spec.model_copy(update=defaults)
    return runner_config_hash(manifest.model_copy(update={"spec": neutral}))


def render_config(config: Mapping[str, Any]) -> str:
    """``bot.yaml`` text: stable key order, so an unchanged config renders byte-identical."""
    # libyaml's dumper writes the same text about four times faster (1,000 bots at startup).
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(plain(config), Dumper=dumper, sort_keys=True, default_flow_style=False)


# --- the config a running pod was rolled out with --------------------------------------------
#
# The ConfigMap is written before the Deployment (so a new pod never starts on the old config),
# and Kubernetes writes no two objects at once: when the API server refuses the rest of a change,
# the ConfigMap is put back to the config the Deployment's pod template was rolled out with (its
# ``tradefleet.io/config-hash``), or a restart of the pod would start on a config never rolled
# out. That config is read from the ConfigMap itself: its ``bot.yaml`` while it is that config,
# else the copy a change kept beside its newer ``bot.yaml`` in the same patch
# (:func:`keep_rolled_out`) — not from the operator's memory, which a lost answer outdates and a
# restart empties.


def _live_aliases() -> tuple[str, ...]:
    return tuple(BotSpec.model_fields[name].alias or name for name in LIVE_FIELDS)


def file_config_hash(text: str) -> str | None:
    """The config hash (:func:`config_hash`) of the bot a ``bot.yaml`` was rendered from; None
    when it is not one manifest the runtime would read (a ConfigMap edited by hand)."""
    try:
        documents = parse_yaml(text, CONFIG_FILE)  # the runtime's own bounded reader
        if len(documents) != 1:
            return None
        return _manifest_hash(parse_manifest(documents[0], CONFIG_FILE))
    except SpecError:
        return None


def rolled_out_config(config_map: Mapping[str, Any] | None, running: str) -> str | None:
    """The ``bot.yaml`` of config hash ``running`` (the Deployment's pod template's) as
    ``config_map`` keeps it: its ``bot.yaml`` when it is that config, else the copy kept beside
    a newer one (:func:`keep_rolled_out`); None when it keeps neither."""
    if config_map is None:
        return None
    text = (config_map.get("data") or {}).get(CONFIG_FILE)
    if isinstance(text, str) and file_config_hash(text) == running:
        return text
    annotations = (config_map.get("metadata") or {}).get("annotations") or {}
    kept = annotations.get(ROLLED_OUT_CONFIG_ANNOTATION)
    if annotations.get(ROLLED_OUT_HASH_ANNOTATION) == running and isinstance(kept, str):
        return kept
    return None


def keep_rolled_out(
    desired: Mapping[str, Any],
    actual: Mapping[str, Any] | None,
    running: str | None,
    config_hash: str,
    *,
    now: str,
) -> dict[str, Any]:
    """The ConfigMap ``desired`` (of config ``config_hash``) to write over ``actual``, keeping
    the config of the Deployment's pod template (``running``) beside its new ``bot.yaml`` in the
    same write when that changes the config: there is then no moment at which the ConfigMap
    holds a config the Deployment does not run without the one it runs. That write also says
    when it was made (``now``, :data:`WRITTEN_AHEAD_AT_ANNOTATION`): a pod restarting from then
    on may read the newer config, and only a runtime report taken later can prove it did not
    (:func:`config_roll`). When the Deployment runs this config already, a copy of it kept from
    a write ahead is dropped (:func:`without_rolled_out`): ``bot.yaml`` is that config now."""
    result = dict(desired)
    new_text = (desired.get("data") or {}).get(CONFIG_FILE)
    if actual is None or running is None:
        return result  # no pod reads it yet
    if running == config_hash:
        return without_rolled_out(result) if written_ahead(actual, running) else result
    if (actual.get("data") or {}).get(CONFIG_FILE) == new_text:
        return result  # not rewritten: what it keeps stays
    kept = rolled_out_config(actual, running)
    if kept is None:
        return result  # kept nowhere (edited by hand): a refusal says so (HalfApplied)
    metadata = dict(result.get("metadata") or {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        ROLLED_OUT_HASH_ANNOTATION: running,
        ROLLED_OUT_CONFIG_ANNOTATION: kept,
        WRITTEN_AHEAD_AT_ANNOTATION: now,
    }
    result["metadata"] = metadata
    return result


# A Deployment write answered 5xx (a timeout: "the request may still be processing") can land
# after a retry read the Deployment on the old config and put the ConfigMap back: the pod then
# rolls to the change's config hash while ``bot.yaml`` holds the old config, and starts on that.
# The next pass finds the ConfigMap behind its Deployment (:func:`config_roll`), rewrites it
# with a repair stamp, and the pod template takes the stamp (:func:`with_repair_stamp`): the pod
# rolls again, onto the config its template names. Which config a pod read is not in the API
# (the runtime says it over gRPC, only while it runs, and the status timer is idle while a
# change is at work); what the ConfigMap holds is. The ConfigMap is always written before the
# Deployment, so it holds another config than its pod template in two cases, told apart by the
# copy it keeps (:func:`keep_rolled_out`):
# - written ahead of a Deployment write that did not land (yet): its kept copy is of the pod
#   template's config (:func:`written_ahead`). A spec put back to that config puts the
#   ConfigMap back without a roll only when a runtime report taken after the write ahead says
#   the pod runs the template's config; without that proof the pod rolls once (a needless roll
#   restarts a bot that reconciles with its venue; a pod running a config its template does not
#   name, unseen, is worse);
# - behind a Deployment write that landed late (its kept copy names the config before), or
#   edited by hand (no copy, or an old one): a pod of the template that started since ran the
#   other config, so the pod rolls once.
# A ConfigMap holding the template's config does not prove the pod read it either: it may have
# restarted while a retry held the ConfigMap ahead, before a put-back. Each put-back of a config
# written ahead is recorded on the ConfigMap (:data:`PUT_BACK_ANNOTATION`, with the hashes a
# runtime started on it reports); a runtime report taken after the template was written that
# names one of them rolls the pod once. A hash nothing recorded (a person's ``UpdateParams``, an
# older image hashing otherwise, a pause at the pod's start) is no cause: the record says only
# what this operator itself held ahead. A report taken after a put-back that names the
# template's own config clears it, as does a report of that config once the pod template was
# written (rolled) after the put-back; a new template config drops it.

#: On a bot's ConfigMap, beside the kept copy of the rolled-out config: when a pass last wrote a
#: newer ``bot.yaml`` ahead of the Deployment (a pod that restarts from then on may read it).
WRITTEN_AHEAD_AT_ANNOTATION = "tradefleet.io/written-ahead-at"
#: On a bot's Deployment (its metadata, not its pod template: writing it rolls nothing): when a
#: pass last changed its pod template's config hash or repair stamp. A runtime report asked
#: before it may be the old pod's, still stopping: only a later one says what the pod runs.
TEMPLATE_WRITTEN_AT_ANNOTATION = "tradefleet.io/template-written-at"
#: On a bot's ConfigMap: the configs a pass wrote ahead of the Deployment and then put back
#: (a pod that restarted meanwhile may run one), newest first, as JSON: for each, the pod
#: template's config it was put back under, its config hash, the hashes a runtime started on
#: it reports, and when it was put back (:class:`PutBack`).
PUT_BACK_ANNOTATION = "tradefleet.io/put-back-configs"
#: How many put-backs the record keeps: each retry of a refused change writes ahead and puts
#: back again (the same config: one entry), so a few distinct configs are all it ever needs.
PUT_BACK_LIMIT = 3
#: The longest record read, in characters: :data:`PUT_BACK_LIMIT` entries take well under 2 KB,
#: so anything longer was edited by hand and is not parsed at all (a deep nesting makes
#: ``json.loads`` raise ``RecursionError``; a long one only costs time at every pass).
PUT_BACK_MAX_CHARS = 16_384

_log = logging.getLogger(__name__)


def parse_time(value: object) -> datetime.datetime | None:
    """An RFC 3339 time as the operator writes it (``...Z``); None when it is missing, not a
    time or has no zone: such a value proves nothing."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True)
class RuntimeReport:
    """What the bot's runtime last reported running (``status.runtimeConfigHash``) and when it
    was asked (``status.runtimeReportedAt``); None where not known."""

    config_hash: str | None = None
    at: datetime.datetime | None = None

    @classmethod
    def from_status(cls, status: object) -> RuntimeReport:
        """Read leniently from a stored status: an odd value is not known."""
        if not isinstance(status, Mapping):
            return cls()
        value = status.get("runtimeConfigHash")
        reported = value if isinstance(value, str) and value else None
        return cls(reported, parse_time(status.get("runtimeReportedAt")))

    def after(self, moment: datetime.datetime | None) -> bool:
        """Asked after ``moment`` (False when either is not known)."""
        return self.at is not None and moment is not None and self.at > moment


class RollCause(enum.Enum):
    """Why a pass rolls the pod onto the config its template names."""

    BEHIND = "behind"  # a Deployment write that landed late, or a hand edit
    AHEAD_REPORTED = "ahead-reported"  # written ahead; the runtime reports the held config
    AHEAD_UNPROVEN = "ahead-unproven"  # written ahead; no later report says what the pod read
    REPORTED = "reported"  # the ConfigMap holds the template's; the runtime one put back


@dataclass(frozen=True)
class ConfigRoll:
    """A pod to roll once (:func:`config_roll`): why, the config the ConfigMap held (for
    ``REPORTED``, the put-back config the runtime reports), what the runtime reported, and when
    the ConfigMap was written ahead (as its annotation says; None when not)."""

    cause: RollCause
    held: str | None = None
    reported: str | None = None
    written_ahead_at: str | None = None


def _annotation(obj: Mapping[str, Any] | None, key: str) -> str | None:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(key) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) else None


def _names_config(reported: str, running: str, texts: Iterable[str | None]) -> bool:
    """The runtime's hash ``reported`` is that of config ``running`` as the operator hashes it,
    or of one of ``texts`` (that config's ``bot.yaml`` with some pause or halt) as the runtime
    hashes the manifest it read whole: a pause or halt at its start explains the difference."""
    return reported == running or any(
        reports_config(text, reported) for text in texts if text is not None
    )


def written_ahead(config_map: Mapping[str, Any] | None, running: str | None) -> bool:
    """``config_map`` was written ahead of a Deployment whose pod template runs ``running``:
    it keeps a copy of that config (:func:`keep_rolled_out`, written in the same write as its
    newer ``bot.yaml``). A ConfigMap put back before a late Deployment write landed keeps the
    config before it, of another hash than the template's."""
    if config_map is None or running is None:
        return False
    annotations = (config_map.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ROLLED_OUT_HASH_ANNOTATION) == running


def reports_config(text: str, reported: str | None) -> bool:
    """The runtime's reported config hash (``status.runtimeConfigHash``; None: not known) is
    that of ``bot.yaml`` ``text``: as the operator hashes it (paused, emergency stop left out),
    or as the runtime does, of the manifest it read whole."""
    if reported is None:
        return False
    if file_config_hash(text) == reported:
        return True
    try:
        documents = parse_yaml(text, CONFIG_FILE)
        if len(documents) != 1:
            return False
        return runner_config_hash(parse_manifest(documents[0], CONFIG_FILE)) == reported
    except SpecError:
        return False


def config_roll(
    config_map: Mapping[str, Any] | None,
    deployment: Mapping[str, Any] | None,
    running: str | None,
    config_hash: str,
    report: RuntimeReport,
    desired_text: str | None = None,
) -> ConfigRoll | None:
    """Whether a pass that keeps the Deployment's pod template on its config (``running ==
    config_hash``; ``deployment`` is the bot's, as read) must roll the pod once, and why; None
    when not (also when no pod reads the ConfigMap yet). ``desired_text`` is the ``bot.yaml``
    this pass writes (the template's config with the spec's pause and halt now)."""
    if config_map is None or running is None or running != config_hash:
        return None
    text = (config_map.get("data") or {}).get(CONFIG_FILE)
    text = text if isinstance(text, str) else None
    held = file_config_hash(text) if text is not None else None
    if held is not None and held != running:
        return _held_other(config_map, text, held, running, report, desired_text)
    return _reported_put_back(config_map, deployment, running, report, (text, desired_text))


def _held_other(
    config_map: Mapping[str, Any],
    text: str | None,
    held: str,
    running: str,
    report: RuntimeReport,
    desired_text: str | None,
) -> ConfigRoll | None:
    """The ConfigMap holds config ``held``, not the template's ``running``: a pod that started
    since read it, unless it was written ahead of the template and a report taken after that
    write names the template's config."""
    if not written_ahead(config_map, running):
        return ConfigRoll(RollCause.BEHIND, held, report.config_hash)
    when = _annotation(config_map, WRITTEN_AHEAD_AT_ANNOTATION)
    reported = report.config_hash
    if text is not None and reports_config(text, reported):
        return ConfigRoll(RollCause.AHEAD_REPORTED, held, reported, when)
    kept = rolled_out_config(config_map, running)
    if (
        reported is not None
        and report.after(parse_time(when))
        and _names_config(reported, running, (kept, desired_text))
    ):
        return None  # the pod ran the template's config after the write: it never read it
    return ConfigRoll(RollCause.AHEAD_UNPROVEN, held, reported, when)


def _reported_put_back(
    config_map: Mapping[str, Any],
    deployment: Mapping[str, Any] | None,
    running: str,
    report: RuntimeReport,
    texts: tuple[str | None, ...],
) -> ConfigRoll | None:
    """The ConfigMap holds the template's config, and the runtime's report, asked after the
    template was written (so not the old pod's), names a config this operator wrote ahead and
    put back under this template (:func:`put_back_record`): its pod started while it was held.
    Any other hash rolls nothing: it may be a person's ``UpdateParams``, a pause or halt at the
    pod's start, or an image hashing otherwise, and a roll would undo or restart a live bot.
    Once: the roll's new template time makes this report an old one, and the new pod's report
    of the template's config clears the record (:func:`with_put_back_record`)."""
    reported = report.config_hash
    if reported is None or _names_config(reported, running, texts):
        return None
    held = next(
        (entry for entry in put_back_record(config_map, running) if reported in entry.reports),
        None,
    )
    if held is None:
        return None  # nothing this operator held ahead
    if not report.after(parse_time(_annotation(deployment, TEMPLATE_WRITTEN_AT_ANNOTATION))):
        return None  # maybe the old pod's, or asked before the template was written
    return ConfigRoll(RollCause.REPORTED, held.config, reported)


@dataclass(frozen=True)
class PutBack:
    """One config written ahead of the Deployment and put back (:data:`PUT_BACK_ANNOTATION`):
    the pod template's config it was put back under, its config hash, the hashes a runtime
    started on it reports (:func:`reported_hashes`), and when it was put back."""

    template: str
    config: str
    reports: tuple[str, ...]
    at: str

    def wire(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "config": self.config,
            "reports": list(self.reports),
            "at": self.at,
        }


def _put_back_entries(config_map: Mapping[str, Any] | None) -> tuple[PutBack, ...]:
    """The record as the ConfigMap carries it, read leniently: an entry edited into something
    else is dropped (it names no config to roll for)."""
    value = _annotation(config_map, PUT_BACK_ANNOTATION)
    if not value:
        return ()
    raw = _parsed_record(value)
    entries: list[PutBack] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        fields = [item.get(key) for key in ("template", "config", "at")]
        reports = item.get("reports")
        if all(isinstance(f, str) and f for f in fields) and isinstance(reports, list):
            hashes = tuple(h for h in reports if isinstance(h, str) and h)
            entries.append(PutBack(str(fields[0]), str(fields[1]), hashes, str(fields[2])))
    return tuple(entries)


def _parsed_record(value: str) -> object:
    """The annotation's JSON; None (no record) when it is too long, not JSON or nested too
    deep. Said in the operator's log, naming the annotation (never its value: a hand edit may
    hold anything), since a pod on a put-back config is then not rolled; the pass's ConfigMap
    write replaces such a value with the record as it stands."""
    if len(value) > PUT_BACK_MAX_CHARS:
        _log.warning(
            "annotation %s is %d characters long (at most %d read): taken as no put-back record",
            PUT_BACK_ANNOTATION,
            len(value),
            PUT_BACK_MAX_CHARS,
        )
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as error:
        _log.warning(
            "annotation %s is not a put-back record (%s): taken as none",
            PUT_BACK_ANNOTATION,
            type(error).__name__,
        )
        return None


def put_back_record(config_map: Mapping[str, Any] | None, running: str) -> tuple[PutBack, ...]:
    """The configs put back under the pod template of config ``running``, newest first (those
    of an earlier template do not count: its pod was replaced since)."""
    return tuple(e for e in _put_back_entries(config_map) if e.template == running)


def reported_hashes(text: str) -> tuple[str, ...]:
    """The hashes a runtime started on ``bot.yaml`` ``text`` may report: it hashes the manifest
    it read whole, so with the pause and halt it held at the pod's start. The config's own hash
    (neither), and the text with and without its pause and halt (a live field written into the
    ConfigMap while it was held); () when it is no manifest."""
    halt = _emergency_stop(text)
    found: list[str] = []
    for live in (LiveSpec(), LiveSpec(True), LiveSpec(False, halt), LiveSpec(True, halt)):
        variant = with_live_fields(text, live)
        hashed = _runner_hash(variant) if variant is not None else None
        if hashed is not None and hashed not in found:
            found.append(hashed)
    return tuple(found)


def _emergency_stop(text: str) -> EmergencyStopSpec | None:
    try:
        documents = parse_yaml(text, CONFIG_FILE)
        return parse_manifest(documents[0], CONFIG_FILE).spec.emergency_stop
    except (SpecError, IndexError):
        return None


def _runner_hash(text: str) -> str | None:
    """The runtime's own hash of the manifest ``text`` (pause and halt included)."""
    try:
        documents = parse_yaml(text, CONFIG_FILE)
        if len(documents) != 1:
            return None
        return runner_config_hash(parse_manifest(documents[0], CONFIG_FILE))
    except SpecError:
        return None


def recorded_put_back(
    record: tuple[PutBack, ...], running: str, held_text: str, now: str
) -> tuple[PutBack, ...]:
    """``record`` with ``held_text`` (a config written ahead, now put back under the template
    of config ``running``) first; an earlier entry of that config gives way (a retry puts the
    same change back again: the newer time is the one a clearing report must follow), and no
    more than :data:`PUT_BACK_LIMIT` entries are kept. ``record`` itself when ``held_text``
    is no manifest, or is the template's config."""
    held = file_config_hash(held_text)
    if held is None or held == running:
        return record
    entry = PutBack(running, held, reported_hashes(held_text), now)
    rest = [e for e in record if (e.template, e.config) != (running, held)]
    return (entry, *rest)[:PUT_BACK_LIMIT]


def put_back_value(record: tuple[PutBack, ...]) -> str | None:
    """The annotation's value for ``record``; None (removed, in a merge patch) when empty."""
    if not record:
        return None
    return json.dumps([entry.wire() for entry in record], separators=(",", ":"))


def with_put_back_record(
    desired: Mapping[str, Any],
    actual: Mapping[str, Any] | None,
    running: str | None,
    config_hash: str,
    report: RuntimeReport,
    *,
    now: str,
    deployment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ConfigMap ``desired`` (this pass's write over ``actual``) carrying the put-back
    record as it now stands: entries of another pod template dropped; those the runtime's
    report clears (:func:`_cleared`); and, when this write overwrites a config written ahead
    (put back to the template's, or replaced by this pass's newer config), that config added.
    ``deployment`` is the bot's, as read. Unchanged when no pod reads the ConfigMap yet."""
    result = dict(desired)
    if actual is None or running is None:
        return result
    desired_text = (desired.get("data") or {}).get(CONFIG_FILE)
    template = rolled_out_config(actual, running)
    texts = (template, desired_text if running == config_hash else None)
    reported = report.config_hash
    names_template = reported is not None and _names_config(reported, running, texts)
    written = parse_time(_annotation(deployment, TEMPLATE_WRITTEN_AT_ANNOTATION))
    record = tuple(
        entry
        for entry in put_back_record(actual, running)
        if not (names_template and _cleared(entry, report, written))
    )
    held_text = (actual.get("data") or {}).get(CONFIG_FILE)
    if (
        written_ahead(actual, running)
        and isinstance(held_text, str)
        and file_config_hash(held_text) != config_hash
    ):
        # The config held ahead leaves the ConfigMap now: put back to the template's, or
        # overwritten by a newer change's write ahead. A pod that restarted while it was held
        # runs it either way, and only this record lets its report roll that pod later.
        record = recorded_put_back(record, running, held_text, now)
    value = put_back_value(record)
    if value == _annotation(actual, PUT_BACK_ANNOTATION):
        return result  # nothing to write (no patch per pass)
    metadata = dict(result.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), PUT_BACK_ANNOTATION: value}
    result["metadata"] = metadata
    return result


def _cleared(
    entry: PutBack, report: RuntimeReport, template_written: datetime.datetime | None
) -> bool:
    """A runtime report of the template's own config clears ``entry`` when it was taken after
    the put-back (the pod runs the template's config, whatever it ran before), or when the pod
    template was written after the put-back: that write rolled the pod, and a pod started since
    read the ConfigMap put back already (a later hold of the config is recorded anew, with its
    own time). The report's time alone cannot show the second: a rolled pod reporting the hash
    the status held already leaves ``runtimeReportedAt`` where it was, before the roll."""
    put_back = parse_time(entry.at)
    if report.after(put_back):
        return True
    return template_written is not None and put_back is not None and template_written > put_back


def with_template_written(
    desired: Mapping[str, Any], actual: Mapping[str, Any] | None, now: str
) -> dict[str, Any]:
    """The Deployment ``desired`` saying when its pod template was written
    (:data:`TEMPLATE_WRITTEN_AT_ANNOTATION`, in its metadata) when this write changes the pod
    template's config hash or repair stamp (or makes it); else as it is (``actual`` keeps its
    own)."""
    result = copy.deepcopy(dict(desired))
    if actual is not None and all(
        _template_annotation(result, key) == _template_annotation(actual, key)
        for key in (CONFIG_HASH_ANNOTATION, CONFIG_REPAIRED_ANNOTATION)
    ):
        return result
    return with_annotations(result, {TEMPLATE_WRITTEN_AT_ANNOTATION: now})


def with_annotations(obj: Mapping[str, Any], annotations: Mapping[str, str]) -> dict[str, Any]:
    """``obj`` with ``annotations`` added to its own metadata."""
    result = copy.deepcopy(dict(obj))
    metadata = result.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return result


def _template_annotation(deployment: Mapping[str, Any], key: str) -> str | None:
    template = (deployment.get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(key)
    return str(value) if value is not None else None


def without_rolled_out(config_map: Mapping[str, Any]) -> dict[str, Any]:
    """The ConfigMap ``config_map`` (to write) dropping its kept copy of the rolled-out config
    (a merge patch's nulls): written over one that was ahead of its pod template, now put back
    to the template's config. The copy is then of no use, and left there it would make a later
    hand edit look written ahead (:func:`written_ahead`), put back without a roll."""
    result = dict(config_map)
    metadata = dict(result.get("metadata") or {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        ROLLED_OUT_HASH_ANNOTATION: None,
        ROLLED_OUT_CONFIG_ANNOTATION: None,
        WRITTEN_AHEAD_AT_ANNOTATION: None,
    }
    result["metadata"] = metadata
    return result


def repair_stamp(obj: Mapping[str, Any] | None) -> str | None:
    """The repair stamp (``tradefleet.io/config-repaired-at``) of a ConfigMap, or of a
    Deployment's pod template; None when it has none."""
    if obj is None:
        return None
    metadata = obj.get("metadata") or {}
    if obj.get("kind") == "Deployment":
        metadata = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    value = (metadata.get("annotations") or {}).get(CONFIG_REPAIRED_ANNOTATION)
    return str(value) if value is not None else None


def with_repair_stamp(obj: Mapping[str, Any], stamp: str) -> dict[str, Any]:
    """``obj`` (a ConfigMap, or a Deployment: on its pod template) carrying ``stamp``."""
    result = copy.deepcopy(dict(obj))
    holder = result
    if result.get("kind") == "Deployment":
        holder = result.setdefault("spec", {}).setdefault("template", {})
    metadata = holder.setdefault("metadata", {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        CONFIG_REPAIRED_ANNOTATION: stamp,
    }
    return result


def with_live_fields(text: str, bot: TradingBot | LiveSpec) -> str | None:
    """``bot.yaml`` ``text`` with the spec's live fields (``paused``, ``emergencyStop``) as
    ``bot`` has them now (or as salvaged from a spec the model refuses), and the rest as
    written: a pod restarted on an older config still starts paused or halted as the spec says.
    ``text`` itself when they are so already; None when it is not a manifest."""
    try:
        documents = parse_yaml(text, CONFIG_FILE)
    except SpecError:
        return None
    document = documents[0] if len(documents) == 1 else None
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        return None
    spec = document["spec"]
    live = live_document(bot.live if isinstance(bot, TradingBot) else bot)
    changed = False
    for alias in _live_aliases():
        if alias in live and spec.get(alias) != live[alias]:
            spec[alias] = live[alias]
            changed = True
        elif alias not in live and alias in spec:
            del spec[alias]
            changed = True
    return render_config(document) if changed else text


def live_document(live: LiveSpec) -> dict[str, Any]:
    """The live fields as :func:`bot_config` writes them into ``bot.yaml``
    (``spec_document``): by their wire names, a field at its default (at any depth) left out."""
    document: dict[str, Any] = {}
    for name in LIVE_FIELDS:
        info = BotSpec.model_fields[name]
        value = getattr(live, name)
        if value == info.get_default(call_default_factory=True):
            continue
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        document[info.alias or name] = value
    return document


# --- objects ---------------------------------------------------------------------------------


def configmap(
    bot: TradingBot, settings: OperatorSettings, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``<name>-config`` with ``bot.yaml``."""
    config = bot_config(bot) if config is None else config
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(bot, config_map_name(bot.name), settings),
        "data": {CONFIG_FILE: render_config(config)},
    }


def api_token_secret(
    bot: TradingBot, tokens: ApiTokens, settings: OperatorSettings | None = None
) -> dict[str, Any]:
    """``<name>-api-token`` with ``control.token`` and ``read.token``."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(bot, api_token_secret_name(bot.name), settings),
        "type": "Opaque",
        "data": secret_data(tokens),
    }


def journal_pvc(bot: TradingBot, settings: OperatorSettings | None = None) -> dict[str, Any] | None:
    """``<name>-journal``, or None when the journal is ephemeral.

    ``ReadWriteOncePod`` by default (``OperatorSettings.journal_access_mode``): only one pod
    may mount the journal, so a second runtime of the bot (a node that stopped answering but
    still runs its pod, a manual copy) cannot start on it; the runtime's own journal lock
    fences any copy that shares the volume anyway. An ephemeral journal (an ``emptyDir``) is
    fenced by neither: only ``replicas: 1`` and ``Recreate`` protect it, so live bots should
    keep a claim."""
    journal = bot.spec.runtime.journal
    if journal.ephemeral:
        return None
    mode = (settings or OperatorSettings()).journal_access_mode
    spec: dict[str, Any] = {
        "accessModes": [mode],
        "resources": {"requests": {"storage": journal.size}},
    }
    if journal.storage_class_name:
        spec["storageClassName"] = journal.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(bot, journal_pvc_name(bot.name), settings),
        "spec": spec,
    }


def service(bot: TradingBot, settings: OperatorSettings) -> dict[str, Any]:
    """Headless Service ``<name>``: DNS ``<name>.<namespace>.svc`` → the bot's pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(bot, bot.name, settings),
        "spec": {
            "clusterIP": "None",
            "selector": selector(bot),
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


def runtime_command(bot: TradingBot, settings: OperatorSettings) -> list[str]:
    """The runtime container's command line."""
    runtime = bot.spec.runtime
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
        format(runtime.replay_speed, "g"),
    ]
    if runtime.webhook:
        command += ["--webhook-keys", WEBHOOK_DIR]
        for cidr in runtime.webhook_allow:
            command += ["--webhook-allow", cidr]
        if runtime.webhook_trust_forwarded_for:
            command.append("--webhook-trust-forwarded-for")
    return command


def _placement(runtime: RuntimeSpec) -> dict[str, Any]:
    """The pod spec's placement and pull fields the bot's ``spec.runtime`` sets."""
    placed: dict[str, Any] = {}
    if runtime.image_pull_secrets:
        placed["imagePullSecrets"] = [{"name": s.name} for s in runtime.image_pull_secrets]
    if runtime.node_selector:
        placed["nodeSelector"] = dict(runtime.node_selector)
    if runtime.tolerations:
        placed["tolerations"] = [dict(t) for t in runtime.tolerations]
    if runtime.affinity:
        placed["affinity"] = dict(runtime.affinity)
    if runtime.priority_class_name:
        placed["priorityClassName"] = runtime.priority_class_name
    if runtime.service_account_name:
        placed["serviceAccountName"] = runtime.service_account_name
    return placed


#: The pod volume of the broker credentials Secret (``spec.broker.credentialsSecret``).
CREDENTIALS_VOLUME = "credentials"


def credentials_secret_name(bot: TradingBot) -> str | None:
    """The Secret the bot's pod mounts as its broker credentials
    (``spec.broker.credentialsSecret``), None when it mounts none."""
    ref = bot.spec.broker.credentials_secret
    return ref.name if ref is not None and ref.name else None


def mounted_credentials(deployment: Mapping[str, Any] | None) -> str | None:
    """The Secret a Deployment's pod template mounts as the broker credentials (its
    ``credentials`` volume): what the running pod was rolled out with. None when there is no
    Deployment or it mounts none."""
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    for volume in (template.get("spec") or {}).get("volumes") or ():
        if isinstance(volume, Mapping) and volume.get("name") == CREDENTIALS_VOLUME:
            name = (volume.get("secret") or {}).get("secretName")
            return str(name) if name else None
    return None


def deployment(bot: TradingBot, settings: OperatorSettings, config_hash: str) -> dict[str, Any]:
    """The bot's Deployment: one non-root, read-only pod running ``tradefleet serve``."""
    name = bot.name
    runtime = bot.spec.runtime
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
    credentials = credentials_secret_name(bot)
    if credentials:
        volumes.append(
            {
                "name": CREDENTIALS_VOLUME,
                "secret": {"secretName": credentials, "defaultMode": secret_mode},
            }
        )
        mounts.append({"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_DIR, "readOnly": True})
    if runtime.webhook:
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
    if runtime.journal.ephemeral:
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
        # A failing runtime writes its reason here and exits 1: the kubelet keeps it as the
        # container's termination message, which the operator reports as the Failed reason.
        {"name": "TRADEFLEET_FAILURE_FILE", "value": TERMINATION_LOG},
    ]
    if credentials:
        env.append({"name": CREDENTIALS_DIR_ENV, "value": CREDENTIALS_DIR})
    team = bot.manifest.metadata.labels.get(settings.team_label) if settings.team_label else None
    if team:  # only then: a bot without the label keeps its pod template (no roll on upgrade)
        env.append({"name": "TRADEFLEET_TEAM", "value": team})

    resources = plain(runtime.resources)
    container: dict[str, Any] = {
        "name": "runtime",
        "image": runtime.image or settings.runtime_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": runtime_command(bot, settings),
        "ports": [
            {"name": "grpc", "containerPort": settings.grpc_port, "protocol": "TCP"},
            {"name": "http", "containerPort": settings.http_port, "protocol": "TCP"},
        ],
        "env": env,
        "resources": resources,
        "volumeMounts": mounts,
        "terminationMessagePath": TERMINATION_LOG,
        # No reason written (killed before it could): the log's tail instead.
        "terminationMessagePolicy": "FallbackToLogsOnError",
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
    pod_spec.update(_placement(runtime))
    pod_labels = {**runtime.pod_labels, **labels(bot, settings)}  # ours win: the selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(bot, name, settings),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(bot)},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        **runtime.pod_annotations,
                        CONFIG_HASH_ANNOTATION: config_hash,
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def desired_objects(
    bot: TradingBot, settings: OperatorSettings, config_hash: str, tokens: ApiTokens
) -> list[dict[str, Any]]:
    """Every object of one bot, in creation order (the pod's dependencies first).

    Each has ``metadata.namespace`` and the bot's labels, and no owner reference (adopt them).
    The api-token Secret is meant to be created once: on a later reconcile pass the tokens read
    back with ``tokens_from_secret``, so that ``needs_update`` finds nothing to change.
    """
    objects: list[dict[str, Any]] = [
        configmap(bot, settings),
        api_token_secret(bot, tokens, settings),
    ]
    pvc = journal_pvc(bot, settings)
    if pvc is not None:
        objects.append(pvc)
    objects.append(service(bot, settings))
    objects.append(deployment(bot, settings, config_hash))
    return objects
