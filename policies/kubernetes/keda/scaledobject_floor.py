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
from policies.props import config_value, count, describe, get, number, truthy

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
REPLICA_COUNTS = ("minReplicaCount", "maxReplicaCount", "idleReplicaCount")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SCALED_OBJECT:
        return
    spec = get(args.props, "spec", default={})
    for key in REPLICA_COUNTS:
        if get(spec, key) is not None and count(get(spec, key)) is None:
            report_violation(f"ScaledObject '{args.name}' has {key} '{describe(get(spec, key))}', not a whole "
                             "number of replicas.")
    # Each is None where absent or unreadable (reported above).
    minimum, maximum, idle = (count(get(spec, key)) for key in REPLICA_COUNTS)
    if get(spec, "maxReplicaCount") is None:
        report_violation(f"ScaledObject '{args.name}' has no maxReplicaCount: KEDA would scale it to 100 replicas.")
    elif minimum is not None and maximum is not None and minimum > maximum:
        report_violation(f"ScaledObject '{args.name}' has minReplicaCount {minimum} above maxReplicaCount "
                         f"{maximum}.")
    if truthy(config_value(args, "allowScaleToZero", False)):
        return
    if get(spec, "minReplicaCount") is None or minimum == 0:
        shown = "is 0" if minimum == 0 else "is not set (KEDA's default is 0)"
        report_violation(f"ScaledObject '{args.name}' scales to zero: its minReplicaCount {shown}; the next request "
                         "after idling waits for a node and the model to load. Keep at least 1 replica here.")
    elif idle == 0:
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
