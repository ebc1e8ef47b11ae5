"""The forge calls integrations make: a GitHub App's installation and its repositories, and
GitLab's OAuth code exchange and project list.

Every request goes through the SSRF-guarded client of :mod:`forgeyard.kernel.http` (a GitLab
base URL is user-given; a GitHub Enterprise host on a private network is allowed by listing it
in ``outbound.allowed_hosts``), with a time limit and a cap on the answer's size. Tokens travel
only in request headers and never appear in an error.

    GitHub  GET  /app/installations/{id}                 app JWT (RS256, iss = app id)
            POST /app/installations/{id}/access_tokens   app JWT -> installation token
            GET  /installation/repositories              installation token
    GitLab  GET  /oauth/authorize (the person's browser), POST /oauth/token (PKCE)
            GET  /api/v4/user, GET /api/v4/projects?membership=true
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from forgeyard.kernel.errors import ConflictError, ForgeyardError, InvalidInputError
from forgeyard.kernel.http import GuardedTransport, OutboundPolicy, outbound_client, read_limited
from forgeyard.settings import Settings

with warnings.catch_warnings():  # Authlib's notice about its httpx fork; plain httpx works
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

GITHUB_API_VERSION = "2022-11-28"
# GitHub's own media type, and the one its OpenAPI description gives every answer.
GITHUB_ACCEPT = "application/vnd.github+json, application/json"
USER_AGENT = "Forgeyard"
PER_PAGE = 100
MAX_PAGES = 20  # 2,000 repositories: more than a person picks from in one list
JWT_LIFETIME_SECONDS = 540  # GitHub accepts at most 10 minutes
CLOCK_SKEW_SECONDS = 60  # GitHub's advice: issued a minute in the past


class ForgeError(ForgeyardError):
    """The forge failed or refused what should have worked (502); the message says which."""

    status_code = 502
    code = "forge_error"


@dataclass(frozen=True)
class ForgeRepo:
    forge_repo_id: str
    full_name: str
    clone_url: str | None
    default_branch: str | None
    private: bool


@dataclass(frozen=True)
class Installation:
    installation_id: int
    account: str
    account_type: str
    repository_selection: str | None
    html_url: str | None


# --- shared ---------------------------------------------------------------------------------


def _policy(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy.from_settings(settings.outbound)


async def _json(
    client: httpx.AsyncClient, settings: Settings, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, Any]:
    """The answer and its JSON body (at most ``outbound.max_response_bytes`` of it)."""
    try:
        async with client.stream(method, url, **kwargs) as response:
            body = await read_limited(response, settings.outbound.max_response_bytes)
    except httpx.HTTPError as exc:
        raise ForgeError(
            f"{httpx.URL(url).host} did not answer ({type(exc).__name__})", code="forge_unreachable"
        ) from None
    try:
        return response, json.loads(body) if body else None
    except ValueError:
        return response, None


def _refuse(response: httpx.Response, what: str) -> ForgeError:
    return ForgeError(
        f"{what}: the forge answered {response.status_code}",
        details={"status": response.status_code},
    )


# --- GitHub App -----------------------------------------------------------------------------


def github_app_configured(settings: Settings) -> bool:
    github = settings.github
    return bool(github.app_id and github.app_slug and github.private_key)


def require_github_app(settings: Settings) -> None:
    if not github_app_configured(settings):
        raise ConflictError(
            "no GitHub App is configured on this instance (github.app_id, app_slug and "
            "private_key; see docs/ci.md)",
            code="not_configured",
        )


def app_jwt(settings: Settings, *, now: float | None = None) -> str:
    """The JWT a GitHub App signs with its private key to speak as the app."""
    require_github_app(settings)
    issued = int(now if now is not None else time.time()) - CLOCK_SKEW_SECONDS
    claims = {"iat": issued, "exp": issued + JWT_LIFETIME_SECONDS, "iss": settings.github.app_id}
    key = settings.github.private_key
    assert key is not None  # require_github_app
    return jwt.encode(claims, key.get_secret_value(), algorithm="RS256")


def _github_headers(token: str) -> dict[str, str]:
    return {
        "Accept": GITHUB_ACCEPT,
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
        "User-Agent": USER_AGENT,
    }


def _github_url(settings: Settings, path: str) -> str:
    return settings.github.api_url.rstrip("/") + path


async def github_installation(settings: Settings, installation_id: int) -> Installation:
    """The installation as GitHub knows it: proof that it exists and is this app's."""
    headers = _github_headers(app_jwt(settings))
    url = _github_url(settings, f"/app/installations/{installation_id}")
    async with outbound_client(_policy(settings)) as client:
        response, body = await _json(client, settings, "GET", url, headers=headers)
    if response.status_code == 404:
        raise InvalidInputError(
            f"GitHub knows no installation {installation_id} of this app",
            details={"field": "installation_id"},
        )
    if response.status_code != 200 or not isinstance(body, dict):
        raise _refuse(response, "reading the installation")
    account = body.get("account") or {}
    return Installation(
        installation_id=int(body.get("id", installation_id)),
        account=str(account.get("login") or account.get("slug") or installation_id),
        account_type=str(account.get("type") or "Organization"),
        repository_selection=body.get("repository_selection"),
        html_url=body.get("html_url"),
    )


async def github_installation_repos(settings: Settings, installation_id: int) -> list[ForgeRepo]:
    """Every repository the installation may see, read with an installation token."""
    async with outbound_client(_policy(settings)) as client:
        token = await _installation_token(client, settings, installation_id)
        repos: list[ForgeRepo] = []
        for page in range(1, MAX_PAGES + 1):
            url = _github_url(settings, "/installation/repositories")
            params = {"per_page": PER_PAGE, "page": page}
            response, body = await _json(
                client, settings, "GET", url, headers=_github_headers(token), params=params
            )
            if response.status_code != 200 or not isinstance(body, dict):
                raise _refuse(response, "listing the installation's repositories")
            listed = body.get("repositories") or []
            repos += [_github_repo(item) for item in listed if isinstance(item, dict)]
            if len(listed) < PER_PAGE:
                break
    return repos


async def _installation_token(
    client: httpx.AsyncClient, settings: Settings, installation_id: int
) -> str:
    url = _github_url(settings, f"/app/installations/{installation_id}/access_tokens")
    response, body = await _json(
        client, settings, "POST", url, headers=_github_headers(app_jwt(settings))
    )
    if response.status_code != 201 or not isinstance(body, dict) or not body.get("token"):
        raise _refuse(response, "creating an installation token")
    return str(body["token"])


def _github_repo(item: dict[str, Any]) -> ForgeRepo:
    return ForgeRepo(
        forge_repo_id=str(item.get("id")),
        full_name=str(item.get("full_name")),
        clone_url=item.get("clone_url"),
        default_branch=item.get("default_branch"),
        private=bool(item.get("private")),
    )


# --- GitLab ---------------------------------------------------------------------------------


def _oauth_client(settings: Settings, client_id: str, **kwargs: Any) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id,
        transport=GuardedTransport(_policy(settings)),
        timeout=settings.outbound.timeout_seconds,
        **kwargs,
    )


def gitlab_authorization_url(
    settings: Settings,
    *,
    base_url: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    code_verifier: str,
) -> str:
    client = _oauth_client(
        settings,
        client_id,
        redirect_uri=redirect_uri,
        scope=settings.gitlab.scopes,
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        f"{base_url}/oauth/authorize", state=state, code_verifier=code_verifier
    )
    return str(url)


async def gitlab_exchange_code(
    settings: Settings,
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> dict[str, Any]:
    """GitLab's tokens for ``code`` (access_token, refresh_token, expires_in...)."""
    client = _oauth_client(
        settings,
        client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - what GitLab documents
    )
    try:
        async with client:
            token: dict[str, Any] = await client.fetch_token(
                f"{base_url}/oauth/token",
                code=code,
                code_verifier=code_verifier,
                headers={"Accept": "application/json"},
            )
    except ForgeyardError:
        raise
    except Exception as exc:  # Authlib's OAuthError, httpx errors: the forge said no
        raise ForgeError(
            f"GitLab did not exchange the code ({_oauth_error(exc)})", code="token_exchange_error"
        ) from None
    if not token.get("access_token"):
        raise ForgeError("GitLab answered without an access token", code="token_exchange_error")
    return token


async def gitlab_refresh(
    settings: Settings, *, base_url: str, client_id: str, client_secret: str, refresh_token: str
) -> dict[str, Any]:
    client = _oauth_client(
        settings,
        client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
    )
    try:
        async with client:
            token: dict[str, Any] = await client.refresh_token(
                f"{base_url}/oauth/token", refresh_token=refresh_token
            )
    except Exception as exc:
        raise ForgeError(
            f"GitLab did not refresh the token ({_oauth_error(exc)}): connect it again",
            code="token_exchange_error",
        ) from None
    return token


def _oauth_error(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    return str(error) if error else type(exc).__name__


async def gitlab_user(settings: Settings, *, base_url: str, token: str) -> str:
    """The user name the token acts for."""
    async with outbound_client(_policy(settings)) as client:
        response, body = await _json(
            client, settings, "GET", f"{base_url}/api/v4/user", headers=_gitlab_headers(token)
        )
    if response.status_code != 200 or not isinstance(body, dict):
        raise _refuse(response, "reading the GitLab user")
    return str(body.get("username") or body.get("id"))


async def gitlab_projects(settings: Settings, *, base_url: str, token: str) -> list[ForgeRepo]:
    """The projects the user is a member of, following GitLab's ``X-Next-Page``."""
    repos: list[ForgeRepo] = []
    page: str | None = "1"
    async with outbound_client(_policy(settings)) as client:
        for _ in range(MAX_PAGES):
            params = {"membership": "true", "per_page": str(PER_PAGE), "page": page or "1"}
            response, body = await _json(
                client,
                settings,
                "GET",
                f"{base_url}/api/v4/projects",
                headers=_gitlab_headers(token),
                params=params,
            )
            if response.status_code != 200 or not isinstance(body, list):
                raise _refuse(response, "listing GitLab projects")
            repos += [_gitlab_repo(item) for item in body if isinstance(item, dict)]
            page = response.headers.get("X-Next-Page") or None
            if not page:
                break
    return repos


def _gitlab_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def _gitlab_repo(item: dict[str, Any]) -> ForgeRepo:
    return ForgeRepo(
        forge_repo_id=str(item.get("id")),
        full_name=str(item.get("path_with_namespace")),
        clone_url=item.get("http_url_to_repo"),
        default_branch=item.get("default_branch"),
        private=item.get("visibility", "private") != "public",
    )
