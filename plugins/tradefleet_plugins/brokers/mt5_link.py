"""The link to one MetaTrader 5 terminal: loading the module, the account's credentials,
``initialize``/``login`` with backoff, and every call checked for a lost terminal.

Used only from the MT5 broker's own I/O thread (the terminal serves one caller at a time).

Also the trade server's clock as its ticks show it (``ServerClock``): its zone, measured, for
the broker and the data feed alike — one measurement, so the broker's fills and the feed's bars
follow a broker's DST switch together.
Credentials are read from files and kept in this object only: they are never logged, never put
in an error (an error says which file, never what it holds) and never shown by ``repr``.
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradefleet_plugins.brokers.mt5_params import Mt5BridgeParams, Mt5BrokerParams
from tradefleet_runtime.sdk import PluginError

# last_error() codes meaning the terminal itself is gone (IPC): the call did not run, or ran
# without us learning the answer; everything else is an answer from a working terminal.
IPC_LOST = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})
AUTH_FAILED = -6


_LOCKS: dict[int, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def terminal_lock(module: Any) -> threading.RLock:
    """One lock per terminal object: the broker's thread and the data feed share a terminal
    (the real package is one per process), and a terminal serves one call at a time."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(id(module))
        if lock is None:
            lock = _LOCKS[id(module)] = threading.RLock()
        return lock


# -- the trade server's clock, from its ticks (the broker's and the data feed's) --------------
# Brokers' servers run whole- or half-hour zones: a tick's time minus the host's UTC, rounded
# to this, is the zone.
ZONE_STEP_S = 1800
# How far from a zone a measurement may land and still count: the host clock's error plus the
# tick's age. Under half a step, so a measurement never rounds to a neighbouring zone. Also the
# most the host's clock may be off UTC (docs/mt5.md: "within 5 minutes").
ZONE_TOLERANCE_S = 300.0
# No zone lies further from UTC (UTC-12 .. UTC+14): a tick further off is a terminal whose
# clock is not the trade server's (an emulator's, a stale history), and proves no zone.
_MAX_ZONE_S = 14 * 3600
# While no tick has shown the zone, ``server_offset_s`` may be a season off (a broker's DST
# switch): the bars' UTC times may then run this much early.
_SEASON_S = 3600


def nearest_zone(delta_s: float) -> tuple[int, float]:
    """The whole/half-hour zone nearest to ``delta_s`` (server clock minus UTC), and how far
    ``delta_s`` is from it."""
    zone = round(delta_s / ZONE_STEP_S) * ZONE_STEP_S
    return int(zone), abs(delta_s - zone)


def zone_floor(tick_s: int, host_s: float, expected: int) -> int | None:
    """The zone a tick stamped ``tick_s`` (server seconds), seen at ``host_s`` (the host's UTC),
    proves the server's is at least, when that is above ``expected``; else None. A tick is
    never stamped after the moment it is seen, so the server's clock is at least the tick, the
    host's clock being at most ``ZONE_TOLERANCE_S`` ahead of UTC: a tick that would stand in
    the future on ``expected``'s clock, however old, proves that zone wrong (the server moved
    to summer time while ``expected`` is winter's). Exact for a tick under ~20 minutes old, a
    lower bound for any."""
    delta = tick_s - host_s
    if tick_s <= 0 or abs(delta) > _MAX_ZONE_S + ZONE_TOLERANCE_S:
        return None
    floor = math.ceil((delta - ZONE_TOLERANCE_S) / ZONE_STEP_S) * ZONE_STEP_S
    return floor if floor > expected else None


def measure_zone(tick_s: int, host_s: float, *, fresh: bool, expected: int) -> int | None:
    """The server's zone shown by a tick stamped ``tick_s`` (server seconds) and seen at
    ``host_s`` (the host's UTC), or None when it proves nothing. A ``fresh`` tick arrived since
    the previous look, so it is at most that old; any other may be hours old (a closed market),
    and only confirms the zone ``expected`` (or proves a later one: ``zone_floor``)."""
    if tick_s <= 0 or abs(tick_s - host_s) > _MAX_ZONE_S + ZONE_TOLERANCE_S:
        return None
    zone, off_by = nearest_zone(tick_s - host_s)
    if off_by > ZONE_TOLERANCE_S:
        return None
    return zone if fresh or zone == expected else None


def zone_name(offset_s: int) -> str:
    sign = "-" if offset_s < 0 else "+"
    hours, rest = divmod(abs(offset_s), 3600)
    return f"UTC{sign}{hours}" + (f":{rest // 60:02d}" if rest else "")


def zone_news(zone: int | None, offset_s: int, measured: bool, configured_s: int) -> str | None:
    """What to say when a look at the ticks showed ``zone`` (None: nothing), the zone in use
    being ``offset_s`` (``measured`` or ``server_offset_s``, ``configured_s``); None when there
    is nothing new. The zone is then the one in use."""
    if zone is None or (measured and zone == offset_s):
        return None
    if measured:
        return (
            f"the trade server's zone changed from {zone_name(offset_s)} to {zone_name(zone)} "
            "(a DST switch?): times from the terminal are converted with it from now on"
        )
    if zone != configured_s:
        return (
            f"server_offset_s is {configured_s} ({zone_name(configured_s)}) but the terminal's "
            f"ticks show {zone_name(zone)}: times from the terminal are converted with "
            f"{zone_name(zone)}"
        )
    return None


class ServerClock:
    """What is known of the trade server's clock from the ticks seen: its zone (``offset``,
    ``server_offset_s`` until a tick shows it: ``measured``) and a lower bound of its time."""

    def __init__(self, fallback_offset_s: int) -> None:
        self.offset = fallback_offset_s
        self.measured = False
        self.tick = 0  # the newest tick's time seen (server seconds)
        self._looked: float | None = None  # the host's time of the previous look
        # Server minus host, a lower bound: a tick is never stamped after the moment it is
        # seen, so the newest tick plus the time since is never ahead of the server's clock,
        # however far off the host's clock is.
        self._lead: float | None = None

    def observe(self, tick_s: int, host_s: float) -> int | None:
        """A look at the newest tick; the zone it shows, or None."""
        fresh = (
            self._looked is not None
            and tick_s > self.tick
            and host_s - self._looked <= ZONE_TOLERANCE_S
        )
        self._looked = host_s
        if tick_s > 0:
            lead = tick_s - host_s
            self._lead = lead if self._lead is None else max(self._lead, lead)
        self.tick = max(self.tick, tick_s)
        zone = measure_zone(tick_s, host_s, fresh=fresh, expected=self.offset)
        # A stale tick may still prove the zone in use too early (summer time): no need to
        # wait for the next one, nor to take a ten-minute-old price for a current one.
        return zone if zone is not None else zone_floor(tick_s, host_s, self.offset)

    def follow(self, tick_s: int, host_s: float, configured_s: int) -> str | None:
        """``observe``, and the zone it shows taken for the server's from now on; what to say
        of it (``zone_news``), or None."""
        zone = self.observe(tick_s, host_s)
        news = zone_news(zone, self.offset, self.measured, configured_s)
        if zone is not None:
            if zone != self.offset:
                # The server's clock may have jumped with its zone (back, in autumn): what the
                # ticks before showed of it is no bound any more; this tick's is.
                self._lead, self.tick = tick_s - host_s, tick_s
            self.offset, self.measured = zone, True
        return news

    def now(self, host_s: float) -> float:
        """The server's clock (server seconds) at the host's ``host_s``; without any tick yet,
        the host's clock in the fallback zone."""
        return host_s + (self.offset if self._lead is None else self._lead)

    def utc_now(self, host_s: float) -> float | None:
        """The market's time at the host's ``host_s`` in UTC, as bar times leave the feed
        (converted with the same zone); None before a tick was seen. Never ahead of it: the
        later of the server's clock from the ticks (``now``: a lower bound) and the host's clock
        taken back by the most it may be off."""
        if self._lead is None:
            return None
        # The ticks' clock lags while no tick comes (a weekend, a daily break: Friday's last
        # tick on Saturday), and a restarted bot would take Friday's passed bars for the
        # newest. The host's clock does not lag: ZONE_TOLERANCE_S back (the most it may be
        # ahead of UTC, as every measurement assumes) it is never ahead of UTC, and a season
        # further back while the zone is server_offset_s's, unmeasured (a DST hour off, the
        # bars' UTC times may be early by that). Never ahead matters more than late: a clock
        # ahead of the market takes the bot's newest bar for a missed one, and it never trades.
        slack = ZONE_TOLERANCE_S + (0 if self.measured else _SEASON_S)
        return max(self.now(host_s) - self.offset, host_s - slack)


class TerminalLost(Exception):
    """The terminal stopped answering (IPC lost) during ``function``."""

    def __init__(self, function: str, code: int) -> None:
        super().__init__(f"MetaTrader 5 terminal lost during {function} (error {code})")
        self.function = function
        self.code = code


@dataclass(frozen=True)
class Credentials:
    login: int
    password: str = field(repr=False)
    server: str = field(repr=False)

    def __repr__(self) -> str:  # never the values, not even the login
        return "Credentials(<hidden>)"


def read_credentials(folder: Path | None, params: Mt5BrokerParams) -> Credentials | None:
    """login/password/server from ``folder`` (None: use the account the terminal has open).
    Errors name the file, never its content."""
    if folder is None:
        return None
    values: dict[str, str] = {}
    for key, name in (
        ("login", params.login_file),
        ("password", params.password_file),
        ("server", params.server_file),
    ):
        path = folder / name
        try:
            values[key] = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise PluginError(
                f"broker.credentialsSecret: cannot read {key} from {path} ({error.strerror})"
            ) from None
        if not values[key]:
            raise PluginError(f"broker.credentialsSecret: {path} ({key}) is empty")
    if not values["login"].isdigit():
        raise PluginError(
            f"broker.credentialsSecret: {folder / params.login_file} must hold the account "
            "number (digits only)"
        )
    return Credentials(int(values["login"]), values["password"], values["server"])


_LOADED: dict[str, Any] = {}


def load_terminal(spec: str) -> Any:
    """The object with the ``MetaTrader5`` functions: a module name, or ``module:attr`` where
    ``attr`` is such an object or a factory returning one. One object per ``spec`` and process:
    the broker and the data feed of a bot naming the same terminal share it (as they share the
    real package, which is one per process)."""
    with _LOCKS_GUARD:
        found = _LOADED.get(spec)
        if found is None:
            found = _LOADED[spec] = _load(spec)
        return found


def _load(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        hint = (
            " (the MetaTrader5 package exists only for Windows; on Linux, run the bridge "
            "beside a terminal and name its client here)"
            if module_name == "MetaTrader5"
            else ""
        )
        raise PluginError(f"broker.params.terminal: cannot import {module_name!r}{hint}") from (
            error
        )
    if not attr:
        return module
    try:
        found = getattr(module, attr)
    except AttributeError:
        raise PluginError(f"broker.params.terminal: {module_name!r} has no {attr!r}") from None
    # A class or a factory function builds the object; a module-like object is used as it is.
    if isinstance(found, type) or (callable(found) and not hasattr(found, "order_send")):
        return found()
    return found


#: The bridge client's factory. Loaded by name, as the ``MetaTrader5`` package is: plugins import
#: only the SDK, and the client is runtime tooling (it shares the generated gRPC stubs with the
#: ``tradefleet mt5-bridge`` server); the plugin needs only the module surface it returns.
BRIDGE_CLIENT = "tradefleet_runtime.mt5_bridge.client:connect"


def load_bridge(params: Mt5BridgeParams, credentials_dir: Path | None) -> Any:
    """The bridge client for ``params.bridge_address``: one per address and process (the broker
    and the data feed share it, as they share a terminal). The token (and CA) are files of the
    credentials folder; without one, calls go out without a token (a bridge run with
    ``--insecure-no-auth``, development only)."""
    address = params.bridge_address
    if address is None:
        raise PluginError("broker.params.bridge_address: not set")
    key = f"bridge:{address}"
    with _LOCKS_GUARD:
        found = _LOADED.get(key)
        if found is not None:
            return found
        module_name, _, attr = BRIDGE_CLIENT.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as error:
            raise PluginError(
                f"broker.params.bridge_address: the bridge client is not installed ({error})"
            ) from None
        folder = credentials_dir
        found = _LOADED[key] = factory(
            address,
            token_file=folder / params.bridge_token_file if folder is not None else None,
            ca_file=(
                folder / params.bridge_ca_file
                if folder is not None and params.bridge_ca_file
                else None
            ),
            server_name=params.bridge_server_name,
            tls=params.bridge_tls,
            timeout_s=params.bridge_timeout_s,
        )
        return found


def forget_bridge(address: str) -> None:
    """Drop the client kept for ``address`` (tests: a new bridge on the same address)."""
    with _LOCKS_GUARD:
        client = _LOADED.pop(f"bridge:{address}", None)
    close = getattr(client, "close", None)
    if callable(close):
        close()


class Link:
    """One terminal, reached through ``module``; ``call`` raises ``TerminalLost`` when the
    terminal went away, and ``ensure`` brings it back (initialize + login, with backoff)."""

    def __init__(
        self,
        module: Any,
        params: Mt5BrokerParams,
        credentials: Credentials | None,
        wait: Callable[[float], bool],
    ) -> None:
        self.module = module
        self._params = params
        self._credentials = credentials
        # wait(seconds) -> True when the broker is closing (stop waiting, stop reconnecting).
        self._wait = wait
        self.up = False
        self.reconnects = 0
        self._lock = terminal_lock(module)

    def _secret_free(self, text: str) -> str:
        credentials = self._credentials
        if credentials is None:
            return text
        for secret in (credentials.password, credentials.server, str(credentials.login)):
            if secret:
                text = text.replace(secret, "<hidden>")
        return text

    def last_error(self) -> tuple[int, str]:
        try:
            with self._lock:
                code, message = self.module.last_error()
        except Exception:  # a broken link answers nothing: treat as lost
            return -10004, "no IPC connection"
        return int(code), self._secret_free(str(message))

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``function``; None/False answers are checked for a lost terminal."""
        with self._lock:
            result = getattr(self.module, function)(*args, **kwargs)
            failed = result is None or result is False
            code = self.last_error()[0] if failed else 0
        if failed and code in IPC_LOST:
            self.up = False
            raise TerminalLost(function, code)
        return result

    def _initialize(self) -> tuple[bool, int, str]:
        kwargs: dict[str, Any] = {"timeout": self._params.timeout_ms}
        credentials = self._credentials
        if credentials is not None:
            kwargs.update(
                login=credentials.login, password=credentials.password, server=credentials.server
            )
        args = (self._params.path,) if self._params.path else ()
        with self._lock:
            ok = bool(self.module.initialize(*args, **kwargs))
        if ok:
            return True, 0, ""
        code, message = self.last_error()
        return False, code, message

    def ensure(self, attempts: int | None = None) -> bool:
        """Connected, or connect: initialize (and log in) with exponential backoff. ``attempts``
        None: until it works or the broker closes. Returns whether the terminal is up; a refused
        login raises at once (retrying a wrong password only locks the account)."""
        if self.up:
            return True
        delay = self._params.backoff_s
        tries = 0
        while True:
            tries += 1
            ok, code, message = self._initialize()
            if ok:
                self.up = True
                self.reconnects += 1
                return True
            if code == AUTH_FAILED:
                raise PluginError(
                    "broker: the MetaTrader 5 terminal refused the account in the credentials "
                    f"folder ({code} {message}); check the login, password and server files"
                )
            if attempts is not None and tries >= attempts:
                # Unreachable, not refused: the runtime may wait for it (a refused login
                # raised above).
                raise ConnectionError(
                    f"broker: MetaTrader 5 terminal not reachable after {tries} attempts "
                    f"(last error {code} {message})"
                )
            if self._wait(delay):
                return False
            delay = min(delay * 2, self._params.max_backoff_s)


__all__ = [
    "ZONE_STEP_S",
    "ZONE_TOLERANCE_S",
    "Credentials",
    "Link",
    "ServerClock",
    "TerminalLost",
    "forget_bridge",
    "load_bridge",
    "load_terminal",
    "measure_zone",
    "nearest_zone",
    "read_credentials",
    "terminal_lock",
    "zone_floor",
    "zone_name",
    "zone_news",
]
