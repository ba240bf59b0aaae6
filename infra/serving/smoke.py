"""`aip serve --smoke`: every example of every model against the running server, then a health check."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from rich.table import Table

from infra.serving.examples import check_response
from infra.serving.local_server import LocalServer, ServedModel, http_client


@dataclass(frozen=True)
class SmokeResult:
    """One check: an example request, or the server's health after all of them."""

    model: str
    case: str
    expected: str
    got: str
    problems: tuple[str, ...]
    milliseconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


def run_smoke(server: LocalServer, models: Sequence[ServedModel]) -> list[SmokeResult]:
    """Send each `examples/*.json` as a v1 request; afterwards the server must still be ready.

    A model without examples fails: a smoke test that sends nothing proves nothing.
    """
    results = []
    with http_client() as client:
        for model in models:
            if not model.folder.examples:
                results.append(SmokeResult(model.name, "(examples)", "some", "none",
                                           (f"no examples/*.json in {model.folder.path}",), 0.0))
            for example in model.folder.examples:
                headers = {"Content-Type": "application/json", **server.request_headers()}
                started = time.perf_counter()
                try:
                    answer = client.post(server.v1_url(model.name), content=example.body(), headers=headers)
                    status, text = answer.status_code, answer.text
                    problems = check_response(example.expect, status, text)
                except httpx.HTTPError as exc:
                    status, problems = 0, [f"{type(exc).__name__}: {exc}"]
                results.append(SmokeResult(model.name, example.name, str(example.expect.status), str(status or "-"),
                                           tuple(problems), (time.perf_counter() - started) * 1000))
        # Bad requests must not have cost a worker: every model still answers ready.
        started = time.perf_counter()
        healthy = server.ready()
        results.append(SmokeResult("*", "still ready afterwards", "ready", "ready" if healthy else "not ready",
                                   () if healthy else ("the server is not ready after the examples",),
                                   (time.perf_counter() - started) * 1000))
    return results


def smoke_table(results: Sequence[SmokeResult], runtime: str) -> Table:
    passed = sum(r.ok for r in results)
    table = Table(title=f"smoke test on {runtime}: {passed}/{len(results)} passed", title_justify="left")
    for column in ("model", "case", "expected", "got", "ms", "result"):
        table.add_column(column, justify="right" if column == "ms" else "left")
    for r in results:
        verdict = "[green]ok[/]" if r.ok else "[red]" + "; ".join(r.problems).replace("[", r"\[") + "[/]"
        table.add_row(r.model, r.case, r.expected, r.got, f"{r.milliseconds:.0f}", verdict)
    return table
