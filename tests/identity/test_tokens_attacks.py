"""Forged, altered, stale and misplaced credentials, as an attacker would try them.

Every forged access token claims to be Acme's owner, so a check that lets one through shows
up as a 200 on an owner-only route. Each refusal is a 401 in the error envelope.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import update

from forgeyard.kernel.crypto import derive_key
from forgeyard.kernel.db import Database, utcnow
from forgeyard.kernel.ids import new_id
from forgeyard.kernel.tokens import API_KEY_PREFIX, generate_api_key, looks_like_api_key
from forgeyard.models.identity import ApiKey
from tests.identity.conftest import PASSWORD, Account, Tenants, runtime_of

API = "/api/v1"
DROP = object()  # a claim or header to leave out
ENVELOPE = {"error", "code", "details", "retryable", "request_id"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _real_key(app: FastAPI) -> bytes:
    return derive_key(app.state.secret_key, "access-token")


def _claims(app: FastAPI, account: Account, **changes: Any) -> dict[str, Any]:
    """The claims a genuine access token of ``account`` has, with ``changes`` applied."""
    codec = runtime_of(app).access_tokens
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": codec.issuer,
        "aud": codec.audience,
        "sub": account.user_id,
        "org": account.organization_id,
        "jti": new_id("jti"),
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not DROP}


def _sign(
    claims: dict[str, Any],
    key: bytes | str | Any,
    *,
    algorithm: str = "HS256",
    typ: Any = "at+jwt",
) -> str:
    # PyJWT leaves "typ" out when it is None.
    headers = {"typ": None if typ is DROP else typ}
    token: str = jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    return token


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_json_b64(header)}.{_json_b64(claims)}.{_b64(signature)}"


def _hmac_with_header(app: FastAPI, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """The real key's HMAC-SHA256 under a header that claims another algorithm."""
    signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
    signature = jwt.get_algorithm_by_name("HS256").sign(signing_input.encode(), _real_key(app))
    return f"{signing_input}.{_b64(signature)}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == ENVELOPE
    assert body["code"] == code, body


async def _assert_no_access(client: httpx.AsyncClient, headers: dict[str, str], code: str) -> None:
    """Neither who-am-I nor an owner-only route answers to these credentials."""
    _assert_refused(await client.get(f"{API}/auth/me", headers=headers), code)
    _assert_refused(await client.get(f"{API}/users", headers=headers), code)


# ---------------------------------------------------------------------------------------------
# Access tokens (JWT)

Forgery = Callable[[FastAPI, Tenants], str]


def _rs256(app: FastAPI, tenants: Tenants) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _sign(_claims(app, tenants.owner), private, algorithm="RS256")


def _tampered(app: FastAPI, tenants: Tenants) -> str:
    """The viewer's genuine token with its payload rewritten to the owner's, signature kept."""
    header, payload_segment, signature = tenants.viewer.access_token.split(".")
    payload = json.loads(_b64decode(payload_segment))
    payload["sub"] = tenants.owner.user_id
    return f"{header}.{_json_b64(payload)}.{signature}"


def _without(claim: str) -> Forgery:
    """A correctly signed token lacking one required claim."""

    def forge(app: FastAPI, tenants: Tenants) -> str:
        return _sign(_claims(app, tenants.owner, **{claim: DROP}), _real_key(app))

    return forge


INVALID_TOKENS: dict[str, Forgery] = {
    "alg none": lambda app, t: _unsigned({"alg": "none", "typ": "at+jwt"}, _claims(app, t.owner)),
    "alg none, signature kept": lambda app, t: _unsigned(
        {"alg": "none", "typ": "at+jwt"},
        _claims(app, t.owner),
        signature=_b64decode(t.owner.access_token.split(".")[2]),
    ),
    "HS256 with another key": lambda app, t: _sign(_claims(app, t.owner), b"k" * 32),
    "HS256 with the raw instance secret": lambda app, t: _sign(
        _claims(app, t.owner), app.state.secret_key
    ),
    "RS256 with an attacker's RSA key": _rs256,
    "header RS256, real HMAC signature": lambda app, t: _hmac_with_header(
        app, {"alg": "RS256", "typ": "at+jwt"}, _claims(app, t.owner)
    ),
    "HS512 with the real key": lambda app, t: _sign(
        _claims(app, t.owner), _real_key(app), algorithm="HS512"
    ),
    "wrong aud": lambda app, t: _sign(_claims(app, t.owner, aud="other-api"), _real_key(app)),
    "wrong iss": lambda app, t: _sign(_claims(app, t.owner, iss="evil"), _real_key(app)),
    "typ missing": lambda app, t: _sign(_claims(app, t.owner), _real_key(app), typ=DROP),
    "typ JWT": lambda app, t: _sign(_claims(app, t.owner), _real_key(app), typ="JWT"),
    "Acme user, org Globex": lambda app, t: _sign(
        _claims(app, t.owner, org=t.other_owner.organization_id), _real_key(app)
    ),
    "Globex owner, org Acme": lambda app, t: _sign(
        _claims(app, t.other_owner, org=t.owner.organization_id), _real_key(app)
    ),
    "tampered payload, original signature": _tampered,
    "expired and forged": lambda app, t: _sign(
        _claims(app, t.owner, exp=int(datetime.now(UTC).timestamp()) - 60), b"k" * 32
    ),
    "garbage": lambda app, t: "not.a.jwt",
    **{
        f"{claim} missing": _without(claim)
        for claim in ("org", "jti", "sub", "exp", "iat", "iss", "aud")
    },
}


# The real key is 32 bytes; PyJWT warns that HS512 wants 64. The forgery needs it as it is.
@pytest.mark.filterwarnings("ignore:The HMAC key is")
@pytest.mark.parametrize("forgery", list(INVALID_TOKENS))
async def test_a_forged_or_altered_access_token_is_refused(
    client: httpx.AsyncClient, app: FastAPI, tenants: Tenants, forgery: str
) -> None:
    token = INVALID_TOKENS[forgery](app, tenants)
    await _assert_no_access(client, _bearer(token), "invalid_session")


async def test_the_forgery_helpers_make_a_valid_token_when_nothing_is_wrong(
    client: httpx.AsyncClient, app: FastAPI, tenants: Tenants
) -> None:
    """The control for the table above: the refusals come from the claims, not the helpers."""
    token = _sign(_claims(app, tenants.owner), _real_key(app))
    assert (await client.get(f"{API}/users", headers=_bearer(token))).status_code == 200


async def test_an_expired_access_token_is_a_session_expired(
    client: httpx.AsyncClient, app: FastAPI, tenants: Tenants
) -> None:
    now = int(datetime.now(UTC).timestamp())
    token = _sign(_claims(app, tenants.owner, iat=now - 7200, exp=now - 1), _real_key(app))
    await _assert_no_access(client, _bearer(token), "session_expired")


async def test_a_token_for_another_organization_grants_nothing_there(
    client: httpx.AsyncClient, app: FastAPI, tenants: Tenants
) -> None:
    globex = tenants.other_owner.organization_id
    token = _sign(_claims(app, tenants.owner, org=globex), _real_key(app))
    response = await client.get(f"{API}/organizations/{globex}", headers=_bearer(token))
    _assert_refused(response, "invalid_session")
    members = await client.get(f"{API}/organizations/{globex}/members", headers=_bearer(token))
    _assert_refused(members, "invalid_session")


async def test_a_refresh_token_is_refused_as_an_access_token(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    login = await client.post(
        f"{API}/auth/login", json={"email": tenants.owner.email, "password": PASSWORD}
    )
    refresh_token = login.json()["refresh_token"]
    await _assert_no_access(client, _bearer(refresh_token), "invalid_session")
    await _assert_no_access(client, {"X-API-Key": refresh_token}, "invalid_session")


async def test_an_access_token_is_refused_as_an_api_key(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    await _assert_no_access(client, {"X-API-Key": tenants.owner.access_token}, "invalid_session")


# ---------------------------------------------------------------------------------------------
# API keys


async def _create_key(
    client: httpx.AsyncClient, creator: Account, scope: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/api-keys",
        json={"name": f"{scope} key", "scopes": [scope], **extra},
        headers=creator.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _change_one_character(key: str, position: int) -> str:
    index = len(API_KEY_PREFIX) + position
    replacement = "A" if key[index] != "A" else "B"
    return key[:index] + replacement + key[index + 1 :]


@pytest.mark.parametrize("position", [0, 15, 29, 30, 35], ids=lambda p: f"char {p}")
@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
async def test_an_api_key_with_one_changed_character_is_refused(
    client: httpx.AsyncClient, tenants: Tenants, position: int, header: str
) -> None:
    key = (await _create_key(client, tenants.owner, "admin"))["key"]
    altered = _change_one_character(key, position)
    assert not looks_like_api_key(altered)  # the checksum catches it before any look-up
    headers = {"X-API-Key": altered} if header == "X-API-Key" else _bearer(altered)
    await _assert_no_access(client, headers, "invalid_session")


@pytest.mark.usefixtures("tenants")
async def test_a_well_formed_key_that_was_never_issued_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await _assert_no_access(client, {"X-API-Key": generate_api_key()}, "invalid_session")


async def test_a_revoked_key_is_refused(client: httpx.AsyncClient, tenants: Tenants) -> None:
    key = await _create_key(client, tenants.owner, "admin")
    revoked = await client.delete(f"{API}/api-keys/{key['id']}", headers=tenants.owner.headers)
    assert revoked.status_code == 200
    await _assert_no_access(client, {"X-API-Key": key["key"]}, "invalid_session")
    await _assert_no_access(client, _bearer(key["key"]), "invalid_session")


async def test_an_expired_key_is_refused(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    expires = (utcnow() + timedelta(hours=1)).isoformat()
    key = await _create_key(client, tenants.owner, "admin", expires_at=expires)
    async with database.transaction() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    await _assert_no_access(client, {"X-API-Key": key["key"]}, "session_expired")


async def test_a_key_in_use_stops_working_when_it_expires(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    """The principal cache must not outlive the key (forgeyard.auth.principals)."""
    expires_at = utcnow() + timedelta(seconds=1.5)
    key = await _create_key(client, tenants.owner, "admin", expires_at=expires_at.isoformat())
    assert (await client.get(f"{API}/users", headers={"X-API-Key": key["key"]})).status_code == 200
    await asyncio.sleep(max(0.0, (expires_at - utcnow()).total_seconds()) + 0.1)
    await _assert_no_access(client, {"X-API-Key": key["key"]}, "session_expired")


async def test_x_api_key_wins_over_authorization_and_never_adds_to_it(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    """Both headers at once: X-API-Key is the credential; Authorization is ignored.

    So a weak key next to a strong token acts as the weak key, and a bad key next to a good
    token is refused outright rather than falling back to the token.
    """
    read_key = (await _create_key(client, tenants.owner, "read"))["key"]
    admin_key = (await _create_key(client, tenants.owner, "admin"))["key"]
    weak_with_strong = {"X-API-Key": read_key, **tenants.owner.headers}
    me = await client.get(f"{API}/auth/me", headers=weak_with_strong)
    assert (me.json()["kind"], me.json()["scope"]) == ("api_key", "read")
    for method, path, body in (
        ("GET", "/users", None),
        ("POST", "/api-keys", {"name": "escalated"}),
        ("GET", "/audit-log", None),
    ):
        response = await client.request(method, API + path, json=body, headers=weak_with_strong)
        assert response.status_code == 403, response.text
    weak_key_with_admin_key = {"X-API-Key": read_key, **_bearer(admin_key)}
    me = await client.get(f"{API}/auth/me", headers=weak_key_with_admin_key)
    assert me.json()["scope"] == "read"
    bad_with_good = {"X-API-Key": _change_one_character(read_key, 3), **tenants.owner.headers}
    await _assert_no_access(client, bad_with_good, "invalid_session")


# The reach of a key: "what both its scope and the role of the person who created it allow"
# (docs/roles.md), so it must follow that person's role as it is now.


async def test_a_demoted_admins_admin_key_loses_the_admins_reach(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    key = (await _create_key(client, tenants.admin, "admin"))["key"]
    demoted = await client.patch(
        f"{API}/users/{tenants.admin.user_id}/role",
        json={"role": "viewer"},
        headers=tenants.owner.headers,
    )
    assert demoted.status_code == 200
    assert (await client.get(f"{API}/users", headers=tenants.admin.headers)).status_code == 403
    response = await client.get(f"{API}/users", headers={"X-API-Key": key})
    assert response.status_code == 403, response.text


async def test_a_disabled_persons_keys_stop_working(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    key = (await _create_key(client, tenants.admin, "admin"))["key"]
    disabled = await client.delete(
        f"{API}/users/{tenants.admin.user_id}", headers=tenants.owner.headers
    )
    assert disabled.status_code == 200
    _assert_refused(
        await client.get(f"{API}/auth/me", headers=tenants.admin.headers), "invalid_session"
    )
    await _assert_no_access(client, {"X-API-Key": key}, "invalid_session")


@pytest.mark.parametrize("change", ["demoted", "disabled"])
async def test_a_key_minted_by_a_key_is_bound_to_the_same_person(
    client: httpx.AsyncClient, tenants: Tenants, change: str
) -> None:
    parent = (await _create_key(client, tenants.admin, "admin"))["key"]
    minted = await client.post(
        f"{API}/api-keys",
        json={"name": "persistence", "scopes": ["admin"]},
        headers={"X-API-Key": parent},
    )
    assert minted.status_code == 201, minted.text
    child = minted.json()["key"]
    if change == "demoted":
        response = await client.patch(
            f"{API}/users/{tenants.admin.user_id}/role",
            json={"role": "viewer"},
            headers=tenants.owner.headers,
        )
    else:
        response = await client.delete(
            f"{API}/users/{tenants.admin.user_id}", headers=tenants.owner.headers
        )
    assert response.status_code == 200
    parent_now = await client.get(f"{API}/users", headers={"X-API-Key": parent})
    assert parent_now.status_code in (401, 403)  # the fix above holds for the parent
    child_now = await client.get(f"{API}/users", headers={"X-API-Key": child})
    assert child_now.status_code in (401, 403), child_now.text


# ---------------------------------------------------------------------------------------------
# Sessions after the account changes


async def _login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def test_signing_out_with_someone_elses_refresh_token_revokes_nothing(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    victim = await _login(client, tenants.owner.email, PASSWORD)
    response = await client.post(
        f"{API}/auth/logout",
        json={"refresh_token": victim["refresh_token"]},
        headers=tenants.other_owner.headers,
    )
    assert response.status_code == 204
    still = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": victim["refresh_token"]}
    )
    assert still.status_code == 200, still.text


async def test_a_disabled_persons_refresh_token_is_an_invalid_session(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    tokens = await _login(client, tenants.owner.email, PASSWORD)
    promoted = await client.patch(
        f"{API}/users/{tenants.admin.user_id}/role",
        json={"role": "owner"},
        headers=tenants.owner.headers,
    )
    assert promoted.status_code == 200
    disabled = await client.delete(
        f"{API}/users/{tenants.owner.user_id}", headers=tenants.admin.headers
    )
    assert disabled.status_code == 200
    refused = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    _assert_refused(refused, "invalid_session")


async def test_a_password_reset_ends_the_sessions_already_open(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI
) -> None:
    stolen = await _login(client, tenants.owner.email, PASSWORD)
    mailer_bodies: list[str] = []

    class Capture:
        async def send(self, *, to: str, subject: str, body: str) -> bool:
            mailer_bodies.append(body)
            return True

    app.state.mailer = Capture()
    await client.post(f"{API}/auth/password/reset", json={"email": tenants.owner.email})
    token = mailer_bodies[-1].split("token=")[1].split()[0]
    confirmed = await client.post(
        f"{API}/auth/password/reset/confirm",
        json={"token": token, "password": "a new password after the theft"},
    )
    assert confirmed.status_code == 200
    assert "every session" in confirmed.json()["message"]
    response = await client.get(f"{API}/users", headers=_bearer(stolen["access_token"]))
    assert response.status_code == 401, response.text
