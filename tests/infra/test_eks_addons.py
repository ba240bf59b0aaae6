"""kube-proxy and CoreDNS as managed add-ons pinned per cluster version, and the cluster's upgrade policy."""

from __future__ import annotations

import pytest

from infra.aws_context import AwsContext
from infra.components.cluster import Cluster, ClusterArgs
from infra.config import ClusterConfig
from infra.docs import versions_table
from infra.versions import COREDNS, EKS_ADDONS, KUBE_PROXY, SUPPORTED_EKS_VERSIONS
from tests.conftest import only

KEY = "arn:aws:kms:us-east-1:123456789012:key/test"
ADDON = "aws:eks/addon:Addon"


@pytest.mark.parametrize("version", SUPPORTED_EKS_VERSIONS)
def test_every_supported_version_pins_kube_proxy_of_its_own_minor_and_coredns(version):
    assert KUBE_PROXY[version].version.startswith(f"v{version}.")
    assert "-eksbuild." in KUBE_PROXY[version].version and "-eksbuild." in COREDNS[version].version
    assert (KUBE_PROXY[version].cluster_version, COREDNS[version].cluster_version) == (version, version)


def test_pinned_builds_are_in_the_readme_table():
    assert {*KUBE_PROXY.values(), *COREDNS.values()} <= set(EKS_ADDONS)
    table = versions_table()
    for addon in (*KUBE_PROXY.values(), *COREDNS.values()):
        assert f"| {addon.name} (Kubernetes {addon.cluster_version}) | EKS add-on | `{addon.version}` |" in table


@pytest.mark.parametrize("version", SUPPORTED_EKS_VERSIONS)
def test_cluster_manages_kube_proxy_and_coredns_and_stays_in_standard_support(run_component, version):
    def build():
        Cluster("c", ClusterArgs(config=ClusterConfig(version=version), cluster_name="aip-dev",
                                 subnet_ids=["subnet-1", "subnet-2"], secrets_key_arn=KEY, logs_key_arn=KEY,
                                 volume_key_arn=KEY, aws=AwsContext.lookup("us-east-1")))

    result = run_component(build)
    assert only(result, "aws:eks/cluster:Cluster").inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    addons = {r.inputs["addonName"]: r for r in result.of_type(ADDON)}
    system_nodes = only(result, "aws:eks/nodeGroup:NodeGroup")
    for pinned in (KUBE_PROXY[version], COREDNS[version]):
        addon = addons[pinned.name].inputs
        assert addon["addonVersion"] == pinned.version
        # EKS installed self-managed copies at cluster creation; the managed add-on takes them over.
        assert (addon["resolveConflictsOnCreate"], addon["resolveConflictsOnUpdate"]) == ("OVERWRITE", "OVERWRITE")
    # CoreDNS's pods need nodes before the add-on can become active.
    assert system_nodes.urn in addons["coredns"].options["dependsOn"]
