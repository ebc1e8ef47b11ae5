"""Pipelines through the API: stored YAML validated with line and column, a repository's
file by path, validation without saving, tenancy and roles."""

from __future__ import annotations

from typing import Any

import httpx

from tests.identity.conftest import Account, Tenants

API = "/api/v1"
PIPELINE = """\
triggers:
  push: {branches: ["main"]}
steps:
  - name: test
    commands: ["pytest -q"]
  - name: build
    commands: "python -m build"
artifacts: ["dist/*.whl"]
"""
TYPO = """\
steps:
  - name: test
    comands: ["pytest -q"]
"""


async def project_of(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post(f"{API}/projects", json={"name": "Web"}, headers=account.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def create(
    client: httpx.AsyncClient, account: Account, project_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/projects/{project_id}/pipelines", json=body, headers=account.headers
    )


async def test_a_stored_pipeline_is_kept_listed_changed_and_deleted(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner
    project_id = await project_of(client, owner)

    created = await create(client, tenants.member, project_id, name="ci", content=PIPELINE)

    assert created.status_code == 201, created.text
    pipeline = created.json()
    assert pipeline["source"] == "stored"
    assert pipeline["summary"]["steps"] == ["test", "build"]
    assert pipeline["summary"]["triggers"]["push"] is True
    listed = await client.get(
        f"{API}/projects/{project_id}/pipelines", headers=tenants.viewer.headers
    )
    assert [p["name"] for p in listed.json()["data"]] == ["ci"]
    changed = await client.patch(
        f"{API}/pipelines/{pipeline['id']}",
        json={"content": PIPELINE.replace("python -m build", "make wheel")},
        headers=owner.headers,
    )
    assert changed.status_code == 200
    assert "make wheel" in changed.json()["content"]
    deleted = await client.delete(f"{API}/pipelines/{pipeline['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"{API}/pipelines/{pipeline['id']}", headers=owner.headers)
    assert gone.status_code == 404


async def test_invalid_yaml_is_refused_with_its_line_and_nothing_changes(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner
    project_id = await project_of(client, owner)

    refused = await create(client, owner, project_id, name="ci", content=TYPO)

    assert refused.status_code == 400
    body = refused.json()
    assert body["code"] == "invalid_input"
    issues = body["details"]["errors"]
    assert any(i["line"] == 3 and "did you mean 'commands'" in i["message"] for i in issues), issues
    created = await create(client, owner, project_id, name="ci", content=PIPELINE)
    pipeline_id = created.json()["id"]
    patched = await client.patch(
        f"{API}/pipelines/{pipeline_id}", json={"content": "steps: [\n"}, headers=owner.headers
    )
    assert patched.status_code == 400
    assert "line" in patched.json()["details"]["errors"][0]
    kept = await client.get(f"{API}/pipelines/{pipeline_id}", headers=owner.headers)
    assert kept.json()["content"] == PIPELINE


async def test_validate_reports_without_saving(client: httpx.AsyncClient, tenants: Tenants) -> None:
    url = f"{API}/pipelines/validate"
    viewer = tenants.viewer.headers
    good = await client.post(url, json={"content": PIPELINE}, headers=viewer)
    bad = await client.post(url, json={"content": "steps:\n  - name: empty\n"}, headers=viewer)
    missing = await client.post(url, json={}, headers=viewer)

    assert good.json() == {"valid": True, "errors": [], "steps": ["test", "build"]}
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    assert bad.json()["errors"][0]["line"] == 2
    assert "command" in bad.json()["errors"][0]["message"]
    assert missing.status_code == 400


async def test_a_repository_pipeline_names_its_file_and_refuses_content(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner
    project_id = await project_of(client, owner)
    repo = await client.post(
        f"{API}/repos",
        json={"clone_url": "https://93.184.215.14/acme/web.git", "project_id": project_id},
        headers=owner.headers,
    )
    created = await create(client, owner, project_id, name="ci", repository_id=repo.json()["id"])

    assert created.status_code == 201, created.text
    assert created.json()["path"] == ".forgeyard.yml"
    assert created.json()["summary"] is None
    content = await client.patch(
        f"{API}/pipelines/{created.json()['id']}",
        json={"content": PIPELINE},
        headers=owner.headers,
    )
    assert content.status_code == 400
    assert content.json()["details"]["field"] == "content"
    for body, field in [
        ({"name": "x"}, "content"),
        ({"name": "x", "content": PIPELINE, "repository_id": repo.json()["id"]}, "content"),
        ({"name": "x", "repository_id": "repo_nope"}, "repository_id"),
        ({"name": "x", "repository_id": repo.json()["id"], "path": "../etc/passwd"}, "path"),
        ({"name": "", "content": PIPELINE}, "name"),
        ({"name": "ci", "content": PIPELINE}, "name"),  # taken
    ]:
        refused = await create(client, owner, project_id, **body)
        assert refused.status_code in (400, 409), refused.text
        assert field in refused.text


async def test_another_organizations_pipelines_answer_404_and_viewers_may_not_write(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    project_id = await project_of(client, tenants.owner)
    created = await create(client, tenants.owner, project_id, name="ci", content=PIPELINE)
    pipeline_id = created.json()["id"]
    stranger = tenants.other_owner.headers

    assert (await client.get(f"{API}/pipelines/{pipeline_id}", headers=stranger)).status_code == 404
    listed = await client.get(f"{API}/projects/{project_id}/pipelines", headers=stranger)
    assert listed.status_code == 404
    foreign = await create(client, tenants.other_owner, project_id, name="x", content=PIPELINE)
    assert foreign.status_code == 404
    viewer = await create(client, tenants.viewer, project_id, name="x", content=PIPELINE)
    assert viewer.status_code == 403
    member_delete = await client.delete(
        f"{API}/pipelines/{pipeline_id}", headers=tenants.member.headers
    )
    assert member_delete.status_code == 403
    assert (await client.get(f"{API}/pipelines/pip_nope", headers=stranger)).status_code == 404
    bad_page = await client.get(
        f"{API}/projects/{project_id}/pipelines?limit=0", headers=tenants.owner.headers
    )
    assert bad_page.status_code == 400
