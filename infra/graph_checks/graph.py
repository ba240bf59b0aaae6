"""The previewed resource graph as a deploy sees it: records by URN and the edges `pulumi up` waits on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from infra.graph_checks import helm_values
from infra.preview.runner import PreviewResult, ResourceRecord

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
EKS_CLUSTER = "aws:eks/cluster:Cluster"

# Groups of the API server's own resources that carry a dot; every other dotted group comes from a CRD.
_BUILT_IN_GROUP_SUFFIX = ".k8s.io"
# Kubernetes-provider types that are not objects sent to the API server.
_NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")


def provider_urn(record: ResourceRecord) -> str | None:
    """URN of the provider a record uses, from the engine's provider reference (``<urn>::<id>``)."""
    reference = record.options.get("provider")
    if not reference:
        return None
    # A URN itself contains "::"; the id is what follows the last one.
    return str(reference).rsplit("::", 1)[0]


def lookup(inputs: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted path of a record's inputs (``vpcConfig.endpointPublicAccess``), or ``default``."""
    current: Any = inputs
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return default
        current = current[part]
    return current


@dataclass(frozen=True)
class KubeObject:
    """Identity of a Kubernetes object the program sends to the API server."""

    api_version: str
    kind: str
    namespace: str | None
    name: str | None

    @property
    def group(self) -> str:
        """API group; empty for the core group (``v1``)."""
        return self.api_version.rpartition("/")[0]

    @property
    def is_custom(self) -> bool:
        """Whether the kind is served by a CustomResourceDefinition, which something must install first."""
        return "." in self.group and not self.group.endswith(_BUILT_IN_GROUP_SUFFIX)


def kube_object(record: ResourceRecord) -> KubeObject | None:
    """Kind, apiVersion, namespace and name of a ``kubernetes:*`` object record; None for anything else.

    Helm releases and the provider itself are not objects. The type token (``kubernetes:<apiVersion>:<Kind>``)
    stands in for inputs a record lacks.
    """
    if not record.type.startswith("kubernetes:") or record.type.startswith(_NOT_OBJECTS):
        return None
    _, api_version, kind = record.type.split(":", 2)
    metadata = record.inputs.get("metadata") or {}
    return KubeObject(api_version=str(record.inputs.get("apiVersion") or api_version),
                      kind=str(record.inputs.get("kind") or kind),
                      namespace=metadata.get("namespace") if isinstance(metadata, Mapping) else None,
                      name=metadata.get("name") if isinstance(metadata, Mapping) else None)


def chart_name(release: ResourceRecord) -> str:
    """The chart a Helm release installs, without repository or OCI registry (``oci://…/kserve-crd``)."""
    return helm_values.chart_name(str(release.inputs.get("chart") or ""))


class ResourceGraph:
    """A stack's previewed resources and what each one waits for during `pulumi up`.

    A resource is registered only once everything it waits on has been created:

    - its ``dependsOn`` (explicit ``depends_on`` and the resources its inputs come from; the SDK already
      expanded component resources to their children);
    - its provider: the SDK awaits the provider's id, so the provider's own dependencies delay everyone
      using it;
    - its parent: the SDK awaits the parent's URN, which a component gets only after its own
      ``depends_on`` resolved (``pulumi.runtime.resource.prepare_resource``).

    Args:
        result: An offline preview of the stack.
    """

    def __init__(self, result: PreviewResult):
        self.result = result
        self.records: list[ResourceRecord] = list(result.resources)
        self.by_urn: dict[str, ResourceRecord] = {r.urn: r for r in self.records}
        self._closure: dict[str, frozenset[str]] = {}

    @property
    def stack(self) -> str:
        return self.result.stack

    def get(self, urn: str) -> ResourceRecord | None:
        return self.by_urn.get(urn)

    def outputs(self, record: ResourceRecord) -> dict[str, Any]:
        """What the (mock) provider answered for a record: ids and attributes the cloud assigns."""
        return json_format.MessageToDict(record.output_struct)

    def of_type(self, type_token: str) -> list[ResourceRecord]:
        """Records of one type, in registration order."""
        return [r for r in self.records if r.type == type_token]

    def waits_on(self, record: ResourceRecord) -> list[str]:
        """URNs a record waits for directly: dependencies, provider and parent (those that were registered)."""
        direct = [*record.options.get("dependsOn", ()), provider_urn(record), record.parent]
        return [urn for urn in dict.fromkeys(direct) if urn and urn in self.by_urn]

    def dependencies(self, record: ResourceRecord) -> frozenset[str]:
        """URNs of everything a record waits for, directly or transitively."""
        if record.urn not in self._closure:
            seen: set[str] = set()
            pending = list(self.waits_on(record))
            while pending:
                urn = pending.pop()
                if urn in seen:
                    continue
                seen.add(urn)
                pending.extend(self.waits_on(self.by_urn[urn]))
            seen.discard(record.urn)
            self._closure[record.urn] = frozenset(seen)
        return self._closure[record.urn]

    def waits_for_any(self, record: ResourceRecord, candidates: Iterable[ResourceRecord]) -> bool:
        """Whether a record transitively waits for at least one of ``candidates``."""
        closure = self.dependencies(record)
        return any(c.urn in closure for c in candidates)

    def kubernetes_objects(self, predicate: Callable[[KubeObject], bool] = lambda _: True,
                           ) -> list[tuple[ResourceRecord, KubeObject]]:
        """Kubernetes object records (Helm releases excluded) with their identity, filtered by ``predicate``."""
        found = []
        for record in self.records:
            obj = kube_object(record)
            if obj is not None and predicate(obj):
                found.append((record, obj))
        return found

    def helm_releases(self) -> list[ResourceRecord]:
        return self.of_type(HELM_RELEASE)


__all__ = ["EKS_CLUSTER", "HELM_RELEASE", "NODE_GROUP", "STACK_REFERENCE", "KubeObject", "ResourceGraph",
           "chart_name", "kube_object", "lookup", "provider_urn"]
