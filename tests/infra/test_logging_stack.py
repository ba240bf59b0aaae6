"""The logging stack: the API bodies and specs it is made of (pure), each ECK resource against its CRD, the
archive bucket and the component under mocks, and what the shipped stacks preview."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import NamedTuple

import kubernetes_validate
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi_policy import ResourceValidationArgs

from infra.aws_context import AwsContext
from infra.components import log_retention as retention
from infra.components import logging_network as network
from infra.components import logging_stack as stack
from infra.components.gpu_node_pool import DEDICATED_KEY, GPU_TAINT_KEY
from infra.components.log_archive import NONCURRENT_VERSION_DAYS, LogArchive, LogArchiveArgs, archive_lifecycle_rules
from infra.config.observability import ENVIRONMENT_DEFAULTS, LogsConfig
from infra.iam_policies import snapshot_repository_policy
from infra.preview.render import plain
from infra.versions import CURL, DEFAULT_EKS_VERSION, ECK_OPERATOR, ELASTIC_STACK_VERSION, ELASTICSEARCH_EXPORTER
from policies.kubernetes.core.team_namespace_default_deny import is_default_deny_ingress
from policies.kubernetes.elastic import elasticsearch_tls
from tests.conftest import only, policy_of
from tests.crd_schemas import validate_custom_resource

KEY = "arn:aws:kms:us-east-1:123456789012:key/log-archive"
BUCKET = "aip-dev-log-archive-snapshots-0123456"
ROLE = "arn:aws:iam::123456789012:role/aip-dev-log-archive-elasticsearch"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/X"


def logs(environment: str, **overrides) -> LogsConfig:
    values = {**ENVIRONMENT_DEFAULTS[environment]["logs"], **overrides}
    return LogsConfig.model_validate(values, context={"environment": environment})


def manifest(api_version: str, kind: str, name: str, namespace: str, spec: dict) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def es_spec(environment: str, **overrides) -> dict:
    return stack.elasticsearch_spec(logs(environment, **overrides), storage_class="gp3-encrypted", role_arn=ROLE,
                                    region="us-east-1")


# -- retention and snapshots: the API bodies ------------------------------------------------------------------


@pytest.mark.parametrize("days", [30, 365])
def test_ilm_policy_deletes_after_retention_and_only_once_archived(days):
    phases = retention.ilm_policy(days)["policy"]["phases"]
    assert phases["hot"]["actions"] == {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}
    assert phases["delete"]["min_age"] == f"{days}d"
    assert phases["delete"]["actions"] == {"wait_for_snapshot": {"policy": retention.SLM_POLICY}, "delete": {}}
    assert set(phases) == {"hot", "delete"}


def test_slm_policy_snapshots_the_log_data_streams_on_schedule_into_the_archive():
    body = retention.slm_policy("0 30 1 * * ?", 90)
    assert body["schedule"] == "0 30 1 * * ?"
    assert body["repository"] == retention.SNAPSHOT_REPOSITORY
    assert body["config"]["indices"] == ["filebeat-*"]
    assert body["retention"] == {"expire_after": "90d", "min_count": 1}
    assert body["name"].startswith("<") and "{now/d}" in body["name"]


def test_snapshot_repository_is_the_archive_bucket_without_credentials():
    assert retention.snapshot_repository(BUCKET) == {"type": "s3", "settings": {
        "bucket": BUCKET, "base_path": retention.SNAPSHOT_BASE_PATH}}


def test_setup_bodies_are_the_json_of_each_call():
    bodies = retention.setup_bodies(bucket=BUCKET, retention_days=30, schedule="0 0 2 * * ?",
                                    snapshot_retention_days=60)
    assert json.loads(bodies[retention.ILM_FILE]) == retention.ilm_policy(30)
    assert json.loads(bodies[retention.REPOSITORY_FILE]) == retention.snapshot_repository(BUCKET)
    assert json.loads(bodies[retention.SLM_FILE]) == retention.slm_policy("0 0 2 * * ?", 60)


def test_roles_grant_setup_and_monitoring_and_nothing_broader():
    roles = yaml.safe_load(retention.roles_file())
    assert set(roles) == {retention.SETUP_ROLE, retention.MONITOR_ROLE}
    setup, monitor = roles[retention.SETUP_ROLE], roles[retention.MONITOR_ROLE]
    assert not {"all", "manage", "manage_security"} & set(setup["cluster"])
    assert {"manage_ilm", "manage_slm", "cluster:admin/repository/put"} <= set(setup["cluster"])
    assert [i["names"] for i in setup["indices"]] == [[".slm-history-*"]]
    assert monitor == {"cluster": ["monitor"], "indices": [{"names": ["*"], "privileges": ["monitor"]}]}


def test_setup_script_puts_ilm_then_repository_then_slm_with_the_password_on_stdin():
    script = retention.setup_script(stack.ELASTICSEARCH_URL)
    calls = [line.split()[1] for line in script.splitlines() if line.startswith("put ")]
    assert calls == ["_ilm/policy/aip-logs", "_snapshot/aip-log-archive", "_slm/policy/aip-log-snapshots"]
    assert "--config -" in script and "-u " not in script and "--insecure" not in script and " -k " not in script
    assert f"--cacert {retention.CA_DIR}/ca.crt" in script and "https://aip-logs-es-http.logging.svc:9200" in script


def test_content_hash_follows_every_part():
    first = retention.content_hash({"a": 1}, "script")
    assert first == retention.content_hash({"a": 1}, "script") and len(first) == 10
    assert first != retention.content_hash({"a": 2}, "script")
    assert first != retention.content_hash({"a": 1}, "script2")


def test_setup_job_is_restricted_and_mounts_no_api_token():
    job = retention.setup_job_spec(config_map="cm", credentials_secret="user", ca_secret=stack.CA_SECRET,
                                   image=CURL.reference, script="true")
    pod = job["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["image"] == "docker.io/curlimages/curl:8.20.0"
    assert {v["name"]: v for v in pod["volumes"]}["ca"]["secret"]["secretName"] == "aip-logs-es-http-certs-public"
    assert container["resources"]["limits"]


# -- the Elasticsearch cluster, Kibana and Filebeat --------------------------------------------------------------


@pytest.mark.parametrize(("environment", "nodes", "memory", "storage"), [("dev", 1, "4Gi", "50Gi"),
                                                                          ("prod", 3, "8Gi", "500Gi")])
def test_elasticsearch_nodes_spread_over_zones_on_encrypted_volumes(environment, nodes, memory, storage):
    node_set = es_spec(environment)["nodeSets"][0]
    assert node_set["count"] == nodes
    assert node_set["zoneAwareness"] == {"topologyKey": "topology.kubernetes.io/zone"}
    spread = node_set["podTemplate"]["spec"]["topologySpreadConstraints"]
    assert [(c["topologyKey"], c["maxSkew"], c["whenUnsatisfiable"]) for c in spread] == [
        ("topology.kubernetes.io/zone", 1, "DoNotSchedule")]
    claim = node_set["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "elasticsearch-data"
    assert claim["spec"]["storageClassName"] == "gp3-encrypted"
    assert claim["spec"]["resources"]["requests"]["storage"] == storage
    resources = node_set["podTemplate"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"] and resources["limits"]["memory"] == memory


def test_elasticsearch_keeps_tls_runs_non_root_and_needs_no_sysctl():
    spec = es_spec("prod")
    assert spec["http"]["tls"]["selfSignedCertificate"]["disabled"] is False
    assert spec["version"] == ELASTIC_STACK_VERSION
    node_set = spec["nodeSets"][0]
    assert node_set["config"]["node.store.allow_mmap"] is False
    pod = node_set["podTemplate"]["spec"]
    assert "initContainers" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = pod["containers"][0]["securityContext"]
    assert context["privileged"] is False and context["capabilities"] == {"drop": ["ALL"]}
    # ECK's own budget (evictions only while green) stays: a static one would replace it.
    assert "podDisruptionBudget" not in spec
    violations = []
    elasticsearch_tls.validate(ResourceValidationArgs(elasticsearch_tls.ELASTICSEARCH, {"spec": spec}, "urn", "es",
                                                      None, None), violations.append)
    assert violations == []


def test_elasticsearch_reads_the_irsa_token_where_the_s3_repository_looks():
    pod = es_spec("dev")["nodeSets"][0]["podTemplate"]["spec"]
    assert pod["serviceAccountName"] == stack.ELASTICSEARCH_SERVICE_ACCOUNT
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AWS_ROLE_ARN"] == ROLE
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == \
        "/usr/share/elasticsearch/config/repository-s3/aws-web-identity-token-file"
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == "/usr/share/elasticsearch/config/repository-s3" and mount["readOnly"] is True
    token = {v["name"]: v for v in pod["volumes"]}[mount["name"]]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "sts.amazonaws.com" and token["path"] == "aws-web-identity-token-file"


@pytest.mark.parametrize(("mode", "policy"), [("protect", "DeleteOnScaledownOnly"), ("retain", "DeleteOnScaledownOnly"),
                                              ("none", "DeleteOnScaledownAndClusterDeletion")])
def test_data_volumes_outlive_the_cluster_wherever_the_archive_does(mode, policy):
    assert es_spec("dev", archiveDeletionProtection=mode)["volumeClaimDeletePolicy"] == policy


def test_kibana_uses_the_cluster_over_tls():
    spec = stack.kibana_spec(3)
    assert spec["elasticsearchRef"] == {"name": stack.CLUSTER} and spec["count"] == 2
    assert spec["http"]["tls"]["selfSignedCertificate"]["disabled"] is False
    assert spec["podTemplate"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert spec["podTemplate"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    assert stack.kibana_spec(1)["count"] == 1


def tolerated(tolerations: list[dict], key: str, value: str, effect: str) -> bool:
    """Kubernetes' toleration matching (v1.Toleration.ToleratesTaint)."""
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != effect:
            continue
        if toleration.get("operator", "Equal") == "Exists":
            if not toleration.get("key") or toleration["key"] == key:
                return True
        elif toleration.get("key") == key and toleration.get("value") == value:
            return True
    return False


def test_filebeat_reaches_every_node_gpu_and_dedicated_pools_included():
    pod = stack.filebeat_spec(3, retention.ILM_POLICY)["daemonSet"]["podTemplate"]["spec"]
    for key, value, effect in [(GPU_TAINT_KEY, "true", "NoSchedule"), (DEDICATED_KEY, "search", "NoSchedule"),
                               ("node.kubernetes.io/not-ready", "", "NoExecute")]:
        assert tolerated(pod["tolerations"], key, value, effect), key
    container = pod["containers"][0]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/var/log/containers", "/var/log/pods"}
    assert all(m["readOnly"] for m in container["volumeMounts"])
    context = container["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]} and context["privileged"] is False
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"] and container["resources"]["requests"]


def test_filebeat_enriches_with_kubernetes_metadata_and_names_the_lifecycle_policy():
    spec = stack.filebeat_spec(1, retention.ILM_POLICY)
    assert spec["type"] == "filebeat" and spec["elasticsearchRef"] == {"name": "aip-logs", "namespace": "logging"}
    config = spec["config"]
    source = config["filebeat.inputs"][0]
    assert source["type"] == "filestream" and source["paths"] == ["/var/log/containers/*.log"]
    assert source["parsers"] == [{"container": {"stream": "all", "format": "auto"}}]
    # Short-lived pods write small files: Filebeat 9 would skip files under its 1024-byte fingerprint.
    assert source["prospector.scanner.fingerprint.length"] == 64
    processors = {next(iter(p)): next(iter(p.values())) for p in source["processors"]}
    assert processors["add_kubernetes_metadata"]["matchers"] == [{"logs_path": {"logs_path": "/var/log/containers/"}}]
    assert config["setup.ilm.policy_name"] == "aip-logs" and config["setup.ilm.overwrite"] is False
    assert config["setup.template.settings"]["index.number_of_replicas"] == 0
    assert stack.filebeat_config(3, "aip-logs")["setup.template.settings"]["index.number_of_replicas"] == 1


@pytest.fixture(params=["ecs_logging", "stdlib"])
def request_log_line(request, monkeypatch) -> str:
    """One request record exactly as the model servers write it (model-handlers/_runtime/aip_serving): with
    ecs_logging (KServe images) and with the standard-library formatter (the TorchServe image)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "model-handlers" / "_runtime"))
    from aip_serving.logs import EcsJsonFormatter, RequestRecord, configure_request_logger, log_request

    stream = io.StringIO()
    logger = configure_request_logger(stream, name="test.logging-stack")
    if request.param == "stdlib":
        logger.handlers[0].setFormatter(EcsJsonFormatter())
    log_request(logger, RequestRecord(request_id="r-1", model_name="digits", model_version="3", runtime="kserve",
                                      status=422, latency_ms=12.5, instances=4, error_type="ValidationError"))
    logger.handlers.clear()
    logging.getLogger("test.logging-stack").propagate = True
    return stream.getvalue().strip()


def expand(document: dict) -> dict:
    """What `expand_keys` does to a decoded line: dotted keys become objects, merged with those already there."""
    nested: dict = {}
    for key, value in document.items():
        target = nested
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        if isinstance(value, dict):
            merge(target.setdefault(leaf, {}), expand(value))
        else:
            assert leaf not in target, f"{key} clashes with an object"
            target[leaf] = value
    return nested


def merge(into: dict, other: dict) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            assert key not in into, f"{key} is set twice"
            into[key] = value


def test_model_server_lines_are_decoded_into_typed_searchable_fields(request_log_line):
    decode = next(p["decode_json_fields"] for p in stack.filebeat_config(1, "aip-logs")["filebeat.inputs"][0][
        "processors"] if "decode_json_fields" in p)
    assert decode["when"]["contains"]["message"] in request_log_line
    assert decode["target"] == "" and decode["expand_keys"] is True and decode["overwrite_keys"] is True
    event = expand(json.loads(request_log_line))
    assert event["http"]["response"]["status_code"] == 422
    assert event["log"]["level"] == "warning"
    types = {"keyword": str, "float": float, "long": int}
    for field, kind in stack.MODEL_SERVER_FIELDS:
        value = event
        for part in field.split("."):
            value = value[part]
        assert isinstance(value, types[kind]), field
    # Every platform field a model server writes is typed in the index template, and nothing else.
    assert {field for field, _ in stack.MODEL_SERVER_FIELDS} == set(leaf_paths(event["aip"], "aip"))


def leaf_paths(document: dict, prefix: str) -> list[str]:
    paths = []
    for key, value in document.items():
        path = f"{prefix}.{key}"
        paths += leaf_paths(value, path) if isinstance(value, dict) else [path]
    return paths


def test_json_without_ecs_version_is_left_as_text():
    decode = next(p["decode_json_fields"] for p in stack.filebeat_config(1, "aip-logs")["filebeat.inputs"][0][
        "processors"] if "decode_json_fields" in p)
    assert decode["when"]["contains"]["message"] not in '{"level": "info", "msg": "arbitrary JSON of another app"}'


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_every_eck_resource_matches_its_crd(environment):
    config = logs(environment)
    validate_custom_resource(manifest("elasticsearch.k8s.elastic.co/v1", "Elasticsearch", stack.CLUSTER, "logging",
                                      es_spec(environment)))
    validate_custom_resource(manifest("kibana.k8s.elastic.co/v1", "Kibana", stack.CLUSTER, "logging",
                                      stack.kibana_spec(config.elasticsearch_nodes)))
    validate_custom_resource(manifest("beat.k8s.elastic.co/v1beta1", "Beat", "filebeat", "kube-system",
                                      stack.filebeat_spec(config.elasticsearch_nodes, retention.ILM_POLICY)))


def test_a_misplaced_field_fails_the_crd_check():
    spec = es_spec("dev")
    spec["nodeSets"][0]["zoneAwarenes"] = spec["nodeSets"][0].pop("zoneAwareness")
    with pytest.raises(Exception, match="zoneAwarenes"):
        validate_custom_resource(manifest("elasticsearch.k8s.elastic.co/v1", "Elasticsearch", "x", "logging", spec))


# -- operator and exporter values ----------------------------------------------------------------------------------


def test_operator_installs_its_crds_and_runs_non_root():
    values = stack.eck_operator_values()
    assert values["installCRDs"] is True
    assert set(values["managedNamespaces"]) == {"logging", "kube-system"}
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert values["resources"]["limits"]["memory"]


def test_exporter_collects_everything_over_tls_as_a_monitor_only_user():
    values = stack.exporter_values("aip-logs-exporter-user")
    es = values["es"]
    assert es["all"] is True and es["indices"] is True and es["uri"].startswith("https://")
    assert es["ssl"]["enabled"] is True and es["sslSkipVerify"] is False and es["ssl"]["client"]["enabled"] is False
    mount = values["secretMounts"][0]
    assert mount["secretName"] == "aip-logs-es-http-certs-public"
    assert es["ssl"]["ca"]["path"] == f"{mount['path']}/ca.crt"
    # Collectors that would need more than `monitor` stay off.
    assert not any(es[c] for c in ("indices_mappings", "snapshots", "slm", "ilm", "cluster_settings"))
    assert {k: v["secret"] for k, v in values["extraEnvSecrets"].items()} == {
        "ES_USERNAME": "aip-logs-exporter-user", "ES_PASSWORD": "aip-logs-exporter-user"}
    assert values["serviceMonitor"]["enabled"] is True and values["serviceMonitor"]["labels"]


# -- network policies ----------------------------------------------------------------------------------------------


class Pod(NamedTuple):
    """A pod as the policies see it: its namespace and its labels (as ECK, the charts and Kubernetes set them)."""

    namespace: str
    labels: dict


# Not a pod: S3, STS, the Kubernetes API and the control plane calling a webhook.
OUTSIDE = None
ES = Pod("logging", {
    "common.k8s.elastic.co/type": "elasticsearch", "elasticsearch.k8s.elastic.co/cluster-name": "aip-logs",
    "elasticsearch.k8s.elastic.co/statefulset-name": "aip-logs-es-default",
    "elasticsearch.k8s.elastic.co/version": ELASTIC_STACK_VERSION, "elasticsearch.k8s.elastic.co/node-master": "true",
    "elasticsearch.k8s.elastic.co/http-scheme": "https"})
KIBANA = Pod("logging", {"common.k8s.elastic.co/type": "kibana", "kibana.k8s.elastic.co/name": "aip-logs",
                         "kibana.k8s.elastic.co/version": ELASTIC_STACK_VERSION})
FILEBEAT = Pod("kube-system", {"common.k8s.elastic.co/type": "beat", "beat.k8s.elastic.co/name": "filebeat",
                               "beat.k8s.elastic.co/version": ELASTIC_STACK_VERSION})
EXPORTER = Pod("logging", {
    "app.kubernetes.io/name": "prometheus-elasticsearch-exporter",
    "app.kubernetes.io/instance": "elasticsearch-exporter", "app.kubernetes.io/managed-by": "Helm",
    "helm.sh/chart": f"prometheus-elasticsearch-exporter-{ELASTICSEARCH_EXPORTER.version}"})
SETUP_TEMPLATE = retention.setup_job_spec(config_map="cm", credentials_secret="user", ca_secret="ca",
                                          image=CURL.reference, script="true")["template"]
SETUP = Pod("logging", {**SETUP_TEMPLATE["metadata"]["labels"], "batch.kubernetes.io/job-name": "aip-log-setup-0123",
                        "job-name": "aip-log-setup-0123"})
OPERATOR = Pod("elastic-system", {
    "app.kubernetes.io/name": "elastic-operator", "app.kubernetes.io/instance": "elastic-operator",
    "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": f"eck-operator-{ECK_OPERATOR.version}"})
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus",
                                "prometheus": "kube-prometheus-stack-prometheus"})
TEAM_POD = Pod("vision", {"serving.kserve.io/inferenceservice": "digits"})
METRICBEAT = Pod("kube-system", {"common.k8s.elastic.co/type": "beat", "beat.k8s.elastic.co/name": "metricbeat"})
NODE_AGENT = Pod("kube-system", {"app.kubernetes.io/name": "prometheus-node-exporter"})
LOGGING_POD = Pod("logging", {"app": "anything-else"})


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # the policies use matchLabels only
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def peer_matches(peer: dict, policy_namespace: str, other: Pod | None) -> bool:
    """NetworkPolicyPeer semantics: a pod selector alone means the policy's namespace; both selectors must match."""
    assert set(peer) <= {"podSelector", "namespaceSelector"}, peer  # no ipBlock
    if other is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other.namespace}):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), other.labels)


def side_allows(policies: dict, pod: Pod | None, other: Pod | None, port: int, protocol: str, kind: str) -> bool:
    """Whether the policies selecting ``pod`` let the flow out (Egress) or in (Ingress); unselected pods are open."""
    if pod is None:
        return True
    selecting = [spec for spec in policies.get(pod.namespace, {}).values()
                 if kind in spec["policyTypes"] and selects(spec["podSelector"], pod.labels)]
    if not selecting:
        return True
    rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for spec in selecting:
        for rule in spec.get(rules_key, []):
            ports = rule.get("ports") or []
            if ports and not any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports):
                continue
            peers = rule.get(peers_key) or []
            if not peers or any(peer_matches(peer, pod.namespace, other) for peer in peers):
                return True
    return False


def flow_allowed(policies: dict, source: Pod | None, destination: Pod | None, port: int, protocol: str = "TCP") -> bool:
    return (side_allows(policies, source, destination, port, protocol, "Egress")
            and side_allows(policies, destination, source, port, protocol, "Ingress"))


def logging_policies() -> dict:
    return network.logging_network_policies(stack.WORKLOADS)


NEEDED_FLOWS = [
    ("Kibana to Elasticsearch", KIBANA, ES, 9200), ("exporter to Elasticsearch", EXPORTER, ES, 9200),
    ("setup Job to Elasticsearch", SETUP, ES, 9200), ("operator to Elasticsearch", OPERATOR, ES, 9200),
    ("Filebeat to Elasticsearch", FILEBEAT, ES, 9200), ("Elasticsearch transport", ES, ES, 9300),
    ("Prometheus scrapes the exporter", PROMETHEUS, EXPORTER, 9108),
    ("Elasticsearch to S3 and STS", ES, OUTSIDE, 443), ("operator to the Kubernetes API", OPERATOR, OUTSIDE, 443),
    ("API server calls the operator's webhook", OUTSIDE, OPERATOR, 9443),
]
DENIED_FLOWS = [
    ("team pod to Elasticsearch", TEAM_POD, ES, 9200), ("team pod to Kibana", TEAM_POD, KIBANA, 5601),
    ("outside to Elasticsearch", OUTSIDE, ES, 9200), ("outside to Kibana", OUTSIDE, KIBANA, 5601),
    ("Prometheus to Elasticsearch", PROMETHEUS, ES, 9200), ("Prometheus to Kibana", PROMETHEUS, KIBANA, 5601),
    ("another node agent to Elasticsearch", NODE_AGENT, ES, 9200),
    ("another Beat to Elasticsearch", METRICBEAT, ES, 9200),
    ("another pod of logging to Elasticsearch", LOGGING_POD, ES, 9200),
    ("Filebeat to the transport port", FILEBEAT, ES, 9300), ("Kibana to the transport port", KIBANA, ES, 9300),
    ("operator to the transport port", OPERATOR, ES, 9300), ("team pod to the transport port", TEAM_POD, ES, 9300),
    ("team pod to the exporter", TEAM_POD, EXPORTER, 9108),
    ("Prometheus to another exporter port", PROMETHEUS, EXPORTER, 8080),
    ("Kibana out to the internet", KIBANA, OUTSIDE, 443), ("exporter out to the internet", EXPORTER, OUTSIDE, 443),
    ("setup Job out to the internet", SETUP, OUTSIDE, 443), ("Elasticsearch out over plain HTTP", ES, OUTSIDE, 80),
    ("operator out over plain HTTP", OPERATOR, OUTSIDE, 80), ("Elasticsearch to Kibana", ES, KIBANA, 5601),
    ("operator to Kibana", OPERATOR, KIBANA, 5601), ("Elasticsearch to the webhook", ES, OPERATOR, 9443),
    ("Kibana to the exporter", KIBANA, EXPORTER, 9108), ("setup Job to Kibana", SETUP, KIBANA, 5601),
    ("Elasticsearch to a team pod", ES, TEAM_POD, 8080), ("operator to a team pod", OPERATOR, TEAM_POD, 8080),
    ("team pod to the operator's other ports", TEAM_POD, OPERATOR, 8080),
    ("Elasticsearch to kube-dns over HTTP", ES, KUBE_DNS, 80),
]


def test_network_policies_are_valid_network_policy_objects():
    policies = logging_policies()
    assert set(policies) == {"logging", "elastic-system"}
    for namespace, by_name in policies.items():
        for name, spec in by_name.items():
            kubernetes_validate.validate({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                          "metadata": {"name": name, "namespace": namespace}, "spec": spec},
                                         DEFAULT_EKS_VERSION, strict=True)
    broken = {"podSelector": {}, "policyType": ["Ingress"]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                      "metadata": {"name": "x", "namespace": "logging"}, "spec": broken},
                                     DEFAULT_EKS_VERSION, strict=True)


@pytest.mark.parametrize("namespace", ["logging", "elastic-system"])
def test_both_namespaces_deny_everything_by_default(namespace):
    deny = logging_policies()[namespace]["default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert is_default_deny_ingress({"spec": deny})
    # A pod of the namespace that no allow selects can neither be reached nor reach anything but DNS.
    stray = Pod(namespace, {"app": "stray"})
    assert not flow_allowed(logging_policies(), TEAM_POD, stray, 8080)
    assert not flow_allowed(logging_policies(), stray, OUTSIDE, 443)
    assert not flow_allowed(logging_policies(), stray, ES, 9200)
    assert flow_allowed(logging_policies(), stray, KUBE_DNS, 53, "UDP")


@pytest.mark.parametrize(("flow", "source", "destination", "port"), NEEDED_FLOWS, ids=[f[0] for f in NEEDED_FLOWS])
def test_every_flow_the_logging_stack_needs_is_allowed(flow, source, destination, port):
    assert flow_allowed(logging_policies(), source, destination, port), flow


@pytest.mark.parametrize("pod", [ES, KIBANA, EXPORTER, SETUP, OPERATOR], ids=["es", "kibana", "exporter", "setup",
                                                                           "operator"])
def test_every_pod_resolves_names_at_kube_dns_only(pod):
    policies = logging_policies()
    assert flow_allowed(policies, pod, KUBE_DNS, 53, "UDP") and flow_allowed(policies, pod, KUBE_DNS, 53, "TCP")
    assert not flow_allowed(policies, pod, OUTSIDE, 53, "UDP")
    assert not flow_allowed(policies, pod, Pod("kube-system", {"k8s-app": "other"}), 53, "UDP")


@pytest.mark.parametrize(("flow", "source", "destination", "port"), DENIED_FLOWS, ids=[f[0] for f in DENIED_FLOWS])
def test_no_other_flow_is_allowed(flow, source, destination, port):
    assert not flow_allowed(logging_policies(), source, destination, port), flow


def test_only_the_webhook_is_open_to_any_source_and_only_https_to_any_destination():
    open_ingress, open_egress = [], []
    for namespace, by_name in logging_policies().items():
        for name, spec in by_name.items():
            for rule in spec.get("ingress", []):
                assert rule.get("ports"), (namespace, name)
                if not rule.get("from"):
                    open_ingress.append((namespace, name, rule["ports"]))
            for rule in spec.get("egress", []):
                assert rule.get("ports"), (namespace, name)
                if not rule.get("to"):
                    open_egress.append((namespace, name, rule["ports"]))
    assert open_ingress == [("elastic-system", "allow-operator", [{"protocol": "TCP", "port": 9443}])]
    assert sorted(open_egress) == [("elastic-system", "allow-operator", [{"protocol": "TCP", "port": 443}]),
                                   ("logging", "allow-elasticsearch", [{"protocol": "TCP", "port": 443}])]


def test_egress_to_elasticsearch_selects_exactly_eck_service_selector():
    """The VPC CNI allows a Service's ClusterIP only when the peer's selector matches the Service's own selector;
    ECK selects the HTTP services' pods by type and cluster name (label.NewLabels)."""
    service_selector = {"common.k8s.elastic.co/type": "elasticsearch",
                        "elasticsearch.k8s.elastic.co/cluster-name": "aip-logs"}
    peers = [peer for by_name in logging_policies().values() for spec in by_name.values()
             for rule in spec.get("egress", []) if rule.get("ports") == [{"protocol": "TCP", "port": 9200}]
             for peer in rule["to"]]
    assert len(peers) == 4  # Kibana, the exporter, the setup Job and the operator
    assert all(peer["podSelector"]["matchLabels"] == service_selector for peer in peers)


# -- the archive bucket and its role -------------------------------------------------------------------------------


def test_archive_never_expires_current_objects():
    rules = archive_lifecycle_rules()
    # An expiration without days or a date removes expired delete markers only.
    assert all(set(rule.get("expiration", {})) <= {"expired_object_delete_marker"} for rule in rules)
    assert rules[0]["noncurrent_version_expiration"] == {"noncurrent_days": NONCURRENT_VERSION_DAYS}


def test_snapshot_role_policy_reaches_only_its_bucket_and_key():
    arn = f"arn:aws:s3:::{BUCKET}"
    statements = snapshot_repository_policy(arn, KEY, "us-east-1")["Statement"]
    resources = {s["Sid"]: s["Resource"] for s in statements}
    assert resources == {"ListRepositoryBucket": arn, "ReadWriteSnapshots": f"{arn}/*", "EncryptThroughS3": KEY}
    assert all("*" not in s["Action"] and not any(a.endswith(":*") for a in s["Action"]) for s in statements)
    kms = next(s for s in statements if s["Sid"] == "EncryptThroughS3")
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}


@pytest.mark.parametrize(("mode", "protect", "retain"), [("protect", True, True), ("retain", False, True),
                                                         ("none", False, False)])
def test_log_archive_is_encrypted_versioned_private_logged_and_protected(run_component, mode, protect, retain):
    def build():
        LogArchive("la", LogArchiveArgs(config=logs("dev", archiveDeletionProtection=mode), kms_key_arn=KEY,
                                        oidc_provider_arn="arn:oidc", oidc_issuer_url=ISSUER,
                                        aws=AwsContext.lookup("us-east-1")))

    result = run_component(build)
    buckets = {r.name: r for r in result.of_type("aws:s3/bucket:Bucket")}
    assert set(buckets) == {"la-snapshots", "la-access-logs"}
    for record in result.resources:
        if record.type.startswith("aws:s3/"):
            assert (record.options["protect"], record.options["retainOnDelete"]) == (protect, retain), record.name
    sse = {r.name: r.inputs["rules"][0] for r in
           result.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")}
    assert sse["la-snapshots"]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms",
                                                                         "kmsMasterKeyId": KEY}
    assert all(v.inputs["versioningConfiguration"]["status"] == "Enabled"
               for v in result.of_type("aws:s3/bucketVersioning:BucketVersioning"))
    for block in result.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        assert all(block.inputs[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                     "restrictPublicBuckets"))
    policies = {r.name: policy_of(r) for r in result.of_type("aws:s3/bucketPolicy:BucketPolicy")}
    deny = policies["la-snapshots"]["Statement"]
    arn = deny[0]["Resource"][0]
    assert arn.startswith("arn:aws:s3:::la-snapshots-")
    assert deny == [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                     "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    delivery = policies["la-access-logs"]["Statement"][1]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": arn}
    logging_ = only(result, "aws:s3/bucketLogging:BucketLogging").inputs
    assert logging_["targetPrefix"] == "snapshots/"
    lifecycle = {r.name: r.inputs["rules"][0] for r in
                 result.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")}
    assert lifecycle["la-snapshots"].get("expiration", {}) in ({}, {"expiredObjectDeleteMarker": True})
    trust = policy_of(only(result, "aws:iam/role:Role"), "assumeRolePolicy")["Statement"][0]
    assert trust["Condition"]["StringEquals"] == {
        "oidc.eks.us-east-1.amazonaws.com/id/X:sub": "system:serviceaccount:logging:aip-logs-elasticsearch",
        "oidc.eks.us-east-1.amazonaws.com/id/X:aud": "sts.amazonaws.com"}
    grants = policy_of(only(result, "aws:iam/rolePolicy:RolePolicy"))["Statement"]
    assert {s["Sid"] for s in grants} == {"ListRepositoryBucket", "ReadWriteSnapshots", "EncryptThroughS3"}


# -- the component under mocks -------------------------------------------------------------------------------------


def logging_program(environment: str):
    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        stack.LoggingStack("ls", stack.LoggingStackArgs(
            config=logs(environment), storage_class="gp3-encrypted", archive_bucket=BUCKET, archive_role_arn=ROLE,
            region="us-east-1", provider=provider))
    return build


def test_logging_stack_registers_pinned_releases_in_restricted_namespaces(run_component):
    result = run_component(logging_program("dev"))
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"]
                  for r in result.of_type("kubernetes:core/v1:Namespace")}
    assert set(namespaces) == {"elastic-system", "logging"}
    assert all(labels["pod-security.kubernetes.io/enforce"] == "restricted" for labels in namespaces.values())
    releases = {r.inputs["name"]: r.inputs for r in result.of_type("kubernetes:helm.sh/v3:Release")}
    operator, exporter = releases["elastic-operator"], releases["elasticsearch-exporter"]
    assert (operator["chart"], operator["version"], operator["namespace"]) == (
        ECK_OPERATOR.chart, ECK_OPERATOR.version, "elastic-system")
    assert operator["repositoryOpts"] == {"repo": "https://helm.elastic.co"}
    assert (exporter["chart"], exporter["version"], exporter["namespace"]) == (
        ELASTICSEARCH_EXPORTER.chart, ELASTICSEARCH_EXPORTER.version, "logging")
    assert all("pulumi:providers:kubernetes::k8s::" in r.options["provider"]
               for r in result.resources if r.type.startswith("kubernetes:"))


def test_logging_stack_custom_resources_wait_for_the_operator(run_component):
    result = run_component(logging_program("prod"))
    operator = next(r.urn for r in result.of_type("kubernetes:helm.sh/v3:Release")
                    if r.inputs["name"] == "elastic-operator")
    elasticsearch = only(result, "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch")
    assert operator in elasticsearch.options["dependsOn"]
    assert elasticsearch.inputs["spec"]["nodeSets"][0]["count"] == 3
    for kind in ("kibana.k8s.elastic.co/v1:Kibana", "beat.k8s.elastic.co/v1beta1:Beat"):
        assert elasticsearch.urn in only(result, f"kubernetes:{kind}").options["dependsOn"]
    account = next(r.inputs for r in result.of_type("kubernetes:core/v1:ServiceAccount")
                   if r.inputs["metadata"]["name"] == stack.ELASTICSEARCH_SERVICE_ACCOUNT)
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE}
    assert account["automountServiceAccountToken"] is False


def test_logging_stack_users_are_generated_file_realm_users(run_component):
    result = run_component(logging_program("dev"))
    passwords = result.of_type("random:index/randomPassword:RandomPassword")
    assert len(passwords) == 2 and all(p.inputs["length"] >= 32 for p in passwords)
    secrets = {r.inputs["metadata"]["name"]: r for r in result.of_type("kubernetes:core/v1:Secret")}
    users = [name for name, s in secrets.items() if s.inputs["type"] == "kubernetes.io/basic-auth"]
    assert sorted(users) == ["aip-logs-exporter-user", "aip-logs-setup-user"]
    realm = only(result, "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch").inputs["spec"]["auth"]
    assert sorted(s["secretName"] for s in realm["fileRealm"]) == sorted(users)
    assert realm["roles"] == [{"secretName": "aip-logs-roles"}]


def test_setup_job_is_named_after_what_it_applies(run_component):
    def job_and_bodies(days: int) -> tuple[str, dict]:
        def build():
            provider = k8s.Provider("k8s", kubeconfig="{}")
            stack.LoggingStack("ls", stack.LoggingStackArgs(
                config=logs("dev", retentionDays=days), storage_class="gp3-encrypted", archive_bucket=BUCKET,
                archive_role_arn=ROLE, region="us-east-1", provider=provider))

        result = run_component(build)
        job = only(result, "kubernetes:batch/v1:Job").inputs
        config_map = only(result, "kubernetes:core/v1:ConfigMap").inputs
        volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
        assert volumes["bodies"]["configMap"]["name"] == config_map["metadata"]["name"]
        assert config_map["immutable"] is True
        return job["metadata"]["name"], config_map["data"]

    name, data = job_and_bodies(30)
    script = retention.setup_script(stack.ELASTICSEARCH_URL)
    assert name == f"aip-log-setup-{retention.content_hash(data, script, CURL.reference, 'aip-logs-setup-user')}"
    assert json.loads(data[retention.REPOSITORY_FILE])["settings"]["bucket"] == BUCKET
    assert json.loads(data[retention.ILM_FILE])["policy"]["phases"]["delete"]["min_age"] == "30d"
    assert job_and_bodies(30)[0] == name
    assert job_and_bodies(45)[0] != name


def test_logging_stack_puts_its_network_policies_in_place_before_its_workloads(run_component):
    result = run_component(logging_program("dev"))
    expected = network.logging_network_policies(stack.WORKLOADS)
    namespaces = {r.inputs["metadata"]["name"]: r.urn for r in result.of_type("kubernetes:core/v1:Namespace")}
    policies = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r
                for r in result.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert set(policies) == {(namespace, name) for namespace, by_name in expected.items() for name in by_name}
    for (namespace, name), record in policies.items():
        assert record.inputs["spec"] == expected[namespace][name]
        assert namespaces[namespace] in record.options["dependsOn"]
    releases = {r.inputs["name"]: r for r in result.of_type("kubernetes:helm.sh/v3:Release")}
    elasticsearch = only(result, "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch")
    for namespace, waiting in (("elastic-system", releases["elastic-operator"]), ("logging", elasticsearch)):
        assert {r.urn for (ns, _), r in policies.items() if ns == namespace} <= set(waiting.options["dependsOn"])


def test_network_policies_select_what_the_stack_deploys(run_component):
    workloads = stack.WORKLOADS
    result = run_component(logging_program("dev"))
    releases = {r.inputs["name"]: r.inputs for r in result.of_type("kubernetes:helm.sh/v3:Release")}
    operator, exporter = releases[workloads.operator_release], releases[workloads.exporter_release]
    assert operator["namespace"] == workloads.operator_namespace
    # Neither chart is renamed, so their pods keep the names the selectors expect.
    assert "nameOverride" not in operator.get("values", {}) and "nameOverride" not in exporter.get("values", {})
    assert (exporter["chart"], exporter["namespace"]) == (workloads.exporter_chart, workloads.logging_namespace)
    for kind, name, namespace in [
            ("elasticsearch.k8s.elastic.co/v1:Elasticsearch", workloads.elasticsearch, workloads.logging_namespace),
            ("kibana.k8s.elastic.co/v1:Kibana", workloads.kibana, workloads.logging_namespace),
            ("beat.k8s.elastic.co/v1beta1:Beat", workloads.beat, workloads.filebeat_namespace)]:
        metadata = only(result, f"kubernetes:{kind}").inputs["metadata"]
        assert (metadata["name"], metadata["namespace"]) == (name, namespace), kind
    job_labels = only(result, "kubernetes:batch/v1:Job").inputs["spec"]["template"]["metadata"]["labels"]
    assert dict(workloads.setup_pod_labels).items() <= job_labels.items()
    # The Elasticsearch pods' own selector (zone spread) agrees with the policies'.
    spec = es_spec("prod")
    spread = spec["nodeSets"][0]["podTemplate"]["spec"]["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
    assert spread.items() <= ES.labels.items()
    assert network.elasticsearch_pods(workloads.elasticsearch).items() <= ES.labels.items()


# -- what the shipped stacks preview ---------------------------------------------------------------------------


@pytest.mark.parametrize(("environment", "nodes"), [("dev", 1), ("prod", 3)])
def test_platform_stacks_run_the_logging_stack(preview, environment, nodes):
    result = preview(environment)
    outputs = plain(result.outputs)
    elasticsearch = only(result, "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch").inputs["spec"]
    assert elasticsearch["nodeSets"][0]["count"] == nodes
    claim = elasticsearch["nodeSets"][0]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == outputs["storageClass"]
    for kind in ("kibana.k8s.elastic.co/v1:Kibana", "beat.k8s.elastic.co/v1beta1:Beat", "batch/v1:Job"):
        only(result, f"kubernetes:{kind}")
    setup = [r for r in result.of_type("kubernetes:core/v1:ConfigMap") if r.name.endswith("-logging-setup-bodies")]
    repository = json.loads(only_one(setup).inputs["data"][retention.REPOSITORY_FILE])
    assert repository["settings"]["bucket"].startswith(f"aip-{environment}-log-archive-snapshots-")
    # The archive is encrypted with its own key, the one the Elasticsearch role may use, not the models' key.
    sse = only_one([r for r in result.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
        if r.name.endswith("-log-archive-snapshots")]).inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    grants = policy_of(only_one([r for r in result.of_type("aws:iam/rolePolicy:RolePolicy")
                                 if r.name.endswith("-log-archive-elasticsearch")]))["Statement"]
    assert sse["kmsMasterKeyId"] == next(g["Resource"] for g in grants if g["Sid"] == "EncryptThroughS3")
    assert sse["kmsMasterKeyId"] != outputs["modelStoreKmsKeyArn"]


def only_one(records: list):
    assert len(records) == 1, [r.name for r in records]
    return records[0]


def test_prod_denies_by_default_in_both_logging_namespaces(preview):
    policies = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["spec"]
                for r in preview("prod").of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    for namespace in ("logging", "elastic-system"):
        assert policies[(namespace, "default-deny")] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        assert (namespace, "allow-dns") in policies
