"""Check "ordering": on a first `pulumi up`, nothing waits on what is not there yet.

A brand-new cluster has a control plane and nothing else. A Helm release or a workload created before
any node group is ready sits Pending until its timeout; a custom resource created before the chart that
installs its CRD is rejected ("no matches for kind"). Later deploys never show either defect, so only
the graph can prove a first deploy works.
"""

from __future__ import annotations

from fnmatch import fnmatch

from infra.config import StackConfig
from infra.graph_checks.findings import Finding
from infra.graph_checks.graph import NODE_GROUP, STACK_REFERENCE, KubeObject, ResourceGraph, chart_name, lookup
from infra.preview.runner import ResourceRecord

CHECK = "ordering"

# The Kubernetes provider waits 300 s for a release by default. A first deploy pulls every image onto
# brand-new nodes, and a GPU pool may first scale up from zero: 300 s fails releases that would succeed.
MIN_RELEASE_TIMEOUT_S = 600

# Kinds whose objects become pods, built-in or through an operator; they need schedulable nodes.
WORKLOAD_KINDS = frozenset({"Pod", "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob",
                            "InferenceService", "Elasticsearch", "Kibana", "Beat"})

# Which chart installs the CRDs of an API group (patterns match group names).
CRD_CHARTS = {
    "serving.kserve.io": "kserve-crd",
    "monitoring.coreos.com": "prometheus-operator-crds",
    "*.k8s.elastic.co": "eck-operator",
    "karpenter.sh": "karpenter",
    "karpenter.k8s.aws": "karpenter",
    "keda.sh": "keda",
}


def crd_chart(group: str) -> str | None:
    """The chart that installs the CRDs of an API group, or None when no entry of CRD_CHARTS matches."""
    return next((chart for pattern, chart in CRD_CHARTS.items() if fnmatch(group, pattern)), None)


def timeout_problem(release: ResourceRecord) -> str | None:
    """What is wrong with a Helm release's timeout for a first deploy, or None."""
    timeout = release.inputs.get("timeout")
    if timeout is None:
        return (f"sets no timeout: the provider's default of 300 s is too short for a first deploy; set at least "
                f"{MIN_RELEASE_TIMEOUT_S} s")
    if float(timeout) < MIN_RELEASE_TIMEOUT_S:
        return (f"has a timeout of {float(timeout):g} s, shorter than the first-deploy minimum of "
                f"{MIN_RELEASE_TIMEOUT_S} s")
    return None


def check(graph: ResourceGraph, config: StackConfig) -> list[Finding]:
    """Findings for releases and workloads that may start before nodes or CRDs exist, and short timeouts."""
    del config  # the graph says what a stack builds on
    return _wait_for_nodes(graph) + _wait_for_crds(graph) + [
        Finding(CHECK, release.urn, f"Helm release {chart_name(release)} {problem}")
        for release in graph.helm_releases() if (problem := timeout_problem(release)) is not None]


def _node_sources(graph: ResourceGraph) -> tuple[list[ResourceRecord], str]:
    """What provides nodes: the stack's node groups that always have one, or (a team stack) its platform.

    A group that may scale to zero (a GPU pool with minSize 0) gives no schedulable node to wait for.
    """
    node_groups = graph.of_type(NODE_GROUP)
    if node_groups:
        return [g for g in node_groups if (lookup(g.inputs, "scalingConfig.minSize") or 0) >= 1], \
            "a node group with at least one node"
    return graph.of_type(STACK_REFERENCE), "the platform stack reference"


def _wait_for_nodes(graph: ResourceGraph) -> list[Finding]:
    sources, what = _node_sources(graph)
    needing_nodes = [(r, f"Helm release {chart_name(r)}") for r in graph.helm_releases()]
    needing_nodes += [(r, f"{obj.kind} {_name(obj)}") for r, obj in graph.kubernetes_objects(
        lambda o: o.kind in WORKLOAD_KINDS)]
    return [Finding(CHECK, record.urn, f"{label} does not wait for {what} (through its dependencies or its "
                                       f"provider): on a first deploy its pods may find no node to run on")
            for record, label in needing_nodes if not graph.waits_for_any(record, sources)]


def _wait_for_crds(graph: ResourceGraph) -> list[Finding]:
    findings = []
    releases = graph.helm_releases()
    team_stack = not graph.of_type(NODE_GROUP)
    references = graph.of_type(STACK_REFERENCE)
    for record, obj in graph.kubernetes_objects(lambda o: o.is_custom):
        chart = crd_chart(obj.group)
        installers = [r for r in releases if chart_name(r) == chart]
        if graph.waits_for_any(record, installers):
            continue
        # A team stack builds on its platform, which installed the CRDs before it could be referenced.
        if team_stack and graph.waits_for_any(record, references):
            continue
        subject = f"{obj.kind} {_name(obj)}"
        if chart is None:
            message = (f"{subject}: no chart in CRD_CHARTS installs the CRDs of {obj.group}, so nothing proves "
                       f"they exist when it is created")
        elif team_stack:
            message = (f"{subject} does not wait for the platform stack reference, whose stack installs the CRDs "
                       f"of {obj.group}")
        elif not installers:
            message = f"{subject}: no Helm release of {chart} in the stack installs the CRDs of {obj.group}"
        else:
            message = (f"{subject} does not wait for the Helm release of {chart}, which installs its CRD: a first "
                       f"deploy may reject it (no matches for kind {obj.kind})")
        findings.append(Finding(CHECK, record.urn, message))
    return findings


def _name(obj: KubeObject) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else str(obj.name)
