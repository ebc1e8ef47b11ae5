"""Request and response shapes of the webhook endpoints. No secret appears in a response,
except once, in the answer to its creation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from forgeyard.webhooks.signing import check_secret

# The events an endpoint may subscribe to; "*" is every event, present and future.
EVENT_TYPES = frozenset(
    {
        "job.completed",
        "job.failed",
        "pr.created",
        "pr.merged",
        "analysis.completed",
        "analysis.failed",
        "analysis.gate_failed",
        "repo.registered",
        "repo.pushed",
        "build.finished",
        "incident.created",
        "webhook.test",
        "webhook.disabled",
    }
)
ALL_EVENTS = "*"
MAX_EVENTS = 50


def _known_event(value: str) -> str:
    if value != ALL_EVENTS and value not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValueError(f"unknown event type {value!r}; known: {ALL_EVENTS}, {known}")
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EventName = Annotated[str, Field(max_length=64), AfterValidator(_known_event)]
EventList = Annotated[
    list[EventName], Field(min_length=1, max_length=MAX_EVENTS), AfterValidator(_unique)
]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Secret = Annotated[str, Field(max_length=200), AfterValidator(check_secret)]
Description = Annotated[str, Field(max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookIn(Strict):
    url: Url = Field(description="http:// or https:// URL that receives the POSTs.")
    events: EventList = Field(description=f'Event types, or "{ALL_EVENTS}" for all of them.')
    secret: Secret | None = Field(
        default=None, description="A whsec_ signing secret; one is generated when left out."
    )
    description: Description | None = None


class WebhookPatch(Strict):
    url: Url | None = None
    events: EventList | None = None
    active: bool | None = Field(
        default=None, description="false pauses deliveries; true re-enables and forgets failures."
    )
    secret: Secret | None = Field(
        default=None, description="A new whsec_ secret; later deliveries are signed with it."
    )
    description: Description | None = None  # null clears it

    @field_validator("url", "events", "active", "secret")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for fields the client sent: leaving one out keeps it, null is a mistake.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    active: bool
    description: str | None
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret. Shown this once; store it now.")


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    message_id: str = Field(description="The webhook-id header: constant across retries.")
    event_id: str | None
    event_type: str
    trigger: str = Field(description="event, test or redelivery.")
    status: str = Field(description="pending, succeeded or failed.")
    attempts: int
    response_code: int | None
    response_excerpt: str | None
    error: str | None
    duration_ms: int | None
    next_retry_at: datetime | None
    last_attempt_at: datetime | None
    redelivery_of: str | None
    created_at: datetime
