"""The benchmark modules import each other by bare name (`from serving_load import ...`), as they do when
benchmarks/serving.py runs by path: benchmarks/ goes on sys.path for these tests."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
