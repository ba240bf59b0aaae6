"""The account, partition and region a stack deploys into, looked up once."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsContext:
    """Where the stack's AWS resources live."""

    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: str

    @classmethod
    def lookup(cls, region: str) -> AwsContext:
        return cls(
            account_id=aws.get_caller_identity_output().account_id,
            partition=aws.get_partition_output().partition,
            region=region,
        )
