"""The graph model: what a record waits for, and the identity of Kubernetes objects."""

from __future__ import annotations

import pytest

from infra.graph_checks import ResourceGraph
from infra.graph_checks.graph import HELM_RELEASE, KubeObject, chart_name, kube_object, lookup, provider_urn
from tests.graph_checks.conftest import record, reference, result_of

PROVIDER = "pulumi:providers:kubernetes"


def test_provider_urn_strips_the_id_after_the_last_separator():
    provider = record(PROVIDER, "k8s")
    assert provider_urn(record(HELM_RELEASE, "r", provider=reference(provider))) == provider.urn
    assert provider_urn(record(HELM_RELEASE, "r")) is None


def test_a_record_waits_for_dependencies_provider_and_parent_transitively():
    nodes = record("aws:eks/nodeGroup:NodeGroup", "system")
    cluster = record("aws:eks/cluster:Cluster", "eks")
    provider = record(PROVIDER, "k8s", depends_on=[cluster.urn, nodes.urn])
    crds = record("ai-platform:serving:KServe", "kserve", depends_on=[cluster.urn])
    release = record(HELM_RELEASE, "crds", provider=reference(provider), parent=crds.urn)
    unrelated = record("aws:s3/bucket:Bucket", "models")
    graph = ResourceGraph(result_of(nodes, cluster, provider, crds, release, unrelated))
    assert graph.dependencies(release) == {provider.urn, nodes.urn, cluster.urn, crds.urn}
    assert graph.waits_for_any(release, [nodes]) and not graph.waits_for_any(release, [unrelated])
    assert graph.dependencies(nodes) == frozenset()


def test_unregistered_urns_are_not_edges():
    # The stack itself is never recorded; a top-level resource's parent leads nowhere.
    orphan = record(HELM_RELEASE, "r", parent="urn:pulumi:test::ai-platform::pulumi:pulumi:Stack::ai-platform-test",
                    depends_on=["urn:pulumi:test::ai-platform::aws:s3/bucket:Bucket::gone"])
    assert ResourceGraph(result_of(orphan)).dependencies(orphan) == frozenset()


@pytest.mark.parametrize(("type_token", "inputs", "expected"), [
    ("kubernetes:apps/v1:Deployment",
     {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "serving"}},
     KubeObject("apps/v1", "Deployment", "serving", "api")),
    ("kubernetes:core/v1:Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vision"}},
     KubeObject("v1", "Namespace", None, "vision")),
    # Inputs a record lacks come from its type token.
    ("kubernetes:serving.kserve.io/v1beta1:InferenceService", {},
     KubeObject("serving.kserve.io/v1beta1", "InferenceService", None, None)),
    (HELM_RELEASE, {"chart": "cert-manager"}, None),
    (PROVIDER, {}, None),
    ("aws:s3/bucket:Bucket", {}, None),
])
def test_kube_object(type_token, inputs, expected):
    assert kube_object(record(type_token, "r", inputs=inputs)) == expected


@pytest.mark.parametrize(("api_version", "group", "custom"), [
    ("v1", "", False),
    ("apps/v1", "apps", False),
    ("networking.k8s.io/v1", "networking.k8s.io", False),
    ("admissionregistration.k8s.io/v1", "admissionregistration.k8s.io", False),
    ("serving.kserve.io/v1beta1", "serving.kserve.io", True),
    ("elasticsearch.k8s.elastic.co/v1", "elasticsearch.k8s.elastic.co", True),
])
def test_group_and_custom(api_version, group, custom):
    obj = KubeObject(api_version, "Kind", None, "x")
    assert (obj.group, obj.is_custom) == (group, custom)


@pytest.mark.parametrize(("chart", "name"), [
    ("cert-manager", "cert-manager"),
    ("oci://ghcr.io/kserve/charts/kserve-crd", "kserve-crd"),
    ("", ""),
])
def test_chart_name(chart, name):
    assert chart_name(record(HELM_RELEASE, "r", inputs={"chart": chart})) == name


def test_lookup():
    inputs = {"vpcConfig": {"endpointPublicAccess": False, "subnetIds": ["subnet-1"]}}
    assert lookup(inputs, "vpcConfig.endpointPublicAccess") is False
    assert lookup(inputs, "vpcConfig.securityGroupIds", []) == []
    assert lookup(inputs, "vpcConfig.subnetIds.0") is None  # lists are not indexed
