"""Where every metric the rules and dashboards read comes from.

Model-server metrics (TorchServe, KServe) are proven against the real servers by a test that starts them
and scrapes `/metrics`. Exporters that cannot run without a cluster or a GPU are documented here instead,
name by name with the labels the platform relies on, each list with the upstream source it follows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSource:
    """One exporter and the metrics (name → labels the platform uses) it is known to export.

    Attributes:
        name: Short name, used in test output.
        reference: Upstream file or page that lists these metrics.
        metrics: Metric name → label names the platform's rules and dashboards use.
        checked_live: True when a test scrapes the real exporter here, False when this list is the proof.
    """

    name: str
    reference: str
    metrics: dict[str, frozenset[str]]
    checked_live: bool = False


def _labels(*names: str) -> frozenset[str]:
    return frozenset(names)


# Labels the scrape configuration (PodMonitor, ServiceMonitor, local scrape config) adds to every series
# of a target; a server never exports them itself. `track` and `model_version` come from a predictor pod's labels
# (team_monitoring.target_relabelings); TorchServe's own `model_version` gives way to the target's.
TARGET_LABELS: frozenset[str] = frozenset(
    {"namespace", "pod", "container", "job", "instance", "team", "inferenceservice", "node", "gpu_pool", "track",
     "model_version"})


# --- Model servers: proven against the real servers by tests/observability/test_metric_names.py ------------

# TorchServe 0.12 with `metrics_mode=prometheus` (port 8082). Counters and gauges only, no histograms.
# `Requests5XX` is declared (HELP/TYPE) from the start but has no sample until the first 5xx answer.
_TS_MODEL = _labels("model_name", "model_version", "hostname")
_TS_HOST = _labels("Level", "Hostname")
TORCHSERVE = MetricSource(
    name="torchserve",
    reference="https://github.com/pytorch/serve/blob/v0.12.0/ts/configs/metrics.yaml",
    metrics={
        "ts_inference_requests_total": _TS_MODEL,
        "ts_inference_latency_microseconds": _TS_MODEL,
        "ts_queue_latency_microseconds": _TS_MODEL,
        "Requests2XX": _TS_HOST,
        "Requests4XX": _TS_HOST,
        "Requests5XX": _TS_HOST,
        "QueueTime": _TS_HOST,
        "WorkerThreadTime": _TS_HOST,
        "WorkerLoadTime": _labels("WorkerName", "Level", "Hostname"),
        "CPUUtilization": _TS_HOST,
        "MemoryUsed": _TS_HOST,
        "MemoryAvailable": _TS_HOST,
        "MemoryUtilization": _TS_HOST,
        "DiskUsage": _TS_HOST,
        "DiskUtilization": _TS_HOST,
        "DiskAvailable": _TS_HOST,
        # Not `HandlerTime`: BaseHandler.handle() records it, and aip_serving's handler replaces handle().
        "PredictionTime": _labels("ModelName", "Level", "Hostname"),
    },
    checked_live=True,
)

# TorchServe's GPU gauges, reported only on hosts with a GPU: this list is the proof on a machine without one.
TORCHSERVE_GPU = MetricSource(
    name="torchserve-gpu",
    reference="https://github.com/pytorch/serve/blob/v0.12.0/ts/configs/metrics.yaml",
    metrics={name: _labels("Level", "DeviceId", "Hostname")
             for name in ("GPUMemoryUtilization", "GPUMemoryUsed", "GPUUtilization")},
)

# KServe ModelServer 0.16 (`runtime: kserve` models): one histogram per stage, labelled by model, plus the
# process and Python collectors of prometheus_client. `request_explain_seconds` has no sample until a model
# explains, and the platform serves none that do.
_KSERVE_STAGES = ("request_preprocess_seconds", "request_predict_seconds", "request_postprocess_seconds")
KSERVE = MetricSource(
    name="kserve",
    reference="https://github.com/kserve/kserve/blob/v0.16.0/python/kserve/kserve/metrics.py",
    metrics={
        **{f"{stage}_bucket": _labels("model_name", "le") for stage in _KSERVE_STAGES},
        **{f"{stage}_{part}": _labels("model_name") for stage in _KSERVE_STAGES for part in ("count", "sum")},
        # Ours (model-handlers/_runtime/aip_serving/metrics.py): each inference request by HTTP status code.
        "aip_inference_requests_total": _labels("model_name", "code"),
        "process_cpu_seconds_total": _labels(),
        "process_resident_memory_bytes": _labels(),
        "process_virtual_memory_bytes": _labels(),
        "process_open_fds": _labels(),
        "process_max_fds": _labels(),
        "process_start_time_seconds": _labels(),
        "python_gc_collections_total": _labels("generation"),
        "python_info": _labels("implementation", "major", "minor", "patchlevel", "version"),
    },
    checked_live=True,
)

# --- Exporters that need a cluster or a GPU: these lists are the proof -----------------------------------------

# dcgm-exporter 4.5.3-4.8.2 (the chart in infra/versions.py). The platform hands the exporter this counters
# file (infra/components/gpu_metrics.py writes it), so this list is both what runs and what the rules may read.
# Every GPU series carries these labels (`DCGM_FI_DRIVER_VERSION` is a "label" counter of the CSV); labels per
# internal/pkg/rendermetrics/render_metrics.go at the same tag. The exporter runs without root: no profiling
# fields (`DCGM_FI_PROF_*`) and no labels of the pod holding a GPU.
DCGM_LABELS = _labels("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION")
# Field, Prometheus type (`label`: a label on every series, not a metric), help: the exporter's counters
# file (`-f`), the image's default-counters.csv without the profiling fields, plus throttling and ECC errors.
# https://github.com/NVIDIA/dcgm-exporter/blob/4.5.3-4.8.2/etc/default-counters.csv
DCGM_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %)."),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_POWER_VIOLATION", "counter", "Throttling duration due to power constraints."),
    ("DCGM_FI_DEV_THERMAL_VIOLATION", "counter", "Throttling duration due to thermal constraints."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB)."),
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total number of single-bit volatile ECC errors."),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors."),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes."),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status"),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors"),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"),
    ("DCGM_FI_DRIVER_VERSION", "label", "Driver Version"),
)

DCGM_EXPORTER = MetricSource(
    name="dcgm-exporter",
    reference="https://github.com/NVIDIA/dcgm-exporter/blob/4.5.3-4.8.2/etc/default-counters.csv",
    metrics={field: DCGM_LABELS for field, kind, _ in DCGM_COUNTERS if kind != "label"},
)

# kube-state-metrics (the kube-prometheus-stack subchart; these are STABLE metrics of the v2 line). Scraped
# with honorLabels, so `namespace`, `pod` and `container` are the object's, not the exporter's.
_DEPLOYMENT = _labels("namespace", "deployment")
_HPA = _labels("namespace", "horizontalpodautoscaler")
KUBE_STATE_METRICS = MetricSource(
    name="kube-state-metrics",
    reference="https://github.com/kubernetes/kube-state-metrics/tree/v2.17.0/docs/metrics/workload",
    metrics={
        "kube_deployment_spec_replicas": _DEPLOYMENT,
        "kube_deployment_status_replicas": _DEPLOYMENT,
        "kube_deployment_status_replicas_ready": _DEPLOYMENT,
        "kube_deployment_status_replicas_available": _DEPLOYMENT,
        "kube_deployment_status_replicas_unavailable": _DEPLOYMENT,
        "kube_pod_container_status_restarts_total": _labels("namespace", "pod", "container", "uid"),
        "kube_pod_container_status_waiting_reason": _labels("namespace", "pod", "container", "reason", "uid"),
        "kube_pod_status_ready": _labels("namespace", "pod", "condition", "uid"),
        "kube_pod_info": _labels("namespace", "pod", "uid", "node", "host_ip", "pod_ip", "created_by_kind",
                                 "created_by_name", "priority_class", "host_network"),
        "kube_horizontalpodautoscaler_spec_min_replicas": _HPA,
        "kube_horizontalpodautoscaler_spec_max_replicas": _HPA,
        "kube_horizontalpodautoscaler_status_current_replicas": _HPA,
        "kube_horizontalpodautoscaler_status_desired_replicas": _HPA,
        "kube_node_status_condition": _labels("node", "condition", "status"),
    },
)

# cluster-autoscaler 1.33-1.35 (the images in infra/versions.py), metrics/metrics.go. The per-node-group
# gauges exist only with `--emit-per-nodegroup-metrics` (infra/components/cluster_autoscaler.py passes it);
# `node_group` is the Auto Scaling group's name.
_NODE_GROUP = _labels("node_group")
CLUSTER_AUTOSCALER = MetricSource(
    name="cluster-autoscaler",
    reference="https://github.com/kubernetes/autoscaler/blob/cluster-autoscaler-1.34.0/cluster-autoscaler/metrics/metrics.go",
    metrics={
        "cluster_autoscaler_cluster_safe_to_autoscale": _labels(),
        "cluster_autoscaler_nodes_count": _labels("state"),
        "cluster_autoscaler_unschedulable_pods_count": _labels("type"),
        "cluster_autoscaler_max_nodes_count": _labels(),
        "cluster_autoscaler_last_activity": _labels("activity"),
        "cluster_autoscaler_errors_total": _labels("type"),
        "cluster_autoscaler_scaled_up_nodes_total": _labels(),
        "cluster_autoscaler_scaled_down_nodes_total": _labels("reason"),
        "cluster_autoscaler_failed_scale_ups_total": _labels("reason"),
        "cluster_autoscaler_node_group_min_count": _NODE_GROUP,
        "cluster_autoscaler_node_group_max_count": _NODE_GROUP,
        "cluster_autoscaler_node_group_target_count": _NODE_GROUP,
        "cluster_autoscaler_node_group_healthiness": _NODE_GROUP,
        "cluster_autoscaler_node_group_backoff_status": _labels("node_group", "reason"),
    },
)

# prometheus-community elasticsearch_exporter v1.11.0 (names unchanged since v1.10.0): the default collectors
# (cluster health, the node it connects to) plus `es.indices: true` (per-index stats from /_all/_stats).
_ES_NODE = _labels("cluster", "host", "name", "es_master_node", "es_data_node", "es_ingest_node", "es_client_node")
_ES_INDEX = _labels("index", "cluster")
_ES_CLUSTER_HEALTH = ("number_of_nodes", "number_of_data_nodes", "active_shards", "active_primary_shards",
                      "unassigned_shards", "relocating_shards", "initializing_shards", "delayed_unassigned_shards",
                      "number_of_pending_tasks")
ELASTICSEARCH_EXPORTER = MetricSource(
    name="elasticsearch-exporter",
    reference="https://github.com/prometheus-community/elasticsearch_exporter/tree/v1.11.0/collector",
    metrics={
        "elasticsearch_cluster_health_status": _labels("cluster", "color"),
        **{f"elasticsearch_cluster_health_{name}": _labels("cluster") for name in _ES_CLUSTER_HEALTH},
        "elasticsearch_index_stats_indexing_index_total": _ES_INDEX,
        "elasticsearch_indices_docs_primary": _ES_INDEX,
        "elasticsearch_indices_store_size_bytes_total": _ES_INDEX,
        "elasticsearch_indices_indexing_index_total": _ES_NODE,
        "elasticsearch_jvm_memory_used_bytes": _ES_NODE | {"area"},
        "elasticsearch_jvm_memory_max_bytes": _ES_NODE | {"area"},
        "elasticsearch_filesystem_data_available_bytes": _ES_NODE | {"mount", "path"},
        "elasticsearch_filesystem_data_size_bytes": _ES_NODE | {"mount", "path"},
    },
)

# What Prometheus itself writes for every target: `up` carries the target's labels only.
PROMETHEUS = MetricSource(
    name="prometheus",
    reference="https://prometheus.io/docs/concepts/jobs_instances/#automatically-generated-labels-and-time-series",
    metrics={"up": _labels()},
)

SOURCES: tuple[MetricSource, ...] = (TORCHSERVE, TORCHSERVE_GPU, KSERVE, DCGM_EXPORTER, KUBE_STATE_METRICS,
                                     CLUSTER_AUTOSCALER, ELASTICSEARCH_EXPORTER, PROMETHEUS)


def known_metrics() -> dict[str, frozenset[str]]:
    """Every metric of every source, with the labels it carries (the union where two sources name it)."""
    known: dict[str, frozenset[str]] = {}
    for source in SOURCES:
        for metric, labels in source.metrics.items():
            known[metric] = known.get(metric, frozenset()) | labels
    return known


def source_of(metric: str) -> MetricSource | None:
    """The first source that exports ``metric``, or None."""
    return next((source for source in SOURCES if metric in source.metrics), None)
