"""Detection through the API: a repository pinned to old releases on the local registries,
the updates found with their categories, and the settings that block them."""

from __future__ import annotations

import json

import httpx

from forgeyard.kernel.db import Database
from forgeyard.settings import Settings
from tests.deps.api.flows import registered, scan, updates_of
from tests.identity.conftest import Tenants
from tests.registries.harness import Answer, scripted_server
from tests.repos.conftest import API, GitRepo


async def test_a_scan_finds_exactly_the_expected_updates(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, deps_repo)

    updates = await updates_of(client, owner, repo_id)

    assert {
        name: (u["current_version"], u["candidate_version"]) for name, u in updates.items()
    } == {
        "fy-alpha": ("1.0.0", "2.0.0"),  # 2.1.0rc1 is a prerelease: never proposed from 1.0.0
        "fy-left": ("1.0.0", "2.0.0"),  # 3.0.0-beta.1 likewise
    }
    assert updates["fy-alpha"]["category"] == "major"
    assert updates["fy-alpha"]["age_days"] is None  # pypiserver serves no dates
    assert updates["fy-left"]["released_at"] is not None  # npm's `time` does
    assert not any(u["blocked"] for u in updates.values())
    detail = await client.get(f"{API}/repos/{repo_id}", headers=owner.headers)
    listed = {d["name"]: d for d in detail.json()["dependencies"]}
    assert set(listed) == {"fy-alpha", "fy-beta", "fy-left", "@fy/right"}
    assert listed["fy-alpha"]["latest_allowed"] == "2.0.0"
    assert listed["fy-beta"]["update_id"] is None


async def test_exclude_skip_and_pin_block_the_right_updates(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, deps_repo)
    response = await client.put(
        f"{API}/repos/{repo_id}/settings",
        json={"exclude_packages": ["fy-l*"], "min_release_age": 3},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    detail = (await client.get(f"{API}/repos/{repo_id}", headers=owner.headers)).json()
    alpha = next(d for d in detail["dependencies"] if d["name"] == "fy-alpha")
    response = await client.patch(
        f"{API}/deps/{alpha['id']}/settings",
        json={"pin": "<2", "pin_reason": "2.x breaks the importer"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["pin"] == "<2"

    await scan(client, database, owner, repo_id)
    updates = await updates_of(client, owner, repo_id)

    assert updates["fy-left"]["blocked"]
    assert any("fy-l*" in reason for reason in updates["fy-left"]["blocked_reasons"])
    alpha_update = updates["fy-alpha"]
    assert alpha_update["blocked"]
    assert any("pinned to <2" in r and "importer" in r for r in alpha_update["blocked_reasons"])
    # pypiserver serves no dates, so the cooldown cannot be checked and says so.
    assert any("age unknown" in r for r in alpha_update["blocked_reasons"])

    response = await client.patch(
        f"{API}/deps/{alpha['id']}/settings", json={"skip": True}, headers=owner.headers
    )
    assert response.status_code == 200
    await scan(client, database, owner, repo_id)
    skipped = (await updates_of(client, owner, repo_id))["fy-alpha"]
    assert skipped["blocked"]
    assert any("skip" in r for r in skipped["blocked_reasons"])


async def test_a_failing_registry_is_reported_and_the_others_proceed(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    deps_repo: GitRepo,
    settings: Settings,
    pypi_index: str,
) -> None:
    owner = tenants.owner
    upstream = pypi_index.removesuffix("/simple/")
    broken = {"/simple/fy-alpha/": [Answer(500)] * 10}
    with scripted_server(upstream, broken) as server:
        settings.deps.pypi_index_url = f"{server.url}/simple/"
        repo_id = await registered(client, database, owner, deps_repo)
    updates = await updates_of(client, owner, repo_id)

    assert updates["fy-alpha"]["candidate_version"] is None
    assert "500" in updates["fy-alpha"]["registry_error"]
    assert updates["fy-left"]["candidate_version"] == "2.0.0"  # npm was not held up


async def test_bad_input_is_refused_with_the_field_named(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, deps_repo)
    detail = (await client.get(f"{API}/repos/{repo_id}", headers=owner.headers)).json()
    left = next(d for d in detail["dependencies"] if d["name"] == "fy-left")

    bad_pin = await client.patch(
        f"{API}/deps/{left['id']}/settings", json={"pin": "not a range!"}, headers=owner.headers
    )
    unknown_field = await client.patch(
        f"{API}/deps/{left['id']}/settings", json={"freeze": True}, headers=owner.headers
    )
    bad_category = await client.get(f"{API}/updates?category=huge", headers=owner.headers)
    missing = await client.get(f"{API}/updates/upd_nope", headers=owner.headers)
    bad_scan = await client.post(f"{API}/updates/scan", json={}, headers=owner.headers)

    assert bad_pin.status_code == 400
    assert bad_pin.json()["details"]["field"] == "pin"
    assert unknown_field.status_code == 400
    assert unknown_field.json()["code"] == "invalid_input"
    assert bad_category.status_code == 400
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert bad_scan.status_code == 400
    settings_after = (await client.get(f"{API}/repos/{repo_id}", headers=owner.headers)).json()
    assert next(d for d in settings_after["dependencies"] if d["name"] == "fy-left")["pin"] is None


async def test_another_organizations_updates_and_dependencies_answer_404(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    repo_id = await registered(client, database, tenants.owner, deps_repo)
    updates = await updates_of(client, tenants.owner, repo_id)
    detail = (await client.get(f"{API}/repos/{repo_id}", headers=tenants.owner.headers)).json()
    stranger = tenants.other_owner.headers

    update = await client.get(f"{API}/updates/{updates['fy-left']['id']}", headers=stranger)
    dep = await client.patch(
        f"{API}/deps/{detail['dependencies'][0]['id']}/settings",
        json={"skip": True},
        headers=stranger,
    )
    listed = await client.get(f"{API}/updates?repo_id={repo_id}", headers=stranger)

    assert update.status_code == 404
    assert dep.status_code == 404
    assert listed.json()["total"] == 0
    viewer = await client.patch(
        f"{API}/deps/{detail['dependencies'][0]['id']}/settings",
        json={"skip": True},
        headers=tenants.viewer.headers,
    )
    assert viewer.status_code == 403


async def test_a_manifest_that_cannot_be_read_keeps_what_was_known_and_says_so(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, deps_repo)
    detail = (await client.get(f"{API}/repos/{repo_id}", headers=owner.headers)).json()
    alpha = next(d for d in detail["dependencies"] if d["name"] == "fy-alpha")
    await client.patch(
        f"{API}/deps/{alpha['id']}/settings", json={"skip": True}, headers=owner.headers
    )
    deps_repo.commit({"requirements.txt": "fy-alpha==1.0.0\nthis is not a requirement\n"})

    await scan(client, database, owner, repo_id)

    after = (await client.get(f"{API}/repos/{repo_id}", headers=owner.headers)).json()
    kept = next(d for d in after["dependencies"] if d["name"] == "fy-alpha")
    assert kept["id"] == alpha["id"]
    assert kept["skip"] is True
    assert after["dependency_count"] == 2  # what the readable package.json declares
    events = await client.get(f"{API}/repos/{repo_id}/events", headers=owner.headers)
    scanned = [e for e in events.json()["data"] if e["kind"] == "dependencies_scanned"]
    assert "could not read requirements.txt" in scanned[0]["message"]
    assert "requirements.txt" in scanned[0]["data"]["manifest_errors"]


def _json(document: object) -> Answer:
    return Answer(
        200, headers=(("Content-Type", "application/json"),), body=json.dumps(document).encode()
    )


async def test_a_vulnerability_the_registry_lists_makes_a_security_update(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    deps_repo: GitRepo,
    settings: Settings,
    pypi_index: str,
) -> None:
    """PyPI's JSON API lists advisories per release; pypiserver has no JSON API, so the
    scripted server in front of it answers those paths as PyPI does."""
    uploaded = {"upload_time_iso_8601": "2026-01-02T03:04:05Z", "yanked": False}
    releases = {"1.0.0": [uploaded], "1.1.0": [uploaded], "2.0.0": [uploaded]}
    advisory = {
        "id": "PYSEC-2099-7",
        "aliases": ["CVE-2099-7"],
        "summary": "remote code execution in the importer",
        "fixed_in": ["1.1.0"],
    }
    scripts = {
        "/pypi/fy-alpha/json": [_json({"releases": releases})],
        "/pypi/fy-beta/json": [_json({"releases": {"0.1.0": [uploaded]}})],
        "/pypi/fy-alpha/1.0.0/json": [_json({"vulnerabilities": [advisory]})],
    }
    upstream = pypi_index.removesuffix("/simple/")
    with scripted_server(upstream, scripts) as server:
        settings.deps.pypi_index_url = f"{server.url}/simple/"
        repo_id = await registered(client, database, tenants.owner, deps_repo)
        asked = server.hits["/pypi/fy-alpha/1.0.0/json"]
    alpha = (await updates_of(client, tenants.owner, repo_id))["fy-alpha"]

    assert asked >= 1
    assert alpha["category"] == "security"
    assert [a["id"] for a in alpha["advisories"]] == ["PYSEC-2099-7"]
    assert alpha["advisories"][0]["aliases"] == ["CVE-2099-7"]
    assert alpha["released_at"] is not None  # dates from the JSON API, as PyPI serves them


async def test_an_ecosystem_with_no_registry_configured_says_so(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    deps_repo: GitRepo,
    settings: Settings,
) -> None:
    settings.deps.npm_registry_url = None
    repo_id = await registered(client, database, tenants.owner, deps_repo)
    updates = await updates_of(client, tenants.owner, repo_id)

    assert updates["fy-left"]["registry_error"] == "no npm registry is configured"
    assert updates["fy-alpha"]["candidate_version"] == "2.0.0"
