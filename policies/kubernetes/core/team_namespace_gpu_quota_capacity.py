"""kubernetes-core-namespace-gpu-quota-capacity: a team's GPU quota is one the platform's pools can hold."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.eks.nodegroups import NODE_GROUP, is_gpu_node_group
from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.gpu_catalog import gpus_per_instance
from policies.kubernetes.core.team_namespace_resource_quota import GPU_REQUESTS, RESOURCE_QUOTA
from policies.kubernetes.core.team_namespaces import in_namespace, team_namespaces
from policies.props import get, items, number

# The label a pool reserved for one team carries (infra/components/gpu_node_pool.py).
DEDICATED_LABEL = "ai-platform.io/dedicated"


def pool_gpus(props) -> int:
    """GPUs a pool holds at maxSize for certain: any node may come up as its instance type with the fewest."""
    per_node = min((gpus_per_instance(str(t)) for t in items(get(props, "instanceTypes"))), default=0)
    return int(number(get(props, "scalingConfig", "maxSize"))) * per_node


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    pools = [r for r in args.resources if r.resource_type == NODE_GROUP and is_gpu_node_group(r.props)]
    for namespace, resource in team_namespaces(args.resources):
        usable = [p for p in pools if get(p.props, "labels", DEDICATED_LABEL) in (None, namespace)]
        capacity = sum(pool_gpus(p.props) for p in usable)
        for quota in in_namespace(args.resources, RESOURCE_QUOTA, namespace):
            asked = get(quota.props, "spec", "hard", GPU_REQUESTS)
            if asked is not None and int(number(asked)) > capacity:
                report_violation(f"Team namespace '{namespace}' may request {int(number(asked))} GPUs, more than "
                                 f"the GPU pools it may use surely hold at maxSize ({capacity}).", resource.urn)


kubernetes_core_namespace_gpu_quota_capacity = StackValidationPolicy(
    name="kubernetes-core-namespace-gpu-quota-capacity",
    description="A team namespace's GPU quota (requests.nvidia.com/gpu) is no larger than the GPUs the pools the "
                "team may use (shared and its dedicated ones) surely hold at maxSize (smallest instance type).",
    validate=validate,
    severity=Severity.LOW,
    framework=platform_baseline("gpu-quota-capacity"),
    tags=["kubernetes", "multi-tenancy", "gpu", "cost", SOC2, ISO27001],
    remediation_steps="Lower teams[].quota.gpu in the platform's stacks/Pulumi.<env>.yaml, or grow the pools the "
                      "team may use (gpuPools[].maxSize, or a pool dedicated to the team).",
    url="https://kubernetes.io/docs/concepts/policy/resource-quotas/#resource-quota-for-extended-resources",
)
