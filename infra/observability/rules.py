"""The platform's alert and recording rules: Prometheus rule files, and the PrometheusRule objects they become.

The rule files in `rules/` are the source: `promtool check rules` and `promtool test rules` read them as
they are, Prometheus next to `aip serve` loads them as they are, and the cluster gets one PrometheusRule
object per file with the file's groups as its spec. Nothing here talks to Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# libyaml's loader when PyYAML has it: the rule files are read by several tests and the dashboards.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FILE_SUFFIX = ".rules.yaml"
# PrometheusRule objects are named after their file: `gpu.rules.yaml` -> `aip-gpu-rules`.
OBJECT_NAME_PREFIX = "aip-"


class RuleFileError(ValueError):
    """A rule file that is not a Prometheus rule file (`groups:` of named groups of rules)."""


def rule_files() -> list[Path]:
    """Every rule file, in name order (stable object order for previews and diffs)."""
    return sorted(RULES_DIR.glob(f"*{RULE_FILE_SUFFIX}"))


def load_groups(path: Path) -> list[dict[str, Any]]:
    """The `groups` of one rule file, checked for the shape Prometheus and the PrometheusRule CRD expect."""
    document = yaml.load(path.read_text(), Loader=_LOADER)
    if not isinstance(document, dict) or set(document) != {"groups"} or not isinstance(document["groups"], list):
        raise RuleFileError(f"{path.name}: a rule file has exactly one top-level key, `groups`, a list")
    groups = document["groups"]
    for index, group in enumerate(groups):
        if not isinstance(group, dict) or not group.get("name") or not isinstance(group.get("rules"), list):
            raise RuleFileError(f"{path.name}: group {index} needs a `name` and a list of `rules`")
    return groups


def object_name(path: Path) -> str:
    """Name of the PrometheusRule object made from ``path``."""
    stem = path.name.removesuffix(RULE_FILE_SUFFIX)
    return f"{OBJECT_NAME_PREFIX}{stem}-rules".replace(".", "-").replace("_", "-").lower()


def prometheus_rule_specs() -> dict[str, dict[str, Any]]:
    """Object name -> `spec` of a monitoring.coreos.com/v1 PrometheusRule, one per rule file."""
    return {object_name(path): {"groups": load_groups(path)} for path in rule_files()}


def rule_expressions() -> list[tuple[str, str]]:
    """(where, expr) of every rule; `where` is `file:group:name` (an alert's or a recorded metric's name)."""
    found = []
    for path in rule_files():
        for group in load_groups(path):
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                found.append((f"{path.name}:{group['name']}:{name}", str(rule["expr"])))
    return found


def recording_rules() -> dict[str, str]:
    """Recorded metric name -> its expression."""
    return {rule["record"]: str(rule["expr"])
            for path in rule_files() for group in load_groups(path) for rule in group["rules"] if "record" in rule}


def alerting_rules() -> list[dict[str, Any]]:
    """Every alerting rule (one alert name may have several rules, one per severity)."""
    return [rule for path in rule_files() for group in load_groups(path) for rule in group["rules"]
            if "alert" in rule]


def recorded_metrics() -> set[str]:
    """Names the recording rules produce (dashboards read these)."""
    return set(recording_rules())


def recorded_labels(inputs: Mapping[str, frozenset[str]] | None = None) -> dict[str, frozenset[str]]:
    """Recorded metric name -> the labels its series carry (what its expression keeps, plus the rule's labels).

    Rules are taken in file order, so a rule that reads an earlier recording knows that one's labels.
    ``inputs`` gives the labels the raw series the rules read carry, where those count (see known_series).
    """
    # Imported here: the Pulumi program reads the rule files through this module and needs no PromQL parser.
    from infra.observability.promql import output_labels

    recorded: dict[str, frozenset[str]] = {}
    for path in rule_files():
        for group in load_groups(path):
            for rule in group["rules"]:
                if "record" in rule:
                    carried = {**(inputs or {}), **recorded}
                    recorded[rule["record"]] = (output_labels(str(rule["expr"]), carried)
                                                | frozenset(rule.get("labels", {})))
    return recorded
