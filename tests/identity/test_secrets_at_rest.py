"""Secrets the API hands out are never kept: not in the database, not in the logs.

One journey through every credential-bearing flow (sign-in, a failed sign-in, refresh, an API
key, an invitation and its registration, a password reset), collecting every secret value
the API returned or mailed; then every row of every table and every log line is searched for
them. Whoever steals the database or the log files learns none of them.
"""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from forgeyard.identity.mail import Mailer
from forgeyard.kernel.db import Database
from forgeyard.kernel.logging import configure_logging
from forgeyard.models import metadata
from tests.identity.conftest import PASSWORD, Tenants, runtime_of

API = "/api/v1"
WRONG_PASSWORD = "my other accounts password"
NEW_PASSWORD = "a brand new password for acme"
INVITEE_PASSWORD = "the invitees own password"
# What a response must never carry, whatever the endpoint.
STORED_SECRET_MARKERS = ("password_hash", "token_hash", "$argon2")


class RecordingMailer:
    """The application's mailer, with a copy of each message body kept for the test."""

    def __init__(self, real: Mailer) -> None:
        self.real = real
        self.bodies: list[str] = []

    async def send(self, *, to: str, subject: str, body: str) -> bool:
        self.bodies.append(body)
        return await self.real.send(to=to, subject=subject, body=body)


def _token_in(text: str) -> str:
    match = re.search(r"token=([\w-]+)", text)
    assert match, text
    return match.group(1)


class Journey:
    """Drives the API and remembers every secret and every response it saw."""

    def __init__(self, client: httpx.AsyncClient, mailer: RecordingMailer) -> None:
        self.client = client
        self.mailer = mailer
        self.secrets: dict[str, str] = {}
        self.responses: list[httpx.Response] = []

    def keep(self, label: str, value: str) -> None:
        assert len(value) >= 12, f"{label} is too short to search for: {value!r}"
        self.secrets[label] = value

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, API + path, **kwargs)
        self.responses.append(response)
        return response

    def keep_session(self, label: str, response: httpx.Response) -> dict[str, str]:
        assert response.status_code in (200, 201), response.text
        body = response.json()
        self.keep(f"{label} access token", body["access_token"])
        self.keep(f"{label} refresh token", body["refresh_token"])
        self.keep(f"{label} csrf cookie", response.cookies["fy_csrf"])
        return {"Authorization": f"Bearer {body['access_token']}"}


async def _walk_every_secret_flow(journey: Journey, tenants: Tenants) -> None:
    owner_email = tenants.owner.email
    journey.keep("password", PASSWORD)
    journey.keep("mistyped password", WRONG_PASSWORD)
    failed = await journey.call(
        "POST", "/auth/login", json={"email": owner_email, "password": WRONG_PASSWORD}
    )
    assert failed.status_code == 401

    login = await journey.call(
        "POST", "/auth/login", json={"email": owner_email, "password": PASSWORD}
    )
    journey.keep_session("login", login)
    refreshed = await journey.call(
        "POST", "/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    headers = journey.keep_session("refreshed", refreshed)

    key = await journey.call(
        "POST", "/api-keys", json={"name": "ci", "scopes": ["admin"]}, headers=headers
    )
    assert key.status_code == 201, key.text
    journey.keep("API key", key.json()["key"])
    # The random part alone, in case a column stored the key without its prefix or checksum.
    journey.keep("API key body", key.json()["key"][3:33])

    invited = await journey.call(
        "POST", "/users/invite", json={"email": "new.hire@acme.example"}, headers=headers
    )
    assert invited.status_code == 201, invited.text
    invitation = _token_in(invited.json()["accept_url"])
    journey.keep("invitation token", invitation)
    journey.keep("invitee password", INVITEE_PASSWORD)
    registered = await journey.call(
        "POST",
        "/auth/register",
        json={
            "email": "new.hire@acme.example",
            "password": INVITEE_PASSWORD,
            "name": "New Hire",
            "invitation_token": invitation,
        },
    )
    journey.keep_session("registration", registered)

    reset = await journey.call("POST", "/auth/password/reset", json={"email": owner_email})
    assert reset.status_code == 202
    reset_token = _token_in(journey.mailer.bodies[-1])
    journey.keep("password reset token", reset_token)
    journey.keep("new password", NEW_PASSWORD)
    confirmed = await journey.call(
        "POST",
        "/auth/password/reset/confirm",
        json={"token": reset_token, "password": NEW_PASSWORD},
    )
    assert confirmed.status_code == 200, confirmed.text
    again = await journey.call(
        "POST", "/auth/login", json={"email": owner_email, "password": NEW_PASSWORD}
    )
    headers = journey.keep_session("second login", again)

    # Everything an owner can read back about people, keys and events.
    org = tenants.owner.organization_id
    for path in (
        "/auth/me",
        "/users/me",
        "/users",
        "/api-keys",
        "/audit-log",
        f"/organizations/{org}",
        f"/organizations/{org}/members",
    ):
        assert (await journey.call("GET", path, headers=headers)).status_code == 200, path


async def _dump_database(database: Database) -> str:
    """Every row of every table, as text."""
    lines = []
    async with database.transaction() as session:
        for table in metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                lines.append(f"{table.name}: {row!r} {' '.join(str(v) for v in row)}")
    return "\n".join(lines)


@pytest.fixture
def log_lines() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    return stream


@pytest.fixture
async def journey(
    client: httpx.AsyncClient, app: FastAPI, tenants: Tenants, log_lines: io.StringIO
) -> Journey:
    mailer = RecordingMailer(app.state.mailer)
    app.state.mailer = mailer
    journey = Journey(client, mailer)
    await _walk_every_secret_flow(journey, tenants)
    return journey


def _leaks(secrets: dict[str, str], text: str) -> list[str]:
    return [label for label, value in secrets.items() if value in text]


async def test_no_secret_is_stored_in_any_table(
    journey: Journey, app: FastAPI, database: Database
) -> None:
    dump = await _dump_database(database)
    # The dump is the real thing: it holds the keyed hash of a token the journey received.
    hasher = runtime_of(app).token_hasher
    assert hasher.hash(journey.secrets["API key"]) in dump
    assert hasher.hash(journey.secrets["second login refresh token"]) in dump
    assert "new.hire@acme.example" in dump
    assert _leaks(journey.secrets, dump) == []


async def test_no_secret_is_written_to_the_log(journey: Journey, log_lines: io.StringIO) -> None:
    logged = log_lines.getvalue()
    assert '"event":"request"' in logged
    assert "/api/v1/auth/login" in logged
    assert "mail not sent" in logged  # the mailer logs too, and its lines are searched
    assert _leaks(journey.secrets, logged) == []


async def test_no_response_carries_a_stored_hash(journey: Journey) -> None:
    assert len(journey.responses) >= 15
    for response in journey.responses:
        for marker in STORED_SECRET_MARKERS:
            assert marker not in response.text, (response.request.url, marker)


async def test_an_api_key_is_shown_once_and_only_its_hint_after(journey: Journey) -> None:
    key = journey.secrets["API key"]
    showing = [r for r in journey.responses if key in r.text]
    assert [(r.request.method, r.request.url.path) for r in showing] == [
        ("POST", f"{API}/api-keys")
    ]
