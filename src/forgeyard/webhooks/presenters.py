"""Rows into response shapes, in one place so no route can leak the secret by accident."""

from __future__ import annotations

from forgeyard.models.webhook import WebhookDelivery, WebhookEndpoint
from forgeyard.webhooks import schemas


def webhook_out(endpoint: WebhookEndpoint) -> schemas.WebhookOut:
    return schemas.WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        active=endpoint.active,
        description=endpoint.description,
        disabled_reason=endpoint.disabled_reason,
        disabled_at=endpoint.disabled_at,
        failing_since=endpoint.failing_since,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def delivery_out(delivery: WebhookDelivery) -> schemas.DeliveryOut:
    return schemas.DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        message_id=delivery.message_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        trigger=delivery.trigger,
        status=delivery.status,
        attempts=delivery.attempts,
        response_code=delivery.response_code,
        response_excerpt=delivery.response_excerpt,
        error=delivery.error,
        duration_ms=delivery.duration_ms,
        next_retry_at=delivery.next_retry_at,
        last_attempt_at=delivery.last_attempt_at,
        redelivery_of=delivery.redelivery_of,
        created_at=delivery.created_at,
    )
