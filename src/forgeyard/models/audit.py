"""The audit log: who did what to what, kept apart from the tables it describes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin
from forgeyard.kernel.ids import PrefixedId, new_id


class AuditEvent(TimestampMixin, Base):
    __tablename__ = "audit_events"
    id: Mapped[str] = mapped_column(
        PrefixedId("aud"), primary_key=True, default=lambda: new_id("aud")
    )
    # No foreign keys: an audit line outlives the user, key or organization it names.
    organization_id: Mapped[str | None] = mapped_column(String(40), index=True)
    actor_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_id: Mapped[str | None] = mapped_column(String(40))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
