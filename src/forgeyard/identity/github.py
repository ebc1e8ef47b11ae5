"""Sign-in with GitHub (seed 000): an OAuth app's web flow, then the account's verified e-mail.

GitHub's OAuth endpoints are not discovered (GitHub is no OpenID provider); their base URLs
come from settings so GitHub Enterprise Server works the same way.
"""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.runtime import AuthRuntime
from forgeyard.identity.authlib_client import AsyncOAuth2Client
from forgeyard.identity.oidc import (
    HTTP_TIMEOUT,
    ProviderError,
    check_redirect_uri,
    claim,
    exchange_code,
    remember,
)
from forgeyard.kernel.crypto import new_token
from forgeyard.kernel.errors import ConflictError
from forgeyard.settings import GitHubSettings

PURPOSE = "github_login"
SCOPES = "read:user user:email"


def _configured(runtime: AuthRuntime) -> tuple[GitHubSettings, str, str]:
    github = runtime.settings.github
    if not github.client_id or not github.client_secret:
        raise ConflictError("sign-in with GitHub is not configured", code="github_not_configured")
    return github, github.client_id, github.client_secret.get_secret_value()


async def start(*, session: AsyncSession, runtime: AuthRuntime, redirect_uri: str) -> str:
    github, client_id, _ = _configured(runtime)
    state, verifier = new_token(), new_token(48)
    client = AsyncOAuth2Client(
        client_id,
        redirect_uri=check_redirect_uri(redirect_uri),
        scope=SCOPES,
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        f"{github.web_url}/login/oauth/authorize", state=state, code_verifier=verifier
    )
    await remember(
        session=session,
        runtime=runtime,
        purpose=PURPOSE,
        state=state,
        verifier=verifier,
        redirect_uri=redirect_uri,
    )
    return str(url)


async def finish(*, session: AsyncSession, runtime: AuthRuntime, code: str, state: str) -> str:
    """The primary, verified e-mail address of the GitHub account that signed in."""
    github, client_id, client_secret = _configured(runtime)
    request = await claim(session=session, runtime=runtime, purpose=PURPOSE, state=state)
    tokens = await exchange_code(
        runtime,
        token_url=f"{github.web_url}/login/oauth/access_token",
        client_id=client_id,
        client_secret=client_secret,
        request=request,
        code=code,
    )
    return await _primary_email(github, str(tokens.get("access_token", "")))


async def _primary_email(github: GitHubSettings, access_token: str) -> str:
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            response = await http.get(f"{github.api_url}/user/emails", headers=headers)
            response.raise_for_status()
            emails = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"GitHub did not list the account's e-mail: {exc}") from exc
    for entry in emails:
        if entry.get("primary") and entry.get("verified") and entry.get("email"):
            return str(entry["email"]).lower()
    raise ProviderError("the GitHub account has no verified primary e-mail", code="missing_email")
