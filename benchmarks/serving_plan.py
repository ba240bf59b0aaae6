"""What benchmarks/serving.py measures, and in which order: pure definitions, no servers, no torch.

- `Target`: one (runtime, protocol) pair a model is served through, at the shipped settings or in a
  tuning set-up (serving_variants.py); `TARGETS` lists the shipped ones, `targets_with` adds the set-ups'.
- Cells: every target gets a latency phase (`LATENCY_CONCURRENCY` requests in flight) and a throughput
  phase (`THROUGHPUT_CONCURRENCY[model]` in flight), both with `INSTANCES_PER_REQUEST` instances per
  request.
- `raw_batch_sizes`: the batch sizes the in-process reference of a throughput phase is measured at.
- `round_order`: the order of the targets in round r, rotated so that no target always runs first.
- `Mode`: rounds and phase lengths of `--quick` and of the full run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

LATENCY_CONCURRENCY = 1
INSTANCES_PER_REQUEST = 1
# Enough requests in flight to fill a server-side batch of the small models (batchSize 8 and 16); the
# ResNet-18-sized model saturates two cores with far fewer, and each request in flight holds 0.5 MB of JSON.
THROUGHPUT_CONCURRENCY: Mapping[str, int] = {"digits": 16, "ranker": 16, "resnet18": 4}


SHIPPED = "shipped"


@dataclass(frozen=True, order=True)
class Target:
    """A runtime and the protocol a model is called through on it, and the set-up of the server.

    Attributes:
        runtime: `torchserve` or `kserve`.
        protocol: `v1-json`, `v2-binary` or `v2-grpc`.
        setup: SHIPPED (each model's model-config.yaml) or the name of a variant (serving_variants.py).
    """

    runtime: str
    protocol: str
    setup: str = SHIPPED

    @property
    def key(self) -> str:
        """The name of its figures in the results file; the shipped ones keep their names of earlier runs."""
        plain = f"{self.runtime}/{self.protocol}"
        return plain if self.setup == SHIPPED else f"{plain}@{self.setup}"

    @property
    def server(self) -> str:
        """The server behind it: the runtime's shipped one, else the variant's own."""
        return self.runtime if self.setup == SHIPPED else self.setup


TORCHSERVE_V1 = Target("torchserve", "v1-json")
KSERVE_V1 = Target("kserve", "v1-json")
KSERVE_V2_BINARY = Target("kserve", "v2-binary")
KSERVE_V2_GRPC = Target("kserve", "v2-grpc")
TARGETS = (TORCHSERVE_V1, KSERVE_V1, KSERVE_V2_BINARY, KSERVE_V2_GRPC)
VARIANT_PROTOCOL = "v1-json"


def targets_with(setups: Sequence[tuple[str, str]]) -> tuple[Target, ...]:
    """TARGETS and one v1-json target per (name, runtime) set-up, each right after its runtime's shipped v1-json.

    Set-ups get v1-json only: the protocols are compared at the shipped settings, and each further target
    lengthens every round.
    """
    found: list[Target] = []
    for target in TARGETS:
        found.append(target)
        if target.protocol == VARIANT_PROTOCOL:
            found += [Target(runtime, VARIANT_PROTOCOL, name) for name, runtime in setups if runtime == target.runtime]
    return tuple(found)


def raw_batch_sizes(concurrency: int, server_batch_size: int, instances_per_request: int) -> tuple[int, ...]:
    """Batch sizes (instances) of the raw reference for a phase with `concurrency` requests in flight.

    A server can run one request alone, or at most min(concurrency, its batchSize) requests in one
    forward pass; the raw reference is the best of both, so batching alone can never lift a served
    figure above it. With several set-ups of a model in the same rounds, `server_batch_size` is the
    largest batchSize among them: one reference serves them all, and none of them can batch past it.
    """
    if min(concurrency, server_batch_size, instances_per_request) < 1:
        raise ValueError("concurrency, batch size and instances per request must be positive")
    largest = min(concurrency, server_batch_size) * instances_per_request
    return tuple(sorted({instances_per_request, largest}))


def round_order(items: Sequence[T], round_index: int) -> list[T]:
    """`items` rotated left by `round_index`: each item runs first in turn, and right after the raw run once."""
    if not items:
        return []
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]


@dataclass(frozen=True)
class Mode:
    """Rounds and phase lengths of one kind of run.

    Attributes:
        name: `quick` or `full`.
        rounds: Rounds every result's medians and spreads are taken over.
        extra_rounds: Further rounds a model may get when one of its results is refused.
        phase_s: Measured seconds of one load phase, by model (`*` for the others).
        raw_s: Measured seconds of the raw reference at one batch size, by model.
        spread_bound: Largest (max - min) / median over the rounds of served/raw (raw and served alone:
            twice as much, serving_verdict.Bounds).
        quiet_wait_s: Longest wait for a quiet machine before an extra round.
    """

    name: str
    rounds: int
    extra_rounds: int
    phase_s: Mapping[str, float]
    raw_s: Mapping[str, float]
    spread_bound: float
    quiet_wait_s: float

    def phase_seconds(self, model: str) -> float:
        return self.phase_s.get(model, self.phase_s["*"])

    def raw_seconds(self, model: str) -> float:
        return self.raw_s.get(model, self.raw_s["*"])


# Spread bounds. Scheduling noise moves a 1.5 s phase on two idle cores by a few percent; a neighbour
# taking one core halves a two-thread torch model, or worse (its threads wait on each other). 0.20 over
# 3 short rounds leaves room for the noise and trips on any round where the machine changed by more
# than a fifth. Full phases are 2.5-3x longer (noise about 0.6x) while 5 rounds widen the expected
# range of the same noise by about 1.4x: a little tighter, 0.15.
QUICK = Mode("quick", rounds=3, extra_rounds=2, phase_s={"*": 1.5, "resnet18": 2.0},
             raw_s={"*": 0.6, "resnet18": 1.5}, spread_bound=0.20, quiet_wait_s=10.0)
FULL = Mode("full", rounds=5, extra_rounds=3, phase_s={"*": 4.0, "resnet18": 5.0},
            raw_s={"*": 1.5, "resnet18": 3.0}, spread_bound=0.15, quiet_wait_s=30.0)
