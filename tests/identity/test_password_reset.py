"""Password resets by e-mail, through a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from tests.identity.conftest import PASSWORD, Tenants, runtime_of

API = "/api/v1"
NEW_PASSWORD = "an entirely new password"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    async def wait_for(self, count: int) -> list[Message]:
        for _ in range(100):
            if len(self.messages) >= count:
                return self.messages
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")


@pytest.fixture
def inbox(app: FastAPI) -> Iterator[Inbox]:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    mail = runtime_of(app).settings.mail
    mail.smtp_host, mail.smtp_port, mail.starttls = "127.0.0.1", controller.port, False
    app.state.mailer.settings = mail
    yield inbox
    controller.stop()


def _token(message: Message) -> str:
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    match = re.search(r"token=([\w-]+)", body)
    assert match, body
    return match.group(1)


async def test_reset_link_by_mail_sets_a_new_password_and_signs_out_everywhere(
    client: httpx.AsyncClient, tenants: Tenants, inbox: Inbox
) -> None:
    old_session = (
        await client.post(
            f"{API}/auth/login", json={"email": "owner@acme.example", "password": PASSWORD}
        )
    ).json()
    asked = await client.post(f"{API}/auth/password/reset", json={"email": "OWNER@acme.example"})
    assert asked.status_code == 202
    [message] = await inbox.wait_for(1)
    assert message["To"] == "owner@acme.example"
    token = _token(message)

    confirmed = await client.post(
        f"{API}/auth/password/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 200
    login = await client.post(
        f"{API}/auth/login", json={"email": "owner@acme.example", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
    stale = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": old_session["refresh_token"]}
    )
    assert stale.status_code == 401
    reused = await client.post(
        f"{API}/auth/password/reset/confirm", json={"token": token, "password": "yet another pw"}
    )
    assert reused.status_code == 401
    assert reused.json()["code"] == "invalid_token"


@pytest.mark.usefixtures("tenants")
async def test_unknown_addresses_get_the_same_answer_and_no_mail(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    known = await client.post(f"{API}/auth/password/reset", json={"email": "owner@acme.example"})
    unknown = await client.post(f"{API}/auth/password/reset", json={"email": "ghost@acme.example"})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    await inbox.wait_for(1)
    await asyncio.sleep(0.1)
    assert [m["To"] for m in inbox.messages] == ["owner@acme.example"]


@pytest.mark.usefixtures("tenants")
async def test_reset_confirmation_checks_token_and_password(client: httpx.AsyncClient) -> None:
    bad_token = await client.post(
        f"{API}/auth/password/reset/confirm", json={"token": "nope", "password": NEW_PASSWORD}
    )
    assert bad_token.status_code == 401
    short = await client.post(
        f"{API}/auth/password/reset/confirm", json={"token": "nope", "password": "short"}
    )
    assert short.status_code == 400
    assert short.json()["details"]["fields"][0]["field"] == "body.password"


async def test_invitations_are_mailed(
    client: httpx.AsyncClient, tenants: Tenants, inbox: Inbox
) -> None:
    invited = await client.post(
        f"{API}/users/invite", json={"email": "new@acme.example"}, headers=tenants.owner.headers
    )
    assert invited.json()["emailed"] is True
    [message] = await inbox.wait_for(1)
    assert message["To"] == "new@acme.example"
    assert _token(message) == invited.json()["accept_url"].split("token=")[1]


async def test_a_reset_request_needs_an_address(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/auth/password/reset", json={"email": "not an address"})
    assert response.status_code == 400
    assert response.json()["details"]["fields"][0]["field"] == "body.email"
