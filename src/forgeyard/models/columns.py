"""The columns most tables share: a prefixed id, the owning organization, the repository."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.ids import PrefixedId, new_id


def prefixed_id(prefix: str) -> Mapped[str]:
    """The primary key: ``<prefix>_`` and a ULID, made on insert."""
    return mapped_column(PrefixedId(prefix), primary_key=True, default=lambda: new_id(prefix))


def organization() -> Mapped[str]:
    """The owning organization; its rows go with it."""
    return mapped_column(
        PrefixedId("org"), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )


def repository(*, index: bool = False) -> Mapped[str]:
    """The repository the row belongs to; its rows go with it."""
    return mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="CASCADE"), index=index
    )
