"""KServe predictor of the digits classifier.

    python predictor.py --model-dir DIR [--model-name digits] [--http-port 8080]
"""

from __future__ import annotations

from aip_serving.kserve import KServeModel, serve
from core import DigitsCore


class DigitsModel(KServeModel):
    """Serves :class:`core.DigitsCore` under the KServe ModelServer (v1 and v2 protocols)."""

    core_class = DigitsCore


if __name__ == "__main__":
    serve(DigitsModel)
