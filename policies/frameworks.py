"""Compliance frameworks the policies map to, and the tags that name further frameworks.

pulumi-policy takes one ``PolicyComplianceFramework`` per policy: the primary benchmark (CIS Amazon EKS
for cluster and Kubernetes rules, AWS Foundational Security Best Practices for AWS rules). Every other
framework a policy supports is a tag of the form ``framework:<id>``.
"""

from __future__ import annotations

from pulumi_policy import PolicyComplianceFramework

CIS_EKS_NAME = "CIS Amazon EKS Benchmark"
CIS_EKS_VERSION = "1.7.0"
CIS_EKS_SPEC = "https://www.cisecurity.org/benchmark/kubernetes"
AWS_FSBP_NAME = "AWS Foundational Security Best Practices"
AWS_FSBP_VERSION = "1.0.0"
AWS_FSBP_SPEC = "https://docs.aws.amazon.com/securityhub/latest/userguide/fsbp-standard.html"

SOC2 = "framework:soc2"
ISO27001 = "framework:iso27001"
HIPAA = "framework:hipaa"
GDPR = "framework:gdpr"
CIS_EKS = "framework:cis-eks"
AWS_FSBP = "framework:aws-fsbp"

#: Every framework tag a policy may carry (the metadata test checks tags against this set).
FRAMEWORK_TAGS = frozenset({SOC2, ISO27001, HIPAA, GDPR, CIS_EKS, AWS_FSBP})


def cis_eks(control: str) -> PolicyComplianceFramework:
    """The CIS Amazon EKS Benchmark control ``control`` (e.g. ``"5.4.1"``, or a section such as ``"4.2"``)."""
    return PolicyComplianceFramework(name=CIS_EKS_NAME, version=CIS_EKS_VERSION, reference=control,
                                     specification=CIS_EKS_SPEC)


def aws_fsbp(control: str) -> PolicyComplianceFramework:
    """The AWS Foundational Security Best Practices control ``control`` (e.g. ``"S3.8"``)."""
    return PolicyComplianceFramework(name=AWS_FSBP_NAME, version=AWS_FSBP_VERSION, reference=control,
                                     specification=AWS_FSBP_SPEC)

PLATFORM_NAME = "ai-platform Guardrails"
PLATFORM_VERSION = "1.0"
PLATFORM_SPEC = "README.md#guardrails"


def platform_baseline(control: str) -> PolicyComplianceFramework:
    """Our own baseline, for rules no public benchmark states (cost, GPU placement, tagging)."""
    return PolicyComplianceFramework(name=PLATFORM_NAME, version=PLATFORM_VERSION, reference=control,
                                     specification=PLATFORM_SPEC)
