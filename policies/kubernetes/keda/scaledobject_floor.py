"""kubernetes-keda-scaledobject-floor: a KEDA-scaled model keeps a ready replica where cold starts are not accepted.

KEDA scales a ScaledObject's target to zero when ``minReplicaCount`` is 0, which is also its default, and when
``idleReplicaCount`` is 0 whatever the minimum (https://keda.sh/docs/latest/reference/scaledobject-spec/); the
``autoscaling.keda.sh/paused-replicas`` annotation pins it to a count, 0 included. A model at zero replicas answers
its next request only after a GPU node, the image and the model have loaded: minutes. Environments that accept that
say so with ``allowScaleToZero``. Without ``maxReplicaCount`` KEDA allows 100 replicas, each holding GPUs.
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
from policies.props import config_value, get, number, truthy

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SCALED_OBJECT:
        return
    spec = get(args.props, "spec", default={})
    minimum, maximum = get(spec, "minReplicaCount"), get(spec, "maxReplicaCount")
    if maximum is None:
        report_violation(f"ScaledObject '{args.name}' has no maxReplicaCount: KEDA would scale it to 100 replicas.")
    elif minimum is not None and number(minimum) > number(maximum):
        report_violation(f"ScaledObject '{args.name}' has minReplicaCount {int(number(minimum))} above "
                         f"maxReplicaCount {int(number(maximum))}.")
    if truthy(config_value(args, "allowScaleToZero", False)):
        return
    if minimum is None or number(minimum) == 0:
        shown = "is 0" if minimum is not None else "is not set (KEDA's default is 0)"
        report_violation(f"ScaledObject '{args.name}' scales to zero: its minReplicaCount {shown}; the next request "
                         "after idling waits for a node and the model to load. Keep at least 1 replica here.")
    elif get(spec, "idleReplicaCount") is not None and number(get(spec, "idleReplicaCount"), default=-1) == 0:
        report_violation(f"ScaledObject '{args.name}' scales to zero when idle: its idleReplicaCount is 0. Remove "
                         "it here.")
    paused = get(args.props, "metadata", "annotations", PAUSED_REPLICAS)
    if paused is not None and number(paused, default=-1) == 0:
        report_violation(f"ScaledObject '{args.name}' is paused at 0 replicas ({PAUSED_REPLICAS}).")


kubernetes_keda_scaledobject_floor = ResourceValidationPolicy(
    name="kubernetes-keda-scaledobject-floor",
    description="KEDA ScaledObjects set maxReplicaCount, and keep at least one replica (minReplicaCount, "
                "idleReplicaCount, paused-replicas) unless the environment allows scale to zero (config "
                "allowScaleToZero).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={"allowScaleToZero": {"type": "boolean", "default": False}}),
    severity=Severity.MEDIUM,
    framework=platform_baseline("serving-availability"),
    tags=["kubernetes", "keda", "autoscaling", "availability", "cost", SOC2, ISO27001],
    remediation_steps="Set models[].autoscaling.min to 1 or more in the team's stacks/Pulumi.<team>-<env>.yaml "
                      "(scale to zero belongs to dev, where policies/config/dev.json sets allowScaleToZero) and "
                      "models[].autoscaling.max.",
    url="https://keda.sh/docs/latest/reference/scaledobject-spec/",
)
