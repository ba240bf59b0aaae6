"""TorchServe handler of the digits classifier (exactly one class: TorchServe's loader requires it)."""

from __future__ import annotations

from aip_serving.torchserve import TorchServeHandler
from core import DigitsCore


class DigitsHandler(TorchServeHandler):
    """Serves :class:`core.DigitsCore` under TorchServe."""

    core_class = DigitsCore
