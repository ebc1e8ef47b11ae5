"""First-run setup endpoints (seed 003)."""

from __future__ import annotations

from fastapi import APIRouter, status

from forgeyard.auth.dependencies import Runtime
from forgeyard.identity import oidc, schemas, setup
from forgeyard.identity.deps import ClientIp, SetupSessionDep
from forgeyard.identity.presenters import user_out
from forgeyard.kernel.dependencies import DbSession

router = APIRouter(tags=["setup"])


@router.get("/public/setup-status")
async def setup_status(session: DbSession) -> schemas.SetupStatusOut:
    current = await setup.status(session=session)
    return schemas.SetupStatusOut(state=current.state.value, owner_created=current.owner_created)


@router.post("/setup/bootstrap-token/verify")
async def verify_bootstrap_token(
    body: schemas.BootstrapVerifyIn, session: DbSession, runtime: Runtime, ip: ClientIp
) -> schemas.SetupSessionOut:
    token, expires_at = await setup.verify_bootstrap_token(
        session=session, runtime=runtime, token=body.token, ip=ip
    )
    return schemas.SetupSessionOut(setup_session_token=token, expires_at=expires_at)


@router.post("/setup/owner", status_code=status.HTTP_201_CREATED, dependencies=[SetupSessionDep])
async def create_owner(body: schemas.SetupOwnerIn, session: DbSession) -> schemas.UserOut:
    member = await setup.create_owner(
        session=session,
        email=body.email,
        password=body.password,
        name=body.name,
        organization_name=body.organization_name,
    )
    return user_out(member)


@router.post("/setup/complete", dependencies=[SetupSessionDep])
async def complete_setup(session: DbSession) -> schemas.SetupStatusOut:
    done = await setup.complete(session=session)
    return schemas.SetupStatusOut(state=done.state.value, owner_created=done.owner_created)


@router.post("/setup/oidc/configure", dependencies=[SetupSessionDep])
async def configure_oidc(
    body: schemas.OidcConfigureIn, session: DbSession, runtime: Runtime
) -> schemas.OidcProviderOut:
    await setup.refuse_when_ready(session=session)
    provider = await oidc.configure(
        session=session,
        runtime=runtime,
        issuer=body.issuer,
        client_id=body.client_id,
        client_secret=body.client_secret,
    )
    return schemas.OidcProviderOut(
        id=provider.id, issuer=provider.issuer, client_id=provider.client_id
    )


@router.post("/setup/owner/start-oidc", dependencies=[SetupSessionDep])
async def start_owner_oidc(
    body: schemas.OidcStartIn, session: DbSession, runtime: Runtime
) -> schemas.OidcStartOut:
    url = await oidc.start(
        session=session, runtime=runtime, purpose="setup_owner", redirect_uri=body.redirect_uri
    )
    return schemas.OidcStartOut(authorization_url=url)


@router.post(
    "/setup/owner/verify-oidc", status_code=status.HTTP_201_CREATED, dependencies=[SetupSessionDep]
)
async def verify_owner_oidc(
    body: schemas.OidcOwnerIn, session: DbSession, runtime: Runtime
) -> schemas.UserOut:
    identity = await oidc.finish(
        session=session, runtime=runtime, purpose="setup_owner", code=body.code, state=body.state
    )
    member = await setup.create_owner(
        session=session,
        email=identity.email,
        password=None,
        name=identity.name,
        organization_name=body.organization_name,
    )
    return user_out(member)
