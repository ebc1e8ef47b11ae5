"""First-run setup (seed 003) through the API, and its states."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from forgeyard.identity import setup
from forgeyard.kernel.db import Database, utcnow
from forgeyard.models.identity import BootstrapToken
from tests.identity.conftest import runtime_of

OWNER = {
    "email": "founder@acme.example",
    "password": "a long enough password",
    "name": "Frida Founder",
    "organization_name": "Acme",
}


async def _bootstrap_token(app: FastAPI, database: Database) -> str:
    async with database.transaction() as session:
        token = await setup.issue_bootstrap_token(session=session, runtime=runtime_of(app))
    assert token is not None
    return token


async def _verify(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/setup/bootstrap-token/verify", json={"token": token})


async def _status(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.get("/api/v1/public/setup-status")
    assert response.status_code == 200
    return dict(response.json())


async def test_the_whole_setup_from_bootstrap_token_to_sign_in(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    assert await _status(client) == {"state": "needs_setup", "owner_created": False}
    verified = await _verify(client, await _bootstrap_token(app, database))
    assert verified.status_code == 200
    session_token = verified.json()["setup_session_token"]
    assert await _status(client) == {"state": "in_progress", "owner_created": False}
    setup_auth = {"Authorization": f"Bearer {session_token}"}

    owner = await client.post("/api/v1/setup/owner", json=OWNER, headers=setup_auth)
    assert owner.status_code == 201, owner.text
    assert owner.json()["role"] == "owner"
    early = await client.post(
        "/api/v1/auth/login", json={"email": OWNER["email"], "password": OWNER["password"]}
    )
    assert early.status_code == 409
    assert early.json()["code"] == "setup_incomplete"

    done = await client.post("/api/v1/setup/complete", headers=setup_auth)
    assert done.json() == {"state": "ready", "owner_created": True}
    login = await client.post(
        "/api/v1/auth/login", json={"email": OWNER["email"], "password": OWNER["password"]}
    )
    assert login.status_code == 200

    # Once ready, every setup mutation is refused for good.
    for path, body in [
        ("/api/v1/setup/owner", OWNER),
        ("/api/v1/setup/complete", None),
        ("/api/v1/setup/bootstrap-token/verify", {"token": "anything"}),
    ]:
        refused = await client.post(path, json=body, headers=setup_auth)
        assert refused.status_code == 409, path
        assert refused.json()["code"] == "already_configured"


async def test_a_used_bootstrap_token_is_gone(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    token = await _bootstrap_token(app, database)
    assert (await _verify(client, token)).status_code == 200
    again = await _verify(client, token)
    assert again.status_code == 410
    assert again.json()["code"] == "token_consumed"


async def test_an_expired_bootstrap_token_is_gone(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    token = await _bootstrap_token(app, database)
    async with database.transaction() as session:
        await session.execute(
            update(BootstrapToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await _verify(client, token)
    assert response.status_code == 410
    assert response.json()["code"] == "token_expired"


async def test_a_new_bootstrap_token_retires_the_previous_one(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    first = await _bootstrap_token(app, database)
    second = await _bootstrap_token(app, database)
    assert (await _verify(client, first)).json()["code"] == "token_expired"
    assert (await _verify(client, second)).status_code == 200


async def test_wrong_bootstrap_tokens_are_limited(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    token = await _bootstrap_token(app, database)
    for _ in range(5):
        wrong = await _verify(client, "guess")
        assert wrong.status_code == 401
        assert wrong.json()["code"] == "invalid_token"
    limited = await _verify(client, token)
    assert limited.status_code == 429
    assert limited.json()["code"] == "too_many_attempts"
    assert limited.json()["details"]["retry_after"] > 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-session"}, {"Authorization": "Basic abc"}],
)
async def test_setup_steps_need_a_setup_session(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/api/v1/setup/owner", json=OWNER, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] in {"missing_auth", "no_session"}


async def test_an_expired_setup_session_is_refused(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    from forgeyard.models.identity import SetupSession

    session_token = (await _verify(client, await _bootstrap_token(app, database))).json()[
        "setup_session_token"
    ]
    async with database.transaction() as session:
        await session.execute(update(SetupSession).values(expires_at=utcnow()))
    response = await client.post(
        "/api/v1/setup/owner", json=OWNER, headers={"Authorization": f"Bearer {session_token}"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "session_expired"


async def test_completing_before_the_owner_exists_is_refused(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    session_token = (await _verify(client, await _bootstrap_token(app, database))).json()[
        "setup_session_token"
    ]
    response = await client.post(
        "/api/v1/setup/complete", headers={"Authorization": f"Bearer {session_token}"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"


async def test_a_weak_owner_password_is_refused_naming_the_field(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    session_token = (await _verify(client, await _bootstrap_token(app, database))).json()[
        "setup_session_token"
    ]
    response = await client.post(
        "/api/v1/setup/owner",
        json={**OWNER, "password": "short"},
        headers={"Authorization": f"Bearer {session_token}"},
    )
    assert response.status_code == 400
    assert [f["field"] for f in response.json()["details"]["fields"]] == ["body.password"]
    assert (await _status(client))["owner_created"] is False
