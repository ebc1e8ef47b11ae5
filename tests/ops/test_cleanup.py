"""Retention cleanup removes old finished work of the organization asked for, and only that."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from forgeyard.api.job_handlers import load_tasks
from forgeyard.identity import service as identity
from forgeyard.jobs import enqueue
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database, utcnow
from forgeyard.kernel.ids import new_id
from forgeyard.models.job import Job
from forgeyard.models.webhook import WebhookDelivery, WebhookEndpoint


async def test_cleanup_deletes_only_old_finished_work_of_its_organization(
    committed_database: Database,
) -> None:
    load_tasks()
    async with committed_database.transaction() as session:
        acme = (await identity.create_organization(session=session, name="Acme")).id
        globex = (await identity.create_organization(session=session, name="Globex")).id
    old = utcnow() - timedelta(days=45)
    ids: dict[str, str] = {}
    async with committed_database.transaction() as session:
        for name, org, status, finished in [
            ("acme_old", acme, "succeeded", old),
            ("acme_recent", acme, "succeeded", utcnow() - timedelta(days=2)),
            ("acme_old_queued", acme, "queued", None),
            ("globex_old", globex, "dead", old),
        ]:
            ids[name] = (await enqueue(session, "deps.update", organization_id=org)).id
            job = await session.get(Job, ids[name])
            assert job is not None
            job.status, job.finished_at, job.created_at = status, finished, old
        hook = WebhookEndpoint(
            organization_id=acme, url="https://93.184.215.14/hook", secret_encrypted="x"
        )
        session.add(hook)
        await session.flush()
        for name, status, created in [
            ("delivery_old", "succeeded", old),
            ("delivery_old_pending", "pending", old),
            ("delivery_recent", "failed", utcnow()),
        ]:
            delivery = WebhookDelivery(
                organization_id=acme,
                webhook_id=hook.id,
                message_id=new_id("msg"),
                event_type="pr.created",
                status=status,
                created_at=created,
            )
            session.add(delivery)
            await session.flush()
            ids[name] = delivery.id
        cleanup = await enqueue(
            session,
            "ops.cleanup",
            payload={"organization_id": acme, "retention_days": 30},
            organization_id=acme,
        )
    await Worker(committed_database, kinds=["ops.cleanup"]).drain()
    async with committed_database.transaction() as session:
        left = set((await session.scalars(select(Job.id))).all())
        left |= set((await session.scalars(select(WebhookDelivery.id))).all())
        finished = await session.get(Job, cleanup.id)
    assert ids["acme_old"] not in left
    assert ids["delivery_old"] not in left
    kept = {
        "acme_recent",
        "acme_old_queued",
        "globex_old",
        "delivery_old_pending",
        "delivery_recent",
    }
    assert {ids[name] for name in kept} <= left
    assert finished is not None
    assert finished.status == "succeeded"
