"""Entry point the Pulumi CLI runs: builds the policy pack (and with it the gRPC analyzer server).

Only this file may construct ``PolicyPack``: constructing it starts the server and blocks forever.
"""

import sys
from pathlib import Path

# The CLI runs this file with the pack directory (policies/) as cwd and sys.path[0], so the `policies`
# package itself is not importable until its parent directory is on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.registry import ALL_POLICIES, PACK_NAME

PolicyPack(name=PACK_NAME, policies=ALL_POLICIES, enforcement_level=EnforcementLevel.ADVISORY)
