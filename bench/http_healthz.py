"""``GET /healthz``: the floor of every request, what the app adds before any real work."""

from __future__ import annotations

from bench.harness import Session, compare
from bench.model import Row

NAME = "healthz"


def run(session: Session) -> list[Row]:
    """Forgeyard's liveness probe against the bare app's identical ``{"ok":true}``."""
    return compare(NAME, "/healthz", session)
