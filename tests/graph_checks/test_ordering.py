"""Check "ordering": releases and workloads wait for nodes, custom resources for their CRDs; timeouts suffice."""

from __future__ import annotations

import dataclasses

import pytest

from infra.graph_checks import Finding, ResourceGraph
from infra.graph_checks.graph import HELM_RELEASE, NODE_GROUP, STACK_REFERENCE, provider_urn
from infra.graph_checks.ordering import CRD_CHARTS, MIN_RELEASE_TIMEOUT_S, check, crd_chart, timeout_problem
from tests.graph_checks.conftest import (
    STACKS,
    named,
    record,
    reference,
    renamed,
    result_of,
    seeded,
    with_inputs,
    with_options,
)

NO_NODES = ("{what} does not wait for {source} (through its dependencies or its provider): on a first deploy its "
            "pods may find no node to run on")


# -- pure functions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("group", "chart"), [
    ("serving.kserve.io", "kserve-crd"),
    ("monitoring.coreos.com", "prometheus-operator-crds"),
    ("elasticsearch.k8s.elastic.co", "eck-operator"),
    ("kibana.k8s.elastic.co", "eck-operator"),
    ("beat.k8s.elastic.co", "eck-operator"),
    ("karpenter.sh", "karpenter"),
    ("karpenter.k8s.aws", "karpenter"),
    ("keda.sh.example.com", None),
    ("evil.kserve.io.example.com", None),
])
def test_crd_chart(group, chart):
    assert crd_chart(group) == chart


@pytest.mark.parametrize(("timeout", "expected"), [
    (None, "sets no timeout: the provider's default of 300 s is too short for a first deploy; set at least 600 s"),
    (300.0, "has a timeout of 300 s, shorter than the first-deploy minimum of 600 s"),
    (MIN_RELEASE_TIMEOUT_S, None),
    (900.0, None),
])
def test_timeout_problem(timeout, expected):
    inputs = {"chart": "cert-manager"} if timeout is None else {"chart": "cert-manager", "timeout": timeout}
    assert timeout_problem(record(HELM_RELEASE, "r", inputs=inputs)) == expected


def test_custom_resource_of_an_unmapped_group_is_found():
    nodes = record(NODE_GROUP, "system")
    widget = record("kubernetes:widgets.example.com/v1:Widget", "widget", depends_on=[nodes.urn],
                    inputs={"apiVersion": "widgets.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert check(ResourceGraph(result_of(nodes, widget)), None) == [Finding(
        "ordering", widget.urn, "Widget w: no chart in CRD_CHARTS installs the CRDs of widgets.example.com, so "
                                "nothing proves they exist when it is created")]


def test_a_node_pool_must_wait_for_the_karpenter_release():
    nodes = record(NODE_GROUP, "system", inputs={"scalingConfig": {"minSize": 2}})
    release = record(HELM_RELEASE, "karpenter", depends_on=[nodes.urn],
                     inputs={"chart": "oci://public.ecr.aws/karpenter/karpenter", "timeout": 900})
    pool = record("kubernetes:karpenter.sh/v1:NodePool", "pool", depends_on=[nodes.urn],
                  inputs={"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}})
    assert check(ResourceGraph(result_of(nodes, release, pool)), None) == [Finding(
        "ordering", pool.urn, "NodePool gpu does not wait for the Helm release of karpenter, which installs its CRD: "
                              "a first deploy may reject it (no matches for kind NodePool)")]
    waiting = record("kubernetes:karpenter.sh/v1:NodePool", "pool", depends_on=[release.urn],
                     inputs={"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}})
    assert check(ResourceGraph(result_of(nodes, release, waiting)), None) == []


def test_waiting_through_the_parent_counts():
    # The SDK registers a child only once its parent's URN is known, which waits for the parent's depends_on.
    nodes = record(NODE_GROUP, "system", inputs={"scalingConfig": {"minSize": 2}})
    component = record("ai-platform:serving:KServe", "kserve", depends_on=[nodes.urn])
    release = record(HELM_RELEASE, "cert-manager", parent=component.urn, inputs={"chart": "cert-manager",
                                                                                   "timeout": 900})
    assert check(ResourceGraph(result_of(nodes, component, release)), None) == []


def test_waiting_for_a_pool_that_may_be_empty_does_not_count():
    # A GPU pool with minSize 0 may have no node at all when the release is installed.
    pool = record(NODE_GROUP, "gpu", inputs={"scalingConfig": {"minSize": 0}})
    release = record(HELM_RELEASE, "device-plugin", depends_on=[pool.urn], inputs={"chart": "x", "timeout": 900})
    assert [f.subject for f in check(ResourceGraph(result_of(pool, release)), None)] == [release.urn]


def test_crd_charts_are_chart_names_not_references():
    assert all("/" not in chart for chart in CRD_CHARTS.values())


# -- shipped stacks -------------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stack_deploys_in_order(stack, preview, stack_config):
    assert check(ResourceGraph(preview(stack)), stack_config(stack)) == []


# -- seeded defects in a real preview -------------------------------------------------------------------------

def _baseline(preview, stack_config, stack):
    result = preview(stack)
    return result, stack_config(stack), set(check(ResourceGraph(result), stack_config(stack)))


def test_release_that_does_not_wait_for_nodes_is_found(preview, stack_config):
    result, config, baseline = _baseline(preview, stack_config, "dev")
    release = named(result, HELM_RELEASE, "aip-dev-kserve-cert-manager")
    graph = ResourceGraph(result)
    provider = graph.get(provider_urn(release))
    node_groups = {r.urn for r in graph.of_type(NODE_GROUP)}
    # A second provider for the same cluster that does not wait for the node groups, used by this release only.
    without_nodes = [u for u in provider.options["dependsOn"] if u not in node_groups]
    early = renamed(with_options(provider, dependsOn=without_nodes), f"{provider.name}-early")
    broken = seeded(result, add=[early], replace=[with_options(
        release, provider=reference(early),
        dependsOn=[u for u in release.options["dependsOn"] if u not in node_groups])])
    assert set(check(ResourceGraph(broken), config)) - baseline == {Finding(
        "ordering", release.urn, NO_NODES.format(what="Helm release cert-manager",
                                                 source="a node group with at least one node"))}


def test_custom_resource_that_does_not_wait_for_its_crd_chart_is_found(preview, stack_config):
    result, config, baseline = _baseline(preview, stack_config, "dev")
    rule = named(result, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "aip-dev-metrics-rule-aip-gpu-rules")
    releases = {r.urn for r in result.resources if r.type == HELM_RELEASE}
    broken = seeded(result, replace=[with_options(
        rule, dependsOn=[u for u in rule.options["dependsOn"] if u not in releases])])
    name = f"{rule.inputs['metadata']['namespace']}/{rule.inputs['metadata']['name']}"
    assert set(check(ResourceGraph(broken), config)) - baseline == {Finding(
        "ordering", rule.urn, f"PrometheusRule {name} does not wait for the Helm release of prometheus-operator-crds, "
                              f"which installs its CRD: a first deploy may reject it (no matches for kind "
                              f"PrometheusRule)")}


def test_release_without_timeout_and_with_a_short_one_are_found(preview, stack_config):
    result, config, baseline = _baseline(preview, stack_config, "dev")
    plugin = named(result, HELM_RELEASE, "aip-dev-nvidia-device-plugin-release")
    crds = named(result, HELM_RELEASE, "aip-dev-kserve-crds")
    broken = seeded(result, replace=[with_inputs(plugin, timeout=None), with_inputs(crds, timeout=300)])
    assert set(check(ResourceGraph(broken), config)) - baseline == {
        Finding("ordering", plugin.urn, "Helm release nvidia-device-plugin sets no timeout: the provider's default "
                                        "of 300 s is too short for a first deploy; set at least 600 s"),
        Finding("ordering", crds.urn, "Helm release kserve-crd has a timeout of 300 s, shorter than the "
                                      "first-deploy minimum of 600 s"),
    }


def test_team_workload_that_does_not_wait_for_its_platform_is_found(preview, stack_config):
    result, config, baseline = _baseline(preview, stack_config, "vision-dev")
    service = named(result, "kubernetes:serving.kserve.io/v1beta1:InferenceService", "aip-vision-dev-digits-isvc")
    graph = ResourceGraph(result)
    assert graph.of_type(STACK_REFERENCE) and not graph.of_type(NODE_GROUP)
    provider = graph.get(provider_urn(service))
    # Registered at the top level, with no dependencies, through a provider that waits for nothing.
    early = renamed(with_options(provider, dependsOn=[]), f"{provider.name}-early")
    detached = dataclasses.replace(with_options(service, provider=reference(early), dependsOn=[]),
                                   parent=graph.get(service.parent).parent)
    name = f"{service.inputs['metadata']['namespace']}/{service.inputs['metadata']['name']}"
    assert set(check(ResourceGraph(seeded(result, add=[early], replace=[detached])), config)) - baseline == {
        Finding("ordering", service.urn, NO_NODES.format(what=f"InferenceService {name}",
                                                         source="the platform stack reference")),
        Finding("ordering", service.urn, f"InferenceService {name} does not wait for the platform stack reference, "
                                         f"whose stack installs the CRDs of serving.kserve.io"),
    }
