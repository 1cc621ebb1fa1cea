"""While the operator is down, the API server refuses every TradingBot whose spec says live.

The admission webhooks are chosen by the label ``tradefleet.io/mode``, not by ``spec.mode``
(``handlers.register_admission``): ``validate-live`` and ``validate-unlabelled`` fail closed,
``validate-paper`` and ``validate-backtest`` fail open, and the label is set by a mutating
webhook that itself fails open. A live bot still labelled ``paper`` (made from ``kubectl get tb
eurusd-paper -o yaml``, or a paper bot patched to ``spec.mode: live``: the API server calls a
webhook whose objectSelector matches the new or the old object) would meet only the fail-open
webhook. The chart's ValidatingAdmissionPolicy (``templates/admission-policy.yaml``) runs inside
the API server and refuses a label that disagrees with ``spec.mode``.

These tests evaluate, as kube-apiserver does with the webhook server unreachable, the webhooks
kopf registers for the operator and the policy the install ships (``manifests/tradefleet.yaml``,
the chart's default rendering, kept current by ``tests/packaging/test_manifests.py``). The
policy's CEL expression is evaluated as written by :func:`_cel`, a translator of the small
subset it uses, which refuses any other CEL; the policy's match rules and its binding are
checked field by field, and anything that could narrow them fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml
from kopf._cogs.structs import references
from kopf._core.engines.admission import build_webhooks
from kopf._core.intents.causes import WebhookType

from tradefleet_operator import handlers

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "manifests" / "tradefleet.yaml"
GROUP, VERSION, PLURAL = "tradefleet.io", "v1alpha1", "tradingbots"


# --- the webhooks, as kopf registers them ---------------------------------------------------------


def _validating_webhooks() -> list[dict[str, Any]]:
    registry = kopf.OperatorRegistry()
    handlers.register_admission(registry)
    validating = [
        h for h in registry._webhooks.get_all_handlers() if h.reason == WebhookType.VALIDATING
    ]
    resource = references.Resource(group=GROUP, version=VERSION, plural=PLURAL, namespaced=True)
    return build_webhooks(
        validating, resources=[resource], name_suffix="x", client_config={"url": "https://op"}
    )


def _matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector's matchExpressions and matchLabels, as the API server evaluates them."""
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return all(labels.get(k) == v for k, v in ((selector or {}).get("matchLabels") or {}).items())


def _rule_matches(rule: Mapping[str, Any], operation: str) -> bool:
    """A RuleWithOperations (webhook ``rules``, policy ``resourceRules``) for a TradingBot."""

    def has(field: str, value: str) -> bool:
        return bool({value, "*"} & set(rule.get(field) or []))

    return (
        has("apiGroups", GROUP)
        and has("apiVersions", VERSION)
        and has("resources", PLURAL)
        and has("operations", operation)
    )


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return obj["metadata"].get("labels") or {}


def _webhooks_refuse(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """The webhook server unreachable: the mutating webhook (Ignore) changes nothing; a
    validating webhook is called when its objectSelector matches the new or the old object, and
    its failed call refuses the request only under ``failurePolicy: Fail``."""
    operation = "CREATE" if old is None else "UPDATE"
    objects = [new] if old is None else [new, old]
    for hook in _validating_webhooks():
        if not any(_rule_matches(rule, operation) for rule in hook["rules"]):
            continue
        called = any(_matches(hook.get("objectSelector"), _labels(o)) for o in objects)
        if called and hook["failurePolicy"] == "Fail":
            return True
    return False


# --- the chart's ValidatingAdmissionPolicy, evaluated ---------------------------------------------


class _CelError(Exception):
    """A CEL evaluation error (e.g. selecting a field that is absent)."""


def _select(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise _CelError(f"no such key: {part}")
        value = value[part]
    return value


def _has(value: Any, path: str) -> bool:
    """CEL ``has(x.a.b)``: is ``b`` a key of ``x.a`` (an error if ``x.a`` is absent)."""
    *parents, last = path.split(".")
    parent = _select(value, ".".join(parents)) if parents else value
    if not isinstance(parent, Mapping):
        raise _CelError(f"has() on a non-object: {path}")
    return last in parent


_TOKEN = re.compile(
    r"(?P<space>\s+)|has\(object(?P<has>(?:\.[A-Za-z]++)++)\)"
    r"|object(?P<select>(?:\.[A-Za-z]++)++)(?!\()"
    r"|(?P<string>'[^'\\]*')|(?P<op>&&|\|\||==|!=|!|\bin\b|[()\[\]])|(?P<other>.)"
)
_PYTHON_OPS = {"&&": " and ", "||": " or ", "!": " not ", "in": " in "}


def _cel(expression: str, obj: Mapping[str, Any]) -> bool:
    """Evaluate ``expression`` with ``object`` bound to ``obj``; :class:`_CelError` on a CEL
    error. The subset: ``object.a.b``, ``has(object.a.b)``, ``'literal'``, ``m[k]``, ``k in m``,
    ``==``, ``!=``, ``&&``, ``||``, parentheses, and ``!`` only before ``(`` or ``has(`` (CEL's
    ``!`` binds tighter than ``==``, Python's ``not`` looser). It means in Python what it means
    in CEL on JSON objects."""
    python = []
    tokens = list(_TOKEN.finditer(expression))
    for index, token in enumerate(tokens):
        kind, text = token.lastgroup, token.group()
        assert kind != "other", f"CEL the test does not understand: {text!r} in {expression!r}"
        if kind == "has":
            python.append(f"_has(object, {token.group('has')[1:]!r})")
        elif kind == "select":
            python.append(f"_select(object, {token.group('select')[1:]!r})")
        elif kind == "op" and text == "!":
            following = next(t for t in tokens[index + 1 :] if t.lastgroup != "space")
            assert following.group().startswith(("(", "has(")), f"! before {following.group()!r}"
            python.append(_PYTHON_OPS[text])
        else:
            python.append(_PYTHON_OPS.get(text, text))
    try:
        result = eval(  # the expression was translated token by token above
            "".join(python), {"__builtins__": {}, "_has": _has, "_select": _select, "object": obj}
        )
    except (KeyError, TypeError) as error:  # m[k] with k absent; a wrong type
        raise _CelError(str(error)) from error
    assert isinstance(result, bool), f"{expression!r} gave {result!r}, not a bool"
    return result


def _install_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(INSTALL.read_text()) if doc]


def _bound_policies() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicies a Deny binding enforces on every TradingBot."""
    docs = _install_documents()
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"}
    bound = []
    for binding in (d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"):
        spec = binding["spec"]
        # Nothing narrows the binding (no namespaces or objects left out, no params to miss).
        assert set(spec) == {"policyName", "validationActions"}, spec
        if "Deny" in spec["validationActions"]:
            bound.append(policies[spec["policyName"]])
    return bound


def _policy_refuses(policy: Mapping[str, Any], new: Mapping[str, Any], operation: str) -> bool:
    spec = policy["spec"]
    constraints = spec["matchConstraints"]
    # Nothing narrows the match (matchPolicy Equivalent, the default, also sends other versions).
    assert set(constraints) == {"resourceRules"}, constraints
    assert set(spec) <= {"failurePolicy", "matchConstraints", "validations"}, spec
    if not any(_rule_matches(rule, operation) for rule in constraints["resourceRules"]):
        return False
    for validation in spec["validations"]:
        try:
            if not _cel(validation["expression"], new):
                return True
        except _CelError:
            if spec.get("failurePolicy", "Fail") == "Fail":
                return True
    return False


def _policies_refuse(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    operation = "CREATE" if old is None else "UPDATE"
    return any(_policy_refuses(policy, new, operation) for policy in _bound_policies())


def _refused_while_operator_down(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    return _webhooks_refuse(new, old) or _policies_refuse(new, old)


# --- bots -----------------------------------------------------------------------------------------


def _paper_bot() -> dict[str, Any]:
    """``kubectl get tb eurusd-paper -o yaml`` after the mutating webhook labelled it."""
    bot: dict[str, Any] = yaml.safe_load((ROOT / "examples/bots/eurusd-paper.yaml").read_text())
    bot["metadata"].setdefault("labels", {})[handlers.MODE_LABEL] = "paper"
    bot["metadata"]["namespace"] = "team-a"
    return bot


def _as_mode(bot: dict[str, Any], name: str, mode: str = "live") -> dict[str, Any]:
    other: dict[str, Any] = yaml.safe_load(yaml.safe_dump(bot))
    other["metadata"]["name"] = name
    other["spec"]["mode"] = mode
    if mode == "live":
        other["spec"]["liveConfirmation"] = name
    return other


def _labelled_by_the_operator(bot: dict[str, Any]) -> dict[str, Any]:
    """The bot after the operator's mutating webhook (``handlers.label_mode``) ran."""
    patch = kopf.Patch()
    handlers.label_mode(kopf.Body(cast(kopf.RawBody, bot)), patch)
    labelled: dict[str, Any] = yaml.safe_load(yaml.safe_dump(bot))
    labels = (patch.get("metadata") or {}).get("labels") or {}
    labelled["metadata"].setdefault("labels", {}).update(labels)
    return labelled


# --- tests ----------------------------------------------------------------------------------------


def test_a_live_bot_copied_from_a_paper_bot_is_refused_while_the_operator_is_down() -> None:
    live = _as_mode(_paper_bot(), "eurusd-live")
    assert live["metadata"]["labels"][handlers.MODE_LABEL] == "paper"  # copied along
    assert not _webhooks_refuse(live, None)  # only the fail-open webhook is called...
    assert _refused_while_operator_down(live, None), "a live bot admitted with no admission"


def test_a_paper_bot_patched_to_live_is_refused_while_the_operator_is_down() -> None:
    paper = _paper_bot()
    live = _as_mode(paper, paper["metadata"]["name"])  # the merge patch keeps the label
    assert not _webhooks_refuse(live, paper)
    assert _refused_while_operator_down(live, paper), "paper->live admitted with no admission"


@pytest.mark.parametrize("label", ["paper", "backtest", "Live", "", "anything"])
def test_a_live_spec_under_any_other_label_is_refused(label: str) -> None:
    live = _as_mode(_paper_bot(), "eurusd-live")
    live["metadata"]["labels"][handlers.MODE_LABEL] = label
    assert _refused_while_operator_down(live, None)
    assert _refused_while_operator_down(live, _paper_bot())


def test_live_and_unlabelled_bots_fail_closed_paper_and_backtest_fail_open() -> None:
    """The split the label exists for holds with the policy in place."""
    live = _as_mode(_paper_bot(), "eurusd-live")
    live["metadata"]["labels"][handlers.MODE_LABEL] = "live"
    assert _refused_while_operator_down(live, None)
    assert not _policies_refuse(live, None)  # refused by validate-live, not by the policy
    del live["metadata"]["labels"][handlers.MODE_LABEL]
    assert _refused_while_operator_down(live, None)
    assert not _refused_while_operator_down(_paper_bot(), None)
    backtest = _as_mode(_paper_bot(), "eurusd-backtest", mode="backtest")
    backtest["metadata"]["labels"][handlers.MODE_LABEL] = "backtest"
    assert not _refused_while_operator_down(backtest, None)
    assert not _refused_while_operator_down(backtest, _paper_bot())


@pytest.mark.parametrize("mode", ["backtest", "paper", "live"])
@pytest.mark.parametrize("label", [None, "paper", "live"])
def test_the_policy_admits_every_bot_the_operator_labelled(mode: str, label: str | None) -> None:
    """With the operator up its mutating webhook sets the label first: the policy then never
    refuses (the validating webhook decides)."""
    bot = _as_mode(_paper_bot(), f"eurusd-{mode}", mode=mode)
    if label is None:
        del bot["metadata"]["labels"][handlers.MODE_LABEL]
    else:
        bot["metadata"]["labels"][handlers.MODE_LABEL] = label
    labelled = _labelled_by_the_operator(bot)
    assert labelled["metadata"]["labels"][handlers.MODE_LABEL] == mode
    assert not _policies_refuse(labelled, None)
    assert not _policies_refuse(labelled, bot)


def test_the_policy_admits_a_bot_with_no_labels_at_all() -> None:
    bot = _paper_bot()
    del bot["metadata"]["labels"]
    assert not _policies_refuse(bot, None)
    bot["metadata"]["labels"] = {"team": "fx"}
    assert not _policies_refuse(bot, None)


def test_the_policy_ships_in_the_install_for_tradingbots() -> None:
    (policy,) = _bound_policies()
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == [GROUP] and rule["resources"] == [PLURAL]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (validation,) = policy["spec"]["validations"]
    assert handlers.MODE_LABEL in validation["expression"]
    assert "metadata.labels[tradefleet.io/mode]" in validation["message"]
    assert "spec.mode" in validation["message"]


def test_the_evaluator_refuses_cel_it_does_not_know() -> None:
    obj = {"spec": {"mode": "live"}, "metadata": {}}
    assert _cel("has(object.spec.mode) && object.spec.mode == 'live'", obj)
    assert not _cel("!has(object.metadata.labels)", {"spec": {}, "metadata": {"labels": {}}})
    with pytest.raises(_CelError):
        _cel("object.metadata.labels['x'] == 'y'", obj)
    with pytest.raises(AssertionError, match="does not understand"):
        _cel("object.spec.mode.startsWith('l')", obj)
    with pytest.raises(AssertionError, match="does not understand"):
        _cel("size(object.spec.mode) > 0", obj)
    with pytest.raises(AssertionError, match="! before"):
        _cel("!object.spec.mode == 'live'", obj)
