"""Password sign-in, token refresh, sign-out, password resets (seeds 002 and 004)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import RedirectResponse

from forgeyard.auth.dependencies import CSRF_COOKIE, SESSION_COOKIE, CurrentPrincipal, Runtime
from forgeyard.identity import github, oidc, schemas, service, sessions, setup
from forgeyard.identity.deps import ClientIp, MailerDep
from forgeyard.identity.presenters import user_out
from forgeyard.kernel.crypto import new_token
from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.errors import ForbiddenError, InvalidInputError
from forgeyard.models.identity import Role

router = APIRouter(prefix="/auth", tags=["auth"])


def _signed_in(
    response: Response, runtime: Runtime, issued: sessions.IssuedSession
) -> schemas.TokenPair:
    """The token pair, and the same access token as the dashboard's cookie session (seed 000)."""
    secure = runtime.settings.auth.cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        httponly=True,
        secure=secure,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE, new_token(16), max_age=issued.expires_in, secure=secure, samesite="strict"
    )
    return schemas.TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        user=user_out(issued.member),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(
    body: schemas.RegisterIn, response: Response, session: DbSession, runtime: Runtime
) -> schemas.TokenPair:
    await setup.require_ready(session=session)
    if body.invitation_token:
        invitation = await service.redeem_invitation(
            session=session, runtime=runtime, token=body.invitation_token, email=body.email
        )
        organization_id, role = invitation.organization_id, Role(invitation.role)
    elif runtime.settings.auth.registration == "open":
        if not body.organization_name:
            raise InvalidInputError(
                "organization_name is required to register a new organization",
                details={"fields": [{"field": "body.organization_name", "message": "required"}]},
            )
        organization = await service.create_organization(
            session=session, name=body.organization_name
        )
        organization_id, role = organization.id, Role.OWNER
    else:
        raise ForbiddenError("registration is by invitation only", code="invitation_required")
    member = await service.create_account(
        session=session,
        email=body.email,
        name=body.name,
        password=body.password,
        organization_id=organization_id,
        role=role,
    )
    issued = await sessions.start_session(session=session, runtime=runtime, member=member)
    return _signed_in(response, runtime, issued)


@router.post("/login")
async def login(
    body: schemas.LoginIn, response: Response, session: DbSession, runtime: Runtime, ip: ClientIp
) -> schemas.TokenPair:
    await setup.require_ready(session=session)
    issued = await sessions.login(
        session=session,
        runtime=runtime,
        email=body.email,
        password=body.password,
        organization_id=body.organization_id,
        ip=ip,
    )
    return _signed_in(response, runtime, issued)


@router.get("/oidc/start")
async def start_oidc(
    session: DbSession,
    runtime: Runtime,
    redirect_uri: Annotated[str, Query(min_length=1, max_length=1000)],
) -> schemas.OidcStartOut:
    await setup.require_ready(session=session)
    url = await oidc.start(
        session=session, runtime=runtime, purpose="login", redirect_uri=redirect_uri
    )
    return schemas.OidcStartOut(authorization_url=url)


@router.post("/oidc/callback")
async def oidc_callback(
    body: schemas.OidcCallbackIn,
    response: Response,
    session: DbSession,
    runtime: Runtime,
    ip: ClientIp,
) -> schemas.TokenPair:
    await setup.require_ready(session=session)
    identity = await oidc.finish(
        session=session, runtime=runtime, purpose="login", code=body.code, state=body.state
    )
    issued = await sessions.login_verified(
        session=session, runtime=runtime, email=identity.email, ip=ip, method="oidc"
    )
    return _signed_in(response, runtime, issued)


@router.get("/github/start", status_code=status.HTTP_307_TEMPORARY_REDIRECT)
async def start_github(
    session: DbSession,
    runtime: Runtime,
    redirect_uri: Annotated[str | None, Query(max_length=1000)] = None,
) -> RedirectResponse:
    """Sends the browser to GitHub; it comes back to the callback below by default."""
    await setup.require_ready(session=session)
    default = f"{runtime.settings.public_url}/api/v1/auth/github/callback"
    url = await github.start(session=session, runtime=runtime, redirect_uri=redirect_uri or default)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/github/callback")
async def github_callback(
    response: Response,
    session: DbSession,
    runtime: Runtime,
    ip: ClientIp,
    code: Annotated[str, Query(min_length=1, max_length=2000)],
    state: Annotated[str, Query(min_length=1, max_length=200)],
) -> schemas.TokenPair:
    """Signs in the member whose verified GitHub e-mail matches; sets the cookie session."""
    await setup.require_ready(session=session)
    email = await github.finish(session=session, runtime=runtime, code=code, state=state)
    issued = await sessions.login_verified(
        session=session, runtime=runtime, email=email, ip=ip, method="github"
    )
    return _signed_in(response, runtime, issued)


@router.post("/refresh")
async def refresh(
    body: schemas.RefreshIn, response: Response, session: DbSession, runtime: Runtime
) -> schemas.TokenPair:
    issued = await sessions.refresh(
        session=session, runtime=runtime, refresh_token=body.refresh_token
    )
    return _signed_in(response, runtime, issued)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentPrincipal,
    response: Response,
    session: DbSession,
    runtime: Runtime,
    body: schemas.LogoutIn | None = None,
) -> None:
    if principal.user_id is None:
        raise ForbiddenError("API keys have no session to sign out of")
    await sessions.logout(
        session=session,
        runtime=runtime,
        user_id=principal.user_id,
        refresh_token=body.refresh_token if body else None,
    )
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)


@router.get("/me")
async def me(principal: CurrentPrincipal) -> schemas.MeOut:
    """Who the credential belongs to, answered from the principal alone: no query."""
    user = None
    if principal.user_id and principal.email and principal.name is not None:
        user = schemas.UserRef(id=principal.user_id, email=principal.email, name=principal.name)
    return schemas.MeOut(
        kind=principal.kind,
        organization_id=principal.organization_id,
        role=principal.role,
        plan=principal.plan,
        user=user,
        api_key_id=principal.api_key_id,
        scope=principal.scope,
    )


@router.post("/password/reset", status_code=status.HTTP_202_ACCEPTED)
async def request_password_reset(
    body: schemas.PasswordResetIn, session: DbSession, runtime: Runtime, mailer: MailerDep
) -> schemas.Accepted:
    found = await sessions.request_password_reset(
        session=session, runtime=runtime, email=body.email
    )
    if found is not None:
        user, token = found
        link = f"{runtime.settings.public_url}/reset-password?token={token}"
        await mailer.send(
            to=user.email,
            subject="Reset your Forgeyard password",
            body=f"Someone asked to reset the password of {user.email}.\n\n"
            f"Set a new one here (valid for {runtime.settings.auth.password_reset_minutes} "
            f"minutes): {link}\n\nIf it was not you, ignore this message.",
        )
    # The same answer whether or not the address has an account.
    return schemas.Accepted(message="if the address has an account, a reset link is on its way")


@router.post("/password/reset/confirm")
async def confirm_password_reset(
    body: schemas.PasswordResetConfirmIn, session: DbSession, runtime: Runtime
) -> schemas.Accepted:
    await sessions.reset_password(
        session=session, runtime=runtime, token=body.token, password=body.password
    )
    return schemas.Accepted(message="password changed; every session was signed out")
