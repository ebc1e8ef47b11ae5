"""Deliveries: creating them, and recording how each attempt went.

The HTTP request itself is sent by the ``webhooks.deliver`` job (``tasks.py``) outside any
transaction; what it learned is written here, in the job's transaction, together with what
follows from it: the endpoint's failure streak, and disabling it.

The retry schedule is Standard Webhooks' (Svix's): immediately, then after 5 s, 5 min,
30 min, 2 h, 5 h, 10 h and 10 h. Deliveries a person asks for (tests, redeliveries) are
attempted once: the person is watching and can ask again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.jobs import RetryPolicy, emit, enqueue
from forgeyard.kernel.ids import new_id
from forgeyard.models.webhook import (
    DeliveryStatus,
    DeliveryTrigger,
    WebhookDelivery,
    WebhookEndpoint,
)

DELIVER_KIND = "webhooks.deliver"
MAX_ATTEMPTS = 8
RETRY = RetryPolicy(schedule=(5, 300, 1800, 7200, 18000, 36000, 36000))
MANUAL_MAX_ATTEMPTS = 1
# An endpoint whose event deliveries have all failed for this long is disabled.
DISABLE_AFTER = timedelta(days=5)
ALL_EVENTS = "*"
DISABLED_EVENT = "webhook.disabled"
GONE_REASON = "the receiver answered 410 Gone"
FAILING_REASON = "every delivery failed for 5 days"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def new_delivery(
    endpoint: WebhookEndpoint,
    message: dict[str, Any],
    *,
    trigger: DeliveryTrigger,
    message_id: str | None = None,
    redelivery_of: str | None = None,
    event_key: str | None = None,
) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("whd"),
        organization_id=endpoint.organization_id,
        webhook_id=endpoint.id,
        message_id=message_id or new_id("msg"),
        event_id=message["id"] if trigger != DeliveryTrigger.TEST else None,
        event_type=message["type"],
        trigger=trigger,
        payload=message,
        status=DeliveryStatus.PENDING,
        attempts=0,
        redelivery_of=redelivery_of,
        event_key=event_key,
    )


async def schedule(
    session: AsyncSession, delivery: WebhookDelivery, *, run_at: datetime | None = None
) -> None:
    """Queue the job that sends ``delivery`` (once, whatever calls this again)."""
    manual = delivery.trigger != DeliveryTrigger.EVENT
    await enqueue(
        session,
        DELIVER_KIND,
        payload={"delivery_id": delivery.id},
        organization_id=delivery.organization_id,
        idempotency_key=delivery.id,
        max_attempts=MANUAL_MAX_ATTEMPTS if manual else MAX_ATTEMPTS,
        run_at=run_at,
    )


def subscribes(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return ALL_EVENTS in endpoint.events or event_type in endpoint.events


async def fan_out(
    *, session: AsyncSession, message: dict[str, Any], now: datetime
) -> list[WebhookDelivery]:
    """One delivery per active endpoint of the event's organization that wants it."""
    organization_id = message.get("organization_id")
    if not organization_id:
        return []  # an instance-wide event belongs to no organization's endpoints
    endpoints = await session.scalars(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.organization_id == organization_id,
            WebhookEndpoint.active.is_(True),
        )
        .order_by(WebhookEndpoint.id)
    )
    wanted = {
        f"{message['id']}:{endpoint.id}": endpoint
        for endpoint in endpoints
        if subscribes(endpoint, message["type"])
    }
    if not wanted:
        return []
    # The subscriber runs at least once: a second run adds nothing.
    done = set(
        await session.scalars(
            select(WebhookDelivery.event_key).where(WebhookDelivery.event_key.in_(list(wanted)))
        )
    )
    created = [
        new_delivery(endpoint, message, trigger=DeliveryTrigger.EVENT, event_key=key)
        for key, endpoint in wanted.items()
        if key not in done
    ]
    session.add_all(created)
    await session.flush()
    for delivery in created:
        await schedule(session, delivery, run_at=now)
    return created


async def load(
    session: AsyncSession, delivery_id: str
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    """The delivery and its endpoint; None once the endpoint was deleted."""
    row = (
        await session.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id == delivery_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt came back with."""

    response_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    refused: bool = False  # the destination may not be reached: retrying cannot help

    @property
    def succeeded(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300

    def describe(self) -> str:
        if self.error:
            return self.error
        return f"the receiver answered {self.response_code}"


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    EXHAUSTED = "exhausted"  # the last attempt failed: the job goes dead, like any other
    FAILED = "failed"  # refused, gone or disabled: retrying cannot help


_STATUS = {
    Verdict.SUCCEEDED: DeliveryStatus.SUCCEEDED,
    Verdict.RETRY: DeliveryStatus.PENDING,
    Verdict.EXHAUSTED: DeliveryStatus.FAILED,
    Verdict.FAILED: DeliveryStatus.FAILED,
}


async def record_attempt(
    *,
    session: AsyncSession,
    delivery: WebhookDelivery,
    result: AttemptResult,
    now: datetime,
    last_attempt: bool,
    retry_in: float,
) -> Verdict:
    """Store the attempt and decide what follows; disables the endpoint when it must."""
    webhook_id, organization_id = delivery.webhook_id, delivery.organization_id
    if result.succeeded:
        verdict = Verdict.SUCCEEDED
        # Any success, a redelivery's too, shows the receiver works: the streak is over.
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == webhook_id)
            .values(failing_since=None)
        )
    elif result.response_code == 410:
        verdict = Verdict.FAILED
        await disable(session, webhook_id, organization_id, reason=GONE_REASON, now=now)
    elif result.refused:
        verdict = Verdict.FAILED
    elif last_attempt:
        verdict = Verdict.EXHAUSTED
    else:
        verdict = Verdict.RETRY
    # Only deliveries of events count toward disabling; tests and redeliveries do not.
    counts = delivery.trigger == DeliveryTrigger.EVENT and result.response_code != 410
    if (
        verdict is not Verdict.SUCCEEDED
        and counts
        and await _note_failure(session, webhook_id, organization_id, now)
    ):
        verdict = Verdict.FAILED
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(
            status=_STATUS[verdict],
            attempts=WebhookDelivery.attempts + 1,
            response_code=result.response_code,
            response_excerpt=result.excerpt,
            error=result.error,
            duration_ms=result.duration_ms,
            last_attempt_at=now,
            next_retry_at=now + timedelta(seconds=retry_in) if verdict is Verdict.RETRY else None,
        )
    )
    return verdict


async def abandon(session: AsyncSession, delivery_id: str, reason: str) -> None:
    """End a delivery that will not be attempted (its endpoint was disabled meanwhile)."""
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, error=reason, next_retry_at=None)
    )


async def _note_failure(
    session: AsyncSession, webhook_id: str, organization_id: str, now: datetime
) -> bool:
    """Start or extend the endpoint's failure streak; True if that disabled it."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == webhook_id, WebhookEndpoint.failing_since.is_(None))
        .values(failing_since=now)
    )
    since = await session.scalar(
        select(WebhookEndpoint.failing_since).where(WebhookEndpoint.id == webhook_id)
    )
    if since is None or now - since < DISABLE_AFTER:
        return False
    return await disable(session, webhook_id, organization_id, reason=FAILING_REASON, now=now)


async def disable(
    session: AsyncSession, webhook_id: str, organization_id: str, *, reason: str, now: datetime
) -> bool:
    """Turn the endpoint off, audit it and tell the organization; False if it already was."""
    row = (
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == webhook_id, WebhookEndpoint.active.is_(True))
            .values(active=False, disabled_reason=reason, disabled_at=now)
            .returning(WebhookEndpoint.url)
        )
    ).first()
    if row is None:
        return False
    url = row[0]
    await audit.record(
        session,
        action="webhook.disabled",
        organization_id=organization_id,
        actor_id=None,
        target_id=webhook_id,
        details={"reason": reason, "url": url},
    )
    await emit(
        session,
        DISABLED_EVENT,
        {"webhook_id": webhook_id, "url": url, "reason": reason, "disabled_at": iso(now)},
        organization_id=organization_id,
    )
    return True
