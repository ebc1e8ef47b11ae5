"""One log line per request and Prometheus metrics by route template."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from forgeyard.kernel.logging import configure_logging


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    yield stream
    configure_logging("json", "info", stream=io.StringIO())


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


async def test_each_request_writes_one_json_line(
    client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "req-42"})
    requests = [line for line in _lines(json_logs) if line.get("event") == "request"]
    assert len(requests) == 1
    line = requests[0]
    assert line["method"] == "GET"
    assert line["route"] == "/healthz"
    assert line["status"] == 200
    assert line["request_id"] == "req-42" == response.headers["x-request-id"]
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info"


async def test_a_crash_is_logged_with_its_request_id_and_traceback(
    app: FastAPI, client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    @app.get("/_test/crash")
    async def crash() -> None:
        raise RuntimeError("boom in handler")

    response = await client.get("/_test/crash")
    assert response.status_code == 500
    errors = [line for line in _lines(json_logs) if line.get("level") == "error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == response.headers["x-request-id"]
    assert "RuntimeError: boom in handler" in str(errors[0]["exception"])


def _sample(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    ok = 'method="GET",route="/healthz",status="200"'
    missing = 'method="GET",route="<unmatched>",status="404"'
    before = (await client.get("/metrics")).text
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/no/such/route/123")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    name = "forgeyard_http_requests_total"
    assert _sample(after, name, ok) - _sample(before, name, ok) == 2
    assert _sample(after, name, missing) - _sample(before, name, missing) == 1
    # Unmatched paths share one label, so scanners cannot blow up the series count.
    assert "/no/such/route/123" not in after
    latency = "forgeyard_http_request_duration_seconds_count"
    assert _sample(after, latency, ok) - _sample(before, latency, ok) == 2
