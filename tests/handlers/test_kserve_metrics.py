"""``aip_inference_requests_total``: every inference request counted once, by the status the client got.

In-process, on KServe 0.16's own REST routes and error handlers (no socket); the real ModelServer is
scraped in tests/observability/test_metric_names.py.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import fastapi
import httpx
import pytest

from tests.handlers.conftest import RUNTIME, Trained
from tests.handlers.test_kserve_model import BLANK, loaded
from tests.handlers.test_python39 import needs_python39, run39

# kserve 0.16 answers with ORJSONResponse, which the installed FastAPI deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("POST", "/v1/models/digits:predict", "digits"),
        ("POST", "/v2/models/ranker/infer", "ranker"),
        ("POST", "/v2/models/ranker/versions/7/infer", "ranker"),
        ("GET", "/v1/models/digits:predict", None),
        ("POST", "/v1/models/digits:explain", "digits"),
        ("POST", "/v1/models/digits", None),
        ("POST", "/v2/models/digits/ready", None),
        ("GET", "/metrics", None),
        ("POST", "/v1/models/a/b:predict", None),
    ],
)
def test_inference_routes(method: str, path: str, model: str | None) -> None:
    from aip_serving.metrics import inference_model

    assert inference_model(method, path) == model


def counted_app(*models: Any, counter: Any, counted: tuple[str, ...]) -> fastapi.FastAPI:
    """KServe's routes and handlers on a private app, with the counter installed as the adapter does it."""
    from aip_serving.metrics import count_requests
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    app = fastapi.FastAPI()
    for name in counted:
        assert count_requests(app, name, counter=counter)
    repository = ModelRepository()
    for model in models:
        repository.update(model)
    server = RESTServer("unused:app", DataPlane(model_registry=repository),
                        ModelRepositoryExtension(model_registry=repository), http_port=0)
    server._register_endpoints(app)
    server._add_exception_handlers(app)
    return app


def samples(registry: Any) -> dict[tuple[str, str], float]:
    return {(s.labels["model_name"], s.labels["code"]): s.value for metric in registry.collect()
            for s in metric.samples if s.name == "aip_inference_requests_total"}


def test_each_status_is_counted_once_per_model(digits_trained: Trained, ranker_trained: Trained) -> None:
    from aip_serving.metrics import requests_counter
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    digits, ranker = loaded(digits_trained), loaded(ranker_trained)
    broken = loaded(digits_trained)
    broken.name, broken.core = "broken", None  # loaded, then its core gone: predict raises RuntimeError
    app = counted_app(digits, ranker, broken, counter=requests_counter(registry), counted=("digits", "broken"))
    v2_image = {"inputs": [{"name": "image", "shape": [1, 64], "datatype": "FP32", "data": BLANK}]}

    async def exchange() -> list[int]:
        # raise_app_exceptions=False: Starlette re-raises an unhandled error after answering 500.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            json_body = {"content-type": "application/json"}
            answers = [
                await client.post("/v1/models/digits:predict", json={"instances": [BLANK]}),
                await client.post("/v2/models/digits/infer", json=v2_image),
                await client.post("/v1/models/digits:predict", json={"instances": []}),  # InputError
                await client.post("/v1/models/digits:predict", content=b"{", headers=json_body),  # KServe's decode
                await client.post("/v2/models/digits/infer", json={"inputs": "x"}),  # KServe's v2 validation
                await client.post("/v2/models/digits/versions/1/infer", json=v2_image),  # not implemented
                await client.post("/v1/models/broken:predict", json={"instances": [BLANK]}),
                # Not counted: a model not in the counted set, unknown models, other routes.
                await client.post("/v1/models/ranker:predict", json={"instances": [{"user_id": 1}]}),
                await client.post("/v1/models/nope:predict", json={"instances": [BLANK]}),
                await client.get("/v2/health/ready"),
                await client.get("/v2/models/digits/ready"),
            ]
        return [answer.status_code for answer in answers]

    statuses = asyncio.run(exchange())
    assert statuses == [200, 200, 400, 400, 422, 501, 500, 200, 404, 200, 200]
    assert samples(registry) == {("digits", "200"): 2, ("digits", "400"): 2, ("digits", "422"): 1,
                                 ("digits", "501"): 1, ("broken", "500"): 1}


def test_the_middleware_is_added_once_and_later_models_join_it() -> None:
    from aip_serving.metrics import count_requests, requests_counter
    from prometheus_client import CollectorRegistry

    app = fastapi.FastAPI()
    counter = requests_counter(CollectorRegistry())
    assert count_requests(app, "a", counter=counter) and count_requests(app, "b", counter=counter)
    assert len(app.user_middleware) == 1
    assert app.state.aip_counted_models == {"a", "b"}


def test_an_app_already_serving_keeps_serving_uncounted(caplog: pytest.LogCaptureFixture) -> None:
    from aip_serving.metrics import count_requests, requests_counter
    from prometheus_client import CollectorRegistry

    app = fastapi.FastAPI()

    async def start() -> None:
        await httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test").get("/")

    asyncio.run(start())  # Starlette builds its middleware stack on the first request
    assert not count_requests(app, "late", counter=requests_counter(CollectorRegistry()))
    assert "requests of model late are not counted" in caplog.text


def test_the_default_registry_counter_is_shared() -> None:
    """KServe's /metrics serves the default registry: the counter must be there, once for all models."""
    from aip_serving.metrics import REQUESTS_METRIC, requests_counter
    from prometheus_client import REGISTRY

    assert requests_counter() is requests_counter()
    families = [metric for metric in REGISTRY.collect() if metric.name == "aip_inference_requests"]
    assert [(metric.type, metric.name + "_total") for metric in families] == [("counter", REQUESTS_METRIC)]


@needs_python39
def test_the_module_imports_under_python39_without_prometheus_client(tmp_path: Path) -> None:
    """It travels in every TorchServe archive (Python 3.9, pytorch/torchserve-kfs:0.12.0), counted or not."""
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        sys.modules["prometheus_client"] = None  # absent
        from aip_serving import metrics

        assert sys.version_info[:2] == (3, 9), sys.version
        assert metrics.inference_model("POST", "/v2/models/digits/versions/2/infer") == "digits"
        try:
            metrics.requests_counter()
        except ImportError:
            print("no counter without prometheus_client")
        """
    )
    result = run39(["-c", script, str(RUNTIME)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no counter without prometheus_client"
