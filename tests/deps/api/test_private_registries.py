"""Private registries: kept with their secret encrypted and never shown, used by scans in
place of the instance's (the repository's own first), refused when malformed or private."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from forgeyard.kernel.db import Database
from forgeyard.models.deps import PackageRegistry
from tests.deps.api.flows import registered, scan, updates_of
from tests.identity.conftest import Tenants
from tests.processes import free_port
from tests.registries.harness import Verdaccio
from tests.repos.conftest import API, GitRepo, register, run_jobs

SECRET = "npm_s3cret-token"


async def test_a_registry_is_stored_encrypted_and_never_shown(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, npm_registry: Verdaccio
) -> None:
    response = await client.post(
        f"{API}/registries",
        json={"ecosystem": "npm", "url": f"{npm_registry.url}/", "secret": SECRET},
        headers=tenants.admin.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["has_secret"] is True
    assert SECRET not in response.text
    listed = await client.get(f"{API}/registries", headers=tenants.viewer.headers)
    assert listed.json()["total"] == 1
    assert SECRET not in listed.text
    async with database.transaction() as session:
        stored = await session.scalar(select(PackageRegistry.secret_encrypted))
    assert stored is not None
    assert SECRET not in stored

    again = await client.post(
        f"{API}/registries",
        json={"ecosystem": "npm", "url": f"{npm_registry.url}/"},
        headers=tenants.owner.headers,
    )
    assert again.status_code == 409


async def test_a_repositorys_own_registry_is_the_one_its_scan_asks(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, deps_repo)
    other = await register(client, owner, deps_repo.url, name="other")
    await run_jobs(database)
    nothing_listens = f"http://127.0.0.1:{free_port()}/simple/"
    response = await client.post(
        f"{API}/registries",
        json={"ecosystem": "pypi", "url": nothing_listens, "repo_id": repo_id},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text

    await scan(client, database, owner, repo_id)
    await scan(client, database, owner, other["id"])

    mine = await updates_of(client, owner, repo_id)
    theirs = await updates_of(client, owner, other["id"])
    assert mine["fy-alpha"]["registry_error"]
    assert mine["fy-left"]["candidate_version"] == "2.0.0"  # npm: still the instance's
    assert theirs["fy-alpha"]["candidate_version"] == "2.0.0"


async def test_bad_registries_are_refused_and_only_admins_add_them(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner
    for body, field in [
        ({"ecosystem": "cargo", "url": "https://93.184.215.14/"}, "ecosystem"),
        ({"ecosystem": "npm", "url": "ftp://93.184.215.14/"}, "url"),
        ({"ecosystem": "npm", "url": "https://10.0.0.8/npm/"}, "url"),
        ({"ecosystem": "npm", "url": "https://u:p@93.184.215.14/"}, "url"),
        ({"ecosystem": "npm", "url": "https://93.184.215.14/", "repo_id": "repo_nope"}, "repo"),
    ]:
        refused = await client.post(f"{API}/registries", json=body, headers=owner.headers)
        assert refused.status_code in (400, 404), refused.text
        assert field in refused.text
    member = await client.post(
        f"{API}/registries",
        json={"ecosystem": "npm", "url": "https://93.184.215.14/"},
        headers=tenants.member.headers,
    )
    assert member.status_code == 403
    assert (await client.get(f"{API}/registries", headers=owner.headers)).json()["total"] == 0


async def test_another_organizations_registry_answers_404(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    created = await client.post(
        f"{API}/registries",
        json={"ecosystem": "npm", "url": "https://93.184.215.14/"},
        headers=tenants.owner.headers,
    )
    registry_id = created.json()["id"]
    stranger = tenants.other_owner.headers
    assert (
        await client.delete(f"{API}/registries/{registry_id}", headers=stranger)
    ).status_code == 404
    assert (await client.get(f"{API}/registries", headers=stranger)).json()["total"] == 0
    mine = await client.delete(f"{API}/registries/{registry_id}", headers=tenants.owner.headers)
    assert mine.status_code == 204
