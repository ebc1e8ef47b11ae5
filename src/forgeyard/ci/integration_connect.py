"""Connecting a forge: ``start`` hands out the forge's URL and a state; ``complete`` (GitHub)
or ``authorize`` (GitLab) spends the state and stores the integration.

A state is single-use, lives ten minutes, is stored only as a keyed hash and is bound to the
organization and person (or API key) that started: someone else's state, or one used already,
answers 400 ``invalid_state``. A state is spent in the caller's transaction, so when the forge
then fails the whole step rolls back and the same state may be tried again.

GitHub: the server checks the installation exists for this app (``GET /app/installations/{id}``
with the app's JWT) and reads its repositories with an installation token. One installation
belongs to one organization. GitLab: the code is exchanged with PKCE at ``<base_url>/oauth/
token``; the tokens and client secret are sealed, and the integration gets a webhook token of
its own, shown once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.principals import Principal
from forgeyard.ci import forge_clients, integrations
from forgeyard.kernel.crypto import TokenHasher, new_token
from forgeyard.kernel.db import rows_affected, utcnow
from forgeyard.kernel.errors import ConflictError, InvalidInputError
from forgeyard.kernel.http import BlockedDestinationError, OutboundPolicy, resolve_and_check
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.integrations import (
    Integration,
    IntegrationKind,
    IntegrationState,
    IntegrationStatus,
)
from forgeyard.settings import Settings

STATE_LIFETIME = timedelta(minutes=10)
GITLAB_CALLBACK_PATH = "/integrations/gitlab/callback"


@dataclass(frozen=True)
class Started:
    url: str
    state: str


@dataclass(frozen=True)
class Authorized:
    integration: Integration
    webhook_token: str  # shown once: GitLab sends it back as X-Gitlab-Token


# --- states ---------------------------------------------------------------------------------


async def _new_state(
    session: AsyncSession, who: Principal, hasher: TokenHasher, kind: str, data: dict[str, Any]
) -> str:
    now = utcnow()
    # Expired states of the organization go now: nothing else needs them.
    await session.execute(
        delete(IntegrationState).where(
            IntegrationState.organization_id == who.organization_id,
            IntegrationState.expires_at < now,
        )
    )
    state = new_token()
    session.add(
        IntegrationState(
            organization_id=who.organization_id,
            user_id=who.actor_id,
            kind=kind,
            state_hash=hasher.hash(state),
            data=data,
            expires_at=now + STATE_LIFETIME,
        )
    )
    await session.flush()
    return state


def _invalid_state() -> InvalidInputError:
    return InvalidInputError(
        "the state is unknown, expired, already used or not yours: start again",
        code="invalid_state",
        details={"field": "state"},
    )


async def _spend_state(
    session: AsyncSession, who: Principal, hasher: TokenHasher, kind: str, state: str
) -> IntegrationState:
    row = await session.scalar(
        select(IntegrationState).where(
            IntegrationState.state_hash == hasher.hash(state), IntegrationState.kind == kind
        )
    )
    mine = row is not None and (row.organization_id, row.user_id) == (
        who.organization_id,
        who.actor_id,
    )
    if row is None or not mine or row.used_at is not None or row.expires_at <= utcnow():
        raise _invalid_state()
    # Conditional, so of two requests racing with one state exactly one goes on.
    spent = await rows_affected(
        session,
        update(IntegrationState)
        .where(IntegrationState.id == row.id, IntegrationState.used_at.is_(None))
        .values(used_at=utcnow()),
    )
    if spent != 1:
        raise _invalid_state()
    return row


# --- GitHub App -----------------------------------------------------------------------------


async def start_github(
    *, session: AsyncSession, who: Principal, settings: Settings, hasher: TokenHasher
) -> Started:
    forge_clients.require_github_app(settings)
    state = await _new_state(session, who, hasher, IntegrationKind.GITHUB, {})
    web = settings.github.web_url.rstrip("/")
    slug = quote(settings.github.app_slug or "", safe="")
    return Started(f"{web}/apps/{slug}/installations/new?state={quote(state, safe='')}", state)


async def complete_github(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    hasher: TokenHasher,
    installation_id: int,
    state: str,
) -> Integration:
    forge_clients.require_github_app(settings)
    await _spend_state(session, who, hasher, IntegrationKind.GITHUB, state)
    installation = await forge_clients.github_installation(settings, installation_id)
    found = await forge_clients.github_installation_repos(settings, installation_id)
    integration = await _github_row(session, who, installation)
    await integrations.sync_repositories(session=session, integration=integration, found=found)
    await audit.record(
        session,
        action="integration.connected",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=integration.id,
        details={"kind": "github", "installation_id": installation_id},
    )
    return integration


async def _github_row(
    session: AsyncSession, who: Principal, installation: forge_clients.Installation
) -> Integration:
    """The organization's row for the installation: new, or the same one again (a reinstall
    or a second completion)."""
    integration = await integrations.github_integration(
        session=session, installation_id=installation.installation_id
    )
    if integration is not None and integration.organization_id != who.organization_id:
        raise ConflictError(
            "this GitHub installation is connected to another organization",
            details={"field": "installation_id"},
        )
    if integration is None:
        integration = Integration(
            organization_id=who.organization_id,
            kind=IntegrationKind.GITHUB,
            external_id=str(installation.installation_id),
            created_by_id=who.actor_id,
        )
        session.add(integration)
    integration.name = f"GitHub: {installation.account}"
    integration.status = IntegrationStatus.ACTIVE
    integration.config = {
        "installation_id": installation.installation_id,
        "account": installation.account,
        "account_type": installation.account_type,
        "repository_selection": installation.repository_selection,
        "html_url": installation.html_url,
    }
    await session.flush()
    return integration


# --- GitLab OAuth ---------------------------------------------------------------------------


async def check_base_url(settings: Settings, base_url: str) -> str:
    """``base_url`` without a final slash, once it is an http(s) URL whose host may be
    reached (the SSRF guard's save-time check)."""
    policy = OutboundPolicy.from_settings(settings.outbound)
    try:
        await resolve_and_check(base_url, policy, field="base_url")
    except BlockedDestinationError as exc:
        exc.details["field"] = "base_url"
        raise
    parsed = httpx.URL(base_url)
    if parsed.query or parsed.fragment:
        raise InvalidInputError(
            "base_url: must have no query or fragment", details={"field": "base_url"}
        )
    return base_url.rstrip("/")


def gitlab_redirect_uri(settings: Settings) -> str:
    return settings.gitlab.redirect_uri or settings.public_url.rstrip("/") + GITLAB_CALLBACK_PATH


async def start_gitlab(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    hasher: TokenHasher,
    base_url: str,
    client_id: str,
    client_secret: str,
) -> Started:
    base_url = await check_base_url(settings, base_url)
    box = instance_secret_box(settings)
    verifier = new_token(48)
    redirect_uri = gitlab_redirect_uri(settings)
    data = {
        "base_url": base_url,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "client_secret": box.encrypt(client_secret),
        "code_verifier": box.encrypt(verifier),
    }
    state = await _new_state(session, who, hasher, IntegrationKind.GITLAB, data)
    url = forge_clients.gitlab_authorization_url(
        settings,
        base_url=base_url,
        client_id=client_id,
        redirect_uri=redirect_uri,
        state=state,
        code_verifier=verifier,
    )
    return Started(url, state)


async def authorize_gitlab(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    hasher: TokenHasher,
    code: str,
    state: str,
) -> Authorized:
    pending = await _spend_state(session, who, hasher, IntegrationKind.GITLAB, state)
    box = instance_secret_box(settings)
    data = pending.data
    client_secret = box.decrypt(data["client_secret"])
    base_url = data["base_url"]
    token = await forge_clients.gitlab_exchange_code(
        settings,
        base_url=base_url,
        client_id=data["client_id"],
        client_secret=client_secret,
        redirect_uri=data["redirect_uri"],
        code=code,
        code_verifier=box.decrypt(data["code_verifier"]),
    )
    access = str(token["access_token"])
    username = await forge_clients.gitlab_user(settings, base_url=base_url, token=access)
    found = await forge_clients.gitlab_projects(settings, base_url=base_url, token=access)
    webhook_token = new_token()
    integration = Integration(
        organization_id=who.organization_id,
        kind=IntegrationKind.GITLAB,
        name=f"GitLab: {username} at {httpx.URL(base_url).host}",
        status=IntegrationStatus.ACTIVE,
        config={"base_url": base_url, "client_id": data["client_id"], "username": username},
        secrets_encrypted=integrations.seal(box, integrations.token_secrets(token, client_secret)),
        inbound_token_hash=hasher.hash(webhook_token),
        created_by_id=who.actor_id,
    )
    session.add(integration)
    await session.flush()
    await integrations.sync_repositories(session=session, integration=integration, found=found)
    await audit.record(
        session,
        action="integration.connected",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=integration.id,
        details={"kind": "gitlab", "base_url": base_url},
    )
    return Authorized(integration, webhook_token)
