"""The list shape: ?limit=&offset= in, {data, total, limit, offset} out, on both databases."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import literal, select, union_all

from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.pagination import MAX_LIMIT, Page, Pagination, paginate

ROWS = 130


@pytest.fixture
def numbers(app: FastAPI) -> FastAPI:
    """A list endpoint over 130 numbered rows, built the way every real list endpoint is."""
    rows = union_all(*(select(literal(n).label("n")) for n in range(ROWS))).subquery()

    @app.get("/_test/numbers")
    async def list_numbers(session: DbSession, page: Pagination) -> Page[int]:
        data, total = await paginate(session, select(rows.c.n).order_by(rows.c.n), page)
        return Page(data=data, total=total, limit=page.limit, offset=page.offset)

    return app


@pytest.mark.usefixtures("numbers")
async def test_default_page_is_the_first_fifty(client: httpx.AsyncClient) -> None:
    body = (await client.get("/_test/numbers")).json()
    assert body["data"] == list(range(50))
    assert (body["total"], body["limit"], body["offset"]) == (ROWS, 50, 0)


@pytest.mark.usefixtures("numbers")
async def test_limit_and_offset_select_the_page(client: httpx.AsyncClient) -> None:
    body = (await client.get("/_test/numbers", params={"limit": 7, "offset": 125})).json()
    assert body["data"] == [125, 126, 127, 128, 129]
    assert (body["total"], body["limit"], body["offset"]) == (ROWS, 7, 125)


@pytest.mark.usefixtures("numbers")
async def test_limit_above_the_maximum_is_capped(client: httpx.AsyncClient) -> None:
    body = (await client.get("/_test/numbers", params={"limit": 5000})).json()
    assert body["limit"] == MAX_LIMIT
    assert body["data"] == list(range(MAX_LIMIT))


@pytest.mark.usefixtures("numbers")
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"limit": "x"}, "query.limit"),
    ],
)
async def test_bad_page_parameters_are_400_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    response = await client.get("/_test/numbers", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert [f["field"] for f in response.json()["details"]["fields"]] == [field]
