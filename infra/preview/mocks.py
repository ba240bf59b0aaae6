"""Plausible cloud answers for an offline preview: ids, ARNs, endpoints and AZs shaped like AWS's."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

# AWS's documentation account; never a real one.
ACCOUNT_ID = "123456789012"

StackOutputs = Callable[[str], Mapping[str, Any]]
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
# Standard AZs of the larger regions; three elsewhere, as in most regions.
ZONES_PER_REGION = {"us-east-1": 6, "us-west-2": 4, "ap-northeast-1": 3, "eu-west-1": 3}


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


class PreviewMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and provider calls deterministically (same input, same id).

    Args:
        region: The stack's AWS region.
        stack_outputs: Returns the outputs of a referenced stack by its name.
    """

    def __init__(self, region: str, stack_outputs: StackOutputs):
        self.region = region
        self.partition = partition_of(region)
        self.stack_outputs = stack_outputs
        self.unanswered_calls: list[str] = []

    # -- resources -------------------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        seed = f"{args.typ}::{args.name}"
        outputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(args.inputs.get("name") or args.resource_id or args.name)
            return name, {"name": name, "outputs": dict(self.stack_outputs(name)), "secretOutputNames": []}
        if args.typ.startswith("pulumi:providers:"):
            return str(uuid.UUID(_hex(seed, 32))), outputs
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes(args, outputs, seed)
        if args.typ.startswith("aws:"):
            return self._aws(args, outputs, seed)
        if args.typ == RANDOM_PASSWORD:
            # Known, as after the first deploy, so a preview can list the keys of the Secrets that hold it (their
            # values are printed masked). Letters and digits only, as the program asks for.
            outputs.setdefault("result", f"preview{_hex(seed, int(outputs.get('length') or 32) - 7)}")
        return f"{args.name}-{_hex(seed, 8)}", outputs

    def _kubernetes(self, args: pulumi.runtime.MockResourceArgs, outputs: dict, seed: str) -> tuple[str, dict]:
        if args.typ == "kubernetes:helm.sh/v3:Release":
            name = outputs.get("name") or f"{args.name}-{_hex(seed, 8)}"
            outputs.update(name=name, status={"name": name, "namespace": outputs.get("namespace", "default"),
                                              "status": "deployed", "version": 1, "chart": outputs.get("chart"),
                                              "appVersion": outputs.get("version")})
            return name, outputs
        metadata = dict(outputs.get("metadata") or {})
        metadata.setdefault("name", f"{args.name}-{_hex(seed, 8)}")
        metadata["uid"] = str(uuid.UUID(_hex(seed, 32)))
        outputs["metadata"] = metadata
        namespace = metadata.get("namespace")
        return (f"{namespace}/{metadata['name']}" if namespace else metadata["name"]), outputs

    def _aws(self, args: pulumi.runtime.MockResourceArgs, outputs: dict, seed: str) -> tuple[str, dict]:
        # A resource may live in another region than the stack's (pulumi-aws v7's per-resource `region`).
        region, account, partition = str(outputs.get("region") or self.region), ACCOUNT_ID, self.partition
        auto_name = f"{args.name}-{_hex(seed, 7)}"
        service = args.typ.split(":")[1].split("/")[0]
        short = args.typ.rsplit(":", 1)[-1]
        ec2_prefixes = {"Vpc": "vpc", "Subnet": "subnet", "InternetGateway": "igw", "NatGateway": "nat",
                        "Eip": "eipalloc", "RouteTable": "rtb", "RouteTableAssociation": "rtbassoc",
                        "DefaultSecurityGroup": "sg", "SecurityGroup": "sg", "LaunchTemplate": "lt",
                        "FlowLog": "fl", "VpnGateway": "vgw", "VpcPeeringConnection": "pcx"}
        if service == "ec2" and short in ec2_prefixes:
            rid = f"{ec2_prefixes[short]}-{_hex(seed, 17)}"
            outputs.setdefault("arn", f"arn:{partition}:ec2:{region}:{account}:{short.lower()}/{rid}")
            if short == "LaunchTemplate":
                outputs.update(latestVersion=1, defaultVersion=1)
            if short == "Eip":
                outputs["publicIp"] = f"198.51.100.{int(_hex(seed, 2), 16) % 250 + 1}"
            return rid, outputs
        if args.typ == "aws:ec2transitgateway/vpcAttachment:VpcAttachment":
            rid = f"tgw-attach-{_hex(seed, 17)}"
            outputs.setdefault("arn", f"arn:{partition}:ec2:{region}:{account}:transit-gateway-attachment/{rid}")
            return rid, outputs
        if args.typ == "aws:eks/cluster:Cluster":
            name = outputs.get("name") or auto_name
            # EKS creates the cluster security group; rules the program adds to it refer to this id.
            vpc = {**(outputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{_hex(seed + 'cluster-sg', 17)}"}
            outputs.update(
                name=name, arn=f"arn:{partition}:eks:{region}:{account}:cluster/{name}", vpcConfig=vpc,
                endpoint=f"https://{_hex(seed, 32).upper()}.gr7.{region}.eks.amazonaws.com",
                certificateAuthority={"data": base64.b64encode(b"-----BEGIN CERTIFICATE-----\npreview\n"
                                                               b"-----END CERTIFICATE-----\n").decode()},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/"
                                                  f"{_hex(seed + 'oidc', 32).upper()}"}]}],
                status="ACTIVE", platformVersion="eks.1",
            )
            return name, outputs
        if args.typ == "aws:eks/nodeGroup:NodeGroup":
            name = outputs.get("nodeGroupName") or auto_name
            outputs.update(nodeGroupName=name, status="ACTIVE",
                           arn=f"arn:{partition}:eks:{region}:{account}:nodegroup/{outputs.get('clusterName')}/"
                               f"{name}/{_hex(seed, 8)}")
            return f"{outputs.get('clusterName')}:{name}", outputs
        if args.typ == "aws:kms/key:Key":
            key_id = str(uuid.UUID(_hex(seed, 32)))
            outputs.update(keyId=key_id, arn=f"arn:{partition}:kms:{region}:{account}:key/{key_id}")
            return key_id, outputs
        if args.typ == "aws:iam/role:Role":
            name = outputs.get("name") or auto_name
            outputs.update(name=name, arn=f"arn:{partition}:iam::{account}:role/{name}",
                           uniqueId=f"AROA{_hex(seed, 17).upper()}")
            return name, outputs
        if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(outputs.get("url", "")).removeprefix("https://")
            arn = f"arn:{partition}:iam::{account}:oidc-provider/{host}"
            outputs["arn"] = arn
            return arn, outputs
        if args.typ == "aws:cloudwatch/logGroup:LogGroup":
            name = outputs.get("name") or auto_name
            outputs.update(name=name, arn=f"arn:{partition}:logs:{region}:{account}:log-group:{name}")
            return name, outputs
        if args.typ == "aws:s3/bucket:Bucket":
            name = (outputs.get("bucket") or auto_name).lower()
            outputs.update(bucket=name, arn=f"arn:{partition}:s3:::{name}", region=region,
                           bucketDomainName=f"{name}.s3.amazonaws.com")
            return name, outputs
        if args.typ == "aws:sqs/queue:Queue":
            name = outputs.get("name") or auto_name
            outputs.update(name=name, arn=f"arn:{partition}:sqs:{region}:{account}:{name}",
                           url=f"https://sqs.{region}.amazonaws.com/{account}/{name}")
            return outputs["url"], outputs
        if args.typ == "aws:cloudwatch/eventRule:EventRule":
            name = outputs.get("name") or auto_name
            outputs.update(name=name, arn=f"arn:{partition}:events:{region}:{account}:rule/{name}")
            return name, outputs
        if service == "s3" and "bucket" in outputs:
            return str(outputs["bucket"]), outputs
        rid = f"{args.name}-{_hex(seed, 8)}"
        outputs.setdefault("arn", f"arn:{partition}:{service}:{region}:{account}:{short.lower()}/{rid}")
        return rid, outputs

    # -- provider functions ------------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        region, partition = self.region, self.partition
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:{partition}:iam::{ACCOUNT_ID}:user/preview",
                    "userId": "AIDAPREVIEW", "id": ACCOUNT_ID}
        if args.token == "aws:index/getPartition:getPartition":
            suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
            return {"partition": partition, "dnsSuffix": suffix, "id": partition,
                    "reverseDnsPrefix": "com.amazonaws"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            parts = region.split("-")
            short_region = parts[0] + parts[1][0] + parts[-1]
            letters = "abcdef"[:ZONES_PER_REGION.get(region, 3)]
            return {"names": [f"{region}{c}" for c in letters],
                    "zoneIds": [f"{short_region}-az{i}" for i in range(1, len(letters) + 1)], "id": region}
        self.unanswered_calls.append(args.token)
        return {}
