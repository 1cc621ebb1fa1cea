"""Fleet-wide commands, and the small Kubernetes REST client they and the operator share.

``tradefleet fleet stop --selector team=a --reason "..." [--flatten]`` sets ``spec.emergencyStop``
on every matching ``TradingBot`` in one go (all patches in flight at once), then also calls every
runtime it can reach directly, all at once; the operator enforces the spec for the rest (and
for good), so a whole fleet halts in about a second.
``tradefleet fleet resume --selector team=a`` removes it again.

The lead wires the commands into the ``tradefleet`` CLI with :func:`add_fleet_commands` and
:func:`run_fleet_command`. Nothing here imports kopf at module level: the CLI stays light, and
kopf (the ``operator`` extra) is only needed to read the kubeconfig when a command runs.

:class:`KubeApi` is a deliberately small client over aiohttp (create, get, merge-patch, list,
delete): the operator uses it for its child objects and the fleet command for TradingBots. It
takes its credentials from kopf's :class:`kopf.ConnectionInfo` (service account or kubeconfig).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import ssl
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    import kopf

GROUP = "tradefleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "tradingbots"

MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    """A refused or failed API request: ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def temporary(self) -> bool:
        """Worth retrying: no answer, a conflict, throttling or a server error."""
        return self.status in (0, 409, 429) or self.status >= 500


def api_path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/api/v1/namespaces/ns/configmaps/x`` or ``/apis/group/version/...``."""
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace is not None:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name is not None:
        path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
    return path


#: Resource plural of each kind the operator manages.
PLURALS: dict[str, str] = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
    "TradingBot": PLURAL,
}


def object_path(obj: Mapping[str, Any], *, with_name: bool = True) -> str:
    """The API path of a manifest (its collection when ``with_name`` is false)."""
    meta = obj.get("metadata", {})
    return api_path(
        str(obj["apiVersion"]),
        PLURALS[str(obj["kind"])],
        meta.get("namespace"),
        meta.get("name") if with_name else None,
    )


def _ssl_context(info: kopf.ConnectionInfo, folder: str) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context()
    if info.ca_path:
        context.load_verify_locations(cafile=os.fsdecode(info.ca_path))
    elif info.ca_data:
        data = info.ca_data if isinstance(info.ca_data, bytes) else info.ca_data.encode()
        context.load_verify_locations(cadata=base64.b64decode(data).decode())
    if info.certificate_path or info.certificate_data:

        def pem_file(path: Any, data: str | bytes | None, name: str) -> str:
            if path:
                return os.fsdecode(path)
            assert data is not None
            raw = data if isinstance(data, bytes) else data.encode()
            target = os.path.join(folder, name)
            with open(target, "wb") as handle:
                handle.write(base64.b64decode(raw))
            return target

        cert = pem_file(info.certificate_path, info.certificate_data, "client.crt")
        key = pem_file(info.private_key_path, info.private_key_data, "client.key")
        context.load_cert_chain(cert, key)
    return context


class KubeApi:
    """Create, read, merge-patch, list and delete Kubernetes objects over one HTTP session."""

    def __init__(self, info: kopf.ConnectionInfo, *, connections: int = 64) -> None:
        self.info = info
        self.server = info.server.rstrip("/")
        self._folder = tempfile.TemporaryDirectory(prefix="tradefleet-kube-")
        self._ssl = _ssl_context(info, self._folder.name)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0  # answered requests, for the operator's own accounting

    @classmethod
    def from_environment(cls, *, connections: int = 64) -> KubeApi:
        """Credentials of the pod's service account, else of the kubeconfig."""
        import kopf

        settings = kopf.OperatorSettings()
        info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )
        if info is None:
            raise KubeError(0, "NoCredentials", "no service account and no kubeconfig found")
        return cls(info, connections=connections)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.info.token:
            headers["Authorization"] = f"{self.info.scheme or 'Bearer'} {self.info.token}"
        elif self.info.username and self.info.password:
            pair = f"{self.info.username}:{self.info.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections),
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=30),
                trust_env=self.info.trust_env,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._folder.cleanup()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self.session().request(
                method, self.server + path, data=data, params=params, headers=headers
            ) as response:
                text = await response.text()
                self.requests += 1
                if response.status >= 400:
                    try:
                        status = json.loads(text)
                        reason, message = status.get("reason", ""), status.get("message", text)
                    except ValueError:
                        reason, message = response.reason or "", text
                    raise KubeError(response.status, str(reason), str(message)[:500])
                return json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeError(0, type(error).__name__, str(error)) from error

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or ``None`` when it does not exist."""
        try:
            found: dict[str, Any] = await self.request("GET", path)
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return found

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self.request(
            "POST", object_path(obj, with_name=False), body=obj
        )
        return created

    async def patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (lists are replaced whole; ``None`` removes a key)."""
        patched: dict[str, Any] = await self.request(
            "PATCH", path, body=patch, content_type=MERGE_PATCH
        )
        return patched

    async def list(
        self, api_version: str, plural: str, namespace: str | None, selector: str = ""
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        listing = await self.request("GET", api_path(api_version, plural, namespace), params=params)
        items: list[dict[str, Any]] = list(listing.get("items", []))
        # Filter here too: the same answer from a server that ignores the selector.
        return [item for item in items if selector_matches(selector, item)]

    async def delete(self, path: str) -> None:
        try:
            await self.request("DELETE", path)
        except KubeError as error:
            if error.status != 404:
                raise


# --- label selectors ----------------------------------------------------------------------------

_SET_TERM = re.compile(
    r"^\s*(!?)([\w./-]+)\s*(?:(in|notin)\s*\(([^)]*)\)|(==|=|!=)\s*([\w./-]*))?\s*$"
)


def _split_selector(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def parse_selector(selector: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """``"team=a,tier in (x,y),!canary"`` → ``[(key, op, values), ...]``; ValueError if bad."""
    parsed: list[tuple[str, str, tuple[str, ...]]] = []
    for term in _split_selector(selector):
        match = _SET_TERM.match(term)
        if not match:
            raise ValueError(f"bad label selector term: {term.strip()!r}")
        negated, key, set_op, set_values, op, value = match.groups()
        if negated:
            if set_op or op:
                raise ValueError(f"bad label selector term: {term.strip()!r}")
            parsed.append((key, "!exists", ()))
        elif set_op:
            values = tuple(v.strip() for v in set_values.split(",") if v.strip())
            parsed.append((key, set_op, values))
        elif op:
            parsed.append((key, "!=" if op == "!=" else "=", (value,)))
        else:
            parsed.append((key, "exists", ()))
    return parsed


def selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    labels: Mapping[str, str] = obj.get("metadata", {}).get("labels") or {}
    for key, op, values in parse_selector(selector):
        present = key in labels
        if (
            (op == "exists" and not present)
            or (op == "!exists" and present)
            or (op in ("=", "in") and labels.get(key) not in values)
            or (op in ("!=", "notin") and present and labels[key] in values)
        ):
            return False
    return True


# --- the fleet command --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetResult:
    namespace: str
    name: str
    error: str = ""
    halted_directly: bool = False
    bot: Mapping[str, Any] | None = None


async def set_emergency_stop(
    api: KubeApi,
    *,
    selector: str,
    namespace: str | None,
    stop: Mapping[str, Any] | None,
) -> list[FleetResult]:
    """Set (``stop`` given) or clear (``None``) ``spec.emergencyStop`` on every matching bot,
    all patches at once. One result per bot; a bot that could not be patched names its error."""
    bots = await api.list(API_VERSION, PLURAL, namespace, selector)
    patch = {"spec": {"emergencyStop": dict(stop) if stop is not None else None}}

    async def one(bot: Mapping[str, Any]) -> FleetResult:
        meta = bot["metadata"]
        path = api_path(API_VERSION, PLURAL, meta.get("namespace"), meta["name"])
        try:
            await api.patch(path, patch)
        except KubeError as error:
            return FleetResult(meta.get("namespace", ""), meta["name"], str(error))
        return FleetResult(meta.get("namespace", ""), meta["name"], bot=bot)

    return list(await asyncio.gather(*(one(bot) for bot in bots)))


async def halt_directly(
    api: KubeApi, results: Sequence[FleetResult], reason: str, flatten: bool, timeout: float = 2.0
) -> list[FleetResult]:
    """Also send ``EmergencyStop`` to every patched bot's runtime at once, best effort.

    The spec patch is what makes a halt stick (the operator enforces it); this only makes it
    land sooner, without waiting for the operator to work through a whole fleet's events. A
    runtime this process cannot reach (outside the cluster, no right to read the token Secret)
    is simply left to the operator.
    """
    # Imported here: status.py imports this module, and needs kopf (the operator extra).
    from tradefleet_operator import objects
    from tradefleet_operator.settings import OperatorSettings
    from tradefleet_operator.status import Call, RuntimeClients, token_secret_name

    settings = OperatorSettings()
    clients = RuntimeClients(timeout=timeout)
    call = Call("EmergencyStop", reason, flatten)

    async def one(result: FleetResult) -> FleetResult:
        if result.error or result.bot is None:
            return result
        try:
            secret = await api.get(
                api_path("v1", "secrets", result.namespace, token_secret_name(result.name))
            )
            tokens = objects.tokens_from_secret(secret)
            if tokens is None:
                return result
            address = objects.runtime_address(result.bot, settings)
            await asyncio.wait_for(clients.invoke(address, tokens.control, call), timeout)
        except Exception:  # unreachable, forbidden, slow: the operator will do it
            return result
        return FleetResult(result.namespace, result.name, halted_directly=True, bot=result.bot)

    try:
        return list(await asyncio.gather(*(one(result) for result in results)))
    finally:
        await clients.close()


def add_fleet_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fleet stop`` and ``fleet resume`` to the ``tradefleet`` CLI's subparsers."""
    fleet: argparse.ArgumentParser = subparsers.add_parser(
        "fleet", help="act on many TradingBots at once (by label)"
    )
    commands = fleet.add_subparsers(dest="fleet_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--selector", "-l", required=True, help="label selector, e.g. team=a,tier!=canary"
        )
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--namespace", "-n", help="only this namespace (default: current)")
        scope.add_argument("--all-namespaces", "-A", action="store_true", help="every namespace")
        parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")

    stop = commands.add_parser("stop", help="emergency-stop every matching bot")
    common(stop)
    stop.add_argument("--reason", required=True, help="why; journaled by every bot")
    stop.add_argument("--flatten", action="store_true", help="also close every position")
    stop.add_argument(
        "--no-direct",
        action="store_true",
        help="only patch the specs; do not also call the runtimes (the operator will)",
    )
    resume = commands.add_parser("resume", help="clear the emergency stop of every matching bot")
    common(resume)
    return fleet


def _namespace(args: argparse.Namespace, api: KubeApi) -> str | None:
    if args.all_namespaces:
        return None
    return str(args.namespace or api.info.default_namespace or "default")


async def _run(args: argparse.Namespace) -> int:
    parse_selector(args.selector)  # refuse a bad selector before touching anything
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    api = KubeApi.from_environment()
    try:
        namespace = _namespace(args, api)
        if args.fleet_command == "stop":
            stop: dict[str, Any] | None = {"reason": args.reason, "flatten": bool(args.flatten)}
        else:
            stop = None
        results = await set_emergency_stop(
            api, selector=args.selector, namespace=namespace, stop=stop
        )
        if stop is not None and not args.no_direct:
            results = await halt_directly(api, results, args.reason, bool(args.flatten))
    finally:
        await api.close()
    verb = "stopped" if args.fleet_command == "stop" else "resumed"
    failed = [result for result in results if result.error]
    for result in results:
        line = f"{result.namespace}/{result.name}: "
        how = " (halted directly)" if result.halted_directly else ""
        print(line + (f"FAILED {result.error}" if result.error else verb + how))
    print(f"{len(results) - len(failed)} of {len(results)} bots {verb}")
    return 1 if failed or not results else 0


def run_fleet_command(args: argparse.Namespace) -> int:
    """Run a parsed ``fleet`` command; 0 when every matching bot was patched (and some did)."""
    try:
        return asyncio.run(_run(args))
    except ValueError as error:
        print(f"tradefleet fleet: {error}", file=sys.stderr)
        return 2
    except KubeError as error:
        print(f"tradefleet fleet: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tradefleet_operator.fleet stop ...`` (for use before the CLI wiring)."""
    parser = argparse.ArgumentParser(prog="tradefleet")
    add_fleet_commands(parser.add_subparsers(dest="command", required=True))
    return run_fleet_command(parser.parse_args(["fleet", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    raise SystemExit(main())
