"""kubernetes-karpenter-nodepool-limits: every NodePool is bounded, and its nodes are replaced on a schedule.

Without ``spec.limits`` a NodePool launches nodes for as long as pods are pending, up to the account's EC2 quota
(https://karpenter.sh/docs/concepts/nodepools/#speclimits); for GPU pools the bound that matters is
``nvidia.com/gpu``. Nodes are patched by being replaced: ``expireAfter: Never`` keeps a node (and its AMI) forever,
and without ``terminationGracePeriod`` a PodDisruptionBudget or a ``karpenter.sh/do-not-disrupt`` pod holds an
expired node indefinitely (https://karpenter.sh/docs/concepts/disruption/). A static NodePool
(``spec.replicas``) takes only ``limits.nodes``.
"""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.kubernetes.karpenter.nodepools import GPU, NODE_POOL, is_gpu_node_pool, limit_problems
from policies.props import config_value, get, truthy

# Limits that bound how many nodes a NodePool may launch.
BOUNDING_LIMITS = ("nodes", "cpu", "memory", GPU)


def unset(props, name: str) -> bool:
    """Whether ``spec.limits`` has no entry for ``name`` (one that is set but unreadable is reported as such)."""
    return get(props, "spec", "limits", name) is None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NODE_POOL:
        return
    for problem in limit_problems(args.props):
        report_violation(f"NodePool '{args.name}' {problem}.")
    static = get(args.props, "spec", "replicas") is not None
    if static:
        if unset(args.props, "nodes"):
            report_violation(f"Static NodePool '{args.name}' (spec.replicas) has no spec.limits.nodes, the only limit "
                             "Karpenter applies to a static pool.")
    elif is_gpu_node_pool(args.props):
        if unset(args.props, GPU):
            report_violation(f"GPU NodePool '{args.name}' has no spec.limits[\"{GPU}\"]: Karpenter may launch GPU "
                             "nodes until the account's EC2 quota stops it.")
    elif all(unset(args.props, name) for name in BOUNDING_LIMITS):
        report_violation(f"NodePool '{args.name}' has no spec.limits on {', '.join(BOUNDING_LIMITS)}: Karpenter may "
                         "launch nodes until the account's EC2 quota stops it.")
    template = get(args.props, "spec", "template", "spec", default={})
    # Karpenter defaults expireAfter to 720h when it is not set.
    if str(get(template, "expireAfter", default="720h")) == "Never" and \
            not truthy(config_value(args, "allowNeverExpire", False)):
        report_violation(f"NodePool '{args.name}' sets expireAfter: Never: its nodes are never replaced, so never "
                         "patched; set a duration such as 720h.")
    if get(template, "terminationGracePeriod") is None:
        report_violation(f"NodePool '{args.name}' has no terminationGracePeriod: a PodDisruptionBudget or a "
                         "do-not-disrupt pod can keep an expired or drifted node running forever.")


kubernetes_karpenter_nodepool_limits = ResourceValidationPolicy(
    name="kubernetes-karpenter-nodepool-limits",
    description="Every Karpenter NodePool has spec.limits (nvidia.com/gpu for GPU pools; nodes, cpu, memory or "
                "nvidia.com/gpu for others; nodes for static pools), an expireAfter other than Never (unless "
                "allowNeverExpire) and a terminationGracePeriod, so its nodes are bounded and rotated.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={"allowNeverExpire": {"type": "boolean", "default": False}}),
    severity=Severity.MEDIUM,
    framework=platform_baseline("node-capacity-and-rotation"),
    tags=["kubernetes", "karpenter", "gpu", "cost", "patching", SOC2, ISO27001],
    remediation_steps="Give the pool maxSize in stacks/Pulumi.<stack>.yaml (the NodePool's limits nvidia.com/gpu and "
                      "nodes come from it) and keep expireAfter / terminationGracePeriod set to durations "
                      "(infra/components/karpenter_node_pool.py).",
    url="https://karpenter.sh/docs/concepts/nodepools/#speclimits",
)
