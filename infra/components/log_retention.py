"""How long logs live and where they are archived, as the Elasticsearch API bodies that say so.

ECK has no custom resource for index lifecycle (ILM) or snapshot lifecycle (SLM) policies outside its
Enterprise tier, so the platform applies them itself: a Job, named after a hash of everything it sends,
PUTs the bodies below with curl. A change to any of them is a new Job, which Pulumi runs once; an
unchanged stack runs nothing. The Job authenticates as a file-realm user whose role can manage
lifecycle policies, register the repository and take snapshots, and nothing else.

https://www.elastic.co/docs/manage-data/lifecycle/index-lifecycle-management
https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/create-snapshots
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from infra.components.pod_security import restricted_pod_security_context, restricted_security_context

ILM_POLICY = "aip-logs"
SNAPSHOT_REPOSITORY = "aip-log-archive"
# In a recovery stack: the restored stack's snapshots, replicated into the bucket this stack archives to, read-only.
RESTORE_REPOSITORY = "aip-log-archive-replica"
SLM_POLICY = "aip-log-snapshots"
# Everything Elasticsearch writes to the archive bucket lives under this prefix.
SNAPSHOT_BASE_PATH = "snapshots"
# Filebeat writes one data stream per version, `filebeat-<version>`.
LOG_INDICES = ("filebeat-*",)
# A backing index rolls over daily (or at 50 GB a primary shard), so deletes happen a day at a time.
ROLLOVER = {"max_age": "1d", "max_primary_shard_size": "50gb"}

SETUP_ROLE = "aip_log_setup"
MONITOR_ROLE = "aip_log_monitor"

# Files the setup Job reads from its ConfigMap, in the order it PUTs them.
ILM_FILE, REPOSITORY_FILE, SLM_FILE = "ilm-policy.json", "snapshot-repository.json", "slm-policy.json"
RESTORE_REPOSITORY_FILE = "restore-repository.json"
BODIES_DIR, CA_DIR = "/etc/aip-log-setup", "/etc/elasticsearch-ca"
# curlimages/curl runs as curl_user (uid 100); no file in the image has to be writable.
CURL_UID = 100


def ilm_policy(retention_days: int) -> dict[str, Any]:
    """Hot until rollover, deleted ``retention_days`` after it, and never before a snapshot holds it.

    ``wait_for_snapshot`` keeps a backing index until the SLM policy has run since it entered the
    delete phase, so nothing leaves the cluster before it is in the archive.
    https://www.elastic.co/docs/reference/elasticsearch/index-lifecycle-actions/ilm-wait-for-snapshot
    """
    return {"policy": {
        "_meta": {"managed_by": "ai-platform", "description": f"Logs stay searchable for {retention_days} days"},
        "phases": {
            "hot": {"min_age": "0ms", "actions": {"rollover": dict(ROLLOVER)}},
            "delete": {"min_age": f"{retention_days}d",
                       "actions": {"wait_for_snapshot": {"policy": SLM_POLICY}, "delete": {}}},
        },
    }}


def snapshot_repository(bucket: str, base_path: str = SNAPSHOT_BASE_PATH) -> dict[str, Any]:
    """The archive bucket as an S3 repository.

    No credentials: the S3 client takes the pod's IRSA web identity token. No client-side encryption
    setting either: the bucket encrypts every object with its customer key by default.
    https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/s3-repository
    """
    return {"type": "s3", "settings": {"bucket": bucket, "base_path": base_path}}


def recovery_base_path(stack: str) -> str:
    """Where a recovery stack's own snapshots go in the replica bucket: beside the replicated ones, never into them."""
    return f"{SNAPSHOT_BASE_PATH}-{stack}"


def restore_repository(bucket: str) -> dict[str, Any]:
    """The replicated snapshots of the restored stack, registered read-only.

    Replication still writes there while the restored stack lives (a rehearsal), and one repository must have
    one writer: a second cluster writing it would corrupt it. Read-only, this cluster restores from it safely.
    https://www.elastic.co/docs/troubleshoot/elasticsearch/diagnosing-corrupted-repositories
    """
    repository = snapshot_repository(bucket)
    repository["settings"]["readonly"] = True
    return repository


def slm_policy(schedule: str, retention_days: int) -> dict[str, Any]:
    """Snapshots of every log data stream on ``schedule``, expired after ``retention_days``.

    The cluster state is included (index templates, lifecycle policies and Kibana's saved objects), so a
    lost cluster can be rebuilt from the archive; restoring an index never has to restore it. The
    newest snapshot is never expired, so a long snapshot outage cannot leave the archive empty.
    https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-slm-put-lifecycle
    """
    return {
        "schedule": schedule,
        "name": "<aip-logs-{now/d}>",
        "repository": SNAPSHOT_REPOSITORY,
        "config": {"indices": list(LOG_INDICES), "include_global_state": True, "ignore_unavailable": True},
        "retention": {"expire_after": f"{retention_days}d", "min_count": 1},
    }


def security_roles() -> dict[str, Any]:
    """The two roles the platform's own clients get (ECK `spec.auth.roles`, file-based `roles.yml`).

    `aip_log_setup` may write lifecycle policies and the repository and take and delete snapshots; SLM
    runs each snapshot with the privileges of whoever last wrote its policy, so this role is also what
    the nightly snapshots run with. `aip_log_monitor` may only read cluster and index statistics.
    https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/create-snapshots#slm-security
    """
    return {
        SETUP_ROLE: {
            "cluster": ["manage_ilm", "manage_slm", "cluster:admin/snapshot/*", "cluster:admin/repository/put"],
            "indices": [{"names": [".slm-history-*"], "privileges": ["all"]}],
        },
        MONITOR_ROLE: {
            "cluster": ["monitor"],
            "indices": [{"names": ["*"], "privileges": ["monitor"]}],
        },
    }


def roles_file() -> str:
    return yaml.safe_dump(security_roles(), sort_keys=True)


def setup_bodies(*, bucket: str, retention_days: int, schedule: str, snapshot_retention_days: int,
                 base_path: str = SNAPSHOT_BASE_PATH, restore: bool = False) -> dict[str, str]:
    """The ConfigMap data of the setup Job: one JSON document per API call.

    ``base_path`` is where this cluster's snapshots go; ``restore`` (a recovery stack) adds the read-only
    repository of the replicated snapshots under the default base path of the same bucket.
    """
    documents = {ILM_FILE: ilm_policy(retention_days), REPOSITORY_FILE: snapshot_repository(bucket, base_path),
                 SLM_FILE: slm_policy(schedule, snapshot_retention_days)}
    if restore:
        documents[RESTORE_REPOSITORY_FILE] = restore_repository(bucket)
    return {name: json.dumps(body, indent=2, sort_keys=True) + "\n" for name, body in documents.items()}


def setup_script(elasticsearch_url: str, restore: bool = False) -> str:
    """PUT each body, in order, retrying while the cluster, its users or the repository are not ready yet.

    The password reaches curl on stdin (`--config -`), never on its command line.
    """
    calls = [(f"_ilm/policy/{ILM_POLICY}", ILM_FILE), (f"_snapshot/{SNAPSHOT_REPOSITORY}", REPOSITORY_FILE),
             (f"_slm/policy/{SLM_POLICY}", SLM_FILE)]
    if restore:
        calls.append((f"_snapshot/{RESTORE_REPOSITORY}", RESTORE_REPOSITORY_FILE))
    lines = [
        "set -eu",
        "put() {",
        '  printf \'user = "%s:%s"\\n\' "$ES_USERNAME" "$ES_PASSWORD" | curl --config - --silent --show-error \\',
        f"    --fail-with-body --cacert {CA_DIR}/ca.crt --retry 60 --retry-delay 10 --retry-all-errors \\",
        "    --max-time 120 -X PUT -H 'Content-Type: application/json' \\",
        f'    --data-binary "@{BODIES_DIR}/$2" "{elasticsearch_url}/$1"',
        "  echo",
        "}",
    ]
    lines += [f"put {path} {file}" for path, file in calls]
    return "\n".join(lines) + "\n"


def content_hash(*parts: Any) -> str:
    """A short, stable hash of what a Job does: a new one runs whenever any part changes."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]


def setup_job_spec(*, config_map: str, credentials_secret: str, ca_secret: str, image: str,
                   script: str) -> dict[str, Any]:
    """A one-off Job under Pod Security `restricted`: non-root, no capabilities, read-only root filesystem.

    No Kubernetes API token is mounted (it talks to Elasticsearch only); it retries for about ten minutes
    in curl and a few more times as a Job, and gives up after half an hour.
    """
    return {
        "backoffLimit": 4,
        "activeDeadlineSeconds": 1800,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "aip-log-setup"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod_security_context(CURL_UID),
                "containers": [{
                    "name": "apply",
                    "image": image,
                    "command": ["/bin/sh", "-c", script],
                    "env": [{"name": f"ES_{key.upper()}", "valueFrom": {"secretKeyRef": {
                        "name": credentials_secret, "key": key}}} for key in ("username", "password")],
                    "volumeMounts": [{"name": "bodies", "mountPath": BODIES_DIR, "readOnly": True},
                                     {"name": "ca", "mountPath": CA_DIR, "readOnly": True}],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                                  "limits": {"cpu": "100m", "memory": "64Mi"}},
                    "securityContext": {**restricted_security_context(), "readOnlyRootFilesystem": True},
                }],
                "volumes": [{"name": "bodies", "configMap": {"name": config_map}},
                            {"name": "ca", "secret": {"secretName": ca_secret, "items": [
                                {"key": "ca.crt", "path": "ca.crt"}]}}],
            },
        },
    }
