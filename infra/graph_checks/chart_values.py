"""Chart values: every value we give a Helm release means what we think, and no upstream default surprises us.

`helm install` accepts a key no template reads, a ``"true"`` where a template tests a boolean, and deep-merges
our values into the chart's defaults key by key, so a default we never overrode survives silently (dcgm-exporter's
``securityContext.capabilities.add: [SYS_ADMIN]`` outlives a ``securityContext`` that only drops capabilities).
For every ``helm.v3.Release`` of a previewed stack this check reads the pinned chart's upstream ``values.yaml``
(and ``values.schema.json`` where the chart ships one) and reports:

1. value paths the chart does not document: not in values.yaml, not a commented-out key there, not in its schema;
2. values whose type differs from the upstream default, and merged values its schema rejects;
3. security-relevant upstream defaults (added capabilities, privileged or root containers, host namespaces, host
   directories) that survive the merge without an entry in :data:`ALLOWED_SECURITY_DEFAULTS`.

The upstream files are reference data kept outside the project, one folder per pinned chart
(``<chart>-<version>/values.yaml``, subcharts under ``charts/<alias>/``), named by ``AIP_UPSTREAM_CHARTS_DIR``.
Unknown keys we set on purpose, free-form maps with a non-empty default and inherited security defaults we keep
are each listed in one table below, with the reason.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.graph_checks.findings import Finding
from infra.graph_checks.helm_values import (
    MissingUpstreamValues,
    UpstreamChart,
    ValuePath,
    chart_name,
    helm_merge,
    load_upstream_chart,
    lookup,
    render_path,
    schema_verdict,
    value_paths,
)

if TYPE_CHECKING:
    from infra.preview.runner import PreviewResult

CHECK = "chart-values"
UPSTREAM_CHARTS_ENV = "AIP_UPSTREAM_CHARTS_DIR"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"

# Upstream security defaults we keep on purpose, keyed by (chart, value path as `render_path` writes it).
# node_exporter monitors the host, not its container: its README runs it with the host's network and PID
# namespaces and the host's / mounted read-only (https://github.com/prometheus/node_exporter#docker).
ALLOWED_SECURITY_DEFAULTS: dict[tuple[str, str], str] = {
    ("kube-prometheus-stack", "prometheus-node-exporter.hostNetwork"):
        "node-exporter's network metrics must be the node's interfaces, not its container's.",
    ("kube-prometheus-stack", "prometheus-node-exporter.hostPID"):
        "node-exporter's process and mount information must be the node's, not its container's.",
    ("kube-prometheus-stack", "prometheus-node-exporter.hostProcFsMount"):
        "The chart always mounts the node's /proc read-only at /host/proc: CPU, memory and network metrics.",
    ("kube-prometheus-stack", "prometheus-node-exporter.hostSysFsMount"):
        "The chart always mounts the node's /sys read-only at /host/sys: hardware and disk metrics.",
    ("kube-prometheus-stack", "prometheus-node-exporter.hostRootFsMount"):
        "The node's / mounted read-only gives node_filesystem_* of the node's disks, which the chart's default "
        "node rules (NodeFilesystemSpaceFillingUp, defaultRules.create) alert on.",
    ("kube-prometheus-stack", "prometheus-node-exporter.permissionInitContainer.securityContext.runAsUser"):
        "The root init container renders only when a permissionInitContainer fix (rapl, slabinfo) or extra command "
        "is on, and all are off.",
    ("kube-prometheus-stack", "prometheus-node-exporter.permissionInitContainer.securityContext.runAsNonRoot"):
        "The root init container renders only when a permissionInitContainer fix (rapl, slabinfo) or extra command "
        "is on, and all are off.",
    ("dcgm-exporter", "kubeletPath"):
        "The chart always mounts the kubelet's pod-resources directory read-only; running without root the exporter "
        "cannot open the socket in it, and attributing GPUs to pods stays off (kubernetes.enablePodLabels).",
}

_ECK_STATEFULSET = "https://github.com/elastic/cloud-on-k8s/blob/v3.5.0/deploy/eck-operator/templates/statefulset.yaml"
_DCGM_DAEMONSET = "https://github.com/NVIDIA/dcgm-exporter/blob/4.5.3-4.8.2/deployment/templates/daemonset.yaml"
# Keys a chart's templates read that its values.yaml does not document: (chart, value path) -> (why, template line).
UNDOCUMENTED_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("eck-operator", "podSecurityContext.seccompProfile"):
        ("Pod Security `restricted` requires a seccomp profile; the pod securityContext is rendered whole.",
         f"{_ECK_STATEFULSET}#L49-L51"),
    ("eck-operator", "securityContext.seccompProfile"):
        ("Pod Security `restricted` requires a seccomp profile; the container securityContext is rendered whole.",
         f"{_ECK_STATEFULSET}#L64-L66"),
    ("eck-operator", "securityContext.privileged"):
        ("The platform's restricted container context says `privileged: false` explicitly; rendered whole.",
         f"{_ECK_STATEFULSET}#L64-L66"),
    ("dcgm-exporter", "securityContext.runAsGroup"):
        ("Runs the exporter under its non-root user's group beside its uid; the container securityContext is "
         "rendered whole.",
         f"{_DCGM_DAEMONSET}#L114-L115"),
}

# Maps whose upstream default is not empty but whose keys are still free-form: (chart, value path) -> why.
FREE_FORM_MAPS: dict[tuple[str, str], str] = {
    ("kube-prometheus-stack", r"grafana.grafana\.ini"):
        "Rendered section by section into grafana.ini: any Grafana configuration section and option.",
    ("cluster-autoscaler", "extraArgs"):
        "Rendered as `--<key>=<value>` flags: any command-line flag of the cluster autoscaler.",
    ("karpenter", "nodeSelector"):
        "Rendered whole as the controller pod's nodeSelector: any node label (the default only pins Linux).",
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    return "null"


def is_free_form(chart: UpstreamChart, path: ValuePath) -> bool:
    """Whether any key may go under a documented ``path``: its default is an empty map, or null (or a commented-out
    key) with nothing documented below it, or it is one of :data:`FREE_FORM_MAPS`."""
    if (chart.name, render_path(path)) in FREE_FORM_MAPS:
        return True
    _, default = lookup(chart.defaults, path)
    if isinstance(default, Mapping):
        return not default
    return default is None and not chart.documents_keys_under(path)


def _verdict(chart: UpstreamChart, path: ValuePath) -> str:
    if path in chart.documented:
        return "free" if is_free_form(chart, path) else "known"
    verdicts = []
    for where, validator in chart.schemas:
        if path[: len(where)] == where:
            verdicts.append(schema_verdict(validator.schema, path[len(where):]))
        elif path[0] == "global":
            verdicts.append(schema_verdict(validator.schema, path))
    return next((v for v in ("known", "free") if v in verdicts), "unknown")


def undocumented_paths(chart: UpstreamChart, values: Mapping[str, Any]) -> list[ValuePath]:
    """The topmost value paths we set that the chart documents nowhere (keys under a free-form map never)."""
    found: list[ValuePath] = []

    def walk(node: Mapping[str, Any], prefix: ValuePath) -> None:
        for key, value in node.items():
            path = (*prefix, str(key))
            verdict = _verdict(chart, path)
            if verdict == "unknown":
                found.append(path)
            elif verdict == "known" and isinstance(value, Mapping):
                walk(value, path)

    walk(values, ())
    return found


def type_mismatches(chart: UpstreamChart, values: Mapping[str, Any]) -> list[tuple[ValuePath, Any, Any]]:
    """``(path, ours, upstream)`` wherever our value's kind (bool, number, string, map, list) differs from a
    non-null upstream default."""
    found = []
    for path, ours in value_paths(values):
        present, upstream = lookup(chart.defaults, path)
        if present and upstream is not None and ours is not None and _kind(ours) != _kind(upstream):
            found.append((path, ours, upstream))
    return found


_HOST_DIRECTORY_KEY = re.compile(r"^(host\w*(Path|Mount)|kubelet\w*(Path|Dir))$")


def _is_risky(parent: str | int | None, key: str, value: Any) -> bool:
    if key == "add" and parent == "capabilities":
        return bool(value)
    if key in ("privileged", "allowPrivilegeEscalation", "hostNetwork", "hostPID", "hostIPC"):
        return value is True
    if key == "runAsNonRoot":
        return value is False
    if key == "runAsUser":
        return _kind(value) == "number" and value == 0
    return bool(_HOST_DIRECTORY_KEY.match(key)) and bool(value)


def security_settings(values: Any, prefix: ValuePath = ()) -> Iterator[tuple[ValuePath, Any]]:
    """Security-relevant settings of a values tree: added capabilities, privileged, root, host namespaces and host
    directories. Maps switched off with ``enabled: false`` (``enable: false`` in some charts) render nothing and are
    skipped."""
    if isinstance(values, Mapping):
        if values.get("enabled") is False or values.get("enable") is False:
            return
        for key, value in values.items():
            path = (*prefix, str(key))
            if _is_risky(prefix[-1] if prefix else None, str(key), value):
                yield path, value
            yield from security_settings(value, path)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from security_settings(item, (*prefix, index))


def set_by_us(values: Mapping[str, Any], path: ValuePath) -> bool:
    """Whether our values decide ``path``: we set it, or we set the list it is part of."""
    node: Any = values
    for part in path:
        if isinstance(node, list):
            return True
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def check_release_values(chart: str, version: str, values: Mapping[str, Any] | None, charts_dir: Path,
                         *, release: str | None = None) -> list[Finding]:
    """Check the values of one Helm release against its pinned upstream chart.

    Args:
        chart: Chart reference as the release names it (``oci://`` references included).
        version: Pinned chart version.
        values: The values we set (None for none).
        charts_dir: Folder of upstream charts, one ``<chart>-<version>/`` each.
        release: Release name the findings start with (the chart name when not given).

    Returns:
        One finding per undocumented key, type mismatch, schema violation and inherited security default that is
        not allowed; a single finding naming the missing file where the chart's upstream values are not there.
    """
    name = chart_name(chart)
    label = release or name
    try:
        upstream = load_upstream_chart(charts_dir, chart, version)
    except MissingUpstreamValues as missing:
        return [Finding(CHECK, label, f"upstream values of {name} {version} not found: {missing.path} is missing; a "
                        "chart bump needs the new version's upstream values.yaml (and values.schema.json where the "
                        "chart ships one) in the upstream charts folder")]
    ours = dict(values or {})
    problems = [*_unknown_keys(upstream, ours), *_wrong_types(upstream, ours), *_inherited_risks(upstream, ours)]
    return [Finding(CHECK, f"{label}/{render_path(path)}", message) for path, message in problems]


def _unknown_keys(chart: UpstreamChart, ours: Mapping[str, Any]) -> Iterator[tuple[ValuePath, str]]:
    for path in undocumented_paths(chart, ours):
        if (chart.name, render_path(path)) not in UNDOCUMENTED_KEYS:
            yield path, (f"{chart.name} {chart.version} has no such value (not in values.yaml, not commented out "
                         "there, not in its schema): fix the key, or list it in UNDOCUMENTED_KEYS with the template "
                         "line that reads it")


def _wrong_types(chart: UpstreamChart, ours: Mapping[str, Any]) -> Iterator[tuple[ValuePath, str]]:
    for path, value, default in type_mismatches(chart, ours):
        yield path, (f"set to {_kind(value)} {_short(value)} where {chart.name} {chart.version} defaults to "
                     f"{_kind(default)} {_short(default)}: use the default's type, the one its templates expect "
                     '(the string "false" is true to `if`)')
    merged = helm_merge(chart.defaults, ours)
    for where, validator in chart.schemas:
        _, instance = lookup(merged, where)
        if where and isinstance(instance, Mapping) and "global" in merged:
            instance = {**instance, "global": merged["global"]}
        for error in validator.iter_errors(instance or {}):
            yield (*where, *error.absolute_path), (f"the merged values break {chart.name} {chart.version}'s "
                                                   f"values.schema.json: {error.message[:200]}")


def _inherited_risks(chart: UpstreamChart, ours: Mapping[str, Any]) -> Iterator[tuple[ValuePath, str]]:
    for path, value in security_settings(helm_merge(chart.defaults, ours)):
        if not set_by_us(ours, path) and (chart.name, render_path(path)) not in ALLOWED_SECURITY_DEFAULTS:
            yield path, (f"inherits {chart.name}'s default {_short(value)} through Helm's map merge: set it "
                         "explicitly (an empty list, false, a non-root uid), or allow it in ALLOWED_SECURITY_DEFAULTS "
                         "with a reason")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_chart_values(result: PreviewResult, charts_dir: Path) -> list[Finding]:
    """Check the values of every Helm release of a stack's preview against its pinned upstream chart.

    Args:
        result: The stack's offline preview.
        charts_dir: Folder of upstream charts, one ``<chart>-<version>/`` each.

    Returns:
        The findings of :func:`check_release_values` for every release, in preview order.
    """
    findings = []
    for record in result.of_type(RELEASE_TYPE):
        inputs = record.inputs
        findings += check_release_values(inputs["chart"], inputs.get("version", ""), inputs.get("values"),
                                         charts_dir, release=inputs.get("name") or record.name)
    return findings


def upstream_charts_dir() -> Path | None:
    """The upstream charts folder named by ``AIP_UPSTREAM_CHARTS_DIR``, or None where it is unset or absent."""
    folder = os.environ.get(UPSTREAM_CHARTS_ENV)
    return Path(folder) if folder and Path(folder).is_dir() else None
