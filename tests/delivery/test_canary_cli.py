"""`aip canary analyze` as a user runs it: exit codes, the table and JSON, and every refusal as one message.

A small HTTP server stands in for Prometheus here, answering the instant queries from a table of figures;
tests/delivery/test_canary_local.py runs the same command against a real Prometheus scraping real servers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from infra.serving.processes import free_ports
from tests.conftest import aip

STABLE_VERSION = "ba9876543210"
CANARY_VERSION = "0123456789ab"
# Figures per (track, recorded rule); requests are rates (per second), the window is 10m (600 s).
HEALTHY = {
    ("stable", "version:aip_inference_requests:rate5m"): 9.0,
    ("stable", "version:aip_inference_error_ratio:rate5m"): 0.001,
    ("stable", "version:aip_inference_latency_seconds:mean5m"): 0.1,
    ("canary", "version:aip_inference_requests:rate5m"): 1.0,
    ("canary", "version:aip_inference_error_ratio:rate5m"): 0.002,
    ("canary", "version:aip_inference_latency_seconds:mean5m"): 0.11,
}


class FakePrometheus:
    """Answers `/api/v1/query` with the figure for the query's track and rule, or an empty vector."""

    def __init__(self) -> None:
        self.figures: dict[tuple[str, str], float] = {}
        self.queries: list[str] = []
        self.canary_version = CANARY_VERSION
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                expr = parse_qs(url.query).get("query", [""])[0]
                fake.queries.append(expr)
                track = "canary" if 'track="canary"' in expr else "stable"
                rule = expr.split("(", 1)[-1].split("{", 1)[0]
                version = fake.canary_version if track == "canary" else STABLE_VERSION
                value = fake.figures.get((track, rule))
                result = [] if value is None else [{"metric": {"track": track, "model_version": version},
                                                    "value": [1767225600.0, str(value)]}]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
                self.send_response(200 if url.path == "/api/v1/query" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        thread.join()


@pytest.fixture
def project(scratch_project: Path) -> Path:
    """A scratch copy whose vision-prod stack runs digits with a canary (default thresholds)."""
    path = scratch_project / "stacks" / "Pulumi.vision-prod.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["ai-platform:models"][0]["canary"] = {"trafficPercent": 10, "stableVersion": STABLE_VERSION}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return scratch_project


def analyze(project: Path, prometheus: str, *extra: str):
    return aip("canary", "analyze", "--stack", "vision-prod", "--model", "digits", "--prometheus", prometheus,
               *extra, cwd=project)


def test_help_documents_the_exit_codes():
    run = aip("canary", "analyze", "--help")
    assert run.returncode == 0
    for line in ("0  promote", "1  roll back", "3  hold", "2  usage or config error"):
        assert line in run.stdout
    assert aip("canary", "--help").returncode == 0


def test_a_healthy_canary_exits_0_with_a_table(project: Path, prometheus: FakePrometheus):
    prometheus.figures = dict(HEALTHY)
    run = analyze(project, prometheus.url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verdict: PROMOTE" in run.stdout
    assert f"vision/digits, last 10m: canary {CANARY_VERSION} (10% of requests) vs" in run.stdout
    for row in ("requests", "5xx ratio", "5xx increase", "mean latency", "110.0 ms (1.10x)", "≤ 1.25x stable"):
        assert row in run.stdout
    assert "5400" in run.stdout and "600" in run.stdout  # 9/s and 1/s over 600 s
    assert len(prometheus.queries) == 8 and all("[10m])" in q for q in prometheus.queries)


def test_a_failing_canary_exits_1_naming_the_failed_check(project: Path, prometheus: FakePrometheus):
    prometheus.figures = {**HEALTHY, ("canary", "version:aip_inference_error_ratio:rate5m"): 0.2}
    run = analyze(project, prometheus.url)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "verdict: ROLL BACK" in run.stdout
    assert "the canary's 5xx ratio 20.00% is above maxErrorRatio 2.00%" in run.stdout


def test_too_little_traffic_exits_3_and_json_is_one_object(project: Path, prometheus: FakePrometheus):
    prometheus.figures = {**HEALTHY, ("canary", "version:aip_inference_requests:rate5m"): 0.1}
    run = analyze(project, prometheus.url, "--format", "json", "--window", "5m")
    assert run.returncode == 3, run.stdout + run.stderr
    document = json.loads(run.stdout)
    assert document["decision"] == "hold" and document["exitCode"] == 3
    assert (document["stack"], document["model"], document["window"]) == ("vision-prod", "digits", "5m")
    assert document["canary"]["requests"] == pytest.approx(30.0)
    assert document["canary"]["versions"] == [CANARY_VERSION]
    assert document["reasons"] == ["the canary track answered about 30 requests in the last 5m, fewer than "
                                   "minRequests (100)"]


@pytest.mark.parametrize(("args", "message"), [
    (["--stack", "nope"], "error: no stack 'nope': stacks/Pulumi.nope.yaml does not exist"),
    (["--model", "ranker"], "error: stack 'vision-prod' deploys no model 'ranker'; its models: digits"),
    (["--stack", "search-prod", "--model", "ranker"], "error: model 'ranker' of stack 'search-prod' has no canary"),
    (["--stack", "prod"], "error: stack 'prod' is a platform stack"),
    (["--window", "7d"], "error: --window '7d': must be a whole number of seconds, minutes or hours"),
    (["--prometheus", "localhost:9090"], "error: --prometheus 'localhost:9090': must be an http:// or https:// URL"),
    (["--stack", "nope", "--prometheus", "ftp://x", "--window", "0m"],
     "error: --prometheus 'ftp://x': must be an http:// or https:// URL with a host (e.g. http://127.0.0.1:9090); "
     "--window '0m': must be"),
    (["--stack", "../stacks/Pulumi.vision-prod"],
     "error: --stack '../stacks/Pulumi.vision-prod': not a stack name (letters, digits, '-', '_' and '.', as in "
     "vision-prod), not a file or path"),
    (["--stack", ""], "error: --stack '': not a stack name"),
    (["--window", "10m\n"], "error: --window '10m\\n': must be a whole number of seconds, minutes or hours"),
    (["--prometheus", "http://127.0.0.1:9\n"], "error: --prometheus 'http://127.0.0.1:9\\n': not a URL"),
], ids=["unknown-stack", "unknown-model", "no-canary", "platform-stack", "bad-window", "bad-url", "every-bad-option",
        "path-as-stack", "empty-stack", "window-with-newline", "url-with-newline"])
def test_usage_errors_exit_2_with_one_message(project: Path, args: list[str], message: str):
    options = {"--stack": "vision-prod", "--model": "digits", "--prometheus": "http://127.0.0.1:9"}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    run = aip("canary", "analyze", *[part for pair in options.items() for part in pair], cwd=project)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_an_unreachable_prometheus_exits_2(project: Path):
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    run = analyze(project, url)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"error: cannot reach Prometheus at {url}: " in run.stderr
    assert "Traceback" not in run.stderr


def test_an_invalid_stack_file_exits_2_listing_its_problems(project: Path):
    path = project / "stacks" / "Pulumi.vision-prod.yaml"
    path.write_text(path.read_text().replace("trafficPercent: 10", "trafficPercent: 100"))
    run = analyze(project, "http://127.0.0.1:9")
    assert run.returncode == 2
    assert "ai-platform:models[0].canary.trafficPercent = 100: must be at most 99" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_options_are_argparse_errors():
    run = aip("canary", "analyze", "--stack", "vision-prod")
    assert run.returncode == 2 and "the following arguments are required: --model, --prometheus" in run.stderr


def test_a_figure_no_rule_can_produce_exits_2_naming_it(project: Path, prometheus: FakePrometheus):
    prometheus.figures = {**HEALTHY, ("canary", "version:aip_inference_error_ratio:rate5m"): 3.0}
    run = analyze(project, prometheus.url)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "with 3 for the canary track, which cannot be a 5xx ratio (between 0 and 1)" in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_label_values_are_shown_as_text_never_as_markup_or_escape_codes(project: Path, prometheus: FakePrometheus):
    prometheus.figures = dict(HEALTHY)
    prometheus.canary_version = "[/bold]\x1b[2J" + "f" * 300
    run = analyze(project, prometheus.url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[/bold]" in run.stdout and "\x1b" not in run.stdout and "f" * 64 not in run.stdout
    assert "Traceback" not in run.stderr


def test_a_password_in_the_prometheus_url_is_masked_in_the_report(project: Path, prometheus: FakePrometheus):
    prometheus.figures = dict(HEALTHY)
    url = prometheus.url.replace("http://", "http://reader:s3cret@")
    run = analyze(project, url, "--format", "json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["prometheus"] == prometheus.url.replace("http://", "http://reader:***@")
    assert "s3cret" not in run.stdout + run.stderr
