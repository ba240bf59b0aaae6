"""EC2 instance types as AWS's own API model names them: the catalog that stack config is checked against.

botocore ships the EC2 API model, whose `InstanceType` enum lists every instance type the API accepts, and
is released with each new type. Checking config against it turns a typo (`g6.2xlarg`) into a config error
with a suggestion, instead of a failed `pulumi up` minutes later.
"""

from __future__ import annotations

import difflib
import functools

from botocore.loaders import Loader


@functools.cache
def instance_types() -> frozenset[str]:
    """Every instance type the EC2 API accepts."""
    model = Loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"])


def closest(instance_type: str, candidates: frozenset[str] | None = None) -> str | None:
    """The known instance type a typo most likely meant, if any is close enough."""
    pool = sorted(candidates if candidates is not None else instance_types())
    found = difflib.get_close_matches(instance_type, pool, n=1, cutoff=0.8)
    return found[0] if found else None
