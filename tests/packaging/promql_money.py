"""Does a PromQL expression keep money apart by currency? (A static check on the parsed query.)

Every runtime series holding an amount of money carries a ``currency`` label
(``tradefleet_runtime.service.metrics.MONEY_SERIES``). A query may add bots up only within one
currency: ``sum by (namespace, currency) (tradefleet_equity)`` is fine, ``sum
(tradefleet_equity)`` adds USD, USDT and BTC accounts together. This module walks the syntax
tree (``promql_parser``, the Rust parser's Python binding) and follows, for every
sub-expression, whether its value is money (computed from a money series) and whether its
result still carries ``currency``. A money sub-expression whose result has lost ``currency`` is a
problem, reported once where it was lost:

- an aggregation (``sum``, ``avg``, ``min``, ``max``, ``quantile``, ``stddev``…) without
  ``by (…, currency)`` or with ``without (…, currency …)``; ``count`` and ``group`` count
  series, ``topk``/``bottomk`` select them: their results are not sums of money;
- one-to-one vector matching ``on (…)`` without ``currency`` or ``ignoring (…, currency)``
  (the result keeps only the matched labels); ``group_left``/``group_right`` keep the many
  side's labels plus the listed ones;
- ``label_replace``/``label_join`` writing ``currency``, and ``scalar()``/``absent()`` of money;
  other functions (``rate``, ``abs``, ``clamp_min``…) keep their argument's labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import promql_parser as pp

CURRENCY = "currency"
#: Aggregations whose value is not an amount: they count or pick series.
_COUNTING = {"count", "group", "count_values"}
_SELECTING = {"topk", "bottomk", "limitk", "limit_ratio"}
#: Functions whose result has no labels (or not the argument's).
_LABEL_DROPPING = {"scalar", "vector", "time", "absent", "absent_over_time", "pi"}
_SET_OPS = {"and", "or", "unless"}
_COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}


@dataclass(frozen=True)
class Flow:
    """What a sub-expression yields: money or not, and whether its result carries currency."""

    money: bool
    currency: bool


NOT_MONEY = Flow(money=False, currency=False)


class MoneyCheck:
    """Walks one expression; ``problems`` lists where money lost its currency."""

    def __init__(self, money_series: frozenset[str] | set[str]) -> None:
        self.money_series = frozenset(money_series)
        self.problems: list[str] = []

    def check(self, expr: str) -> list[str]:
        self.problems = []
        self._walk(pp.parse(expr))
        return list(self.problems)

    def _lost(self, node: Any, why: str) -> None:
        self.problems.append(f"{why}: {node}")

    def _walk(self, node: Any) -> Flow:
        if isinstance(node, pp.VectorSelector):
            labels = {m.name for m in node.matchers.matchers} if node.matchers else set()
            name = node.name or ""
            if name in self.money_series:
                return Flow(money=True, currency=True)
            # Series that are not money may still carry currency (tradefleet_bot_info).
            return Flow(money=False, currency=CURRENCY in labels or name.endswith("_bot_info"))
        if isinstance(node, pp.MatrixSelector):
            return self._walk(node.vector_selector)
        if isinstance(node, pp.SubqueryExpr | pp.ParenExpr | pp.UnaryExpr):
            return self._walk(node.expr)
        if isinstance(node, pp.NumberLiteral | pp.StringLiteral):
            return NOT_MONEY
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node)
        raise TypeError(f"unknown PromQL node {type(node).__name__}: {node}")

    def _call(self, node: Any) -> Flow:
        flows = [self._walk(arg) for arg in node.args]
        name = node.func.name
        vectors = [f for f in flows if f.money or f.currency]
        if not vectors:
            return NOT_MONEY
        flow = vectors[0]
        if name in _LABEL_DROPPING:
            if flow.money:
                self._lost(node, f"{name}() drops the labels of money")
            return NOT_MONEY
        if name in ("label_replace", "label_join") and flow.money:
            target = node.args[1]
            if isinstance(target, pp.StringLiteral) and target.val == CURRENCY:
                self._lost(node, f"{name}() overwrites currency")
                return Flow(money=True, currency=False)
        return flow

    def _aggregate(self, node: Any) -> Flow:
        inner = self._walk(node.expr)
        op = str(node.op)
        if op in _COUNTING:
            return NOT_MONEY
        if op in _SELECTING:
            return inner
        modifier = node.modifier
        if modifier is None:
            kept = False
        elif modifier.type == pp.AggModifierType.By:
            kept = CURRENCY in modifier.labels
        else:
            kept = CURRENCY not in modifier.labels
        kept = kept and inner.currency
        if inner.money and inner.currency and not kept:
            self._lost(node, f"{op} adds money of different currencies (group by currency)")
        return Flow(money=inner.money, currency=kept)

    def _binary(self, node: Any) -> Flow:
        lhs, rhs = self._walk(node.lhs), self._walk(node.rhs)
        op = str(node.op)
        modifier = node.modifier
        returns_bool = bool(modifier is not None and modifier.return_bool)
        if op in _COMPARISONS:
            money = lhs.money and not returns_bool  # a filter keeps the left value
        elif op in _SET_OPS:
            money = lhs.money if op != "or" else lhs.money or rhs.money
        else:
            money = lhs.money or rhs.money
        scalar_side = _is_scalar(node.lhs) or _is_scalar(node.rhs)
        if scalar_side:
            currency = lhs.currency or rhs.currency
        elif op in ("and", "unless"):
            currency = lhs.currency
        elif op == "or":
            currency = all(f.currency for f in (lhs, rhs) if f.money) if money else False
        else:
            currency = _matched_currency(modifier, lhs, rhs)
        inputs_kept = all(f.currency for f in (lhs, rhs) if f.money)
        if money and inputs_kept and not currency:
            self._lost(node, f"{op} drops currency (match on it, or group_left)")
        return Flow(money=money, currency=currency)


def _is_scalar(node: Any) -> bool:
    while isinstance(node, pp.ParenExpr | pp.UnaryExpr):
        node = node.expr
    if isinstance(node, pp.NumberLiteral):
        return True
    if isinstance(node, pp.Call) and node.func.name in ("scalar", "time", "pi"):
        return True
    if isinstance(node, pp.BinaryExpr):
        return _is_scalar(node.lhs) and _is_scalar(node.rhs)
    return False


def _matched_currency(modifier: Any, lhs: Flow, rhs: Flow) -> bool:
    """Whether a vector/vector arithmetic or comparison result carries currency."""
    matching = modifier.matching if modifier is not None else None
    card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
    if card == pp.VectorMatchCardinality.ManyToOne:  # group_left: the left side's labels
        return lhs.currency or (CURRENCY in modifier.group_labels and rhs.currency)
    if card == pp.VectorMatchCardinality.OneToMany:  # group_right: the right side's labels
        return rhs.currency or (CURRENCY in modifier.group_labels and lhs.currency)
    if matching is None:  # all labels matched: both sides have the same ones
        return lhs.currency or rhs.currency
    if matching.type == pp.LabelModifierType.Include:  # on (...): only those labels remain
        return CURRENCY in matching.labels and (lhs.currency or rhs.currency)
    return CURRENCY not in matching.labels and (lhs.currency or rhs.currency)  # ignoring (...)


def money_problems(expr: str, money_series: frozenset[str] | set[str]) -> list[str]:
    """Where ``expr`` loses the currency of a money series (empty: it keeps it everywhere)."""
    return MoneyCheck(money_series).check(expr)


def touches_money(expr: str, money_series: frozenset[str] | set[str]) -> bool:
    """Whether ``expr`` reads any money series."""
    found = False

    def visit(node: Any) -> None:
        nonlocal found
        if isinstance(node, pp.VectorSelector) and (node.name or "") in money_series:
            found = True
        for attr in ("expr", "lhs", "rhs", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, str):
                visit(child)
        for arg in getattr(node, "args", None) or []:
            visit(arg)

    visit(pp.parse(expr))
    return found
