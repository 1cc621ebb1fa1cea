"""Admission validation of ``TradingBot`` objects: what the CRD schema cannot check.

The CRD's schema and CEL rules refuse malformed objects early (types, enums, bounds, the
live-mode safeguards). This module is the authority: it runs the runtime's own loader
(``parse_manifest``: the same model, the same messages as ``tradefleet backtest``) and the
plugin checks (``validate_plugins``: every plugin exists, serves the mode and accepts its
params), asks the broker plugin whether it knows each symbol when it can say, and refuses a
symbol another bot already trades on the same venue account (``shared_account``).

Every function here is pure except ``admit``, which raises ``kopf.AdmissionError`` for the
``@kopf.on.validate`` handler (registered in ``handlers.py``)::

    @kopf.on.validate("tradefleet.io", "v1alpha1", "tradingbots", operation=["CREATE", "UPDATE"])
    def validate(body, **_):
        admission.admit(body, admission.default_registry())
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from tradefleet_operator.account_sharing import BotAccount, account_of, new_shares, share_errors
from tradefleet_operator.bot_api import plain
from tradefleet_operator.quantity import spec_quantity_errors
from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.contracts import PluginParams
from tradefleet_runtime.errors import FieldError, SpecError, join_path
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.spec import BotManifest, CapitalSpec, parse_manifest
from tradefleet_runtime.spec.checks import mode_refusal, validate_plugins

#: The optional broker hook: given the broker's validated params and one symbol, True when the
#: broker can map the symbol to an instrument. A broker plugin offers it as the attribute
#: ``knows_symbol`` of its ``PluginSpec`` (a proposed field; see ``symbols_mappable``). It must
#: answer quickly and offline (a cached instrument list): admission webhooks time out in seconds.
SymbolCheck = Callable[[PluginParams, str], bool]

#: The HTTP status of a refused object (the API server's own code for invalid objects).
INVALID = 422


@functools.lru_cache(maxsize=1)
def default_registry() -> PluginRegistry:
    """The installed plugins, discovered once per process."""
    return PluginRegistry.discover()


def validate_trading_bot(
    body: Mapping[str, Any],
    registry: PluginRegistry,
    old: Mapping[str, Any] | None = None,
) -> list[FieldError]:
    """Every problem of one TradingBot, one ``FieldError`` per field (empty: admitted); ``old``:
    the object an update replaces (see ``runtime_quantities``)."""
    if not isinstance(body, Mapping):
        # The API server sends objects, but this is the authority: a list or null (another
        # client of ``admission_response``) is refused by field, never an AttributeError.
        return [FieldError("(manifest)", "must be an object (a TradingBot)")]
    document = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": plain(body.get("metadata") or {}),
        "spec": plain(body.get("spec")),
    }
    try:
        manifest = parse_manifest(document)
    except SpecError as error:
        # The model refused some fields; still check the plugin refs that parse, so that one
        # round trip names every wrong field, not just the first layer of them.
        errors = list(error.errors)
        errors.extend(_raw_plugin_errors(document["spec"], registry, errors))
        errors.extend(name_problems(document["metadata"], errors))
        errors.extend(runtime_quantities(document["spec"], old))
        return _unique(errors)
    errors = validate_plugins(manifest, registry)
    errors.extend(symbols_mappable(manifest, registry))
    errors.extend(name_problems(document["metadata"], errors))
    errors.extend(runtime_quantities(document["spec"], old))
    errors.extend(mode_switch(document["spec"], old))
    return _unique(errors)


def mode_switch(spec: Any, old: Mapping[str, Any] | None) -> list[FieldError]:
    """A bot switched between paper and live in place: refused, naming ``spec.mode``. Its
    journal holds the one account it traded, which the runtime of the other mode refuses to
    take over (a paper run the venue's account, a live run a simulated one); admitted, the edit
    would roll the pod (the running bot stopping by its stop policy) into a runtime that cannot
    start, and an edit back would be the same. (Backtest runs are never carried: a backtest
    bot's mode may change.)"""
    old_spec = (old or {}).get("spec")
    if not isinstance(spec, Mapping) or not isinstance(old_spec, Mapping):
        return []
    before, after = old_spec.get("mode"), spec.get("mode")
    if {before, after} != {"paper", "live"}:
        return []
    return [
        FieldError(
            "spec.mode",
            f"a {before} bot cannot become a {after} bot in place: its journal holds the "
            f"{'venue' if before == 'live' else 'simulated'} account it traded, which a "
            f"{after} run would take over; stop it as you want its positions left and create "
            f"the {after} bot under another name",
        )
    ]


def name_problems(
    metadata: Mapping[str, Any], known: Sequence[FieldError] = ()
) -> list[FieldError]:
    """What the runtime's name check lets through but the bot's objects cannot be named with.

    The bot's Service is named after it, and Service names are DNS-1035 labels: a name that
    starts with a digit passes the model (DNS-1123 label) but its Service would be refused.
    """
    if not isinstance(metadata, Mapping):
        # ``metadata: [1]``: say so once (the model's own error, when given, already does).
        if any(_under(error.field, "metadata") for error in known):
            return []
        return [FieldError("metadata", "must be an object")]
    name = metadata.get("name")
    if not isinstance(name, str) or not name or any(e.field == "metadata.name" for e in known):
        return []
    if not name[0].isalpha():
        return [
            FieldError(
                "metadata.name",
                f"{name!r} must start with a letter: the bot's Service is named after it "
                "(a DNS-1035 label)",
            )
        ]
    return []


def symbols_mappable(manifest: BotManifest, registry: PluginRegistry) -> list[FieldError]:
    """Symbols the bot's broker says it cannot trade, one error per symbol.

    A broker that declares the ``knows-symbols`` capability answers through the
    ``knows_symbol(params, symbol) -> bool`` of its ``PluginSpec``. Brokers without it
    (``paper`` accepts any symbol) are not asked.
    """
    broker = manifest.spec.broker
    plugin = registry.plugins.get((PluginKind.BROKER, broker.name))
    if plugin is None:
        return []  # validate_plugins already names spec.broker.name
    check: SymbolCheck | None = plugin.spec.knows_symbol
    if not plugin.spec.has(Capability.KNOWS_SYMBOLS) or check is None:
        return []
    params, problems = registry.check(
        PluginKind.BROKER, broker.name, broker.params, ["spec", "broker"]
    )
    if problems or params is None:
        return []  # the params errors are reported by validate_plugins
    errors = []
    for index, symbol in enumerate(manifest.spec.market.symbols):
        try:
            known = bool(check(params, symbol))
        except Exception as error:  # a broker's bug must not make the webhook fail open or 500
            errors.append(
                FieldError(
                    f"spec.market.symbols[{index}]",
                    f"broker {broker.name!r} could not check symbol {symbol!r}: {error}",
                )
            )
            continue
        if not known:
            errors.append(
                FieldError(
                    f"spec.market.symbols[{index}]",
                    f"broker {broker.name!r} does not know symbol {symbol!r}",
                )
            )
    return errors


def runtime_quantities(spec: Any, old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """``spec.runtime.resources`` and ``spec.runtime.journal.size`` as the API server will read
    them in the bot's Deployment and journal claim (``quantity``): a value it refuses, or that
    cannot be meant (a request above its limit, half a byte), named by the TradingBot's field.
    Refused here, the edit is not half applied (the ConfigMap rewritten, the Deployment refused).

    At an update (``old``), only problems the update brings: one the replaced object had already
    (admitted before this check, or while the webhook was not served) is let through, so that
    pausing or halting such a bot, or kopf's own metadata patches, are never refused."""
    errors = spec_quantity_errors(spec)
    if isinstance(old, Mapping):
        standing = set(spec_quantity_errors(plain(old.get("spec"))))
        errors = [error for error in errors if error not in standing]
    return errors


def admission_message(errors: Sequence[FieldError], body: Mapping[str, Any] | None = None) -> str:
    """One message naming every wrong field, as ``kubectl apply`` shows it."""
    # Called with the refused body as sent: it may be no object, or hold no object as metadata.
    metadata = body.get("metadata") if isinstance(body, Mapping) else None
    if not isinstance(metadata, Mapping):
        metadata = {}
    name = metadata.get("name")
    what = "TradingBot"
    if name:
        what += f" {metadata.get('namespace') or 'default'}/{name}"
    noun = "error" if len(errors) == 1 else "errors"
    lines = "\n".join(f"  - {error.field}: {error.message}" for error in errors)
    return f"{what} refused ({len(errors)} {noun}):\n{lines}"


def admission_response(
    errors: Sequence[FieldError],
    uid: str = "",
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``admission.k8s.io/v1`` AdmissionReview answer (for a webhook served without kopf).

    Refusals carry HTTP 422 ``Invalid`` with one ``details.causes`` entry per field.
    """
    response: dict[str, Any] = {"uid": uid, "allowed": not errors}
    if errors:
        response["status"] = {
            "code": INVALID,
            "reason": "Invalid",
            "message": admission_message(errors, body),
            "details": {
                "causes": [
                    {"field": error.field, "message": error.message, "reason": "FieldValueInvalid"}
                    for error in errors
                ]
            },
        }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def capital_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[FieldError]:
    """An update of ``spec.capital`` the runtime would refuse at its next start: a paper or
    live bot whose status shows it handled a bar (``lastBarTime``), so its journal carries an
    account on the old capital (``docs/live-crypto.md``). Refused here, at ``kubectl apply``,
    instead of a pod failing at start. A bot with no bar yet (a first start refused for its
    capital, say) is let through: the runtime decides, and takes a corrected capital.
    A backtest starts afresh every run."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return []
    spec, was = new.get("spec"), old.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(was, Mapping):
        return []
    if spec.get("mode") not in ("paper", "live"):
        return []
    status = old.get("status")
    bar = status.get("lastBarTime") if isinstance(status, Mapping) else None
    if not bar:
        return []
    before, after = _capital(was.get("capital")), _capital(spec.get("capital"))
    if before is None or after is None or before == after:
        return []  # the same terms as written otherwise; a malformed one is refused above
    terms = f"{before.initial:,.2f} {before.currency}"
    return [
        FieldError(
            "spec.capital",
            f"cannot change while the bot's journal keeps its account on {terms} (it traded"
            f" until {bar}): the runtime would refuse to start. Set it back, or delete and"
            " create the TradingBot again for a new account and journal",
        )
    ]


def shared_account(
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    others: Iterable[BotAccount],
) -> list[FieldError]:
    """Symbols the bot would trade on a venue account another bot of its namespace (``others``)
    trades them on: the venue nets their positions (``account_sharing``). At a create, every
    one; at an update, only those the update brings (a symbol added, another account): one that
    shares as it did before (made before this check, or while the webhook was not served) is
    let through, so that pausing or stopping such a bot is never refused."""
    bot = account_of(body)
    if bot is None:
        return []  # a spec the model refuses (named above), or a bot being deleted
    before = account_of(old) if isinstance(old, Mapping) else None
    return share_errors(new_shares(bot, before, others))


def admit(
    body: Mapping[str, Any],
    registry: PluginRegistry | None = None,
    old: Mapping[str, Any] | None = None,
    others: Iterable[BotAccount] = (),
) -> None:
    """Raise ``kopf.AdmissionError`` (HTTP 422, every field named) if the bot is refused;
    ``old``: the object an update replaces; ``others``: the bots of its namespace (the
    operator's index; the bot's own entry is skipped by name)."""
    import kopf  # only the operator process needs kopf; the pure functions above do not

    errors = validate_trading_bot(body, registry or default_registry(), old)
    errors.extend(capital_change(old, body))
    errors.extend(shared_account(body, old, others))
    if errors:
        raise kopf.AdmissionError(admission_message(errors, body), code=INVALID)


# --- helpers ---------------------------------------------------------------------------------


def _capital(value: Any) -> CapitalSpec | None:
    """The capital's terms as the runtime reads them (defaults filled, currency upper-cased)."""
    try:
        return CapitalSpec.model_validate(plain(value) if value is not None else {})
    except ValidationError:
        return None


_REFS: tuple[tuple[PluginKind, str], ...] = (
    (PluginKind.STRATEGY, "strategy"),
    (PluginKind.BROKER, "broker"),
    (PluginKind.DATA_FEED, "data"),
)


def _raw_plugin_errors(
    spec: Any, registry: PluginRegistry, known: Sequence[FieldError]
) -> list[FieldError]:
    """Plugin checks on an unparsed spec, for the refs whose own fields are well-formed."""
    if not isinstance(spec, Mapping):
        return []
    refs: list[tuple[PluginKind, Any, list[str | int]]] = [
        (kind, spec.get(key), ["spec", key]) for kind, key in _REFS
    ]
    risk = spec.get("risk")
    if isinstance(risk, list):
        refs.extend((PluginKind.RISK, ref, ["spec", "risk", i]) for i, ref in enumerate(risk))
    errors: list[FieldError] = []
    for kind, ref, path in refs:
        if not isinstance(ref, Mapping):
            continue
        name, params = ref.get("name"), ref.get("params", {})
        if not isinstance(name, str) or not name or not isinstance(params, Mapping):
            continue
        prefix = join_path(path)
        if any(_under(error.field, f"{prefix}.name") for error in known):
            continue
        errors.extend(registry.check(kind, name, params, path)[1])
    errors.extend(_raw_mode_error(spec, registry))
    return errors


def _raw_mode_error(spec: Mapping[str, Any], registry: PluginRegistry) -> list[FieldError]:
    """``validate_plugins``' mode checks (broker, data feed), on an unparsed spec."""
    mode = spec.get("mode", "paper")
    if not isinstance(mode, str) or mode not in {"backtest", "paper", "live"}:
        return []
    errors = []
    for kind, key, what, default in (
        (PluginKind.BROKER, "broker", "broker", "paper"),
        (PluginKind.DATA_FEED, "data", "data feed", None),
    ):
        ref = spec.get(key)
        name = ref.get("name") if isinstance(ref, Mapping) else default
        if not isinstance(name, str):
            continue
        plugin = registry.plugins.get((kind, name))
        if plugin is None or plugin.spec.modes is None or mode in plugin.spec.modes:
            continue
        errors.append(
            FieldError(f"spec.{key}.name", mode_refusal(what, name, mode, plugin.spec.modes))
        )
    return errors


def _under(field: str, prefix: str) -> bool:
    return field == prefix or field.startswith((f"{prefix}.", f"{prefix}["))


def _unique(errors: Iterable[FieldError]) -> list[FieldError]:
    return list(dict.fromkeys(errors))
