"""The offline policy gate: the project's policy pack over an offline preview, as the engine would run it.

Each resource's inputs go to the pack's resource policies and every resource's outputs to its stack
policies, through pulumi-policy's own analyzer (the object `pulumi preview --policy-pack` talks to over
gRPC), so policies get the same engine-side names, argument types and read-only proxies as for real.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, Policy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from infra.preview.runner import PreviewResult, ResourceRecord

PACK_VERSION = "1.0.0"
_LEVELS = {"advisory": EnforcementLevel.ADVISORY, "mandatory": EnforcementLevel.MANDATORY,
           "remediate": EnforcementLevel.REMEDIATE, "disabled": EnforcementLevel.DISABLED}
_LEVEL_PROTO = {EnforcementLevel.ADVISORY: proto.ADVISORY, EnforcementLevel.MANDATORY: proto.MANDATORY,
                EnforcementLevel.REMEDIATE: proto.REMEDIATE, EnforcementLevel.DISABLED: proto.DISABLED}
_LEVEL_NAMES = {proto.ADVISORY: "advisory", proto.MANDATORY: "mandatory", proto.REMEDIATE: "mandatory",
                proto.DISABLED: "disabled"}
_SEVERITY_NAMES = {proto.POLICY_SEVERITY_LOW: "low", proto.POLICY_SEVERITY_MEDIUM: "medium",
                   proto.POLICY_SEVERITY_HIGH: "high", proto.POLICY_SEVERITY_CRITICAL: "critical",
                   proto.POLICY_SEVERITY_UNSPECIFIED: "unspecified"}
SEVERITY_ORDER = ("critical", "high", "medium", "low", "unspecified")


class Waiver(Protocol):
    reason: str
    expires: Any


WaiverLookup = Callable[[str, str], "Waiver | None"]


@dataclass(frozen=True)
class Violation:
    """One policy violated by one resource (or by the stack)."""

    policy: str
    severity: str
    enforcement: str
    urn: str
    message: str
    frameworks: tuple[str, ...]
    remediation: str

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "severity": self.severity, "enforcement": self.enforcement,
                "urn": self.urn, "message": self.message, "frameworks": list(self.frameworks)}


@dataclass
class PolicyReport:
    """What the gate found: violations that count, and those a valid waiver suppresses.

    ``refused_waivers`` (``policies.waivers.RefusedWaiver``) broke a waiver rule and suppressed nothing:
    the violations they name stay in ``violations``, so a mandatory one still blocks.
    """

    pack: str
    violations: list[Violation] = field(default_factory=list)
    waived: list[tuple[Violation, Waiver]] = field(default_factory=list)
    expired_waivers: list[Any] = field(default_factory=list)
    refused_waivers: list[Any] = field(default_factory=list)

    @property
    def blocking(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == "mandatory"]

    def to_json(self) -> dict[str, Any]:
        return {"pack": self.pack,
                "violations": [v.to_json() for v in self.violations],
                "waived": [{**v.to_json(), "reason": w.reason, "expires": str(w.expires)} for v, w in self.waived],
                "expiredWaivers": [{"policy": w.policy, "resource": w.urn or w.name, "expires": str(w.expires)}
                                   for w in self.expired_waivers],
                "refusedWaivers": [{"policy": r.waiver.policy, "resource": r.waiver.urn or r.waiver.name,
                                    "reason": r.reason} for r in self.refused_waivers]}


def frameworks_of(policy: Policy) -> tuple[str, ...]:
    """The policy's primary framework and the further ones its tags name (`framework:<name>`)."""
    names = [policy.framework.name] if policy.framework is not None else []
    names += [t.split(":", 1)[1] for t in policy.tags or [] if t.startswith("framework:")]
    return tuple(dict.fromkeys(names))


def configure_request(policies: Sequence[Policy], config: Mapping[str, Any]) -> Any:
    """The Configure call the CLI makes for `--policy-pack-config FILE` (with `all` expanded)."""
    default = config.get("all")
    policy_config = {}
    for policy in policies:
        entry = config.get(policy.name, default)
        properties: dict[str, Any] = {}
        if isinstance(entry, dict):
            properties = {k: v for k, v in entry.items() if k != "enforcementLevel"}
            entry = entry.get("enforcementLevel", default if isinstance(default, str) else None)
        level = _LEVELS.get(entry) if isinstance(entry, str) else policy.enforcement_level
        struct = struct_pb2.Struct()
        struct.update(properties)
        policy_config[policy.name] = proto.PolicyConfig(
            enforcementLevel=_LEVEL_PROTO[level or EnforcementLevel.ADVISORY], properties=struct)
    return proto.ConfigureAnalyzerRequest(policyConfig=policy_config)


def _options(record: ResourceRecord) -> Any:
    return proto.AnalyzerResourceOptions(protect=bool(record.options.get("protect")),
                                         ignoreChanges=list(record.options.get("ignoreChanges") or []),
                                         parent=record.parent)


def evaluate(result: PreviewResult, policies: Sequence[Policy], *, pack: str,
             config: Mapping[str, Any] | None = None, waiver_for: WaiverLookup | None = None) -> PolicyReport:
    """Run every policy of the pack over the preview; apply waivers."""
    analyzer = _PolicyAnalyzerServicer(pack, PACK_VERSION, list(policies), EnforcementLevel.ADVISORY)
    analyzer.Configure(configure_request(policies, config or {}), None)
    found: list[tuple[Any, str]] = []
    for record in result.resources:
        request = proto.AnalyzeRequest(type=record.type, properties=record.input_struct, urn=record.urn,
                                       name=record.name, options=_options(record))
        found += [(d, record.urn) for d in analyzer.Analyze(request, None).diagnostics]
    stack = proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(type=r.type, properties=r.output_struct, urn=r.urn, name=r.name, options=_options(r),
                               parent=r.parent, dependencies=list(r.options.get("dependsOn") or []))
        for r in result.resources])
    found += [(d, "") for d in analyzer.AnalyzeStack(stack, None).diagnostics]

    by_name = {p.name: p for p in policies}
    report = PolicyReport(pack=pack)
    for diagnostic, urn in found:
        policy = by_name[diagnostic.policyName]
        message = diagnostic.message.removeprefix(diagnostic.description).strip() or diagnostic.description
        violation = Violation(
            policy=policy.name, severity=_SEVERITY_NAMES.get(diagnostic.severity, "unspecified"),
            enforcement=_LEVEL_NAMES.get(diagnostic.enforcementLevel, "advisory"), urn=diagnostic.urn or urn,
            message=message, frameworks=frameworks_of(policy), remediation=policy.remediation_steps or "")
        waiver = waiver_for(violation.policy, violation.urn) if waiver_for else None
        if waiver is not None:
            report.waived.append((violation, waiver))
        else:
            report.violations.append(violation)
    report.violations.sort(key=lambda v: (SEVERITY_ORDER.index(v.severity), v.policy, v.urn))
    return report
