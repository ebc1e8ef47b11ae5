"""Bad input to builds, runners and logs: each answer names what was wrong and changes
nothing; runner tokens speak only for their own runner; another organization sees 404."""

from __future__ import annotations

import httpx
import pytest

from forgeyard.kernel.db import Database
from tests.ci.builds.flows import API, claim, project_with_repo, register_runner, start_build
from tests.identity.conftest import Tenants
from tests.repos.conftest import GitRepo


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"repository_id": "repo_nope", "ref": "main"}, "repository_id"),
        ({"ref": "no-such-branch"}, "ref"),
        ({"ref": "--upload-pack=evil"}, "ref"),
        ({"ref": "main", "pipeline_id": "pip_01M8GD01BC4CP4XB2JZ2NCCHNQ"}, "pipeline_id"),
        ({"ref": "main", "colour": "red"}, "colour"),
    ],
)
async def test_a_build_that_cannot_start_names_the_field_and_leaves_no_build(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    ci_repo: GitRepo,
    body: dict[str, str],
    field: str,
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)

    response = await client.post(
        f"{API}/projects/{project.id}/builds",
        json={"repository_id": project.repo_id, **body},
        headers=tenants.member.headers,
    )

    assert response.status_code == 400, response.text
    assert field in response.text
    listed = await client.get(f"{API}/builds", headers=tenants.viewer.headers)
    assert listed.json()["total"] == 0


@pytest.mark.parametrize(
    "query", ["status=bogus", "limit=0", "ref=" + "x" * 300, "project_id=" + "p" * 50]
)
async def test_a_bad_build_query_is_refused(
    client: httpx.AsyncClient, tenants: Tenants, query: str
) -> None:
    response = await client.get(f"{API}/builds?{query}", headers=tenants.viewer.headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"


async def test_logs_of_a_missing_step_or_a_bad_page_are_refused(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    build = await start_build(client, tenants.member, project)
    logs = f"{API}/builds/{build['id']}/logs"

    missing = await client.get(f"{logs}?step=9", headers=tenants.viewer.headers)
    negative = await client.get(f"{logs}?offset=-1", headers=tenants.viewer.headers)
    huge = await client.get(f"{logs}?limit=100000", headers=tenants.viewer.headers)

    assert missing.status_code == 400
    assert missing.json()["details"]["field"] == "step"
    assert negative.status_code == 400
    assert huge.status_code == 400


async def test_runner_tokens_sign_in_only_their_own_runner(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    first = await register_runner(client, tenants.admin, "first")
    second = await register_runner(client, tenants.admin, "second")

    anonymous = await client.post(first.url("/heartbeat"), json={"builds": []})
    forged = await client.post(
        first.url("/heartbeat"), json={"builds": []}, headers={"Authorization": "Bearer fyr_x"}
    )
    a_user = await client.post(
        first.url("/heartbeat"), json={"builds": []}, headers=tenants.owner.headers
    )
    crossed = await client.post(
        first.url("/heartbeat"), json={"builds": []}, headers=second.headers
    )

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "missing_auth"
    assert forged.status_code == 401
    assert forged.json()["code"] == "invalid_runner_token"
    assert a_user.status_code == 401
    assert crossed.status_code == 403


@pytest.mark.parametrize(
    ("tail", "body", "field"),
    [
        ("/claim", {"wait_seconds": 999}, "wait_seconds"),
        ("/claim", {"wait_seconds": 1, "greedy": True}, "greedy"),
        ("/heartbeat", {"builds": "all"}, "builds"),
    ],
)
async def test_bad_runner_messages_name_the_field(
    client: httpx.AsyncClient, tenants: Tenants, tail: str, body: dict[str, object], field: str
) -> None:
    runner = await register_runner(client, tenants.admin)
    response = await client.post(runner.url(tail), json=body, headers=runner.headers)
    assert response.status_code == 400, response.text
    assert field in response.text


async def test_bad_reports_about_a_held_build_are_refused_and_change_nothing(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)
    build = await start_build(client, tenants.member, project)
    await claim(client, runner)
    base = runner.url(f"/builds/{build['id']}")

    empty = await client.post(
        f"{base}/logs", json={"step": 0, "first_line": 0, "lines": []}, headers=runner.headers
    )
    extra = await client.post(
        f"{base}/logs",
        json={"step": 0, "first_line": 0, "lines": ["x"], "colour": "red"},
        headers=runner.headers,
    )
    no_step = await client.post(
        f"{base}/logs", json={"step": 7, "first_line": 0, "lines": ["x"]}, headers=runner.headers
    )
    bad_status = await client.post(
        f"{base}/finish", json={"status": "great"}, headers=runner.headers
    )
    escaping = await client.put(
        f"{base}/artifacts?path=../../etc/passwd", content=b"x", headers=runner.headers
    )

    assert empty.status_code == 400
    assert "lines" in empty.text
    assert extra.status_code == 400
    assert "colour" in extra.text
    assert no_step.status_code == 400
    assert no_step.json()["details"]["field"] == "step"
    assert bad_status.status_code == 400
    assert "status" in bad_status.text
    assert escaping.status_code == 400
    assert escaping.json()["details"]["field"] == "path"
    page = await client.get(f"{API}/builds/{build['id']}/logs", headers=tenants.viewer.headers)
    assert page.json()["lines"] == []
    state = await client.get(f"{API}/builds/{build['id']}", headers=tenants.viewer.headers)
    assert state.json()["status"] == "running"


async def test_registration_needs_a_live_token_and_sane_fields(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    unknown = await client.post(
        f"{API}/runners/register", json={"registration_token": "fyrr_nope", "name": "r"}
    )
    bad_label = await client.post(
        f"{API}/runners/register",
        json={"registration_token": "fyrr_nope", "name": "r", "labels": ["has space"]},
    )
    forever = await client.post(
        f"{API}/runners/registration-tokens", json={"valid_hours": 0}, headers=tenants.admin.headers
    )
    by_member = await client.post(
        f"{API}/runners/registration-tokens", json={}, headers=tenants.member.headers
    )

    assert unknown.status_code == 401
    assert unknown.json()["code"] == "invalid_registration_token"
    assert bad_label.status_code == 400
    assert "labels" in bad_label.text
    assert forever.status_code == 400
    assert "valid_hours" in forever.text
    assert by_member.status_code == 403


async def test_another_organization_sees_no_build_and_its_runners_claim_none(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    build = await start_build(client, tenants.member, project)
    globex_runner = await register_runner(client, tenants.other_owner, "globex")

    seen = await client.get(f"{API}/builds/{build['id']}", headers=tenants.other_owner.headers)
    cancel = await client.post(
        f"{API}/builds/{build['id']}/cancel", headers=tenants.other_owner.headers
    )

    assert seen.status_code == 404
    assert cancel.status_code == 404
    assert await claim(client, globex_runner) is None
    listed = await client.get(f"{API}/builds", headers=tenants.other_owner.headers)
    assert listed.json()["total"] == 0


async def test_bad_runner_list_queries_and_unknown_ids_are_refused(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    build = await start_build(client, tenants.member, project)

    bogus_status = await client.get(f"{API}/runners?status=bogus", headers=tenants.viewer.headers)
    no_runner = await client.delete(
        f"{API}/runners/rnr_01M8GD01BC4CP4XB2JZ2NCCHNQ", headers=tenants.admin.headers
    )
    no_token = await client.delete(
        f"{API}/runners/registration-tokens/not-an-id", headers=tenants.admin.headers
    )
    no_artifact = await client.post(
        f"{API}/artifacts/art_01M8GD01BC4CP4XB2JZ2NCCHNQ/download-link",
        headers=tenants.viewer.headers,
    )
    no_link = await client.get(f"{API}/artifacts/download/not-a-token")
    bad_retry = await client.post(
        f"{API}/builds/{build['id']}/retry",
        json={"failed_only": "maybe"},
        headers=tenants.member.headers,
    )
    no_build = await client.post(
        f"{API}/builds/bld_01M8GD01BC4CP4XB2JZ2NCCHNQ/stream-token", headers=tenants.viewer.headers
    )

    assert bogus_status.status_code == 400
    assert "status" in bogus_status.text
    assert no_runner.status_code == 404
    assert no_token.status_code == 404
    assert no_artifact.status_code == 404
    assert no_link.status_code == 401
    assert no_link.json()["code"] == "invalid_download_token"
    assert bad_retry.status_code == 400
    assert "failed_only" in bad_retry.text
    assert no_build.status_code == 404
