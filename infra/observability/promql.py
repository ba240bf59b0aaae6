"""The series a PromQL expression reads: metric names and the label names it needs them to carry."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import promql_parser as pp


@dataclass(frozen=True)
class SeriesUse:
    """One metric an expression reads, and which of its labels the expression depends on.

    Attributes:
        metric: Metric name (from the selector's name or its `__name__` matcher).
        labels: Label names matched in the selector, or grouped/matched on above it (`by`, `on`, the extra
            labels of `group_left`/`group_right`), less the ones a `label_replace` above it creates.
    """

    metric: str
    labels: frozenset[str]


class PromQLError(ValueError):
    """An expression that does not parse."""


def parse(expr: str) -> pp.Expr:
    try:
        return pp.parse(expr)
    except Exception as exc:  # the binding raises plain exceptions carrying the parser's message
        raise PromQLError(f"{expr!r}: {exc}") from None


def series_used(expr: str) -> set[SeriesUse]:
    """Every metric read by ``expr`` with the labels the expression needs it to carry.

    A selector that names its metric only by a pattern (`{__name__=~"Requests.XX"}`) is reported with the
    pattern as its name, so that a check against known names fails rather than passes unchecked.
    """
    return set(_walk(parse(expr), frozenset(), frozenset()))


def metric_names(expr: str) -> set[str]:
    return {use.metric for use in series_used(expr)}


def output_labels(expr: str, carried: Mapping[str, frozenset[str]] | None = None) -> frozenset[str]:
    """Labels every series of the result of ``expr`` is sure to carry.

    What an aggregation keeps (`by`), what `label_replace` writes, what a selector matches to a non-empty
    value; through binary operators the side whose labels the result takes. ``carried`` gives the labels
    the series of some metrics are known to carry (those a recording rule produces), added to a selector's.
    Alerts rely on it to carry `team` from their expression, and uses of a recorded metric are checked
    against it.
    """
    return _output(parse(expr), carried or {})


# The binding's MatchOp values are not hashable; key by their names.
_OPERATORS = {"MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def _metric_name(matchers: list[pp.Matcher]) -> str | None:
    for matcher in matchers:
        if matcher.name == "__name__":
            if matcher.op == pp.MatchOp.Equal:
                return matcher.value
            return f"{{__name__{_OPERATORS.get(str(matcher.op), '?')}{matcher.value!r}}}"
    return None


def _label_replace_args(call: pp.Call) -> tuple[str, set[str]]:
    """(label written, labels read) of a `label_replace` or `label_join` call."""
    args = list(call.args)
    target = str(args[1].val) if len(args) > 1 and isinstance(args[1], pp.StringLiteral) else ""
    if call.func.name == "label_join":
        sources = {str(a.val) for a in args[3:] if isinstance(a, pp.StringLiteral)}
    else:
        sources = {str(args[3].val)} if len(args) > 3 and isinstance(args[3], pp.StringLiteral) else set()
    # An empty source label reads nothing: `label_replace(v, "dst", "value", "", "")` only sets a constant.
    return target, {s for s in sources if s}


def _walk(node: object, needed: frozenset[str], created: frozenset[str]) -> Iterator[SeriesUse]:
    if isinstance(node, pp.VectorSelector):
        matchers = node.matchers.matchers
        name = node.name or _metric_name(matchers)
        if name:
            own = frozenset(m.name for m in matchers if m.name != "__name__")
            yield SeriesUse(name, own | (needed - created))
        return
    if isinstance(node, pp.MatrixSelector):
        yield from _walk(node.vector_selector, needed, created)
        return
    if isinstance(node, pp.AggregateExpr):
        modifier = node.modifier
        grouped = frozenset(modifier.labels) if modifier and modifier.type == pp.AggModifierType.By else frozenset()
        yield from _walk(node.expr, needed | grouped, created)
        return
    if isinstance(node, pp.BinaryExpr):
        modifier = node.modifier
        matching = modifier.matching if modifier else None
        on = frozenset(matching.labels) if matching and matching.type == pp.LabelModifierType.Include else frozenset()
        # group_left(x) copies x from the right-hand side (the "one" side); group_right(x) from the left.
        extra = frozenset(modifier.group_labels or ()) if modifier else frozenset()
        card = modifier.card if modifier else None
        lhs_extra = extra if card == pp.VectorMatchCardinality.OneToMany else frozenset()
        rhs_extra = extra if card == pp.VectorMatchCardinality.ManyToOne else frozenset()
        yield from _walk(node.lhs, needed | on | lhs_extra, created)
        yield from _walk(node.rhs, needed | on | rhs_extra, created)
        return
    if isinstance(node, pp.Call):
        args = list(node.args)
        if node.func.name in ("label_replace", "label_join") and len(args) > 1:
            target, sources = _label_replace_args(node)
            yield from _walk(args[0], (needed - {target}) | sources, created | {target})
            return
        for arg in args:
            yield from _walk(arg, needed, created)
        return
    for attr in ("expr",):  # ParenExpr, UnaryExpr, SubqueryExpr
        child = getattr(node, attr, None)
        if child is not None:
            yield from _walk(child, needed, created)


# Functions whose result has no labels at all, or none of their argument's.
_LABELLESS_FUNCTIONS = frozenset({"vector", "time", "scalar", "pi"})
_SET_OPERATORS = frozenset({"and", "unless"})


def _output(node: object, carried: Mapping[str, frozenset[str]]) -> frozenset[str]:
    if isinstance(node, pp.VectorSelector):
        matchers = node.matchers.matchers
        # `label=""` and `label=~".*"` also match series without the label: only a matcher that cannot match
        # the empty string guarantees it.
        matched = frozenset(m.name for m in matchers if m.name != "__name__" and not _matches_empty(m))
        name = node.name or _metric_name(matchers)
        return matched | carried.get(name or "", frozenset())
    if isinstance(node, pp.MatrixSelector):
        return _output(node.vector_selector, carried)
    if isinstance(node, pp.AggregateExpr):
        modifier = node.modifier
        inner = _output(node.expr, carried)
        if modifier and modifier.type == pp.AggModifierType.By:
            kept = frozenset(modifier.labels)
        elif modifier and modifier.type == pp.AggModifierType.Without:
            kept = inner - frozenset(modifier.labels)
        else:
            kept = frozenset()
        if str(node.op) in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner  # these select series, they keep every label
        if str(node.op) == "count_values" and isinstance(node.param, pp.StringLiteral):
            kept |= {str(node.param.val)}
        return kept
    if isinstance(node, pp.BinaryExpr):
        lhs_vector, rhs_vector = _is_vector(node.lhs), _is_vector(node.rhs)
        lhs, rhs = _output(node.lhs, carried), _output(node.rhs, carried)
        if not lhs_vector:
            return rhs
        if not rhs_vector:
            return lhs
        op = str(node.op)
        if op == "or":
            return lhs & rhs
        if op in _SET_OPERATORS:
            return lhs
        modifier = node.modifier
        extra = frozenset(modifier.group_labels or ()) if modifier else frozenset()
        if modifier and modifier.card == pp.VectorMatchCardinality.OneToMany:
            return rhs | extra
        if modifier and modifier.card == pp.VectorMatchCardinality.ManyToOne:
            return lhs | extra
        matching = modifier.matching if modifier else None
        if matching and matching.type == pp.LabelModifierType.Include:
            return lhs & frozenset(matching.labels)
        if matching and matching.type == pp.LabelModifierType.Exclude:
            return lhs - frozenset(matching.labels)
        return lhs
    if isinstance(node, pp.Call):
        name = node.func.name
        args = list(node.args)
        if name in _LABELLESS_FUNCTIONS:
            return frozenset()
        if name in ("absent", "absent_over_time") and args:
            return _equality_labels(args[0])
        if name in ("label_replace", "label_join") and len(args) > 1:
            target, _ = _label_replace_args(node)
            return _output(args[0], carried) | ({target} if target else set())
        vectors = [a for a in args if not isinstance(a, (pp.NumberLiteral, pp.StringLiteral))]
        inner = _output(vectors[0], carried) if vectors else frozenset()
        return inner - {"le"} if name == "histogram_quantile" else inner
    child = getattr(node, "expr", None)  # ParenExpr, UnaryExpr, SubqueryExpr
    return _output(child, carried) if child is not None else frozenset()


def _matches_empty(matcher: pp.Matcher) -> bool:
    if matcher.op == pp.MatchOp.Equal:
        return matcher.value == ""
    if matcher.op == pp.MatchOp.NotEqual:
        return matcher.value != ""
    # Regex matchers: anchored as Prometheus anchors them. Python's syntax is close enough for the
    # question asked here (can this pattern match ""?); a pattern it cannot read counts as "may be empty".
    try:
        found = re.fullmatch(matcher.value, "") is not None
    except re.error:
        return True
    return found if matcher.op == pp.MatchOp.Re else not found


def _equality_labels(node: object) -> frozenset[str]:
    """Labels `absent(selector)` gives its one series: those of the selector's equality matchers."""
    if isinstance(node, pp.MatrixSelector):
        node = node.vector_selector
    if not isinstance(node, pp.VectorSelector):
        return frozenset()
    return frozenset(m.name for m in node.matchers.matchers if m.name != "__name__" and m.op == pp.MatchOp.Equal)


def _is_vector(node: object) -> bool:
    while isinstance(node, (pp.ParenExpr, pp.UnaryExpr)):
        node = node.expr
    if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
        return False
    if isinstance(node, pp.Call) and node.func.name in ("scalar", "time", "pi"):
        return False
    if isinstance(node, pp.BinaryExpr):
        return _is_vector(node.lhs) or _is_vector(node.rhs)
    return True
