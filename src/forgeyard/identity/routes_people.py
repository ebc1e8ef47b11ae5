"""Users, organizations, API keys and the audit log (seeds 001, 002, 003, 004)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from forgeyard.auth.dependencies import CurrentPrincipal, Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.identity import audit_log, schemas, service
from forgeyard.identity.deps import ClientIp, MailerDep
from forgeyard.identity.presenters import api_key_out, user_out
from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.errors import NotFoundError
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.identity import Role

router = APIRouter()

ManageUsers = Annotated[Principal, Depends(require("users:manage"))]


@router.get("/users/me", tags=["users"])
async def my_profile(principal: CurrentPrincipal, session: DbSession) -> schemas.UserOut:
    if principal.user_id is None:
        raise NotFoundError("an API key is not a user")
    return user_out(
        await service.get_member(session=session, who=principal, user_id=principal.user_id)
    )


@router.get("/users", tags=["users"])
async def list_users(
    principal: ManageUsers, session: DbSession, page: Pagination
) -> Page[schemas.UserOut]:
    members, total = await service.list_members(session=session, who=principal, page=page)
    return Page(
        data=[user_out(m) for m in members], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/users/invite", tags=["users"], status_code=status.HTTP_201_CREATED)
async def invite_user(
    body: schemas.InviteIn,
    principal: ManageUsers,
    session: DbSession,
    runtime: Runtime,
    mailer: MailerDep,
    ip: ClientIp,
) -> schemas.InvitationCreated:
    invitation, token = await service.invite(
        session=session,
        runtime=runtime,
        who=principal,
        email=body.email,
        role=Role(body.role),
        ip=ip,
    )
    accept_url = f"{runtime.settings.public_url}/accept-invitation?token={token}"
    delivered = await mailer.send(
        to=invitation.email,
        subject="You are invited to Forgeyard",
        body=f"You are invited to join an organization on Forgeyard as {invitation.role}.\n\n"
        f"Create your account here: {accept_url}\n",
    )
    return schemas.InvitationCreated(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        organization_id=invitation.organization_id,
        expires_at=invitation.expires_at,
        accept_url=accept_url,
        emailed=delivered,
    )


@router.patch("/users/{user_id}/role", tags=["users"])
async def change_role(
    user_id: str,
    body: schemas.RoleChangeIn,
    principal: ManageUsers,
    session: DbSession,
    runtime: Runtime,
    ip: ClientIp,
) -> schemas.UserOut:
    member = await service.change_role(
        session=session,
        runtime=runtime,
        who=principal,
        user_id=user_id,
        role=Role(body.role),
        ip=ip,
    )
    return user_out(member)


@router.delete("/users/{user_id}", tags=["users"])
async def disable_user(
    user_id: str, principal: ManageUsers, session: DbSession, runtime: Runtime, ip: ClientIp
) -> schemas.UserOut:
    member = await service.set_disabled(
        session=session, runtime=runtime, who=principal, user_id=user_id, disabled=True, ip=ip
    )
    return user_out(member)


@router.post("/users/{user_id}/enable", tags=["users"])
async def enable_user(
    user_id: str, principal: ManageUsers, session: DbSession, runtime: Runtime, ip: ClientIp
) -> schemas.UserOut:
    member = await service.set_disabled(
        session=session, runtime=runtime, who=principal, user_id=user_id, disabled=False, ip=ip
    )
    return user_out(member)


@router.get("/organizations/{org_id}", tags=["organizations"])
async def get_organization(
    org_id: str,
    principal: Annotated[Principal, Depends(require("org:read"))],
    session: DbSession,
) -> schemas.OrganizationOut:
    organization = await service.get_organization(session=session, org_id=org_id, who=principal)
    return schemas.OrganizationOut.model_validate(organization, from_attributes=True)


@router.patch("/organizations/{org_id}", tags=["organizations"])
async def update_organization(
    org_id: str,
    body: schemas.OrganizationPatch,
    principal: Annotated[Principal, Depends(require("org:update"))],
    session: DbSession,
    runtime: Runtime,
) -> schemas.OrganizationOut:
    organization = await service.update_organization(
        session=session,
        runtime=runtime,
        org_id=org_id,
        who=principal,
        name=body.name,
        plan=body.plan,
    )
    return schemas.OrganizationOut.model_validate(organization, from_attributes=True)


@router.get("/organizations/{org_id}/members", tags=["organizations"])
async def list_organization_members(
    org_id: str,
    principal: Annotated[Principal, Depends(require("members:read"))],
    session: DbSession,
    page: Pagination,
) -> Page[schemas.MemberOut]:
    await service.get_organization(session=session, org_id=org_id, who=principal)
    members, total = await service.list_members(session=session, who=principal, page=page)
    data = [
        schemas.MemberOut(
            id=m.user.id,
            name=m.user.name,
            role=m.membership.role,
            disabled=m.membership.disabled_at is not None,
        )
        for m in members
    ]
    return Page(data=data, total=total, limit=page.limit, offset=page.offset)


@router.get("/api-keys", tags=["api-keys"])
async def list_api_keys(
    principal: Annotated[Principal, Depends(require("api_keys:read"))],
    session: DbSession,
    page: Pagination,
) -> Page[schemas.ApiKeyOut]:
    keys, total = await service.list_api_keys(session=session, who=principal, page=page)
    return Page(
        data=[api_key_out(k) for k in keys], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/api-keys", tags=["api-keys"], status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: schemas.ApiKeyIn,
    principal: Annotated[Principal, Depends(require("api_keys:manage"))],
    session: DbSession,
    runtime: Runtime,
    ip: ClientIp,
) -> schemas.ApiKeyCreated:
    api_key, key = await service.create_api_key(
        session=session,
        runtime=runtime,
        who=principal,
        name=body.name,
        scopes=list(body.scopes),
        expires_at=body.expires_at,
        ip=ip,
    )
    return schemas.ApiKeyCreated(**api_key_out(api_key).model_dump(), key=key)


@router.delete("/api-keys/{key_id}", tags=["api-keys"])
async def revoke_api_key(
    key_id: str,
    principal: Annotated[Principal, Depends(require("api_keys:manage"))],
    session: DbSession,
    runtime: Runtime,
    ip: ClientIp,
) -> schemas.ApiKeyOut:
    api_key = await service.revoke_api_key(
        session=session, runtime=runtime, who=principal, key_id=key_id, ip=ip
    )
    return api_key_out(api_key)


@router.get("/audit-log", tags=["audit"])
async def read_audit_log(
    principal: Annotated[Principal, Depends(require("audit:read"))],
    session: DbSession,
    page: Pagination,
    action: Annotated[str | None, Query(max_length=64, description="Only this action.")] = None,
) -> Page[schemas.AuditEventOut]:
    events, total = await audit_log.list_events(
        session=session, who=principal, page=page, action=action
    )
    data = [schemas.AuditEventOut.model_validate(e, from_attributes=True) for e in events]
    return Page(data=data, total=total, limit=page.limit, offset=page.offset)
