"""Every list and read endpoint of repositories and analyses answers a bad query or a
malformed id in the error envelope, naming what was wrong."""

from __future__ import annotations

import httpx
import pytest

from tests.identity.conftest import Tenants
from tests.repos.conftest import API, GitRepo, register

BAD_QUERIES = [
    ("/projects?limit=0", 400, "limit"),
    ("/repos?status=sleeping", 400, "status"),
    ("/repos?project_id=" + "p" * 41, 400, "project_id"),
    ("/repos/{repo}/events?offset=-1", 400, "offset"),
    ("/repos/{repo}/scans?limit=0", 400, "limit"),
    ("/repos/{repo}/findings?severity=dire", 400, "severity"),
    ("/analysis/history?status=pondering", 400, "status"),
    ("/findings/summary?severity=dire", 400, "severity"),
    ("/findings/by-detector?status=gone", 400, "status"),
    ("/projects/not-an-id/rollup", 404, "not-an-id"),
    ("/git-uploads/not-an-id", 404, "not-an-id"),
    ("/analysis/not-an-id/status", 404, "not-an-id"),
    ("/sessions/not-an-id", 404, "not-an-id"),
]


@pytest.mark.parametrize(("path", "status", "names"), BAD_QUERIES)
async def test_a_bad_query_is_refused_in_the_envelope(
    client: httpx.AsyncClient,
    tenants: Tenants,
    git_repo: GitRepo,
    path: str,
    status: int,
    names: str,
) -> None:
    repo = await register(client, tenants.owner, git_repo.url)
    response = await client.get(API + path.format(repo=repo["id"]), headers=tenants.viewer.headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code", "details", "retryable", "request_id"}
    assert body["code"] == ("invalid_input" if status == 400 else "not_found")
    assert names in body["error"] + str(body["details"])
