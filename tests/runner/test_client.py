"""The runner client reads the API's error envelope as the server writes it
(``kernel.errors.error_body``), and gives up on an absent server after its retries."""

from __future__ import annotations

import httpx
import pytest

from forgeyard.client import runner as client_module
from forgeyard.client.runner import (
    LeaseLost,
    RunnerClient,
    ServerError,
    ServerUnreachable,
    error_from_response,
)
from forgeyard.kernel.errors import error_body
from forgeyard.protocol.runner import LEASE_LOST
from tests.processes import free_port


def _answer(status: int, code: str, message: str = "refused") -> httpx.Response:
    body = error_body(message=message, code=code, request_id="req_1", details={"build_id": "b"})
    return httpx.Response(status, json=body)


def test_a_lost_lease_is_its_own_error() -> None:
    error = error_from_response(_answer(409, LEASE_LOST, "runner rnr_1 no longer holds b"))
    assert isinstance(error, LeaseLost)
    assert error.status == 409
    assert error.message == "runner rnr_1 no longer holds b"
    assert error.details == {"build_id": "b"}


def test_another_conflict_is_a_server_error() -> None:
    error = error_from_response(_answer(409, "conflict"))
    assert type(error) is ServerError
    assert error.code == "conflict"


def test_an_answer_without_the_envelope_keeps_its_text() -> None:
    error = error_from_response(httpx.Response(502, text="<html>Bad gateway</html>"))
    assert type(error) is ServerError
    assert error.code == "http_502"
    assert "Bad gateway" in error.message


async def test_an_absent_server_is_unreachable_after_the_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "RETRY_DELAYS", (0.01, 0.01))
    async with RunnerClient(
        f"http://127.0.0.1:{free_port()}", runner_id="rnr_1", token="fyr_token"
    ) as client:
        with pytest.raises(ServerUnreachable, match="heartbeat"):
            await client.heartbeat(["bld_1"])
