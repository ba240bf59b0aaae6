"""kubernetes-kserve-inferenceservice-metrics-scrape: every InferenceService is scraped by Prometheus."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE
from policies.props import get

MONITORS = ("kubernetes:monitoring.coreos.com/v1:PodMonitor", "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
SCRAPE = "prometheus.io/scrape"


def annotated(props) -> bool:
    """Scrape annotations on the object or on its predictor pods."""
    return any(str(get(props, *path, SCRAPE, default="")).lower() == "true"
               for path in (("metadata", "annotations"), ("spec", "predictor", "annotations")))


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    # Only a name names a namespace; anything else in metadata.namespace (a careless list, a map) monitors none.
    monitored = {namespace for r in args.resources if r.resource_type in MONITORS
                 and isinstance(namespace := get(r.props, "metadata", "namespace"), str)}
    for service in (r for r in args.resources if r.resource_type == INFERENCE_SERVICE):
        namespace = get(service.props, "metadata", "namespace")
        if not annotated(service.props) and namespace not in monitored:
            report_violation(f"InferenceService '{service.name}' in namespace '{namespace}' has no "
                             f"{SCRAPE} annotation and no PodMonitor/ServiceMonitor in its namespace.",
                             service.urn)


kubernetes_kserve_inferenceservice_metrics_scrape = StackValidationPolicy(
    name="kubernetes-kserve-inferenceservice-metrics-scrape",
    description="Every InferenceService is scraped: prometheus.io/scrape on its pods, or a PodMonitor or "
                "ServiceMonitor in its namespace.",
    validate=validate,
    severity=Severity.LOW,
    framework=platform_baseline("observability"),
    tags=["kubernetes", "kserve", "observability", SOC2, ISO27001],
    remediation_steps="Annotate the predictor with prometheus.io/scrape: 'true' and prometheus.io/port, or "
                      "add a PodMonitor for the namespace.",
    url="https://kserve.github.io/website/docs/model-serving/predictive-inference/observability/prometheus_metrics/",
)
