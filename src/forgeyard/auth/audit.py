"""Writing the audit log. Every domain records through here, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.models.audit import AuditEvent


async def record(
    session: AsyncSession,
    *,
    action: str,
    organization_id: str | None,
    actor_id: str | None,
    target_id: str | None = None,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        organization_id=organization_id,
        actor_id=actor_id,
        target_id=target_id,
        ip_address=ip_address,
        details=details or {},
    )
    session.add(event)
    await session.flush()
    return event
