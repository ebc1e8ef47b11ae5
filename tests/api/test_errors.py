"""Every error path answers in the envelope of API-MAP.md, with the request id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from forgeyard.kernel.errors import ConflictError

ENVELOPE_KEYS = {"error", "code", "details", "retryable", "request_id"}


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


class Widget(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(ge=1)


@pytest.fixture
def routes(app: FastAPI) -> FastAPI:
    """Routes that exist only to drive each error path of the real application stack."""

    @app.post("/_test/widgets")
    async def create_widget(widget: Widget) -> Widget:
        return widget

    @app.get("/_test/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals that must not leak")

    @app.get("/_test/conflict")
    async def conflict() -> None:
        raise ConflictError("widget is busy", details={"widget": "w1"})

    return app


async def test_unknown_route_is_404_not_found(client: httpx.AsyncClient) -> None:
    body = assert_envelope(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert body["error"] == "no route for GET /api/v1/nothing-here"
    assert body["retryable"] is False


async def test_wrong_method_is_405_method_not_allowed(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    body = assert_envelope(response, 405, "method_not_allowed")
    assert body["error"] == "method DELETE is not allowed on /health"
    assert response.headers["allow"].startswith("GET")


@pytest.mark.usefixtures("routes")
async def test_validation_failure_is_400_naming_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/_test/widgets", json={"name": "", "size": 0})
    body = assert_envelope(response, 400, "invalid_input")
    fields = {f["field"]: f for f in body["details"]["fields"]}  # type: ignore[index]
    assert set(fields) == {"body.name", "body.size"}
    assert fields["body.size"]["type"] == "greater_than_equal"
    assert "body.name" in str(body["error"])


@pytest.mark.usefixtures("routes")
async def test_validation_failure_never_echoes_the_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/_test/widgets", json={"name": "hunter2-password", "size": "x"})
    assert_envelope(response, 400, "invalid_input")
    assert "hunter2-password" not in response.text


@pytest.mark.usefixtures("routes")
async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/_test/widgets", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    body = assert_envelope(response, 400, "invalid_input")
    assert body["details"]["fields"][0]["type"] == "json_invalid"  # type: ignore[index]


@pytest.mark.usefixtures("routes")
async def test_domain_error_keeps_its_status_code_and_details(
    client: httpx.AsyncClient,
) -> None:
    body = assert_envelope(await client.get("/_test/conflict"), 409, "conflict")
    assert body["error"] == "widget is busy"
    assert body["details"] == {"widget": "w1"}


async def test_declared_oversized_body_is_413(client: httpx.AsyncClient, app: FastAPI) -> None:
    limit = app.state.settings.http.max_body_bytes
    response = await client.post("/health", content=b"x" * (limit + 1))
    body = assert_envelope(response, 413, "payload_too_large")
    assert body["details"] == {"max_body_bytes": limit}


@pytest.mark.usefixtures("routes")
async def test_streamed_oversized_body_is_413(client: httpx.AsyncClient, app: FastAPI) -> None:
    limit = app.state.settings.http.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    # A chunked upload has no Content-Length: the limit must hold while reading.
    response = await client.post(
        "/_test/widgets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "payload_too_large")


@pytest.mark.usefixtures("routes")
async def test_unhandled_exception_is_500_without_internals(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/_test/crash")
    assert_envelope(response, 500, "internal_error")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


async def test_caller_request_id_is_echoed_when_well_formed(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope", headers={"X-Request-ID": "trace-abc.123"})
    assert response.headers["x-request-id"] == "trace-abc.123"
    assert response.json()["request_id"] == "trace-abc.123"


@pytest.mark.parametrize("bad_id", ["has space", "a" * 129, "new\\nline", "<script>"])
async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient, bad_id: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": bad_id})
    assert response.headers["x-request-id"] != bad_id
    assert len(response.headers["x-request-id"]) == 26  # a fresh ULID


async def test_every_response_has_a_distinct_request_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/health")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_cors_preflight_from_a_default_origin_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/health",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_cors_preflight_from_another_origin_is_refused_in_the_envelope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/health",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    body = assert_envelope(response, 400, "invalid_input")
    assert body["details"] == {"cors": ["origin"]}
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.usefixtures("routes")
async def test_a_crash_answer_still_carries_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/_test/crash", headers={"Origin": "http://localhost:3000"})
    assert_envelope(response, 500, "internal_error")
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_an_absurd_offset_is_400_not_a_database_error(client: httpx.AsyncClient) -> None:
    # Any list endpoint takes the same parameters; the audit log is one.
    response = await client.get("/api/v1/audit-log", params={"offset": 2**63})
    assert response.status_code in (400, 401)  # validated before or after authentication
