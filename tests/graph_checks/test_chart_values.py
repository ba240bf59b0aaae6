"""Check "chart-values": every Helm value we set exists upstream with the default's type, and no risky upstream
default survives Helm's merge unless allowed.

Pure helpers and a small chart written to a temporary folder run everywhere. The shipped stacks and the seeded
defects need the pinned charts' upstream values, from the folder in AIP_UPSTREAM_CHARTS_DIR (skipped without it,
failing under CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.components import gpu_metrics
from infra.graph_checks.chart_values import (
    ALLOWED_SECURITY_DEFAULTS,
    FREE_FORM_MAPS,
    RELEASE_TYPE,
    UNDOCUMENTED_KEYS,
    check_chart_values,
    check_release_values,
    security_settings,
    set_by_us,
)
from infra.graph_checks.helm_values import (
    MissingUpstreamValues,
    chart_name,
    commented_keys,
    helm_merge,
    load_upstream_chart,
    lookup,
    render_path,
    schema_verdict,
    value_paths,
)
from infra.versions import DCGM_EXPORTER, HELM_CHARTS, KUBE_PROMETHEUS_STACK, NVIDIA_DEVICE_PLUGIN
from tests.graph_checks.conftest import PLATFORM_STACKS, STACKS, record, result_of

# -- pure helpers ----------------------------------------------------------------------------------------------

def test_helm_merge_merges_maps_key_by_key_and_replaces_everything_else():
    defaults = {"securityContext": {"runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}},
                "args": ["-a", "-b"], "port": 9400, "name": "x"}
    ours = {"securityContext": {"runAsUser": 1000, "capabilities": {"drop": ["ALL"]}}, "args": ["-c"], "name": None}
    assert helm_merge(defaults, ours) == {
        "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}},
        "args": ["-c"], "port": 9400}
    assert defaults["securityContext"]["runAsUser"] == 0 and "name" in defaults  # inputs untouched


def test_helm_merge_nulls_delete_defaults_and_vanish_elsewhere():
    defaults = {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}, "hostPath": "/var/lib/kubelet"}
    assert helm_merge(defaults, {"capabilities": {"add": None}, "hostPath": None, "new": {"key": None, "k": 1}}) == {
        "capabilities": {"drop": ["ALL"]}, "new": {"k": 1}}
    # A map replaces a scalar default, and an empty list replaces a list as a whole.
    assert helm_merge({"a": "x", "b": [1]}, {"a": {"c": 1}, "b": []}) == {"a": {"c": 1}, "b": []}


def test_value_paths_stop_at_lists_and_render_like_helm_set():
    values = {"grafana": {"grafana.ini": {"auth": {"enabled": True}}}, "tolerations": [{"key": "a"}]}
    assert [render_path(p) for p, _ in value_paths(values)] == [
        "grafana", r"grafana.grafana\.ini", r"grafana.grafana\.ini.auth", r"grafana.grafana\.ini.auth.enabled",
        "tolerations"]
    assert render_path(("extraHostVolumes", 0, "hostPath")) == "extraHostVolumes[0].hostPath"
    assert lookup(values, ("tolerations", 0, "key")) == (True, "a")
    assert lookup(values, ("tolerations", 1)) == (False, None)


def test_commented_keys_follow_the_comment_indentation():
    text = """\
securityContext: {}
  # capabilities:
  #   add:
  #   - SYS_TIME
  # readOnlyRootFilesystem: true
podAnnotations: {}
#  prometheus.io/scrape: "true"
service:
  port: 9400
  # nodePort: 30000
# customMetrics: |
  # Format
  # DCGM_FI_DEV_SM_CLOCK: gauge, SM clock frequency.
tolerations:
  - key: a
    # operator: Exists
#- name: host-binaries
#  hostPath: /opt/bin
## prose: not a key
# Note: prose too
# ref: https://example.com
"""
    assert {render_path(p) for p in commented_keys(text)} == {
        "securityContext.capabilities", "securityContext.capabilities.add", "securityContext.readOnlyRootFilesystem",
        r"podAnnotations.prometheus\.io/scrape", "service.nodePort", "customMetrics"}


def test_schema_verdict_follows_refs_and_free_form_maps():
    schema = {"$ref": "#/$defs/values", "$defs": {
        "values": {"type": "object", "additionalProperties": False, "properties": {
            "image": {"$ref": "#/$defs/image"}, "podLabels": {"type": "object"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "image": {"type": "object", "additionalProperties": False, "properties": {"tag": {"type": "string"}}}}}
    assert schema_verdict(schema, ("image", "tag")) == "known"
    assert schema_verdict(schema, ("image", "tg")) == "unknown"
    assert schema_verdict(schema, ("imge",)) == "unknown"
    assert schema_verdict(schema, ("podLabels", "team")) == "free"
    assert schema_verdict(schema, ("env", "ANY")) == "known"


def test_security_settings_skip_disabled_parts_and_know_who_set_them():
    merged = {"securityContext": {"runAsUser": 0, "runAsNonRoot": False, "capabilities": {"add": ["NET_ADMIN"]}},
              "hostNetwork": True, "hostPID": False, "kubeletPath": "/var/lib/kubelet/pod-resources",
              "gfd": {"enabled": False, "securityContext": {"privileged": True}},
              "topologyUpdater": {"enable": False, "kubeletStateDir": "/var/lib/kubelet"},
              "extraHostVolumes": [{"name": "bin", "hostPath": "/opt/bin"}], "capabilities": {"add": []}}
    found = {render_path(p) for p, _ in security_settings(merged)}
    assert found == {"securityContext.runAsUser", "securityContext.runAsNonRoot", "securityContext.capabilities.add",
                     "hostNetwork", "kubeletPath", "extraHostVolumes[0].hostPath"}
    ours = {"securityContext": {"runAsUser": 0}, "extraHostVolumes": [{"name": "bin", "hostPath": "/opt/bin"}]}
    assert set_by_us(ours, ("securityContext", "runAsUser"))
    assert set_by_us(ours, ("extraHostVolumes", 0, "hostPath"))  # our list, our item
    assert not set_by_us(ours, ("securityContext", "capabilities", "add"))
    assert not set_by_us(ours, ("hostNetwork",))


def test_chart_names_drop_registries():
    assert chart_name("oci://ghcr.io/kserve/charts/kserve-resources") == "kserve-resources"
    assert chart_name("cert-manager") == "cert-manager"


# -- the check on a small chart ---------------------------------------------------------------------------------

DEMO_VALUES = """\
image:
  tag: "1.0"
replicas: 1
enabled: true
securityContext:
  runAsUser: 0
  capabilities:
    add: [NET_ADMIN]
    drop: [ALL]
  # readOnlyRootFilesystem: true
podSecurityContext: {}
  # fsGroup: 2000
hostNetwork: true
debug:
  enabled: false
  privileged: true
sub:
  greeting: hello
"""
DEMO_SUBCHART_VALUES = """\
greeting: hi
port: 8080
global:
  registry: docker.io
"""
DEMO_SCHEMA = '{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}}'
# What keeps the demo chart's risky defaults off.
SAFE = {"securityContext": {"runAsUser": 1000, "capabilities": {"add": []}}, "hostNetwork": False}


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    chart = tmp_path / "demo-1.0.0"
    (chart / "charts" / "sub").mkdir(parents=True)
    (chart / "values.yaml").write_text(DEMO_VALUES)
    (chart / "values.schema.json").write_text(DEMO_SCHEMA)
    (chart / "charts" / "sub" / "values.yaml").write_text(DEMO_SUBCHART_VALUES)
    return tmp_path


def demo(values: dict[str, Any], charts_dir: Path) -> dict[str, str]:
    return {f.subject: f.message for f in check_release_values("oci://example.com/charts/demo", "1.0.0", values,
                                                               charts_dir, release="demo")}


def test_documented_commented_free_form_subchart_and_global_values_pass(demo_dir):
    ours = helm_merge(SAFE, {"image": {"tag": "2.0"}, "securityContext": {"readOnlyRootFilesystem": True},
                             "podSecurityContext": {"fsGroup": 2000, "anything": {"goes": 1}},
                             "sub": {"port": 9090}, "global": {"registry": "registry.example.com"},
                             "debug": {"enabled": False}})
    assert demo(ours, demo_dir) == {}


def test_unknown_keys_are_reported_at_their_topmost_path(demo_dir):
    found = demo({**SAFE, "imge": {"tag": "2.0"}, "image": {"tg": "2.0"}, "sub": {"prt": 1}}, demo_dir)
    assert set(found) == {"demo/imge", "demo/image.tg", "demo/sub.prt"}
    assert "demo 1.0.0 has no such value" in found["demo/imge"]


def test_types_must_match_the_upstream_default_and_the_schema(demo_dir):
    found = demo({**SAFE, "enabled": "true", "image": {"tag": 2}}, demo_dir)
    assert set(found) == {"demo/enabled", "demo/image.tag"}
    assert 'set to string "true" where demo 1.0.0 defaults to bool true' in found["demo/enabled"]
    below_minimum = demo({**SAFE, "replicas": 0}, demo_dir)
    assert "values.schema.json: 0 is less than the minimum of 1" in below_minimum["demo/replicas"]


def test_risky_defaults_surviving_the_merge_are_reported(demo_dir):
    found = demo({"securityContext": {"capabilities": {"drop": ["ALL"]}}}, demo_dir)
    assert set(found) == {"demo/securityContext.runAsUser", "demo/securityContext.capabilities.add",
                          "demo/hostNetwork"}
    assert 'inherits demo\'s default ["NET_ADMIN"] through Helm\'s map merge' in found[
        "demo/securityContext.capabilities.add"]
    # Switching the debug part on brings its privileged default to life.
    assert "demo/debug.privileged" in demo({**SAFE, "debug": {"enabled": True}}, demo_dir)


def test_a_missing_upstream_values_file_fails_naming_it(demo_dir):
    found = check_release_values("demo", "2.0.0", {}, demo_dir)
    assert len(found) == 1
    assert str(demo_dir.resolve() / "demo-2.0.0" / "values.yaml") in found[0].message
    assert "a chart bump needs the new version's upstream values.yaml" in found[0].message
    (demo_dir / "demo-1.0.0" / "charts" / "sub" / "values.yaml").unlink()
    with pytest.raises(MissingUpstreamValues, match=r"charts/sub/values\.yaml"):
        load_upstream_chart(demo_dir, "demo", "1.0.0")


def test_the_check_reads_each_release_of_a_preview(demo_dir):
    release = record(RELEASE_TYPE, "demo-release", inputs={"chart": "oci://example.com/charts/demo",
                                                         "version": "1.0.0", "name": "demo", "values": {"x": 1}})
    findings = check_chart_values(result_of(release, record("aws:s3/bucket:Bucket", "b")), demo_dir)
    assert {f.subject for f in findings} >= {"demo/x", "demo/hostNetwork"}
    assert {f.check for f in findings} == {"chart-values"}


# -- the pinned charts and the shipped stacks --------------------------------------------------------------------

@pytest.mark.parametrize("pinned", HELM_CHARTS, ids=lambda c: chart_name(c.chart))
def test_every_pinned_chart_has_its_upstream_values(pinned, charts_dir):
    try:
        load_upstream_chart(charts_dir, pinned.chart, pinned.version)
    except MissingUpstreamValues as missing:
        pytest.fail(f"{missing.path} is missing: a chart bump needs its upstream values")


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_of_every_shipped_stack_passes(stack, preview, charts_dir):
    result = preview(stack)
    if stack in PLATFORM_STACKS:
        assert result.of_type(RELEASE_TYPE), "a platform stack without Helm releases: the check would prove nothing"
    findings = check_chart_values(result, charts_dir)
    assert not findings, "\n".join(f.render() for f in findings)


def inherited_settings(preview, charts_dir) -> set[tuple[str, str]]:
    found = set()
    for stack in PLATFORM_STACKS:
        for release in preview(stack).of_type(RELEASE_TYPE):
            chart = load_upstream_chart(charts_dir, release.inputs["chart"], release.inputs["version"])
            ours = release.inputs.get("values") or {}
            found |= {(chart.name, render_path(path)) for path, _ in security_settings(helm_merge(chart.defaults, ours))
                      if not set_by_us(ours, path)}
    return found


def test_every_allowed_security_default_is_still_inherited(preview, charts_dir):
    stale = set(ALLOWED_SECURITY_DEFAULTS) - inherited_settings(preview, charts_dir)
    assert not stale, f"no release inherits these any more; remove them from ALLOWED_SECURITY_DEFAULTS: {stale}"


def test_every_listed_undocumented_key_is_set_and_still_undocumented(preview, charts_dir):
    used = set()
    for stack in PLATFORM_STACKS:
        for release in preview(stack).of_type(RELEASE_TYPE):
            chart = load_upstream_chart(charts_dir, release.inputs["chart"], release.inputs["version"])
            used |= {(chart.name, render_path(path)) for path, _ in value_paths(release.inputs.get("values") or {})
                     if path not in chart.documented}
    assert set(UNDOCUMENTED_KEYS) <= used
    for reason, link in UNDOCUMENTED_KEYS.values():
        assert reason.endswith(".") and link.startswith("https://github.com/") and "#L" in link


def test_every_free_form_map_is_a_documented_map_with_defaults(charts_dir):
    pinned = {chart_name(c.chart): c for c in HELM_CHARTS}
    for name, path in FREE_FORM_MAPS:
        chart = load_upstream_chart(charts_dir, name, pinned[name].version)
        documented = {render_path(p): p for p in chart.documented}
        present, default = lookup(chart.defaults, documented[path])
        assert present and isinstance(default, dict) and default, (name, path)


# -- seeded defects on the real charts ----------------------------------------------------------------------------

def dcgm(values: dict[str, Any], charts_dir: Path) -> dict[str, str]:
    return {f.subject: f.message for f in check_release_values(DCGM_EXPORTER.chart, DCGM_EXPORTER.version, values,
                                                               charts_dir)}


def test_the_old_dcgm_values_inherit_sys_admin(charts_dir):
    old = gpu_metrics.dcgm_exporter_values()
    old["securityContext"]["capabilities"] = {"drop": ["ALL"]}
    found = dcgm(old, charts_dir)
    assert set(found) == {"dcgm-exporter/securityContext.capabilities.add"}
    assert '["SYS_ADMIN"]' in found["dcgm-exporter/securityContext.capabilities.add"]
    assert dcgm(gpu_metrics.dcgm_exporter_values(), charts_dir) == {}


def test_an_unknown_dcgm_key_and_a_string_for_a_bool_are_reported(charts_dir):
    values = helm_merge(gpu_metrics.dcgm_exporter_values(), {"serviceMonitr": {"enabled": False},
                                                             "kubernetes": {"enablePodLabels": "false"}})
    found = dcgm(values, charts_dir)
    assert set(found) == {"dcgm-exporter/serviceMonitr", "dcgm-exporter/kubernetes.enablePodLabels"}
    assert 'set to string "false" where dcgm-exporter 4.8.2 defaults to bool false' in found[
        "dcgm-exporter/kubernetes.enablePodLabels"]


def test_subchart_values_live_under_their_alias(charts_dir):
    def unknown(values: dict[str, Any]) -> set[str]:
        return {f.subject for f in check_release_values(KUBE_PROMETHEUS_STACK.chart, KUBE_PROMETHEUS_STACK.version,
                                                        values, charts_dir) if "has no such value" in f.message}

    assert unknown({"grafana": {"replicas": 1}, "kube-state-metrics": {"replicas": 1},
                  "prometheus-node-exporter": {"hostNetwork": True}}) == set()
    assert unknown({"grafana": {"replicaz": 1}, "prometheus-node-exporter": {"hostNetwrk": True}}) == {
        "kube-prometheus-stack/grafana.replicaz", "kube-prometheus-stack/prometheus-node-exporter.hostNetwrk"}


def test_switching_on_a_disabled_part_brings_its_defaults_to_life(charts_dir):
    found = {f.subject for f in check_release_values(NVIDIA_DEVICE_PLUGIN.chart, NVIDIA_DEVICE_PLUGIN.version,
                                                     {"gfd": {"enabled": True}}, charts_dir)}
    assert "nvidia-device-plugin/gfd.securityContext.privileged" in found


def test_a_schema_rejects_merged_values(charts_dir):
    found = check_release_values("cert-manager", "v1.20.3", {"replicaCount": "two"}, charts_dir)
    assert any("values.schema.json" in f.message for f in found if f.subject == "cert-manager/replicaCount")
