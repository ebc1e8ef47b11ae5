"""The runner protocol's client: one method per call of :mod:`forgeyard.protocol.runner`.

Errors::

    RunnerClientError        anything a call raises
     ├── ServerUnreachable    no answer came: connection refused or reset, timed out
     └── ServerError          the server answered an error: ``status``, ``code``, ``message``
          └── LeaseLost       409 ``lease_lost``: the runner no longer holds the build, stop it

Calls that may safely be sent twice (heartbeat, claim, step reports, log batches) are tried
again a few times, with backoff, when no answer came or the server answered 5xx; a server
that stays away longer than that is the caller's to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from forgeyard import __version__
from forgeyard.protocol.runner import (
    LEASE_LOST,
    Ack,
    ArtifactView,
    BuildResult,
    ClaimedBuild,
    ClaimRequest,
    Heartbeat,
    HeartbeatAnswer,
    LogBatch,
    RegisterRequest,
    RegisterResponse,
    RunnerUpdate,
    RunnerView,
    StepReport,
)

API_PREFIX = "/api/v1"
RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds before each new try; jittered
REQUEST_TIMEOUT = httpx.Timeout(30.0)
CLAIM_ANSWER_MARGIN = 15.0  # how much longer than wait_seconds a claim's answer may take
TRANSFER_CHUNK = 256 * 1024
USER_AGENT = f"forgeyard-runner/{__version__}"

Answer = TypeVar("Answer", bound=BaseModel)


class RunnerClientError(Exception):
    """A call of the runner protocol did not succeed."""


class ServerUnreachable(RunnerClientError):  # noqa: N818 - reads as the condition it names
    """No answer came from the server (after the retries the call allows)."""


class ServerError(RunnerClientError):
    """The server answered with an error (the API's error envelope, or what came instead)."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class LeaseLost(ServerError):  # noqa: N818 - the protocol's name for the condition
    """The build is not this runner's any more: send nothing more about it."""


async def register(
    server: str, request: RegisterRequest, *, transport: httpx.AsyncBaseTransport | None = None
) -> RegisterResponse:
    """Trade a registration token for this runner's id and token (``POST /runners/register``)."""
    async with _http_client(server, {}, transport) as http:
        try:
            response = await http.post("/runners/register", json=_json(request))
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"registering with {server}: {exc!r}") from exc
    return _parse(_checked(response), RegisterResponse)


class RunnerClient:
    """The calls a registered runner makes, signed in with its token. Use as an async
    context manager, or call :meth:`aclose`."""

    def __init__(
        self,
        server: str,
        *,
        runner_id: str,
        token: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.runner_id = runner_id
        self._runner_path = f"/runners/{quote(runner_id, safe='')}"
        self._http = _http_client(server, {"Authorization": f"Bearer {token}"}, transport)

    async def __aenter__(self) -> RunnerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def update(self, change: RunnerUpdate) -> RunnerView:
        response = await self._request("PATCH", self._runner_path, json=_json(change))
        return _parse(response, RunnerView)

    async def heartbeat(self, build_ids: list[str]) -> HeartbeatAnswer:
        body = _json(Heartbeat(builds=build_ids))
        response = await self._request(
            "POST", f"{self._runner_path}/heartbeat", json=body, retry=True
        )
        return _parse(response, HeartbeatAnswer)

    async def claim(self, wait_seconds: float) -> ClaimedBuild | None:
        """A build leased to this runner, or None when none came within ``wait_seconds``."""
        response = await self._request(
            "POST",
            f"{self._runner_path}/claim",
            json=_json(ClaimRequest(wait_seconds=wait_seconds)),
            timeout=httpx.Timeout(wait_seconds + CLAIM_ANSWER_MARGIN),
            retry=True,
        )
        if response.status_code == httpx.codes.NO_CONTENT:
            return None
        return _parse(response, ClaimedBuild)

    async def download_source(self, build_id: str, target: Path) -> int:
        """Write the build's source tar to ``target``; its size in bytes."""
        size = 0
        try:
            async with self._http.stream("GET", f"{self._build_path(build_id)}/source") as answer:
                if answer.is_error:
                    await answer.aread()
                    raise error_from_response(answer)
                with target.open("wb") as file:
                    async for chunk in answer.aiter_bytes(TRANSFER_CHUNK):
                        file.write(chunk)
                        size += len(chunk)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"downloading the source of {build_id}: {exc!r}") from exc
        return size

    async def report_step(self, build_id: str, index: int, report: StepReport) -> Ack:
        path = f"{self._build_path(build_id)}/steps/{index}"
        response = await self._request("POST", path, json=_json(report), retry=True)
        return _parse(response, Ack)

    async def send_logs(self, build_id: str, batch: LogBatch) -> Ack:
        path = f"{self._build_path(build_id)}/logs"
        response = await self._request("POST", path, json=_json(batch), retry=True)
        return _parse(response, Ack)

    async def upload_artifact(self, build_id: str, path: str, file: Path) -> ArtifactView:
        """PUT ``file``'s bytes as the build's artifact ``path`` (streamed, not held in memory)."""
        size = (await asyncio.to_thread(file.stat)).st_size
        response = await self._request(
            "PUT",
            f"{self._build_path(build_id)}/artifacts",
            params={"path": path},
            content=_chunks(file),
            headers={
                "Content-Length": str(size),
                "Content-Type": "application/octet-stream",
            },
        )
        return _parse(response, ArtifactView)

    async def finish(self, build_id: str, result: BuildResult) -> Ack:
        path = f"{self._build_path(build_id)}/finish"
        return _parse(await self._request("POST", path, json=_json(result)), Ack)

    def _build_path(self, build_id: str) -> str:
        return f"{self._runner_path}/builds/{quote(build_id, safe='')}"

    async def _request(
        self, method: str, path: str, *, retry: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """The answer to a call; an error answer raised as :class:`ServerError`."""
        for delay in RETRY_DELAYS if retry else ():
            with contextlib.suppress(httpx.TransportError):
                response = await self._http.request(method, path, **kwargs)
                if response.status_code < httpx.codes.INTERNAL_SERVER_ERROR:
                    return _checked(response)
            # Jitter keeps runners that lost the server together from all returning at once.
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{method} {path}: {exc!r}") from exc
        return _checked(response)


def _http_client(
    server: str, headers: dict[str, str], transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.rstrip("/") + API_PREFIX,
        headers={"User-Agent": USER_AGENT, **headers},
        timeout=REQUEST_TIMEOUT,
        transport=transport,
    )


def _json(message: BaseModel) -> Any:
    return message.model_dump(mode="json")


async def _chunks(file: Path) -> AsyncIterator[bytes]:
    with file.open("rb") as handle:
        while chunk := handle.read(TRANSFER_CHUNK):
            yield chunk


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise error_from_response(response)
    return response


def error_from_response(response: httpx.Response) -> ServerError:
    """The API's error envelope (``{"error": message, "code", "details", ...}``) as an
    exception; whatever else an error answer holds (a proxy's page) as its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = str(body.get("code") or f"http_{status}")
        details = body.get("details")
        details = details if isinstance(details, dict) else {}
        lease_lost = status == httpx.codes.CONFLICT and code == LEASE_LOST
        return (LeaseLost if lease_lost else ServerError)(status, code, body["error"], details)
    message = response.text.strip()[:500] or response.reason_phrase
    return ServerError(status, f"http_{status}", message)


def _parse(response: httpx.Response, model: type[Answer]) -> Answer:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ServerError(
            response.status_code,
            "unexpected_answer",
            f"the server's answer is not a {model.__name__}: {exc.errors()[:3]}",
        ) from exc
