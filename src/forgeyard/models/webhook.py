"""Outgoing webhooks: the endpoints an organization registers and every delivery to them.

A delivery is one message sent to one endpoint. Its ``message_id`` is the Standard Webhooks
``webhook-id``: the same across the retries of a delivery and across redeliveries of the
message, so a receiver can drop the duplicates.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime
from forgeyard.kernel.ids import PrefixedId, new_id


class DeliveryStatus(StrEnum):
    """pending -> succeeded or failed, and no further: every update is guarded by pending."""

    PENDING = "pending"  # not sent yet, or waiting for its next retry
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # no attempt will follow


class DeliveryTrigger(StrEnum):
    EVENT = "event"  # a domain event fanned out to the endpoint
    TEST = "test"  # POST /webhooks/{id}/test
    REDELIVERY = "redelivery"  # POST .../deliveries/{id}/redeliver


class WebhookEndpoint(TimestampMixin, Base):
    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(
        PrefixedId("wh"), primary_key=True, default=lambda: new_id("wh")
    )
    organization_id: Mapped[str] = mapped_column(
        PrefixedId("org"), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    # Event types, or "*" for every event.
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The whsec_ signing secret, encrypted with the instance's SecretBox.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Start of the current run of failed event deliveries; None after any success.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[str | None] = mapped_column(String(40))


class WebhookDelivery(TimestampMixin, Base):
    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(
        PrefixedId("whd"), primary_key=True, default=lambda: new_id("whd")
    )
    organization_id: Mapped[str] = mapped_column(
        PrefixedId("org"), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    webhook_id: Mapped[str] = mapped_column(
        PrefixedId("wh"), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(PrefixedId("msg"), index=True)
    # No foreign key: events are purged by retention, their deliveries keep the payload.
    event_id: Mapped[str | None] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16), default=DeliveryTrigger.EVENT)
    # The exact message sent (re-sent as is by a redelivery).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redelivery_of: Mapped[str | None] = mapped_column(String(40))
    # "<event id>:<webhook id>" for event deliveries: a subscriber run twice adds no duplicate.
    event_key: Mapped[str | None] = mapped_column(String(80), unique=True)

    # Retention cleanup deletes by age.
    __table_args__ = (Index("ix_webhook_deliveries_created_at", "created_at"),)
