"""Failover decisions shared by every workload that serves traffic: disruption budgets, zone spread, draining.

- A PodDisruptionBudget (`minAvailable: 1`) only when a workload runs more than one replica. On a single
  replica a budget of 1 would refuse every eviction, so a node drain (cluster-autoscaler scale-in, node
  group upgrade) would stall on it forever; a single replica is simply restarted elsewhere.
  `unhealthyPodEvictionPolicy: AlwaysAllow` lets a drain evict a replica that is not ready anyway, so a
  crash-looping replica never blocks a drain either.
  https://kubernetes.io/docs/tasks/run-application/configure-pdb/#unhealthy-pod-eviction-policy
  The exception: a workload on nodes whose provisioner bounds how long a drain waits (`keep_last`). Karpenter
  disrupts nodes on its own and respects budgets: it leaves a node alone rather than consolidate or replace it
  (drift) while that would take a model's last ready replica (the price: such a node is not consolidated), and
  on expiry it drains the node for at most its NodePool's `terminationGracePeriod`, so no node is held forever.
  https://karpenter.sh/v1.14/concepts/disruption/
- Zone spread (`topology.kubernetes.io/zone`, maxSkew 1) with `whenUnsatisfiable: ScheduleAnyway`: the
  scheduler prefers the least-used zone but never leaves a replica Pending for it. With DoNotSchedule a
  zone without capacity (GPU pools rarely have free nodes in every zone; a zone outage is exactly when
  replacements must start elsewhere) would block scale-out and failover. Elasticsearch keeps its own
  DoNotSchedule spread: its shard allocation relies on one node per zone (logging_stack.py).
  https://kubernetes.io/docs/concepts/scheduling-eviction/topology-spread-constraints/
- Draining (`drain_timing`): a terminating pod is removed from its Service's endpoints while it receives
  SIGTERM, concurrently; the preStop sleep keeps it serving until the endpoint removal has reached every
  node, and the grace period covers the longest request it may still be answering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ZONE_KEY = "topology.kubernetes.io/zone"
ZONE_SPREAD_WHEN_UNSATISFIABLE = "ScheduleAnyway"
# Seconds a terminating pod keeps accepting requests: EndpointSlice updates reach kube-proxy on every node
# within a few seconds; until then some nodes still route new connections to the pod.
ENDPOINT_PROPAGATION_S = 5
# Seconds between the end of the last request and SIGKILL: the server closes its listeners and workers.
SHUTDOWN_MARGIN_S = 10
# Seconds a runtime keeps finishing in-flight requests after SIGTERM. KServe's ModelServer runs uvicorn,
# whose graceful shutdown closes the listener and waits for open requests up to the ModelServer's
# grace_period (30 s, KServe's default; aip_serving keeps it). TorchServe is not relied on to drain after
# SIGTERM: its pods wait for in-flight requests in the preStop hook instead, before SIGTERM is sent.
SIGTERM_DRAIN_S = {"kserve": 30, "torchserve": 0}


def disruption_min_available(replicas: int) -> int | None:
    """`minAvailable` of a workload's PodDisruptionBudget; None when it must have none (one replica)."""
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    return 1 if replicas > 1 else None


def zone_spread(labels: dict[str, str], replicas: int) -> list[dict[str, Any]]:
    """`topologySpreadConstraints` spreading a workload's pods over zones; none for a single replica."""
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    if replicas == 1:
        return []
    return [{"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": ZONE_SPREAD_WHEN_UNSATISFIABLE,
             "labelSelector": {"matchLabels": dict(labels)}}]


def disruption_budget_spec(labels: dict[str, str], replicas: int, *,
                           keep_last: bool = False) -> dict[str, Any] | None:
    """The spec of a `policy/v1` PodDisruptionBudget selecting these pods; None for a single replica, unless
    `keep_last` (the nodes' provisioner bounds the wait of a drain, see the module docstring)."""
    min_available = disruption_min_available(replicas)
    if keep_last:
        min_available = 1
    if min_available is None:
        return None
    return {"minAvailable": min_available, "selector": {"matchLabels": dict(labels)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow"}


@dataclass(frozen=True)
class DrainTiming:
    """How a serving pod terminates.

    Attributes:
        pre_stop_sleep_s: Seconds the preStop hook waits before the container gets SIGTERM.
        termination_grace_s: The pod's `terminationGracePeriodSeconds` (counts the preStop hook too).
    """

    pre_stop_sleep_s: int
    termination_grace_s: int

    def pre_stop(self) -> dict[str, Any]:
        """The container's `lifecycle`: Kubernetes' own sleep action, so no `sleep` binary is needed."""
        return {"preStop": {"sleep": {"seconds": self.pre_stop_sleep_s}}}


def drain_timing(runtime: str, response_timeout_s: int) -> DrainTiming:
    """Sized to the model's response timeout (`responseTimeout` of its model-config.yaml).

    The preStop hook sleeps for the endpoint removal plus whatever part of the response timeout the
    runtime cannot drain after SIGTERM; the grace period adds the runtime's own drain and a margin. So a
    request accepted just before the endpoint removal always has its full response timeout.
    """
    if runtime not in SIGTERM_DRAIN_S:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(sorted(SIGTERM_DRAIN_S))}")
    if response_timeout_s < 1:
        raise ValueError(f"response timeout must be at least 1 s, got {response_timeout_s}")
    drained_after_sigterm = min(response_timeout_s, SIGTERM_DRAIN_S[runtime])
    sleep = ENDPOINT_PROPAGATION_S + response_timeout_s - drained_after_sigterm
    return DrainTiming(sleep, sleep + drained_after_sigterm + SHUTDOWN_MARGIN_S)
