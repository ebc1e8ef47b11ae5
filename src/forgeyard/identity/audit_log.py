"""Reading the audit log of the caller's organization, newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.audit import AuditEvent


async def list_events(
    *, session: AsyncSession, who: Principal, page: PageParams, action: str | None
) -> tuple[list[AuditEvent], int]:
    statement = select(AuditEvent).where(AuditEvent.organization_id == who.organization_id)
    if action:
        statement = statement.where(AuditEvent.action == action)
    return await paginate(session, statement.order_by(AuditEvent.id.desc()), page)
