"""Identity: every principal that runs a stack can do, in the cluster and in AWS, exactly what that stack creates.

The cluster authenticates with EKS access entries only. The platform stack runs as the cluster's creator
(EKS's bootstrap admin) or an entry with cluster-admin; the principals config admits get the entry and policy
it names. A team stack runs as its team's CI principal: mapped by its access entry to a group bound to a
Role in the team's namespace, and allowed in AWS by the team's deploy policy. Read from the previews, a team
stack must create nothing outside its namespace, nothing that Role would deny and no AWS resource that
policy would deny, and the Role must grant nothing on the guardrails the platform sets.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from typing import Any

from infra.components.cluster_access import access_scope
from infra.config import PlatformConfig, StackConfig, TeamConfig
from infra.config.teams import ACCESS_POLICIES
from infra.graph_checks.findings import Finding
from infra.graph_checks.graph import EKS_CLUSTER, HELM_RELEASE, KubeObject, ResourceGraph, kube_object, lookup
from infra.preview.runner import PreviewResult, ResourceRecord

CHECK = "identity"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
IAM_POLICY = "aws:iam/policy:Policy"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
# What a deploy needs on a Kubernetes object it owns: server-side apply creates or patches it.
APPLY_VERBS = ("create", "patch")
# The guardrails the platform sets for a team; a team's CI must never be able to rewrite them.
GUARDRAILS = {("", "resourcequotas"), ("", "limitranges"), ("networking.k8s.io", "networkpolicies"),
              ("", "namespaces"), ("rbac.authorization.k8s.io", "roles"),
              ("rbac.authorization.k8s.io", "rolebindings"), ("", "secrets"), ("", "serviceaccounts")}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*", "escalate", "bind", "impersonate"}
# What creating, reading back and refreshing each AWS resource type a team stack may hold costs in IAM:
# (action, resource ARN template). The object's KMS key fills in partition, region and account.
AWS_ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "aws:s3/bucketObjectv2:BucketObjectv2": (
        ("s3:PutObject", "arn:{partition}:s3:::{bucket}/{key}"),
        ("s3:PutObjectTagging", "arn:{partition}:s3:::{bucket}/{key}"),
        ("s3:GetObject", "arn:{partition}:s3:::{bucket}/{key}"),
        ("s3:GetObjectTagging", "arn:{partition}:s3:::{bucket}/{key}"),
        ("kms:GenerateDataKey", "{kmsKeyId}"),
        # The provider compares the object's key with S3's default key (alias/aws/s3) on every read.
        ("kms:DescribeKey", "arn:{partition}:kms:{region}:{account}:key/s3-default-key"),
    ),
}


def resource_of(kind: str) -> str:
    """The API resource (plural) of a kind, as RBAC rules name it (``PodMonitor`` -> ``podmonitors``)."""
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith(("s", "x", "ch", "sh")) else "s")


def allows(rules: Iterable[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    """Whether RBAC ``rules`` grant ``verb`` on ``group``/``resource`` (names unrestricted)."""
    for rule in rules:
        if rule.get("resourceNames"):
            continue
        if (group in rule.get("apiGroups", ()) or "*" in rule.get("apiGroups", ())) \
                and (resource in rule.get("resources", ()) or "*" in rule.get("resources", ())) \
                and (verb in rule.get("verbs", ()) or "*" in rule.get("verbs", ())):
            return True
    return False


def iam_allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an identity policy allows ``action`` on ``resource``, ignoring conditions (Deny wins)."""
    def matches(statement: dict[str, Any]) -> bool:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        return any(fnmatch.fnmatchcase(action, a) for a in actions) and \
            any(fnmatch.fnmatchcase(resource, r) for r in resources)

    statements = policy.get("Statement", [])
    if any(s.get("Effect") == "Deny" and matches(s) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and matches(s) for s in statements)


def _finding(subject: str, message: str) -> Finding:
    return Finding(CHECK, subject, message)


def team_grants(platform: ResourceGraph, team: str, principal: str) -> tuple[list[dict[str, Any]], list[Finding]]:
    """RBAC rules a team's CI principal holds in the team's namespace, read from the platform's preview."""
    entries = [r for r in platform.of_type(ACCESS_ENTRY) if r.inputs.get("principalArn") == principal]
    if not entries:
        return [], [_finding(principal, f"team {team}'s CI principal has no access entry on the platform's cluster: "
                                        "every Kubernetes call of its stack would get 401")]
    groups = {g for entry in entries for g in entry.inputs.get("kubernetesGroups", ())}
    roles = {r.inputs["metadata"]["name"]: r for r in platform.of_type(ROLE)
             if r.inputs["metadata"].get("namespace") == team}
    rules: list[dict[str, Any]] = []
    for binding in platform.of_type(ROLE_BINDING):
        if binding.inputs["metadata"].get("namespace") != team:
            continue
        subjects = {s.get("name") for s in binding.inputs.get("subjects", ()) if s.get("kind") == "Group"}
        ref = binding.inputs.get("roleRef", {})
        if subjects & groups and ref.get("kind") == "Role" and ref.get("name") in roles:
            rules += roles[ref["name"]].inputs.get("rules", [])
    findings = []
    for association in platform.of_type(ACCESS_POLICY):
        if association.inputs.get("principalArn") == principal:
            findings.append(_finding(association.urn, f"team {team}'s CI principal also holds an EKS access policy; "
                                                      "its rights must come from the team's Role alone"))
    for rule in rules:
        for group in rule.get("apiGroups", ()):
            for resource in rule.get("resources", ()):
                writes = WRITE_VERBS & set(rule.get("verbs", ()))
                if writes and ((group, resource) in GUARDRAILS or "*" in (group, resource)):
                    findings.append(_finding(
                        f"{team}/{group or 'core'}/{resource}",
                        f"team {team}'s CI may {'/'.join(sorted(writes))} {resource}: a team could rewrite the "
                        "guardrails the platform sets"))
    return rules, findings


def _deploy_policy(platform: ResourceGraph, policy_arn: str) -> dict[str, Any] | None:
    for record in platform.of_type(IAM_POLICY):
        if platform.outputs(record).get("arn") == policy_arn:
            return json.loads(record.inputs["policy"])
    return None


def check_team_stack(result: PreviewResult, config: TeamConfig, platform: PreviewResult) -> list[Finding]:
    """Everything a team stack creates is allowed to its CI principal, and lies inside its namespace."""
    graph, platform_graph = ResourceGraph(result), ResourceGraph(platform)
    team = config.team
    onboarded = (platform.outputs.get("teams") or {}).get(team)
    if not onboarded:
        return [_finding(f"stack {result.stack}", f"team {team} is not onboarded on {platform.stack}: its CI has no "
                                                  "access to the cluster")]
    rules, findings = team_grants(platform_graph, team, onboarded["ciPrincipalArn"])
    for record in graph.records:
        if record.type == HELM_RELEASE:
            findings.append(_finding(record.urn, "a team stack may not install Helm charts (they need rights "
                                                 "outside the team's namespace)"))
            continue
        obj = kube_object(record)
        if obj is not None:
            findings += _object_findings(record, obj, team, rules)
        elif record.type.startswith("aws:"):
            findings += _aws_findings(record, team, platform_graph, onboarded)
    return findings


def _object_findings(record: ResourceRecord, obj: KubeObject, team: str, rules: list[dict[str, Any]]) -> list[Finding]:
    if obj.namespace != team:
        where = obj.namespace or "cluster-scoped"
        return [_finding(record.urn, f"{obj.kind} {obj.name} lies outside the team's namespace ({where}); the "
                                     f"team's CI may only deploy into {team}")]
    resource = resource_of(obj.kind)
    missing = [verb for verb in APPLY_VERBS if not allows(rules, obj.group, resource, verb)]
    if missing:
        return [_finding(record.urn, f"the team's CI may not {'/'.join(missing)} {obj.group or 'core'}/{resource} in "
                                     f"{team}: add it to the team's Role (infra/components/team_workspace.py "
                                     "TEAM_STACK_RESOURCES)")]
    return []


def _aws_findings(record: ResourceRecord, team: str, platform: ResourceGraph,
                  onboarded: dict[str, Any]) -> list[Finding]:
    needed = AWS_ACTIONS.get(record.type)
    if needed is None:
        return [_finding(record.urn, f"the team's CI has no IAM right to create {record.type}; team stacks upload "
                                     "models only")]
    policy = _deploy_policy(platform, onboarded.get("deployPolicyArn", ""))
    if policy is None:
        return [_finding(record.urn, f"team {team}'s deploy policy is not in the platform's preview")]
    key = str(record.inputs.get("kmsKeyId", "arn:aws:kms:region:account:key/none")).split(":")
    values = {**record.inputs, "partition": key[1], "region": key[3], "account": key[4]}
    denied = [action for action, arn in needed if not iam_allows(policy, action, arn.format(**values))]
    if denied:
        return [_finding(record.urn, f"team {team}'s deploy policy denies {', '.join(denied)} for "
                                     f"s3://{record.inputs.get('bucket')}/{record.inputs.get('key')}")]
    return []


def node_access_findings(graph: ResourceGraph) -> list[Finding]:
    """Nodes join the cluster: every Karpenter EC2NodeClass role has an EC2_LINUX access entry, and no managed node
    group's role has one of ours.

    EKS creates the entry of a managed node group's role itself (a second one for the same principal is refused);
    the role Karpenter's nodes run as gets none unless the stack creates it, and without it every node it launches
    fails to register and is replaced after its registration timeout, again and again.
    https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html
    """
    node_entries = {str(e.inputs.get("principalArn")): e for e in graph.of_type(ACCESS_ENTRY)
                    if e.inputs.get("type") == "EC2_LINUX"}
    findings = []
    for node_class in graph.of_type(EC2_NODE_CLASS):
        role = lookup(node_class.inputs, "spec.role")
        # A role ARN ends in the role's name, after its path (`:role/<path>/<name>`).
        if role and not any(":role/" in arn and arn.rsplit("/", 1)[-1] == role for arn in node_entries):
            findings.append(_finding(node_class.urn, f"EC2NodeClass role {role} has no EC2_LINUX access entry: the "
                                                     "nodes Karpenter launches with it could never join the cluster"))
    managed_roles = {str(g.inputs.get("nodeRoleArn")) for g in graph.of_type(NODE_GROUP)}
    for arn in sorted(managed_roles & set(node_entries)):
        findings.append(_finding(node_entries[arn].urn, f"{arn} is a managed node group's role, whose EC2_LINUX "
                                                        "access entry EKS creates itself: creating it too fails"))
    return findings


def check_platform_stack(result: PreviewResult, config: PlatformConfig) -> list[Finding]:
    """The platform's own deployer and every principal config names can authenticate, with the access named."""
    graph = ResourceGraph(result)
    findings = []
    for cluster in graph.of_type(EKS_CLUSTER):
        if lookup(cluster.inputs, "accessConfig.bootstrapClusterCreatorAdminPermissions") is not True and not any(
                e.access_policy == "clusterAdmin" and not e.namespaces for e in config.cluster.access_entries):
            findings.append(_finding(cluster.urn, "nobody may administer the cluster: keep the creator's bootstrap "
                                                  "admin or add a clusterAdmin access entry"))
    associations = {(a.inputs.get("principalArn"), a.inputs.get("policyArn", "").rsplit("/", 1)[-1]):
                    a for a in graph.of_type(ACCESS_POLICY)}
    entries = {e.inputs.get("principalArn") for e in graph.of_type(ACCESS_ENTRY)}
    for entry in config.cluster.access_entries:
        key = (entry.principal_arn, ACCESS_POLICIES[entry.access_policy])
        if entry.principal_arn not in entries or key not in associations:
            findings.append(_finding(entry.principal_arn, f"has no access entry with {key[1]}: it would get 401"))
        elif associations[key].inputs.get("accessScope") != access_scope(entry):
            findings.append(_finding(entry.principal_arn, f"{key[1]} is not scoped as configured "
                                                          f"({access_scope(entry)})"))
    findings += node_access_findings(graph)
    for team in config.teams:
        rules, found = team_grants(graph, team.name, team.ci_principal_arn)
        findings += found
        if not rules and not found:
            findings.append(_finding(team.ci_principal_arn, f"team {team.name}'s CI is bound to no Role in its "
                                                            "namespace: it could authenticate but do nothing"))
    return findings


def check_identity(result: PreviewResult, config: StackConfig,
                   platform: PreviewResult | None = None) -> list[Finding]:
    """Identity findings of a stack; a team stack needs the preview of the platform stack it builds on."""
    if isinstance(config, TeamConfig):
        if platform is None:
            return [_finding(f"stack {result.stack}", f"cannot check the team's access without a preview of "
                                                      f"{config.platform_stack}")]
        return check_team_stack(result, config, platform)
    return check_platform_stack(result, config)


__all__ = ["allows", "check_identity", "iam_allows", "node_access_findings", "resource_of", "team_grants"]
