"""KServe predictor of the ranker.

    python predictor.py --model-dir DIR [--model-name ranker] [--http-port 8080]
"""

from __future__ import annotations

from aip_serving.kserve import KServeModel, serve
from core import RankerCore


class RankerModel(KServeModel):
    """Serves :class:`core.RankerCore` under the KServe ModelServer (v1 and v2 protocols)."""

    core_class = RankerCore


if __name__ == "__main__":
    serve(RankerModel)
