"""Finding plugins (pluggy + entry points), validating their params and building them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata
from typing import Any

import pluggy
from pydantic import ValidationError

from tradefleet_runtime.capabilities import Capability, check_object, parse_capabilities
from tradefleet_runtime.contracts import NoParams, PluginParams
from tradefleet_runtime.errors import (
    FieldError,
    PluginError,
    SpecError,
    StrategyError,
    StrategyRefused,
    join_path,
)
from tradefleet_runtime.plugins import hookspecs

BUILTIN_MODULE = "tradefleet_plugins.registry"

#: The version of the plugin contract (the SDK surface) this runtime implements. A plugin
#: written for another major version is refused when it is loaded; minor versions only add.
#: 1.12: ``BrokerContext.identity`` (a broker derives its ids and venue tags from
#: ``identity_seed``) and ``BrokerContext.first_run``.
#: 1.13: the ``restores-positions`` broker capability (``PositionRestorer``).
#: 1.14: ``CashFlow`` and the ``reports-cash-flows`` broker capability (``CashFlowReporter``):
#: funding booked into the account.
#: 1.15: ``ActionKind.MOVE_STOP`` and ``AccountAction.price``: a risk plugin ratchets a
#: position's stop-loss at the venue (a native trailing stop), checked by the engine.
#: 1.16: ``Accrual`` and the ``reports-accruals`` broker capability: a payment accrued on an
#: open position and not booked yet (an MT5 swap), counted in equity. ``OrderUpdate.price``:
#: on an "amended" answer, the price the venue says the order holds (booked and journaled).
#: The ``restores-state`` risk capability: a plugin's own state, journaled as it changes,
#: handed back after a restart.
#: 1.17: ``LIQUIDATION_TAG``: the fill of the venue's liquidation of a position (booked as an
#: outside change is, its own exit kind).
#: 1.18: the ``quotes-prices`` broker capability (``PriceQuoter``, ``QUOTE_MAX_AGE_S``): the
#: market's price now, which a market entry decided between bars is sized at.
#: 1.19: ``RiskContext.closable`` and ``RiskContext.closing`` (what an order may still close
#: once the exits working are counted), ``PluginParams.needs_size()`` (a plugin that needs the
#: order's size only under some settings is refused before the sizer, naming that param).
#: 1.20: ``Instrument.taker_fee`` and ``Instrument.slippage`` (what a taking fill costs, which
#: a sizer's leverage cap leaves room for; 0 where a broker does not state them) and
#: ``leverage_cap_quantity``; ``limit_problem``'s ``reduce_only_exempt`` (the one rule for
#: which bracket child may be placed); ``ChildCutter.restore_cuts`` (a broker sizing children
#: itself is told after a restart what earlier runs cut).
#: 1.21: the ``tells-market-time`` data feed capability (``MarketClock``): a live feed tells
#: the market's time, so a restarted bot's bars that closed while it was down (a newer one had
#: closed by then) go to the strategy as history only.
#: 1.22: ``MissedBarMatcher`` (optional, on a ``restores-account`` broker that is its own
#: venue: ``match_missed_bar`` works the orders resting before a restart over the bars that
#: closed while the bot was down, as a venue would have).
#: 1.23: ``OrderRestorer`` (optional, on a venue broker: ``restore_orders`` hands it the orders
#: the journal holds working after a restart, before the start-up reconciliation's reports).
#: 1.24: ``RiskContext.fills_while_down`` (the fills a restart booked that the venue made
#: while the bot was down, which a day beginning after them starts without) and ``equity_made``.
CONTRACT_VERSION = "1.24"


def contract_major(version: str) -> str:
    return version.split(".", 1)[0]


def _builtin_source() -> str:
    try:
        return f"tradefleet {metadata.version('tradefleet')} (built-in)"
    except metadata.PackageNotFoundError:  # running from a source tree that was not installed
        return "tradefleet (built-in, not installed)"


BUILTIN_SOURCE = _builtin_source()


class PluginKind(StrEnum):
    STRATEGY = "strategy"
    RISK = "risk"
    BROKER = "broker"
    DATA_FEED = "data"


_HOOK_OF_KIND = {
    PluginKind.STRATEGY: "tradefleet_strategies",
    PluginKind.RISK: "tradefleet_risk_plugins",
    PluginKind.BROKER: "tradefleet_brokers",
    PluginKind.DATA_FEED: "tradefleet_data_feeds",
}


@dataclass(frozen=True)
class PluginSpec:
    """A plugin's descriptor: who it is, what params it takes, and how to build it.

    ``factory`` is called with the validated params object. Give it as ``"module:attr"`` to
    defer importing the plugin's module (and its heavy dependencies) until a bot uses it.
    """

    kind: PluginKind | str
    name: str
    version: str
    factory: Callable[..., Any] | str
    params: type[PluginParams] = NoParams
    summary: str = ""
    modes: frozenset[str] | None = None  # bot modes the plugin can serve; None: all
    # Optional abilities (see ``tradefleet_runtime.capabilities``), checked when loaded.
    capabilities: frozenset[Capability | str] = frozenset()
    # With the ``knows-symbols`` capability: whether a symbol can be traded (mapped to the
    # venue), given validated params. Admission refuses a manifest naming a symbol it says no to.
    knows_symbol: Callable[[PluginParams, str], bool] | None = None
    # The plugin contract version the plugin was written for (``CONTRACT_VERSION``).
    contract: str = CONTRACT_VERSION

    @property
    def declared(self) -> frozenset[Capability]:
        """The declared capabilities (unknown names were refused at discovery)."""
        return parse_capabilities(str(self.kind), self.capabilities)[0]

    def has(self, capability: Capability) -> bool:
        return capability in self.declared

    def resolve_factory(self) -> Callable[..., Any]:
        if callable(self.factory):
            return self.factory
        module_name, _, attribute = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
            factory = getattr(module, attribute)
        except (ImportError, AttributeError) as error:
            raise PluginError(
                f"{self.kind} plugin {self.name!r}: cannot load {self.factory!r}: {error}"
            ) from error
        if not callable(factory):
            raise PluginError(f"{self.kind} plugin {self.name!r}: {self.factory!r} is not callable")
        return factory  # type: ignore[no-any-return]

    def params_schema(self) -> dict[str, Any]:
        """The JSON Schema of the params (what admission and ``plugins list`` show)."""
        return self.params.model_json_schema()


@dataclass(frozen=True)
class RegisteredPlugin:
    spec: PluginSpec
    source: str  # the distribution that provides it, "name version"

    @property
    def kind(self) -> PluginKind:
        return PluginKind(self.spec.kind)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class PluginRegistry:
    """Every plugin found, by kind and name. Build one with :meth:`discover`."""

    plugins: dict[tuple[PluginKind, str], RegisteredPlugin] = field(default_factory=dict)
    # Plugins found but refused (another contract major version, bad capability declarations):
    # asking for one raises the reason instead of "no plugin named".
    refused: dict[tuple[PluginKind, str], str] = field(default_factory=dict)
    conflicts: dict[tuple[PluginKind, str], list[str]] = field(default_factory=dict)
    load_errors: list[str] = field(default_factory=list)
    # The distributions ("name version") whose entry point or hook failed: a plugin asked for
    # and not found may be one of theirs, and the "no plugin named" error says so.
    failed_sources: list[str] = field(default_factory=list)

    @classmethod
    def discover(cls, *, entry_points: bool = True) -> PluginRegistry:
        """Load the built-in plugins and every distribution's ``tradefleet`` entry points."""
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        registry = cls()
        sources: dict[int, str] = {}
        if entry_points:
            sources = registry._load_entry_points(manager, hookspecs.ENTRY_POINT_GROUP)
        if not any(getattr(p, "__name__", "") == BUILTIN_MODULE for p in manager.get_plugins()):
            manager.register(importlib.import_module(BUILTIN_MODULE), name="builtin")
        registry._collect(manager, sources)
        return registry

    def _load_entry_points(self, manager: pluggy.PluginManager, group: str) -> dict[int, str]:
        """Import and register every distribution's entry points of ``group``, one by one, as
        pluggy's ``load_setuptools_entrypoints`` does, but with a try each: that one raises
        at the first broken distribution and leaves every later one unloaded, so one typo in
        one package hid all the plugins. A failure is reported naming the distribution, its
        version and the entry point. Returns each loaded module's source ("name version")."""
        sources: dict[int, str] = {}
        for dist in list(metadata.distributions()):
            points = [point for point in dist.entry_points if point.group == group]
            if not points:
                continue
            source = f"{dist.metadata['Name']} {dist.version}"
            for point in points:
                if manager.has_plugin(point.name) or manager.is_blocked(point.name):
                    continue  # pluggy's rule: an entry point name is loaded once
                try:
                    plugin = point.load()
                    manager.register(plugin, name=point.name)
                except Exception as error:
                    self.load_errors.append(
                        f"{source}: entry point {point.name} = {point.value} failed to load:"
                        f" {type(error).__name__}: {error}"
                    )
                    self.failed_sources.append(source)
                    continue
                sources[id(plugin)] = source
        return sources

    @classmethod
    def from_modules(cls, *modules: object) -> PluginRegistry:
        """A registry of just these hook modules (for tests and embedding)."""
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        for module in modules:
            manager.register(module)
        registry = cls()
        registry._collect(manager)
        return registry

    def _collect(
        self, manager: pluggy.PluginManager, loaded: Mapping[int, str] | None = None
    ) -> None:
        sources = {
            id(plugin): f"{dist.project_name} {dist.version}"
            for plugin, dist in manager.list_plugin_distinfo()
        }
        sources.update(loaded or {})
        for kind, hook_name in _HOOK_OF_KIND.items():
            hook = getattr(manager.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                source = sources.get(id(impl.plugin), BUILTIN_SOURCE)
                if (
                    impl.plugin_name == "builtin"
                    or getattr(impl.plugin, "__name__", "") == BUILTIN_MODULE
                ):
                    source = BUILTIN_SOURCE
                try:
                    specs = impl.function()
                except Exception as error:
                    self.load_errors.append(
                        f"{source}: {impl.plugin_name}.{hook_name}() failed:"
                        f" {type(error).__name__}: {error}"
                    )
                    self.failed_sources.append(source)
                    continue
                for spec in specs or ():
                    self._add(kind, spec, source)

    def _add(self, kind: PluginKind, spec: PluginSpec, source: str) -> None:
        key = (kind, spec.name)
        if PluginKind(spec.kind) is not kind:
            self.load_errors.append(
                f"{source}: plugin {spec.name!r} declared kind {spec.kind!r} from the {kind} hook"
            )
            return
        problem = _descriptor_problem(kind, spec, source)
        if not problem and source != BUILTIN_SOURCE:
            problem = _params_problem(kind, spec, source)
        if problem:
            self.refused.setdefault(key, problem)
            self.load_errors.append(problem)
            return
        if key in self.plugins:
            # The first registration (built-ins come first) keeps the name; using it reports both.
            self.conflicts.setdefault(key, [self.plugins[key].source]).append(source)
            return
        self.plugins[key] = RegisteredPlugin(spec, source)

    def all(self) -> list[RegisteredPlugin]:
        return sorted(self.plugins.values(), key=lambda p: (p.kind.value, p.name))

    def names(self, kind: PluginKind) -> list[str]:
        return sorted(name for (k, name) in self.plugins if k is kind)

    def get(self, kind: PluginKind, name: str) -> RegisteredPlugin:
        key = (kind, name)
        if key not in self.plugins and key in self.refused:
            raise PluginError(self.refused[key])
        if key not in self.plugins:
            known = ", ".join(self.names(kind)) or "none"
            failed = ", ".join(dict.fromkeys(self.failed_sources))
            hint = (
                f"; {failed} failed to load and may provide it (tradefleet plugins list says why)"
                if failed
                else ""
            )
            raise PluginError(f"no {kind} plugin named {name!r} (installed: {known}){hint}")
        if key in self.conflicts:
            raise PluginError(
                f"{kind} plugin {name!r} is provided by several distributions: "
                + ", ".join(self.conflicts[key])
            )
        return self.plugins[key]

    def check(
        self,
        kind: PluginKind,
        name: str,
        params: Mapping[str, Any],
        field_path: Sequence[str | int],
        *,
        bot: Mapping[str, Any] | None = None,
    ) -> tuple[PluginParams | None, list[FieldError]]:
        """Validate params for plugin ``name``; errors name the field and the plugin.

        ``bot``: what the manifest says beyond the plugin's own params, given to the params
        model as pydantic's validation context (``ValidationInfo.context``), so that a param
        that must agree with the bot is refused by its field before anything runs.
        ``validate_plugins`` gives ``{"base_timeframe_s": <spec.market.timeframe in
        seconds>}``; params checked on their own (a test, ``plugins list``) get None, and a
        model must then skip such checks.
        """
        try:
            plugin = self.get(kind, name)
        except PluginError as error:
            return None, [FieldError(join_path([*field_path, "name"]), str(error))]
        try:
            return plugin.spec.params.model_validate(dict(params), context=bot), []
        except ValidationError as error:
            return None, self._refusals(kind, name, plugin, error, field_path)
        except Exception as error:
            # Pydantic turns only ValueError and AssertionError of a validator into a refusal
            # of its field; anything else (a KeyError from ``info.data[...]`` when the earlier
            # field was itself refused) escapes it: a bug of the params model, said as one.
            hint = (
                " (a validator reading info.data must allow for an earlier field that failed"
                " its own check: info.data.get(...))"
                if isinstance(error, KeyError)
                else ""
            )
            message = (
                f"the params validator{_raised_in(error, plugin.spec.params)} raised"
                f" {type(error).__name__}: {error}"
                f" ({kind} plugin {name!r}: a bug in the plugin{hint})"
            )
            return None, [FieldError(join_path([*field_path, "params"]), message)]

    def _refusals(
        self,
        kind: PluginKind,
        name: str,
        plugin: RegisteredPlugin,
        error: ValidationError,
        field_path: Sequence[str | int],
    ) -> list[FieldError]:
        """A ValidationError as one FieldError per refused param, naming field and plugin."""
        errors = []
        fields = plugin.spec.params.model_fields
        for item in error.errors(include_url=False):
            loc = list(item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            named, colon, rest = message.partition(": ")
            if not loc and colon and named in fields:
                # A check across params says which one it refuses ("leverage: only for
                # market_type 'linear'"): the error names that field.
                loc, message = [named], rest
            location = join_path([*field_path, "params", *loc])
            if item["type"] == "extra_forbidden":
                message = "unknown param"
            errors.append(FieldError(location, f"{message} ({kind} plugin {name!r})"))
        return errors

    def build(
        self,
        kind: PluginKind,
        name: str,
        params: Mapping[str, Any],
        field_path: Sequence[str | int],
        *,
        bot: Mapping[str, Any] | None = None,
    ) -> Any:
        """Validate params and build the plugin object, or raise ``SpecError``. ``bot``: as
        ``check`` takes it."""
        validated, errors = self.check(kind, name, params, field_path, bot=bot)
        if errors or validated is None:
            raise SpecError(errors)
        spec = self.get(kind, name).spec
        factory = spec.resolve_factory()
        if kind is not PluginKind.STRATEGY:
            built = factory(validated)
        else:
            try:
                built = factory(validated)
            except (StrategyError, StrategyRefused, SpecError, PluginError):
                raise  # already says what and where (a child strategy's params, say)
            except Exception as error:
                raise StrategyError.of(name, "__init__", error) from error
        problems = check_object(kind.value, built, spec.declared)
        if problems:
            raise PluginError(
                f"{kind} plugin {name!r} ({type(built).__name__}): " + "; ".join(problems)
            )
        return built


def _raised_in(error: BaseException, model: type[PluginParams]) -> str:
    """ " name" of the params model's own function ``error`` was raised in (its validator),
    the deepest such frame; "" when none (pydantic's own code raised)."""
    found = ""
    trace = error.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        if frame.f_globals.get("__name__") == model.__module__:
            found = f" {frame.f_code.co_name}"
        trace = trace.tb_next
    return found


def _descriptor_problem(kind: PluginKind, spec: PluginSpec, source: str) -> str:
    """Why a descriptor cannot be used at all (contract version, capabilities), or ""."""
    label = f"{kind} plugin {spec.name!r} from {source}"
    if contract_major(str(spec.contract)) != contract_major(CONTRACT_VERSION):
        return (
            f"{label} was written for plugin contract {spec.contract}; this tradefleet "
            f"implements {CONTRACT_VERSION} (major versions must match): upgrade the plugin "
            "or tradefleet"
        )
    declared, errors = parse_capabilities(kind.value, spec.capabilities)
    if errors:
        return f"{label}: " + "; ".join(errors)
    if Capability.KNOWS_SYMBOLS in declared and not callable(spec.knows_symbol):
        return f"{label} declares 'knows-symbols' but its descriptor sets no knows_symbol"
    if Capability.KNOWS_SYMBOLS not in declared and spec.knows_symbol is not None:
        return f"{label} sets knows_symbol but does not declare the 'knows-symbols' capability"
    return ""


def _params_problem(kind: PluginKind, spec: PluginSpec, source: str) -> str:
    """Why a third-party plugin's params model cannot be built ("": it can). Params models are
    built on first use (``PluginParams``' ``defer_build``: the built-in ones are not built
    by every process that never uses them); another distribution's is built here, at
    discovery, so that one whose model cannot be (a field of a type pydantic has no schema
    for) is a load error naming it, not a traceback out of whatever first asks for it."""
    try:
        spec.params.model_rebuild(force=True)
    except Exception as error:  # pydantic's schema errors, and whatever a validator raises
        return (
            f"{source}: {kind} plugin {spec.name!r}: its params model "
            f"{spec.params.__name__} cannot be built: {type(error).__name__}: {error}"
        )
    return ""
