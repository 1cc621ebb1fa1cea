"""Every size, depth, count and time the runtime accepts from outside, in one place.

The HTTP port faces the internet (the signal webhook) and the gRPC port faces the cluster; both
refuse what exceeds these limits before it costs memory or a thread. ``docs/operations.md``
("Limits") lists each with what happens when it is exceeded; change both together.

The module also holds the one bounded JSON reader both front ends use (the webhook's body and
``UpdateParams.params_json``): Python's ``json`` has no depth or number-length limit, and a
deeply nested document exhausts the recursion limit while a long number costs quadratic time.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

# --- HTTP (aiohttp; the webhook, /metrics, /healthz, /readyz) --------------------------------

#: Largest request body, in bytes (the webhook refuses more with 413).
MAX_BODY_BYTES: Final = 64 * 1024
#: From a connection's first byte (or its first byte after a response) to the end of the
#: request's headers; a slower client is disconnected.
HTTP_HEADER_TIMEOUT_S: Final = 10.0
#: From the end of the headers to the end of the body; a slower client is disconnected.
HTTP_BODY_TIMEOUT_S: Final = 10.0
#: An idle keep-alive connection is closed after this.
HTTP_KEEPALIVE_TIMEOUT_S: Final = 30.0
#: Open HTTP connections at once; more are answered 503 and closed.
HTTP_MAX_CONNECTIONS: Final = 256
#: Longest request line and longest header line, in bytes (aiohttp answers 400 beyond).
HTTP_MAX_LINE_BYTES: Final = 8190
#: Most header lines in one request (aiohttp answers 400 beyond).
HTTP_MAX_HEADERS: Final = 64

# --- JSON (the webhook's body, UpdateParams) ---------------------------------------------------

#: Deepest nesting of arrays and objects.
MAX_JSON_DEPTH: Final = 32
#: Longest number literal, in characters (a double needs at most 24).
MAX_NUMBER_CHARS: Final = 64

# --- gRPC ---------------------------------------------------------------------------------------

#: Largest request message, in bytes (gRPC answers RESOURCE_EXHAUSTED beyond).
GRPC_MAX_MESSAGE_BYTES: Final = 256 * 1024
#: ListTrades page size (0 means the default).
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
#: Longest ListTrades page token, in characters (tokens the bot gives out are far shorter).
MAX_PAGE_TOKEN_CHARS: Final = 64
#: StreamEvents subscriptions at once; more get RESOURCE_EXHAUSTED. ``build_grpc_server``
#: takes a smaller value (half its worker threads) when it has fewer threads.
MAX_EVENT_STREAMS: Final = 4
#: Events buffered per subscriber (StreamEvents.max_queue; 0 means the default).
DEFAULT_EVENT_QUEUE: Final = 1000
MAX_EVENT_QUEUE: Final = 100_000
#: StreamEvents.recent: the latest events a new stream may start with (what the hub keeps).
MAX_RECENT_EVENTS: Final = 1000
#: Entries in StreamEvents.kinds (there are only 6 kinds; repeats are allowed up to this).
MAX_EVENT_KINDS: Final = 16
#: Longest free text (a reason) journaled from a control call, in characters.
MAX_REASON_CHARS: Final = 1000
#: Longest actor name kept in the audit trail (longer ones are cut, not refused).
MAX_ACTOR_CHARS: Final = 64
#: Longest plugin name in ResetRiskLock.
MAX_PLUGIN_NAME_CHARS: Final = 128
#: Longest signal id (the webhook's are KEYID:NONCE, at most 128 + 1 + 128).
MAX_SIGNAL_ID_CHARS: Final = 257

# --- a signal (webhook and SubmitSignal alike; see api.validate_signal) -----------------------

#: Prices (entry, stop loss, take profit, current price) lie in this closed range.
MIN_PRICE: Final = 1e-12
MAX_PRICE: Final = 1e12
#: A signal's volume lies in this closed range.
MIN_VOLUME: Final = 1e-9
MAX_VOLUME: Final = 1e9


class JsonRefused(ValueError):
    """A JSON text is not valid or exceeds a limit; the message says which."""


# Strings (with their escapes) or brackets: brackets inside strings must not count as nesting.
_TOKENS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in ``text`` (linear time, no recursion)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


class _Bad:
    """A value the reader refuses (``NaN``, a runaway literal), kept in place of the value until
    the object holding it names its key: the refusal then says which field was bad."""

    __slots__ = ("path", "why")

    def __init__(self, why: str, path: tuple[str, ...] = ()) -> None:
        self.why = why
        self.path = path

    def under(self, step: str) -> _Bad:
        return _Bad(self.why, (step, *self.path))

    def refusal(self) -> JsonRefused:
        where = "".join(s if s.startswith("[") else "." + s for s in self.path).lstrip(".")
        return JsonRefused(f"{where}: {self.why}" if where else self.why)


def _bad_in(value: Any) -> _Bad | None:
    """The first refused value in ``value`` (a value, or a list of them at any depth), with its
    path from there; objects have named theirs already (``_no_duplicate_keys``)."""
    if isinstance(value, _Bad):
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            bad = _bad_in(item)
            if bad is not None:
                return bad.under(f"[{index}]")
    return None


def _parse_int(literal: str) -> int | _Bad:
    if len(literal) > MAX_NUMBER_CHARS:
        return _Bad(f"a number has more than {MAX_NUMBER_CHARS} characters")
    return int(literal)


def _parse_float(literal: str) -> float | _Bad:
    if len(literal) > MAX_NUMBER_CHARS:
        return _Bad(f"a number has more than {MAX_NUMBER_CHARS} characters")
    # 1e999 becomes inf here, on purpose: the caller's field checks refuse it naming the field
    return float(literal)


def _no_constant(name: str) -> _Bad:
    return _Bad(f"{name} is not allowed")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Bad:
    result: dict[str, Any] = {}
    for name, value in pairs:
        shown = name if len(name) <= 64 else name[:63] + "…"
        if name in result:
            raise JsonRefused(f"duplicate key {shown!r}")
        bad = _bad_in(value)
        if bad is not None:
            # Passed up to the enclosing object, which adds its key: the refusal names the
            # whole path (``price_levels.entry``), as the field checks do.
            return bad.under(shown)
        result[name] = value
    return result


def load_json(text: str) -> Any:
    """``text`` as JSON within the limits above; ``JsonRefused`` otherwise.

    Refused: invalid JSON, nesting deeper than :data:`MAX_JSON_DEPTH`, number literals longer
    than :data:`MAX_NUMBER_CHARS`, ``NaN``/``Infinity`` (these two naming the field they were
    found under: ``volume: NaN is not allowed``) and duplicate keys. A number that
    overflows a double (``1e999``) becomes ``±inf``: callers refuse non-finite numbers where
    they can name the field.
    """
    if json_depth(text) > MAX_JSON_DEPTH:
        raise JsonRefused(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except JsonRefused:
        raise
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise JsonRefused(f"not valid JSON: {error}") from None
    bad = _bad_in(data)
    if bad is not None:
        raise bad.refusal()
    return data
