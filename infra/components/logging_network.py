"""Who may talk to the logging stack: NetworkPolicies that deny everything in `logging` and `elastic-system`,
then allow exactly the flows ECK, Elasticsearch, Kibana, Filebeat, the exporter and the setup Job need.

The VPC CNI's network policy agent enforces them (infra/components/cluster.py turns it on). Three of its
behaviours shape the rules:

- Traffic from the pod's own node is always allowed, so kubelet probes need no rule; `kubectl port-forward`
  connects inside the pod's network namespace and never crosses the pod's interface, so it needs none
  either. That is how users reach Kibana and Elasticsearch (docs/observability.md), hence no ingress
  rule for Kibana at all: nothing in the cluster calls it.
  https://github.com/aws/aws-network-policy-agent/blob/main/pkg/fwruleprocessor/fw_rule_processor.go
- The agent sees a connection to a Service before kube-proxy translates it, so an egress rule allows a
  Service's ClusterIP only when the rule's pod selector matches that Service's own selector. The
  Elasticsearch selector below is therefore exactly the one ECK gives its HTTP services, no more labels.
  https://github.com/aws/amazon-network-policy-controller-k8s/blob/main/pkg/resolvers/endpoints.go
- The Kubernetes API is not a pod: the `kubernetes` Service has no selector and EKS's endpoint addresses
  (and the service CIDR) are not known to this program, so the operator's egress to the API server is
  port 443 to any address. Likewise the control plane calls the operator's validating webhook from
  its network interfaces in the cluster's subnets, whose addresses are not known either (a
  bring-your-own VPC's CIDR included), so the webhook port is open to any source, and only that port.

Pods are selected by the labels ECK and the charts put on them, never by name.
https://kubernetes.io/docs/concepts/services-networking/network-policies/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.components.team_workspace import MONITORING_NAMESPACE

# ECK's ports (pkg/controller/{elasticsearch,kibana}/network/ports.go), the eck-operator chart's
# `webhook.port`, and the exporter chart's `service.httpPort`.
ELASTICSEARCH_HTTP_PORT, ELASTICSEARCH_TRANSPORT_PORT, KIBANA_PORT = 9200, 9300, 5601
WEBHOOK_PORT, EXPORTER_PORT = 9443, 9108
# S3 (snapshots), STS (IRSA) and the Kubernetes API all speak HTTPS on 443.
HTTPS_PORT, DNS_PORT = 443, 53
ECK_TYPE_LABEL = "common.k8s.elastic.co/type"
# The eck-operator chart's default `nameOverride`; its pods' `app.kubernetes.io/name`.
OPERATOR_CHART_NAME = "elastic-operator"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class LoggingWorkloads:
    """Where the parts of the logging stack run and the names their pods' labels are derived from.

    Attributes:
        operator_namespace: Namespace of the ECK operator.
        logging_namespace: Namespace of Elasticsearch, Kibana, the exporter and the setup Job.
        filebeat_namespace: Namespace of the Filebeat Beat (its pods are not governed here).
        elasticsearch: Name of the Elasticsearch resource.
        kibana: Name of the Kibana resource.
        beat: Name of the Filebeat Beat resource.
        operator_release: Helm release name of the ECK operator.
        exporter_release: Helm release name of the Elasticsearch exporter.
        exporter_chart: Chart name of the exporter (its pods' `app.kubernetes.io/name`).
        setup_pod_labels: Labels of the setup Job's pods.
        monitoring_namespace: Namespace of the Prometheus that scrapes the exporter.
    """

    operator_namespace: str
    logging_namespace: str
    filebeat_namespace: str
    elasticsearch: str
    kibana: str
    beat: str
    operator_release: str
    exporter_release: str
    exporter_chart: str
    setup_pod_labels: tuple[tuple[str, str], ...]
    monitoring_namespace: str = MONITORING_NAMESPACE


def elasticsearch_pods(name: str) -> dict[str, str]:
    """ECK's labels of an Elasticsearch cluster's pods, and the selector of its HTTP Services.

    https://github.com/elastic/cloud-on-k8s/blob/v3.5.0/pkg/controller/elasticsearch/label/label.go
    """
    return {ECK_TYPE_LABEL: "elasticsearch", "elasticsearch.k8s.elastic.co/cluster-name": name}


def kibana_pods(name: str) -> dict[str, str]:
    """https://github.com/elastic/cloud-on-k8s/blob/v3.5.0/pkg/apis/kibana/v1/labels.go"""
    return {ECK_TYPE_LABEL: "kibana", "kibana.k8s.elastic.co/name": name}


def beat_pods(name: str) -> dict[str, str]:
    """https://github.com/elastic/cloud-on-k8s/blob/v3.5.0/pkg/apis/beat/v1beta1/labels.go"""
    return {ECK_TYPE_LABEL: "beat", "beat.k8s.elastic.co/name": name}


def operator_pods(release: str) -> dict[str, str]:
    """The eck-operator chart's selector labels (`eck-operator.selectorLabels`)."""
    return {"app.kubernetes.io/name": OPERATOR_CHART_NAME, "app.kubernetes.io/instance": release}


def exporter_pods(chart: str, release: str) -> dict[str, str]:
    """The exporter chart's selector labels (`elasticsearch-exporter.selectorLabels`, no nameOverride)."""
    return {"app.kubernetes.io/name": chart, "app.kubernetes.io/instance": release}


def _ports(*numbers: int, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": n} for n in numbers]


def _pods(labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    """A peer: pods with these labels, in the policy's own namespace unless another one is named."""
    peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(labels)}}
    if namespace is not None:
        peer["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}
    return peer


def _namespace(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}


def _baseline() -> dict[str, dict[str, Any]]:
    """Deny every flow in and out of the namespace, except name lookups at the cluster's DNS."""
    return {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
            "to": [_pods({"k8s-app": "kube-dns"}, "kube-system")],
            "ports": _ports(DNS_PORT, protocol="UDP") + _ports(DNS_PORT)}]},
    }


def _client_of_elasticsearch(selector: dict[str, str], elasticsearch: dict[str, Any]) -> dict[str, Any]:
    """Pods that call Elasticsearch's HTTPS API and nothing else."""
    return {"podSelector": {"matchLabels": selector}, "policyTypes": ["Egress"],
            "egress": [{"to": [elasticsearch], "ports": _ports(ELASTICSEARCH_HTTP_PORT)}]}


def logging_network_policies(w: LoggingWorkloads) -> dict[str, dict[str, dict[str, Any]]]:
    """The NetworkPolicies of the logging stack, by namespace and then by name.

    Allowed, and nothing else: DNS from every pod; Elasticsearch's HTTPS port from Kibana, the
    exporter, the setup Job, the operator and Filebeat; its transport port between its own nodes;
    Elasticsearch out to HTTPS (S3 snapshots, STS for IRSA); Prometheus (`monitoring`) to the
    exporter's metrics port; the operator out to the Kubernetes API and Elasticsearch, and in on its
    webhook port.
    """
    es = elasticsearch_pods(w.elasticsearch)
    es_here, es_from_operator = _pods(es), _pods(es, w.logging_namespace)
    exporter = exporter_pods(w.exporter_chart, w.exporter_release)
    setup = dict(w.setup_pod_labels)
    operator = operator_pods(w.operator_release)
    logging = {
        **_baseline(),
        "allow-elasticsearch": {
            "podSelector": {"matchLabels": es}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [_pods(kibana_pods(w.kibana)), _pods(exporter), _pods(setup),
                          _pods(operator, w.operator_namespace), _pods(beat_pods(w.beat), w.filebeat_namespace)],
                 "ports": _ports(ELASTICSEARCH_HTTP_PORT)},
                {"from": [es_here], "ports": _ports(ELASTICSEARCH_TRANSPORT_PORT)},
            ],
            "egress": [
                {"to": [es_here], "ports": _ports(ELASTICSEARCH_TRANSPORT_PORT)},
                # S3 and STS have no fixed addresses (nor do their VPC endpoints' interfaces, if any).
                {"ports": _ports(HTTPS_PORT)},
            ],
        },
        "allow-kibana": _client_of_elasticsearch(kibana_pods(w.kibana), es_here),
        "allow-setup-job": _client_of_elasticsearch(setup, es_here),
        "allow-exporter": {
            **_client_of_elasticsearch(exporter, es_here),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [_namespace(w.monitoring_namespace)], "ports": _ports(EXPORTER_PORT)}],
        },
    }
    elastic_system = {
        **_baseline(),
        "allow-operator": {
            "podSelector": {"matchLabels": operator}, "policyTypes": ["Ingress", "Egress"],
            # The API server's webhook calls come from addresses this program cannot know (module docstring).
            "ingress": [{"ports": _ports(WEBHOOK_PORT)}],
            "egress": [
                {"ports": _ports(HTTPS_PORT)},
                {"to": [es_from_operator], "ports": _ports(ELASTICSEARCH_HTTP_PORT)},
            ],
        },
    }
    return {w.logging_namespace: logging, w.operator_namespace: elastic_system}
