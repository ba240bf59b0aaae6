"""Security contexts that satisfy Pod Security `restricted`, for every pod the platform defines itself.

https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
"""

from __future__ import annotations

from typing import Any


def restricted_security_context() -> dict[str, Any]:
    """What Pod Security `restricted` demands of every container."""
    return {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "privileged": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_pod_security_context(uid: int | None = None, *, group: int | None = None,
                                    fs_group: int | None = None) -> dict[str, Any]:
    """What `restricted` demands of a pod, with the user, group and volume group its image needs."""
    context: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    ids = {"runAsUser": uid, "runAsGroup": group, "fsGroup": fs_group}
    return {**context, **{key: value for key, value in ids.items() if value is not None}}
