"""The contract between a platform stack and the team stacks built on it."""

from __future__ import annotations

from typing import Any

import pulumi

# Every output a platform stack exports; team stacks read them through a StackReference.
PLATFORM_OUTPUT_KEYS: tuple[str, ...] = (
    "environment",
    "region",
    "clusterName",
    "clusterEndpoint",
    "clusterCertificateAuthority",
    "kubeconfig",
    "oidcProviderArn",
    "oidcIssuerUrl",
    "vpcId",
    "privateSubnetIds",
    "modelStoreBucket",
    "modelStoreBucketArn",
    "modelStoreKmsKeyArn",
    "modelStoreLogBucket",
    "teamRoleBoundaryArn",
    "storageClass",
    "gpuPools",
    "teams",
    "grafanaAdminSecret",
    "prometheusUrl",
    "scaleToZero",
    "recovery",
)


class PlatformReference:
    """Read-only view of a platform stack's outputs."""

    def __init__(self, name: str, stack: str, opts: pulumi.ResourceOptions | None = None):
        self._ref = pulumi.StackReference(name, stack_name=stack, opts=opts)

    def require(self, key: str) -> pulumi.Output[Any]:
        if key not in PLATFORM_OUTPUT_KEYS:
            raise KeyError(f"{key} is not a platform output; known: {', '.join(PLATFORM_OUTPUT_KEYS)}")
        return self._ref.require_output(key)
