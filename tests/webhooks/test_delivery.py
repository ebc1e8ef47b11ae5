"""Deliveries to a real receiver on loopback, driven by real workers on a committed database.

Events are emitted the way every domain emits them (``forgeyard.jobs.emit`` in a committed
transaction); workers run dispatch, the fan-out subscriber and the deliveries, and the
receiver checks each signature with the ``standardwebhooks`` reference library.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import WebhookVerificationError

from forgeyard.jobs import emit
from forgeyard.jobs.clock import Clock, ManualClock
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.audit import AuditEvent
from forgeyard.models.job import Event, Job
from forgeyard.models.webhook import WebhookDelivery, WebhookEndpoint
from forgeyard.settings import Settings
from forgeyard.webhooks import delivery, tasks
from tests.identity.conftest import Tenants
from tests.webhooks.conftest import API, Receiver, create_webhook, run_jobs

DAY = 24 * 60 * 60
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


def _secret(fill: bytes) -> str:
    return "whsec_" + base64.b64encode(fill * 32).decode()


# Workers must see the rows, so the app, the people and the jobs share a committed database.
@pytest.fixture
def database(committed_database: Database) -> Database:
    return committed_database


@pytest.fixture
def settings(tmp_path: Path, committed_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=committed_url,
        jobs={"workers": 0},  # type: ignore[arg-type]
        outbound={"allowed_hosts": ["127.0.0.1"]},  # type: ignore[arg-type]
        _env_file=None,
    )


@pytest.fixture(autouse=True)
def job_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The delivery job reads the same settings (and so the same secret key) as the app."""
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    return settings


async def _emit(database: Database, tenants: Tenants, type: str = "pr.created") -> str:
    async with database.transaction() as session:
        return await emit(
            session, type, {"number": 42}, organization_id=tenants.owner.organization_id
        )


async def _deliveries(database: Database, webhook_id: str) -> list[WebhookDelivery]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id)
        )
        return list(rows)


async def _endpoint(database: Database, webhook_id: str) -> WebhookEndpoint:
    async with database.transaction() as session:
        endpoint = await session.get(WebhookEndpoint, webhook_id)
    assert endpoint is not None
    return endpoint


async def test_an_event_arrives_once_signed_and_only_where_it_was_asked_for(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    hook = await create_webhook(
        client, tenants.owner, f"{receiver.url}/hook", events=["pr.created"]
    )
    await create_webhook(client, tenants.owner, f"{receiver.url}/other", events=["pr.merged"])
    paused = await create_webhook(client, tenants.owner, f"{receiver.url}/paused")
    await client.patch(
        f"{API}/webhooks/{paused['id']}", json={"active": False}, headers=tenants.owner.headers
    )
    await create_webhook(client, tenants.other_owner, f"{receiver.url}/globex")

    event_id = await _emit(database, tenants)
    worker = Worker(database)
    assert await run_jobs(worker) >= 3
    assert await run_jobs(worker) == 0

    assert [r.path for r in receiver.requests] == ["/hook"]
    (received,) = receiver.requests
    message = received.verify(hook["secret"])
    assert message == {
        "id": event_id,
        "type": "pr.created",
        "organization_id": tenants.owner.organization_id,
        "created_at": message["created_at"],
        "data": {"number": 42},
    }
    assert received.headers["content-type"] == "application/json"
    (sent,) = await _deliveries(database, hook["id"])
    assert received.headers["webhook-id"] == sent.message_id
    assert (sent.status, sent.attempts, sent.response_code) == ("succeeded", 1, 200)
    assert sent.response_excerpt == "answered 200"
    assert sent.duration_ms is not None
    assert sent.next_retry_at is None
    listed = await client.get(
        f"{API}/webhooks/{hook['id']}/deliveries", headers=tenants.owner.headers
    )
    (shown,) = listed.json()["data"]
    assert (shown["event_id"], shown["event_type"], shown["status"]) == (
        event_id,
        "pr.created",
        "succeeded",
    )


async def test_a_failing_receiver_is_retried_on_the_published_schedule_then_given_up(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    receiver.answers["/down"] = 500
    hook = await create_webhook(client, tenants.owner, f"{receiver.url}/down")
    await _emit(database, tenants)
    clock = ManualClock()
    worker = Worker(database, clock=clock)
    await run_jobs(worker)
    assert len(receiver.requests) == 1, "the first attempt is immediate"

    for attempt, delay in enumerate(SCHEDULE, start=2):
        (record,) = await _deliveries(database, hook["id"])
        assert (record.status, record.attempts, record.response_code) == (
            "pending",
            attempt - 1,
            500,
        )
        assert record.next_retry_at == clock.now() + timedelta(seconds=delay)
        clock.advance(delay - 1)
        assert await run_jobs(worker) == 0, f"attempt {attempt} is not due yet"
        clock.advance(1)
        assert await run_jobs(worker) == 1
        assert len(receiver.requests) == attempt
        assert receiver.requests[-1].headers["webhook-timestamp"] == str(
            int(clock.now().timestamp())
        )

    (record,) = await _deliveries(database, hook["id"])
    assert (record.status, record.attempts, record.next_retry_at) == ("failed", 8, None)
    assert record.response_excerpt == "answered 500"
    async with database.transaction() as session:
        job = (await session.scalars(select(Job).where(Job.kind == "webhooks.deliver"))).one()
    assert (job.status, job.attempts) == ("dead", 8)
    clock.advance(DAY)
    assert await run_jobs(worker) == 0
    assert len(receiver.requests) == 8
    assert {r.headers["webhook-id"] for r in receiver.requests} == {record.message_id}
    assert all(r.signed_with(hook["secret"]) for r in receiver.requests)
    endpoint = await _endpoint(database, hook["id"])
    assert endpoint.active, "about 28 hours of failures is not 5 days"
    assert endpoint.failing_since is not None


async def test_410_gone_disables_the_endpoint_at_once(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    receiver.answers["/gone"] = 410
    hook = await create_webhook(client, tenants.owner, f"{receiver.url}/gone")
    await _emit(database, tenants)
    clock = ManualClock()
    worker = Worker(database, clock=clock)
    await run_jobs(worker)
    clock.advance(DAY)
    await run_jobs(worker)
    assert len(receiver.at("/gone")) == 1, "no retry after 410"
    (record,) = await _deliveries(database, hook["id"])
    assert (record.status, record.response_code, record.next_retry_at) == ("failed", 410, None)
    shown = (await client.get(f"{API}/webhooks/{hook['id']}", headers=tenants.owner.headers)).json()
    assert (shown["active"], shown["disabled_reason"]) == (False, delivery.GONE_REASON)

    # A test still reaches a disabled endpoint: the way to see that the receiver is back.
    receiver.answers["/gone"] = 204
    tested = await client.post(f"{API}/webhooks/{hook['id']}/test", headers=tenants.owner.headers)
    await run_jobs(worker)
    (test_request,) = [r for r in receiver.at("/gone") if b"webhook.test" in r.body]
    assert test_request.signed_with(hook["secret"])  # dated by the test clock, a day ahead
    shown = await client.get(
        f"{API}/webhooks/{hook['id']}/deliveries/{tested.json()['id']}",
        headers=tenants.owner.headers,
    )
    assert (shown.json()["status"], shown.json()["response_code"]) == ("succeeded", 204)

    # Re-enabling forgets the failure, and events flow again.
    resumed = await client.patch(
        f"{API}/webhooks/{hook['id']}", json={"active": True}, headers=tenants.owner.headers
    )
    assert resumed.json()["disabled_reason"] is None
    assert resumed.json()["failing_since"] is None
    await _emit(database, tenants)
    await run_jobs(worker)
    assert [r.headers["webhook-id"] for r in receiver.at("/gone")][-1] != record.message_id
    assert (await _deliveries(database, hook["id"]))[-1].status == "succeeded"


async def test_a_redirect_is_an_answer_not_a_new_destination(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    receiver.answers["/moved"] = 302
    hook = await create_webhook(client, tenants.owner, f"{receiver.url}/moved")
    tested = await client.post(f"{API}/webhooks/{hook['id']}/test", headers=tenants.owner.headers)
    assert tested.status_code == 202
    await run_jobs(Worker(database))
    assert [(r.method, r.path) for r in receiver.requests] == [("POST", "/moved")]
    receiver.requests[0].verify(hook["secret"])
    shown = await client.get(
        f"{API}/webhooks/{hook['id']}/deliveries/{tested.json()['id']}",
        headers=tenants.owner.headers,
    )
    assert (shown.json()["status"], shown.json()["response_code"]) == ("failed", 302)
    assert shown.json()["attempts"] == 1


async def test_five_days_of_failures_disable_the_endpoint_and_say_so(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    receiver.answers["/down"] = 503
    hook = await create_webhook(
        client, tenants.owner, f"{receiver.url}/down", events=["pr.created"]
    )
    watcher = await create_webhook(
        client, tenants.owner, f"{receiver.url}/watch", events=["webhook.disabled"]
    )
    await _emit(database, tenants)
    clock = ManualClock()  # started after the event was queued, so it is due
    worker = Worker(database, clock=clock)
    await run_jobs(worker)
    started = clock.now()
    assert (await _endpoint(database, hook["id"])).failing_since == started

    clock.advance(5 * DAY - 1)
    await _emit(database, tenants)
    await run_jobs(worker)
    assert (await _endpoint(database, hook["id"])).active, "not yet five days"

    clock.advance(1)
    await _emit(database, tenants)
    await run_jobs(worker)
    endpoint = await _endpoint(database, hook["id"])
    assert (endpoint.active, endpoint.disabled_reason) == (False, delivery.FAILING_REASON)
    assert endpoint.disabled_at == clock.now()
    async with database.transaction() as session:
        audit = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "webhook.disabled"))
        ).one()
        disabled_events = list(
            await session.scalars(select(Event).where(Event.type == "webhook.disabled"))
        )
    assert (audit.target_id, audit.organization_id) == (hook["id"], tenants.owner.organization_id)
    assert [e.data["webhook_id"] for e in disabled_events] == [hook["id"]]
    # The organization hears of it at its other endpoint.
    (told,) = receiver.at("/watch")
    assert told.signed_with(watcher["secret"])
    message = json.loads(told.body)
    assert message["type"] == "webhook.disabled"
    assert message["data"]["reason"] == delivery.FAILING_REASON

    # A disabled endpoint gets no more events, and what was waiting for a retry is dropped.
    before = len(receiver.at("/down"))
    await _emit(database, tenants)
    clock.advance(DAY)
    await run_jobs(worker)
    assert len(receiver.at("/down")) == before
    deliveries = await _deliveries(database, hook["id"])
    assert len(deliveries) == 3
    assert [d.status for d in deliveries] == ["failed"] * 3
    assert [d.error for d in deliveries[:2]] == ["the endpoint is disabled"] * 2


async def test_any_success_ends_a_failure_streak(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    receiver.answers["/flaky"] = 500
    hook = await create_webhook(client, tenants.owner, f"{receiver.url}/flaky")
    await _emit(database, tenants)
    clock = ManualClock()
    worker = Worker(database, clock=clock)
    await run_jobs(worker)
    assert (await _endpoint(database, hook["id"])).failing_since is not None
    receiver.answers["/flaky"] = 200
    clock.advance(5)
    await run_jobs(worker)
    assert (await _endpoint(database, hook["id"])).failing_since is None
    (record,) = await _deliveries(database, hook["id"])
    assert (record.status, record.attempts) == ("succeeded", 2)


async def test_a_redelivery_is_signed_with_the_current_secret_and_never_disables(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    first, second = _secret(b"1"), _secret(b"2")
    hook = await create_webhook(client, tenants.owner, f"{receiver.url}/hook", secret=first)
    url = f"{API}/webhooks/{hook['id']}"
    worker = Worker(database)
    await _emit(database, tenants)
    await run_jobs(worker)
    (original,) = receiver.requests
    original.verify(first)

    rotated = await client.patch(url, json={"secret": second}, headers=tenants.owner.headers)
    assert rotated.status_code == 200
    assert "secret" not in rotated.json()
    (sent,) = await _deliveries(database, hook["id"])
    again = await client.post(
        f"{url}/deliveries/{sent.id}/redeliver", headers=tenants.admin.headers
    )
    assert again.status_code == 202, again.text
    await run_jobs(worker)
    resent = receiver.requests[-1]
    assert resent.headers["webhook-id"] == original.headers["webhook-id"] == sent.message_id
    assert resent.body == original.body
    assert resent.verify(second)["type"] == "pr.created"
    with pytest.raises(WebhookVerificationError):
        resent.verify(first)

    # Failing redeliveries neither start a failure streak nor end an endpoint's life.
    receiver.answers["/hook"] = 500
    for failing_since in (None, Clock().now() - timedelta(days=6)):
        async with database.transaction() as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == hook["id"])
                .values(failing_since=failing_since)
            )
        response = await client.post(
            f"{url}/deliveries/{sent.id}/redeliver", headers=tenants.owner.headers
        )
        await run_jobs(worker)
        shown = await client.get(
            f"{url}/deliveries/{response.json()['id']}", headers=tenants.owner.headers
        )
        assert (shown.json()["status"], shown.json()["response_code"]) == ("failed", 500)
        endpoint = await _endpoint(database, hook["id"])
        assert endpoint.active
        assert endpoint.failing_since == failing_since


@pytest.mark.parametrize("where", ["receiver", "http://169.254.169.254/latest/meta-data"])
async def test_a_private_destination_is_refused_at_send_without_connecting(
    database: Database,
    tenants: Tenants,
    receiver: Receiver,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    # The row bypasses the API's check; the job runs with the default policy (no allow-list).
    strict = settings.model_copy(
        update={"outbound": settings.outbound.model_copy(update={"allowed_hosts": []})}
    )
    monkeypatch.setattr(tasks, "get_settings", lambda: strict)
    url = f"{receiver.url}/hook" if where == "receiver" else where
    async with database.transaction() as session:
        endpoint = WebhookEndpoint(
            organization_id=tenants.owner.organization_id,
            url=url,
            events=["*"],
            secret_encrypted=instance_secret_box(settings).encrypt(_secret(b"s")),
            active=True,
        )
        session.add(endpoint)
    await _emit(database, tenants)
    clock = ManualClock()
    worker = Worker(database, clock=clock)
    await run_jobs(worker)
    clock.advance(DAY)
    await run_jobs(worker)
    assert receiver.requests == []
    (record,) = await _deliveries(database, endpoint.id)
    assert (record.status, record.attempts, record.response_code) == ("failed", 1, None)
    assert record.error is not None
    assert record.error.startswith("blocked_destination: ")
    async with database.transaction() as session:
        job = (await session.scalars(select(Job).where(Job.kind == "webhooks.deliver"))).one()
    assert (job.status, job.attempts) == ("failed", 1)


async def test_deliveries_of_a_deleted_endpoint_end_quietly(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, receiver: Receiver
) -> None:
    hook = await create_webhook(client, tenants.owner, f"{receiver.url}/hook")
    await _emit(database, tenants)
    worker = Worker(database, kinds=["events.dispatch", "events.deliver"])
    await run_jobs(worker)  # fanned out, not delivered
    assert len(await _deliveries(database, hook["id"])) == 1
    deleted = await client.delete(f"{API}/webhooks/{hook['id']}", headers=tenants.owner.headers)
    assert deleted.status_code == 200
    assert await run_jobs(Worker(database)) == 1
    assert receiver.requests == []


async def test_a_subscriber_run_twice_adds_no_duplicate_deliveries(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    hook = await create_webhook(client, tenants.owner)
    message: dict[str, Any] = {
        "id": "evt_01JD7X0000000000000000000A",
        "type": "build.finished",
        "organization_id": tenants.owner.organization_id,
        "created_at": "2026-11-27T12:00:00Z",
        "data": {},
    }
    for _ in range(2):
        async with database.transaction() as session:
            await delivery.fan_out(session=session, message=message, now=Clock().now())
    (record,) = await _deliveries(database, hook["id"])
    assert record.event_id == message["id"]
