"""TorchServe handler of the ranker (exactly one class: TorchServe's loader requires it)."""

from __future__ import annotations

from aip_serving.torchserve import TorchServeHandler
from core import RankerCore


class RankerHandler(TorchServeHandler):
    """Serves :class:`core.RankerCore` under TorchServe."""

    core_class = RankerCore
