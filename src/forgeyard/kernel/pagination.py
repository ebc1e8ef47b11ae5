"""The one list shape: ``?limit=&offset=`` in, ``{data, total, limit, offset}`` out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# Past this no list is that long, and databases refuse offsets beyond 64 bits anyway.
MAX_OFFSET = 1_000_000_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int = DEFAULT_LIMIT
    offset: int = 0


async def page_params(
    limit: Annotated[
        int, Query(ge=1, description=f"Items per page, 1 or more; above {MAX_LIMIT} is capped.")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=min(limit, MAX_LIMIT), offset=offset)


Pagination = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    data: list[T]
    total: int
    limit: int
    offset: int


async def paginate(
    session: AsyncSession, statement: Select[Any], params: PageParams
) -> tuple[list[Any], int]:
    """One page of ``statement``'s rows (first column) and the count of all of them."""
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    total = await session.scalar(counted)
    rows = await session.scalars(statement.limit(params.limit).offset(params.offset))
    return list(rows), int(total or 0)
