"""An IAM role that exactly one Kubernetes service account assumes through the cluster's OIDC provider (IRSA)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam_policies import irsa_trust_policy


def irsa_role(name: str, *, oidc_provider_arn: pulumi.Input[str], oidc_issuer_url: pulumi.Input[str],
              namespace: str, service_account: str, parent: pulumi.Resource, **role_args: Any) -> aws.iam.Role:
    """https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts.html"""
    trust = pulumi.Output.all(oidc_provider_arn, oidc_issuer_url).apply(
        lambda v: json.dumps(irsa_trust_policy(v[0], v[1], namespace, service_account)))
    return aws.iam.Role(name, assume_role_policy=trust, opts=pulumi.ResourceOptions(parent=parent), **role_args)
