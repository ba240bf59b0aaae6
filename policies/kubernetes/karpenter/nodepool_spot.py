"""kubernetes-karpenter-nodepool-spot: NodePools run on on-demand (or reserved) capacity where availability matters.

A NodePool admits spot when its ``karpenter.sh/capacity-type`` requirements let ``spot`` through (``In`` naming it,
``NotIn`` not naming it, ``Exists``). Without any such requirement Karpenter launches on-demand capacity
(https://karpenter.sh/docs/concepts/nodepools/#capacity-type), so such a pool passes.
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
from policies.kubernetes.karpenter.nodepools import CAPACITY_TYPE, NODE_POOL, requirements
from policies.props import config_value, get, items, truthy

SPOT = "spot"


def admits(requirement, value: str) -> bool:
    """Whether one node selector requirement lets a label value through."""
    operator = str(get(requirement, "operator", default=""))
    values = {str(v) for v in items(get(requirement, "values"))}
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    return operator == "Exists"


def describe(requirement) -> str:
    """A requirement as people write it: ``In on-demand, spot``."""
    values = ", ".join(str(v) for v in items(get(requirement, "values")))
    return f"{get(requirement, 'operator')} {values}".strip()


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NODE_POOL or truthy(config_value(args, "allowSpot", False)):
        return
    found = requirements(args.props, CAPACITY_TYPE)
    # Karpenter intersects requirements on one key: spot is admitted only if every one of them lets it through.
    if found and all(admits(r, SPOT) for r in found):
        shown = "; ".join(describe(r) for r in found)
        report_violation(f"NodePool '{args.name}' admits spot capacity ({CAPACITY_TYPE} {shown}): EC2 may reclaim "
                         "its nodes with two minutes' notice, taking serving replicas down; require on-demand "
                         "(or reserved) here.")


kubernetes_karpenter_nodepool_spot = ResourceValidationPolicy(
    name="kubernetes-karpenter-nodepool-spot",
    description="Karpenter NodePools do not admit spot capacity (karpenter.sh/capacity-type) unless the environment "
                "allows spot (config allowSpot).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={"allowSpot": {"type": "boolean", "default": False}}),
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-availability"),
    tags=["kubernetes", "karpenter", "gpu", "availability", SOC2, ISO27001],
    remediation_steps="Set capacityTypes to [ON_DEMAND] (or RESERVED with capacityReservationIds) on the pool in "
                      "stacks/Pulumi.<stack>.yaml; spot belongs to dev and staging, where policies/config/<env>.json "
                      "sets allowSpot.",
    url="https://karpenter.sh/docs/concepts/nodepools/#capacity-type",
)
