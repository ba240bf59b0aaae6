"""The program Pulumi.yaml names: read the stack config, build the stack, export its outputs."""

import pulumi

from infra.config import PlatformConfig, load_stack_config
from infra.platform_stack import build_platform
from infra.team_stack import build_team

config = load_stack_config()
outputs = build_platform(config) if isinstance(config, PlatformConfig) else build_team(config)
for key, value in outputs.items():
    pulumi.export(key, value)
