"""Projects: CRUD, the one-query rollup, bad input and another organization's ids."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import event

from forgeyard.kernel.db import Database
from tests.identity.conftest import Tenants
from tests.repos.conftest import API, GitRepo, analyse, register, run_jobs


async def _project(client: httpx.AsyncClient, tenants: Tenants, name: str = "Platform") -> dict:
    response = await client.post(
        f"{API}/projects",
        json={"name": name, "description": "the platform team's services"},
        headers=tenants.member.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_projects_are_created_listed_renamed_and_deleted(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    project = await _project(client, tenants)
    assert project["name"] == "Platform"
    assert project["repository_count"] == 0
    headers = tenants.viewer.headers

    listed = (await client.get(f"{API}/projects", headers=headers)).json()
    assert [p["id"] for p in listed["data"]] == [project["id"]]
    assert listed["total"] == 1

    renamed = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "Core"}, headers=tenants.member.headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Core"
    assert renamed.json()["description"] == "the platform team's services"

    # Members change things; only owners and admins delete them.
    refused = await client.delete(f"{API}/projects/{project['id']}", headers=tenants.member.headers)
    assert refused.status_code == 403
    gone = await client.delete(f"{API}/projects/{project['id']}", headers=tenants.admin.headers)
    assert gone.status_code == 204
    missing = await client.get(f"{API}/projects/{project['id']}", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "../etc"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "owner": "me"}, "owner"),
    ],
)
async def test_a_bad_project_is_refused_by_field(
    client: httpx.AsyncClient, tenants: Tenants, body: dict, field: str
) -> None:
    response = await client.post(f"{API}/projects", json=body, headers=tenants.owner.headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"
    assert field in str(response.json()["details"])
    listed = (await client.get(f"{API}/projects", headers=tenants.owner.headers)).json()
    assert listed["total"] == 0, "nothing half-written"


async def test_a_project_name_is_unique_in_an_organization(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    await _project(client, tenants)
    again = await client.post(
        f"{API}/projects", json={"name": "Platform"}, headers=tenants.owner.headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    # Another organization may use the same name.
    theirs = await client.post(
        f"{API}/projects", json={"name": "Platform"}, headers=tenants.other_owner.headers
    )
    assert theirs.status_code == 201


async def test_another_organizations_project_is_not_found(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    project = await _project(client, tenants)
    headers = tenants.other_owner.headers
    for method, path in [
        ("GET", f"/projects/{project['id']}"),
        ("GET", f"/projects/{project['id']}/rollup"),
        ("PATCH", f"/projects/{project['id']}"),
        ("DELETE", f"/projects/{project['id']}"),
    ]:
        body = {"name": "Stolen"} if method == "PATCH" else None
        response = await client.request(method, API + path, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
    still = await client.get(f"{API}/projects/{project['id']}", headers=tenants.owner.headers)
    assert still.json()["name"] == "Platform"


async def test_the_rollup_shows_each_repository_latest_analysis_in_one_query(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    git_repo: GitRepo,
    tmp_path,
) -> None:
    project = await _project(client, tenants)
    owner = tenants.owner
    analysed = await register(client, owner, git_repo.url, name="api", project_id=project["id"])
    await register(client, owner, git_repo.url, name="web", project_id=project["id"])
    await register(client, owner, git_repo.url, name="elsewhere")
    await run_jobs(database)
    done = await analyse(client, database, owner, analysed["id"])

    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "repositories" in statement:
            statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        response = await client.get(f"{API}/projects/{project['id']}/rollup", headers=owner.headers)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    rollup = response.json()
    assert [r["name"] for r in rollup["repositories"]] == ["api", "web"]
    api, web = rollup["repositories"]
    assert api["health_score"] == done["health_score"]
    assert api["grade"] == done["grade"]
    assert api["open_findings"] == done["open_findings"]
    assert sum(api["open_findings"].values())
    assert web["health_score"] is None
    assert web["open_findings"] == {}
    assert rollup["open_findings"]["critical"] == done["open_findings"].get("critical", 0)
    assert rollup["project"]["repository_count"] == 2
    joined = [s for s in statements if "analyses" in s]
    assert len(joined) == 1, "one query joins repositories with their latest analysis"
