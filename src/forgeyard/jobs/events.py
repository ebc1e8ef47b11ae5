"""Domain events: an outbox written with the change, dispatched to subscribers after commit.

``emit`` adds the event row and one ``events.dispatch`` job to the caller's transaction. The
dispatch job fans the event out as one ``events.deliver`` job per subscriber, each keyed by
event and subscriber, so a crash anywhere after the commit only delays delivery: every
committed event reaches every subscriber at least once, and a subscriber that fails is
retried on its own without holding up the others.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.jobs.context import JobContext, PermanentError
from forgeyard.jobs.queue import enqueue
from forgeyard.jobs.registry import get_subscriber, subscribers_for, task
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.ids import new_id
from forgeyard.models.job import Event

events = cast(Table, Event.__table__)
DISPATCH = "events.dispatch"
DELIVER = "events.deliver"


async def emit(
    session: AsyncSession, type: str, data: dict[str, Any], *, organization_id: str | None
) -> str:
    """Record that ``type`` happened; subscribers hear of it once the transaction commits."""
    event_id = new_id("evt")
    now = utcnow()
    await session.execute(
        insert(events).values(
            id=event_id,
            organization_id=organization_id,
            type=type,
            data=data,
            created_at=now,
            updated_at=now,
        )
    )
    await enqueue(
        session,
        DISPATCH,
        payload={"event_id": event_id},
        organization_id=organization_id,
        idempotency_key=event_id,
        priority=10,
    )
    return event_id


def as_message(event: Event) -> dict[str, Any]:
    """The event as subscribers (and webhook receivers) see it."""
    return {
        "id": event.id,
        "type": event.type,
        "organization_id": event.organization_id,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


async def _load(session: AsyncSession, event_id: str) -> Event:
    event = await session.scalar(select(Event).where(Event.id == event_id))
    if event is None:  # deleted by retention before it was dispatched
        raise PermanentError(f"event {event_id} no longer exists")
    return event


@task(DISPATCH, max_attempts=10)
async def dispatch(ctx: JobContext) -> None:
    async with ctx.transaction() as session:
        event = await _load(session, ctx.payload["event_id"])
        for subscriber in subscribers_for(event.type):
            await enqueue(
                session,
                DELIVER,
                payload={"event_id": event.id, "subscriber": subscriber.name},
                organization_id=event.organization_id,
                idempotency_key=f"{event.id}:{subscriber.name}",
                priority=10,
                run_at=ctx.clock.now(),  # the engine's now, which tests may be moving
            )
        await session.execute(
            update(events).where(events.c.id == event.id).values(dispatched_at=utcnow())
        )


@task(DELIVER, max_attempts=10)
async def deliver(ctx: JobContext) -> None:
    subscriber = get_subscriber(ctx.payload["subscriber"])
    if subscriber is None:
        raise PermanentError(f"no subscriber named {ctx.payload['subscriber']!r} in this build")
    async with ctx.transaction() as session:
        message = as_message(await _load(session, ctx.payload["event_id"]))
    await subscriber.handler(ctx, message)
