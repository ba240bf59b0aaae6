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
    """An EKS managed add-on pinned to one exact build (of one cluster version, when builds differ per version)."""

    name: str
    version: str
    docs: str
    cluster_version: str = ""


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

@dataclass(frozen=True)
class ServingRuntimeImage:
    """The container image of a KServe ServingRuntime, with its CPU and GPU tags."""

    name: str
    image: str
    tag: str
    gpu_tag: str
    docs: str


CERT_MANAGER = HelmChart(
    chart="cert-manager",
    version="v1.20.3",
    repository="https://charts.jetstack.io",
    docs="https://cert-manager.io/docs/installation/helm/",
)

KSERVE_CRD = HelmChart(
    chart="oci://ghcr.io/kserve/charts/kserve-crd",
    version="v0.20.0",
    repository="",
    docs="https://kserve.github.io/website/docs/install/kserve-install",
)

# From v0.17 the controller chart is kserve-resources; its runtimes chart (kserve-runtime-configs) is not
# installed: the platform defines the one runtime it supports itself.
KSERVE = HelmChart(
    chart="oci://ghcr.io/kserve/charts/kserve-resources",
    version="v0.20.0",
    repository="",
    docs="https://kserve.github.io/website/docs/admin-guide/kubernetes-deployment",
)

# TorchServe 0.12 (secure defaults since 0.11.1) behind KServe's wrapper; `-gpu` for GPU replicas.
TORCHSERVE_RUNTIME = ServingRuntimeImage(
    name="aip-torchserve",
    image="pytorch/torchserve-kfs",
    tag="0.12.0",
    gpu_tag="0.12.0-gpu",
    docs="https://github.com/pytorch/serve/tree/master/kubernetes/kserve",
)

CLUSTER_AUTOSCALER = HelmChart(
    chart="cluster-autoscaler",
    version="9.59.0",
    repository="https://kubernetes.github.io/autoscaler",
    docs="https://github.com/kubernetes/autoscaler/tree/master/cluster-autoscaler/cloudprovider/aws",
)
# The autoscaler's minor version must match the cluster's.
CLUSTER_AUTOSCALER_IMAGE_TAGS: dict[str, str] = {"1.33": "v1.33.0", "1.34": "v1.34.0", "1.35": "v1.35.2"}

# Event-driven autoscaling: scales model predictors on their serving metrics (Prometheus) and to zero (KEDA 2.20.2;
# its operator, metrics API server and admission webhooks in one chart, CRDs included).
KEDA = HelmChart(
    chart="keda",
    version="2.20.2",
    repository="https://kedacore.github.io/charts",
    docs="https://keda.sh/docs/2.20/deploy/#helm",
)

# The VPC CNI, managed so that it runs with its own IRSA role and enforces NetworkPolicies.
VPC_CNI = EksAddon(
    name="vpc-cni",
    version="v1.20.4-eksbuild.1",
    docs="https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html",
)

# kube-proxy and CoreDNS, which EKS installs self-managed at cluster creation, as managed add-ons pinned per cluster
# version: kube-proxy's minor must match the cluster's, and each CoreDNS build lists the versions it supports.
# The latest build of each version in the add-on version tables (check one against a cluster with
# `aws eks describe-addon-versions --addon-name kube-proxy --kubernetes-version 1.34`).
KUBE_PROXY_DOCS = "https://docs.aws.amazon.com/eks/latest/userguide/managing-kube-proxy.html#kube-proxy-versions"
COREDNS_DOCS = "https://docs.aws.amazon.com/eks/latest/userguide/managing-coredns.html#coredns-versions"
KUBE_PROXY: dict[str, EksAddon] = {
    version: EksAddon(name="kube-proxy", version=build, docs=KUBE_PROXY_DOCS, cluster_version=version)
    for version, build in {"1.33": "v1.33.10-eksbuild.13", "1.34": "v1.34.6-eksbuild.13",
                           "1.35": "v1.35.3-eksbuild.13"}.items()
}
COREDNS: dict[str, EksAddon] = {
    version: EksAddon(name="coredns", version=build, docs=COREDNS_DOCS, cluster_version=version)
    for version, build in {"1.33": "v1.12.4-eksbuild.18", "1.34": "v1.13.2-eksbuild.11",
                           "1.35": "v1.14.3-eksbuild.3"}.items()
}

# Resource metrics for the HPAs KServe creates in Standard mode (EKS does not run it by default).
METRICS_SERVER = HelmChart(
    chart="metrics-server",
    version="3.12.2",
    repository="https://kubernetes-sigs.github.io/metrics-server/",
    docs="https://docs.aws.amazon.com/eks/latest/userguide/metrics-server.html",
)

# Prometheus operator, Prometheus, Alertmanager, Grafana, kube-state-metrics and node-exporter in one release
# (Grafana subchart 12.11.1, kube-state-metrics 8.4.0, prometheus-node-exporter 4.56.1, operator v0.93.1).
KUBE_PROMETHEUS_STACK = HelmChart(
    chart="kube-prometheus-stack",
    version="88.5.3",
    repository="https://prometheus-community.github.io/helm-charts",
    docs="https://github.com/prometheus-community/helm-charts/tree/main/charts/kube-prometheus-stack",
)

# The prometheus-operator CRDs (monitoring.coreos.com) as a release of their own, so a chart bump upgrades them:
# Helm never upgrades what kube-prometheus-stack ships in its crds/ directory. Keep its appVersion equal to the
# operator's: 31.0.1 and kube-prometheus-stack 88.5.3 both carry operator v0.93.1 (appVersion of each Chart.yaml,
# https://github.com/prometheus-community/helm-charts/blob/prometheus-operator-crds-31.0.1/charts/prometheus-operator-crds/Chart.yaml
# https://github.com/prometheus-community/helm-charts/blob/kube-prometheus-stack-88.5.3/charts/kube-prometheus-stack/Chart.yaml).
PROMETHEUS_OPERATOR_CRDS = HelmChart(
    chart="prometheus-operator-crds",
    version="31.0.1",
    repository="https://prometheus-community.github.io/helm-charts",
    docs="https://github.com/prometheus-community/helm-charts/tree/main/charts/prometheus-operator-crds",
)

# GPU metrics from NVIDIA DCGM (exporter image 4.5.3-4.8.2) on every GPU node.
DCGM_EXPORTER = HelmChart(
    chart="dcgm-exporter",
    version="4.8.2",
    repository="https://nvidia.github.io/dcgm-exporter/helm-charts",
    docs="https://docs.nvidia.com/datacenter/cloud-native/gpu-telemetry/latest/dcgm-exporter.html",
)

# Elastic Cloud on Kubernetes: the operator and its CRDs (Elasticsearch, Kibana, Beat, ...), one chart.
ECK_OPERATOR = HelmChart(
    chart="eck-operator",
    version="3.5.0",
    repository="https://helm.elastic.co",
    docs="https://www.elastic.co/docs/deploy-manage/deploy/cloud-on-k8s/install-using-helm-chart",
)

# Elasticsearch, Kibana and Filebeat release together, and ECK pulls docker.elastic.co/<product>:<version>.
# 9.4.3 is the version ECK 3.5.0's own samples and end-to-end matrix run.
ELASTIC_STACK_VERSION = "9.4.3"
ELASTIC_STACK_DOCS = "https://www.elastic.co/docs/release-notes/elasticsearch#elasticsearch-9.4.3-release-notes"

# Prometheus metrics of the Elasticsearch cluster (exporter v1.11.0).
ELASTICSEARCH_EXPORTER = HelmChart(
    chart="prometheus-elasticsearch-exporter",
    version="7.4.0",
    repository="https://prometheus-community.github.io/helm-charts",
    docs="https://github.com/prometheus-community/helm-charts/tree/main/charts/prometheus-elasticsearch-exporter",
)


@dataclass(frozen=True)
class ContainerImage:
    """A container image the platform runs itself (not through a chart), pinned to one exact tag."""

    image: str
    tag: str
    docs: str

    @property
    def reference(self) -> str:
        return f"{self.image}:{self.tag}"


# The Job that applies the log retention and snapshot policies to Elasticsearch (runs as uid 100).
CURL = ContainerImage(image="docker.io/curlimages/curl", tag="8.20.0", docs="https://github.com/curl/curl-container")

# Karpenter: the GPU provisioner of `provisioner: karpenter` pools. The chart carries its CRDs (NodePool, EC2NodeClass,
# NodeClaim) in crds/, which Helm installs on the first install and never upgrades: before a bump, apply the new
# version's CRDs (https://karpenter.sh/docs/upgrading/upgrade-guide/#crd-upgrades).
KARPENTER = HelmChart(
    chart="oci://public.ecr.aws/karpenter/karpenter",
    version="1.14.1",
    repository="",
    docs="https://karpenter.sh/docs/getting-started/getting-started-with-karpenter/",
)


@dataclass(frozen=True)
class AmiRelease:
    """One dated release of an EKS-optimized AMI family, as a Karpenter EC2NodeClass alias (`family@version`)."""

    family: str
    version: str
    docs: str

    @property
    def alias(self) -> str:
        return f"{self.family}@{self.version}"


# The EKS-optimized AL2023 release every Karpenter node boots; Karpenter picks the NVIDIA variant for GPU instance
# types and the build of the cluster's Kubernetes version (this release has 1.33 to 1.36). Never `@latest`: an
# untested image would reach every node. Bumping it makes every Karpenter node drift and be replaced (within the
# pools' disruption budgets), which is how GPU nodes get OS and driver patches.
KARPENTER_NODE_AMI = AmiRelease(family="al2023", version="v20260714",
                                docs="https://github.com/awslabs/amazon-eks-ami/releases/tag/v20260714")

# The capacity floor's placeholder pods (uid 65535): they only hold GPUs for real pods to preempt. The tag Kubernetes
# 1.34 and 1.35 use for their sandboxes.
PAUSE = ContainerImage(image="registry.k8s.io/pause", tag="3.10.1",
                       docs="https://github.com/kubernetes/kubernetes/tree/master/build/pause")

HELM_CHARTS: tuple[HelmChart, ...] = (NVIDIA_DEVICE_PLUGIN, CLUSTER_AUTOSCALER, KEDA, METRICS_SERVER, CERT_MANAGER,
                                      KSERVE_CRD, KSERVE,
                                      PROMETHEUS_OPERATOR_CRDS, KUBE_PROMETHEUS_STACK, DCGM_EXPORTER,
                                      ECK_OPERATOR, ELASTICSEARCH_EXPORTER, KARPENTER)
SERVING_RUNTIMES: tuple[ServingRuntimeImage, ...] = (TORCHSERVE_RUNTIME,)
EKS_ADDONS: tuple[EksAddon, ...] = (EBS_CSI_DRIVER, VPC_CNI, *KUBE_PROXY.values(), *COREDNS.values())
CONTAINER_IMAGES: tuple[ContainerImage, ...] = (CURL, PAUSE)
NODE_AMIS: tuple[AmiRelease, ...] = (KARPENTER_NODE_AMI,)
