"""The webhook endpoints over HTTP: shapes, validation, SSRF at save, secrets, tenancy, roles."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from standardwebhooks import Webhook

from forgeyard.kernel.db import Database
from forgeyard.models.audit import AuditEvent
from forgeyard.models.job import Job
from forgeyard.models.webhook import WebhookDelivery, WebhookEndpoint
from tests.identity.conftest import Tenants
from tests.webhooks.conftest import API, PUBLIC_URL, create_webhook

GIVEN_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert set(body) == {"error", "code", "details", "retryable", "request_id"}
    return body


def _fields(response: httpx.Response) -> list[str]:
    return [f["field"] for f in _assert_error(response, 400, "invalid_input")["details"]["fields"]]


async def test_create_answers_201_with_the_secret_once(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    created = await create_webhook(
        client, tenants.admin, events=["pr.created", "job.failed"], description="CI bot"
    )
    assert created["id"].startswith("wh_")
    assert (created["url"], created["events"], created["active"]) == (
        PUBLIC_URL,
        ["pr.created", "job.failed"],
        True,
    )
    assert created["description"] == "CI bot"
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    Webhook(secret)  # a secret the reference library accepts

    shown = await client.get(f"{API}/webhooks/{created['id']}", headers=tenants.viewer.headers)
    assert shown.status_code == 403  # viewers see no webhooks (docs/roles.md)
    shown = await client.get(f"{API}/webhooks/{created['id']}", headers=tenants.member.headers)
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert shown.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = await client.get(f"{API}/webhooks", headers=tenants.member.headers)
    assert listed.json() == {"data": [shown.json()], "total": 1, "limit": 50, "offset": 0}
    assert secret not in listed.text


async def test_the_secret_is_encrypted_at_rest(
    client: httpx.AsyncClient, tenants: Tenants, database: Database, app: FastAPI
) -> None:
    created = await create_webhook(client, tenants.owner, secret=GIVEN_SECRET)
    assert created["secret"] == GIVEN_SECRET
    async with database.transaction() as session:
        stored = await session.scalar(
            select(WebhookEndpoint.secret_encrypted).where(WebhookEndpoint.id == created["id"])
        )
    assert stored is not None
    assert GIVEN_SECRET not in stored
    assert GIVEN_SECRET.removeprefix("whsec_") not in stored
    assert app.state.auth.secret_box.decrypt(stored) == GIVEN_SECRET


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["*"]}, "body.url"),
        ({"url": PUBLIC_URL}, "body.events"),
        ({"url": PUBLIC_URL, "events": []}, "body.events"),
        ({"url": PUBLIC_URL, "events": ["pr.created", "pr.exploded"]}, "body.events.1"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "plain-old-secret"}, "body.secret"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_!!!!"}, "body.secret"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_c2hvcnQ="}, "body.secret"),
        ({"url": PUBLIC_URL, "events": ["*"], "description": "x" * 501}, "body.description"),
        ({"url": PUBLIC_URL, "events": ["*"], "organization_id": "org_x"}, "body.organization_id"),
    ],
)
async def test_bad_input_is_refused_by_field_and_writes_nothing(
    client: httpx.AsyncClient, tenants: Tenants, body: dict[str, Any], field: str
) -> None:
    response = await client.post(f"{API}/webhooks", json=body, headers=tenants.owner.headers)
    assert _fields(response) == [field]
    listed = await client.get(f"{API}/webhooks", headers=tenants.owner.headers)
    assert listed.json()["total"] == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://93.184.215.14/hook", "not a url", "https:///nohost", "https://u:p@93.184.215.14/"],
)
async def test_urls_that_are_not_plain_http_are_refused(
    client: httpx.AsyncClient, tenants: Tenants, url: str
) -> None:
    response = await client.post(
        f"{API}/webhooks", json={"url": url, "events": ["*"]}, headers=tenants.owner.headers
    )
    body = _assert_error(response, 400, "invalid_input")
    assert body["details"]["field"] == "url"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://127.1/",
        "http://localhost/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1/",
    ],
)
async def test_private_destinations_are_refused_at_save(
    client: httpx.AsyncClient, tenants: Tenants, url: str
) -> None:
    response = await client.post(
        f"{API}/webhooks", json={"url": url, "events": ["*"]}, headers=tenants.owner.headers
    )
    body = _assert_error(response, 400, "blocked_destination")
    assert body["details"]["field"] == "url"
    created = await create_webhook(client, tenants.owner)
    patched = await client.patch(
        f"{API}/webhooks/{created['id']}", json={"url": url}, headers=tenants.owner.headers
    )
    assert _assert_error(patched, 400, "blocked_destination")["details"]["field"] == "url"
    listed = (await client.get(f"{API}/webhooks", headers=tenants.owner.headers)).json()
    assert [w["url"] for w in listed["data"]] == [PUBLIC_URL]


async def test_patch_changes_only_what_it_names(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    created = await create_webhook(client, tenants.owner, description="first")
    url = f"{API}/webhooks/{created['id']}"
    headers = tenants.admin.headers
    changed = await client.patch(
        url, json={"events": ["incident.created", "incident.created"]}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["incident.created"]
    assert changed.json()["description"] == "first"
    assert "secret" not in changed.json()
    cleared = await client.patch(url, json={"description": None}, headers=headers)
    assert cleared.json()["description"] is None
    paused = await client.patch(url, json={"active": False}, headers=headers)
    assert (paused.json()["active"], paused.json()["disabled_reason"]) == (
        False,
        "paused by a user",
    )
    resumed = await client.patch(url, json={"active": True}, headers=headers)
    assert (resumed.json()["active"], resumed.json()["disabled_reason"]) == (True, None)
    assert resumed.json()["disabled_at"] is None
    for field in ("url", "events", "active", "secret"):
        refused = await client.patch(url, json={field: None}, headers=headers)
        assert _fields(refused) == [f"body.{field}"]
    assert _fields(await client.patch(url, json={"events": ["nope"]}, headers=headers)) == [
        "body.events.0"
    ]
    assert _fields(await client.patch(url, json={"secret": "hunter2"}, headers=headers)) == [
        "body.secret"
    ]
    after = (await client.get(url, headers=headers)).json()
    assert (after["events"], after["active"], after["url"]) == (
        ["incident.created"],
        True,
        PUBLIC_URL,
    )


async def test_delete_answers_with_what_it_deleted_and_takes_the_deliveries(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    created = await create_webhook(client, tenants.owner)
    url = f"{API}/webhooks/{created['id']}"
    tested = await client.post(f"{url}/test", headers=tenants.owner.headers)
    assert tested.status_code == 202
    deleted = await client.delete(url, headers=tenants.admin.headers)
    assert deleted.status_code == 200
    assert deleted.json()["id"] == created["id"]
    _assert_error(await client.get(url, headers=tenants.owner.headers), 404, "not_found")
    _assert_error(await client.delete(url, headers=tenants.owner.headers), 404, "not_found")
    async with database.transaction() as session:
        left = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == created["id"])
        )
        assert list(left) == []
        actions = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == created["id"])
        )
        assert sorted(actions) == ["webhook.created", "webhook.deleted"]


async def test_a_test_queues_one_delivery_and_a_redelivery_keeps_its_webhook_id(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    created = await create_webhook(client, tenants.owner, events=["pr.merged"])
    url = f"{API}/webhooks/{created['id']}"
    tested = await client.post(f"{url}/test", headers=tenants.admin.headers)
    assert tested.status_code == 202, tested.text
    test = tested.json()
    assert test["id"].startswith("whd_")
    assert test["message_id"].startswith("msg_")
    assert (test["event_type"], test["trigger"], test["status"], test["attempts"]) == (
        "webhook.test",
        "test",
        "pending",
        0,
    )
    again = await client.post(
        f"{url}/deliveries/{test['id']}/redeliver", headers=tenants.owner.headers
    )
    assert again.status_code == 202, again.text
    redelivery = again.json()
    assert redelivery["id"] != test["id"]
    assert (redelivery["message_id"], redelivery["redelivery_of"], redelivery["trigger"]) == (
        test["message_id"],
        test["id"],
        "redelivery",
    )
    listed = await client.get(f"{url}/deliveries", headers=tenants.member.headers)
    assert [d["id"] for d in listed.json()["data"]] == [redelivery["id"], test["id"]]
    assert listed.json()["total"] == 2
    pending = await client.get(f"{url}/deliveries?status=succeeded", headers=tenants.member.headers)
    assert pending.json()["total"] == 0
    one = await client.get(f"{url}/deliveries/{test['id']}", headers=tenants.member.headers)
    assert one.json() == test
    async with database.transaction() as session:
        jobs = list(await session.scalars(select(Job).where(Job.kind == "webhooks.deliver")))
    assert sorted(job.payload["delivery_id"] for job in jobs) == sorted(
        [test["id"], redelivery["id"]]
    )
    assert {job.max_attempts for job in jobs} == {1}, "a person is watching: one attempt"


async def test_another_organization_sees_none_of_it(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    acme = await create_webhook(client, tenants.owner)
    url = f"{API}/webhooks/{acme['id']}"
    delivery = (await client.post(f"{url}/test", headers=tenants.owner.headers)).json()
    globex = tenants.other_owner.headers
    theirs = await create_webhook(client, tenants.other_owner)
    attempts = [
        ("GET", url, None),
        ("PATCH", url, {"url": "https://93.184.215.15/stolen"}),
        ("DELETE", url, None),
        ("POST", f"{url}/test", None),
        ("GET", f"{url}/deliveries", None),
        ("GET", f"{url}/deliveries/{delivery['id']}", None),
        ("POST", f"{url}/deliveries/{delivery['id']}/redeliver", None),
        # Acme's delivery under Globex's own webhook is not found either.
        ("GET", f"{API}/webhooks/{theirs['id']}/deliveries/{delivery['id']}", None),
        ("POST", f"{API}/webhooks/{theirs['id']}/deliveries/{delivery['id']}/redeliver", None),
    ]
    for method, target, body in attempts:
        response = await client.request(method, target, json=body, headers=globex)
        _assert_error(response, 404, "not_found")
    listed = await client.get(f"{API}/webhooks", headers=globex)
    assert [w["id"] for w in listed.json()["data"]] == [theirs["id"]]
    after = await client.get(url, headers=tenants.owner.headers)
    assert after.json()["url"] == PUBLIC_URL
    deliveries = await client.get(f"{url}/deliveries", headers=tenants.owner.headers)
    assert deliveries.json()["total"] == 1


@pytest.mark.parametrize("bad_id", ["wh_nope", "usr_01JD7X0000000000000000000A", "x" * 300])
async def test_ids_that_name_nothing_answer_404(
    client: httpx.AsyncClient, tenants: Tenants, bad_id: str
) -> None:
    response = await client.get(f"{API}/webhooks/{bad_id}", headers=tenants.owner.headers)
    _assert_error(response, 404, "not_found")
    created = await create_webhook(client, tenants.owner)
    response = await client.post(
        f"{API}/webhooks/{created['id']}/deliveries/{bad_id}/redeliver",
        headers=tenants.owner.headers,
    )
    _assert_error(response, 404, "not_found")


async def test_bad_list_parameters_are_refused_by_name(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    created = await create_webhook(client, tenants.owner)
    url = f"{API}/webhooks/{created['id']}/deliveries"
    headers = tenants.owner.headers
    assert _fields(await client.get(f"{url}?status=lost", headers=headers)) == ["query.status"]
    assert _fields(await client.get(f"{url}?limit=0", headers=headers)) == ["query.limit"]
    assert _fields(await client.get(f"{API}/webhooks?offset=-1", headers=headers)) == [
        "query.offset"
    ]


async def test_members_read_and_only_owners_and_admins_manage(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    created = await create_webhook(client, tenants.owner)
    url = f"{API}/webhooks/{created['id']}"
    body = {"url": PUBLIC_URL, "events": ["*"]}
    member, viewer = tenants.member.headers, tenants.viewer.headers
    assert (await client.get(url, headers=member)).status_code == 200
    for method, target, payload in [
        ("POST", f"{API}/webhooks", body),
        ("PATCH", url, {"active": False}),
        ("DELETE", url, None),
        ("POST", f"{url}/test", None),
    ]:
        response = await client.request(method, target, json=payload, headers=member)
        assert _assert_error(response, 403, "forbidden")["details"] == {
            "permission": "webhooks:manage"
        }
    for target in (f"{API}/webhooks", url, f"{url}/deliveries"):
        response = await client.get(target, headers=viewer)
        assert _assert_error(response, 403, "forbidden")["details"] == {
            "permission": "webhooks:read"
        }
    assert (await client.get(url, headers=tenants.owner.headers)).json()["active"] is True
