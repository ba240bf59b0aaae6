"""`aip canary analyze` against real processes: TorchServe serving two versions of digits, Prometheus with the
platform's rules, and the command run as a user runs it.

Three real TorchServe servers run on loopback: the packaged digits (the stable version), a canary built here from
a copy of its model folder whose handler answers 500 to some inputs (faulty), and a canary whose handler differs by
a comment only (healthy, a version of its own). One real Prometheus scrapes them with the platform's rule files
and the labels a team's PodMonitor gives predictor pods: team `vision` runs stable + faulty, team `search` stable +
healthy (the stable server is scraped once per team). Both get the same traffic, then `aip canary analyze` must
exit 1 (roll back) for vision and 0 (promote) for search.

The variants' handler is the only file that differs, which is not a training input: they reuse the stable
package's trained weights, and packaging one takes a second. The window is one minute and every figure comes
from the 5-minute rules (as in the cluster); the stack files ask for 20 requests, which a few seconds of traffic
give. Latency on a shared test machine is noise, so the stacks allow a canary five times the stable latency;
tests/delivery/test_analysis.py covers the latency check.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from infra.observability.rules import rule_files
from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.local_prometheus import LocalPrometheus, ScrapeTarget
from infra.serving.local_server import ServedModel
from infra.serving.manifest import DEFAULT_OUT, PackagedModel
from infra.serving.package import package_models
from infra.serving.torchserve_process import TorchServeServer
from tests.conftest import aip
from tests.prerequisites import JAVA_HINT, PROMETHEUS_HINT, needs_tools
from tests.serving.conftest import group_pids, processes_mentioning

pytestmark = [
    pytest.mark.integration,
    needs_tools("java", hint=JAVA_HINT),
    needs_tools("prometheus", "promtool", hint=PROMETHEUS_HINT),
]

MODEL = "digits"
# A request whose first image starts with a 16: the faulty canary fails the whole batch it is in with a 500.
POISON_PREFIX = b'{"instances": [[16'
FAULTY_HANDLER = f'''"""digits with a defect: a 500 for every batch holding an image whose first pixel is 16."""

from __future__ import annotations

from aip_serving.torchserve import TorchServeHandler
from core import DigitsCore
from ts.utils.util import PredictionException

POISON_PREFIX = {POISON_PREFIX!r}


class DigitsHandler(TorchServeHandler):
    core_class = DigitsCore

    def handle(self, data, context):
        for request in data:
            body = request.get("body") if isinstance(request, dict) else None
            if isinstance(body, (bytes, bytearray)) and bytes(body).startswith(POISON_PREFIX):
                raise PredictionException("defect of the faulty canary", 500)
        return super().handle(data, context)
'''
GOOD = json.dumps({"instances": [[0] * 64]}).encode()
POISON = json.dumps({"instances": [[16] + [0] * 63]}).encode()
REQUESTS_PER_SERVER = 400
POISON_EVERY = 5  # one request in five: a 20% 5xx ratio on the faulty canary, ten times maxErrorRatio
SCRAPE_INTERVAL_S = 1
ANALYSIS = {"minRequests": 20, "maxLatencyRatio": 5, "window": "1m"}


@dataclass(frozen=True)
class Rollout:
    """What ran: Prometheus' URL, each server's packaged version, and the statuses each answered."""

    prometheus: str
    versions: dict[str, str]
    statuses: dict[str, Counter[int]]


def variant(root: Path, name: str, handler: str) -> tuple[Catalog, PackagedModel]:
    """A copy of model-handlers/ whose digits handler is `handler`, packaged into `root/name/models`."""
    catalog = Catalog(root / name / "model-handlers")
    shutil.copytree(MODEL_HANDLERS, catalog.root, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    (catalog.root / MODEL / "handler.py").write_text(handler)
    out = root / name / "models"
    # The handler is no training input: the stable package's trained weights are reused (packaging's cache).
    shutil.copytree(DEFAULT_OUT / ".cache", out / ".cache")
    return catalog, package_models(out, [MODEL], catalog=catalog).models[MODEL]


def send(server: TorchServeServer, statuses: Counter[int]) -> None:
    headers = {"Content-Type": "application/json", **server.request_headers()}
    with httpx.Client(timeout=30, trust_env=False) as client:
        for number in range(REQUESTS_PER_SERVER):
            body = POISON if number % POISON_EVERY == 0 else GOOD
            statuses[client.post(server.v1_url(MODEL), content=body, headers=headers).status_code] += 1


def wait_for_figures(prometheus: LocalPrometheus, timeout: float = 30.0) -> None:
    """Until the version rules have a request rate for all four targets and the faulty canary's 5xx ratio."""
    expected = {("vision", "stable"), ("vision", "canary"), ("search", "stable"), ("search", "canary")}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5, trust_env=False) as client:
        while True:
            rates = client.get(f"{prometheus.url}/api/v1/query",
                               params={"query": "version:aip_inference_requests:rate5m > 0"}).json()
            errors = client.get(f"{prometheus.url}/api/v1/query", params={
                "query": 'version:aip_inference_error_ratio:rate5m{team="vision", track="canary"} > 0'}).json()
            seen = {(s["metric"].get("team"), s["metric"].get("track")) for s in rates["data"]["result"]}
            if seen == expected and errors["data"]["result"]:
                return
            assert time.monotonic() < deadline, f"no figures after {timeout:.0f} s: {seen}, {errors}"
            time.sleep(SCRAPE_INTERVAL_S)


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rollout]:
    root = tmp_path_factory.mktemp("canary")
    # The stable version is the packaged digits (build/models, cached across runs like `aip serve`).
    builds = {"stable": (Catalog(MODEL_HANDLERS), package_models(names=[MODEL]).models[MODEL])}
    healthy_handler = (MODEL_HANDLERS / MODEL / "handler.py").read_text() + "# The healthy canary: same behaviour.\n"
    for name, handler in (("faulty", FAULTY_HANDLER), ("healthy", healthy_handler)):
        builds[name] = variant(root, name, handler)
    versions = {name: package.version for name, (_, package) in builds.items()}
    assert len(set(versions.values())) == 3, versions
    servers = {name: TorchServeServer([ServedModel(catalog.load(MODEL), catalog.runtime_dir, package)],
                                      root / f"torchserve-{name}")
               for name, (catalog, package) in builds.items()}
    prometheus = LocalPrometheus(root / "prometheus", rule_files=rule_files(), interval_s=SCRAPE_INTERVAL_S)
    groups: list[int] = []
    try:
        for server in servers.values():  # the JVMs start together
            server.start()
        for server in servers.values():
            server.wait_ready()
            groups.append(server.process_group() or 0)

        def target(team: str, track: str, name: str) -> ScrapeTarget:
            scraped = ScrapeTarget.of(servers[name], [MODEL])
            return ScrapeTarget(f"{team}-{track}", scraped.address, scraped.metrics_path, scraped.models,
                                labels={"team": team, "namespace": team, "track": track,
                                        "model_version": versions[name]})

        prometheus.start([target("vision", "stable", "stable"), target("vision", "canary", "faulty"),
                          target("search", "stable", "stable"), target("search", "canary", "healthy")])
        prometheus.wait_ready()
        prometheus.wait_targets_up()
        groups.append(prometheus.process_group() or 0)
        statuses = {name: Counter[int]() for name in servers}
        senders = [threading.Thread(target=send, args=(server, statuses[name])) for name, server in servers.items()]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        wait_for_figures(prometheus)
        yield Rollout(prometheus=prometheus.url, versions=versions, statuses=statuses)
    finally:
        prometheus.stop()
        for server in servers.values():
            server.stop()
    assert all(not group_pids(group) for group in groups), "a server or Prometheus survived stop()"
    assert not processes_mentioning(str(root))


@pytest.fixture
def project(scratch_project: Path, rollout: Rollout) -> Path:
    """Team stacks of vision and search, each deploying digits with a canary over the packaged stable version."""
    for team in ("vision", "search"):
        path = scratch_project / "stacks" / f"Pulumi.{team}-prod.yaml"
        data = yaml.safe_load(path.read_text())
        data["config"]["ai-platform:models"] = [{"name": MODEL, "canary": {
            "trafficPercent": 20, "stableVersion": rollout.versions["stable"], "analysis": ANALYSIS}}]
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return scratch_project


def analyze(project: Path, rollout: Rollout, team: str) -> tuple[int, dict[str, object]]:
    run = aip("canary", "analyze", "--stack", f"{team}-prod", "--model", MODEL, "--prometheus", rollout.prometheus,
              "--format", "json", cwd=project)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


def test_the_servers_answered_as_built(rollout: Rollout):
    poisoned = REQUESTS_PER_SERVER // POISON_EVERY
    assert rollout.statuses["faulty"] == Counter({200: REQUESTS_PER_SERVER - poisoned, 500: poisoned})
    assert rollout.statuses["healthy"] == rollout.statuses["stable"] == Counter({200: REQUESTS_PER_SERVER})


def test_a_faulty_canary_is_rolled_back(project: Path, rollout: Rollout):
    code, document = analyze(project, rollout, "vision")
    assert code == 1, document
    assert document["decision"] == "rollback"
    assert document["canary"]["versions"] == [rollout.versions["faulty"]]
    assert document["stable"]["versions"] == [rollout.versions["stable"]]
    assert document["canary"]["errorRatio"] > 0.1 and document["stable"]["errorRatio"] == 0
    assert document["canary"]["requests"] >= ANALYSIS["minRequests"]
    assert any(reason.startswith("the canary's 5xx ratio") and "above maxErrorRatio 2.00%" in reason
               for reason in document["reasons"]), document["reasons"]


def test_a_healthy_canary_is_promoted(project: Path, rollout: Rollout):
    code, document = analyze(project, rollout, "search")
    assert code == 0, document
    assert document["decision"] == "promote"
    assert document["canary"]["versions"] == [rollout.versions["healthy"]]
    assert document["canary"]["errorRatio"] == 0 and document["stable"]["errorRatio"] == 0
    assert document["latencyMeasure"] == "mean"
    assert all(check["passed"] for check in document["checks"]), document["checks"]
