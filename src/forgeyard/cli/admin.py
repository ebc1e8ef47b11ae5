"""``forgeyard admin``: first-run setup without a browser, for scripted installs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from forgeyard.auth.ratelimit import RateLimiter
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.identity import setup
from forgeyard.identity.schemas import SetupOwnerIn
from forgeyard.kernel.db import Database
from forgeyard.kernel.errors import ForgeyardError
from forgeyard.kernel.keys import instance_secret
from forgeyard.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="Administration.")

BOOTSTRAP_TOKEN_FILE = "bootstrap-token"  # noqa: S105 - a file name


def _runtime(settings: Settings) -> AuthRuntime:
    given = settings.secret_key.get_secret_value() if settings.secret_key else None
    return AuthRuntime.create(settings, instance_secret(given, settings.data_dir), RateLimiter())


async def issue_bootstrap_token(settings: Settings) -> str | None:
    """A new bootstrap token while setup is unfinished, kept in a 0600 file; None once ready."""
    path = settings.data_dir / BOOTSTRAP_TOKEN_FILE
    database = Database.from_url(settings.resolved_database_url, settings.db)
    try:
        async with database.transaction() as session:
            token = await setup.issue_bootstrap_token(session=session, runtime=_runtime(settings))
    finally:
        await database.dispose()
    if token is None:
        path.unlink(missing_ok=True)
        return None
    _write_private(path, token)
    return token


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


async def _create_owner(
    settings: Settings, email: str, name: str, organization: str, password: str
) -> str:
    database = Database.from_url(settings.resolved_database_url, settings.db)
    try:
        async with database.transaction() as session:
            member = await setup.create_owner(
                session=session,
                email=email,
                password=password,
                name=name,
                organization_name=organization,
            )
            await setup.complete(session=session)
    finally:
        await database.dispose()
    (settings.data_dir / BOOTSTRAP_TOKEN_FILE).unlink(missing_ok=True)
    return member.user.id


@app.command("create-owner")
def create_owner(
    email: Annotated[str, typer.Option(help="The owner's e-mail address.")],
    name: Annotated[str, typer.Option(help="The owner's name.")],
    organization: Annotated[str, typer.Option(help="The first organization's name.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="FORGEYARD_OWNER_PASSWORD",
            help="Asked for when not given (or set FORGEYARD_OWNER_PASSWORD).",
        ),
    ],
) -> None:
    """Create the owner and the first organization, and finish setup."""
    try:
        owner = SetupOwnerIn(
            email=email, password=password, name=name, organization_name=organization
        )
        user_id = asyncio.run(
            _create_owner(
                get_settings(), owner.email, owner.name, owner.organization_name, owner.password
            )
        )
    except ForgeyardError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"owner {user_id} created; setup is complete")
