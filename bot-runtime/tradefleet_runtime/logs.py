"""Logs: one JSON object a line in a pod (with the trace and span ids when a span is active),
readable lines on a terminal.

``tradefleet --log-format auto|text|json --log-level LEVEL`` chooses; ``auto`` is text when
stderr is a terminal and JSON otherwise (a pod's log, a pipe). A record's ``fields`` (pass
``extra={"fields": {...}}``) become keys of the JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("auto", "text", "json")
LEVELS = ("debug", "info", "warning", "error")

_chosen: dict[str, Any] = {"format": "auto", "level": logging.INFO}


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict[str, str] | None = None) -> None:
        super().__init__()
        self.static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        entry.update(_trace_ids())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO  fill: buy 1000 EURUSD @ 1.0812`` — for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record arrives (a progress display may have
    redirected it), not to the stream that was there when logging was set up."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _trace_ids() -> dict[str, str]:
    # Only when tracing was set up: the SDK is never imported just to log.
    if "opentelemetry.sdk.trace" not in sys.modules:
        return {}
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def choose(fmt: str | None = None, level: str | int | None = None) -> None:
    """Remember the format and level the command line chose (for later :func:`configure_logging`
    calls that do not name their own)."""
    if fmt is not None:
        _chosen["format"] = fmt
    if level is not None:
        _chosen["level"] = logging.getLevelName(level.upper()) if isinstance(level, str) else level


def resolved_format(fmt: str | None = None) -> str:
    """``text`` or ``json``: ``auto`` (the default) is text on a terminal, JSON elsewhere."""
    chosen = fmt or str(_chosen["format"])
    if chosen == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return chosen


def configure_logging(fmt: str | None = None, level: int | None = None, **static: str) -> None:
    handler = _StderrHandler()
    if resolved_format(fmt) == "json":
        handler.setFormatter(JsonFormatter(static))
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    # Replace only a handler set up here before (a test runner's handlers stay).
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _StderrHandler)] + [handler]
    root.setLevel(level if level is not None else int(_chosen["level"]))
