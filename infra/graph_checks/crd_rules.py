"""A CRD's CEL validation rules (``x-kubernetes-validations``), evaluated as the API server does on create.

The OpenAPI part of a CRD's schema says what each field may hold; its CEL rules say what fields may hold together
(a NodePool requirement on a label Karpenter reserves, an EC2NodeClass alias with a mismatched AMI family, a
ScaledObject whose minimum exceeds its maximum). The API server applies the schema's defaults, then evaluates each
rule with ``self`` bound to the value of the node that declares it
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules).

Transition rules (those that read ``oldSelf``) judge an update against the stored object and do not apply on create,
so they are left out. Kubernetes adds a few functions to standard CEL; those the pinned CRDs use are provided here
(:data:`KUBERNETES_FUNCTIONS`), with Go's regular expressions (RE2) as the API server has them.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import celpy.evaluation
import re2
from celpy import celtypes


def _find(text: Any, pattern: Any) -> celtypes.StringType:
    match = re2.search(str(pattern), str(text))
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(text: Any, pattern: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(m.group(0)) for m in re2.finditer(str(pattern), str(text))])


def _split(text: Any, separator: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in str(text).split(str(separator))])


def _lower_ascii(text: Any) -> celtypes.StringType:
    return celtypes.StringType(str(text).lower())


def _upper_ascii(text: Any) -> celtypes.StringType:
    return celtypes.StringType(str(text).upper())


# Kubernetes' CEL libraries (regex, strings) as far as the CRDs we validate use them; an undeclared function is
# reported as such, never taken for a broken object.
KUBERNETES_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "find": _find, "findAll": _find_all, "split": _split, "lowerAscii": _lower_ascii, "upperAscii": _upper_ascii,
}


@dataclass(frozen=True)
class RuleViolation:
    """A rule an object breaks: where (a path as a list of keys and indexes), and the CRD's message for it."""

    path: tuple[str | int, ...]
    message: str


class UnsupportedRule(Exception):
    """A rule calls a function this evaluator does not provide: a gap in the check, not a fault of the object."""


# CEL's macros, which the parser reads as calls.
_MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})


def called_functions(rule: str) -> set[str]:
    """The functions and methods ``rule`` calls, macros included."""
    tree = celpy.Environment().compile(rule)
    return {str(node.children[0] if node.data == "ident_arg" else node.children[1])
            for node in tree.iter_subtrees() if node.data in ("ident_arg", "member_dot_arg")}


def unsupported_functions(rule: str) -> set[str]:
    """The functions ``rule`` calls that neither standard CEL here nor :data:`KUBERNETES_FUNCTIONS` provide."""
    known = _MACROS | set(celpy.evaluation.base_functions) | set(KUBERNETES_FUNCTIONS)
    return called_functions(rule) - known


@functools.cache
def _program(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=KUBERNETES_FUNCTIONS)


def with_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` with the schema's ``default`` filled in where a field is absent, as the API server defaults it."""
    if isinstance(value, Mapping):
        value = dict(value)
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = with_defaults(child, value[name])
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            declared = schema.get("properties", {})
            value = {k: v if k in declared else with_defaults(additional, v) for k, v in value.items()}
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        value = [with_defaults(schema["items"], item) for item in value]
    return value


def _nodes(schema: Mapping[str, Any], value: Any,
           path: tuple[str | int, ...] = ()) -> Iterator[tuple[Mapping[str, Any], Any, tuple[str | int, ...]]]:
    # Every (schema node, value, path) pair of the object, parents before their children.
    yield schema, value, path
    if isinstance(value, Mapping):
        declared = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for name, child in value.items():
            if name in declared:
                yield from _nodes(declared[name], child, (*path, name))
            elif isinstance(additional, Mapping):
                yield from _nodes(additional, child, (*path, name))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _nodes(schema["items"], item, (*path, index))


def _holds(rule: str, subject: Any) -> bool:
    try:
        outcome = _program(rule).evaluate({"self": celpy.json_to_cel(subject)})
    except celpy.CELEvalError as exc:
        outcome = exc
    if isinstance(outcome, celpy.CELEvalError):
        if "undeclared reference" in str(outcome):
            raise UnsupportedRule(f"rule {rule!r} calls a function the check does not provide: {outcome}")
        # The API server rejects an object whose rule fails to evaluate (a missing field the rule reads).
        return False
    return bool(outcome)


def _message(validation: Mapping[str, Any]) -> str:
    return str(validation.get("message") or f"failed rule: {validation['rule']}")


def rule_violations(schema: Mapping[str, Any], obj: Any, *, undecided: Iterable[Any] = ()) -> list[RuleViolation]:
    """Every CEL rule of ``schema`` (an openAPIV3Schema) that ``obj`` breaks on create, parents first.

    Args:
        schema: The CRD version's openAPIV3Schema as the CRD file writes it.
        obj: The object as it would be sent.
        undecided: Placeholders for values not known before a deploy; a rule that fails over a value holding one
            is undecided, not broken.

    Raises:
        UnsupportedRule: a rule calls a function outside standard CEL and :data:`KUBERNETES_FUNCTIONS`.
    """
    placeholders = list(undecided)
    found = []
    for node, value, path in _nodes(schema, with_defaults(schema, obj)):
        for validation in node.get("x-kubernetes-validations", ()):
            rule = validation["rule"]
            if "oldSelf" in rule:
                continue
            if not _holds(rule, value) and not _holds_placeholder(value, placeholders):
                found.append(RuleViolation(path, _message(validation)))
    return found


def _holds_placeholder(value: Any, placeholders: list[Any]) -> bool:
    if any(value == p for p in placeholders):
        return True
    if isinstance(value, Mapping):
        return any(_holds_placeholder(v, placeholders) for v in value.values())
    if isinstance(value, list):
        return any(_holds_placeholder(v, placeholders) for v in value)
    return False


__all__ = ["KUBERNETES_FUNCTIONS", "RuleViolation", "UnsupportedRule", "called_functions", "rule_violations",
           "unsupported_functions", "with_defaults"]
