"""Dependencies the identity routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from forgeyard.auth.dependencies import Runtime
from forgeyard.identity import setup
from forgeyard.identity.mail import Mailer
from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.errors import UnauthorizedError


async def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


ClientIp = Annotated[str, Depends(client_ip)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]


async def require_setup_session(request: Request, session: DbSession, runtime: Runtime) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("setup endpoints need the setup session token as a bearer token")
    await setup.check_setup_session(session=session, runtime=runtime, token=token)


SetupSessionDep = Depends(require_setup_session)
