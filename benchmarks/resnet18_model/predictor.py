"""KServe predictor of the benchmark's ResNet-18-sized CNN.

    python predictor.py --model-dir DIR [--model-name resnet18] [--http-port 8080]
"""

from __future__ import annotations

from aip_serving.kserve import KServeModel, serve

from core import ResNetCore


class ResNetModel(KServeModel):
    """Serves :class:`core.ResNetCore` under the KServe ModelServer (v1, and v2 with binary tensors)."""

    core_class = ResNetCore


if __name__ == "__main__":
    serve(ResNetModel)
