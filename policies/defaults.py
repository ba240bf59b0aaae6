"""Defaults the stack config, the policy pack and the in-cluster admission policies share.

The pack must import on its own (the Pulumi CLI runs it without the program), so these live here and
infra/config reads them from the pack rather than the other way round.
"""

from __future__ import annotations

# Image prefixes team namespaces may pull from, besides the stack account's own ECR. Only serving pods
# run there: the platform's TorchServe runtime (docker.io/pytorch/torchserve-kfs, infra/versions.py) and
# KServe's storage-initializer init container (docker.io/kserve/storage-initializer, the KServe chart's
# default); a team's own predictor images belong in the account's ECR.
DEFAULT_APPROVED_REGISTRIES: tuple[str, ...] = ("docker.io/pytorch/", "docker.io/kserve/")
# The pack setting both registry policies read (each policy gets its own copy in policies/config/<env>.json).
APPROVED_REGISTRIES_SCHEMA = {"type": "array", "items": {"type": "string"},
                              "default": list(DEFAULT_APPROVED_REGISTRIES)}
# Regions AWS resources may live in (the pack's `aws-all-resource-allowed-region` default); a recovery region
# must be one of them too.
DEFAULT_ALLOWED_REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")
