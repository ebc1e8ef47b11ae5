"""POST /webhooks/github and /webhooks/gitlab: genuine deliveries only, each handled once, and
a push on an enabled repository starts its builds and an analysis.

GitHub payloads are the real ones of @octokit/webhooks-examples (tests/ci/webhook_examples),
signed here with the app's webhook secret; the push's ``after`` is set to a commit the
repository's mirror holds, since the example's commit exists only on GitHub. The GitLab push
is GitLab's documented example, abridged to the fields a push carries."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from forgeyard.kernel import git
from forgeyard.models.ci import Build
from forgeyard.models.integrations import ForgeRepository, Integration
from forgeyard.repos import service as repos_service
from tests.ci.integrations.conftest import WEBHOOK_SECRET, assert_error, call, field_of
from tests.ci.test_inbound import GITHUB_BODY, GITHUB_SIGNATURE, example, github_examples  # noqa: F401
from tests.identity.conftest import Tenants

PIPELINE = 'steps:\n  - name: test\n    commands: ["true"]\n'
EXAMPLE_REPO = "Codertocat/Hello-World"  # the examples' repository; their installation is 1
GITLAB_TOKEN = "gitlab-webhook-token-of-the-test"


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(
    client: httpx.AsyncClient, event: str, payload: Any, delivery: str = "d-1", **headers: str
) -> httpx.Response:
    body = json.dumps(payload).encode()
    sent = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(body),
        "Content-Type": "application/json",
    } | headers
    return await client.post("/api/v1/webhooks/github", content=body, headers=sent)


def _write_pipeline(tree: Path) -> None:
    (tree / ".forgeyard.yml").write_text(PIPELINE)


async def enabled_repository(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI, *, kind: str, full_name: str
) -> tuple[str, str]:
    """An Acme repository whose mirror has one commit with a pipeline, enabled for builds
    through an integration of ``kind``; returns (repository id, commit)."""
    project = await call(client, "POST", "/projects", tenants.owner, {"name": f"p-{kind}"})
    body = {
        "clone_url": f"https://93.184.215.14/{full_name}.git",
        "project_id": project.json()["id"],
    }
    repo_id = (await call(client, "POST", "/repos", tenants.owner, body)).json()["id"]
    mirror = repos_service.mirror_path_of(
        app.state.settings, tenants.owner.organization_id, repo_id
    )
    with tempfile.TemporaryDirectory() as tree:
        _write_pipeline(Path(tree))
        commit = await git.commit_directory(mirror, Path(tree), branch="master", message="first")
    async with app.state.database.transaction() as session:
        integration = Integration(
            organization_id=tenants.owner.organization_id,
            kind=kind,
            name=kind,
            external_id="1" if kind == "github" else None,
            config={},
            inbound_token_hash=app.state.auth.token_hasher.hash(GITLAB_TOKEN)
            if kind == "gitlab"
            else None,
        )
        session.add(integration)
        await session.flush()
        session.add(
            ForgeRepository(
                organization_id=tenants.owner.organization_id,
                integration_id=integration.id,
                forge_repo_id="186853002",
                full_name=full_name,
                enabled=True,
                repository_id=repo_id,
            )
        )
    return repo_id, commit


async def build_count(app: FastAPI) -> int:
    async with app.state.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Build)) or 0)


# --- genuine deliveries -------------------------------------------------------------------


async def test_githubs_published_signature_vector_is_accepted(client: httpx.AsyncClient) -> None:
    """GitHub's documented body and signature pass the check (then the body is no JSON)."""
    headers = {
        "X-Hub-Signature-256": GITHUB_SIGNATURE,
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "vector",
    }
    answer = await client.post("/api/v1/webhooks/github", content=GITHUB_BODY, headers=headers)
    assert field_of(assert_error(answer, 400, "invalid_input")) == "body"
    tampered = await client.post(
        "/api/v1/webhooks/github", content=GITHUB_BODY + b"!", headers=headers
    )
    assert_error(tampered, 401, "invalid_signature")
    unsigned = await client.post(
        "/api/v1/webhooks/github", content=GITHUB_BODY, headers={"X-GitHub-Event": "push"}
    )
    assert_error(unsigned, 401, "invalid_signature")


async def test_a_missing_event_header_names_it(client: httpx.AsyncClient) -> None:
    body = b"{}"
    headers = {"X-Hub-Signature-256": sign(body), "X-GitHub-Delivery": "d"}
    answer = await client.post("/api/v1/webhooks/github", content=body, headers=headers)
    assert field_of(assert_error(answer, 400, "invalid_input")) == "header.X-GitHub-Event"


# --- GitHub -------------------------------------------------------------------------------


def branch_push(examples: dict[str, list[dict[str, Any]]], commit: str) -> dict[str, Any]:
    push = next(
        p for p in examples["push"] if p["ref"] == "refs/heads/master" and p.get("installation")
    )
    payload = copy.deepcopy(push)
    payload["after"] = commit
    return payload


async def test_a_push_builds_analyses_and_a_replay_does_nothing(
    client: httpx.AsyncClient,
    tenants: Tenants,
    app: FastAPI,
    github_examples: dict[str, list[dict[str, Any]]],  # noqa: F811
) -> None:
    repo_id, commit = await enabled_repository(
        client, tenants, app, kind="github", full_name=EXAMPLE_REPO
    )
    payload = branch_push(github_examples, commit)
    answer = await deliver(client, "push", payload, delivery="push-1")
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert len(started["builds"]) == 1
    assert started["analysis"].startswith("ana_")
    build = await call(client, "GET", f"/builds/{started['builds'][0]}", tenants.viewer)
    assert build.json()["repository_id"] == repo_id
    assert build.json()["commit"] == commit
    replay = await deliver(client, "push", payload, delivery="push-1")
    assert replay.status_code == 200
    assert replay.json() == {"duplicate": True}
    assert await build_count(app) == 1


async def test_events_that_do_not_build_are_ignored_with_a_reason(
    client: httpx.AsyncClient,
    tenants: Tenants,
    app: FastAPI,
    github_examples: dict[str, list[dict[str, Any]]],  # noqa: F811
) -> None:
    _, commit = await enabled_repository(
        client, tenants, app, kind="github", full_name=EXAMPLE_REPO
    )
    labeled = example(
        github_examples,
        "pull_request",
        lambda p: p["action"] == "labeled" and p.get("installation"),
    )
    other_repo = branch_push(github_examples, commit)
    other_repo["repository"]["full_name"] = "Codertocat/Other"
    unknown = branch_push(github_examples, commit)
    unknown["installation"]["id"] = 999
    for event, payload, reason in [
        ("pull_request", labeled, "start no builds"),
        ("push", other_repo, "not enabled"),
        ("push", unknown, "no organization has connected installation 999"),
        ("ping", {"zen": "Keep it logically awesome."}, "without an installation"),
    ]:
        answer = await deliver(client, event, payload, delivery=f"{event}-{reason}")
        assert answer.status_code == 200, answer.text
        assert reason in answer.json()["ignored"]
    assert await build_count(app) == 0


async def test_installation_events_keep_the_integration_current(
    client: httpx.AsyncClient,
    tenants: Tenants,
    app: FastAPI,
    github_examples: dict[str, list[dict[str, Any]]],  # noqa: F811
) -> None:
    await enabled_repository(client, tenants, app, kind="github", full_name=EXAMPLE_REPO)
    suspend = copy.deepcopy(
        example(github_examples, "installation", lambda p: p["action"] == "suspend")
    )
    suspend["installation"]["id"] = 1
    answer = await deliver(client, "installation", suspend, delivery="suspend")
    assert answer.json()["status"] == "suspended"
    listed = await call(client, "GET", "/integrations", tenants.viewer)
    assert listed.json()["data"][0]["status"] == "suspended"
    push = await deliver(
        client, "push", branch_push(github_examples, "0" * 39 + "1"), delivery="while-suspended"
    )
    assert "suspended" in push.json()["ignored"]
    added = copy.deepcopy(
        example(github_examples, "installation_repositories", lambda p: p["action"] == "added")
    )
    added["installation"]["id"] = 1
    answer = await deliver(client, "installation_repositories", added, delivery="added")
    assert answer.json()["added"] == len(added["repositories_added"])
    integration_id = listed.json()["data"][0]["id"]
    repos = await call(
        client, "GET", f"/integrations/{integration_id}/repositories", tenants.viewer
    )
    names = [repo["full_name"] for repo in repos.json()["data"]]
    assert EXAMPLE_REPO in names
    assert {r["full_name"] for r in added["repositories_added"]} <= set(names)


# --- GitLab -------------------------------------------------------------------------------


def gitlab_push(commit: str) -> dict[str, Any]:
    """GitLab's documented push event, abridged (webhook events: push events)."""
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": commit,
        "ref": "refs/heads/master",
        "ref_protected": True,
        "checkout_sha": commit,
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "Diaspora",
            "web_url": "http://example.com/mike/diaspora",
            "git_ssh_url": "git@example.com:mike/diaspora.git",
            "git_http_url": "http://example.com/mike/diaspora.git",
            "namespace": "Mike",
            "visibility_level": 0,
            "path_with_namespace": "mike/diaspora",
            "default_branch": "master",
        },
        "commits": [],
        "total_commits_count": 0,
    }


async def deliver_gitlab(
    client: httpx.AsyncClient, payload: Any, token: str | None, uuid: str | None = None
) -> httpx.Response:
    headers = {"X-Gitlab-Event": "Push Hook"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    if uuid is not None:
        headers["X-Gitlab-Event-UUID"] = uuid
    return await client.post("/api/v1/webhooks/gitlab", json=payload, headers=headers)


async def test_a_gitlab_push_with_the_integrations_token_builds_once(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI
) -> None:
    _, commit = await enabled_repository(
        client, tenants, app, kind="gitlab", full_name="mike/diaspora"
    )
    payload = gitlab_push(commit)
    assert_error(await deliver_gitlab(client, payload, None), 401, "invalid_token")
    assert_error(await deliver_gitlab(client, payload, "someone-elses"), 401, "invalid_token")
    answer = await deliver_gitlab(client, payload, GITLAB_TOKEN, uuid="uuid-1")
    assert answer.status_code == 202, answer.text
    assert len(answer.json()["builds"]) == 1
    replay = await deliver_gitlab(client, payload, GITLAB_TOKEN, uuid="uuid-1")
    assert replay.json() == {"duplicate": True}
    assert await build_count(app) == 1


@pytest.mark.parametrize("body", [b"[1, 2]", b"not json"])
async def test_a_gitlab_body_that_is_no_json_object_is_refused(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI, body: bytes
) -> None:
    await enabled_repository(client, tenants, app, kind="gitlab", full_name="mike/diaspora")
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": GITLAB_TOKEN}
    answer = await client.post("/api/v1/webhooks/gitlab", content=body, headers=headers)
    assert field_of(assert_error(answer, 400, "invalid_input")) == "body"
