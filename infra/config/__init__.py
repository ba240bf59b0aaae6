"""Typed, validated stack configuration: the only module that reads Pulumi config."""

from infra.config.errors import ConfigError, Problem
from infra.config.loader import load_stack_config, parse_stack_config, stack_file
from infra.config.models import (
    ClusterConfig,
    GpuPoolConfig,
    ModelStoreConfig,
    NetworkConfig,
    PlatformConfig,
    RouteConfig,
    StackConfig,
    SystemNodesConfig,
    TeamConfig,
)

__all__ = [
    "ClusterConfig",
    "ConfigError",
    "GpuPoolConfig",
    "ModelStoreConfig",
    "NetworkConfig",
    "PlatformConfig",
    "Problem",
    "RouteConfig",
    "StackConfig",
    "SystemNodesConfig",
    "TeamConfig",
    "load_stack_config",
    "parse_stack_config",
    "stack_file",
]
