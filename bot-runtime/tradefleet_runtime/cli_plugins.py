"""``tradefleet plugins list`` and ``tradefleet plugins show NAME``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from tradefleet_runtime import terminal
from tradefleet_runtime.plugins.registry import PluginRegistry, RegisteredPlugin


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A property with a ``$ref`` (or a one-element ``allOf`` of one) replaced by its target."""
    ref = prop.get("$ref")
    if ref is None and isinstance(prop.get("allOf"), list) and len(prop["allOf"]) == 1:
        ref = prop["allOf"][0].get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1], {})
        return {**target, **{k: v for k, v in prop.items() if k not in ("$ref", "allOf")}}
    return prop


def type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short type: ``integer``, ``number|null``, ``one of: a, b``, ``list of string``."""
    prop = _resolve(prop, defs)
    if "enum" in prop:
        return "one of: " + ", ".join(str(v) for v in prop["enum"])
    if "const" in prop:
        return f"always {prop['const']}"
    if "anyOf" in prop and isinstance(prop["anyOf"], list):
        return " | ".join(type_of(option, defs) for option in prop["anyOf"])
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        return "list of " + type_of(items, defs) if isinstance(items, dict) else "list"
    if kind is not None:
        return str(kind)
    return "object" if "properties" in prop else "any"


def _limits(prop: dict[str, Any]) -> str:
    words = {
        "minimum": "≥",
        "exclusiveMinimum": ">",
        "maximum": "≤",
        "exclusiveMaximum": "<",
        "minLength": "length ≥",
        "maxLength": "length ≤",
    }
    # An optional param (``float | None``) keeps its limits on the non-null member of anyOf.
    members = [prop, *(m for m in prop.get("anyOf", []) if isinstance(m, dict))]
    return ", ".join(
        f"{word} {member[key]}"
        for member in members
        for key, word in words.items()
        if key in member
    )


def param_rows(schema: dict[str, Any]) -> list[dict[str, str]]:
    """One row a param: name, type, default, required, limits, description."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    rows = []
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(raw, defs)
        default = json.dumps(raw["default"]) if "default" in raw else ""
        rows.append(
            {
                "name": name,
                "type": type_of(raw, defs),
                "default": default,
                "required": "yes" if name in required else "",
                "limits": _limits(prop),
                "description": str(raw.get("description") or prop.get("description") or ""),
            }
        )
    return rows


def _plugin_json(plugin: RegisteredPlugin) -> dict[str, Any]:
    schema = plugin.spec.params_schema()
    return {
        "kind": plugin.kind.value,
        "name": plugin.name,
        "version": plugin.spec.version,
        "source": plugin.source,
        "summary": plugin.spec.summary,
        "contract": plugin.spec.contract,
        "capabilities": sorted(c.value for c in plugin.spec.declared),
        "params": param_rows(schema),
        "params_schema": schema,
    }


def _param_lines(rows: list[dict[str, str]]) -> str:
    lines = []
    for row in rows:
        line = f"{row['name']}{'*' if row['required'] else ''}: {row['type']}"
        if row["default"]:
            line += f" = {row['default']}"
        if row["description"]:
            line += f" — {row['description']}"
        lines.append(line)
    return "\n".join(lines) or "-"


@click.group("plugins", context_settings={"help_option_names": ["-h", "--help"]})
def plugins_group() -> None:
    """Installed plugins: strategies, risk, brokers, data feeds."""


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_plugins(as_json: bool) -> int:
    """Every plugin with its kind, version and params (type = default — description)."""
    out = terminal.console()
    registry = PluginRegistry.discover()
    plugins = registry.all()
    if as_json:
        out.print_json(json.dumps([_plugin_json(p) for p in plugins]))
        return 0
    table = Table(title="tradefleet plugins (* required; tradefleet plugins show NAME for more)")
    table.add_column("kind", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("params", overflow="fold", ratio=1)
    for plugin in plugins:
        rows = param_rows(plugin.spec.params_schema())
        table.add_row(plugin.kind.value, plugin.name, plugin.spec.version, _param_lines(rows))
    out.print(table)
    for (kind, name), sources in registry.conflicts.items():
        out.print(
            terminal.labelled(
                "conflict", "yellow", f"{kind} {name!r} provided by {', '.join(sources)}"
            )
        )
    for problem in registry.load_errors:
        out.print(terminal.labelled("load error", "red", problem))
    return 0


@plugins_group.command("show")
@click.argument("name")
@click.option("--kind", help="The plugin's kind, when two kinds share NAME.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def show_plugin(name: str, kind: str | None, as_json: bool) -> int:
    """One plugin: its description, params as a table, and its params' JSON Schema."""
    out = terminal.console()
    registry = PluginRegistry.discover()
    matches = [
        p for p in registry.all() if p.name == name and (kind is None or p.kind.value == kind)
    ]
    if not matches:
        known = ", ".join(sorted({p.name for p in registry.all()}))
        raise click.UsageError(f"no plugin {name!r} (installed: {known})")
    if len(matches) > 1:
        kinds = ", ".join(p.kind.value for p in matches)
        raise click.UsageError(f"{name!r} names plugins of kinds {kinds}: add --kind")
    plugin = matches[0]
    described = _plugin_json(plugin)
    if as_json:
        out.print_json(json.dumps(described))
        return 0
    out.print(
        Text.assemble((f"{plugin.kind.value} {plugin.name}", "bold"), f" {plugin.spec.version}")
    )
    if plugin.spec.summary:
        out.print(plugin.spec.summary, highlight=False)
    out.print(f"from {plugin.source}; contract {plugin.spec.contract}", highlight=False)
    if described["capabilities"]:
        out.print("capabilities: " + ", ".join(described["capabilities"]), highlight=False)
    table = Table(title="params (* required)")
    table.add_column("name", no_wrap=True)
    table.add_column("type")
    table.add_column("default", no_wrap=True)
    table.add_column("limits")
    table.add_column("description", ratio=1)
    for row in described["params"]:
        name = row["name"] + ("*" if row["required"] else "")
        table.add_row(name, row["type"], row["default"], row["limits"], row["description"])
    out.print(table)
    out.print("JSON Schema of the params:")
    out.print_json(json.dumps(described["params_schema"]))
    return 0
