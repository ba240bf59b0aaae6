"""kubernetes-elastic-elasticsearch-tls: Elasticsearch keeps TLS on its HTTP layer."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import CIS_EKS, GDPR, HIPAA, ISO27001, SOC2, platform_baseline
from policies.props import get, truthy

ELASTICSEARCH = "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ELASTICSEARCH:
        return
    if truthy(get(args.props, "spec", "http", "tls", "selfSignedCertificate", "disabled")):
        report_violation(f"Elasticsearch '{args.name}' disables TLS on HTTP "
                         "(spec.http.tls.selfSignedCertificate.disabled is true).")


kubernetes_elastic_elasticsearch_tls = ResourceValidationPolicy(
    name="kubernetes-elastic-elasticsearch-tls",
    description="ECK Elasticsearch clusters do not disable TLS on their HTTP layer.",
    validate=validate,
    severity=Severity.HIGH,
    framework=platform_baseline("encryption-in-transit"),
    tags=["kubernetes", "elasticsearch", "encryption-in-transit", CIS_EKS, SOC2, ISO27001, HIPAA, GDPR],
    remediation_steps="Remove spec.http.tls.selfSignedCertificate.disabled, or provide a certificate through "
                      "spec.http.tls.certificate.secretName.",
    url="https://www.elastic.co/guide/en/cloud-on-k8s/current/k8s-tls-certificates.html",
)
