"""What the node group policies share: which node groups carry GPUs."""

from __future__ import annotations

from typing import Any

from policies.props import get

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def is_gpu_node_group(props: Any) -> bool:
    """GPU node groups run an NVIDIA AMI (AL2_x86_64_GPU is the older name of the same thing)."""
    ami_type = str(get(props, "amiType", default=""))
    return "NVIDIA" in ami_type or ami_type.endswith("_GPU")
