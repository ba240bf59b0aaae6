"""How the gate's findings are shown: grouped by severity for people, SARIF 2.1.0 for code-scanning tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi_policy import Policy
from rich.console import Console
from rich.text import Text

from infra.preview.policy_gate import SEVERITY_ORDER, PolicyReport, Violation, frameworks_of

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "unspecified": "white"}


def print_policy_report(report: PolicyReport, console: Console) -> None:
    """Violations grouped by severity, each with its remediation; then waivers, and the verdict."""
    console.print(Text(f"Policy pack {report.pack}: {len(report.violations)} violation(s), "
                       f"{len(report.blocking)} mandatory, {len(report.waived)} waived", style="bold"))
    for severity in SEVERITY_ORDER:
        found = [v for v in report.violations if v.severity == severity]
        if not found:
            continue
        console.print(Text(f"\n{severity.upper()} ({len(found)})", style=_STYLE[severity]))
        for violation in found:
            console.print(Text(f"  [{violation.enforcement}] {violation.policy}", style="bold"), soft_wrap=True)
            console.print(Text(f"    {violation.urn or '(stack)'}"), soft_wrap=True)
            console.print(Text(f"    {violation.message}"), soft_wrap=True)
            if violation.remediation:
                console.print(Text(f"    fix: {violation.remediation}", style="dim"), soft_wrap=True)
    for violation, waiver in report.waived:
        console.print(Text(f"  waived until {waiver.expires}: {violation.policy} on {violation.urn} "
                           f"({waiver.reason})", style="dim"), soft_wrap=True)
    for waiver in report.expired_waivers:
        console.print(Text(f"  expired waiver ({waiver.expires}): {waiver.policy} on {waiver.resource}: "
                           "remove it or renew it with a new approval", style="yellow"), soft_wrap=True)
    for refused in report.refused_waivers:
        console.print(Text(f"  refused waiver: {refused.waiver.policy} on {refused.waiver.resource}: {refused.reason}",
                           style="red"), soft_wrap=True)


def _level(violation: Violation) -> str:
    return {"mandatory": "error", "advisory": "warning"}.get(violation.enforcement, "note")


def _result(violation: Violation, rule_index: int, artifact: str) -> dict[str, Any]:
    return {
        "ruleId": violation.policy,
        "ruleIndex": rule_index,
        "level": _level(violation),
        "message": {"text": violation.message},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": artifact}},
            "logicalLocations": [{"fullyQualifiedName": violation.urn or "stack", "kind": "resource"}],
        }],
    }


# What each deploy check (infra/graph_checks) proves, as SARIF rules.
DEPLOY_CHECK_RULES = {
    "reachability": "A private API endpoint admits, and routes back to, every network that deploys to it.",
    "ordering": "Releases and workloads wait for schedulable nodes, custom resources for their CRDs.",
    "identity": "Every principal that runs a stack may do exactly what the stack creates.",
    "recreate": "Nothing with an account-unique name outlives a destroy or collides with its replacement.",
    "chart-values": "Chart values exist in the pinned chart, with its types; no risky default is inherited.",
    "custom-resources": "Every custom resource is one its upstream CRD's schema accepts, with no unknown field.",
}
DEPLOY_CHECKS_TOOL = "ai-platform-deploy-checks"


def deploy_checks_run(findings: Sequence[Any], artifact: str) -> dict[str, Any]:
    """A SARIF run of the deploy checks' findings (each an error: it would break or weaken a real deploy)."""
    names = list(DEPLOY_CHECK_RULES)
    return {
        "tool": {"driver": {"name": DEPLOY_CHECKS_TOOL, "rules": [
            {"id": name, "name": name, "shortDescription": {"text": text}}
            for name, text in DEPLOY_CHECK_RULES.items()]}},
        "results": [{
            "ruleId": f.check, "ruleIndex": names.index(f.check), "level": "error",
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact}},
                           "logicalLocations": [{"fullyQualifiedName": f.subject, "kind": "resource"}]}],
        } for f in findings],
    }


def to_sarif(report: PolicyReport, policies: Sequence[Policy], artifact: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per policy, one result per violation (waived ones as suppressed)."""
    rules = [{
        "id": p.name,
        "name": p.name,
        "shortDescription": {"text": p.description},
        "help": {"text": p.remediation_steps or p.description},
        "properties": {"tags": list(frameworks_of(p)),
                       "severity": p.severity.value if p.severity is not None else "unspecified"},
        **({"helpUri": p.url} if p.url else {}),
    } for p in policies]
    index = {p.name: i for i, p in enumerate(policies)}
    results = [_result(v, index[v.policy], artifact) for v in report.violations]
    # A refused waiver suppresses nothing: its violation stays an open result, which says why.
    for violation, result in zip(report.violations, results, strict=True):
        refused = [r.reason for r in report.refused_waivers if r.waiver.covers(violation.policy, violation.urn)]
        if refused:
            result["properties"] = {"refusedWaivers": refused}
    for violation, waiver in report.waived:
        result = _result(violation, index[violation.policy], artifact)
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": f"{waiver.reason} (until {waiver.expires})"}]
        results.append(result)
    run: dict[str, Any] = {"tool": {"driver": {"name": report.pack, "rules": rules}}, "results": results}
    if report.refused_waivers:
        # SARIF's place for a problem with the tool's own configuration, which the waivers file is.
        run["invocations"] = [{"executionSuccessful": True, "toolConfigurationNotifications": [{
            "level": "error", "descriptor": {"id": "refused-waiver"},
            "message": {"text": f"waiver of {r.waiver.policy} on {r.waiver.resource} refused: {r.reason}"},
        } for r in report.refused_waivers]}]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
