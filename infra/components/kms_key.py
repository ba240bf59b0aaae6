"""A customer-managed KMS key with rotation and an alias."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws_context import AwsContext
from infra.iam_policies import kms_key_policy


@dataclass(frozen=True)
class CustomerKeyArgs:
    """Args of :class:`CustomerKey`.

    Attributes:
        alias: Alias without the ``alias/`` prefix, unique in the account and region.
        description: What the key protects.
        aws: Account, partition and region of the stack.
        grants_for: Services the key policy lets use the key (see ``kms_key_policy``).
        deletion: Protection of data encrypted with the key outliving the stack (as its buckets).
        region: Region of the key when it is not the stack's (the key of replicas in the recovery region).
    """

    alias: str
    description: str
    aws: AwsContext
    grants_for: tuple[str, ...] = ()
    deletion: pulumi.ResourceOptions | None = None
    region: str | None = None


class CustomerKey(pulumi.ComponentResource):
    """A symmetric KMS key with yearly automatic rotation and a 30-day deletion window.

    https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html
    """

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: CustomerKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:security:CustomerKey", name, None, opts)
        ctx = args.aws
        region = args.region or ctx.region
        policy = pulumi.Output.all(ctx.account_id, ctx.partition).apply(
            lambda v: json.dumps(kms_key_policy(v[0], v[1], region, grants_for=args.grants_for)))
        child = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), args.deletion)
        key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy,
            region=args.region,
            opts=child,
        )
        # The key may outlive the stack (retained with the data it decrypts); its alias never does: a
        # retained alias would make `CreateAlias` collide when the platform is brought up again. A fixed name
        # also means a replacement must delete the old alias first.
        aws.kms.Alias(f"{name}-alias", name=f"alias/{args.alias}", target_key_id=key.key_id, region=args.region,
                      opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        self.arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"arn": self.arn, "key_id": self.key_id})
