"""Receiving forge webhooks (``POST /webhooks/github``, ``POST /webhooks/gitlab``).

A delivery is genuine before anything is read or written: GitHub's ``X-Hub-Signature-256``
over the raw body under the GitHub App's webhook secret, or a GitLab ``X-Gitlab-Token`` that
is the webhook token of one GitLab integration (stored hashed, so the token finds the
integration). A bad one answers 401 and writes nothing.

A genuine delivery is then recorded by its id (``X-GitHub-Delivery``, ``X-Gitlab-Event-UUID``)
in the same transaction as what it causes: a replay answers 200 ``{"duplicate": true}`` and does
nothing, while a delivery whose handling failed (rolled back) may be delivered again.

A push or pull request on a repository enabled for builds starts the builds its pipelines ask
for and, for a push, a fresh analysis: 202 ``{"builds": [...], "analysis": id or null}``.
Anything else answers 200 ``{"ignored": "<reason>"}``; GitHub's installation events keep the
integration's status and repository list current.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.analysis import service as analysis
from forgeyard.ci import builds, integrations
from forgeyard.ci.forge_clients import ForgeRepo
from forgeyard.ci.inbound import (
    GITHUB_SIGNATURE_HEADER,
    GITLAB_TOKEN_HEADER,
    ForgeEvent,
    WebhookRefused,
    parse_github,
    parse_gitlab,
    verify_github_signature,
)
from forgeyard.kernel.crypto import TokenHasher
from forgeyard.kernel.errors import (
    ConflictError,
    InvalidInputError,
    RateLimitedError,
    UnauthorizedError,
)
from forgeyard.models.integrations import (
    ForgeRepository,
    InboundDelivery,
    Integration,
    IntegrationStatus,
)
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

GITHUB_EVENT_HEADER = "X-GitHub-Event"
GITHUB_DELIVERY_HEADER = "X-GitHub-Delivery"
GITLAB_EVENT_HEADER = "X-Gitlab-Event"
GITLAB_DELIVERY_HEADER = "X-Gitlab-Event-UUID"
MAX_DELIVERY_ID = 100
# GitHub's installation actions, as the integration's status.
INSTALLATION_STATUS = {
    "deleted": IntegrationStatus.REMOVED,
    "suspend": IntegrationStatus.SUSPENDED,
    "unsuspend": IntegrationStatus.ACTIVE,
    "new_permissions_accepted": IntegrationStatus.ACTIVE,
}


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


def _ignored(reason: str) -> Outcome:
    return Outcome(200, {"ignored": reason})


DUPLICATE = Outcome(200, {"duplicate": True})


# --- GitHub ---------------------------------------------------------------------------------


async def receive_github(
    *, session: AsyncSession, settings: Settings, headers: Mapping[str, str], body: bytes
) -> Outcome:
    secret = settings.github.webhook_secret
    try:
        verify_github_signature(
            secret.get_secret_value() if secret else "", body, headers.get(GITHUB_SIGNATURE_HEADER)
        )
    except WebhookRefused as refused:
        raise UnauthorizedError(refused.reason, code="invalid_signature") from None
    event = _header(headers, GITHUB_EVENT_HEADER)
    delivery = _header(headers, GITHUB_DELIVERY_HEADER)
    payload = _payload(body)
    if not await _first_time(session, "github", delivery):
        return DUPLICATE
    installation_id = _installation_id(payload)
    if installation_id is None:
        return _ignored(f"a {event} event without an installation (not from the GitHub App)")
    integration = await integrations.github_integration(
        session=session, installation_id=installation_id
    )
    if integration is None:
        return _ignored(f"no organization has connected installation {installation_id}")
    if event in ("installation", "installation_repositories"):
        return await _installation_changed(session, settings, integration, event, payload)
    return await _on_event(session, settings, integration, _parse(parse_github, event, payload))


def _installation_id(payload: dict[str, Any]) -> int | None:
    installation = payload.get("installation")
    if not isinstance(installation, dict):
        return None
    value = installation.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _installation_changed(
    session: AsyncSession,
    settings: Settings,
    integration: Integration,
    event: str,
    payload: dict[str, Any],
) -> Outcome:
    action = str(payload.get("action"))
    if event == "installation":
        status = INSTALLATION_STATUS.get(action)
        if status is None:
            return _ignored(f"installation {action} changes nothing here")
        integration.status = status
        await session.flush()
        return Outcome(200, {"handled": f"installation {action}", "status": status})
    added = [_added_repo(settings, item) for item in _items(payload, "repositories_added")]
    removed = [str(item.get("id")) for item in _items(payload, "repositories_removed")]
    current = {
        row.forge_repo_id: row
        for row in await integrations.forge_repositories_of(
            session=session, integration=integration
        )
    }
    merged = [_as_forge_repo(row) for key, row in current.items() if key not in removed]
    merged += [repo for repo in added if repo.forge_repo_id not in current]
    await integrations.sync_repositories(session=session, integration=integration, found=merged)
    return Outcome(
        200,
        {
            "handled": f"installation_repositories {action}",
            "added": len(added),
            "removed": len(removed),
        },
    )


def _items(payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = payload.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _added_repo(settings: Settings, item: dict[str, Any]) -> ForgeRepo:
    """GitHub's event names the repository without its clone URL: it is the web URL's."""
    full_name = str(item.get("full_name"))
    return ForgeRepo(
        forge_repo_id=str(item.get("id")),
        full_name=full_name,
        clone_url=f"{settings.github.web_url.rstrip('/')}/{full_name}.git",
        default_branch=None,
        private=bool(item.get("private")),
    )


def _as_forge_repo(row: ForgeRepository) -> ForgeRepo:
    return ForgeRepo(
        row.forge_repo_id, row.full_name, row.clone_url, row.default_branch, row.private
    )


# --- GitLab ---------------------------------------------------------------------------------


async def receive_gitlab(
    *,
    session: AsyncSession,
    settings: Settings,
    hasher: TokenHasher,
    headers: Mapping[str, str],
    body: bytes,
) -> Outcome:
    token = headers.get(GITLAB_TOKEN_HEADER)
    if not token:
        raise UnauthorizedError(
            f"the {GITLAB_TOKEN_HEADER} header is missing", code="invalid_token"
        )
    integration = await integrations.gitlab_integration(session=session, hasher=hasher, token=token)
    if integration is None:
        raise UnauthorizedError(
            f"the {GITLAB_TOKEN_HEADER} header matches no GitLab integration", code="invalid_token"
        )
    event = _header(headers, GITLAB_EVENT_HEADER)
    payload = _payload(body)
    delivery = headers.get(GITLAB_DELIVERY_HEADER)
    if delivery and not await _first_time(session, "gitlab", delivery[:MAX_DELIVERY_ID]):
        return DUPLICATE
    return await _on_event(session, settings, integration, _parse(parse_gitlab, event, payload))


# --- shared ---------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value or len(value) > MAX_DELIVERY_ID:
        raise InvalidInputError(
            f"the {name} header is missing or too long", details={"field": f"header.{name}"}
        )
    return value


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidInputError(
            "the body is not JSON (set the webhook's content type to application/json)",
            details={"field": "body"},
        ) from None
    if not isinstance(payload, dict):
        raise InvalidInputError("the body must be a JSON object", details={"field": "body"})
    return payload


def _parse(parser: Any, event: str, payload: dict[str, Any]) -> tuple[str, ForgeEvent | None]:
    try:
        return event, parser(event, payload)
    except WebhookRefused as refused:
        raise InvalidInputError(refused.reason, details={"field": "body"}) from None


async def _first_time(session: AsyncSession, forge: str, delivery_id: str) -> bool:
    """Records the delivery; False when it was recorded before (a replay)."""
    try:
        async with session.begin_nested():
            session.add(InboundDelivery(forge=forge, delivery_id=delivery_id))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def _on_event(
    session: AsyncSession,
    settings: Settings,
    integration: Integration,
    parsed: tuple[str, ForgeEvent | None],
) -> Outcome:
    event_name, event = parsed
    if integration.status != IntegrationStatus.ACTIVE:
        return _ignored(f"the integration is {integration.status}")
    if event is None:
        return _ignored(f"{event_name} events of this kind start no builds")
    enabled = await integrations.enabled_repository(
        session=session, integration=integration, full_name=event.repository
    )
    if enabled is None or enabled.repository_id is None:
        return _ignored(f"{event.repository} is not enabled for builds in Forgeyard")
    started = await builds.start_for_event(
        session=session,
        organization_id=integration.organization_id,
        repository_id=enabled.repository_id,
        event=event,
        settings=settings,
    )
    analysis_id = await _analyse(session, settings, integration, enabled.repository_id, event)
    return Outcome(202, {"builds": [build.id for build in started], "analysis": analysis_id})


async def _analyse(
    session: AsyncSession,
    settings: Settings,
    integration: Integration,
    repository_id: str,
    event: ForgeEvent,
) -> str | None:
    """A fresh analysis for a push that brought code; None when one is queued or running
    already, or the plan runs as many as it allows (the next push or the schedule catches
    up)."""
    if event.kind != "push" or event.deleted or event.commit is None:
        return None
    repository = await repos.get_repo_in(
        session=session, organization_id=integration.organization_id, repo_id=repository_id
    )
    limits = await analysis.limits_of(
        session=session, settings=settings, organization_id=integration.organization_id
    )
    try:
        started = await analysis.start(
            session=session, repository=repository, trigger="push", ref=event.commit, limits=limits
        )
    except (ConflictError, RateLimitedError):
        return None
    return started.id
