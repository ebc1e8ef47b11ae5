"""Users, organizations, invitations, API keys and the audit log, as their admins use them."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from forgeyard.kernel.db import Database
from tests.identity.conftest import Tenants, runtime_of

API = "/api/v1"


async def test_admins_list_the_people_of_their_organization_only(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    response = await client.get(f"{API}/users", headers=tenants.admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 4
    assert {u["email"] for u in body["data"]} == {
        "owner@acme.example",
        "admin@acme.example",
        "member@acme.example",
        "viewer@acme.example",
    }
    assert "password" not in response.text


async def test_members_list_is_paginated(client: httpx.AsyncClient, tenants: Tenants) -> None:
    org = tenants.owner.organization_id
    page = await client.get(
        f"{API}/organizations/{org}/members",
        params={"limit": 3, "offset": 2},
        headers=tenants.viewer.headers,
    )
    assert page.status_code == 200
    assert (page.json()["total"], len(page.json()["data"])) == (4, 2)


async def test_invitation_leads_to_an_account_with_the_invited_role(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    invited = await client.post(
        f"{API}/users/invite",
        json={"email": "New.Hire@acme.example", "role": "viewer"},
        headers=tenants.admin.headers,
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["email"] == "new.hire@acme.example"
    token = invited.json()["accept_url"].split("token=")[1]
    registered = await client.post(
        f"{API}/auth/register",
        json={
            "email": "new.hire@acme.example",
            "password": "another long password",
            "name": "New Hire",
            "invitation_token": token,
        },
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["user"]["role"] == "viewer"
    assert registered.json()["user"]["organization_id"] == tenants.owner.organization_id
    reused = await client.post(
        f"{API}/auth/register",
        json={
            "email": "new.hire@acme.example",
            "password": "another long password",
            "name": "Again",
            "invitation_token": token,
        },
    )
    assert reused.status_code == 409


async def test_an_invitation_is_bound_to_its_address(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    invited = await client.post(
        f"{API}/users/invite", json={"email": "a@acme.example"}, headers=tenants.owner.headers
    )
    token = invited.json()["accept_url"].split("token=")[1]
    response = await client.post(
        f"{API}/auth/register",
        json={
            "email": "someone.else@acme.example",
            "password": "another long password",
            "name": "Thief",
            "invitation_token": token,
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


@pytest.mark.usefixtures("tenants")
async def test_registration_without_invitation_is_refused_by_default(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"{API}/auth/register",
        json={"email": "x@y.example", "password": "long enough pw", "name": "X"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "invitation_required"


@pytest.mark.usefixtures("tenants")
async def test_open_registration_creates_an_organization_owned_by_the_newcomer(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    runtime_of(app).settings.auth.registration = "open"
    response = await client.post(
        f"{API}/auth/register",
        json={
            "email": "solo@indie.example",
            "password": "long enough pw",
            "name": "Solo",
            "organization_name": "Indie",
        },
    )
    assert response.status_code == 201
    assert response.json()["user"]["role"] == "owner"
    missing_org = await client.post(
        f"{API}/auth/register",
        json={"email": "two@indie.example", "password": "long enough pw", "name": "Two"},
    )
    assert missing_org.status_code == 400
    assert missing_org.json()["details"]["fields"][0]["field"] == "body.organization_name"


async def test_role_changes_are_applied_and_audited(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    changed = await client.patch(
        f"{API}/users/{tenants.viewer.user_id}/role",
        json={"role": "member"},
        headers=tenants.admin.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "member"
    log = await client.get(
        f"{API}/audit-log", params={"action": "user.role_changed"}, headers=tenants.owner.headers
    )
    event = log.json()["data"][0]
    assert event["target_id"] == tenants.viewer.user_id
    assert event["actor_id"] == tenants.admin.user_id
    assert event["details"] == {"from": "viewer", "to": "member"}


async def test_an_unknown_role_is_refused(client: httpx.AsyncClient, tenants: Tenants) -> None:
    response = await client.patch(
        f"{API}/users/{tenants.viewer.user_id}/role",
        json={"role": "superuser"},
        headers=tenants.owner.headers,
    )
    assert response.status_code == 400
    assert response.json()["details"]["fields"][0]["field"] == "body.role"


async def test_the_last_owner_can_be_neither_demoted_nor_disabled(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner
    demote = await client.patch(
        f"{API}/users/{owner.user_id}/role", json={"role": "admin"}, headers=owner.headers
    )
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    disable = await client.delete(f"{API}/users/{owner.user_id}", headers=owner.headers)
    assert disable.status_code == 409
    promoted = await client.patch(
        f"{API}/users/{tenants.admin.user_id}/role", json={"role": "owner"}, headers=owner.headers
    )
    assert promoted.status_code == 200
    # With a second owner, the first may step down.
    stepped_down = await client.patch(
        f"{API}/users/{owner.user_id}/role", json={"role": "admin"}, headers=owner.headers
    )
    assert stepped_down.status_code == 200


async def test_disable_and_enable_keep_the_person(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    user = tenants.member.user_id
    assert (await client.delete(f"{API}/users/{user}", headers=tenants.admin.headers)).json()[
        "disabled"
    ]
    listed = await client.get(f"{API}/users", headers=tenants.admin.headers)
    assert any(u["id"] == user and u["disabled"] for u in listed.json()["data"])
    enabled = await client.post(f"{API}/users/{user}/enable", headers=tenants.admin.headers)
    assert enabled.json()["disabled"] is False
    assert (await client.get(f"{API}/auth/me", headers=tenants.member.headers)).status_code == 200


async def test_owners_rename_the_organization_and_change_its_plan(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    org = tenants.owner.organization_id
    response = await client.patch(
        f"{API}/organizations/{org}",
        json={"name": "Acme Corp", "plan": "pro"},
        headers=tenants.owner.headers,
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["plan"]) == ("Acme Corp", "pro")
    limits = await client.get(f"{API}/auth/me", headers=tenants.owner.headers)
    assert limits.headers["x-ratelimit-limit"] == "300"


async def test_api_keys_are_shown_once_and_work_in_both_headers(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    created = await client.post(
        f"{API}/api-keys",
        json={"name": "ci", "scopes": ["write"]},
        headers=tenants.member.headers,
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("fy_")
    assert created.json()["hint"].endswith(key[-4:])
    listed = await client.get(f"{API}/api-keys", headers=tenants.member.headers)
    assert key not in listed.text
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        me = await client.get(f"{API}/auth/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["kind"] == "api_key"
        assert me.json()["scope"] == "write"
    revoked = await client.delete(
        f"{API}/api-keys/{created.json()['id']}", headers=tenants.admin.headers
    )
    assert revoked.json()["revoked"] is True
    refused = await client.get(f"{API}/auth/me", headers={"X-API-Key": key})
    assert refused.status_code == 401
    log = await client.get(f"{API}/audit-log", headers=tenants.owner.headers)
    actions = [e["action"] for e in log.json()["data"]]
    assert {"api_key.created", "api_key.revoked"} <= set(actions)


async def test_api_key_creation_refuses_a_past_expiry_and_unknown_scopes(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    past = await client.post(
        f"{API}/api-keys",
        json={"name": "old", "expires_at": "2020-01-01T00:00:00Z"},
        headers=tenants.owner.headers,
    )
    assert past.status_code == 400
    assert past.json()["details"]["field"] == "expires_at"
    unknown = await client.post(
        f"{API}/api-keys", json={"name": "x", "scopes": ["root"]}, headers=tenants.owner.headers
    )
    assert unknown.status_code == 400
    assert unknown.json()["details"]["fields"][0]["field"] == "body.scopes.0"


async def test_audit_log_is_for_owners_and_admins(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    assert (await client.get(f"{API}/audit-log", headers=tenants.member.headers)).status_code == 403
    log = await client.get(f"{API}/audit-log", headers=tenants.admin.headers)
    assert log.status_code == 200
    assert "setup.owner_created" in [e["action"] for e in log.json()["data"]]
