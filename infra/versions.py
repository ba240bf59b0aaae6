"""Every version the platform deploys, pinned in one place.

Bump a version here and nowhere else; README's "Pinned versions" table is generated from this module
(`aip docs`) and a test fails when the two drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

# EKS Kubernetes versions in standard support that the platform is tested against.
# https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html
SUPPORTED_EKS_VERSIONS: tuple[str, ...] = ("1.33", "1.34", "1.35")
DEFAULT_EKS_VERSION = "1.34"


@dataclass(frozen=True)
class HelmChart:
    """A Helm chart pinned to one exact version."""

    chart: str
    version: str
    repository: str
    docs: str


@dataclass(frozen=True)
class EksAddon:
    """An EKS managed add-on pinned to one exact build."""

    name: str
    version: str
    docs: str


NVIDIA_DEVICE_PLUGIN = HelmChart(
    chart="nvidia-device-plugin",
    version="0.20.0",
    repository="https://nvidia.github.io/k8s-device-plugin",
    docs="https://github.com/NVIDIA/k8s-device-plugin",
)

EBS_CSI_DRIVER = EksAddon(
    name="aws-ebs-csi-driver",
    version="v1.57.1-eksbuild.1",
    docs="https://docs.aws.amazon.com/eks/latest/userguide/ebs-csi.html",
    # Check a build against a cluster version: aws eks describe-addon-versions --addon-name aws-ebs-csi-driver
)

HELM_CHARTS: tuple[HelmChart, ...] = (NVIDIA_DEVICE_PLUGIN,)
EKS_ADDONS: tuple[EksAddon, ...] = (EBS_CSI_DRIVER,)
