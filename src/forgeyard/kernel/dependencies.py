"""FastAPI dependencies that every router shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.kernel.db import Database


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one session: committed when the handler succeeds, rolled back if not.

    Declared with ``scope="function"`` below so the commit happens before the response is
    sent: a client never sees success for work that then fails to commit.
    """
    database: Database = request.app.state.database
    async with database.transaction() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_database(request: Request) -> Database:
    """The database itself, for work that outlives one transaction (a live stream)."""
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]
