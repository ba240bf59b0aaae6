"""TorchServe handler of the benchmark's ResNet-18-sized CNN (exactly one class: TorchServe's loader requires it)."""

from __future__ import annotations

from aip_serving.torchserve import TorchServeHandler

from core import ResNetCore


class ResNetHandler(TorchServeHandler):
    """Serves :class:`core.ResNetCore` under TorchServe."""

    core_class = ResNetCore
