"""Kubernetes resource quantities (``512Mi``, ``1Gi``, ``500m``, ``2``), checked before the API
server sees them (pure: no I/O).

A TradingBot's ``spec.runtime.resources`` and ``spec.runtime.journal.size`` are copied into the
bot's Deployment and journal claim. A value the API server refuses there would be reported
against a field of those objects (``spec.template.spec.containers[0].resources...``) that the
user never wrote, after the ConfigMap was already rewritten; so admission refuses it first,
naming the TradingBot's field, and the CRD carries :data:`QUANTITY_PATTERN`.

The grammar is apimachinery's ``resource.ParseQuantity`` (the official ``kubernetes`` client is
not a dependency: ARCHITECTURE.md, "Kubernetes client")::

    quantity  ::= [+-] number [suffix]
    number    ::= digits | digits "." [digits] | "." digits
    suffix    ::= Ki | Mi | Gi | Ti | Pi | Ei          (powers of 1024)
                | n | u | m | k | M | G | T | P | E   (powers of 1000)
                | (e | E) [+-] digits                 (a power of ten, a 32-bit integer)

An exponent with a fraction (``1e1.5``), which some published patterns let through, is refused
by Kubernetes and here.

Two readers: admission refuses every problem (:func:`spec_quantity_errors`), those Kubernetes
refuses and those that cannot be meant (half a byte); a reconcile writes none of a bot's objects
while one of them holds a value the API server refuses (:func:`kubernetes_refusals`), and only
those: a running bot whose ``requests.memory: 500m`` Kubernetes took (it only warns) must still
get its other changes applied. So the second reads a value as kube-apiserver does where it
differs: spaces around a quantity trimmed (``Quantity.UnmarshalJSON``), hugepages rounded up to a
whole byte before they are counted in pages (``Quantity.Value``).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradefleet_runtime.errors import FieldError

__all__ = [
    "BYTE_RESOURCES",
    "QUANTITY_PATTERN",
    "STANDARD_RESOURCES",
    "journal_size_errors",
    "kubernetes_refusals",
    "parse_quantity",
    "resources_errors",
    "spec_quantity_errors",
]

#: The quantity grammar as a regular expression that both RE2 (the API server's CRD ``pattern``)
#: and Python's ``re`` read alike.
QUANTITY_PATTERN = (
    r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)
_SPLIT = re.compile(r"([+-]?[0-9.]+)(.*)", re.DOTALL)

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# apimachinery reads the exponent with strconv.ParseInt(..., 32).
_INT32 = 2**31
# Exact enough to compare a request with its limit, whatever the exponent (no overflow).
_CONTEXT = decimal.Context(prec=64, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)

EXAMPLES = "(e.g. 512Mi, 1Gi, 500m)"

#: Resources a container may ask for without a domain (apimachinery's
#: ``IsStandardContainerResourceName``; ``hugepages-<size>`` too).
STANDARD_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
#: Resources counted in bytes (``storage``: the journal's claim): a fraction of a byte is a slip
#: (``500m`` is half a byte).
BYTE_RESOURCES = frozenset({"memory", "ephemeral-storage", "storage"})
_SECTIONS = ("limits", "requests")
_HUGEPAGES = "hugepages-"
# A name with this in it is Kubernetes' own (``IsNativeResource``), not an extended resource.
_NATIVE_DOMAIN = "kubernetes.io/"


def parse_quantity(value: str | int) -> Decimal:
    """The amount ``value`` stands for (``"1Ki"`` → 1024, ``"500m"`` → 0.5); ValueError when
    Kubernetes would refuse it, saying so with examples."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity {EXAMPLES}")
    if isinstance(value, int):
        return Decimal(value)
    found = _SPLIT.fullmatch(value) if _QUANTITY.fullmatch(value) else None
    if found is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity {EXAMPLES}")
    number, suffix = Decimal(found.group(1)), found.group(2)
    if suffix in _BINARY:
        return _CONTEXT.multiply(number, Decimal(1024 ** _BINARY[suffix]))
    exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
    if not -_INT32 <= exponent < _INT32:
        raise ValueError(f"{value!r} is not a Kubernetes quantity {EXAMPLES}: exponent too large")
    return number.scaleb(exponent, _CONTEXT)


#: apimachinery's ``IsQualifiedName``: an optional DNS-1123 subdomain prefix and "/", then a name
#: of at most 63 characters.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
#: Kubernetes' quota names of requests (``requests.example.com/gpu``): an extended resource's
#: name must still be a qualified name with it in front (``IsExtendedResourceName``).
_REQUESTS_PREFIX = "requests."


def _is_qualified_name(value: str) -> bool:
    """apimachinery's ``IsQualifiedName`` (``example.com/gpu``, ``gpu``)."""
    prefix, slash, name = value.rpartition("/")
    if slash and ("/" in prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME_PART.fullmatch(name) is not None


def _is_resource_name(name: str) -> bool:
    """A name a container's resources may use: a standard one, ``hugepages-<quantity>``, or a
    qualified name with a domain (``example.com/gpu``) that, outside kubernetes.io, is an
    extended resource's (kube-apiserver's ``validateContainerResourceName``)."""
    if not _is_qualified_name(name):
        return False
    if "/" in name:
        if _NATIVE_DOMAIN in name:
            return True
        return not name.startswith(_REQUESTS_PREFIX) and _is_qualified_name(_REQUESTS_PREFIX + name)
    if name.startswith(_HUGEPAGES):
        try:
            page = parse_quantity(name.removeprefix(_HUGEPAGES))
        except ValueError:
            return False
        return page > 0 and page == page.to_integral_value()  # a page of whole bytes
    return name in STANDARD_RESOURCES


def _counts_bytes(name: str) -> bool:
    return name in BYTE_RESOURCES or name.startswith(_HUGEPAGES)


def _is_extended(name: str) -> bool:
    """An extended resource (``example.com/gpu``): a name with a domain outside kubernetes.io
    (apimachinery's ``IsExtendedResourceName``), which Kubernetes counts in whole units."""
    return "/" in name and _NATIVE_DOMAIN not in name


def _overcommits(name: str) -> bool:
    """Whether a request may be below its limit (apimachinery's ``IsOvercommitAllowed``): not
    for an extended resource, nor for hugepages, whose request must equal its limit and, when
    written, needs one."""
    return not _is_extended(name) and not name.startswith(_HUGEPAGES)


@dataclass(frozen=True)
class _Amount:
    field: str
    text: str
    value: Decimal


@dataclass(frozen=True)
class _Problem:
    """One problem of a value, and whether kube-apiserver refuses an object holding it (the
    others it takes, at most with a warning)."""

    error: FieldError
    refused: bool = True


def _milli_whole(amount: Decimal) -> bool:
    """Kubernetes' whole-unit test of an extended resource: the amount in thousandths, rounded
    up (``Quantity.MilliValue``), a multiple of 1000 (so 0.9999 passes as 1)."""
    millis = _CONTEXT.multiply(amount, Decimal(1000)).to_integral_value(decimal.ROUND_CEILING)
    return millis % 1000 == 0


def _amount_errors(field: str, name: str, value: Any) -> tuple[list[_Problem], Decimal | None]:
    """One resource value: its problems, and the amount when Kubernetes takes the value (a
    request is compared with its limit only then)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return [], None  # the spec model names a value of the wrong type
    if isinstance(value, str) and value.strip(" ") != value and _is_quantity(value.strip(" ")):
        # kube-apiserver trims spaces around a quantity (Quantity.UnmarshalJSON) and stores it:
        # no refusal. Only the space: a tab or newline reaches it escaped in JSON, untrimmed.
        trimmed = value.strip(" ")
        spaced = FieldError(field, f"{value!r} has spaces around it: write {trimmed!r}")
        found, amount = _amount_errors(field, name, trimmed)
        return [_Problem(spaced, refused=False), *found], amount
    try:
        amount = parse_quantity(value)
    except ValueError as error:
        return [_Problem(FieldError(field, str(error)))], None
    if amount < 0:
        return [
            _Problem(FieldError(field, f"{value!r} is negative: a quantity is 0 or more"))
        ], None
    if name.startswith(_HUGEPAGES):
        return _hugepages_problems(field, name, value, amount)
    if _counts_bytes(name) and amount != amount.to_integral_value():
        # Kubernetes only warns of a fractional byte.
        return [_Problem(FieldError(field, _fraction_of_a_byte(value, amount)), False)], amount
    if _is_extended(name) and amount != amount.to_integral_value():
        # Kubernetes checks the value rounded up to a thousandth (0.9999 passes there as a
        # whole 1): any fraction is refused here, as no device comes in part.
        said = f"{value!r} is not a whole number: Kubernetes counts an extended resource"
        refused = not _milli_whole(amount)
        problem = _Problem(
            FieldError(field, f"{said} ({name}) in whole units (e.g. 1, 2)"), refused
        )
        return [problem], None if refused else amount
    return [], amount


def _is_quantity(value: str) -> bool:
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True


def _hugepages_problems(
    field: str, name: str, value: str | int, amount: Decimal
) -> tuple[list[_Problem], Decimal | None]:
    """A ``hugepages-<size>`` value (0 or more): Kubernetes takes a whole number of pages of the
    amount rounded up to a whole byte (``Quantity.Value``), so a fraction of a byte is refused
    only when that is not whole pages; admission refuses any."""
    if not _whole_pages(name, amount.to_integral_value(decimal.ROUND_CEILING)):
        if amount != amount.to_integral_value():
            return [_Problem(FieldError(field, _fraction_of_a_byte(value, amount)))], None
        return [_Problem(FieldError(field, _not_whole_pages(value, name)))], None
    if amount != amount.to_integral_value():
        return [_Problem(FieldError(field, _fraction_of_a_byte(value, amount)), False)], amount
    return [], amount


def _whole_pages(name: str, amount: Decimal) -> bool:
    """Kubernetes' ``IsHugePageResourceValueDivisible``: a whole number of pages (0 included)
    of ``name``'s page size (a positive whole number of bytes: :func:`_is_resource_name`)."""
    page = parse_quantity(name.removeprefix(_HUGEPAGES))
    try:
        return _CONTEXT.remainder(amount, page) == 0
    except decimal.InvalidOperation:  # more than 10**64 pages: no machine has them
        return False


def _not_whole_pages(value: str | int, name: str) -> str:
    size = name.removeprefix(_HUGEPAGES)
    return (
        f"{value!r} is not a whole number of {size} pages: Kubernetes takes {name} only in "
        f"multiples of {size}"
    )


def _fraction_of_a_byte(value: str | int, amount: Decimal) -> str:
    # Written out in full only when short: 1e-2000000000 has two billion digits that way.
    shown = f"{amount.normalize(_CONTEXT):f}" if amount.adjusted() > -30 else f"{amount:.3e}"
    said = f"{value!r} is {shown} bytes, not a whole number of bytes"
    if isinstance(value, str) and value.endswith("m"):
        # The usual slip: m is milli, not mega.
        return f"{said} (m is milli: write {value[:-1]}Mi for mebibytes)"
    return f"{said} {EXAMPLES}"


def resources_errors(resources: Any, path: str) -> list[FieldError]:
    """The problems of a container's ``resources`` (``limits``/``requests`` → name → quantity)
    the API server would refuse, or that cannot be meant, each naming its field under ``path``:
    another section than limits or requests, a resource name a container cannot ask for, a
    value that is no quantity, is negative, (for bytes) a fraction of a byte or (for an
    extended resource) not a whole number, a request above its limit (naming both), and for
    an extended resource or hugepages a request other than its limit or without one."""
    return [problem.error for problem in _resource_problems(resources, path)]


def _resource_problems(resources: Any, path: str) -> list[_Problem]:
    if not isinstance(resources, Mapping):
        return []  # the spec model names it
    problems: list[_Problem] = []
    amounts: dict[tuple[str, str], _Amount] = {}
    written: set[tuple[str, str]] = set()  # valid names, whatever their value
    for section, entries in resources.items():
        where = f"{path}.{section}"
        if section not in _SECTIONS:
            # An unknown field of a container's resources is dropped by the API server, with a
            # warning; ``claims`` is a list there, and a mapping in its place is refused.
            said = f"{section!r} is not limits or requests (as in a Pod spec)"
            problems.append(_Problem(FieldError(where, said), refused=section == "claims"))
            continue
        if not isinstance(entries, Mapping):
            continue  # the spec model names it
        for name, value in entries.items():
            field = f"{where}.{name}"
            if not _is_resource_name(str(name)):
                problems.append(_Problem(FieldError(field, _unknown_resource(str(name)))))
                continue
            written.add((section, str(name)))
            found, amount = _amount_errors(field, str(name), value)
            problems.extend(found)
            if amount is not None:
                amounts[(section, str(name))] = _Amount(field, str(value), amount)
    problems.extend(_Problem(error) for error in _requests_above_limits(amounts))
    problems.extend(_Problem(error) for error in _requests_without_limits(written, path))
    problems.extend(_Problem(error) for error in _hugepages_alone(written, path))
    return problems


def _hugepages_alone(written: set[tuple[str, str]], path: str) -> list[FieldError]:
    """Hugepages with neither cpu nor memory in the limits or requests: Kubernetes refuses the
    container ("HugePages require cpu or memory")."""
    names = {name for _, name in written}
    if not any(name.startswith(_HUGEPAGES) for name in names) or names & {"cpu", "memory"}:
        return []
    return [
        FieldError(
            path,
            "hugepages without cpu or memory: Kubernetes requires a cpu or memory limit or "
            "request beside them (e.g. limits.memory: 1Gi)",
        )
    ]


def _unknown_resource(name: str) -> str:
    if "/" in name:
        return (
            f"{name!r} is not a resource name Kubernetes takes: a lowercase domain, '/', then a "
            "name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a "
            "letter or digit (example.com/gpu); not under requests."
        )
    return (
        f"{name!r} is not a resource a container can ask for: cpu, memory, ephemeral-storage, "
        "hugepages-<size>, or an extended resource with its domain (example.com/gpu)"
    )


def _requests_above_limits(amounts: Mapping[tuple[str, str], _Amount]) -> list[FieldError]:
    """A request above its limit; for a resource that does not overcommit, any other than it."""
    errors = []
    for (section, name), request in amounts.items():
        limit = amounts.get(("limits", name))
        if section != "requests" or limit is None or request.value == limit.value:
            continue
        if not _overcommits(name):
            errors.append(FieldError(request.field, _not_its_limit(name, request, limit)))
        elif request.value > limit.value:
            errors.append(
                FieldError(
                    request.field,
                    f"{request.text!r} is above {limit.field} ({limit.text!r}): a container's "
                    "request cannot exceed its limit",
                )
            )
    return errors


def _not_its_limit(name: str, request: _Amount, limit: _Amount) -> str:
    return (
        f"{request.text!r} is not {limit.field} ({limit.text!r}): Kubernetes requires {name}'s "
        "request to equal its limit (it cannot be overcommitted); write the limit alone and "
        "the request is set to it"
    )


def _requests_without_limits(written: set[tuple[str, str]], path: str) -> list[FieldError]:
    """A request with no limit of a resource that does not overcommit: Kubernetes refuses it
    ("Limit must be set"). Named at the request, the value the user wrote."""
    errors = []
    for section, name in sorted(written):
        if section == "requests" and not _overcommits(name) and ("limits", name) not in written:
            errors.append(
                FieldError(
                    f"{path}.requests.{name}",
                    f"no {path}.limits.{name}: Kubernetes requires a limit for {name} (it "
                    "cannot be overcommitted, so its request must equal its limit); write the "
                    "limit alone and the request is set to it",
                )
            )
    return errors


def journal_size_errors(size: Any, field: str) -> list[FieldError]:
    """The journal claim's size: a quantity of whole bytes, more than 0 (the API server refuses a
    claim of none)."""
    return [problem.error for problem in _journal_problems(size, field)]


def _journal_problems(size: Any, field: str) -> list[_Problem]:
    if not isinstance(size, str):
        return []  # the spec model names it
    found, amount = _amount_errors(field, "storage", size)
    if amount == 0:
        return [
            _Problem(FieldError(field, f"{size!r} is no space: the journal's claim needs some"))
        ]
    return found


RESOURCES_FIELD = "spec.runtime.resources"
JOURNAL_SIZE_FIELD = "spec.runtime.journal.size"


def spec_quantity_errors(spec: Any) -> list[FieldError]:
    """The quantity problems of an unparsed TradingBot spec (``spec.runtime.resources`` and
    ``spec.runtime.journal.size``); values of a wrong type are the model's to name."""
    runtime = spec.get("runtime") if isinstance(spec, Mapping) else None
    if not isinstance(runtime, Mapping):
        return []
    errors = resources_errors(runtime.get("resources"), RESOURCES_FIELD)
    journal = runtime.get("journal")
    if isinstance(journal, Mapping):
        errors.extend(journal_size_errors(journal.get("size"), JOURNAL_SIZE_FIELD))
    return errors


def kubernetes_refusals(resources: Any, journal_size: Any) -> list[FieldError]:
    """What kube-apiserver would refuse in the objects a bot's spec is written into: its
    container ``resources`` (the Deployment) and ``journal_size`` (the claim; None when the
    journal is ephemeral and no claim is made), named by the TradingBot's fields.

    Only refusals: a value Kubernetes takes, at most warning (half a byte of memory, an unknown
    section it drops), is not one, whatever admission says of it."""
    problems = _resource_problems(resources, RESOURCES_FIELD)
    if journal_size is not None:
        problems += _journal_problems(journal_size, JOURNAL_SIZE_FIELD)
    return [problem.error for problem in problems if problem.refused]
