"""Outgoing webhooks: endpoints, their deliveries, tests and redeliveries.

Functions take keyword arguments, scope every query to the caller's organization, flush and
never commit. Other domains do not call these to send webhooks: they emit domain events
(``forgeyard.jobs.emit``), and the ``webhooks`` subscriber turns each into deliveries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.principals import Principal
from forgeyard.kernel.crypto import SecretBox
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import NotFoundError
from forgeyard.kernel.http import BlockedDestinationError, OutboundPolicy, resolve_and_check
from forgeyard.kernel.ids import is_valid_id, new_id
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.webhook import (
    DeliveryStatus,
    DeliveryTrigger,
    WebhookDelivery,
    WebhookEndpoint,
)
from forgeyard.webhooks import delivery
from forgeyard.webhooks.signing import generate_secret

TEST_EVENT = "webhook.test"
PAUSED_REASON = "paused by a user"


def _not_found(kind: str, id_: str) -> NotFoundError:
    return NotFoundError(f"{kind} {id_} not found")


async def _check_url(url: str, policy: OutboundPolicy) -> None:
    """Only public http(s) destinations (or the operator's allow-list), judged by address."""
    try:
        await resolve_and_check(url, policy, field="url")
    except BlockedDestinationError as exc:
        exc.details["field"] = "url"
        raise


async def list_webhooks(
    *, session: AsyncSession, who: Principal, page: PageParams
) -> tuple[list[WebhookEndpoint], int]:
    statement = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.organization_id == who.organization_id)
        .order_by(WebhookEndpoint.id)
    )
    return await paginate(session, statement, page)


async def get_webhook(*, session: AsyncSession, who: Principal, webhook_id: str) -> WebhookEndpoint:
    # Another organization's id answers exactly like one that does not exist.
    endpoint = (
        await session.scalar(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == webhook_id,
                WebhookEndpoint.organization_id == who.organization_id,
            )
        )
        if is_valid_id("wh", webhook_id)
        else None
    )
    if endpoint is None:
        raise _not_found("webhook", webhook_id)
    return endpoint


async def create_webhook(
    *,
    session: AsyncSession,
    who: Principal,
    box: SecretBox,
    policy: OutboundPolicy,
    url: str,
    events: list[str],
    secret: str | None,
    description: str | None,
    ip: str | None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (the only time the secret is handed out)."""
    await _check_url(url, policy)
    secret = secret or generate_secret()
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        organization_id=who.organization_id,
        url=url,
        events=events,
        description=description,
        secret_encrypted=box.encrypt(secret),
        active=True,
        created_by_id=who.actor_id or None,
    )
    session.add(endpoint)
    await session.flush()
    await audit.record(
        session,
        action="webhook.created",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=endpoint.id,
        ip_address=ip,
        details={"url": url, "events": events},
    )
    return endpoint, secret


async def update_webhook(
    *,
    session: AsyncSession,
    who: Principal,
    box: SecretBox,
    policy: OutboundPolicy,
    webhook_id: str,
    changes: dict[str, Any],
    ip: str | None,
) -> WebhookEndpoint:
    """Apply the fields in ``changes`` (url, events, active, secret, description)."""
    endpoint = await get_webhook(session=session, who=who, webhook_id=webhook_id)
    if "url" in changes:
        await _check_url(changes["url"], policy)
        endpoint.url = changes["url"]
    if "events" in changes:
        endpoint.events = changes["events"]
    if "description" in changes:
        endpoint.description = changes["description"]
    if "secret" in changes:
        endpoint.secret_encrypted = box.encrypt(changes["secret"])
    if changes.get("active") is True and not endpoint.active:
        # Re-enabled: whatever failed before is forgotten.
        endpoint.active = True
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
    elif changes.get("active") is False and endpoint.active:
        endpoint.active = False
        endpoint.disabled_reason, endpoint.disabled_at = PAUSED_REASON, utcnow()
    await session.flush()
    await session.refresh(endpoint)  # updated_at, as stored
    await audit.record(
        session,
        action="webhook.updated",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=endpoint.id,
        ip_address=ip,
        # The names of what changed; never the secret itself.
        details={"fields": sorted(changes)},
    )
    return endpoint


async def delete_webhook(
    *, session: AsyncSession, who: Principal, webhook_id: str, ip: str | None
) -> WebhookEndpoint:
    """Delete the endpoint and its deliveries; queued attempts find nothing and stop."""
    endpoint = await get_webhook(session=session, who=who, webhook_id=webhook_id)
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == endpoint.id))
    await session.delete(endpoint)
    await session.flush()
    await audit.record(
        session,
        action="webhook.deleted",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=endpoint.id,
        ip_address=ip,
        details={"url": endpoint.url},
    )
    return endpoint


async def send_test(*, session: AsyncSession, who: Principal, webhook_id: str) -> WebhookDelivery:
    """Queue a ``webhook.test`` message to this endpoint alone (also when it is disabled)."""
    endpoint = await get_webhook(session=session, who=who, webhook_id=webhook_id)
    message = {
        "id": new_id("evt"),
        "type": TEST_EVENT,
        "organization_id": endpoint.organization_id,
        "created_at": delivery.iso(utcnow()),
        "data": {"webhook_id": endpoint.id, "message": "A test event sent from Forgeyard."},
    }
    test = delivery.new_delivery(endpoint, message, trigger=DeliveryTrigger.TEST)
    session.add(test)
    await session.flush()
    await delivery.schedule(session, test)
    return test


async def get_delivery(
    *, session: AsyncSession, who: Principal, webhook_id: str, delivery_id: str
) -> WebhookDelivery:
    endpoint = await get_webhook(session=session, who=who, webhook_id=webhook_id)
    return await _delivery_of(session, endpoint, delivery_id)


async def _delivery_of(
    session: AsyncSession, endpoint: WebhookEndpoint, delivery_id: str
) -> WebhookDelivery:
    found = (
        await session.scalar(
            select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.webhook_id == endpoint.id,
            )
        )
        if is_valid_id("whd", delivery_id)
        else None
    )
    if found is None:
        raise _not_found("delivery", delivery_id)
    return found


async def list_deliveries(
    *,
    session: AsyncSession,
    who: Principal,
    webhook_id: str,
    page: PageParams,
    status: DeliveryStatus | None = None,
) -> tuple[list[WebhookDelivery], int]:
    """The endpoint's deliveries, newest first."""
    endpoint = await get_webhook(session=session, who=who, webhook_id=webhook_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.webhook_id == endpoint.id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    return await paginate(session, statement.order_by(WebhookDelivery.id.desc()), page)


async def redeliver(
    *, session: AsyncSession, who: Principal, webhook_id: str, delivery_id: str, ip: str | None
) -> WebhookDelivery:
    """Send a delivery's message again, as a new delivery with the same ``webhook-id``.

    Signed at send time, so with the endpoint's current secret; one attempt, which does not
    count toward disabling the endpoint.
    """
    endpoint = await get_webhook(session=session, who=who, webhook_id=webhook_id)
    original = await _delivery_of(session, endpoint, delivery_id)
    again = delivery.new_delivery(
        endpoint,
        original.payload,
        trigger=DeliveryTrigger.REDELIVERY,
        message_id=original.message_id,
        redelivery_of=original.id,
    )
    again.event_id = original.event_id
    session.add(again)
    await session.flush()
    await delivery.schedule(session, again)
    await audit.record(
        session,
        action="webhook.redelivered",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=again.id,
        ip_address=ip,
        details={"webhook_id": endpoint.id, "redelivery_of": original.id},
    )
    return again


async def purge_deliveries(
    *, session: AsyncSession, before: datetime, organization_id: str | None = None
) -> int:
    """Delete finished deliveries created before ``before`` (retention cleanup)."""
    statement = (
        delete(WebhookDelivery)
        .where(
            WebhookDelivery.created_at < before,
            WebhookDelivery.status != DeliveryStatus.PENDING,
        )
        .returning(WebhookDelivery.id)
    )
    if organization_id is not None:
        statement = statement.where(WebhookDelivery.organization_id == organization_id)
    return len((await session.execute(statement)).all())
