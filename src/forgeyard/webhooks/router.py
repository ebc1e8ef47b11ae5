"""Outgoing webhook endpoints and their deliveries (seeds 000 and 001, API-MAP.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.webhook import DeliveryStatus
from forgeyard.webhooks import schemas, service
from forgeyard.webhooks.presenters import delivery_out, webhook_out

router = APIRouter(tags=["webhooks"])

ReadWebhooks = Annotated[Principal, Depends(require("webhooks:read"))]
ManageWebhooks = Annotated[Principal, Depends(require("webhooks:manage"))]


async def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(_client_ip)]


def _policy(runtime: AuthRuntime) -> OutboundPolicy:
    return OutboundPolicy.from_settings(runtime.settings.outbound)


@router.get("/webhooks")
async def list_webhooks(
    principal: ReadWebhooks, session: DbSession, page: Pagination
) -> Page[schemas.WebhookOut]:
    endpoints, total = await service.list_webhooks(session=session, who=principal, page=page)
    return Page(
        data=[webhook_out(e) for e in endpoints], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/webhooks", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: schemas.WebhookIn,
    principal: ManageWebhooks,
    session: DbSession,
    runtime: Runtime,
    ip: ClientIp,
) -> schemas.WebhookCreated:
    """Register an endpoint. The answer carries its signing secret: the only time it is shown."""
    endpoint, secret = await service.create_webhook(
        session=session,
        who=principal,
        box=runtime.secret_box,
        policy=_policy(runtime),
        url=body.url,
        events=body.events,
        secret=body.secret,
        description=body.description,
        ip=ip,
    )
    return schemas.WebhookCreated(**webhook_out(endpoint).model_dump(), secret=secret)


@router.get("/webhooks/{webhook_id}")
async def get_webhook(
    webhook_id: str, principal: ReadWebhooks, session: DbSession
) -> schemas.WebhookOut:
    return webhook_out(
        await service.get_webhook(session=session, who=principal, webhook_id=webhook_id)
    )


@router.patch("/webhooks/{webhook_id}")
async def update_webhook(
    webhook_id: str,
    body: schemas.WebhookPatch,
    principal: ManageWebhooks,
    session: DbSession,
    runtime: Runtime,
    ip: ClientIp,
) -> schemas.WebhookOut:
    endpoint = await service.update_webhook(
        session=session,
        who=principal,
        box=runtime.secret_box,
        policy=_policy(runtime),
        webhook_id=webhook_id,
        changes=body.model_dump(exclude_unset=True),
        ip=ip,
    )
    return webhook_out(endpoint)


@router.delete("/webhooks/{webhook_id}")
async def delete_webhook(
    webhook_id: str, principal: ManageWebhooks, session: DbSession, ip: ClientIp
) -> schemas.WebhookOut:
    """Delete the endpoint with its delivery log; answers with what was deleted."""
    endpoint = await service.delete_webhook(
        session=session, who=principal, webhook_id=webhook_id, ip=ip
    )
    return webhook_out(endpoint)


@router.post("/webhooks/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED)
async def test_webhook(
    webhook_id: str, principal: ManageWebhooks, session: DbSession
) -> schemas.DeliveryOut:
    """Queue a ``webhook.test`` message to this endpoint only; follow it in its deliveries."""
    return delivery_out(
        await service.send_test(session=session, who=principal, webhook_id=webhook_id)
    )


@router.get("/webhooks/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: str,
    principal: ReadWebhooks,
    session: DbSession,
    page: Pagination,
    status: Annotated[
        DeliveryStatus | None, Query(description="Only deliveries in this state.")
    ] = None,
) -> Page[schemas.DeliveryOut]:
    deliveries, total = await service.list_deliveries(
        session=session, who=principal, webhook_id=webhook_id, page=page, status=status
    )
    return Page(
        data=[delivery_out(d) for d in deliveries],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}")
async def get_delivery(
    webhook_id: str, delivery_id: str, principal: ReadWebhooks, session: DbSession
) -> schemas.DeliveryOut:
    return delivery_out(
        await service.get_delivery(
            session=session, who=principal, webhook_id=webhook_id, delivery_id=delivery_id
        )
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
)
async def redeliver(
    webhook_id: str, delivery_id: str, principal: ManageWebhooks, session: DbSession, ip: ClientIp
) -> schemas.DeliveryOut:
    """Send the message again as a new delivery: same webhook-id, signed with today's secret."""
    return delivery_out(
        await service.redeliver(
            session=session, who=principal, webhook_id=webhook_id, delivery_id=delivery_id, ip=ip
        )
    )
