"""Password sign-in, refresh rotation and reuse detection, sign-out, /auth/me."""

from __future__ import annotations

import httpx
import pytest

from forgeyard.kernel.db import Database
from tests.identity.conftest import PASSWORD, Tenants


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_login_returns_tokens_and_a_strict_cookie_session(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    response = await _login(client, "Owner@Acme.example", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["email"] == "owner@acme.example"
    assert body["user"]["role"] == "owner"
    assert "password" not in response.text
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("fy_session="))
    for attribute in ("HttpOnly", "Secure", "SameSite=strict"):
        assert attribute.lower() in cookie.lower()
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["user"]["id"] == tenants.owner.user_id


@pytest.mark.parametrize("email", ["owner@acme.example", "nobody@acme.example"])
@pytest.mark.usefixtures("tenants")
async def test_wrong_password_and_unknown_address_answer_alike(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await _login(client, email, "wrong password!")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert response.json()["error"] == "wrong e-mail address or password"


@pytest.mark.usefixtures("tenants")
async def test_repeated_failures_for_an_account_are_throttled(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await _login(client, "owner@acme.example", "nope nope nope")).status_code == 401
    # Even the right password is refused while the account is throttled.
    response = await _login(client, "owner@acme.example", PASSWORD)
    assert response.status_code == 429
    assert response.json()["code"] == "too_many_attempts"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.usefixtures("tenants")
async def test_failed_and_successful_sign_ins_are_audited(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    await _login(client, "owner@acme.example", "not the password")
    await _login(client, "owner@acme.example", PASSWORD)
    log = await client.get("/api/v1/audit-log", headers=tenants.owner.headers)
    actions = [event["action"] for event in log.json()["data"]]
    assert actions[:2] == ["auth.login", "auth.login_failed"]


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


@pytest.mark.usefixtures("tenants")
async def test_refresh_rotates_the_refresh_token(client: httpx.AsyncClient) -> None:
    first = (await _login(client, "owner@acme.example", PASSWORD)).json()
    second = await _refresh(client, first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    third = await _refresh(client, second.json()["refresh_token"])
    assert third.status_code == 200


@pytest.mark.usefixtures("tenants")
async def test_reusing_a_rotated_token_revokes_the_whole_family(
    client: httpx.AsyncClient, app: object, database: Database
) -> None:
    app.state.auth.settings.auth.refresh_reuse_grace_seconds = 0  # type: ignore[attr-defined]
    first = (await _login(client, "owner@acme.example", PASSWORD)).json()
    second = (await _refresh(client, first["refresh_token"])).json()
    stolen_replay = await _refresh(client, first["refresh_token"])
    assert stolen_replay.status_code == 401
    assert stolen_replay.json()["code"] == "invalid_session"
    # The legitimate holder's newer token died with the family.
    assert (await _refresh(client, second["refresh_token"])).status_code == 401


@pytest.mark.usefixtures("tenants")
async def test_a_retry_inside_the_grace_window_still_works(client: httpx.AsyncClient) -> None:
    first = (await _login(client, "owner@acme.example", PASSWORD)).json()
    assert (await _refresh(client, first["refresh_token"])).status_code == 200
    retry = await _refresh(client, first["refresh_token"])
    assert retry.status_code == 200
    assert (await _refresh(client, retry.json()["refresh_token"])).status_code == 200


@pytest.mark.usefixtures("tenants")
async def test_logout_revokes_the_refresh_family(client: httpx.AsyncClient) -> None:
    tokens = (await _login(client, "owner@acme.example", PASSWORD)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert response.status_code == 204
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 401


async def test_a_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tokens = (await _login(client, "owner@acme.example", PASSWORD)).json()
    response = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_session"


async def test_cookie_session_needs_csrf_for_unsafe_methods(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    login = await _login(client, "owner@acme.example", PASSWORD)
    # What a browser sends back (the cookies are Secure, so set by hand over plain HTTP).
    session, csrf = login.cookies["fy_session"], login.cookies["fy_csrf"]
    cookies = {"Cookie": f"fy_session={session}; fy_csrf={csrf}"}
    assert (await client.get("/api/v1/auth/me", headers=cookies)).status_code == 200
    forged = await client.post("/api/v1/api-keys", json={"name": "evil form"}, headers=cookies)
    assert forged.status_code == 403
    assert forged.json()["code"] == "csrf_failed"
    allowed = await client.post(
        "/api/v1/api-keys",
        json={"name": "from dashboard"},
        headers={**cookies, "X-CSRF-Token": csrf},
    )
    assert allowed.status_code == 201


async def test_no_credentials_is_401_missing_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_auth"


async def test_a_disabled_member_loses_access_at_once(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    assert (await client.get("/api/v1/auth/me", headers=tenants.member.headers)).status_code == 200
    disabled = await client.delete(
        f"/api/v1/users/{tenants.member.user_id}", headers=tenants.admin.headers
    )
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    response = await client.get("/api/v1/auth/me", headers=tenants.member.headers)
    assert response.status_code == 401
