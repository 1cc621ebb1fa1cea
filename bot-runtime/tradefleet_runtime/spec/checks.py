"""Checks of a manifest against the installed plugins, and its config hash.

Kept apart from the runner so that the operator (admission, desired state) can use them without
importing the engine and its dependencies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.contracts import PluginParams
from tradefleet_runtime.errors import FieldError
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.spec.model import BotManifest, BotSpec


def spec_document(spec: BotSpec) -> dict[str, Any]:
    """The spec as a manifest says it: every field at its default left out, at any depth.

    What the operator writes into a bot's ``bot.yaml`` and what :func:`config_hash` hashes. A
    release that adds an optional field changes neither, so a bot pinned to an older runtime
    image still reads its manifest (that runtime refuses fields it does not know) and an
    unchanged bot keeps its hash (its pod does not roll). Defaults, not unset fields, are left
    out: the API server fills the CRD's ``default:`` entries into every stored bot, so those
    count as set. Loading the document back gives an equal spec.
    """
    return spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def config_hash(manifest: BotManifest) -> str:
    """A short hash of the spec: equal specs, equal hashes (rolls pods, names runs).

    Of :func:`spec_document`, so writing a default out, or a release adding an optional field,
    leaves it as it was."""
    spec = spec_document(manifest.spec)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def plugin_context(
    base_timeframe_s: int, mode: str = "", symbols: Sequence[str] = (), base_dir: str = ""
) -> dict[str, Any]:
    """What a params model may check its values against beyond its own params (see
    ``PluginRegistry.check``): wherever params are validated for a bot — its manifest, a
    search's trial, a running bot's UpdateParams — the same. ``mode``: the bot's (backtest,
    paper, live); empty where it is not known. ``symbols``: the bot's (spec.market.symbols),
    which a map keyed by symbol must keep to; empty where they are not known, and a model then
    skips that check. ``base_dir``: the manifest's folder, which a param naming a file is
    relative to (as the csv feed's ``path``); given when the plugin is built for a run
    (``assemble``), empty where it is not known (admission, a test), and a relative path then
    stays as written."""
    return {
        "base_timeframe_s": base_timeframe_s,
        "mode": mode,
        "symbols": tuple(symbols),
        "base_dir": base_dir,
    }


def validate_plugins(manifest: BotManifest, registry: PluginRegistry) -> list[FieldError]:
    """Every plugin exists, serves the bot's mode and gets valid params: one error per field."""
    spec = manifest.spec
    errors: list[FieldError] = []
    checks: list[tuple[PluginKind, str, dict[str, Any], list[str | int]]] = [
        (PluginKind.STRATEGY, spec.strategy.name, spec.strategy.params, ["spec", "strategy"]),
        (PluginKind.BROKER, spec.broker.name, spec.broker.params, ["spec", "broker"]),
    ]
    if spec.data is not None:
        checks.append((PluginKind.DATA_FEED, spec.data.name, spec.data.params, ["spec", "data"]))
    for index, ref in enumerate(spec.risk):
        checks.append((PluginKind.RISK, ref.name, ref.params, ["spec", "risk", index]))
    bot = plugin_context(spec.market.timeframe_s, spec.mode.value, spec.market.symbols)
    risk_params: dict[int, PluginParams] = {}  # spec.risk[i]'s, where they are valid
    for kind, name, params, path in checks:
        valid, refused = registry.check(kind, name, params, path, bot=bot)
        errors.extend(refused)
        if kind is PluginKind.RISK and valid is not None:
            risk_params[int(path[2])] = valid
    errors.extend(_sizers_first(manifest, registry, risk_params))
    served = [(PluginKind.BROKER, spec.broker.name, "spec.broker.name", "broker")]
    if spec.data is not None:
        served.append((PluginKind.DATA_FEED, spec.data.name, "spec.data.name", "data feed"))
    for kind, name, field, what in served:
        plugin = registry.plugins.get((kind, name))
        modes = plugin.spec.modes if plugin is not None else None
        if modes is not None and spec.mode.value not in modes:
            errors.append(FieldError(field, mode_refusal(what, name, spec.mode.value, modes)))
    return errors


def mode_refusal(what: str, name: str, mode: str, modes: frozenset[str]) -> str:
    """Why a plugin that serves only ``modes`` is refused for a bot in ``mode``."""
    return f"{what} {name!r} cannot serve mode {mode} (it serves {', '.join(sorted(modes))})"


def _sizers_first(
    manifest: BotManifest, registry: PluginRegistry, risk_params: Mapping[int, PluginParams]
) -> list[FieldError]:
    """A risk plugin that decides on the order's size (``needs-size``: a breaker's cut, a
    probation's share; or a param its params model names, ``PluginParams.needs_size``:
    pre-trade's ``max_risk_per_trade``) placed before the chain's sizer would see every order
    the strategy left unsized without one, and cut nothing (or veto them all): refused, naming
    the plugin's place in ``spec.risk``. ``risk_params``: the validated params of ``spec.risk``
    by index (one refused is said already). A chain without a sizer leaves sizing to the
    strategy, and is not refused."""
    chain = [
        (index, ref.name, registry.plugins.get((PluginKind.RISK, ref.name)))
        for index, ref in enumerate(manifest.spec.risk)
    ]
    sizers = [
        (index, name)
        for index, name, plugin in chain
        if plugin is not None and plugin.spec.has(Capability.SIZER)
    ]
    if not sizers:
        return []
    first, sizer = sizers[0]
    errors: list[FieldError] = []
    for index, name, plugin in chain[:first]:
        if plugin is None:
            continue
        params = risk_params.get(index)
        setting = params.needs_size() if params is not None else ""
        if setting:
            what = f"{name}'s {setting} decides on the order's size"
            fix = f"put a sizer before {name}, or turn {setting} off"
        elif plugin.spec.has(Capability.NEEDS_SIZE):
            what, fix = f"{name} decides on the order's size", f"put a sizer before {name}"
        else:
            continue
        errors.append(
            FieldError(
                f"spec.risk[{index}]",
                f"{what}, but the sizer {sizer} comes after it (spec.risk[{first}]): {fix}",
            )
        )
    return errors
