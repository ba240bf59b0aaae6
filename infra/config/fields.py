"""Reusable field types with messages that say what is allowed."""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from infra import ec2_catalog, gpu_catalog
from infra.versions import SUPPORTED_EKS_VERSIONS
from policies.images import normalise_prefix, prefix_problem

_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_STACK_REF = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_IAM_PRINCIPAL = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/[\w+=,.@-]+(/[\w+=,.@-]+)*$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


def _dns_label(max_length: int):
    def check(value: str) -> str:
        if len(value) > max_length or not _DNS_LABEL.fullmatch(value):
            raise ValueError(
                f"must be a lowercase DNS label of at most {max_length} characters "
                "(a-z, 0-9 and '-', starting with a letter)"
            )
        return value

    return check


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError("must be an IPv4 CIDR block such as 203.0.113.0/24") from None
    if network.version != 4:
        raise ValueError("must be an IPv4 CIDR block such as 203.0.113.0/24")
    if network.prefixlen < 8:
        raise ValueError("is too broad (shorter than /8); list the networks that need access")
    return str(network)


def _instance_type(value: str) -> str:
    if not _INSTANCE_TYPE.fullmatch(value):
        raise ValueError("must be an EC2 instance type such as m7i.large")
    if value not in ec2_catalog.instance_types():
        close = ec2_catalog.closest(value)
        hint = f" (did you mean {close}?)" if close else ""
        raise ValueError(f"is not an EC2 instance type{hint}; see "
                         "https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-types.html")
    return value


def _gpu_instance_type(value: str) -> str:
    if gpu_catalog.gpu_family(value) is None and value not in ec2_catalog.instance_types():
        close = ec2_catalog.closest(value, frozenset(gpu_catalog.gpu_instance_types()))
        if close:
            raise ValueError(f"is not an EC2 instance type (did you mean {close}?)")
    if gpu_catalog.gpu_family(value) is None:
        family = gpu_catalog.GPU_FAMILIES.get(gpu_catalog.family_of(value))
        if family is None:
            raise ValueError(
                f"is not a supported GPU instance type; allowed families: {gpu_catalog.allowed_families()}")
        close = difflib.get_close_matches(value, gpu_catalog.gpu_instance_types(), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        sizes = ", ".join(f"{family.family}.{size}" for size in family.sizes)
        raise ValueError(f"is not an instance type of the {family.family} family{hint}; its types: {sizes}")
    return value


def _eks_version(value: object) -> object:
    if isinstance(value, float | int) and not isinstance(value, bool):
        raise ValueError(f'must be written as a string (quote it: "{value}")')
    if isinstance(value, str) and value not in SUPPORTED_EKS_VERSIONS:
        raise ValueError(f"is not a supported EKS version; allowed: {', '.join(SUPPORTED_EKS_VERSIONS)}")
    return value


def _stack_reference(value: str) -> str:
    if not _STACK_REF.fullmatch(value):
        raise ValueError("must be a fully qualified stack name <org>/<project>/<stack>, e.g. acme/ai-platform/dev")
    return value


def _iam_principal(value: str) -> str:
    if not _IAM_PRINCIPAL.fullmatch(value):
        raise ValueError("must be an IAM role or user ARN such as arn:aws:iam::111122223333:role/ci-deployer")
    return value


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError("must be an AWS region name such as us-east-1")
    return value


# Namespaces the platform or Kubernetes own; a team stack must never label or bind them.
RESERVED_NAMESPACES = ("default", "kserve", "cert-manager", "monitoring", "logging", "elastic-system", "platform",
                       "keda", "aip-capacity")


def _team(value: str) -> str:
    if value in RESERVED_NAMESPACES or value.startswith("kube-"):
        raise ValueError(f"is reserved (kube-*, {', '.join(RESERVED_NAMESPACES)}); pick the team's own name")
    return value


# What AWS accepts in a tag value (IAM's Tag.Value pattern).
_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]*$")


def _tag_value(value: str) -> str:
    if not _TAG_VALUE.fullmatch(value):
        raise ValueError("may contain only letters, digits, spaces and _ . : / = + - @ (it becomes a tag)")
    return value


def _registry_prefix(value: str) -> str:
    problem = prefix_problem(value)
    if problem:
        raise ValueError(problem)
    return normalise_prefix(value)


def _namespace(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError("must be a namespace name: a lowercase DNS label of at most 63 characters")
    return value


def matching(pattern: str, allowed: str) -> AfterValidator:
    """A string check that says what is allowed (``allowed``, e.g. "a VPC ID such as vpc-0123456789abcdef0"), where
    Field(pattern=...) would show the regular expression."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        # fullmatch: `$` alone would let a trailing newline through.
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {allowed}")
        return value

    return AfterValidator(check)


def _finite_number(value: object) -> object:
    # Checked before the int | float union, so a wrong value gets one message at its key rather than one per member
    # of the union; NaN would pass every bound (each comparison with it is false).
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number (not a string, true or false, NaN or infinity)")
    return value


NamespaceName = Annotated[StrictStr, AfterValidator(_namespace)]
TeamName = Annotated[StrictStr, AfterValidator(_dns_label(30)), AfterValidator(_team)]
TagValue = Annotated[StrictStr, AfterValidator(_tag_value)]
PoolName = Annotated[StrictStr, AfterValidator(_dns_label(24))]
Cidr = Annotated[StrictStr, AfterValidator(_cidr)]
InstanceType = Annotated[StrictStr, AfterValidator(_instance_type)]
GpuInstanceType = Annotated[StrictStr, AfterValidator(_gpu_instance_type)]
EksVersion = Annotated[StrictStr, BeforeValidator(_eks_version)]
StackReferenceName = Annotated[StrictStr, AfterValidator(_stack_reference)]
Region = Annotated[StrictStr, AfterValidator(_region)]
IamPrincipalArn = Annotated[StrictStr, AfterValidator(_iam_principal)]
# Stored as the runtime reads it (pytorch/ -> docker.io/pytorch/), the form the pack and the cluster match.
RegistryPrefix = Annotated[StrictStr, AfterValidator(_registry_prefix)]
VpcId = Annotated[StrictStr, matching(r"vpc-([0-9a-f]{8}|[0-9a-f]{17})", "a VPC ID such as vpc-0123456789abcdef0")]
SubnetId = Annotated[StrictStr, matching(r"subnet-([0-9a-f]{8}|[0-9a-f]{17})",
                                         "a subnet ID such as subnet-0123456789abcdef0")]
TransitGatewayId = Annotated[StrictStr, matching(r"tgw-([0-9a-f]{8}|[0-9a-f]{17})",
                                                 "a transit gateway ID such as tgw-0123456789abcdef0")]
VpnGatewayId = Annotated[StrictStr, matching(r"vgw-([0-9a-f]{8}|[0-9a-f]{17})",
                                             "a virtual private gateway ID such as vgw-0123456789abcdef0")]
# An int or a float, finite; bounds go in a further Field (e.g. Annotated[FiniteNumber, Field(gt=0)]).
FiniteNumber = Annotated[StrictInt | StrictFloat, BeforeValidator(_finite_number)]
NodeCount = Annotated[StrictInt, Field(ge=0, le=1000)]

__all__ = [
    "Cidr",
    "EksVersion",
    "FiniteNumber",
    "GpuInstanceType",
    "IamPrincipalArn",
    "InstanceType",
    "NamespaceName",
    "NodeCount",
    "PoolName",
    "Region",
    "RegistryPrefix",
    "StackReferenceName",
    "StrictBool",
    "StrictInt",
    "StrictStr",
    "SubnetId",
    "TagValue",
    "TeamName",
    "TransitGatewayId",
    "VpcId",
    "VpnGatewayId",
]
