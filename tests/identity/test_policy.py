"""The role policy of docs/roles.md, enforced on every route the application serves.

Nothing here is a hand-picked list of routes: the routes are read from the application, the
permission each one needs from its ``require(...)`` dependency, and who holds it from the
policy table. A new route therefore joins these tests by itself; one that needs a body or an
id the tests cannot make up fails with a message saying which example to add.

Also here: tenancy (another organization's ids answer 404 and change nothing) and mass
assignment (fields and roles a caller may not set).
"""

from __future__ import annotations

import io
import re
import secrets
import tempfile
import typing
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, SecretStr

from forgeyard.analysis import findings
from forgeyard.api import create_app
from forgeyard.auth import policy
from forgeyard.deps import worktrees
from forgeyard.identity.deps import require_setup_session
from forgeyard.kernel import git
from forgeyard.models.ci import Artifact
from forgeyard.models.deps import Dependency, DependencyUpdate, PullRequest
from forgeyard.models.integrations import ForgeRepository, Integration
from forgeyard.models.repo import Repository, RepoSource
from forgeyard.repos import service as repos_service
from forgeyard.settings import Settings
from tests.identity.conftest import PASSWORD, Account, Tenants

API = "/api/v1"
ROLES = policy.ROLES

# Routes anyone may call (paths under /api/v1).
PUBLIC_PATHS = {
    "/public/setup-status",
    "/auth/login",
    # Sign-in through an identity provider is sign-in too (API-MAP.md, seeds 000 and 003).
    "/auth/oidc/start",
    "/auth/oidc/callback",
    "/auth/github/start",
    "/auth/github/callback",
    "/auth/register",
    "/auth/refresh",
    "/auth/password/reset",
    "/auth/password/reset/confirm",
    # git's smart HTTP protocol: the upload's own token (HTTP Basic) is the only sign-in
    # there; tests/repos/test_git_uploads.py refuses wrong and expired tokens with real git.
    "/git-uploads/{upload_id}/repo.git/{operation:path}",
    # A runner registers with a registration token an admin made; tests/ci/builds refuses
    # unknown and expired ones.
    "/runners/register",
    # An EventSource and a download link carry a short-lived token of their own in the URL;
    # tests/ci/builds refuses wrong, expired and spent ones.
    "/builds/{build_id}/logs/stream",
    "/artifacts/download/{token}",
    # The forges' webhook receivers: GitHub's signature or a GitLab integration's token is the
    # only sign-in; tests/ci/integrations refuses bad signatures and unknown tokens.
    "/webhooks/github",
    "/webhooks/gitlab",
}
PUBLIC_PREFIXES = ("/setup/",)

# Routes any signed-in caller uses about their own session or profile: no permission applies.
SELF_SERVICE = {("GET", "/auth/me"), ("POST", "/auth/logout"), ("GET", "/users/me")}
# The runner protocol: signed in with the runner's own token, about that runner only (a token
# on another runner's path answers 403); tests/ci/builds covers both. Without credentials they
# answer 401 like every protected route.
RUNNER_TOKEN_ROUTES = {
    ("PATCH", "/runners/{runner_id}"),
    ("POST", "/runners/{runner_id}/heartbeat"),
    ("POST", "/runners/{runner_id}/claim"),
    ("GET", "/runners/{runner_id}/builds/{build_id}/source"),
    ("POST", "/runners/{runner_id}/builds/{build_id}/steps/{index}"),
    ("POST", "/runners/{runner_id}/builds/{build_id}/logs"),
    ("PUT", "/runners/{runner_id}/builds/{build_id}/artifacts"),
    ("POST", "/runners/{runner_id}/builds/{build_id}/finish"),
}
# Checked inside the services rather than by a route's dependency: changing the plan (PATCH
# /organizations/{id} with "plan") and making or changing owners (role changes, invitations,
# disabling). The mass-assignment tests below exercise both.
SERVICE_PERMISSIONS = {"org:change_plan", "users:grant_owner"}
# Permissions of capabilities still to come; none so far.
LATER_PERMISSION_PREFIX = "later:"
# Routes whose success needs a round trip through a forge (a state GitHub or GitLab hands
# back): past the role check they refuse the probe's made-up state with this code.
# tests/ci/integrations completes them against GitHub's OpenAPI description and an OAuth server.
REFUSED_AFTER_THE_ROLE_CHECK = {
    ("POST", "/integrations/github/complete"): "invalid_state",
    ("POST", "/integrations/gitlab/authorize"): "invalid_state",
}
# A small source tree as a zip: the body of POST /sessions.
_ZIP = io.BytesIO()
with zipfile.ZipFile(_ZIP, "w") as _archive:
    _archive.writestr("app/main.py", "print('hello')\n")
SOURCE_ZIP = _ZIP.getvalue()
PROBE_FINDING = findings.Seen(
    fingerprint="probe",
    detector="lint",
    rule_id="F401",
    severity="low",
    path="app/main.py",
    line_start=1,
    line_end=1,
    message="an unused import",
    snippet="import os",
    symbol=None,
    fixable=True,
)

# A minimal valid body per route that takes one, keyed by (method, path under /api/v1).
PROBE_PIPELINE = 'steps:\n  - name: test\n    commands: ["true"]\n'
EXAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/users/invite"): {"email": "new.hire@acme.example", "role": "viewer"},
    ("PATCH", "/users/{user_id}/role"): {"role": "member"},
    ("PATCH", "/organizations/{org_id}"): {"name": "Acme Renamed"},
    ("POST", "/api-keys"): {"name": "policy probe", "scopes": ["read"]},
    ("POST", "/auth/login"): {"email": "owner@acme.example", "password": PASSWORD},
    ("POST", "/auth/register"): {
        "email": "newcomer@acme.example",
        "password": "a long enough password",
        "name": "Newcomer",
    },
    ("POST", "/auth/refresh"): {"refresh_token": "not-a-refresh-token"},
    ("POST", "/auth/oidc/callback"): {"code": "not-a-code", "state": "not-a-state"},
    ("POST", "/auth/logout"): {"refresh_token": "not-a-refresh-token"},
    ("POST", "/auth/password/reset"): {"email": "owner@acme.example"},
    ("POST", "/auth/password/reset/confirm"): {
        "token": "not-a-reset-token",
        "password": "a long enough password",
    },
    ("POST", "/setup/bootstrap-token/verify"): {"token": "not-a-bootstrap-token"},
    ("POST", "/setup/owner"): {
        "email": "second.owner@acme.example",
        "password": "a long enough password",
        "name": "Second",
        "organization_name": "Second",
    },
    # A global address as a literal: passes the SSRF check at save without DNS.
    ("POST", "/webhooks"): {"url": "https://93.184.215.14/hook", "events": ["*"]},
    ("PATCH", "/webhooks/{webhook_id}"): {"description": "policy probe"},
    ("POST", "/projects"): {"name": "Policy probe"},
    ("PATCH", "/projects/{project_id}"): {"description": "policy probe"},
    # A global address as a literal: no DNS, and no fetch runs (the tests run no workers).
    ("POST", "/repos"): {"clone_url": "https://93.184.215.14/acme/probe.git"},
    ("PUT", "/repos/{repo_id}/settings"): {"schedule": "daily"},
    ("PATCH", "/repos/{repo_id}/quality-gates"): {"min_score": 50},
    ("PATCH", "/github/repos/{repo_id}/quality-gates"): {"min_score": 50},
    ("POST", "/git-uploads"): {"name": "pushed"},
    ("PATCH", "/findings/{finding_id}"): {"status": "ignored", "reason": "policy probe"},
    ("POST", "/sessions"): SOURCE_ZIP,
    ("PATCH", "/deps/{dep_id}/settings"): {"skip": True},
    ("POST", "/registries"): {"ecosystem": "npm", "url": "https://93.184.215.14/npm/"},
    ("POST", "/projects/{project_id}/pipelines"): {"name": "probe", "content": PROBE_PIPELINE},
    ("PATCH", "/pipelines/{pipeline_id}"): {"name": "renamed by the probe"},
    ("POST", "/pipelines/validate"): {"content": PROBE_PIPELINE},
    ("POST", "/runners/registration-tokens"): {"description": "policy probe"},
    ("POST", "/runners/register"): {"registration_token": "not-a-token", "name": "probe"},
    ("PATCH", "/runners/{runner_id}"): {"version": "probe"},
    ("POST", "/runners/{runner_id}/heartbeat"): {"builds": []},
    ("POST", "/runners/{runner_id}/claim"): {"wait_seconds": 0},
    ("POST", "/runners/{runner_id}/builds/{build_id}/steps/{index}"): {"status": "running"},
    ("POST", "/runners/{runner_id}/builds/{build_id}/logs"): {
        "step": 0,
        "first_line": 0,
        "lines": ["probe"],
    },
    ("POST", "/runners/{runner_id}/builds/{build_id}/finish"): {"status": "succeeded"},
    ("POST", "/integrations/github/complete"): {"installation_id": 1, "state": "not-a-state"},
    # A global address as a literal: the base URL's SSRF check needs no DNS.
    ("POST", "/integrations/gitlab/start"): {
        "base_url": "https://93.184.215.14",
        "client_id": "probe",
        "client_secret": "probe secret",
    },
    ("POST", "/integrations/gitlab/authorize"): {"code": "not-a-code", "state": "not-a-state"},
    ("POST", "/integrations/{integration_id}/repositories"): {
        "repositories": ["octo-org/probe"],
        "enabled": True,
    },
    ("POST", "/github/installations/{installation_id}/repos"): {
        "repositories": ["octo-org/probe"],
        "enabled": True,
    },
    # The default local store (the data dir): check() writes and removes a probe file there.
    ("PUT", "/settings/artifact-storage"): {"kind": "local"},
    ("PUT", "/settings/preferences"): {"cors_origins": ["https://app.example"]},
}
# Bodies that name an Acme thing: the ids they need are made like path parameters.
BODY_IDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/analysis/trigger"): ("repo_id",),
    ("POST", "/updates/scan"): ("repo_id",),
    ("POST", "/jobs"): ("dep_id",),
    ("POST", "/projects/{project_id}/builds"): ("ci_repo_id",),
}


def _body_with_ids(case: RouteCase, ids: dict[str, str]) -> dict[str, Any] | None:
    if (case.method, case.path) == ("POST", "/analysis/trigger"):
        return {"repository_id": ids["repo_id"]}
    if (case.method, case.path) == ("POST", "/updates/scan"):
        return {"repo_id": ids["repo_id"]}
    if (case.method, case.path) == ("POST", "/projects/{project_id}/builds"):
        # Tenancy probes send only path ids: the project answers 404 before the repository.
        return {"repository_id": ids.get("ci_repo_id", "repo_unknown"), "ref": "main"}
    if (case.method, case.path) == ("POST", "/jobs"):
        return {"repo_id": ids["repo_id"], "dependency": "fy-probe", "target_version": "2.0.0"}
    return None


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str  # under /api/v1, with its {placeholders}
    permission: str | None
    path_params: tuple[str, ...]
    body_model: type[BaseModel] | None
    body_required: bool
    needs_setup_session: bool

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def public(self) -> bool:
        return self.path in PUBLIC_PATHS or self.path.startswith(PUBLIC_PREFIXES)

    def body(self, ids: dict[str, str] | None = None) -> dict[str, Any] | bytes | None:
        example = EXAMPLE_BODIES.get((self.method, self.path)) or _body_with_ids(self, ids or {})
        if example is None and self.body_required:
            pytest.fail(f"{self} takes a body: add a minimal one to EXAMPLE_BODIES")
        return example

    def url(self, ids: dict[str, str]) -> str:
        missing = set(self.path_params) - set(ids)
        if missing:
            pytest.fail(f"{self}: no example id for {sorted(missing)}; add one to the targets")
        return API + self.path.format(**{name: ids[name] for name in self.path_params})


def _permission_of(dependant: Any) -> str | None:
    """The permission of the first ``require(...)`` found among a route's dependencies."""
    for dependency in dependant.dependencies:
        permission = getattr(dependency.call, "permission", None)
        if permission is None:
            permission = _permission_of(dependency)
        if permission is not None:
            return str(permission)
    return None


def _depends_on(dependant: Any, function: Any) -> bool:
    return any(
        dependency.call is function or _depends_on(dependency, function)
        for dependency in dependant.dependencies
    )


def _body_model(route: Any) -> type[BaseModel] | None:
    if route.body_field is None:
        return None
    annotation = route.body_field.field_info.annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def api_routes(app: FastAPI) -> list[RouteCase]:
    """Every API route of ``app`` under /api/v1, one case per method."""
    # FastAPI >= 0.160 keeps included routers nested; iter_route_contexts flattens them.
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = walk(app.routes) if walk else app.routes
    cases = []
    for route in routes:
        if not isinstance(getattr(route, "original_route", route), APIRoute):
            continue
        if not route.path.startswith(API + "/"):
            continue
        for method in sorted(route.methods):
            cases.append(
                RouteCase(
                    method=method,
                    path=route.path.removeprefix(API),
                    permission=_permission_of(route.dependant),
                    # From the path: a runner's id is read by its sign-in dependency.
                    path_params=tuple(re.findall(r"\{(\w+)", route.path)),
                    body_model=_body_model(route),
                    body_required=bool(
                        route.body_field and route.body_field.field_info.is_required()
                    ),
                    needs_setup_session=_depends_on(route.dependant, require_setup_session),
                )
            )
    return cases


def _inventory() -> list[RouteCase]:
    """The routes as collected, from an application that never starts (no database)."""
    settings = Settings(
        data_dir=Path(tempfile.gettempdir()) / "forgeyard-route-inventory",
        database_url="sqlite://",
        secret_key="route inventory only, never serves a request",
        _env_file=None,
    )
    return api_routes(create_app(settings))


ROUTES = _inventory()
PERMISSION_ROUTES = [case for case in ROUTES if case.permission]
PROTECTED_ROUTES = [case for case in ROUTES if not case.public]
ID_ROUTES = [
    case
    for case in ROUTES
    if case.path_params and not case.public and (case.method, case.path) not in RUNNER_TOKEN_ROUTES
]
STRICT_BODY_ROUTES = [
    case
    for case in ROUTES
    if case.body_model is not None
    and case.body_model.model_config.get("extra") == "forbid"
    # The setup-session check answers 401 before the body is read; the setup tests cover it.
    and not case.needs_setup_session
    # So does the runner's sign-in; tests/ci/builds sends unknown fields with a runner token.
    and (case.method, case.path) not in RUNNER_TOKEN_ROUTES
]


def _ids(cases: list[RouteCase]) -> list[str]:
    return [str(case) for case in cases]


async def _call(
    client: httpx.AsyncClient,
    case: RouteCase,
    ids: dict[str, str],
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    payload = body if body is not None else case.body(ids)
    if isinstance(payload, bytes):
        return await client.request(case.method, case.url(ids), content=payload, headers=headers)
    return await client.request(case.method, case.url(ids), json=payload, headers=headers)


async def _create_key(
    client: httpx.AsyncClient, creator: Account, scope: str, name: str = "target key"
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/api-keys", json={"name": name, "scopes": [scope]}, headers=creator.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# Makers of Acme ids for path parameters, keyed by the parameter's name. Each gets the caller's
# role and the ids made so far for the same path (a delivery belongs to the path's webhook).
IdMaker = Callable[[httpx.AsyncClient, Tenants, str, dict[str, str]], Awaitable[str]]


async def _make_key_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """The caller's own key when the caller may make keys: revoking someone else's key takes
    more (see test_people_may_revoke_their_own_keys_and_admins_anyones)."""
    maker = caller if policy.role_allows(caller, "api_keys:manage") else "owner"
    return str((await _create_key(client, tenants.by_role(maker), "read"))["id"])


async def _make_webhook_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    body = EXAMPLE_BODIES[("POST", "/webhooks")]
    response = await client.post(f"{API}/webhooks", json=body, headers=tenants.owner.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _make_delivery_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    if "webhook_id" not in ids:
        ids["webhook_id"] = await _make_webhook_id(client, tenants, caller, ids)
    url = f"{API}/webhooks/{ids['webhook_id']}/test"
    response = await client.post(url, headers=tenants.owner.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _make_job_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """A queued Acme job: a retention cleanup, the one job the API lets anyone start."""
    response = await client.post(f"{API}/ops/cleanup", headers=tenants.owner.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _make_ended_job_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """An Acme job that has ended, so following it streams its end and stops."""
    job_id = await _make_job_id(client, tenants, caller, ids)
    response = await client.post(f"{API}/jobs/{job_id}/cancel", headers=tenants.owner.headers)
    assert response.status_code == 200, response.text
    return job_id


async def _post_id(
    client: httpx.AsyncClient, tenants: Tenants, path: str, body: Any, status: int = 201
) -> str:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = await client.post(f"{API}{path}", headers=tenants.owner.headers, **kwargs)
    assert response.status_code == status, response.text
    return str(response.json()["id"])


async def _make_project_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    return await _post_id(client, tenants, "/projects", {"name": "Made for the probe"})


async def _make_repo_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    body = {"clone_url": "https://93.184.215.14/acme/made.git"}
    return await _post_id(client, tenants, "/repos", body)


async def _make_analysis_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """A queued Acme analysis (no worker runs in these tests)."""
    if "repo_id" not in ids:
        ids["repo_id"] = await _make_repo_id(client, tenants, caller, ids)
    body = {"repository_id": ids["repo_id"]}
    return await _post_id(client, tenants, "/analysis/trigger", body, status=202)


async def _make_ended_analysis_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """An Acme analysis whose job was cancelled, so following it streams its end and stops."""
    analysis_id = await _make_analysis_id(client, tenants, caller, ids)
    status = await client.get(f"{API}/analysis/{analysis_id}/status", headers=tenants.owner.headers)
    cancelled = await client.post(
        f"{API}/jobs/{status.json()['job_id']}/cancel", headers=tenants.owner.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    return analysis_id


async def _make_finding_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """An Acme finding, written as an analysis would (no worker runs in these tests)."""
    analysis_id = await _make_analysis_id(client, tenants, caller, ids)
    app = client._transport.app  # type: ignore[attr-defined]
    async with app.state.database.transaction() as session:
        outcome_ids = await findings.reconcile(
            session=session,
            organization_id=tenants.owner.organization_id,
            repository_id=ids["repo_id"],
            analysis_id=analysis_id,
            seen=[PROBE_FINDING],
            scope=findings.Scope(detectors=frozenset({"lint"})),
        )
    assert outcome_ids.new_by_severity == {"low": 1}
    listed = await client.get(f"{API}/findings", headers=tenants.owner.headers)
    return str(listed.json()["data"][0]["id"])


async def _make_session_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    return await _post_id(client, tenants, "/sessions", SOURCE_ZIP)


async def _make_upload_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    return await _post_id(client, tenants, "/git-uploads", {"name": "pushed by the probe"})


async def _make_dep_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """An Acme dependency with an update, written as a scan would (no worker runs here)."""
    if "repo_id" not in ids:
        ids["repo_id"] = await _make_repo_id(client, tenants, caller, ids)
    app = client._transport.app  # type: ignore[attr-defined]
    organization_id = tenants.owner.organization_id
    async with app.state.database.transaction() as session:
        dependency = Dependency(
            organization_id=organization_id,
            repository_id=ids["repo_id"],
            ecosystem="pypi",
            name="fy-probe",
            manifest_path="requirements.txt",
            scope="main",
            specifier="==1.0.0",
            current_version="1.0.0",
        )
        session.add(dependency)
        await session.flush()
        update = DependencyUpdate(
            organization_id=organization_id,
            repository_id=ids["repo_id"],
            dependency_id=dependency.id,
            current_version="1.0.0",
            candidate_version="2.0.0",
            category="major",
        )
        session.add(update)
        await session.flush()
        ids["update_id"] = update.id
        return dependency.id


async def _make_update_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    await _make_dep_id(client, tenants, caller, ids)
    return ids["update_id"]


def _write(path: Path, text: str) -> None:
    path.write_text(text)


async def _make_pr_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """An open local pull request on a repository whose mirror holds its two branches, so
    that merging it is a real merge (the mirror is the origin of an uploaded repository)."""
    repo_id = ids.setdefault("repo_id", await _make_repo_id(client, tenants, caller, ids))
    app = client._transport.app  # type: ignore[attr-defined]
    organization_id = tenants.owner.organization_id
    mirror = repos_service.mirror_path_of(app.state.settings, organization_id, repo_id)
    with tempfile.TemporaryDirectory() as tree:
        _write(Path(tree, "requirements.txt"), "fy-probe==1.0.0\n")
        main = await git.commit_directory(mirror, Path(tree), branch="main", message="first")
    async with worktrees.worktree(mirror, main, time_limit=60) as tree_path:
        _write(tree_path / "requirements.txt", "fy-probe==2.0.0\n")
        head = await worktrees.commit_paths(tree_path, ["requirements.txt"], "update")
    await git.run_git("update-ref", "refs/heads/update", head, cwd=mirror)
    async with app.state.database.transaction() as session:
        repository = await session.get(Repository, repo_id)
        repository.source = RepoSource.ARCHIVE
        pull = PullRequest(
            organization_id=organization_id,
            repository_id=repo_id,
            provider="local",
            title="Update fy-probe to 2.0.0",
            base_branch="main",
            head_branch="update",
        )
        session.add(pull)
        await session.flush()
        return pull.id


async def _make_pipeline_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    project_id = ids.setdefault("project_id", await _make_project_id(client, tenants, caller, ids))
    body = {"name": "made for the probe", "content": PROBE_PIPELINE}
    return await _post_id(client, tenants, f"/projects/{project_id}/pipelines", body)


async def _make_registry_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    body = {"ecosystem": "pypi", "url": "https://93.184.215.14/simple/", "secret": "s3cret"}
    return await _post_id(client, tenants, "/registries", body)


async def _make_ci_repo_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """A repository of the path's project whose mirror holds a commit with a pipeline."""
    if "project_id" not in ids:
        ids["project_id"] = await _make_project_id(client, tenants, caller, ids)
    project_id = ids["project_id"]
    body = {"clone_url": "https://93.184.215.14/acme/built.git", "project_id": project_id}
    repo_id = await _post_id(client, tenants, "/repos", body)
    app = client._transport.app  # type: ignore[attr-defined]
    mirror = repos_service.mirror_path_of(
        app.state.settings, tenants.owner.organization_id, repo_id
    )
    with tempfile.TemporaryDirectory() as tree:
        _write(Path(tree, ".forgeyard.yml"), PROBE_PIPELINE)
        await git.commit_directory(mirror, Path(tree), branch="main", message="first")
    return repo_id


async def _make_build_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """A queued build (one a caller may cancel)."""
    if "ci_repo_id" not in ids:
        ids["ci_repo_id"] = await _make_ci_repo_id(client, tenants, caller, ids)
    body = {"repository_id": ids["ci_repo_id"], "ref": "main"}
    return await _post_id(client, tenants, f"/projects/{ids['project_id']}/builds", body)


async def _make_ended_build_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """A cancelled build (one a caller may retry)."""
    build_id = await _make_build_id(client, tenants, caller, ids)
    cancelled = await client.post(f"{API}/builds/{build_id}/cancel", headers=tenants.owner.headers)
    assert cancelled.status_code == 202, cancelled.text
    return build_id


async def _make_artifact_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    if "build_id" not in ids:
        ids["build_id"] = await _make_build_id(client, tenants, caller, ids)
    build_id = ids["build_id"]
    app = client._transport.app  # type: ignore[attr-defined]
    async with app.state.database.transaction() as session:
        artifact = Artifact(
            organization_id=tenants.owner.organization_id,
            build_id=build_id,
            path="out/probe.txt",
            storage_key=f"{tenants.owner.organization_id}/{build_id}/out/probe.txt",
            size=0,
            sha256="0" * 64,
        )
        session.add(artifact)
        await session.flush()
        return artifact.id


async def _make_token_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    return await _post_id(client, tenants, "/runners/registration-tokens", {})


async def _make_runner_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    made = await client.post(
        f"{API}/runners/registration-tokens", json={}, headers=tenants.owner.headers
    )
    registered = await client.post(
        f"{API}/runners/register",
        json={"registration_token": made.json()["token"], "name": "probe"},
    )
    assert registered.status_code == 201, registered.text
    return str(registered.json()["id"])


async def _make_step_index(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    return "0"


async def _make_integration_id(
    client: httpx.AsyncClient, tenants: Tenants, caller: str, ids: dict[str, str]
) -> str:
    """An Acme GitHub integration, as a completed installation leaves it, seeing one forge
    repository (clone URL a global address literal: enabling it registers it without DNS)."""
    app = client._transport.app  # type: ignore[attr-defined]
    organization_id = tenants.owner.organization_id
    async with app.state.database.transaction() as session:
        integration = Integration(
            organization_id=organization_id,
            kind="github",
            name="GitHub: octo-org",
            external_id=str(secrets.randbelow(10**9) + 1),
            config={"account": "octo-org", "account_type": "Organization"},
        )
        session.add(integration)
        await session.flush()
        session.add(
            ForgeRepository(
                organization_id=organization_id,
                integration_id=integration.id,
                forge_repo_id="1296269",
                full_name="octo-org/probe",
                clone_url="https://93.184.215.14/octo-org/probe.git",
            )
        )
        await session.flush()
        return integration.id


ID_MAKERS: dict[str, IdMaker] = {
    "key_id": _make_key_id,
    "webhook_id": _make_webhook_id,
    "delivery_id": _make_delivery_id,
    "job_id": _make_job_id,
    "project_id": _make_project_id,
    "repo_id": _make_repo_id,
    "analysis_id": _make_analysis_id,
    "finding_id": _make_finding_id,
    "session_id": _make_session_id,
    "upload_id": _make_upload_id,
    "dep_id": _make_dep_id,
    "update_id": _make_update_id,
    "pr_id": _make_pr_id,
    "registry_id": _make_registry_id,
    "pipeline_id": _make_pipeline_id,
    "ci_repo_id": _make_ci_repo_id,
    "build_id": _make_build_id,
    "artifact_id": _make_artifact_id,
    "token_id": _make_token_id,
    "runner_id": _make_runner_id,
    "index": _make_step_index,
    "integration_id": _make_integration_id,
    "installation_id": _make_integration_id,
}
# Routes that need a particular kind of thing behind an id.
ROUTE_ID_MAKERS: dict[tuple[str, str], dict[str, IdMaker]] = {
    ("GET", "/jobs/{job_id}/progress"): {"job_id": _make_ended_job_id},
    ("GET", "/analysis/{analysis_id}/progress"): {"analysis_id": _make_ended_analysis_id},
    ("POST", "/builds/{build_id}/retry"): {"build_id": _make_ended_build_id},
}


async def _make_ids(
    client: httpx.AsyncClient, tenants: Tenants, case: RouteCase, caller: str, ids: dict[str, str]
) -> dict[str, str]:
    makers = ID_MAKERS | ROUTE_ID_MAKERS.get((case.method, case.path), {})
    for name in (*case.path_params, *BODY_IDS.get((case.method, case.path), ())):
        if name not in ids and name in makers:
            ids[name] = await makers[name](client, tenants, caller, ids)
    return ids


async def _acme_ids(
    client: httpx.AsyncClient, tenants: Tenants, case: RouteCase, caller: str = "owner"
) -> dict[str, str]:
    """Ids of Acme things for ``case``'s path: the organization, a person, and what ID_MAKERS
    makes (an API key, a webhook, a delivery, a job)."""
    ids = {"org_id": tenants.owner.organization_id, "user_id": tenants.viewer.user_id}
    return await _make_ids(client, tenants, case, caller, ids)


def _assert_forbidden(response: httpx.Response, permission: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
    assert response.json()["details"] == {"permission": permission}


def _assert_allowed(case: RouteCase, response: httpx.Response) -> None:
    refusal = REFUSED_AFTER_THE_ROLE_CHECK.get((case.method, case.path))
    if refusal is None:
        assert response.status_code < 400, response.text
    else:
        assert response.json()["code"] == refusal, response.text


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert set(body) == {"error", "code", "details", "retryable", "request_id"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with a GitHub App configured, so that starting its installation
    is a success past the role check (the key itself is never used by that step)."""
    github = settings.github.model_copy(
        update={"app_id": "1", "app_slug": "forgeyard-probe", "private_key": SecretStr("unused")}
    )
    return settings.model_copy(update={"github": github})


# ---------------------------------------------------------------------------------------------
# The table against the routes


def test_every_api_route_is_public_self_service_or_permission_checked() -> None:
    unclassified = [
        str(case)
        for case in ROUTES
        if not case.public
        and not case.permission
        and (case.method, case.path) not in SELF_SERVICE | RUNNER_TOKEN_ROUTES
    ]
    assert unclassified == [], "routes without require(...): add one, or list them above"


def test_every_permission_of_the_table_guards_something() -> None:
    used = {case.permission for case in PERMISSION_ROUTES}
    assert used <= set(policy.rules()), "a route needs a permission the table lacks"
    unguarded = {
        permission
        for permission in policy.rules()
        if permission not in used
        and permission not in SERVICE_PERMISSIONS
        and not permission.startswith(LATER_PERMISSION_PREFIX)
    }
    assert unguarded == set()


async def test_the_route_inventory_is_the_running_application(app: FastAPI) -> None:
    assert api_routes(app) == ROUTES


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", PERMISSION_ROUTES, ids=_ids(PERMISSION_ROUTES))
async def test_each_role_gets_exactly_what_the_table_grants(
    client: httpx.AsyncClient, tenants: Tenants, case: RouteCase, role: str
) -> None:
    assert case.permission is not None
    ids = await _acme_ids(client, tenants, case, caller=role)
    response = await _call(client, case, ids, tenants.by_role(role).headers)
    if policy.role_allows(role, case.permission):
        _assert_allowed(case, response)
    else:
        _assert_forbidden(response, case.permission)


@pytest.mark.parametrize("scope", policy.SCOPES)
@pytest.mark.parametrize("case", PERMISSION_ROUTES, ids=_ids(PERMISSION_ROUTES))
async def test_each_key_scope_of_an_owner_gets_exactly_what_the_table_grants(
    client: httpx.AsyncClient, tenants: Tenants, case: RouteCase, scope: str
) -> None:
    """A key may do what both its scope and its creator's role allow (docs/roles.md)."""
    assert case.permission is not None
    key = (await _create_key(client, tenants.owner, scope, name="caller"))["key"]
    ids = await _acme_ids(client, tenants, case)
    response = await _call(client, case, ids, {"X-API-Key": key})
    allowed = policy.role_allows("owner", case.permission) and policy.scope_allows(
        scope, case.permission
    )
    if allowed:
        _assert_allowed(case, response)
    else:
        _assert_forbidden(response, case.permission)


@pytest.mark.parametrize("case", PROTECTED_ROUTES, ids=_ids(PROTECTED_ROUTES))
async def test_every_protected_route_refuses_a_caller_without_credentials(
    client: httpx.AsyncClient, tenants: Tenants, case: RouteCase
) -> None:
    ids = await _acme_ids(client, tenants, case)
    response = await _call(client, case, ids)
    _assert_error(response, 401, "missing_auth")


# ---------------------------------------------------------------------------------------------
# Tenancy: Globex asking for Acme's things


async def _snapshot(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    """An organization as its owner sees it: settings, people, API keys."""
    org = await client.get(
        f"{API}/organizations/{account.organization_id}", headers=account.headers
    )
    users = await client.get(f"{API}/users", headers=account.headers)
    keys = await client.get(f"{API}/api-keys", headers=account.headers)
    for response in (org, users, keys):
        assert response.status_code == 200, response.text
    return {
        "organization": org.json(),
        "users": users.json()["data"],
        "api_keys": [
            {k: v for k, v in key.items() if k != "last_used_at"} for key in keys.json()["data"]
        ],
    }


async def _attacker_headers(
    client: httpx.AsyncClient, tenants: Tenants, attacker: str
) -> dict[str, str]:
    if attacker == "owner token":
        return tenants.other_owner.headers
    key = await _create_key(client, tenants.other_owner, "admin", name="globex admin key")
    return {"X-API-Key": key["key"]}


@pytest.mark.parametrize("attacker", ["owner token", "owner's admin key"])
@pytest.mark.parametrize("case", ID_ROUTES, ids=_ids(ID_ROUTES))
async def test_another_organizations_ids_answer_404_and_change_nothing(
    client: httpx.AsyncClient, tenants: Tenants, case: RouteCase, attacker: str
) -> None:
    acme = tenants.owner
    # Something to change for every kind of id: an active and a disabled person, a live key.
    disabled = await client.delete(f"{API}/users/{tenants.viewer.user_id}", headers=acme.headers)
    assert disabled.status_code == 200
    key = await _create_key(client, acme, "admin")
    targets = {
        "org_id": [acme.organization_id],
        "user_id": [tenants.member.user_id, tenants.viewer.user_id, acme.user_id],
        "key_id": [key["id"]],
    }
    made = await _make_ids(client, tenants, case, "owner", {k: v[0] for k, v in targets.items()})
    targets |= {name: [made[name]] for name in made if name not in targets}
    headers = await _attacker_headers(client, tenants, attacker)
    acme_before = await _snapshot(client, acme)
    globex_before = await _snapshot(client, tenants.other_owner)

    for name in case.path_params:
        for target in targets[name]:
            ids = {param: targets[param][0] for param in case.path_params} | {name: target}
            response = await _call(client, case, ids, headers)
            _assert_error(response, 404, "not_found")

    assert await _snapshot(client, acme) == acme_before
    assert await _snapshot(client, tenants.other_owner) == globex_before
    still_works = await client.get(f"{API}/auth/me", headers={"X-API-Key": key["key"]})
    assert still_works.status_code == 200


# ---------------------------------------------------------------------------------------------
# Mass assignment: fields and roles a caller may not set


async def _role_of(client: httpx.AsyncClient, tenants: Tenants, user_id: str) -> str:
    users = await client.get(f"{API}/users", headers=tenants.owner.headers)
    return str(next(u["role"] for u in users.json()["data"] if u["id"] == user_id))


@pytest.mark.parametrize("wanted", ["owner", "admin"])
async def test_a_member_cannot_raise_their_own_role(
    client: httpx.AsyncClient, tenants: Tenants, wanted: str
) -> None:
    member = tenants.member
    response = await client.patch(
        f"{API}/users/{member.user_id}/role", json={"role": wanted}, headers=member.headers
    )
    _assert_forbidden(response, "users:manage")
    assert await _role_of(client, tenants, member.user_id) == "member"


async def test_only_an_owner_changes_the_plan(client: httpx.AsyncClient, tenants: Tenants) -> None:
    url = f"{API}/organizations/{tenants.owner.organization_id}"
    refused = await client.patch(
        url, json={"name": "Acme Cheap", "plan": "enterprise"}, headers=tenants.admin.headers
    )
    _assert_error(refused, 403, "forbidden")
    organization = (await client.get(url, headers=tenants.owner.headers)).json()
    assert (organization["name"], organization["plan"]) == ("Acme", "free")
    # The same plan again is no change, so an admin may send it along with a rename.
    renamed = await client.patch(
        url, json={"name": "Acme Ltd", "plan": "free"}, headers=tenants.admin.headers
    )
    assert renamed.status_code == 200
    changed = await client.patch(url, json={"plan": "pro"}, headers=tenants.owner.headers)
    assert changed.status_code == 200
    assert changed.json()["plan"] == "pro"


def _smuggled_field(model: type[BaseModel]) -> str:
    """A field an attacker would like to set that ``model`` does not have."""
    return next(f for f in ("role", "organization_id", "user_id") if f not in model.model_fields)


@pytest.mark.parametrize("case", STRICT_BODY_ROUTES, ids=_ids(STRICT_BODY_ROUTES))
async def test_unknown_body_fields_are_refused_by_name(
    client: httpx.AsyncClient, tenants: Tenants, case: RouteCase
) -> None:
    assert case.body_model is not None
    smuggled = _smuggled_field(case.body_model)
    ids = await _acme_ids(client, tenants, case)
    example = case.body(ids)
    body = {**(example if isinstance(example, dict) else {}), smuggled: "owner"}
    # The owner holds every permission, so only the body can be what is refused.
    headers = None if case.public else tenants.owner.headers
    response = await _call(client, case, ids, headers, body=body)
    _assert_error(response, 400, "invalid_input")
    fields = response.json()["details"]["fields"]
    assert [(f["field"], f["type"]) for f in fields] == [(f"body.{smuggled}", "extra_forbidden")], (
        fields
    )


async def test_unknown_fields_change_nothing(client: httpx.AsyncClient, tenants: Tenants) -> None:
    url = f"{API}/organizations/{tenants.owner.organization_id}"
    response = await client.patch(
        url, json={"name": "x", "role": "owner"}, headers=tenants.admin.headers
    )
    _assert_error(response, 400, "invalid_input")
    assert response.json()["details"]["fields"][0]["field"] == "body.role"
    assert (await client.get(url, headers=tenants.owner.headers)).json()["name"] == "Acme"
    assert await _role_of(client, tenants, tenants.admin.user_id) == "admin"


async def test_an_admin_cannot_make_an_owner(client: httpx.AsyncClient, tenants: Tenants) -> None:
    promote = await client.patch(
        f"{API}/users/{tenants.member.user_id}/role",
        json={"role": "owner"},
        headers=tenants.admin.headers,
    )
    _assert_error(promote, 403, "forbidden")
    self_promote = await client.patch(
        f"{API}/users/{tenants.admin.user_id}/role",
        json={"role": "owner"},
        headers=tenants.admin.headers,
    )
    _assert_error(self_promote, 403, "forbidden")
    invite = await client.post(
        f"{API}/users/invite",
        json={"email": "puppet@acme.example", "role": "owner"},
        headers=tenants.admin.headers,
    )
    _assert_error(invite, 403, "forbidden")
    assert await _role_of(client, tenants, tenants.member.user_id) == "member"
    assert await _role_of(client, tenants, tenants.admin.user_id) == "admin"


async def test_an_admin_can_neither_demote_nor_disable_an_owner(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner.user_id
    # A second owner, so the last-owner rule is not what refuses.
    second = await client.patch(
        f"{API}/users/{tenants.member.user_id}/role",
        json={"role": "owner"},
        headers=tenants.owner.headers,
    )
    assert second.status_code == 200
    demote = await client.patch(
        f"{API}/users/{owner}/role", json={"role": "viewer"}, headers=tenants.admin.headers
    )
    _assert_error(demote, 403, "forbidden")
    disable = await client.delete(f"{API}/users/{owner}", headers=tenants.admin.headers)
    _assert_error(disable, 403, "forbidden")
    assert await _role_of(client, tenants, owner) == "owner"
    me = await client.get(f"{API}/auth/me", headers=tenants.owner.headers)
    assert me.status_code == 200


async def test_the_last_owner_can_neither_demote_nor_disable_themself(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner
    # A disabled second owner does not count: the active one is still the last.
    promoted = await client.patch(
        f"{API}/users/{tenants.member.user_id}/role", json={"role": "owner"}, headers=owner.headers
    )
    assert promoted.status_code == 200
    disabled = await client.delete(f"{API}/users/{tenants.member.user_id}", headers=owner.headers)
    assert disabled.status_code == 200
    for role in ("admin", "member", "viewer"):
        demote = await client.patch(
            f"{API}/users/{owner.user_id}/role", json={"role": role}, headers=owner.headers
        )
        _assert_error(demote, 409, "last_owner")
    disable = await client.delete(f"{API}/users/{owner.user_id}", headers=owner.headers)
    _assert_error(disable, 409, "last_owner")
    assert await _role_of(client, tenants, owner.user_id) == "owner"


async def test_a_member_cannot_create_an_admin_key(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    for scopes in (["admin"], ["read", "admin"]):
        response = await client.post(
            f"{API}/api-keys",
            json={"name": "escalate", "scopes": scopes},
            headers=tenants.member.headers,
        )
        _assert_error(response, 403, "forbidden")
    keys = await client.get(f"{API}/api-keys", headers=tenants.owner.headers)
    assert keys.json()["total"] == 0
    allowed = await client.post(
        f"{API}/api-keys", json={"name": "ci", "scopes": ["write"]}, headers=tenants.member.headers
    )
    assert allowed.status_code == 201


async def test_a_read_key_changes_nothing(client: httpx.AsyncClient, tenants: Tenants) -> None:
    read_key = await _create_key(client, tenants.owner, "read", name="read only")
    headers = {"X-API-Key": read_key["key"]}
    org = tenants.owner.organization_id
    attempts = [
        ("POST", f"{API}/api-keys", {"name": "more", "scopes": ["read"]}),
        ("DELETE", f"{API}/api-keys/{read_key['id']}", None),
        ("PATCH", f"{API}/organizations/{org}", {"name": "Owned"}),
        ("POST", f"{API}/users/invite", {"email": "spy@acme.example", "role": "viewer"}),
        ("PATCH", f"{API}/users/{tenants.viewer.user_id}/role", {"role": "admin"}),
        ("DELETE", f"{API}/users/{tenants.viewer.user_id}", None),
    ]
    before = await _snapshot(client, tenants.owner)
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=headers)
        _assert_error(response, 403, "forbidden")
    assert await _snapshot(client, tenants.owner) == before


async def test_a_write_key_can_neither_read_the_audit_log_nor_make_keys(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    write_key = await _create_key(client, tenants.owner, "write", name="writer")
    headers = {"X-API-Key": write_key["key"]}
    _assert_forbidden(await client.get(f"{API}/audit-log", headers=headers), "audit:read")
    made = await client.post(f"{API}/api-keys", json={"name": "child"}, headers=headers)
    _assert_forbidden(made, "api_keys:manage")


async def test_an_owners_admin_key_may_change_the_plan(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    key = await _create_key(client, tenants.owner, "admin", name="billing automation")
    response = await client.patch(
        f"{API}/organizations/{tenants.owner.organization_id}",
        json={"plan": "pro"},
        headers={"X-API-Key": key["key"]},
    )
    assert response.status_code == 200, response.text


async def test_refused_requests_hold_no_concurrency_slot(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI
) -> None:
    """A viewer hammering a forbidden route must not use up the organization's slots."""
    slots = app.state.auth.settings.auth.plans["free"].concurrent_requests
    for _ in range(slots + 5):
        _assert_forbidden(
            await client.get(f"{API}/audit-log", headers=tenants.viewer.headers), "audit:read"
        )
    assert (await client.get(f"{API}/audit-log", headers=tenants.owner.headers)).status_code == 200


async def test_people_may_revoke_their_own_keys_and_admins_anyones(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owners_key = await _create_key(client, tenants.owner, "admin")
    refused = await client.delete(
        f"{API}/api-keys/{owners_key['id']}", headers=tenants.member.headers
    )
    _assert_refused_to_revoke(refused)
    own_key = await _create_key(client, tenants.member, "read")
    mine = await client.delete(f"{API}/api-keys/{own_key['id']}", headers=tenants.member.headers)
    assert mine.json()["revoked"] is True
    by_admin = await client.delete(
        f"{API}/api-keys/{owners_key['id']}", headers=tenants.admin.headers
    )
    assert by_admin.json()["revoked"] is True


def _assert_refused_to_revoke(response: httpx.Response) -> None:
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
