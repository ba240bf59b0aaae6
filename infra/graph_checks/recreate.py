"""Check "recreate": after `pulumi destroy`, `pulumi up` brings the stack back without name collisions.

Some AWS names are unique in the account (or region, or globally for buckets) and the program sets them
explicitly instead of letting Pulumi add a random suffix. Such a resource must not be retained on delete:
it would outlive `pulumi destroy`, and creating it again fails with "already exists". For the same reason
a replacement must delete the old resource before creating the new one (``deleteBeforeReplace``), or the
new one collides with the old. Protected resources are exempt: the engine refuses to delete or replace
them at all.
"""

from __future__ import annotations

from infra.config import StackConfig
from infra.graph_checks.findings import Finding
from infra.graph_checks.graph import ResourceGraph
from infra.preview.runner import ResourceRecord

CHECK = "recreate"

# Types whose name is unique beyond the stack, and the input that sets the name explicitly.
FIXED_NAME_INPUTS = {
    "aws:kms/alias:Alias": "name",
    "aws:eks/cluster:Cluster": "name",
    "aws:eks/nodeGroup:NodeGroup": "nodeGroupName",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:iam/role:Role": "name",
    "aws:iam/policy:Policy": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:ec2/launchTemplate:LaunchTemplate": "name",
    "aws:ecr/repository:Repository": "name",
    "aws:secretsmanager/secret:Secret": "name",
    "aws:sqs/queue:Queue": "name",
    "aws:sns/topic:Topic": "name",
}


# Types identified by what they connect rather than by a name, whose replacement can keep that identity: an
# access entry whose type changes (same principal), a policy association whose scope changes (same principal
# and policy: deleting the old one afterwards removes the new one's access), a security group rule whose
# description changes (same rule). AWS rejects the duplicate unless the old one goes first. (A route or an
# add-on is replaced only when its table, destination, cluster or name changes: a new identity.)
IDENTITY_INPUTS = {
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn"),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": ("clusterName", "principalArn", "policyArn"),
    "aws:ec2/securityGroupRule:SecurityGroupRule": ("securityGroupId", "type", "cidrBlocks", "fromPort", "toPort"),
}


def fixed_name(record: ResourceRecord) -> str | None:
    """The explicit account-unique name (or identity) a record sets, or None (auto-named, or not such a type)."""
    key = FIXED_NAME_INPUTS.get(record.type)
    if key:
        value = record.inputs.get(key)
        return str(value) if value else None
    keys = IDENTITY_INPUTS.get(record.type)
    if keys:
        return "/".join(str(record.inputs.get(k, "")) for k in keys)
    return None


def problems(record: ResourceRecord) -> list[str]:
    """Why a record would break a destroy-then-up or a replacement; empty when it would not."""
    name = fixed_name(record)
    if name is None or record.options.get("protect") or record.options.get("read"):
        return []
    found = []
    if record.options.get("retainOnDelete") and record.type in FIXED_NAME_INPUTS:
        found.append(f"is retained on delete with the fixed name {name!r}: it outlives `pulumi destroy` and the "
                     f"next `pulumi up` fails to create it again; drop retainOnDelete (or protect it)")
    if not record.options.get("deleteBeforeReplace"):
        found.append(f"has the fixed name {name!r} but not deleteBeforeReplace: a replacement would be created "
                     f"while the old one still holds the name")
    return found


def check(graph: ResourceGraph, config: StackConfig) -> list[Finding]:
    """Findings for fixed-name resources that a destroy would leave behind or a replacement would collide with."""
    del config  # the options in the graph say it all
    return [Finding(CHECK, record.urn, f"{record.type.rsplit(':', 1)[-1]} {problem}")
            for record in graph.records for problem in problems(record)]
